"""The README's cluster path, for real: `ray start --head`, then `ray job submit --working-dir .` of
`python -m winnow run`, then the output is checked like a local run's.

No mocks: a separate Ray head is started with the venv's `ray` CLI, the repository is uploaded as the
job's working directory, and the job's driver connects through RAY_ADDRESS (set by Ray's job
supervisor) as it would on a real cluster. Deselect with `-m "not cluster"`.

Needs ray[default] (the job server lives on the dashboard, and the `ray job` CLI refuses to run without
it); the test fails with that message if it is missing.

Things this test is careful about, on a machine where other Rays may run:

- Authentication. Ray 2.60 turns token auth on for `ray start` when RAY_AUTH_MODE is unset and
  ~/.ray/auth_token exists, and an in-process `ray.init()` (the `ray_local` fixture, `winnow run`)
  both creates that file and sets RAY_AUTH_MODE=token in *this* process's environment. Whether the
  head ends up with auth on would then depend on test order and on what ran on the machine before.
  So every `ray` command here gets RAY_AUTH_MODE=disabled explicitly, the head and everything it
  spawns (dashboard, job supervisor, the job's driver and workers) inherit it, and the driver's
  `ray.init(address=RAY_ADDRESS)` never auto-enables auth for an explicit address. Acceptable for a
  throwaway cluster that lives about 30 s; the job API (dashboard) listens on 127.0.0.1 only.
- Isolation from other Rays. Every port the head opens that has a fixed default (GCS 6379, client
  server 10001, dashboard 8265, dashboard agent 52365) gets a free port, and `--temp-dir` is private,
  so `ray_current_cluster` goes there and a later bare `ray.init()` in this process does not join
  this head. The temp dir is short (/tmp/wrXXXX) because Ray puts Unix sockets under it.
- Teardown. `ray stop` kills every Ray process of the user on the machine by name, which would take
  down the session's own embedded Ray (`ray_local`) and any other test run. Instead every process of
  this head carries a unique marker in its environment (set on `ray start`, inherited by raylet,
  GCS, dashboard, workers, the job supervisor and the job driver, which Ray starts in its own session
  so process groups would miss it); teardown stops exactly those, in `ray stop`'s order.
- The job's `python`. Ray runs the entrypoint in a shell with the head's environment, so the head is
  started with the venv's bin first on PATH; `pipeline`/`stages` come from the uploaded working dir.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import REPO, sample_inputs, write_config
from ray_cluster import Head, head_logs, job_status, start_head, stop_cluster

from pipeline.stats import collect_funnel

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="teardown finds the head's processes through /proc"
    ),
]

JOB_TIMEOUT_S = 300
# The upload is the source tree only: .gitignore (.venv/, /out/, ...) and Ray's default excludes
# (.git, .venv, __pycache__) already apply; the sample data is read from the repo by absolute path,
# while the word lists and blocklists the stages load (data/lexicons, data/blocklists) travel with the job.
# What a job does not need: the sample (the test passes its own input), test and benchmark data, labelled sets.
UPLOAD_EXCLUDES = [
    "/data/sample/",
    "/data/labelled/",
    "/tests/data/",
    "/benchmarks/data/",
    "/out/",
    ".pytest_cache/",
    "*.egg-info/",
    "__pycache__/",
]
MAX_UPLOAD_MIB = 20.0  # about 17 MiB today: 14 MiB of it the shipped classifier models, which jobs need


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of its own (2 CPUs, dashboard with the job server on 127.0.0.1), stopped afterwards."""
    from ray._private.utils import get_dashboard_dependency_error

    if (missing := get_dashboard_dependency_error()) is not None:
        # The job server lives on the dashboard, and the `ray job` CLI refuses to run without it too.
        pytest.fail(
            f"`ray start --include-dashboard` and `ray job submit` need ray[default] (aiohttp, grpcio, ...): {missing}. "
            "Install it (`pip install 'ray[default]==<ray version>'`) or deselect with -m 'not cluster'.",
            pytrace=False,
        )
    head = start_head(num_cpus=2)
    try:
        yield head
    finally:
        forced = stop_cluster(head)
        if forced:
            print(f"ray head teardown: SIGKILLed {len(forced)} process(es) that outlived SIGTERM: {forced}")


