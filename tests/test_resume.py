"""Resume: a driver killed mid-run, started again, ends with the same output as an uninterrupted run,
redoing only the shards that had not finished."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import REPO, sample_inputs, write_config


def _winnow(*args, **kwargs):
    cmd = [sys.executable, "-m", "winnow", *args]
    env = {**os.environ, "RAY_ADDRESS": ""}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
    )


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_killed_driver_resumes_to_identical_output(tmp_path):
    """Kill the whole driver process group once normalize has committed some shards; rerun; compare."""
    config = write_config(tmp_path, sample_inputs(), ingest={"rows_per_shard": 100}, ray={"num_cpus": 2, "workers": 1})
    stats_dir = tmp_path / "out" / "01_normalize" / "_stats"

    proc = _winnow("run", str(config))
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if stats_dir.exists() and len(list(stats_dir.glob("*.json"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.stdout.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in stats_dir.glob("*.json")}
    manifest = yaml.safe_load((tmp_path / "out" / "01_normalize" / "_manifest.json").read_text())
    assert manifest["status"] == "running" and len(finished) < len(manifest["inputs"])

    proc = _winnow("run", str(config))
    log = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, log
    for name, mtime in finished.items():  # shards finished before the kill were not redone
        assert (stats_dir / name).stat().st_mtime_ns == mtime, name
    assert len(list(stats_dir.glob("*.json"))) == len(manifest["inputs"])

    reference = tmp_path / "reference"
    reference.mkdir()
    ref_config = write_config(reference, sample_inputs(), ingest={"rows_per_shard": 100}, ray={"num_cpus": 2})
    proc = _winnow("run", str(ref_config))
    log = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, log
    assert _snapshot(tmp_path / "out") == _snapshot(reference / "out")
