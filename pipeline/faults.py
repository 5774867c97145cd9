"""Fault injection, for the fault-tolerance tests and for anyone checking a deployment: set
WINNOW_FAULTS to kill or slow a process at a named point, for real (SIGKILL, no cleanup).

    WINNOW_FAULTS="kill:map:02_min_length,kill:task:records,slow:map:01_normalize:2"
    WINNOW_FAULTS_DIR=/some/shared/folder     # where "already fired" markers go (each kill fires once)

Points: `map:<stage folder>` (a worker, after the first batch of a shard is written, before the
shard commits), `task:<phase>` (a worker, after a shuffle or component task computed its result,
before its marker: `records`, `buckets`, `cc/r001/large`, `scatter-tasks`, ...), `driver:<stage
folder>` (the driver, after the first shard of a stage finished) and `driver:<phase>` (the driver,
after a dedup phase finished). Unset, this costs one environment lookup.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time


def hit(point: str) -> None:
    spec = os.environ.get("WINNOW_FAULTS")
    if not spec:
        return
    for item in spec.split(","):
        kind, _, rest = item.strip().partition(":")
        if kind == "kill" and rest == point and _first_time(item):
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "slow":
            where, _, seconds = rest.rpartition(":")
            if where == point:
                time.sleep(float(seconds))


def _first_time(item: str) -> bool:
    """True once per fault across all processes that share WINNOW_FAULTS_DIR."""
    folder = os.environ.get("WINNOW_FAULTS_DIR")
    if not folder:
        raise RuntimeError(
            "WINNOW_FAULTS with a kill needs WINNOW_FAULTS_DIR (a folder every process can write), so each kill fires once"
        )
    os.makedirs(folder, exist_ok=True)
    try:
        with open(os.path.join(folder, hashlib.sha256(item.encode()).hexdigest()[:16]), "x") as f:
            f.write(item)
        return True
    except FileExistsError:
        return False
