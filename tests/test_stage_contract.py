"""The stage contract from outside `pipeline/`: a new multi-phase stage is one module and one registry line,
and column contracts fail at load time with the config's file and line."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from conftest import sample_inputs, write_config
from pydantic import Field

from pipeline.config import ConfigError, StrictModel, load_config
from pipeline.exchange import PhaseTask
from pipeline.layout import read_docs, read_manifest, read_sidecars
from pipeline.runner import Runner
from pipeline.stage import MapStage, StageOutput
from pipeline.storage import Storage
from stages.registry import STAGES

# --- a toy corpus-wide stage: count documents per source over every shard, then annotate each row -----


def count_sources(storage: Storage, *, path: str) -> dict:
    """Phase 1, one task per input shard: documents per source in that shard."""
    sources = storage.read_parquet(path, columns=["source"]).column("source").to_pylist()
    return {"counts": dict(Counter(sources))}


class SourceDocs(MapStage):
    """Adds `source_docs`: how many documents of the row's source the whole corpus holds."""

    class Config(StrictModel):
        minimum: int = Field(0, ge=0, description="Drop rows whose source has fewer documents than this.")

    name = "source_docs"
    version = "1"
    corpus_wide: ClassVar[bool] = True

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"source_docs"}

    @classmethod
    def run_phases(cls, ctx) -> None:
        results = ctx.run_tasks(
            "count", [PhaseTask(t.key, f"{__name__}:count_sources", {"path": t.input_path}) for t in ctx.inputs]
        )
        totals: Counter = Counter()
        for key in sorted(results):
            totals.update(results[key]["counts"])
        ctx.map_shards(cls, {"config": ctx.config, "totals": dict(totals)})

    def __init__(self, config, totals: dict | None = None):
        super().__init__(config)
        self.totals = totals or {}

    def __call__(self, table: pa.Table) -> StageOutput:
        counts = np.array([self.totals[s] for s in table.column("source").to_pylist()], dtype=np.int64)
        keep = counts >= self.config.minimum
        reasons = pa.array(np.where(keep, None, "small-source"), pa.string())
        return StageOutput(table.append_column("source_docs", pa.array(counts, pa.int64())), keep, reasons)


REGISTRY = {**STAGES, SourceDocs.name: SourceDocs}  # the one registry line


def test_a_toy_multi_phase_stage_runs_through_the_real_runner(tmp_path, ray_local):
    stages = [{"name": "normalize"}, {"name": "source_docs", "minimum": 300}]
    config = write_config(tmp_path, sample_inputs(), stages, ingest={"rows_per_shard": 700})
    cfg = load_config(config, REGISTRY)
    runner = Runner(cfg, progress=False)
    runner.run_all()
    storage = Storage(str(tmp_path / "out"))
    ingested = read_docs(storage, "00_ingest", ["source"]).column("source").to_pylist()
    expected = Counter(ingested)
    assert len(read_sidecars(storage, "00_ingest")) >= 2 and len(expected) == 3  # several shards, several sources
    kept = read_docs(storage, "02_source_docs", ["source", "source_docs"])
    for source, docs in zip(kept.column("source").to_pylist(), kept.column("source_docs").to_pylist()):
        assert docs == expected[source]  # corpus-wide, not per shard
    small = {s for s, n in expected.items() if n < 300}
    assert small and small.isdisjoint(kept.column("source").to_pylist())
    rejected = sum(sc["drops"].get("small-source", 0) for sc in read_sidecars(storage, "02_source_docs"))
    assert rejected == sum(expected[s] for s in small)
    assert kept.num_rows + rejected == len(ingested)  # conservation
    assert read_manifest(storage, "02_source_docs")["status"] == "complete"
    assert not storage.exists(storage.path("02_source_docs", "_work"))  # work files go once the stage completes
    # a rerun finds every shard up to date; a changed setting redoes the stage
    again = Runner(load_config(config, REGISTRY), progress=False).run_all()
    assert all(r.ran == 0 for r in again)
    data = yaml.safe_load(config.read_text())
    data["stages"][1]["minimum"] = 1
    config.write_text(yaml.safe_dump(data))
    redo = Runner(load_config(config, REGISTRY), progress=False).run_all()
    assert redo[2].ran == redo[2].total > 0 and redo[1].ran == 0
    assert read_docs(storage, "02_source_docs", ["id"]).num_rows == len(ingested)


