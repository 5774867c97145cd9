"""`line_dedup`: lines (or sentences, or paragraphs) repeated across the whole corpus, removed from the
documents that carry them, the documents kept.

Boilerplate is what many documents share: a site's footer, a forum's "reply" row, a newsletter's
unsubscribe line. CCNet removes paragraphs repeated across a snapshot; Baichuan 2 dedups sentences
and paragraphs before documents. Two modes:
- `remove_all` (default): a unit seen in at least `min_docs` documents is boilerplate, removed
  everywhere;
- `keep_first`: every copy after the first (in ingest order) is removed, whatever the count.

Keys are counted through the partitioned exchange (stages/line_dedup/phases.py), planned for memory
like document dedup, and the same for any number of workers. The report `_line_dedup.json` lists the
most removed units with their text.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.config import StrictModel
from pipeline.exchange import PhaseTask
from pipeline.layout import REMOVED_DIR
from pipeline.stage import Stage
from stages.dedup.planner import plan_stage
from stages.line_dedup.apply import LineDedupApply

HERE = "stages.line_dedup.phases"
BYTES_PER_UNIT = 60  # a line of web text, for the memory plan


class LineDedupConfig(StrictModel):
    unit: Literal["line", "paragraph"] = Field(
        "line", description="line: lines (Chinese also split after 。！？); paragraph: blocks between blank lines."
    )
    mode: Literal["remove_all", "keep_first"] = Field(
        "remove_all",
        description="remove_all: units in at least min_docs documents go everywhere; keep_first: every copy after the first goes.",
    )
    min_docs: int = Field(5, ge=2, description="remove_all: documents a unit must appear in to count as boilerplate.")
    min_unit_chars: int = Field(
        10,
        ge=1,
        description="Units shorter than this (after normalising) are never counted or removed: short lines are common in any text.",
    )
    min_doc_chars: int = Field(
        50, ge=0, description="A document left with fewer characters is dropped (reason line-dedup-too-short)."
    )
    partitions: int | None = Field(
        None,
        gt=0,
        description="Hash partitions of the exchange; empty: planned from the corpus and memory per worker.",
    )
    memory_per_worker_mb: int | None = Field(
        None, gt=0, description="Memory a worker may use; empty: Ray's memory divided by its CPUs."
    )
    keep_work: bool = Field(False, description="Keep the exchange files (_work/) after the stage finishes.")


class LineDedup(Stage):
    """Counts units over every shard, then removes the chosen ones from each document."""

    name = "line_dedup"
    version = "1"
    Config = LineDedupConfig
    corpus_wide: ClassVar[bool] = True
    rewrites: ClassVar[bool] = True

    @classmethod
    def keeps_work(cls, config: LineDedupConfig) -> bool:
        return config.keep_work

    @classmethod
    def run_phases(cls, ctx) -> None:
        cfg = ctx.config
        p = plan_stage(
            ctx,
            records_per_doc=lambda docs, text_bytes: max(1, -(-text_bytes // max(1, docs * BYTES_PER_UNIT))),
            verifies=False,
        )
        parts, work = p.partitions, ctx.work
        keys = ctx.run_tasks(
            "keys",
            [
                PhaseTask(
                    f"s{i:05d}",
                    f"{HERE}:keys_task",
                    dict(
                        work=work,
                        path=t.input_path,
                        shard=i,
                        parts=parts,
                        unit=cfg.unit,
                        min_chars=cfg.min_unit_chars,
                        batch_rows=ctx.batch_rows,
                    ),
                )
                for i, t in enumerate(ctx.inputs)
            ],
        )
        counts = ctx.run_tasks(
            "count",
            [
                PhaseTask(
                    f"p{j:05d}",
                    f"{HERE}:count_task",
                    dict(work=work, j=j, mode=cfg.mode, min_docs=cfg.min_docs, shards=len(ctx.inputs)),
                )
                for j in range(parts)
            ],
        )
        apply = dict(
            config=cfg,
            storage_uri=ctx.storage.uri,
            work=work,
            shard_index={t.key: i for i, t in enumerate(ctx.inputs)},
        )
        ctx.map_shards(LineDedupApply, apply)
        top = sorted((tuple(x) for r in counts.values() for x in r["top"]), key=lambda kd: (-kd[1], kd[0]))[:50]
        examples: dict[str, str] = {}
        if top:
            found = ctx.run_tasks(
                "examples",
                [
                    PhaseTask(
                        t.key,
                        f"{HERE}:examples_task",
                        dict(
                            path=ctx.storage.path(ctx.folder, REMOVED_DIR, f"{t.key}.parquet"),
                            keys=[k for k, _ in top],
                        ),
                    )
                    for t in ctx.inputs
                ],
            )
            for key in sorted(found):
                for k, text in found[key].items():
                    examples.setdefault(k, text)
        report = {
            "mode": cfg.mode,
            "unit": cfg.unit,
            "min_docs": cfg.min_docs,
            "partitions": parts,
            "docs": sum(r["docs"] for r in keys.values()),
            "unit_records": sum(r["records"] for r in keys.values()),
            "units_removed": sum(r["removals"] for r in counts.values()),
            "distinct_units_removed": sum(r["keys_removed"] for r in counts.values()),
            "top": [{"docs": d, "text": examples.get(str(k), "")} for k, d in top],
        }
        ctx.storage.write_json(ctx.storage.path(ctx.folder, "_line_dedup.json"), report)
