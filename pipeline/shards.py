"""Shard tasks, their stats sidecars and the per-stage manifest.

A task is the unit of work, resume and stats: one input file for ingest, one input shard for a map
stage. A task is done when its sidecar `_stats/<key>.json` exists, names the same input
fingerprint and config hash as now, and every output it lists exists. The sidecar is written last,
so a crash at any point before it simply means the task runs again.

Fingerprints chain: a map task's input fingerprint is its upstream sidecar's output fingerprint,
which hashes (input fingerprint, config hash, part name). Outputs are deterministic in their input
and config, so this is as good as hashing the bytes, and it makes staleness travel downstream
without reading any data.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

from pipeline import __version__
from pipeline.config import config_hash
from pipeline.layout import MANIFEST, REJECTS_DIR, REMOVED_DIR, read_manifest, read_sidecars, sidecar_path
from pipeline.storage import Storage

__all__ = [
    "Task",
    "build_sidecar",
    "is_done",
    "output_fingerprint",
    "raw_file_fingerprint",
    "read_manifest",
    "read_sidecars",
    "sidecar_path",
    "write_manifest",
]


@dataclass(frozen=True)
class Task:
    """One shard of work for one stage."""

    key: str  # output base name, e.g. part-3f2a19c0-0001
    input_path: str  # raw input file (ingest) or upstream shard path
    fingerprint: str  # identity of the input; a change means redo
    relpath: str = ""  # ingest only: the input path as ids see it
    spec_index: int = -1  # ingest only: which `input:` entry
    members: tuple[str, ...] = ()  # ingest only: small files read as one task (a folder of HTML pages)

    def to_dict(self) -> dict:
        return asdict(self)


def output_fingerprint(task_fingerprint: str, stage_config_hash: str, part: str) -> str:
    return config_hash([task_fingerprint, stage_config_hash, part])


def raw_file_fingerprint(path: str, spec_hash: str) -> str:
    """A raw input is identified by path, size and modification time (as make does) plus its input spec."""
    st = os.stat(path)
    return config_hash([os.path.abspath(path), st.st_size, st.st_mtime_ns, spec_hash])


def is_done(storage: Storage, folder: str, task: Task, stage_config_hash: str, *, rows_gone: bool = False) -> bool:
    """`rows_gone`: the folder's kept rows were deleted on purpose, so its outputs are not looked for."""
    sidecar = storage.read_json_or_none(sidecar_path(storage, folder, task.key))
    if (
        not sidecar
        or sidecar.get("fingerprint") != task.fingerprint
        or sidecar.get("config_hash") != stage_config_hash
    ):
        return False
    files = [] if rows_gone else [storage.path(folder, o["name"]) for o in sidecar.get("outputs", [])]
    if sidecar.get("rejects"):
        files.append(storage.path(folder, REJECTS_DIR, sidecar["rejects"]["name"]))
    if sidecar.get("removed"):
        files.append(storage.path(folder, REMOVED_DIR, sidecar["removed"]["name"]))
    return all(storage.exists(f) for f in files)


def write_manifest(
    storage: Storage,
    folder: str,
    *,
    stage: str,
    version: str,
    settings: dict,
    stage_config_hash: str,
    inputs: list[Task],
    tasks: list[Task],
    done: list[str],
    status: str,
    failures: list[dict] | None = None,
) -> dict:
    """The stage's record of what it read, with which settings, and which of its tasks are finished."""
    manifest = {
        "stage": stage,
        "folder": folder,
        "code_version": {"winnow": __version__, "stage": version},
        "config": settings,
        "config_hash": stage_config_hash,
        "inputs": [{"key": t.key, "path": t.input_path, "fingerprint": t.fingerprint} for t in inputs],
        "done_shards": sorted(done),
        "pending_shards": sorted({t.key for t in tasks} - set(done)),
        "failures": failures or [],
        "status": status,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    storage.write_json(storage.path(folder, MANIFEST), manifest)
    return manifest


def build_sidecar(
    *,
    stage: str,
    folder: str,
    task: Task,
    config_hash: str,
    version: str | None,
    outputs: list[dict],
    rejects: dict | None,
    rows_in: int,
    rows_out: int,
    rows_rejected: int,
    bytes_in: int,
    bytes_out: int,
    drops: dict,
    seconds: float,
    node: str | None,
    signals: dict | None = None,
    errors: list[str] | None = None,
    **extra,
) -> dict:
    """A task's stats sidecar, the same fields for every stage (written last: it is the commit marker)."""
    sidecar = {
        "stage": stage,
        "folder": folder,
        "key": task.key,
        "input": task.input_path,
        "fingerprint": task.fingerprint,
        "config_hash": config_hash,
        "code_version": version,
        "outputs": outputs,
        "rejects": rejects,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rows_rejected,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "drops": dict(sorted(drops.items())),
        **extra,
        "signals": signals or {},
        "errors": errors or [],
        "seconds": round(seconds, 4),
        "node": node,
    }
    return sidecar
