"""Peak memory of a dedup stage, estimated before it starts, so it refuses up front instead of dying
mid-run, and chooses how many partitions each shuffle needs.

The estimates are deliberately simple and pessimistic, from the document count, the largest shard
(rows and text bytes) and the settings; each figure names the setting that moves it:

- records, per worker: one shard's bucket records (rows x records per doc x 32 B, three copies while
  partitioning) plus one batch of shingle work (about 16 B per text byte) -> `ingest.rows_per_shard`,
  `batch_rows`;
- buckets, per partition: records / partitions x 32 B, four copies while sorting -> `partitions`;
- components, per partition: edges (at most two per clustered document, both directions) x 16 B, four
  copies -> `partitions`;
- verify, per worker: two shards of text, twice -> `ingest.rows_per_shard`;
- disk: all exchange files at once (uncompressed size, an upper bound) -> the output location.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.resources import free_disk_bytes, worker_budget
from pipeline.stage import StageError

MB = 1 << 20
MAX_PARTITIONS = 4096
TARGET_PARTITION = 256 * MB  # even with memory to spare, partitions stay this small: flat memory, more parallelism
_FIXED = 200 * MB  # interpreter, pyarrow, numpy, the stage's own tables


class MemoryPlanError(RuntimeError):
    """The run would not fit; the message says which setting to change."""


@dataclass
class Plan:
    partitions: int
    budget: int
    peaks: dict[str, int] = field(default_factory=dict)
    disk: int = 0

    def describe(self) -> str:
        peaks = ", ".join(f"{k} {v / MB:,.0f} MB" for k, v in self.peaks.items())
        return f"{self.partitions} partitions; peak per worker: {peaks} (budget {self.budget / MB:,.0f} MB); work files up to {self.disk / MB:,.0f} MB"


def plan(
    *,
    docs: int,
    max_shard_rows: int,
    max_shard_bytes: int,
    batch_rows: int,
    records_per_doc: int,
    verifies: bool,
    budget: int,
    partitions: int | None = None,
    free_disk: int | None = None,
) -> Plan:
    records = docs * records_per_doc * 32
    edges = docs * 2 * 2 * 16
    nodes = docs * 64
    batch_bytes = max_shard_bytes * min(1.0, batch_rows / max(1, max_shard_rows))
    records_peak = _FIXED + max_shard_rows * records_per_doc * 32 * 3 + int(batch_bytes * 16)
    verify_peak = _FIXED + max_shard_bytes * 4 if verifies else 0
    if records_peak > budget:
        raise MemoryPlanError(
            f"the signature phase needs about {records_peak / MB:,.0f} MB per worker (largest shard: {max_shard_rows:,} rows, "
            f"{max_shard_bytes / MB:,.0f} MB of text) but a worker has {budget / MB:,.0f} MB: lower `ingest.rows_per_shard` "
            "or `batch_rows`, or raise `memory_per_worker_mb`"
        )
    if verify_peak > budget:
        raise MemoryPlanError(
            f"candidate checks hold two shards of text, about {verify_peak / MB:,.0f} MB, but a worker has {budget / MB:,.0f} MB: "
            "lower `ingest.rows_per_shard`, or set `verify: none`"
        )
    shuffled = max(records, edges, nodes) * 4
    usable = max(1, budget - _FIXED)
    needed = max(1, math.ceil(shuffled / usable))
    if partitions is None:
        partitions = max(needed, math.ceil(shuffled / TARGET_PARTITION), 1)
        if partitions > MAX_PARTITIONS:
            raise MemoryPlanError(
                f"{docs:,} documents need {partitions:,} partitions at {budget / MB:,.0f} MB per worker (at most {MAX_PARTITIONS}): "
                "raise `memory_per_worker_mb` (bigger workers) or dedup in several stages by source"
            )
    elif partitions < needed:
        raise MemoryPlanError(
            f"`partitions: {partitions}` puts about {shuffled / partitions / MB:,.0f} MB in one partition but a worker has "
            f"{usable / MB:,.0f} MB to spare: set `partitions` to at least {needed} (or leave it empty to plan it)"
        )
    peaks = {
        "records": records_peak,
        "buckets": _FIXED + records * 4 // partitions,
        "components": _FIXED + edges * 4 // partitions,
    }
    if verifies:
        peaks["verify"] = verify_peak
    disk = records + edges * 2 + nodes * 3
    if free_disk is not None and disk > free_disk:
        raise MemoryPlanError(
            f"the shuffle files may take up to {disk / MB:,.0f} MB but the output disk has {free_disk / MB:,.0f} MB free: "
            "free space or write `output` somewhere larger"
        )
    return Plan(partitions, budget, peaks, disk)


def plan_stage(ctx, *, records_per_doc: Callable[[int, int], int], verifies: bool) -> Plan:
    """The plan of an exchange stage from its upstream shards' sidecars (documents, largest shard in rows
    and text bytes) and its settings (`partitions`, `memory_per_worker_mb`); refuses with StageError
    before any work when the run would not fit. `records_per_doc(docs, text_bytes)` estimates records."""
    sidecars = ctx.upstream_sidecars()
    outs = [o for sc in sidecars for o in sc["outputs"]]
    docs = sum(o["rows"] for o in outs)
    per_shard_bytes = [sc.get("bytes_out", 0) / max(1, len(sc["outputs"])) for sc in sidecars]
    try:
        p = plan(
            docs=docs,
            max_shard_rows=max((o["rows"] for o in outs), default=0),
            max_shard_bytes=int(max(per_shard_bytes, default=0)),
            batch_rows=ctx.batch_rows,
            records_per_doc=records_per_doc(docs, sum(sc.get("bytes_out", 0) for sc in sidecars)),
            verifies=verifies,
            budget=worker_budget(ctx.config.memory_per_worker_mb),
            partitions=ctx.config.partitions,
            free_disk=free_disk_bytes(ctx.storage.root),
        )
    except MemoryPlanError as err:
        raise StageError(f"will not fit, so not started: {err}") from None
    ctx.say(f"{ctx.folder}: plan: {p.describe()}")
    return p
