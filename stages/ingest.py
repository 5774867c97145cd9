"""Ingest: raw JSONL (plain, .gz, .zst) and Parquet files into the document schema.

Each input file is one task. Its documents are cut into shards of `rows_per_shard` rows, each with
a stable id: the input's own id when it has one, else a hash of (source, path, row number), so a
rerun or another worker count gives the same ids. Rows that cannot become documents (malformed
JSON, invalid UTF-8, no text) are rejects with a reason and a `detail` naming the file and line;
damage that ends a file early (a truncated gzip) is reported as a file error after keeping every
row read before it.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.schema import CORE_COLUMNS, REJECT_FIELDS
from stages.ingest_inputs import InputSpec, detect_format

VERSION = "ingest_v1"
RESERVED = set(CORE_COLUMNS) | {f.name for f in REJECT_FIELDS} | {"detail"}


class InputFileError(Exception):
    """A whole-file problem (corrupt Parquet, missing text column, truncated stream), with file and line."""


@dataclass
class Chunk:
    """Up to rows_per_shard documents and the rejects met while reading them."""

    docs: pa.Table
    rejects: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # records that are not documents (WARC requests, ...), by kind


def make_id(source: str, relpath: str, row: int) -> str:
    """A 96-bit id from where the document came from; ids never collide across sources or files."""
    return xxhash.xxh3_128_hexdigest(f"{source}\x1f{relpath}\x1f{row}".encode())[:24]


def _open_lines(path: str) -> io.BufferedIOBase:
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def _reject(spec: InputSpec, relpath: str, row: int, reason: str, detail: str, text: str = "") -> dict:
    return {
        "id": make_id(spec.source, relpath, row),
        "text": text,
        "url": None,
        "source": spec.source,
        "lang": spec.lang,
        "stage": "ingest",
        "reason": reason,
        "detail": detail,
    }


def iter_jsonl(path: str, relpath: str, spec: InputSpec) -> Iterator[tuple[int, dict | None, dict | None]]:
    """Yields (row number, record or None, reject or None) per non-blank line; rows count from 0."""
    row = 0
    line_no = 0
    stream = _open_lines(path)
    try:
        while True:
            try:
                raw = stream.readline()
            except (EOFError, zlib.error, OSError) as err:
                raise InputFileError(f"{path}: compressed stream is damaged after line {line_no} ({err}); the {row} documents before it were kept") from None
            except Exception as err:  # zstandard raises its own error type
                raise InputFileError(f"{path}: cannot read after line {line_no} ({type(err).__name__}: {err}); the {row} documents before it were kept") from None
            if not raw:
                break
            line_no += 1
            if not raw.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = orjson.loads(raw)  # parses bytes directly, ~4x faster than json.loads
            except orjson.JSONDecodeError:
                # Slow path, only for lines orjson refuses: say whether the bytes or the JSON are bad
                # (and accept what the standard parser takes, e.g. integers beyond 64 bits).
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    yield row, None, _reject(spec, relpath, row, "invalid-utf8", f"{where}: invalid UTF-8 at byte {err.start}", raw.decode("utf-8", "replace"))
                    row += 1
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    yield row, None, _reject(spec, relpath, row, "malformed-json", f"{where}: {err.msg} at column {err.colno}", line[:1000])
                    row += 1
                    continue
                field = _surrogate_field(record)
                if field is not None:  # a "\ud800" escape: valid JSON, but no UTF-8 string can hold it
                    yield row, None, _reject(spec, relpath, row, "invalid-utf8", f"{where}: lone surrogate escape in '{field}'", _excerpt(raw))
                    row += 1
                    continue
            if not isinstance(record, dict):
                yield row, None, _reject(spec, relpath, row, "malformed-json", f"{where}: expected a JSON object, got {type(record).__name__}", _excerpt(raw))
            elif spec.text_field not in record or record[spec.text_field] is None:
                yield row, None, _reject(spec, relpath, row, "missing-text", f"{where}: no '{spec.text_field}' field (fields: {sorted(record)[:20]})", _excerpt(raw))
            elif not isinstance(record[spec.text_field], str):
                kind = type(record[spec.text_field]).__name__
                yield row, None, _reject(spec, relpath, row, "text-not-string", f"{where}: '{spec.text_field}' is {kind}, not a string", _excerpt(raw))
            else:
                yield row, record, None
            row += 1
    finally:
        stream.close()


def _surrogate_field(value, name: str = "") -> str | None:
    """The first field (dotted path) holding a string with a lone UTF-16 surrogate, else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name or "(value)"
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _surrogate_field(item, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def _excerpt(raw: bytes) -> str:
    """The start of a rejected line, for the reject's `text` (decoded leniently)."""
    return raw[:4000].decode("utf-8", "replace")[:1000]


def _records_to_table(records: list[tuple[int, dict]], spec: InputSpec, relpath: str) -> pa.Table:
    """Builds the core columns plus the input's other fields (nested values as JSON strings)."""
    mapped = {spec.text_field, spec.url_field, spec.id_field, spec.lang_field} - {None}
    ids, texts, urls, langs = [], [], [], []
    extra_names: dict[str, None] = {}
    for row, rec in records:
        rid = rec.get(spec.id_field) if spec.id_field else None
        ids.append(str(rid) if rid is not None else make_id(spec.source, relpath, row))
        texts.append(rec[spec.text_field])
        url = rec.get(spec.url_field) if spec.url_field else None
        urls.append(str(url) if url is not None else None)
        lang = rec.get(spec.lang_field) if spec.lang_field else None
        langs.append(str(lang) if lang is not None else spec.lang)
        for key in rec:
            if key not in mapped:
                extra_names[key] = None
    columns = {
        "id": pa.array(ids, pa.string()),
        "text": pa.array(texts, pa.large_string()),
        "url": pa.array(urls, pa.string()),
        "source": pa.array([spec.source] * len(records), pa.string()),
        "lang": pa.array(langs, pa.string()),
    }
    for key in extra_names:
        values = [rec.get(key) for _, rec in records]
        columns[_extra_name(key)] = _extra_column(values)
    return pa.table(columns)


def _extra_name(key: str) -> str:
    """Input fields that clash with schema columns keep their data under `orig_<name>`."""
    return f"orig_{key}" if key in RESERVED else key


def _extra_column(values: list[Any]) -> pa.Array:
    """Scalars keep their type; nested or mixed values become JSON strings, so every shard agrees."""
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, bool} and kinds != {int, bool}:
        return pa.array(values)
    if kinds and kinds <= {int, float} and bool not in kinds:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kinds <= {str}:
        return pa.array(values, pa.string())
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True) for v in values], pa.string())