def _uploaded_package(temp_dir: str) -> Path:
    """The working dir as the head unpacked it (runtime_resources/working_dir_files/_ray_pkg_<hash>)."""
    pkgs = [
        p
        for p in (Path(temp_dir) / "session_latest" / "runtime_resources" / "working_dir_files").glob("_ray_pkg_*")
        if p.is_dir()
    ]
    assert len(pkgs) == 1, f"expected one unpacked working_dir package on the head, found {pkgs}"
    return pkgs[0]


def test_job_submit_runs_the_pipeline_on_a_cluster(ray_head: Head, tmp_path):
    config = write_config(tmp_path, sample_inputs(), ingest={"rows_per_shard": 2000})
    out = tmp_path / "out"
    job_id = f"winnow-test-{uuid.uuid4().hex[:8]}"

    # The entrypoint is run by a shell on the head, its words joined by spaces: quote the path.
    submit = ray_head.ray(
        "job",
        "submit",
        "--log-color=false",
        "--address",
        ray_head.dashboard,
        "--submission-id",
        job_id,
        "--working-dir",
        str(REPO),
        "--runtime-env-json",
        json.dumps({"excludes": UPLOAD_EXCLUDES}),
        "--no-wait",
        "--",
        "python",
        "-m",
        "winnow",
        "run",
        shlex.quote(str(config)),
        timeout=180,
    )
    submit_output = submit.stdout + submit.stderr
    assert submit.returncode == 0, f"ray job submit failed:\n{submit_output}\n{head_logs(ray_head.temp_dir)}"

    status, status_text, deadline = None, "", time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status, status_text = job_status(ray_head, job_id)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        time.sleep(3)
    else:
        ray_head.ray("job", "stop", "--address", ray_head.dashboard, job_id, timeout=60)

    logs = ray_head.ray("job", "logs", "--address", ray_head.dashboard, job_id, timeout=60)
    job_logs = logs.stdout + logs.stderr
    assert status == "SUCCEEDED", (
        f"job {job_id}: {status or 'no status'} after at most {JOB_TIMEOUT_S}s\n--- ray job status ---\n{status_text}\n"
        f"--- ray job logs ---\n{job_logs}\n--- ray job submit ---\n{submit_output}\n{head_logs(ray_head.temp_dir)}"
    )
    assert "done in" in job_logs, job_logs  # the CLI's last line: it ran to the end, funnel printed

    # What was uploaded: the source tree, not the venv, the data or earlier outputs.
    pkg = _uploaded_package(ray_head.temp_dir)
    size_mib = sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file()) / 2**20
    assert (pkg / "winnow" / "cli.py").is_file() and (pkg / "pipeline").is_dir() and (pkg / "stages").is_dir()
    assert not any((pkg / name).exists() for name in (".venv", ".git", "data/sample", "out")), sorted(os.listdir(pkg))
    assert size_mib < MAX_UPLOAD_MIB, (
        f"working dir upload is {size_mib:.1f} MiB; exclude more: {sorted(os.listdir(pkg))}"
    )

    manifest = json.loads((out / "02_min_length" / "_manifest.json").read_text())
    assert manifest["status"] == "complete", manifest

    funnel = collect_funnel(str(out))
    assert [row.folder for row in funnel] == ["00_ingest", "01_normalize", "02_min_length"]
    for row in funnel:
        assert row.status == "complete", row
        assert row.rows_in == row.rows_out + row.rows_rejected, row
    ingest, normalize, min_length = funnel
    assert ingest.rows_out > 0 and ingest.shards > 3  # 3 inputs, the 17k-row one in several 2000-row shards
    assert normalize.rows_in == ingest.rows_out
    assert min_length.rows_in == normalize.rows_out