# --- column contracts at load time ------------------------------------------------------------------


def _line_of(config_text: str, needle: str) -> int:
    return next(i for i, line in enumerate(config_text.splitlines(), 1) if needle in line)


def test_boost_on_a_column_no_stage_writes_fails_at_load_with_file_and_line(tmp_path):
    stages = [
        {"name": "normalize"},
        {"name": "weights", "boosts": [{"column": "quality_edu", "threshold": 0.5, "factor": 2}]},
    ]
    config = write_config(tmp_path, sample_inputs(), stages)
    with pytest.raises(ConfigError) as err:
        load_config(config, STAGES)
    message = str(err.value)
    assert f"{config}:{_line_of(config.read_text(), 'column: quality_edu')}:" in message
    assert "stages[1].boosts[0].column" in message and "'quality_edu'" in message


def test_boost_on_a_column_an_earlier_stage_writes_loads(tmp_path):
    stages = [
        {"name": "quality", "models": [{"name": "ft", "models": {"zh": "quality-zh", "en": "quality-en"}}]},
        {"name": "weights", "boosts": [{"column": "quality_ft", "threshold": 0.5, "factor": 2}]},
    ]
    assert load_config(write_config(tmp_path, sample_inputs(), stages), STAGES).stages[1].name == "weights"


def test_export_column_that_does_not_exist_fails_at_load(tmp_path):
    stages = [{"name": "normalize"}, {"name": "export", "columns": ["id", "text", "source", "lang", "weight"]}]
    config = write_config(tmp_path, sample_inputs(), stages)
    with pytest.raises(ConfigError) as err:
        load_config(config, STAGES)
    assert f"{config}:" in str(err.value) and "stages[1].columns[4]" in str(err.value) and "'weight'" in str(err.value)


def test_input_fields_count_as_written_columns(tmp_path):
    """Ingest writes the input's own fields: the CCNet sample carries `perplexity`-style extras."""
    spec = sample_inputs()[0]
    ccnet_fields = set(yaml.safe_load(open(spec["path"], encoding="utf-8").readline()))
    extra = sorted(ccnet_fields - {"text", "url", "id"})[0]
    stages = [{"name": "export", "columns": ["id", "text", "source", "lang", extra]}]
    assert load_config(write_config(tmp_path, [spec], stages), STAGES).stages[0].config.columns[-1] == extra


def test_declared_writes_cover_what_stages_write(weighted_run):
    """Every column a stage of the default pipeline adds is among the columns it declares."""
    import fnmatch

    cfg = load_config(weighted_run, STAGES)
    storage = Storage(cfg.pipeline.output)
    previous = set(pc_columns(storage, "00_ingest"))
    checked = 0
    for spec in cfg.stages:
        if spec.stage_cls.writes_final:
            continue
        columns = set(pc_columns(storage, spec.folder))
        added = columns - previous
        declared = spec.stage_cls.writes(spec.config)
        undeclared = [c for c in added if not any(fnmatch.fnmatchcase(c, p) for p in declared)]
        assert undeclared == [], f"{spec.folder} writes {undeclared} without declaring them"
        checked += bool(added)
        previous = columns
    assert checked >= 5


def pc_columns(storage: Storage, folder: str) -> list[str]:
    names = sorted(n for n in storage.list_files(storage.path(folder), suffix=".parquet") if not n.startswith("."))
    return storage.parquet_file(storage.path(folder, names[0])).schema_arrow.names if names else []


def test_unused_helpers_are_real():
    assert pc.sum(pa.array([1, 2])).as_py() == 3  # keeps the pyarrow.compute import honest for ruff
