"""The last phase of a dedup stage, as a map over its shards: each row joined with its resolved cluster."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.stage import StageOutput
from pipeline.storage import Storage
from stages.dedup.driver import read_resolved


class DedupApply:
    """The last phase as a map stage: joins each shard's rows with their resolved clusters, writes
    `dup_cluster` (the survivor's id) and `dup_cluster_size` (or the `columns` given: semantic dedup
    writes `sem_cluster` and `sem_cluster_size`), and drops non-survivors in drop mode."""

    version = "1"

    def __init__(
        self,
        *,
        storage_uri: str,
        work: str,
        shard_index: dict[str, int],
        method: str,
        name: str,
        mode: str,
        columns: tuple[str, str] = ("dup_cluster", "dup_cluster_size"),
    ):
        self.storage = Storage(storage_uri)
        self.cluster_col, self.size_col = columns
        self.work, self.shard_index, self.method, self.name, self.mode = work, shard_index, method, name, mode
        self.lookup: dict[int, tuple[str, int]] = {}
        self.row = 0

    def start_shard(self, key: str) -> None:
        self.row = 0
        self.lookup = read_resolved(self.storage, self.work, self.shard_index[key])

    def __call__(self, table: pa.Table) -> StageOutput:
        n = table.num_rows
        ids = table.column("id").to_pylist()
        cluster, size, keep = list(ids), np.ones(n, dtype=np.int64), np.ones(n, dtype=bool)
        for i in range(n):
            hit = self.lookup.get(self.row + i)
            if hit is not None:
                cluster[i], size[i] = hit
                keep[i] = hit[0] == ids[i]
        self.row += n
        for col in (self.cluster_col, self.size_col):
            if col in table.column_names:
                table = table.drop_columns([col])
        table = table.append_column(self.cluster_col, pa.array(cluster, pa.string())).append_column(
            self.size_col, pa.array(size, pa.int64())
        )
        if self.mode == "keep":
            keep = np.ones(n, dtype=bool)
        reasons = pa.array(np.where(keep, None, f"{self.method}-dup"), pa.string())
        return StageOutput(table, keep, reasons, {self.size_col: size.astype(float)})
