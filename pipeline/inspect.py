"""Reading a finished run for people: the final documents, the rejects of every stage, per-group counts.

`winnow stats`, `winnow report` and the notebooks all start here, so they agree on what "final"
means (the export's shards when there is an export, else the last stage's shards) and on how a
domain is taken from a URL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.shards import REJECTS_DIR
from pipeline.stats import stage_folders
from pipeline.storage import Storage

SKIP = ["_", ".", REJECTS_DIR]


def final_folder(storage: Storage) -> str | None:
    """The folder a trainer reads: the last stage folder (the export's, when the pipeline has one)."""
    folders = stage_folders(storage)
    return folders[-1] if folders else None


def _read(storage: Storage, where: str, columns: list[str]) -> pa.Table:
    files = [storage.path(where, n) for n in storage.list_files(storage.path(where), suffix=".parquet") if not n.startswith(".")]
    if not files:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    dataset = ds.dataset(files, format="parquet", filesystem=storage.fs)
    present = [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=present)


def read_docs(storage: Storage, folder: str, columns: list[str]) -> pa.Table:
    """The columns (those that exist) of a stage folder's shards; projection keeps this cheap."""
    return _read(storage, folder, columns)


def read_rejects(storage: Storage, columns: tuple[str, ...] = ("stage", "reason", "source", "lang", "url", "url_domain")) -> pa.Table:
    """Every stage's rejects as one table, with the stage folder each came from."""
    tables = []
    for folder in stage_folders(storage):
        t = _read(storage, f"{folder}/{REJECTS_DIR}", list(columns))
        if t.num_rows:
            t = t.append_column("folder", pa.array([folder] * t.num_rows, pa.string()))
            tables.append(t)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in ("folder", *columns)})
    return pa.concat_tables(tables, promote_options="permissive")


def domains(table: pa.Table) -> pa.Array:
    """The host of each row's URL (the url_filter stage's `url_domain` when present); null without a URL."""
    if "url_domain" in table.column_names:
        have = table.column("url_domain")
    else:
        have = pa.nulls(table.num_rows, pa.string())
    if "url" not in table.column_names:
        return have.combine_chunks() if isinstance(have, pa.ChunkedArray) else have
    host = pc.extract_regex(table.column("url").cast(pa.string()), r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:?#]+)")
    host = pc.utf8_lower(pc.struct_field(host, "host"))
    host = pc.replace_substring_regex(host, r"^www\.", "")
    merged = pc.coalesce(have, host)
    return merged.combine_chunks() if isinstance(merged, pa.ChunkedArray) else merged


def count_by(table: pa.Table, columns: list[str], value: np.ndarray | None = None) -> list[dict]:
    """Rows (and the sum of `value`, when given) per combination of `columns`, nulls as "unknown", largest first."""
    data = {c: pc.fill_null(table.column(c).cast(pa.string()), "unknown") if c in table.column_names else pa.array(["unknown"] * table.num_rows)
            for c in columns}
    data["_v"] = pa.array(np.ones(table.num_rows) if value is None else np.asarray(value, dtype=np.float64))
    grouped = pa.table(data).group_by(columns).aggregate([("_v", "count"), ("_v", "sum")]).to_pylist()
    rows = [{**{c: r[c] for c in columns}, "docs": r["_v_count"], "value": r["_v_sum"]} for r in grouped]
    return sorted(rows, key=lambda r: (-r["value"], *[r[c] for c in columns]))
