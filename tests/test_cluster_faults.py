"""Fault tolerance, for real: processes are SIGKILLed in the middle of work (WINNOW_FAULTS, see
pipeline/faults.py), a second Ray node is stopped in the middle of a stage, the driver is killed and
the same command run again. Every time the output must equal an uninterrupted run's, byte for byte,
and every stage must conserve its documents.

The pipeline: normalize, min_length, exact dedup (drop), MinHash dedup (keep), weights, export, on
three real inputs in shards of 2,000 documents, so the map stages, both shuffles, connected
components and the export's scatter/gather all run on several tasks.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import REPO, sample_inputs, write_config
from ray_cluster import (
    cluster_env,
    job_status,
    marked_processes,
    start_head,
    start_worker_node,
    stop_cluster,
    stop_marked,
)

from pipeline.runner import Runner
from pipeline.stats import collect_funnel
from winnow.config import load_config

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc"),
]

STAGES = [
    {"name": "normalize"},
    {"name": "min_length", "min_chars": 50},
    {"name": "exact_dedup", "keep_work": True},  # work files kept to check what a resumed run reused
    {"name": "minhash_dedup", "mode": "keep", "keep_work": True},
    {"name": "weights"},
    {"name": "export", "shard_docs": 2500},
]


def fault_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, sample_inputs(), STAGES, ingest={"rows_per_shard": 2000})


def parquet_digests(out: Path) -> dict[str, str]:
    """sha256 of every Parquet file a run leaves (shards, rejects, exports), by path; work files aside."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*.parquet"))
        if "_work" not in p.parts
    }


def assert_conserved(out: Path) -> None:
    for row in collect_funnel(str(out)):
        assert row.status == "complete", row
        assert row.rows_in == row.rows_out + row.rows_rejected, row


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ray_local) -> dict[str, str]:
    """The uninterrupted run (in this process, on the session's Ray)."""
    tmp = tmp_path_factory.mktemp("reference")
    cfg = load_config(fault_config(tmp))
    Runner(cfg, progress=False).run_all()
    out = Path(cfg.pipeline.output)
    assert_conserved(out)
    digests = parquet_digests(out)
    assert any(k.startswith("06_export/shard-") for k in digests) and any("/rejects/" in k for k in digests)
    return digests


