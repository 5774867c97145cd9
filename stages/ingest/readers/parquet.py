"""Parquet reader: a file read batch by batch, rows_per_shard rows per chunk.

A missing or non-string text column fails the whole file (no row could become a document); a null
text is a reject for that row only. Ids are the input's own where given, else make_id(source,
relpath, row) with rows counted from 0 over the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stages.ingest.base import Chunk, InputFileError, Reader, extra_column_name, make_id, reject_row


def read_parquet_chunks(path: str, relpath: str, spec, rows_per_shard: int) -> Iterator[Chunk]:
    """Reads a Parquet file batch by batch; a missing or non-text `text` column fails the file."""
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:
        raise InputFileError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    names = pf.schema_arrow.names
    if spec.text_field not in names:
        raise InputFileError(
            f"{path}: no '{spec.text_field}' column (columns: {names}); set text_field for this input"
        )
    text_type = pf.schema_arrow.field(spec.text_field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputFileError(f"{path}: column '{spec.text_field}' has type {text_type}, expected a string column")
    first_row = 0
    try:
        for batch in pf.iter_batches(batch_size=rows_per_shard):
            yield _batch_to_chunk(pa.Table.from_batches([batch]), first_row, path, relpath, spec)
            first_row += batch.num_rows
    except InputFileError:
        raise
    except Exception as err:
        kept = f"the {first_row:,} rows before it were kept" if first_row else "no rows were read"
        raise InputFileError(
            f"{path}: unreadable after row {first_row} ({type(err).__name__}: {err}); {kept}"
        ) from None


def _batch_to_chunk(table: pa.Table, first_row: int, path: str, relpath: str, spec) -> Chunk:
    rows = range(first_row, first_row + table.num_rows)
    text = table.column(spec.text_field)
    null_text = text.is_null().to_numpy(zero_copy_only=False)
    rejects = [
        reject_row(spec, relpath, r, "missing-text", f"{path}: row {r}: '{spec.text_field}' is null")
        for r, bad in zip(rows, null_text)
        if bad
    ]
    if rejects:
        table = table.filter(pc.invert(pc.is_null(text)))
        rows = [r for r, bad in zip(rows, null_text) if not bad]
    ids = [make_id(spec.source, relpath, r) for r in rows]
    if spec.id_field and spec.id_field in table.column_names:
        given = table.column(spec.id_field).cast(pa.string())
        ids = pc.coalesce(given, pa.array(ids, pa.string()))
    if spec.url_field and spec.url_field in table.column_names:
        url = table.column(spec.url_field).cast(pa.string())
    else:
        url = pa.nulls(table.num_rows, pa.string())
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
            columns[extra_column_name(name)] = table.column(name)
    return Chunk(pa.table(columns), rejects)


PARQUET = Reader("parquet", (".parquet", ".pq"), read_parquet_chunks)
