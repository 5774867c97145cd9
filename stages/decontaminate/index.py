"""The benchmark index: every n-gram of every benchmark item, with the item it belongs to.

Benchmark files are JSONL (plain, .gz, .zst), Parquet or CSV (plain or .gz), named by a path, a list of
paths or a glob per benchmark; the text is in `text_field`. An item is one row. Items are indexed rather
than bare n-grams so that a document is judged by how much of one item it holds (see `stage.py`): a
stray common phrase shares one n-gram with an item, a copy shares most of them.

The index is two Parquet files in the stage's work folder: `ngrams` (hash, item), sorted by hash so a
lookup is a `searchsorted`, and `items` (benchmark, ngrams). N-grams found in more than
`MAX_ITEMS_PER_NGRAM` items are template text of the benchmark ("Which of the following ..."), not its
content; they are left out so that one of them in a document does not expand to thousands of items.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import zstandard

from pipeline.stage import StageError
from pipeline.storage import Storage
from stages.decontaminate.grams import batch_ngrams, chinese_mask

MAX_ITEMS_PER_NGRAM = 64
NGRAMS_SCHEMA = pa.schema([("hash", pa.uint64()), ("item", pa.int32())])
ITEMS_SCHEMA = pa.schema([("benchmark", pa.int16()), ("ngrams", pa.int32())])
BATCH_ITEMS = 4096


class BenchmarkError(StageError):
    """A benchmark file is missing, unreadable or lacks the text field; the message names the file."""


def resolve_paths(name: str, path: str | list[str]) -> list[str]:
    """The files of one benchmark: each entry a file or a glob, in sorted order; none found is an error."""
    files = []
    for entry in [path] if isinstance(path, str) else path:
        matched = sorted(glob.glob(entry)) if glob.has_magic(entry) else [entry]
        if not matched:
            raise BenchmarkError(f"benchmark {name}: no file matches {entry}")
        for f in matched:
            if not os.path.isfile(f):
                raise BenchmarkError(f"benchmark {name}: {f} does not exist or is not a file")
        files.extend(matched)
    return files


def files_digest(paths: list[str]) -> str:
    """sha256 of the files' contents, in order: a changed benchmark changes the stage's config hash."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def read_texts(name: str, path: str, field: str) -> list[str | None]:
    """The `field` of every row of one benchmark file."""
    lower = path.lower().removesuffix(".gz").removesuffix(".zst")
    try:
        if lower.endswith((".jsonl", ".json", ".ndjson")):
            return _jsonl_texts(name, path, field)
        if lower.endswith(".parquet"):
            schema = pq.read_schema(path)
            if field not in schema.names:
                raise _no_column(name, path, field, schema.names)
            return pq.read_table(path, columns=[field]).column(field).cast(pa.large_string()).to_pylist()
        if lower.endswith(".csv"):
            table = pacsv.read_csv(path)
            if field not in table.column_names:
                raise _no_column(name, path, field, table.column_names)
            return table.column(field).cast(pa.large_string()).to_pylist()
    except BenchmarkError:
        raise
    except (OSError, ValueError, pa.ArrowException, zstandard.ZstdError, EOFError) as err:
        raise BenchmarkError(f"benchmark {name}: cannot read {path}: {type(err).__name__}: {err}") from None
    raise BenchmarkError(f"benchmark {name}: {path}: unknown format (use .jsonl[.gz|.zst], .parquet or .csv[.gz])")


def _no_column(name: str, path: str, field: str, columns: list[str]) -> BenchmarkError:
    return BenchmarkError(f"benchmark {name}: {path} has no column '{field}' (columns: {', '.join(columns)})")


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    if path.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8")
    return open(path, encoding="utf-8")


def _jsonl_texts(name: str, path: str, field: str) -> list[str | None]:
    texts = []
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkError(f"benchmark {name}: {path} line {number} is not JSON: {err}") from None
            if not isinstance(row, dict) or field not in row:
                raise BenchmarkError(f"benchmark {name}: {path} line {number} has no field '{field}'")
            value = row[field]
            texts.append(value if isinstance(value, str) else None if value is None else str(value))
    return texts


@dataclass(frozen=True)
class BenchmarkSummary:
    name: str
    files: int
    items: int  # non-empty rows
    empty: int  # rows without text (null or only spaces and punctuation)
    ngrams: int  # distinct n-grams indexed


