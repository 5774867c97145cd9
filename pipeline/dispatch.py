"""Runs one phase's shard tasks on Ray: plain tasks for stateless maps, a pool of actors for stages that
build something expensive once (a model) and reuse it for every shard they are given.

Why plain Ray tasks and actors rather than Ray Data: a shard keeps its name from ingest to export, so
the unit of scheduling is a named file, not a block. Ray Data's actor pool also passed an object-store
reference to every actor's constructor (Ray then logs an error-looking line for each actor, since such
an actor cannot be restarted) and killed its actors at the end (the GCS logs "Failed to kill actor").
Here constructor arguments are the stage's small config, actors end when their handles go, and
retries are Ray's: a task whose worker dies runs again, an actor that dies restarts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import ray

from pipeline.shards import Task
from pipeline.storage import Storage
from pipeline.worker import guarded

RETRIES = 2


def _make(make_runner: Callable, common: dict, kwargs: dict) -> Callable[[Task], dict]:
    storage = Storage(common["storage_uri"])
    return make_runner(storage, common["folder"], common["config_hash"], common["batch_rows"], **kwargs)


def _run_one(make_runner: Callable, common: dict, kwargs: dict, task: dict) -> str:
    return json.dumps(guarded(_make(make_runner, common, kwargs), Task(**task)))


class _ShardActor:
    """Holds one built runner (e.g. a loaded model) and runs shard after shard with it."""

    def __init__(self, make_runner: Callable, common: dict, kwargs: dict):
        self.run = _make(make_runner, common, kwargs)

    def run_task(self, task: dict) -> str:
        return json.dumps(guarded(self.run, Task(**task)))


def run_shard_tasks(
    tasks: list[Task],
    make_runner: Callable,
    common: dict,
    kwargs: dict,
    *,
    stateful: bool,
    limit: int,
    gpus: float = 0,
    memory_mb: int | None = None,
) -> Iterator[dict]:
    """Yields each task's result (`{"ok": True, "sidecar": ...}` or the failure) as it finishes,
    with at most `limit` tasks running at once."""
    if not tasks:
        return
    queue = [t.to_dict() for t in tasks]
    options = {
        "num_cpus": 1,
        **({"num_gpus": gpus} if gpus else {}),
        **({"memory": memory_mb << 20} if memory_mb else {}),
    }
    in_flight: dict = {}
    if stateful:
        actor_cls = ray.remote(**options, max_restarts=RETRIES, max_task_retries=RETRIES)(_ShardActor)
        idle = [actor_cls.remote(make_runner, common, kwargs) for _ in range(min(limit, len(tasks)))]
        while queue or in_flight:
            while queue and idle:
                task = queue.pop(0)
                actor = idle.pop()
                in_flight[actor.run_task.remote(task)] = (task, actor)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            task, actor = in_flight.pop(ready[0])
            idle.append(actor)
            yield _result(ready[0], task)
        return
    remote = ray.remote(**options, max_retries=RETRIES)(_run_one)
    while queue or in_flight:
        while queue and len(in_flight) < limit:
            task = queue.pop(0)
            in_flight[remote.remote(make_runner, common, kwargs, task)] = (task, None)
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        task, _ = in_flight.pop(ready[0])
        yield _result(ready[0], task)


def _result(ref, task: dict) -> dict:
    """The task's own result, or a failure record when Ray gave up on it (its worker died every retry)."""
    try:
        return json.loads(ray.get(ref))
    except Exception as err:  # noqa: BLE001 - one shard's failure must not lose the others' work
        return {
            "ok": False,
            "key": task["key"],
            "input": task["input_path"],
            "error": f"{type(err).__name__}: {err}",
            "traceback": "",
        }
