"""The stage contract.

A map stage is a small class: a frozen `Config` model, a `version` string, and `__call__` from an
Arrow table to a `StageOutput` (the table with any added columns, a keep mask, a reason per dropped
row). Its `__init__` is where a model stage loads its model, once per worker. Stages know nothing of
Ray, files or shards: the runner feeds them batches and does the bookkeeping.

Global stages (dedup) need several passes over all shards, so they get their own multi-phase driver;
they still end in a map over shards that follows this contract, so rejects and stats work the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa

from pipeline.config import StrictModel


@dataclass(frozen=True)
class StageOutput:
    """What a map stage returns for one batch."""

    table: pa.Table
    keep: np.ndarray  # bool, one per row
    reasons: pa.Array  # string, null where kept; a short slug (`too-short`) saying why a row was dropped
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # numeric signals to histogram in stats

    def __post_init__(self):
        n = self.table.num_rows
        if len(self.keep) != n or len(self.reasons) != n:
            raise ValueError(f"stage output has {n} rows but keep has {len(self.keep)} and reasons {len(self.reasons)}")
        dropped_without_reason = (~self.keep) & np.asarray(self.reasons.is_null(), dtype=bool)
        if dropped_without_reason.any():
            raise ValueError(f"{int(dropped_without_reason.sum())} dropped rows have no reason; every drop must say why")


def keep_all(table: pa.Table) -> StageOutput:
    """For annotating stages that drop nothing."""
    return StageOutput(table, np.ones(table.num_rows, dtype=bool), pa.nulls(table.num_rows, pa.string()))


def drop_where(table: pa.Table, drop: np.ndarray, reason: str, signals: dict | None = None) -> StageOutput:
    """For single-rule filters: drop rows where `drop` is true, all with the same reason."""
    drop = np.asarray(drop, dtype=bool)
    reasons = pa.array(np.where(drop, reason, None), pa.string())
    return StageOutput(table, ~drop, reasons, signals or {})


class MapStage:
    """Base class for row-wise stages. Subclasses set `name`, `version`, `Config` and `__call__`."""

    name: ClassVar[str]
    version: ClassVar[str]  # bump when behaviour changes, so finished shards are redone
    Config: ClassVar[type[StrictModel]]
    uses_gpu: ClassVar[bool] = False  # model stages may ask the runner for a GPU
    stateful: ClassVar[bool] = False  # True: run in an actor pool, __init__ loads once per worker

    def __init__(self, config: StrictModel):
        self.config = config

    def start_shard(self, key: str) -> None:
        """Called before the first batch of each shard; stages with per-shard state (seen URLs,
        per-domain caps) reset it here, so results never depend on which worker saw what first."""

    def __call__(self, table: pa.Table) -> StageOutput:  # pragma: no cover - interface
        raise NotImplementedError
