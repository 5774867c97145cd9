"""JSONL reader: plain, .gz and .zst files of one JSON object per line.

Rows count non-blank lines from 0; a document keeps the input's own id when it has one, else
make_id(source, relpath, row). Lines that cannot become documents (malformed JSON, invalid UTF-8, no
text) are rejects with a reason and a `detail` naming the file and line; damage that ends a file
early (a truncated gzip) is a file error raised after every row read before it was handed over.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import zstandard

from stages.ingest.base import Chunk, InputFileError, Reader, empty_docs, extra_column_name, make_id, reject_row


def open_lines(path: str) -> io.BufferedIOBase:
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def iter_jsonl(path: str, relpath: str, spec) -> Iterator[tuple[int, dict | None, dict | None]]:
    """Yields (row number, record or None, reject or None) per non-blank line; rows count from 0."""
    row = 0
    line_no = 0
    stream = open_lines(path)
    try:
        while True:
            try:
                raw = stream.readline()
            except (EOFError, zlib.error, OSError) as err:
                raise InputFileError(
                    f"{path}: compressed stream is damaged after line {line_no} ({err}); "
                    f"the {row} documents before it were kept"
                ) from None
            except Exception as err:  # zstandard raises its own error type
                raise InputFileError(
                    f"{path}: cannot read after line {line_no} ({type(err).__name__}: {err}); "
                    f"the {row} documents before it were kept"
                ) from None
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
                    detail = f"{where}: invalid UTF-8 at byte {err.start}"
                    text = raw.decode("utf-8", "replace")
                    yield row, None, reject_row(spec, relpath, row, "invalid-utf8", detail, text)
                    row += 1
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    detail = f"{where}: {err.msg} at column {err.colno}"
                    yield row, None, reject_row(spec, relpath, row, "malformed-json", detail, line[:1000])
                    row += 1
                    continue
                field = _surrogate_field(record)
                if field is not None:  # a "\ud800" escape: valid JSON, but no UTF-8 string can hold it
                    detail = f"{where}: lone surrogate escape in '{field}'"
                    yield row, None, reject_row(spec, relpath, row, "invalid-utf8", detail, _excerpt(raw))
                    row += 1
                    continue
            if not isinstance(record, dict):
                detail = f"{where}: expected a JSON object, got {type(record).__name__}"
                yield row, None, reject_row(spec, relpath, row, "malformed-json", detail, _excerpt(raw))
            elif spec.text_field not in record or record[spec.text_field] is None:
                detail = f"{where}: no '{spec.text_field}' field (fields: {sorted(record)[:20]})"
                yield row, None, reject_row(spec, relpath, row, "missing-text", detail, _excerpt(raw))
            elif not isinstance(record[spec.text_field], str):
                detail = f"{where}: '{spec.text_field}' is {type(record[spec.text_field]).__name__}, not a string"
                yield row, None, reject_row(spec, relpath, row, "text-not-string", detail, _excerpt(raw))
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


def _records_to_table(records: list[tuple[int, dict]], spec, relpath: str) -> pa.Table:
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
        columns[extra_column_name(key)] = _extra_column(values)
    return pa.table(columns)


def _extra_column(values: list[Any]) -> pa.Array:
    """Scalars keep their type; nested or mixed values become JSON strings, so every shard agrees."""
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, bool} and kinds != {int, bool}:
        return pa.array(values)
    if kinds and kinds <= {int, float} and bool not in kinds:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kinds <= {str}:
        return pa.array(values, pa.string())
    as_json = [None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True) for v in values]
    return pa.array(as_json, pa.string())


def read_jsonl_chunks(path: str, relpath: str, spec, rows_per_shard: int) -> Iterator[Chunk]:
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


JSONL = Reader("jsonl", (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".ndjson"), read_jsonl_chunks)
