"""Memory and disk a worker has, for the stages that plan their phases before starting them."""

from __future__ import annotations

import os
import shutil

import ray

MB = 1 << 20


def worker_budget(memory_per_worker_mb: int | None) -> int:
    """Bytes one worker may use: the setting, or Ray's memory over its CPUs."""
    if memory_per_worker_mb:
        return memory_per_worker_mb * MB
    res = ray.cluster_resources()
    return int(res.get("memory", 4 << 30) / max(1.0, res.get("CPU", 1)))


def free_disk_bytes(root: str) -> int | None:
    """Free bytes under a local output root; None for object stores (no meaningful limit)."""
    if "://" in root:
        return None
    path = os.path.abspath(root)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free
