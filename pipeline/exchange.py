"""Hash-partitioned shuffles through files, and phases of Ray tasks that resume task by task.

A shuffle here is the classic map/reduce exchange: every map task splits its output by a hash of
the key into `parts` files (`<folder>/p00007/<writer>.parquet`), and reduce task j reads
`p0000j/` only. No process ever holds more than one partition; the files are the checkpoint, so a
crash costs at most the tasks that had not finished. Ray schedules the tasks (on any node of a
cluster, with the output on shared or object storage); Ray Data's own groupby would keep the
exchange in the object store, where a failed driver loses it.

A task is done when its marker `<phase>/_done/<task>.json` exists; it holds the task's small result
(counts, checksums), so a resumed driver gets the same answers without rerunning it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from pipeline import faults
from pipeline.hashing import mix64
from pipeline.storage import AtomicParquetWriter, Storage

_SALT = np.uint64(0x2545F4914F6CDD1D)


def partition_of(values: np.ndarray, parts: int) -> np.ndarray:
    """Partition of each 64-bit value (mixed first, so node numbers and hashes both spread evenly)."""
    return (mix64(np.asarray(values, dtype=np.uint64) ^ _SALT) % np.uint64(parts)).astype(np.int64)


def part_folder(storage: Storage, folder: str, j: int) -> str:
    return storage.path(folder, f"p{j:05d}")


def write_parts(storage: Storage, folder: str, writer: str, table: pa.Table, part: np.ndarray) -> int:
    """Writes the rows of `table` to the partition files `part` names; returns the rows written."""
    if table.num_rows == 0:
        return 0
    order = np.argsort(part, kind="stable")
    table, part = table.take(pa.array(order)), part[order]
    bounds = np.flatnonzero(np.r_[True, part[1:] != part[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        w = AtomicParquetWriter(
            storage, f"{part_folder(storage, folder, int(part[lo]))}/{writer}.parquet", table.schema
        )
        w.write(table.slice(lo, hi - lo))
        w.commit()
    return table.num_rows


def read_part(storage: Storage, folder: str, j: int, schema: pa.Schema) -> pa.Table:
    """All files of partition j (in name order, so reads are deterministic), or an empty table."""
    where = part_folder(storage, folder, j)
    names = [n for n in storage.list_files(where, suffix=".parquet") if not n.startswith(".")]
    tables = [pq.read_table(f"{where}/{n}", filesystem=storage.fs) for n in names]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])


class PhaseFailed(RuntimeError):
    """Some tasks of a phase failed after the others finished; a rerun retries only those."""


@dataclass
class PhaseTask:
    name: str  # unique within the phase; the marker's file name
    fn: str  # "module:function", called with the storage and `kwargs` on a worker
    kwargs: dict


def marker_path(storage: Storage, phase_folder: str, task: str) -> str:
    return storage.path(phase_folder, "_done", f"{task}.json")


def phase_name(phase_folder: str) -> str:
    """`records` or `cc/r001/large` from `<stage>/_work/<fingerprint>/records`."""
    parts = phase_folder.split("/")
    return "/".join(parts[parts.index("_work") + 2 :]) if "_work" in parts else parts[-1]


def run_task(storage_uri: str, phase_folder: str, task: PhaseTask) -> dict:
    """Runs one task unless its marker exists; writes the marker last."""
    storage = Storage(storage_uri)
    done = storage.read_json_or_none(marker_path(storage, phase_folder, task.name))
    if done is not None:
        return done
    module, _, fn = task.fn.partition(":")
    result = getattr(importlib.import_module(module), fn)(storage, **task.kwargs) or {}
    faults.hit(f"task:{phase_name(phase_folder)}")
    storage.write_json(marker_path(storage, phase_folder, task.name), result)
    return result


def run_phase(
    storage: Storage,
    phase_folder: str,
    tasks: list[PhaseTask],
    *,
    label: str,
    workers: int | None,
    progress: Callable | None = None,
    gpus: float = 0,
) -> dict[str, dict]:
    """Runs a phase's tasks on Ray (skipping finished ones), at most `workers` at once; returns
    each task's result by name. A failed task raises after the others finished. `gpus`: per task
    (only ask when the cluster has GPUs, or the tasks never start)."""
    results: dict[str, dict] = {}
    pending = []
    for t in tasks:
        done = storage.read_json_or_none(marker_path(storage, phase_folder, t.name))
        if done is not None:
            results[t.name] = done
        else:
            pending.append(t)
    limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=2, **({"num_gpus": gpus} if gpus else {}))(run_task)
    errors = []
    queue = list(pending)
    bar = progress(label, len(tasks), len(tasks) - len(pending)) if progress else nullcontext(lambda: None)
    with bar as tick:
        in_flight: dict = {}
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                t = queue.pop(0)
                in_flight[remote.remote(storage.uri, phase_folder, t)] = t
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            t = in_flight.pop(ready[0])
            try:
                results[t.name] = ray.get(ready[0])
            except Exception as err:  # keep going: the other tasks' work is checkpointed too
                errors.append(f"{label} task {t.name}: {err}")
            tick()
    if errors:
        raise PhaseFailed(f"{len(errors)} task(s) failed; finished ones are kept, rerun to retry. First: {errors[0]}")
    faults.hit(f"driver:{phase_name(phase_folder)}")
    return results