def build_index(benchmarks: list, *, ngram: int, zh_ngram: int) -> tuple[pa.Table, pa.Table, list[BenchmarkSummary]]:
    """(ngrams, items, summaries) for the configured benchmarks, in config order."""
    hashes, owners, item_bench, item_ngrams, summaries = [], [], [], [], []
    for b, bench in enumerate(benchmarks):
        paths = resolve_paths(bench.name, bench.path)
        rows = [t for p in paths for t in read_texts(bench.name, p, bench.text_field)]
        texts = [t for t in rows if t and t.strip()]
        first_item, bench_hashes = len(item_bench), []
        for lo in range(0, len(texts), BATCH_ITEMS):
            chunk = pa.array(texts[lo : lo + BATCH_ITEMS], pa.large_string())
            grams = batch_ngrams(chunk, chinese_mask(chunk, None), ngram=ngram, zh_ngram=zh_ngram)
            has = grams.counts() > 0  # rows of only punctuation have no n-gram and are no item
            ids = np.full(len(chunk), -1, np.int64)
            ids[has] = np.arange(len(item_bench), len(item_bench) + int(has.sum()))
            h, item = _distinct_pairs(grams.hashes, ids[grams.doc])
            item_bench.extend([b] * int(has.sum()))
            item_ngrams.extend(np.bincount(item - ids[has][0], minlength=int(has.sum())).tolist() if has.any() else [])
            hashes.append(h)
            owners.append(item)
            bench_hashes.append(h)
        items = len(item_bench) - first_item
        distinct = len(np.unique(np.concatenate(bench_hashes))) if bench_hashes else 0
        summaries.append(BenchmarkSummary(bench.name, len(paths), items, len(rows) - items, distinct))
    ngrams = _ngram_table(hashes, owners)
    items = pa.table(
        {"benchmark": pa.array(item_bench, pa.int16()), "ngrams": pa.array(item_ngrams, pa.int32())},
        schema=ITEMS_SCHEMA,
    )
    return ngrams, items, summaries


def _distinct_pairs(hashes: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, item) pairs without repeats (an item that says the same 13 words twice counts them once)."""
    if len(hashes) == 0:
        return hashes, items
    order = np.lexsort((hashes, items))
    hashes, items = hashes[order], items[order]
    new = np.ones(len(hashes), dtype=bool)
    new[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
    return hashes[new], items[new]


def _ngram_table(hashes: list[np.ndarray], owners: list[np.ndarray]) -> pa.Table:
    """All (hash, item) pairs sorted by hash, template n-grams (in too many items) left out."""
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    item = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    order = np.lexsort((item, h))
    h, item = h[order], item[order]
    if len(h):
        _, count = np.unique(h, return_counts=True)
        common = np.repeat(count > MAX_ITEMS_PER_NGRAM, count)
        h, item = h[~common], item[~common]
    return pa.table(
        {"hash": pa.array(h, pa.uint64()), "item": pa.array(item.astype(np.int32), pa.int32())}, schema=NGRAMS_SCHEMA
    )


def write_index(storage: Storage, folder: str, ngrams: pa.Table, items: pa.Table) -> None:
    for name, table in (("ngrams", ngrams), ("items", items)):
        with storage.atomic_stream(storage.path(folder, f"{name}.parquet")) as stream:
            pq.write_table(table, stream)


def index_exists(storage: Storage, folder: str) -> bool:
    return all(storage.exists(storage.path(folder, f"{name}.parquet")) for name in ("ngrams", "items"))


@dataclass(frozen=True)
class Index:
    """The loaded index: `hashes` sorted, `items[i]` the item of `hashes[i]`; per item its benchmark and
    how many distinct n-grams it has."""

    hashes: np.ndarray
    items: np.ndarray
    item_bench: np.ndarray
    item_ngrams: np.ndarray

    @classmethod
    def load(cls, storage: Storage, folder: str) -> Index:
        ngrams = storage.read_parquet(storage.path(folder, "ngrams.parquet"))
        items = storage.read_parquet(storage.path(folder, "items.parquet"))
        return cls(
            ngrams.column("hash").to_numpy(),
            ngrams.column("item").to_numpy().astype(np.int64),
            items.column("benchmark").to_numpy().astype(np.int64),
            items.column("ngrams").to_numpy().astype(np.int64),
        )

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """True where a hash is in the index. Most n-grams of a corpus are not; the queries are sorted
        first (one sort), so the search walks the index in order instead of jumping at random."""
        if len(hashes) == 0 or len(self.hashes) == 0:
            return np.zeros(len(hashes), dtype=bool)
        distinct, inverse = np.unique(hashes, return_inverse=True)
        at = np.minimum(np.searchsorted(self.hashes, distinct), len(self.hashes) - 1)
        return (self.hashes[at] == distinct)[inverse]

    def lookup(self, hashes: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc, item, hash) for every document n-gram found in an item, one row per item that has it."""
        lo = np.searchsorted(self.hashes, hashes, side="left")
        hi = np.searchsorted(self.hashes, hashes, side="right")
        count = hi - lo
        found = count > 0
        lo, count = lo[found], count[found]
        if not len(count):
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.uint64)
        at = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
        return np.repeat(doc[found], count), self.items[at], np.repeat(hashes[found], count)
