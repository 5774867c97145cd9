"""The export stage: the last stage's shards reshuffled into final shards of a chosen size.

Every document gets a key, xxh3-64 of its id under the seed; key mod M picks one of M output shards,
and each output shard is sorted by key. That is a global shuffle (documents of one source, one input
file or one crawl date do not sit together), it needs only one exchange through files (scatter, then
gather) and it is the same, byte for byte, for any number of workers. Shard sizes vary by about
1/sqrt(documents per shard) around the target, which an exact split would need a global sort to avoid.

Finished scatter and gather tasks leave markers (pipeline/exchange.py), so a crash costs only the
tasks that had not finished; the dataset card is rewritten at the end of every run.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import xxhash

from pipeline.exchange import PhaseTask, read_part, run_phase, write_parts
from pipeline.shards import STATS_DIR, Task, output_fingerprint, read_sidecars, sidecar_path, write_manifest
from pipeline.storage import AtomicParquetWriter, Storage
from pipeline.worker import node_id, text_bytes

SHUFFLE = "_shuffle"


def shuffle_keys(ids: pa.ChunkedArray | pa.Array, seed: int) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed=seed) for i in ids.to_pylist()), dtype=np.uint64, count=len(ids))


def export_columns(schema: pa.Schema, wanted: list[str] | None) -> list[str]:
    from stages.export import DEFAULT_COLUMNS

    if wanted is None:
        return [c for c in DEFAULT_COLUMNS if c in schema.names]
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise ValueError(f"export columns {missing} are not produced by this pipeline (columns: {', '.join(schema.names)})")
    return list(wanted)


def output_names(parts: int) -> list[str]:
    return [f"shard-{j:05d}-of-{parts:05d}" for j in range(parts)]


def count_parts(rows: int, text_bytes_total: int, shard_docs: int | None, shard_bytes: int | None) -> int:
    if shard_docs is not None:
        return max(1, math.ceil(rows / shard_docs))
    return max(1, math.ceil(text_bytes_total / shard_bytes))


def scatter_task(storage: Storage, *, path: str, writer: str, columns: list[str], seed: int, parts: int, work: str) -> dict:
    """Splits one input shard by output shard: one file per output shard it has rows for (the whole
    input shard at once, a stage shard being bounded by rows_per_shard, so there are as few files as
    possible: with M output shards that is up to M files per input shard)."""
    table = storage.parquet_file(path).read(columns=columns)
    keys = shuffle_keys(table.column("id"), seed)
    table = table.append_column(SHUFFLE, pa.array(keys, pa.uint64()))
    return {"rows": write_parts(storage, f"{work}/scatter", writer, table, (keys % np.uint64(parts)).astype(np.int64))}


def gather_task(storage: Storage, *, work: str, j: int, name: str, folder: str, schema_from: str, columns: list[str], chash: str) -> dict:
    """Writes output shard j (sorted by shuffle key) and its stats sidecar."""
    started = time.perf_counter()
    schema = storage.parquet_file(schema_from).schema_arrow
    schema = pa.schema([schema.field(c) for c in columns] + [pa.field(SHUFFLE, pa.uint64())])
    table = read_part(storage, f"{work}/scatter", j, schema)
    table = table.sort_by([(SHUFFLE, "ascending"), ("id", "ascending")]).drop_columns([SHUFFLE])
    writer = AtomicParquetWriter(storage, storage.path(folder, f"{name}.parquet"), table.schema)
    writer.write(table)
    writer.commit()
    nbytes = text_bytes(table)
    sidecar = {
        "stage": "export", "folder": folder, "key": name, "input": f"{work}/scatter/p{j:05d}", "fingerprint": chash, "config_hash": chash,
        "outputs": [{"name": f"{name}.parquet", "rows": table.num_rows, "fingerprint": output_fingerprint(chash, chash, name)}],
        "rejects": None, "rows_in": table.num_rows, "rows_out": table.num_rows, "rows_rejected": 0,
        "bytes_in": nbytes, "bytes_out": nbytes, "drops": {}, "signals": {}, "errors": [],
        "seconds": round(time.perf_counter() - started, 4), "node": node_id(),
    }
    storage.write_json(sidecar_path(storage, folder, name), sidecar)
    return {"rows": table.num_rows, "bytes": nbytes}


def plan_outputs(runner, spec, chash: str) -> list[Task]:
    """One task per output shard; their number follows from the upstream documents or bytes."""
    sidecars = read_sidecars(runner.storage, runner.upstream_folder(spec))
    rows = sum(sc["rows_out"] for sc in sidecars)
    parts = count_parts(rows, sum(sc["bytes_out"] for sc in sidecars), spec.config.shard_docs, spec.config.target_shard_bytes())
    return [Task(key=n, input_path=runner.upstream_folder(spec), fingerprint=chash) for n in output_names(parts)]


def run_export(runner, spec):
    """Scatters, gathers and writes the card; returns the stage report (see Runner.run_stage)."""
    from pipeline.dataset_card import write_card
    from pipeline.runner import PipelineError, StageReport

    storage: Storage = runner.storage
    cfg = spec.config
    folder, chash, outputs = runner.stage_plan(spec)
    inputs = runner.plan_map(spec)
    upstream = runner.upstream_folder(spec)
    rows = sum(sc["rows_out"] for sc in read_sidecars(storage, upstream))
    if not inputs:
        raise PipelineError(f"{folder}: {upstream} has no shards to export")
    columns = export_columns(storage.parquet_file(inputs[0].input_path).schema_arrow, cfg.columns)
    names = [o.key for o in outputs]
    parts = len(names)
    todo = runner.pending(folder, chash, outputs)
    manifest = dict(stage=spec.name, version=spec.version, settings=cfg.model_dump(mode="json"), stage_config_hash=chash, tasks=inputs)
    write_manifest(storage, folder, **manifest, done=[], status="running")
    if todo:
        work = f"{folder}/_work/{chash}"
        common = dict(columns=columns, seed=cfg.seed, parts=parts, work=work)
        scatter = [PhaseTask(t.key, "pipeline.export:scatter_task", dict(path=t.input_path, writer=t.key, **common)) for t in inputs]
        gather = [PhaseTask(o.key, "pipeline.export:gather_task", dict(work=work, j=names.index(o.key), name=o.key, folder=folder,
                                                                       schema_from=inputs[0].input_path, columns=columns, chash=chash)) for o in todo]
        try:
            run_phase(storage, f"{work}/scatter-tasks", scatter, label=f"{folder} scatter", workers=runner.workers, progress=runner._phase_bar)
            run_phase(storage, f"{work}/gather-tasks", gather, label=f"{folder} gather", workers=runner.workers, progress=runner._phase_bar)
        except RuntimeError as err:
            write_manifest(storage, folder, **manifest, done=[], status="incomplete", failures=[{"key": folder, "input": upstream, "error": str(err)}])
            raise PipelineError(f"{folder}: {err}") from None
        storage.delete_dir(storage.path(folder, "_work"))
    _remove_stale_shards(storage, folder, set(names))
    for where in (storage.path(folder), storage.path(folder, STATS_DIR)):
        storage.remove_temporaries(where)  # left by gather tasks that were killed and ran again
    exported = sum(sc["rows_out"] for sc in read_sidecars(storage, folder))
    if exported != rows:  # conservation across the reshuffle
        raise PipelineError(f"{folder}: {rows} documents in {upstream} but {exported} in the exported shards")
    write_manifest(storage, folder, **manifest, done=names, status="complete")
    write_card(storage, folder, upstream, name=cfg.dataset_name)
    if not todo:
        runner.console.print(f"{folder}: all {parts} output shards up to date; dataset card rewritten")
    return StageReport(folder, len(names), len(names) - len(todo), len(todo), [])


def _remove_stale_shards(storage: Storage, folder: str, names: set[str]) -> None:
    """A changed shard size leaves files of the old layout; they must not be read as part of the dataset."""
    for name in storage.list_files(storage.path(folder), prefix="shard-"):
        if name.removesuffix(".parquet") not in names:
            storage.delete(storage.path(folder, name))
    for name in storage.list_files(storage.path(folder, STATS_DIR), prefix="shard-"):
        if name.removesuffix(".json") not in names:
            storage.delete(storage.path(folder, STATS_DIR, name))


def read_exported(storage: Storage, folder: str, columns: list[str]) -> pa.Table:
    """The exported shards' columns (those that exist), in shard order."""
    names = sorted(n for n in storage.list_files(storage.path(folder), prefix="shard-", suffix=".parquet"))
    tables = []
    for n in names:
        f = storage.parquet_file(storage.path(folder, n))
        tables.append(f.read(columns=[c for c in columns if c in f.schema_arrow.names]))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(tables, promote_options="default")
