"""The export stage: the final shards a trainer reads, and the dataset card beside them.

It is not a map: every output shard draws documents from every input shard (a global, seeded
shuffle through files, stages/export/shuffle.py).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from pipeline.config import StrictModel
from pipeline.exchange import PhaseTask
from pipeline.layout import read_sidecars
from pipeline.shards import Task
from pipeline.stage import Stage, StageError
from stages.export.card import write_card
from stages.export.shuffle import count_groups, count_parts, export_columns, group_shards, output_names

REQUIRED_COLUMNS = ["id", "text", "source", "lang"]


class ExportConfig(StrictModel):
    shard_docs: int | None = Field(
        None, gt=0, description="Documents per output shard (about: documents go to shards by a hash)."
    )
    shard_bytes: int | None = Field(
        None, gt=0, description="UTF-8 text bytes per output shard (about); the files are smaller, being compressed."
    )
    seed: int = Field(
        0, ge=0, description="Shuffle seed: the same seed and input give the same shards, byte for byte."
    )
    columns: list[str] | None = Field(
        None,
        description="Columns to export; empty: id, text, source, lang, url, weight, tokens_est, the main scores and the weight terms.",
    )
    dataset_name: str | None = Field(None, description="Dataset name for the card; empty: the output folder's name.")
    gather_bytes: int = Field(
        256_000_000,
        gt=0,
        description="UTF-8 text bytes a gather task reads (about): a scatter task writes one file per "
        "gather group, total text bytes / gather_bytes of them at most, whatever the shard size.",
    )

    @model_validator(mode="after")
    def _one_size(self):
        if self.shard_docs is not None and self.shard_bytes is not None:
            raise ValueError("set shard_docs or shard_bytes, not both")
        if self.columns is not None:
            missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
            if missing:
                raise ValueError(f"columns must include {missing}")
        return self

    def target_shard_bytes(self) -> int | None:
        if self.shard_docs is None and self.shard_bytes is None:
            return 256_000_000  # a few hundred MB per file suits object storage and data loaders
        return self.shard_bytes


class Export(Stage):
    """Final shards `shard-NNNNN-of-MMMMM.parquet`, shuffled, plus `dataset.json` and `README.md`.

    Phases: scatter (each input shard split by gather group, a group being a range of output shards),
    gather (each group's output shards, each sorted by its shuffle key, with its sidecar); then the
    dataset card, rewritten on every run."""

    name = "export"
    version = "export_v2"  # v2: the exchange goes through gather groups (same shards, other work files)
    Config = ExportConfig
    corpus_wide: ClassVar[bool] = True
    writes_final: ClassVar[bool] = True

    @classmethod
    def reads(cls, config: ExportConfig) -> dict[str, tuple]:
        return {c: ("columns", i) for i, c in enumerate(config.columns or [])}

    @classmethod
    def plan(cls, ctx) -> list[Task]:
        """One task per output shard; their number follows from the upstream documents or bytes."""
        sidecars = ctx.upstream_sidecars()
        rows = sum(sc["rows_out"] for sc in sidecars)
        parts = count_parts(
            rows, sum(sc["bytes_out"] for sc in sidecars), ctx.config.shard_docs, ctx.config.target_shard_bytes()
        )
        return [Task(key=n, input_path=ctx.upstream, fingerprint=ctx.config_hash) for n in output_names(parts)]

    @classmethod
    def run_phases(cls, ctx) -> None:
        cfg, inputs = ctx.config, ctx.inputs
        if not inputs:
            raise StageError(f"{ctx.upstream} has no shards to export")
        try:
            columns = export_columns(ctx.storage.parquet_file(inputs[0].input_path).schema_arrow, cfg.columns)
        except ValueError as err:
            raise StageError(str(err)) from None
        names = [t.key for t in ctx.tasks]
        text_total = sum(sc["bytes_out"] for sc in ctx.upstream_sidecars())
        groups = count_groups(len(names), text_total, cfg.gather_bytes)
        common = dict(columns=columns, seed=cfg.seed, parts=len(names), groups=groups, work=ctx.work)
        here = "stages.export.shuffle"
        ctx.run_tasks(
            "scatter-tasks",
            [
                PhaseTask(t.key, f"{here}:scatter_task", dict(path=t.input_path, writer=t.key, **common))
                for t in inputs
            ],
        )
        todo = {t.key for t in ctx.todo}
        gathers = []
        for g in range(groups):
            shards = {j: names[j] for j in group_shards(g, len(names), groups) if names[j] in todo}
            if shards:
                kwargs = dict(work=ctx.work, group=g, parts=len(names), shards=shards, folder=ctx.folder)
                kwargs.update(schema_from=inputs[0].input_path, columns=columns, chash=ctx.config_hash)
                gathers.append(PhaseTask(f"g{g:05d}", f"{here}:gather_group_task", kwargs))
        ctx.run_tasks("gather-tasks", gathers)
        ctx.done_keys = list(names)

    @classmethod
    def finish(cls, ctx) -> None:
        """Checks that every upstream document was exported once, then writes the dataset card."""
        rows = sum(sc["rows_out"] for sc in ctx.upstream_sidecars())
        exported = sum(sc["rows_out"] for sc in read_sidecars(ctx.storage, ctx.folder))
        if exported != rows:  # conservation across the reshuffle
            raise StageError(f"{rows} documents in {ctx.upstream} but {exported} in the exported shards")
        write_card(ctx.storage, ctx.folder, ctx.upstream, name=ctx.config.dataset_name)