def read_jsonl_chunks(path: str, relpath: str, spec: InputSpec, rows_per_shard: int) -> Iterator[Chunk]:
    """Reads a JSONL file as chunks of at most rows_per_shard documents each."""
    records: list[tuple[int, dict]] = []
    rejects: list[dict] = []

    def flush() -> Chunk:
        return Chunk(_records_to_table(records, spec, relpath) if records else empty_docs(), rejects)

    try:
        for row, record, reject in iter_jsonl(path, relpath, spec):
            if reject is not None:
                rejects.append(reject)
            else:
                records.append((row, record))
            if len(records) >= rows_per_shard:
                yield flush()
                records, rejects = [], []
    except InputFileError:
        if records or rejects:  # hand over what was read before the damage, then report it
            yield flush()
        raise
    if records or rejects:
        yield flush()


def empty_docs() -> pa.Table:
    from pipeline.schema import core_schema

    return core_schema().empty_table()


def read_parquet_chunks(path: str, relpath: str, spec: InputSpec, rows_per_shard: int) -> Iterator[Chunk]:
    """Reads a Parquet file batch by batch; a missing or non-text `text` column fails the file."""
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:
        raise InputFileError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    names = pf.schema_arrow.names
    if spec.text_field not in names:
        raise InputFileError(f"{path}: no '{spec.text_field}' column (columns: {names}); set text_field for this input")
    text_type = pf.schema_arrow.field(spec.text_field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputFileError(f"{path}: column '{spec.text_field}' has type {text_type}, expected a string column")
    first_row = 0
    try:
        for batch in pf.iter_batches(batch_size=rows_per_shard):
            yield _parquet_batch_to_chunk(pa.Table.from_batches([batch]), first_row, path, relpath, spec)
            first_row += batch.num_rows
    except InputFileError:
        raise
    except Exception as err:
        kept = f"the {first_row:,} rows before it were kept" if first_row else "no rows were read"
        raise InputFileError(f"{path}: unreadable after row {first_row} ({type(err).__name__}: {err}); {kept}") from None


def _parquet_batch_to_chunk(table: pa.Table, first_row: int, path: str, relpath: str, spec: InputSpec) -> Chunk:
    rows = range(first_row, first_row + table.num_rows)
    text = table.column(spec.text_field)
    null_text = text.is_null().to_numpy(zero_copy_only=False)
    rejects = [_reject(spec, relpath, r, "missing-text", f"{path}: row {r}: '{spec.text_field}' is null") for r, bad in zip(rows, null_text) if bad]
    if rejects:
        table = table.filter(pc.invert(pc.is_null(text)))
        rows = [r for r, bad in zip(rows, null_text) if not bad]
    ids = [make_id(spec.source, relpath, r) for r in rows]
    if spec.id_field and spec.id_field in table.column_names:
        given = table.column(spec.id_field).cast(pa.string())
        ids = pc.coalesce(given, pa.array(ids, pa.string()))
    url = table.column(spec.url_field).cast(pa.string()) if spec.url_field and spec.url_field in table.column_names else pa.nulls(table.num_rows, pa.string())
    if spec.lang_field and spec.lang_field in table.column_names:
        lang = pc.coalesce(table.column(spec.lang_field).cast(pa.string()), pa.scalar(spec.lang, pa.string()))
    else:
        lang = pa.array([spec.lang] * table.num_rows, pa.string())
    columns = {
        "id": pa.array(ids, pa.string()) if isinstance(ids, list) else ids,
        "text": table.column(spec.text_field).cast(pa.large_string()),
        "url": url,
        "source": pa.array([spec.source] * table.num_rows, pa.string()),
        "lang": lang,
    }
    mapped = {spec.text_field, spec.url_field, spec.id_field, spec.lang_field}
    for name in table.column_names:
        if name not in mapped:
            columns[_extra_name(name)] = table.column(name)
    return Chunk(pa.table(columns), rejects)


def read_chunks(path: str, relpath: str, spec: InputSpec, rows_per_shard: int) -> Iterator[Chunk]:
    """Chunks of documents from one input file, whatever its format."""
    fmt = spec.format if spec.format != "auto" else detect_format(path)
    if fmt == "parquet":
        return read_parquet_chunks(path, relpath, spec, rows_per_shard)
    if fmt == "jsonl":
        return read_jsonl_chunks(path, relpath, spec, rows_per_shard)
    if fmt in ("warc", "wet"):
        from stages.warc import read_warc_chunks  # local import: resiliparse loads only for web archives

        return read_warc_chunks(path, relpath, spec, rows_per_shard)
    raise InputFileError(f"{path}: unknown input format; use .jsonl[.gz|.zst], .parquet, .warc[.gz] or .wet[.gz], or set format")


def rejects_table(rejects: list[dict]) -> pa.Table:
    schema = pa.schema([
        pa.field("id", pa.string()), pa.field("text", pa.large_string()), pa.field("url", pa.string()),
        pa.field("source", pa.string()), pa.field("lang", pa.string()), *REJECT_FIELDS, pa.field("detail", pa.string()),
    ])
    return pa.Table.from_pylist(rejects, schema=schema)
