"""`keep_intermediate: false` on a real run: each stage's kept rows go once the next stage has committed,
everything else stays, the final shards are the same bytes, a rerun of the finished run does nothing,
and a change that needs deleted rows fails naming the folder and the option."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from conftest import SAMPLE, write_config

from pipeline.runner import PipelineError, Runner
from winnow.config import load_config

INPUTS = [
    {"path": str(SAMPLE / "en" / "ccnet-head.jsonl"), "source": "ccnet-en"},
    {"path": str(SAMPLE / "zh" / "wikipedia.jsonl.zst"), "source": "wikipedia-zh", "lang": "zh"},
]
STAGES = [{"name": "normalize"}, {"name": "min_length", "min_chars": 300}, {"name": "export", "shard_docs": 40}]
FOLDERS = ["00_ingest", "01_normalize", "02_min_length"]


def _config(tmp: Path, keep: bool, stages: list[dict] = STAGES) -> Path:
    return write_config(tmp, INPUTS, stages, ingest={"rows_per_shard": 30}, keep_intermediate=keep)


def _digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.glob("*.parquet"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_local) -> tuple[Path, Path]:
    outs = []
    for keep in (True, False):
        tmp = tmp_path_factory.mktemp(f"keep-{keep}")
        Runner(load_config(_config(tmp, keep)), progress=False).run_all()
        outs.append(tmp)
    return outs[0], outs[1]


def test_kept_rows_of_intermediate_stages_go_and_everything_else_stays(runs):
    kept, dropped = (t / "out" for t in runs)
    for folder in FOLDERS:
        assert list((kept / folder).glob("part-*.parquet")), folder
        assert not list((dropped / folder).glob("*.parquet")), folder
        assert (dropped / folder / "_rows_deleted.json").exists()
        assert sorted(p.name for p in (dropped / folder / "_stats").iterdir()) == sorted(
            p.name for p in (kept / folder / "_stats").iterdir()
        )
        assert (dropped / folder / "_manifest.json").exists()
    rejects = _digests(kept / "02_min_length" / "rejects")
    assert rejects and _digests(dropped / "02_min_length" / "rejects") == rejects  # short documents, with reasons
    final = _digests(kept / "03_export")
    assert final and _digests(dropped / "03_export") == final


def test_a_finished_run_with_deleted_rows_resumes_to_nothing(runs):
    tmp = runs[1]
    reports = Runner(load_config(_config(tmp, False)), progress=False).run_all()
    assert [r.ran for r in reports] == [0, 0, 0, 0]


def test_a_change_that_needs_deleted_rows_fails_naming_the_folder_and_the_option(runs):
    tmp = runs[1]
    stages = [dict(s) for s in STAGES]
    stages[1]["min_chars"] = 500
    with pytest.raises(PipelineError, match=r"02_min_length needs the kept rows of 01_normalize.*keep_intermediate"):
        Runner(load_config(_config(tmp, False, stages)), progress=False).run_all()
    reseeded = [*STAGES[:2], {**STAGES[2], "seed": 5}]
    with pytest.raises(PipelineError, match=r"03_export needs the kept rows of 02_min_length.*keep_intermediate"):
        Runner(load_config(_config(tmp, False, reseeded)), progress=False).run_one("export")
    manifest = yaml.safe_load((tmp / "out" / "03_export" / "_manifest.json").read_text())
    assert manifest["status"] == "complete"  # the failed rerun left the finished export as it was
