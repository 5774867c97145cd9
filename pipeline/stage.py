"""The stage contract: what every stage declares, and the map stage, the one-phase kind.

A stage is a class. It declares, from its validated config alone (no model is loaded on the driver):
- `Config`, a frozen pydantic model of its settings, and `version` (bump it to redo finished shards);
- `resources(config)`: CPUs and GPUs per task and a memory estimate for planning;
- `reads(config)` and `writes(config)`: the columns it needs and the ones it adds, checked in order when
  the config loads, so a misnamed column fails before any work with the config's file and line;
- `plan(ctx)`: its tasks (by default one per upstream shard);
- `run_phases(ctx)`: its phases, built from the generic machinery the context offers (`ctx.map_shards`
  for a map over shards, `ctx.run_tasks` for a phase of checkpointed tasks such as a partitioned
  exchange or connected components; code between them runs on the driver, e.g. a combine);
- `finish(ctx)`: work after the stage is complete, whether or not anything ran (e.g. a dataset card).

The runner does the rest for every stage alike: staleness, manifests, sidecars, resume, orphan cleanup.

A map stage is a `MapStage`: `__call__` from an Arrow batch to a `StageOutput` (the table with any
added or rewritten columns, a keep mask, a reason per dropped row). Its `__init__` is where a model
stage loads its model, once per worker. Map stages know nothing of Ray, files or shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pyarrow as pa

from pipeline.config import StrictModel
from pipeline.schema import CORE_COLUMNS

if TYPE_CHECKING:  # the context is built by the runner; stages only receive it
    from pipeline.context import StageContext


@dataclass(frozen=True)
class StageOutput:
    """What a map stage returns for one batch."""

    table: pa.Table
    keep: np.ndarray  # bool, one per row
    reasons: pa.Array  # string, null where kept; a short slug (`too-short`) saying why a row was dropped
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # numeric signals to histogram in stats
    # A rewriting stage (one that changes `text`) says what it took out: one row per removed span with
    # `row` (int, the row of `table`), `span` (the text removed, separators included), `reason`, and
    # optionally `replacement` (what was put in its place, e.g. a typed placeholder; "" when nothing).
    # The runner keeps them in `<stage>/removed/` and checks characters:
    # in + replacements = out + rejected + removed.
    removed: pa.Table | None = None

    def __post_init__(self):
        n = self.table.num_rows
        if len(self.keep) != n or len(self.reasons) != n:
            raise ValueError(
                f"stage output has {n} rows but keep has {len(self.keep)} and reasons {len(self.reasons)}"
            )
        if self.removed is not None:
            missing = {"row", "span", "reason"} - set(self.removed.column_names)
            if missing:
                raise ValueError(f"removed spans need the columns row, span and reason; missing {sorted(missing)}")
        dropped_without_reason = (~self.keep) & np.asarray(self.reasons.is_null(), dtype=bool)
        if dropped_without_reason.any():
            raise ValueError(
                f"{int(dropped_without_reason.sum())} dropped rows have no reason; every drop must say why"
            )


REMOVED_SCHEMA = pa.schema([("row", pa.int64()), ("span", pa.large_string()), ("reason", pa.string())])


def removed_spans(
    rows: list[int], spans: list[str], reasons: list[str], replacements: list[str] | None = None
) -> pa.Table:
    """The `removed` table of a rewriting stage, from parallel lists."""
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "span": pa.array(spans, pa.large_string()),
            "reason": pa.array(reasons, pa.string()),
        },
        schema=REMOVED_SCHEMA,
    )
    if replacements is not None:
        table = table.append_column("replacement", pa.array(replacements, pa.string()))
    return table


def keep_all(table: pa.Table) -> StageOutput:
    """For annotating stages that drop nothing."""
    return StageOutput(table, np.ones(table.num_rows, dtype=bool), pa.nulls(table.num_rows, pa.string()))


def drop_where(table: pa.Table, drop: np.ndarray, reason: str, signals: dict | None = None) -> StageOutput:
    """For single-rule filters: drop rows where `drop` is true, all with the same reason."""
    drop = np.asarray(drop, dtype=bool)
    reasons = pa.array(np.where(drop, reason, None), pa.string())
    return StageOutput(table, ~drop, reasons, signals or {})


@dataclass(frozen=True)
class Resources:
    """What one task of a stage asks for."""

    cpus: float = 1
    gpus: float = 0  # asked for only when the cluster has GPUs (a CPU-only cluster runs the CPU path)
    memory_mb: int | None = None  # an estimate for planning; None: no more than a map over one batch


class StageError(RuntimeError):
    """A stage cannot go on (it would not fit, its inputs contradict its settings); the message says why."""


class Stage:
    """Base of every stage; see the module docstring for the contract."""

    name: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[StrictModel]]
    corpus_wide: ClassVar[bool] = False  # any shard's result depends on every input shard (dedup, weights, export)
    stateful: ClassVar[bool] = False  # map stages: run in actors that build the stage once (models)
    writes_final: ClassVar[bool] = False  # writes the final shards: must be the last stage
    rewrites: ClassVar[bool] = False  # changes `text` by removing spans, each reported in StageOutput.removed

    @classmethod
    def resources(cls, config: StrictModel) -> Resources:
        return Resources()

    @classmethod
    def check(cls, config: StrictModel) -> list[tuple[tuple, str]]:
        """Problems beyond the settings' types (a missing input file), each (key path, message)."""
        return []

    @classmethod
    def reads(cls, config: StrictModel) -> dict[str, tuple]:
        """Columns the stage cannot do without, each with the config key that names it (() for none)."""
        return {}

    @classmethod
    def writes(cls, config: StrictModel) -> set[str]:
        """Columns the stage adds (names, or patterns such as `h_*` for a family of signal columns)."""
        return set()

    @classmethod
    def hash_payload(cls, config: StrictModel) -> dict:
        """What decides the stage's output besides its input: a change redoes its shards."""
        return {"version": cls.version, "config": config.model_dump(mode="json")}

    @classmethod
    def keeps_work(cls, config: StrictModel) -> bool:
        """Keep `_work/` (exchange files) after the stage completes."""
        return False

    @classmethod
    def plan(cls, ctx: StageContext) -> list:
        return list(ctx.inputs)

    @classmethod
    def run_phases(cls, ctx: StageContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def finish(cls, ctx: StageContext) -> None:
        """Called once the stage is complete, also when every shard was already up to date."""


class MapStage(Stage):
    """A row-wise stage: one phase, a map over the upstream shards. Subclasses set `name`, `version`,
    `Config` and `__call__`."""

    def __init__(self, config: StrictModel):
        self.config = config

    @classmethod
    def resources(cls, config: StrictModel) -> Resources:
        return Resources(gpus=1 if cls.wants_gpu(config) else 0)

    @classmethod
    def wants_gpu(cls, config: StrictModel) -> bool:
        return False

    @classmethod
    def run_phases(cls, ctx: StageContext) -> None:
        ctx.map_shards(cls, {"config": ctx.config}, stateful=cls.stateful)

    def start_shard(self, key: str) -> None:
        """Called before the first batch of each shard; stages with per-shard state (seen URLs,
        per-domain caps) reset it here, so results never depend on which worker saw what first."""

    def __call__(self, table: pa.Table) -> StageOutput:  # pragma: no cover - interface
        raise NotImplementedError


def core_columns() -> set[str]:
    return set(CORE_COLUMNS)
