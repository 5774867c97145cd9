"""Connecting to Ray: the configured cluster, RAY_ADDRESS under `ray job submit`, or a local Ray started
in this process. The same code path runs in all three; there is no separate local mode."""

from __future__ import annotations

import os

import ray

from pipeline.config import RayConfig


def ensure_ray(rc: RayConfig | None = None, num_cpus: int | None = None) -> None:
    """Connects to the configured cluster, or starts a local Ray in this process."""
    if ray.is_initialized():
        return
    rc = rc or RayConfig()
    address = rc.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # No dashboard here, so no metrics to collect; the metrics harvester thread (opencensus) is also
        # what crashes Ray workers as they exit (SIGSEGV/SIGABRT in DeltaProducer::RunHarvesterLoop).
        ray.init(
            num_cpus=num_cpus or rc.num_cpus,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=True,
            _system_config={"enable_metrics_collection": False},
        )


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) >= 1