def run_cli(config: Path, faults: str | None, fault_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`winnow run` in its own process with its own embedded Ray; whatever Ray processes a killed driver
    leaves behind are stopped afterwards (they carry a marker in their environment)."""
    marker = uuid.uuid4().hex
    env = cluster_env(marker)
    env.pop("WINNOW_FAULTS", None)
    if faults:
        env.update(WINNOW_FAULTS=faults, WINNOW_FAULTS_DIR=str(fault_dir))
    try:
        return subprocess.run(
            [sys.executable, "-m", "winnow", "run", str(config), "--no-report", "--num-cpus", "2"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        stop_marked(marker, grace_s=10)


def fired(fault_dir: Path) -> set[str]:
    return {p.read_text() for p in fault_dir.iterdir()} if fault_dir.exists() else set()


def test_workers_killed_in_a_map_stage_a_dedup_shuffle_and_the_export(tmp_path, reference):
    faults = "kill:map:02_min_length,kill:task:records,kill:task:cc/r000/large,kill:task:scatter-tasks"
    proc = run_cli(fault_config(tmp_path), faults, tmp_path / "faults")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert fired(tmp_path / "faults") == set(faults.split(","))  # each worker really died once
    out = tmp_path / "out"
    assert_conserved(out)
    assert parquet_digests(out) == reference


def test_driver_killed_then_run_again_resumes(tmp_path, reference):
    """The driver dies after the first round of connected components (of the exact dedup stage); the
    rerun skips the finished stages, takes round 0 from its checkpoint instead of redoing it, and ends
    with the same bytes."""
    config = fault_config(tmp_path)
    proc = run_cli(config, "kill:driver:cc/r000/small", tmp_path / "faults")
    assert proc.returncode == -9, proc.stderr[-4000:]
    out = tmp_path / "out"
    statuses = {row.folder: row.status for row in collect_funnel(str(out))}
    assert statuses["02_min_length"] == "complete" and statuses["03_exact_dedup"] == "running", statuses
    round0 = sorted((out / "03_exact_dedup" / "_work").glob("*/cc/r000/*/_done/*.json"))
    assert round0, "round 0 left no checkpoints"
    before = {p: p.stat().st_mtime_ns for p in round0}

    again = run_cli(config, None, tmp_path / "faults")
    assert again.returncode == 0, again.stderr[-4000:]
    for folder in ("00_ingest", "01_normalize", "02_min_length"):
        assert f"{folder}: all " in again.stderr and "nothing to do" in again.stderr, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in round0} == before  # round 0 was read back, not recomputed
    assert_conserved(out)
    assert parquet_digests(out) == reference


# --- two nodes -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_nodes():
    """A head with 1 CPU and a second node with 1 CPU, both on 127.0.0.1 (separate raylets)."""
    head = start_head(num_cpus=1, resources={"head_node": 1})
    try:
        start_worker_node(head, num_cpus=1, resources={"second_node": 1})
        yield head
    finally:
        stop_cluster(head)


def submit(head, config: Path, env_vars: dict | None = None) -> str:
    job_id = f"winnow-{uuid.uuid4().hex[:8]}"
    runtime_env = {
        "excludes": ["/data/sample/", "/tests/data/", "/out/", ".pytest_cache/", "__pycache__/"],
        "env_vars": env_vars or {},
    }
    res = head.ray(
        "job",
        "submit",
        "--log-color=false",
        "--address",
        head.dashboard,
        "--submission-id",
        job_id,
        "--working-dir",
        str(REPO),
        "--runtime-env-json",
        json.dumps(runtime_env),
        "--no-wait",
        "--",
        "python",
        "-m",
        "winnow",
        "run",
        str(config),
        "--no-report",
        timeout=180,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return job_id


def wait_job(head, job_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = job_status(head, job_id)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(2)
    return "TIMEOUT"


def job_logs(head, job_id: str) -> str:
    res = head.ray("job", "logs", "--address", head.dashboard, job_id, timeout=60)
    return res.stdout + res.stderr


def nodes_that_worked(out: Path) -> set[str]:
    return {json.loads(p.read_text()).get("node") for p in out.glob("0*/_stats/*.json")} - {None}


def test_a_job_on_two_nodes_uses_both(two_nodes, tmp_path, reference):
    config = fault_config(tmp_path)
    job = submit(two_nodes, config)
    status = wait_job(two_nodes, job)
    assert status == "SUCCEEDED", job_logs(two_nodes, job)[-4000:]
    out = tmp_path / "out"
    assert len(nodes_that_worked(out)) == 2  # shard tasks ran on the head and on the second node
    assert_conserved(out)
    assert parquet_digests(out) == reference


def test_job_driver_killed_then_job_submitted_again(two_nodes, tmp_path, reference):
    """The job's driver is SIGKILLed after the first round of connected components: the job fails; the
    same job submitted again finishes from the checkpoints with the same bytes."""
    config = fault_config(tmp_path)
    faults = {"WINNOW_FAULTS": "kill:driver:cc/r000/small", "WINNOW_FAULTS_DIR": str(tmp_path / "faults")}
    first = submit(two_nodes, config, faults)
    assert wait_job(two_nodes, first) == "FAILED"
    out = tmp_path / "out"
    assert {row.folder: row.status for row in collect_funnel(str(out))}.get("03_exact_dedup") == "running"
    second = submit(two_nodes, config, faults)  # the kill already fired once: this run goes through
    assert wait_job(two_nodes, second) == "SUCCEEDED", job_logs(two_nodes, second)[-4000:]
    logs = job_logs(two_nodes, second)
    assert "00_ingest: all " in logs and "02_min_length: all " in logs  # finished stages were not redone
    assert_conserved(out)
    assert parquet_digests(out) == reference


def test_second_node_stopped_in_the_middle_of_a_stage(two_nodes, tmp_path, reference):
    """Shard tasks of one stage are slowed to 3 s; once some of them finished, the second node is
    stopped (its raylet and workers killed). The job finishes on the head with the same bytes."""
    config = fault_config(tmp_path)
    job = submit(two_nodes, config, {"WINNOW_FAULTS": "slow:map:01_normalize:3"})
    out = tmp_path / "out"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "01_normalize" / "_stats").glob("*.json"))) < 2:
        time.sleep(0.5)
    done_before = len(list((out / "01_normalize" / "_stats").glob("*.json")))
    assert 0 < done_before < 11, done_before  # stopped in the middle of the stage
    second = two_nodes.nodes[0]
    assert marked_processes(second)
    stop_marked(second, grace_s=5)
    status = wait_job(two_nodes, job)
    assert status == "SUCCEEDED", job_logs(two_nodes, job)[-4000:]
    assert_conserved(out)
    assert parquet_digests(out) == reference
