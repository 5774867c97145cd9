"""What `winnow eval dedup` and `winnow eval safety` share: one stage's settings read from a YAML, and
that stage run on a labelled Parquet file through the real path (ingest, then the stage on Ray)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import yaml

from pipeline.config import load_config
from pipeline.ray_setup import ensure_ray
from pipeline.runner import Runner
from stages.registry import STAGES


def stage_settings(config: str | Path, stage: str) -> dict:
    """A stage's settings from a YAML mapping of them, or from the stage of that name in a pipeline YAML."""
    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{config}: expected a mapping of {stage} settings or a pipeline with a `{stage}` stage")
    if "stages" in data:
        matches = [s for s in data["stages"] if isinstance(s, dict) and s.get("name") == stage]
        if not matches:
            raise ValueError(f"{config}: no `{stage}` stage in its stages")
        data = matches[0]
    return {k: v for k, v in data.items() if k != "name"}


def run_stage_on_file(
    parquet: str | Path,
    stage: dict,
    work_dir: str | Path | None,
    *,
    lang_field: str | None,
    columns: list[str] | None = None,
    workers: int | None = None,
    rows_per_shard: int = 10_000,
    console=None,
) -> tuple[pa.Table, Path, object]:
    """Ingests a Parquet file with `id` and `text` (ids kept) and runs one stage on Ray.
    Returns the stage's kept rows (`columns` of them), the work folder and the runner (for reports)."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="winnow-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = {
        "path": str(Path(parquet).resolve()),
        "source": "eval",
        "format": "parquet",
        "id_field": "id",
        "text_field": "text",
        "url_field": None,
        "lang_field": lang_field,
    }
    cfg_path = work / "eval.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "input": [spec],
                "output": str(work / "out"),
                "ingest": {"rows_per_shard": rows_per_shard},
                "stages": [stage],
            }
        ),
        encoding="utf-8",
    )
    cfg = load_config(cfg_path, STAGES)
    ensure_ray(cfg.pipeline.ray)
    runner = Runner(cfg, workers=workers, console=console, progress=console is not None)
    runner.run_all()
    kept = pads.dataset(str(work / "out" / cfg.stages[0].folder), ignore_prefixes=["_", ".", "rejects"]).to_table(
        columns=columns
    )
    return kept, work, runner


def write_predictions(table: pa.Table, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
