"""What a stage's phases get from the runner: where it reads and writes, its tasks, and the generic phases.

`map_shards` runs a map over the pending shard tasks (stats, rejects and sidecars as for every map);
`run_shards` the same with a per-task function of the stage's own (ingest reads raw files);
`run_tasks` a phase of checkpointed tasks (`pipeline/exchange.py`): a partitioned exchange, a round of
connected components, a summary per shard. Code between them runs on the driver (a combine, a plan).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from rich.console import Console

from pipeline import faults
from pipeline.config import StageSpec, StrictModel
from pipeline.dispatch import run_shard_tasks
from pipeline.exchange import PhaseTask, run_phase
from pipeline.layout import WORK_DIR, read_sidecars
from pipeline.progress import phase_bar, shard_bar
from pipeline.ray_setup import cluster_cpus, cluster_has_gpus
from pipeline.shards import Task
from pipeline.storage import Storage
from pipeline.worker import map_runner


@dataclass
class StageContext:
    """One stage's view of a run (built by the runner for planning and for running)."""

    spec: StageSpec
    storage: Storage
    upstream: str | None  # the folder this stage reads (None for ingest)
    inputs: list[Task]  # upstream shards (ingest: none; its tasks are raw files)
    config_hash: str  # the stage's settings, plus every input shard for corpus-wide stages
    batch_rows: int
    workers: int | None
    console: Console
    progress: bool = True
    config_path: str = ""
    tasks: list[Task] = field(default_factory=list)  # this stage's tasks (set by the runner after `plan`)
    todo: list[Task] = field(default_factory=list)  # those not finished yet
    done_keys: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    @property
    def config(self) -> StrictModel:
        return self.spec.config

    @property
    def folder(self) -> str:
        return self.spec.folder

    @property
    def work(self) -> str:
        """Exchange files of this stage's current inputs and settings (relative to the output root)."""
        return f"{self.folder}/{WORK_DIR}/{self.config_hash}"

    def upstream_sidecars(self) -> list[dict]:
        return read_sidecars(self.storage, self.upstream) if self.upstream else []

    def say(self, message: str) -> None:
        self.console.print(message, highlight=False)

    def phase_bar(self, label: str, total: int, done: int) -> AbstractContextManager:
        return phase_bar(self.console, self.progress, label, total, done)

    def run_tasks(self, name: str, tasks: list[PhaseTask], *, gpus: float = 0) -> dict[str, dict]:
        """A phase of checkpointed tasks under `<work>/<name>`; returns each task's result by name.
        Raises `PhaseFailed` after the other tasks finished when any failed. `gpus` per task: asked
        for only when the cluster has GPUs."""
        return run_phase(
            self.storage,
            f"{self.work}/{name}",
            tasks,
            label=f"{self.folder} {name}",
            workers=self.workers,
            progress=self.phase_bar,
            gpus=gpus if gpus and cluster_has_gpus() else 0,
        )

    def map_shards(self, build: Callable, kwargs: dict, *, stateful: bool = False) -> None:
        """The map phase: `build(**kwargs)` on each worker gives the map, run over every pending shard."""
        self.run_shards(map_runner, {"build": build, "kwargs": kwargs}, stateful=stateful)

    def run_shards(self, make_runner: Callable, kwargs: dict, *, stateful: bool = False) -> None:
        """Runs every pending task through `make_runner(storage, folder, config_hash, batch_rows, **kwargs)`,
        which returns the per-task function that writes the task's outputs and sidecar."""
        gpus = gpus_per_task(self.spec)
        common = dict(
            storage_uri=self.storage.uri, folder=self.folder, config_hash=self.config_hash, batch_rows=self.batch_rows
        )
        limit = self.workers or cluster_cpus()
        memory_mb = self.spec.stage_cls.resources(self.config).memory_mb  # Ray schedules no more tasks than fit
        results = run_shard_tasks(
            self.todo, make_runner, common, kwargs, stateful=stateful, limit=limit, gpus=gpus, memory_mb=memory_mb
        )
        for result in shard_bar(
            self.console, self.progress, self.folder, len(self.tasks) - len(self.todo), len(self.tasks), results
        ):
            if result["ok"]:
                self.done_keys.append(result["sidecar"]["key"])
                faults.hit(f"driver:{self.folder}")
            else:
                self.failures.append({k: result[k] for k in ("key", "input", "error")})
                self.console.print(
                    f"[red]{self.folder}: shard {result['key']} failed[/red]: {result['error']}\n{result['traceback']}"
                )


def gpus_per_task(spec: StageSpec) -> float:
    """GPUs a task of the stage gets: what it asks for when the cluster has GPUs, else none (the CPU path)."""
    resources = spec.stage_cls.resources(spec.config)
    return resources.gpus if resources.gpus and cluster_has_gpus() else 0
