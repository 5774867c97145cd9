"""The export's shuffle: the last stage's shards reshuffled into final shards of a chosen size.

Every document gets a key, xxh3-64 of its id under the seed; key mod M picks one of M output shards,
and each output shard is sorted by key. That is a global shuffle (documents of one source, one input
file or one crawl date do not sit together), it needs only one exchange through files (scatter, then
gather) and it is the same, byte for byte, for any number of workers. Shard sizes vary by about
1/sqrt(documents per shard) around the target, which an exact split would need a global sort to avoid.

Finished scatter and gather tasks leave markers (pipeline/exchange.py), so a crash costs only the
tasks that had not finished; the dataset card is rewritten at the end of every run.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import xxhash

from pipeline.exchange import read_part, write_parts
from pipeline.layout import sidecar_path
from pipeline.shards import Task, build_sidecar, output_fingerprint
from pipeline.storage import AtomicParquetWriter, Storage
from pipeline.worker import node_id, text_bytes

SHUFFLE = "_shuffle"


def shuffle_keys(ids: pa.ChunkedArray | pa.Array, seed: int) -> np.ndarray:
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(i.encode(), seed=seed) for i in ids.to_pylist()), dtype=np.uint64, count=len(ids)
    )


# What a trainer and a reader of the card need; columns absent from a run are left out.
DEFAULT_COLUMNS = [
    "id",
    "text",
    "source",
    "lang",
    "url",
    "weight",
    "tokens_est",
    "quality",
    "safety",
    "dup_cluster",
    "dup_cluster_size",
    "dup_copies",
    "w_quality",
    "w_cluster",
    "w_safety",
    "w_boost",
    "w_mix",
]


def export_columns(schema: pa.Schema, wanted: list[str] | None) -> list[str]:
    if wanted is None:
        return [c for c in DEFAULT_COLUMNS if c in schema.names]
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise ValueError(
            f"export columns {missing} are not produced by this pipeline (columns: {', '.join(schema.names)})"
        )
    return list(wanted)


def output_names(parts: int) -> list[str]:
    return [f"shard-{j:05d}-of-{parts:05d}" for j in range(parts)]


def count_parts(rows: int, text_bytes_total: int, shard_docs: int | None, shard_bytes: int | None) -> int:
    if shard_docs is not None:
        return max(1, math.ceil(rows / shard_docs))
    return max(1, math.ceil(text_bytes_total / shard_bytes))


def scatter_task(
    storage: Storage, *, path: str, writer: str, columns: list[str], seed: int, parts: int, work: str
) -> dict:
    """Splits one input shard by output shard: one file per output shard it has rows for (the whole
    input shard at once, a stage shard being bounded by rows_per_shard, so there are as few files as
    possible: with M output shards that is up to M files per input shard)."""
    table = storage.parquet_file(path).read(columns=columns)
    keys = shuffle_keys(table.column("id"), seed)
    table = table.append_column(SHUFFLE, pa.array(keys, pa.uint64()))
    return {"rows": write_parts(storage, f"{work}/scatter", writer, table, (keys % np.uint64(parts)).astype(np.int64))}


def gather_task(
    storage: Storage, *, work: str, j: int, name: str, folder: str, schema_from: str, columns: list[str], chash: str
) -> dict:
    """Writes output shard j (sorted by shuffle key) and its stats sidecar."""
    started = time.perf_counter()
    schema = storage.parquet_file(schema_from).schema_arrow
    schema = pa.schema([schema.field(c) for c in columns] + [pa.field(SHUFFLE, pa.uint64())])
    table = read_part(storage, f"{work}/scatter", j, schema)
    table = table.sort_by([(SHUFFLE, "ascending"), ("id", "ascending")]).drop_columns([SHUFFLE])
    writer = AtomicParquetWriter(storage, storage.path(folder, f"{name}.parquet"), table.schema)
    writer.write(table)
    writer.commit()
    nbytes = text_bytes(table)
    task = Task(key=name, input_path=f"{work}/scatter/p{j:05d}", fingerprint=chash)
    sidecar = build_sidecar(
        stage="export",
        folder=folder,
        task=task,
        config_hash=chash,
        version=None,
        outputs=[
            {"name": f"{name}.parquet", "rows": table.num_rows, "fingerprint": output_fingerprint(chash, chash, name)}
        ],
        rejects=None,
        rows_in=table.num_rows,
        rows_out=table.num_rows,
        rows_rejected=0,
        bytes_in=nbytes,
        bytes_out=nbytes,
        drops={},
        seconds=time.perf_counter() - started,
        node=node_id(),
    )
    storage.write_json(sidecar_path(storage, folder, name), sidecar)
    return {"rows": table.num_rows, "bytes": nbytes}


def read_exported(storage: Storage, folder: str, columns: list[str]) -> pa.Table:
    """The exported shards' columns (those that exist), in shard order."""
    names = sorted(n for n in storage.list_files(storage.path(folder), prefix="shard-", suffix=".parquet"))
    tables = []
    for n in names:
        f = storage.parquet_file(storage.path(folder, n))
        tables.append(f.read(columns=[c for c in columns if c in f.schema_arrow.names]))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(tables, promote_options="default")
