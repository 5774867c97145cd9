"""The README's cluster path, for real: `ray start --head`, then `ray job submit --working-dir .` of
`python -m pipeline.cli run`, then the output is checked like a local run's.

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
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.stats import collect_funnel

from conftest import REPO, sample_inputs, write_config

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="teardown finds the head's processes through /proc"),
]

VENV_BIN = Path(sys.executable).parent  # not resolved: a venv's python is a symlink to the base interpreter
RAY = VENV_BIN / "ray"
MARKER_VAR = "WINNOW_TEST_RAY_CLUSTER"
JOB_TIMEOUT_S = 300
# The upload is the source tree only: .gitignore (.venv/, /out/, ...) and Ray's default excludes
# (.git, .venv, __pycache__) already apply; the sample data is read from the repo by absolute path,
# while the word lists and blocklists the stages load (data/lexicons, data/blocklists) travel with the job.
UPLOAD_EXCLUDES = ["/data/sample/", "/tests/data/", "/out/", ".pytest_cache/", "*.egg-info/", "__pycache__/"]
MAX_UPLOAD_MIB = 20.0  # about 16 MiB today: 14 MiB of it the shipped classifier models, which jobs need


@dataclass
class Head:
    dashboard: str  # http://127.0.0.1:<port>, where the job server lives
    env: dict[str, str]
    temp_dir: str
    marker: str

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(RAY), *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _free_ports(n: int) -> list[int]:
    """n distinct ports free right now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster_env(marker: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_JOB_ID"):
        env.pop(var, None)  # this process may have set them (ray.init in the ray_local fixture)
    env["RAY_AUTH_MODE"] = "disabled"  # see the module docstring
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["PYTHONUNBUFFERED"] = "1"
    env[MARKER_VAR] = marker
    return env


def _marked_processes(marker: str) -> dict[int, str]:
    """pid -> executable name of the live processes whose environment carries this head's marker."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue  # (a zombie's environ reads empty, so zombies drop out here too)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:  # gone, or not ours
            continue
        found[int(entry)] = os.path.basename(argv0)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _terminate(pids: list[int], grace_s: float) -> list[int]:
    """SIGTERM, wait up to grace_s, SIGKILL the rest; returns the pids that needed SIGKILL."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    stubborn = [p for p in pids if _alive(p)]
    for pid in stubborn:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stubborn


def _stop_head(marker: str, grace_s: float = 30) -> list[str]:
    """What `ray stop` does, limited to this head's processes: raylet first (its workers, agents and the job
    driver go with it), then everything else, then the GCS last; each SIGTERMed, SIGKILLed after its share
    of the grace period (all at once, raylet and GCS wait on each other and sit out the whole grace).
    Returns a description of what needed SIGKILL."""
    forced = []
    for pick in (lambda name: name == "raylet", lambda name: name != "gcs_server", lambda name: True):
        procs = _marked_processes(marker)
        chosen = [pid for pid, name in procs.items() if pick(name)]
        forced += [f"{pid} ({procs[pid]})" for pid in _terminate(chosen, grace_s / 3)]
    forced += [f"{pid} ({name}, appeared late)" for pid, name in _marked_processes(marker).items()
               if pid in _terminate([pid], 0)]
    return forced


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"({path}: {err})"


def _head_logs(temp_dir: str) -> str:
    logs = Path(temp_dir) / "session_latest" / "logs"
    return "\n".join(f"--- {name} (tail) ---\n{_tail(logs / name)}" for name in ("dashboard.log", "raylet.err", "gcs_server.err"))


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of its own (2 CPUs, dashboard with the job server on 127.0.0.1), stopped afterwards."""
    from ray._private.utils import get_dashboard_dependency_error, get_ray_client_dependency_error

    if (missing := get_dashboard_dependency_error()) is not None:
        # The job server lives on the dashboard, and the `ray job` CLI refuses to run without it too.
        pytest.fail(f"`ray start --include-dashboard` and `ray job submit` need ray[default] (aiohttp, grpcio, ...): {missing}. "
                    "Install it (`pip install 'ray[default]==<ray version>'`) or deselect with -m 'not cluster'.", pytrace=False)
    temp_dir = tempfile.mkdtemp(prefix="/tmp/wr")
    marker = uuid.uuid4().hex
    gcs, dashboard, agent, client = _free_ports(4)
    head = Head(f"http://127.0.0.1:{dashboard}", _cluster_env(marker), temp_dir, marker)
    # No --node-ip-address=127.0.0.1: Ray maps a loopback node address to the machine's own IP anyway.
    args = ["start", "--head", f"--port={gcs}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agent}",
            "--num-cpus=2", "--num-gpus=0", f"--object-store-memory={256 * 1024**2}",
            f"--temp-dir={temp_dir}", "--disable-usage-stats", "--log-color=false"]
    if get_ray_client_dependency_error() is None:  # ray[default] brings grpcio, and with it a client server on 10001
        args.append(f"--ray-client-server-port={client}")
    try:
        started = head.ray(*args, timeout=180)
        assert started.returncode == 0, f"ray start failed ({started.returncode}):\n{started.stdout}\n{started.stderr}\n{_head_logs(temp_dir)}"
        yield head
    finally:
        forced = _stop_head(marker)
        if forced:
            print(f"ray head teardown: SIGKILLed {len(forced)} process(es) that outlived SIGTERM: {forced}")
        shutil.rmtree(temp_dir, ignore_errors=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STATUS_LINES = [  # how `ray job status` words each state (ray/dashboard/modules/job/cli.py, _log_job_status)
    (re.compile(r"Job '[^']+' succeeded"), "SUCCEEDED"),
    (re.compile(r"Job '[^']+' failed"), "FAILED"),
    (re.compile(r"Job '[^']+' was stopped"), "STOPPED"),
]


def _job_status(head: Head, job_id: str) -> tuple[str | None, str]:
    """(PENDING / RUNNING / SUCCEEDED / FAILED / STOPPED, or None if it could not be read; the CLI's output)."""
    res = head.ray("job", "status", "--log-color=false", "--address", head.dashboard, job_id, timeout=60)
    text = _ANSI.sub("", res.stdout + res.stderr)
    for pattern, status in _STATUS_LINES:
        if pattern.search(text):
            return status, text
    found = re.search(r"Status for job '[^']+': (\w+)", text)
    return (found.group(1) if found else None), text


def _uploaded_package(temp_dir: str) -> Path:
    """The working dir as the head unpacked it (runtime_resources/working_dir_files/_ray_pkg_<hash>)."""
    pkgs = [p for p in (Path(temp_dir) / "session_latest" / "runtime_resources" / "working_dir_files").glob("_ray_pkg_*") if p.is_dir()]
    assert len(pkgs) == 1, f"expected one unpacked working_dir package on the head, found {pkgs}"
    return pkgs[0]


def test_job_submit_runs_the_pipeline_on_a_cluster(ray_head: Head, tmp_path):
    config = write_config(tmp_path, sample_inputs(), ingest={"rows_per_shard": 2000})
    out = tmp_path / "out"
    job_id = f"winnow-test-{uuid.uuid4().hex[:8]}"

    # The entrypoint is run by a shell on the head, its words joined by spaces: quote the path.
    submit = ray_head.ray(
        "job", "submit", "--log-color=false", "--address", ray_head.dashboard, "--submission-id", job_id,
        "--working-dir", str(REPO), "--runtime-env-json", json.dumps({"excludes": UPLOAD_EXCLUDES}),
        "--no-wait", "--", "python", "-m", "pipeline.cli", "run", shlex.quote(str(config)),
        timeout=180,
    )
    submit_output = submit.stdout + submit.stderr
    assert submit.returncode == 0, f"ray job submit failed:\n{submit_output}\n{_head_logs(ray_head.temp_dir)}"

    status, status_text, deadline = None, "", time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status, status_text = _job_status(ray_head, job_id)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        time.sleep(3)
    else:
        ray_head.ray("job", "stop", "--address", ray_head.dashboard, job_id, timeout=60)

    logs = ray_head.ray("job", "logs", "--address", ray_head.dashboard, job_id, timeout=60)
    job_logs = logs.stdout + logs.stderr
    assert status == "SUCCEEDED", (
        f"job {job_id}: {status or 'no status'} after at most {JOB_TIMEOUT_S}s\n--- ray job status ---\n{status_text}\n"
        f"--- ray job logs ---\n{job_logs}\n--- ray job submit ---\n{submit_output}\n{_head_logs(ray_head.temp_dir)}"
    )
    assert "done in" in job_logs, job_logs  # the CLI's last line: it ran to the end, funnel printed

    # What was uploaded: the source tree, not the venv, the data or earlier outputs.
    pkg = _uploaded_package(ray_head.temp_dir)
    size_mib = sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file()) / 2**20
    assert (pkg / "pipeline" / "cli.py").is_file() and (pkg / "stages").is_dir()
    assert not any((pkg / name).exists() for name in (".venv", ".git", "data/sample", "out")), sorted(os.listdir(pkg))
    assert size_mib < MAX_UPLOAD_MIB, f"working dir upload is {size_mib:.1f} MiB; exclude more: {sorted(os.listdir(pkg))}"

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
