"""The export's shuffle: the last stage's shards reshuffled into final shards of a chosen size.

Every document gets a key, xxh3-64 of its id under the seed; key mod M picks one of M output shards,
and each output shard is sorted by key. That is a global shuffle (documents of one source, one input
file or one crawl date do not sit together), it needs only one exchange through files (scatter, then
gather) and it is the same, byte for byte, for any number of workers. Shard sizes vary by about
1/sqrt(documents per shard) around the target, which an exact split would need a global sort to avoid.

The exchange goes through G gather groups, not the M output shards: group g holds a contiguous range
of output shards, and G follows from the text bytes (`gather_bytes` per group), not from the shard
size. So a scatter task writes at most G files whatever `shard_docs` is (with one file per output
shard, small shards made tasks x shards files), and a gather task reads one group and writes each of
its shards. A shard's rows and their order are those of a one-group-per-shard exchange.

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


def count_groups(parts: int, text_bytes_total: int, gather_bytes: int) -> int:
    """Gather groups: enough that each reads about `gather_bytes` of text, never more than the shards."""
    return min(parts, max(1, math.ceil(text_bytes_total / gather_bytes)))


def group_of(shard: np.ndarray, parts: int, groups: int) -> np.ndarray:
    """The group of each output shard: contiguous ranges of shards, sizes differing by at most one."""
    return shard * groups // parts


def group_shards(g: int, parts: int, groups: int) -> range:
    """The output shards of group g (those j with j * groups // parts == g)."""
    return range(-(-g * parts // groups), -(-(g + 1) * parts // groups))


def scatter_task(
    storage: Storage,
    *,
    path: str,
    writer: str,
    columns: list[str],
    seed: int,
    parts: int,
    work: str,
    groups: int | None = None,
) -> dict:
    """Splits one input shard by gather group: one file per group it has rows for, at most `groups`
    (default: one group per output shard) whatever the number of output shards. A stage shard is
    bounded by rows_per_shard, so the whole input shard is read at once."""
    table = storage.parquet_file(path).read(columns=columns)
    keys = shuffle_keys(table.column("id"), seed)
    table = table.append_column(SHUFFLE, pa.array(keys, pa.uint64()))
    shard = (keys % np.uint64(parts)).astype(np.int64)
    group = group_of(shard, parts, groups or parts)
    return {"rows": write_parts(storage, f"{work}/scatter", writer, table, group)}


def gather_group_task(
    storage: Storage,
    *,
    work: str,
    group: int,
    parts: int,
    shards: dict[int, str],
    folder: str,
    schema_from: str,
    columns: list[str],
    chash: str,
) -> dict:
    """Writes the output shards `shards` (number -> name) of one gather group, each sorted by shuffle
    key, with their stats sidecars."""
    table = read_part(storage, f"{work}/scatter", group, scatter_schema(storage, schema_from, columns))
    shard = (table.column(SHUFFLE).to_numpy() % np.uint64(parts)).astype(np.int64)
    order = np.argsort(shard, kind="stable")  # each shard's rows in the order the exchange read them
    shard = shard[order]
    rows = nbytes = 0
    for j, name in sorted(shards.items()):
        lo, hi = np.searchsorted(shard, j, side="left"), np.searchsorted(shard, j, side="right")
        written = write_shard(
            storage, table.take(pa.array(order[lo:hi])), name=name, folder=folder, group=group, work=work, chash=chash
        )
        rows, nbytes = rows + written["rows"], nbytes + written["bytes"]
    return {"rows": rows, "bytes": nbytes}


def gather_task(
    storage: Storage, *, work: str, j: int, name: str, folder: str, schema_from: str, columns: list[str], chash: str
) -> dict:
    """Writes output shard j and its sidecar, when the scatter made one group per output shard."""
    table = read_part(storage, f"{work}/scatter", j, scatter_schema(storage, schema_from, columns))
    return write_shard(storage, table, name=name, folder=folder, group=j, work=work, chash=chash)


def scatter_schema(storage: Storage, schema_from: str, columns: list[str]) -> pa.Schema:
    schema = storage.parquet_file(schema_from).schema_arrow
    return pa.schema([schema.field(c) for c in columns] + [pa.field(SHUFFLE, pa.uint64())])


def write_shard(
    storage: Storage, table: pa.Table, *, name: str, folder: str, group: int, work: str, chash: str
) -> dict:
    """One output shard (its rows sorted by shuffle key, then id) and its sidecar, written last."""
    started = time.perf_counter()
    table = table.sort_by([(SHUFFLE, "ascending"), ("id", "ascending")]).drop_columns([SHUFFLE])
    writer = AtomicParquetWriter(storage, storage.path(folder, f"{name}.parquet"), table.schema)
    writer.write(table)
    writer.commit()
    nbytes = text_bytes(table)
    task = Task(key=name, input_path=f"{work}/scatter/p{group:05d}", fingerprint=chash)
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
