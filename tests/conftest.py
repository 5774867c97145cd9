"""Shared fixtures: one real local Ray for the whole session, and small configs over real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
LABELLED = REPO / "data" / "labelled"  # labelled evaluation sets (tweets, COLD comments)
BAD = REPO / "tests" / "data" / "bad"


@pytest.fixture(scope="session")
def ray_local():
    """A real Ray started in-process, as `winnow run` does, shared by the tests that need one."""
    import ray

    from pipeline.ray_setup import ensure_ray

    os.environ.pop("RAY_ADDRESS", None)
    # workers import what tests define (a toy stage's phase functions) from tests/, as a user's would from their package
    tests = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([tests, *filter(None, [os.environ.get("PYTHONPATH")])])
    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def default_folder_list() -> list[str]:
    """Every output folder under configs/default.yaml, in order (a stage named twice has two)."""
    stages = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())["stages"]
    return ["00_ingest", *(f"{i + 1:02d}_{s['name']}" for i, s in enumerate(stages))]


def default_folders() -> dict[str, str]:
    """Stage name -> its first output folder under configs/default.yaml (folders carry the position)."""
    folders: dict[str, str] = {}
    for folder in default_folder_list():
        folders.setdefault(folder[3:], folder)
    return folders


def write_config(tmp_path: Path, inputs: list[dict], stages: list[dict] | None = None, **extra) -> Path:
    """Writes a pipeline YAML into tmp_path and returns its path."""
    data = {
        "input": inputs,
        "output": str(tmp_path / "out"),
        "stages": stages if stages is not None else default_stages(),
    }
    data.update(extra)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def default_stages() -> list[dict]:
    return [{"name": "normalize"}, {"name": "min_length", "min_chars": 50}]


def sample_inputs() -> list[dict]:
    """Three real inputs in three formats (plain JSONL, zstd JSONL, Parquet), zh and en."""
    return [
        {"path": str(SAMPLE / "en" / "ccnet-head.jsonl"), "source": "ccnet-en"},
        {"path": str(SAMPLE / "zh" / "wikipedia.jsonl.zst"), "source": "wikipedia-zh", "lang": "zh"},
        {"path": str(LABELLED / "en" / "tweets.parquet"), "source": "tweets-en", "lang": "en", "url_field": None},
    ]


@pytest.fixture(scope="session")
def weighted_run(tmp_path_factory, ray_local) -> Path:
    """configs/default.yaml, all of it through weights and export, on the whole bundled sample; only the
    slow encoder safety members (MiniLM, e5) are left out (they have their own tests). Returns the config
    file; the output folder is `out/` beside it."""
    from pipeline.runner import Runner
    from winnow.config import load_config

    tmp = tmp_path_factory.mktemp("weighted")
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    for spec in data["input"]:
        spec["path"] = str(REPO / spec["path"])
    for stage in data["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety":
            stage["members"] = [m for m in stage["members"] if m["name"] not in ("minilm", "e5")]
    data["output"] = str(tmp / "out")
    config = tmp / "pipeline.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    Runner(load_config(config), progress=False).run_all()
    return config
