"""Training data from the shards: a held-out split per source and language, and a weighted sampler.

The sampler streams the shards (one in memory at a time) and lets each document through
Poisson(weight) times per pass, which is "sample with probability proportional to weight" without
random access into Parquet: over many passes a document is seen weight times per pass on average,
exactly what the weights stage promised. A shuffle buffer breaks up repeats and shard order.
Everything it will do next follows from its state (position, RNG state, buffer, unfinished
sequence), which it saves and restores, so a resumed run gets the very same next batch.
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import xxhash

from pipeline.storage import Storage
from stages.export.shuffle import gather_task, output_names, scatter_task

META_COLUMNS = ["id", "source", "lang"]


def list_shards(paths: list[str]) -> list[str]:
    """Parquet shards under each path: an export folder's shard-*.parquet, a stage folder's part-*.parquet
    (not rejects/ or _work/), or the files themselves."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(path, "shard-*.parquet"))) or sorted(
                glob.glob(os.path.join(path, "part-*.parquet"))
            )
            if not found:
                raise FileNotFoundError(f"{path}: no shard-*.parquet or part-*.parquet files")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def read_meta(files: list[str]) -> pa.Table:
    """id, source, lang (null as "unknown") and UTF-8 bytes of every document; cheap (no token work)."""
    tables = []
    for f in files:
        pf = pq.ParquetFile(f)
        missing = [c for c in ("id", "text", "source") if c not in pf.schema_arrow.names]
        if missing:
            raise ValueError(
                f"{f}: missing columns {missing}; pretraining reads id, text, source (and lang, weight when present)"
            )
        cols = [c for c in (*META_COLUMNS, "text") if c in pf.schema_arrow.names]
        t = pf.read(columns=cols)
        lang = (
            pc.fill_null(t.column("lang"), "unknown")
            if "lang" in t.column_names
            else pa.array(["unknown"] * t.num_rows)
        )
        nbytes = pc.binary_length(t.column("text").cast(pa.large_binary()))
        tables.append(
            pa.table(
                {
                    "id": t.column("id"),
                    "source": pc.fill_null(t.column("source"), "unknown"),
                    "lang": lang,
                    "bytes": nbytes,
                }
            )
        )
    return pa.concat_tables(tables)


def _rank_key(ids: list[str], seed: int) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed=seed) for i in ids), dtype=np.uint64, count=len(ids))


def choose_heldout(
    meta: pa.Table, *, fraction: float, min_docs: int, max_docs: int, seed: int
) -> dict[str, list[str]]:
    """Held-out ids per `source/lang` group: the documents with the smallest seeded hash of their id,
    `fraction` of the group clamped to [min_docs, max_docs], never more than half of a group. The
    choice depends only on ids, so raw and cleaned versions of a corpus hold out the same documents."""
    ids = meta.column("id").to_pylist()
    keys = _rank_key(ids, seed)
    groups = defaultdict(list)
    for i, (source, lang) in enumerate(zip(meta.column("source").to_pylist(), meta.column("lang").to_pylist())):
        groups[f"{source}/{lang}"].append(i)
    chosen = {}
    for g, rows in sorted(groups.items()):
        n = min(max(round(fraction * len(rows)), min_docs), max_docs, len(rows) // 2)
        if n <= 0:
            continue
        order = sorted(rows, key=lambda r: keys[r])
        chosen[g] = sorted(ids[r] for r in order[:n])
    return chosen


def read_texts(files: list[str], ids: set[str]) -> dict[str, str]:
    """Text of the given ids (for the held-out sets, which are small)."""
    found = {}
    for f in files:
        t = pq.read_table(f, columns=["id", "text"])
        mask = pc.is_in(t.column("id"), value_set=pa.array(sorted(ids), pa.string()))
        t = t.filter(mask)
        found.update(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))
    return found


def read_text_file(path: str, field: str = "text") -> list[str]:
    """The non-empty `field` of every row of a Parquet or JSONL (.jsonl, .jsonl.gz) file: an evaluation domain."""
    if path.endswith(".parquet"):
        texts = pq.read_table(path, columns=[field]).column(field).to_pylist()
    else:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            texts = [json.loads(line).get(field) for line in f if line.strip()]
    return [t for t in texts if isinstance(t, str) and t.strip()]


@dataclass
class EvalSet:
    """One group's held-out text as windows of seq_len + 1 tokens; each token predicted exactly once."""

    name: str
    windows: torch.Tensor  # [n, seq_len + 1]; targets past the end are -100
    bytes: int
    docs: int


def build_eval_set(name: str, texts: list[str], tokenizer, seq_len: int, eos: int) -> EvalSet:
    """Documents joined by EOS (one before the first too, so its first token is predicted), cut into
    windows that overlap by one token: every token of the text and its EOS is a target exactly once."""
    stream = [eos]
    for enc in tokenizer.encode_batch(texts):
        stream.extend(enc.ids)
        stream.append(eos)
    windows = []
    for start in range(0, len(stream) - 1, seq_len):
        w = stream[start : start + seq_len + 1]
        windows.append(w + [-100] * (seq_len + 1 - len(w)))
    nbytes = sum(len(t.encode()) for t in texts)
    return EvalSet(name, torch.tensor(windows, dtype=torch.long), nbytes, len(texts))


