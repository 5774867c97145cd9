"""The corpus-wide phases of line dedup, each a checkpointed task per shard or per partition.

1. `keys` (per shard): every document's distinct unit keys as records (key, node), partitioned by key;
   node = shard index << 32 | row, as in document dedup, so nodes are stable and say where a row is.
2. `count` (per partition): documents per key. `remove_all`: every record of a key seen in at least
   `min_docs` documents is a removal; `keep_first`: every record but the first node's. Removals go to
   the partition of their shard; the partition's most common keys come back for the report.
3. the apply map (stages/line_dedup/apply.py), then `examples` (per shard): the text of the report's
   top keys, read back from the stage's `removed/` spans.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.exchange import partition_of, read_part, write_parts
from pipeline.storage import Storage
from stages.line_dedup.units import is_chinese, normal_form, split_units, unit_keys

RECORDS = pa.schema([("key", pa.uint64()), ("node", pa.uint64())])
ROW_BITS = np.uint64(32)
ROW_MASK = np.uint64(0xFFFFFFFF)
TOP = 50


def doc_keys(text: str, lang: str | None, unit: str, min_chars: int) -> tuple[list[str], list[int | None]]:
    units = split_units(text, unit, is_chinese(lang, text))
    return units, unit_keys(units, min_chars)


def keys_task(
    storage: Storage, *, work: str, path: str, shard: int, parts: int, unit: str, min_chars: int, batch_rows: int
) -> dict:
    keys, nodes = [], []
    row = 0
    for batch in storage.parquet_file(path).iter_batches(batch_size=batch_rows, columns=["text", "lang"]):
        for text, lang in zip(batch.column("text").to_pylist(), batch.column("lang").to_pylist()):
            distinct = {k for k in doc_keys(text or "", lang, unit, min_chars)[1] if k is not None}
            keys.extend(distinct)
            nodes.extend([(shard << 32) | row] * len(distinct))
            row += 1
    table = pa.table({"key": pa.array(keys, pa.uint64()), "node": pa.array(nodes, pa.uint64())})
    write_parts(
        storage, f"{work}/records", f"s{shard:05d}", table, partition_of(table.column("key").to_numpy(), parts)
    )
    return {"docs": row, "records": len(keys)}


def count_task(storage: Storage, *, work: str, j: int, mode: str, min_docs: int, shards: int) -> dict:
    t = read_part(storage, f"{work}/records", j, RECORDS)
    key, node = t.column("key").to_numpy(), t.column("node").to_numpy()
    order = np.lexsort((node, key))
    key, node = key[order], node[order]
    start = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    group = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    docs = np.diff(np.r_[first, len(key)])
    per_record = docs[group] if len(key) else np.zeros(0, np.int64)
    if mode == "remove_all":
        removal = per_record >= min_docs
    else:  # keep_first: the first document (smallest node: ingest order) keeps it, every later copy goes
        removal = ~start
    removed = pa.table({"key": pa.array(key[removal], pa.uint64()), "node": pa.array(node[removal], pa.uint64())})
    write_parts(storage, f"{work}/removals", f"p{j:05d}", removed, (node[removal] >> ROW_BITS).astype(np.int64))
    counted = docs >= (min_docs if mode == "remove_all" else 2)
    top = np.argsort(-docs[counted], kind="stable")[:TOP]
    return {
        "records": len(key),
        "removals": int(removal.sum()),
        "keys_removed": int(counted.sum()),
        "top": [[int(k), int(d)] for k, d in zip(key[first][counted][top], docs[counted][top])],
    }


def read_removals(storage: Storage, work: str, shard: int) -> dict[int, set[int]]:
    """row -> keys to remove from that row, for one shard."""
    t = read_part(storage, f"{work}/removals", shard, RECORDS)
    rows: dict[int, set[int]] = {}
    for key, node in zip(t.column("key").to_numpy().tolist(), t.column("node").to_numpy().tolist()):
        rows.setdefault(node & 0xFFFFFFFF, set()).add(key)
    return rows


def examples_task(storage: Storage, *, path: str, keys: list[int]) -> dict:
    """For the report: the text of the top keys, from one shard's removed spans."""
    if not storage.exists(path):
        return {}
    wanted = set(keys)
    found: dict[str, str] = {}
    for span in storage.read_parquet(path, columns=["span"]).column("span").to_pylist():
        norm = normal_form(span)
        key = unit_keys([span], 0)[0]
        if key in wanted and str(key) not in found:
            found[str(key)] = norm[:300]
            if len(found) == len(wanted):
                break
    return found
