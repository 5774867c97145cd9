"""Real Ray clusters for the tests, started with the venv's `ray` CLI next to whatever else runs on
the machine: a head (and worker nodes) on private ports and a private temp dir, every process
marked through its environment so teardown stops exactly these (never `ray stop`, which would take
down every Ray of the user). tests/test_job_submit.py's docstring explains the choices.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO

VENV_BIN = Path(sys.executable).parent  # not resolved: a venv's python is a symlink to the base interpreter
RAY = VENV_BIN / "ray"
MARKER_VAR = "WINNOW_TEST_RAY_CLUSTER"


@dataclass
class Head:
    dashboard: str  # http://127.0.0.1:<port>, where the job server lives
    env: dict[str, str]
    temp_dir: str
    marker: str
    gcs_port: int = 0
    nodes: list[str] = field(default_factory=list)  # markers of the worker nodes started with start_worker_node

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RAY), *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )


def free_ports(n: int) -> list[int]:
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


def cluster_env(marker: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_JOB_ID"):
        env.pop(var, None)  # this process may have set them (ray.init in the ray_local fixture)
    env["RAY_AUTH_MODE"] = "disabled"  # see the module docstring
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["PYTHONUNBUFFERED"] = "1"
    env[MARKER_VAR] = marker
    return env


def marked_processes(marker: str) -> dict[int, str]:
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


def stop_marked(marker: str, grace_s: float = 30) -> list[str]:
    """What `ray stop` does, limited to this head's processes: raylet first (its workers, agents and the job
    driver go with it), then everything else, then the GCS last; each SIGTERMed, SIGKILLed after its share
    of the grace period (all at once, raylet and GCS wait on each other and sit out the whole grace).
    Returns a description of what needed SIGKILL."""
    forced = []
    for pick in (lambda name: name == "raylet", lambda name: name != "gcs_server", lambda name: True):
        procs = marked_processes(marker)
        chosen = [pid for pid, name in procs.items() if pick(name)]
        forced += [f"{pid} ({procs[pid]})" for pid in _terminate(chosen, grace_s / 3)]
    forced += [
        f"{pid} ({name}, appeared late)"
        for pid, name in marked_processes(marker).items()
        if pid in _terminate([pid], 0)
    ]
    return forced


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"({path}: {err})"


def head_logs(temp_dir: str) -> str:
    logs = Path(temp_dir) / "session_latest" / "logs"
    return "\n".join(
        f"--- {name} (tail) ---\n{_tail(logs / name)}" for name in ("dashboard.log", "raylet.err", "gcs_server.err")
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STATUS_LINES = [  # how `ray job status` words each state (ray/dashboard/modules/job/cli.py, _log_job_status)
    (re.compile(r"Job '[^']+' succeeded"), "SUCCEEDED"),
    (re.compile(r"Job '[^']+' failed"), "FAILED"),
    (re.compile(r"Job '[^']+' was stopped"), "STOPPED"),
]


def job_status(head: Head, job_id: str) -> tuple[str | None, str]:
    """(PENDING / RUNNING / SUCCEEDED / FAILED / STOPPED, or None if it could not be read; the CLI's output)."""
    res = head.ray("job", "status", "--log-color=false", "--address", head.dashboard, job_id, timeout=60)
    text = _ANSI.sub("", res.stdout + res.stderr)
    for pattern, status in _STATUS_LINES:
        if pattern.search(text):
            return status, text
    found = re.search(r"Status for job '[^']+': (\w+)", text)
    return (found.group(1) if found else None), text


def start_head(num_cpus: int = 2, resources: dict | None = None, dashboard: bool = True) -> Head:
    """`ray start --head` on free ports with its own temp dir; raises with the logs if it fails."""
    import json

    from ray._private.utils import get_ray_client_dependency_error

    temp_dir = tempfile.mkdtemp(prefix="/tmp/wr")
    marker = uuid.uuid4().hex
    gcs, dash, agent, client = free_ports(4)
    head = Head(f"http://127.0.0.1:{dash}", cluster_env(marker), temp_dir, marker, gcs_port=gcs)
    # No --node-ip-address=127.0.0.1: Ray maps a loopback node address to the machine's own IP anyway.
    args = [
        "start",
        "--head",
        f"--port={gcs}",
        f"--include-dashboard={'true' if dashboard else 'false'}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={agent}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--object-store-memory={256 * 1024**2}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        "--log-color=false",
    ]
    if resources:
        args.append(f"--resources={json.dumps(resources)}")
    if get_ray_client_dependency_error() is None:  # ray[default] brings grpcio, and with it a client server on 10001
        args.append(f"--ray-client-server-port={client}")
    started = head.ray(*args, timeout=180)
    if started.returncode != 0:
        stop_marked(marker)
        raise RuntimeError(
            f"ray start failed ({started.returncode}):\n{started.stdout}\n{started.stderr}\n{head_logs(temp_dir)}"
        )
    return head


def start_worker_node(head: Head, num_cpus: int = 1, resources: dict | None = None) -> str:
    """A second raylet on this machine joining `head` (its own ports and its own marker, so it can be
    stopped alone, as a node failure); returns the marker."""
    import json

    marker = uuid.uuid4().hex
    env = cluster_env(marker)
    manager, objects, agent, metrics, runtime_env, lo = free_ports(6)
    args = [
        str(RAY),
        "start",
        f"--address=127.0.0.1:{head.gcs_port}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--object-store-memory={256 * 1024**2}",
        f"--node-manager-port={manager}",
        f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--min-worker-port={lo + 1000 if lo < 60000 else 20000}",
        f"--max-worker-port={(lo + 1000 if lo < 60000 else 20000) + 200}",
        "--disable-usage-stats",
        "--log-color=false",
    ]
    if resources:
        args.append(f"--resources={json.dumps(resources)}")
    started = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        stop_marked(marker)
        raise RuntimeError(
            f"ray start (worker node) failed ({started.returncode}):\n{started.stdout}\n{started.stderr}"
        )
    head.nodes.append(marker)
    return marker


def stop_cluster(head: Head) -> list[str]:
    forced = []
    for marker in head.nodes:
        forced += stop_marked(marker)
    forced += stop_marked(head.marker)
    import shutil

    shutil.rmtree(head.temp_dir, ignore_errors=True)
    return forced
