"""Shared fixtures: one real local Ray for the whole session, and small configs over real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
BAD = REPO / "tests" / "data" / "bad"


@pytest.fixture(scope="session")
def ray_local():
    """A real Ray started in-process, as `winnow run` does, shared by the tests that need one."""
    import ray

    from pipeline.runner import ensure_ray

    os.environ.pop("RAY_ADDRESS", None)
    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def write_config(tmp_path: Path, inputs: list[dict], stages: list[dict] | None = None, **extra) -> Path:
    """Writes a pipeline YAML into tmp_path and returns its path."""
    data = {"input": inputs, "output": str(tmp_path / "out"), "stages": stages if stages is not None else default_stages()}
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
        {"path": str(SAMPLE / "en" / "tweets.parquet"), "source": "tweets-en", "lang": "en", "url_field": None},
    ]