class WeightedSampler:
    """Streams documents of `files` (minus `exclude`), each let through Poisson(weight * rate) times
    per pass, shuffled through a buffer, tokenised with EOS appended and packed into rows of
    seq_len + 1 tokens. Rank r of w sees every w-th document, so data-parallel workers never overlap."""

    def __init__(
        self,
        files: list[str],
        tokenizer,
        seq_len: int,
        *,
        seed: int,
        exclude: set[str] | frozenset = frozenset(),
        rank: int = 0,
        world: int = 1,
        buffer_docs: int = 512,
        rate: float = 1.0,
    ):
        self.files, self.tokenizer, self.seq_len = list(files), tokenizer, seq_len
        self.seed, self.exclude, self.rank, self.world = seed, exclude, rank, world
        self.buffer_docs, self.rate = buffer_docs, rate
        self.eos = tokenizer.token_to_id("<|endoftext|>")
        self.rng = np.random.Generator(np.random.PCG64([seed, rank]))
        self.epoch, self.file_pos, self.row_pos, self.row_seen = 0, 0, 0, 0
        self.buffer: list[str] = []
        self.carry: list[int] = []
        self._loaded: tuple[int, int, pa.Table] | None = None

    # --- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """JSON-able; together with the files and settings it fixes every later batch."""
        return {
            "epoch": self.epoch,
            "file_pos": self.file_pos,
            "row_pos": self.row_pos,
            "row_seen": self.row_seen,
            "rng": self.rng.bit_generator.state,
            "buffer": list(self.buffer),
            "carry": list(self.carry),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.file_pos, self.row_pos, self.row_seen = (
            state["epoch"],
            state["file_pos"],
            state["row_pos"],
            state["row_seen"],
        )
        self.rng.bit_generator.state = state["rng"]
        self.buffer, self.carry = list(state["buffer"]), list(state["carry"])

    # --- documents ---------------------------------------------------------------------------

    def _file_order(self) -> np.ndarray:
        return np.random.Generator(np.random.PCG64([self.seed, 1_000_003, self.epoch])).permutation(len(self.files))

    def _table(self) -> pa.Table:
        index = int(self._file_order()[self.file_pos])
        if self._loaded is None or self._loaded[:2] != (self.epoch, index):
            pf = pq.ParquetFile(self.files[index])
            cols = [c for c in ("id", "text", "weight") if c in pf.schema_arrow.names]
            self._loaded = (self.epoch, index, pf.read(columns=cols))
        return self._loaded[2]

    def _admit_next_row(self) -> None:
        """Reads one row of the stream (if it is this rank's and not held out) into the buffer."""
        table = self._table()
        if self.row_pos >= table.num_rows:
            self.file_pos, self.row_pos = self.file_pos + 1, 0
            if self.file_pos >= len(self.files):
                self.epoch, self.file_pos = self.epoch + 1, 0
            return
        row, self.row_pos = self.row_pos, self.row_pos + 1
        mine = self.row_seen % self.world == self.rank
        self.row_seen += 1
        if not mine or table.column("id")[row].as_py() in self.exclude:
            return
        weight = table.column("weight")[row].as_py() if "weight" in table.column_names else 1.0
        copies = self.rng.poisson(max(float(weight or 0.0), 0.0) * self.rate)
        self.buffer.extend([table.column("text")[row].as_py()] * int(copies))

    def next_document(self) -> str:
        """The next document out of the shuffle buffer (filled first, over several passes if the corpus is small)."""
        start = self.epoch
        while len(self.buffer) < self.buffer_docs:
            self._admit_next_row()
            if not self.buffer and self.epoch > start + 2:
                raise ValueError("the sampler finds no documents: every weight is 0 or every document is held out")
        i = int(self.rng.integers(len(self.buffer)))
        self.buffer[i], self.buffer[-1] = self.buffer[-1], self.buffer[i]
        return self.buffer.pop()

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """[batch_size, seq_len + 1] token ids: inputs are [:, :-1], targets [:, 1:]."""
        rows = []
        while len(rows) < batch_size:
            while len(self.carry) < self.seq_len + 1:
                self.carry.extend(self.tokenizer.encode(self.next_document()).ids)
                self.carry.append(self.eos)
            rows.append(self.carry[: self.seq_len + 1])
            self.carry = self.carry[self.seq_len :]  # windows overlap by one token: every token is a target once
        return torch.tensor(rows, dtype=torch.long)


def is_shuffled(files: list[str]) -> bool:
    """Export shards are globally shuffled; stage parts (e.g. 00_ingest) keep each input file together."""
    return all(os.path.basename(f).startswith("shard-") for f in files)


def reshuffle(files: list[str], out_dir: str, *, seed: int, rows_per_shard: int = 10_000) -> list[str]:
    """Writes `files` as globally shuffled shards into `out_dir` (the export stage's scatter and gather,
    run in this process), once: the sampler streams shards in order, so data that is not shuffled
    (one source per file) would reach the model one source at a time."""

    done = sorted(glob.glob(os.path.join(out_dir, "shards", "shard-*.parquet")))
    if done and os.path.exists(os.path.join(out_dir, "shards", ".complete")):
        return done
    storage = Storage(out_dir)
    schema = pq.ParquetFile(files[0]).schema_arrow
    columns = [c for c in ("id", "text", "source", "lang", "weight") if c in schema.names]
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    parts = max(1, math.ceil(rows / rows_per_shard))
    for i, f in enumerate(files):
        scatter_task(storage, path=f, writer=f"f{i:05d}", columns=columns, seed=seed, parts=parts, work="_work")
    for j, name in enumerate(output_names(parts)):
        gather_task(
            storage,
            work="_work",
            j=j,
            name=name,
            folder="shards",
            schema_from=files[0],
            columns=columns,
            chash="reshuffle",
        )
    storage.delete_dir(storage.path("_work"))
    open(os.path.join(out_dir, "shards", ".complete"), "w").close()
    return sorted(glob.glob(os.path.join(out_dir, "shards", "shard-*.parquet")))
