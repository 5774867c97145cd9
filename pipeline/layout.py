"""How a run lies on disk, for the runner that writes it and for everything that reads it afterwards.

    <output>/_config.json              the resolved config of the last run
    <output>/NN_<stage>/part-*.parquet the stage's kept rows, one file per shard (export: shard-*.parquet)
    <output>/NN_<stage>/rejects/       dropped rows with `stage` and `reason`
    <output>/NN_<stage>/removed/       spans a rewriting stage took out of kept text: id, span, reason
    <output>/NN_<stage>/_stats/<key>.json  one sidecar per task: counts, bytes, drops, signals (the commit marker)
    <output>/NN_<stage>/_manifest.json what the stage read, with which settings, which shards are finished
    <output>/NN_<stage>/_work/         a multi-phase stage's exchange files while it runs
    <output>/NN_<stage>/_rows_deleted.json  its kept rows were deleted after use (keep_intermediate: false)

Run products (`winnow stats`, the report, the dataset card, notebooks) read runs through this module
only, so they never depend on the runner.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.storage import Storage

INGEST_FOLDER = "00_ingest"
STATS_DIR = "_stats"
REJECTS_DIR = "rejects"
REMOVED_DIR = "removed"
WORK_DIR = "_work"
MANIFEST = "_manifest.json"
CONFIG_JSON = "_config.json"
ROWS_DELETED = "_rows_deleted.json"
SKIP = ["_", ".", REJECTS_DIR, REMOVED_DIR]  # names inside a stage folder that are not its shards


def stage_folder(index: int, name: str) -> str:
    return f"{index:02d}_{name}"


def stage_folders(storage: Storage) -> list[str]:
    """Stage folders of an output root in pipeline order (their NN_ prefix)."""
    if not storage.exists(storage.root):
        return []
    infos = storage.fs.get_file_info(pafs.FileSelector(storage.root, recursive=False))
    names = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
    return sorted(n for n in names if len(n) > 3 and n[:2].isdigit() and n[2] == "_")


def final_folder(storage: Storage) -> str | None:
    """The folder a trainer reads: the last stage folder (the export's, when the pipeline has one)."""
    folders = stage_folders(storage)
    return folders[-1] if folders else None


def sidecar_path(storage: Storage, folder: str, key: str) -> str:
    return storage.path(folder, STATS_DIR, f"{key}.json")


def read_sidecars(storage: Storage, folder: str) -> list[dict]:
    """All sidecars of a stage folder, sorted by task key."""
    names = storage.list_files(storage.path(folder, STATS_DIR), suffix=".json")
    sidecars = [storage.read_json_or_none(storage.path(folder, STATS_DIR, n)) for n in names]
    return [s for s in sidecars if s]


def read_manifest(storage: Storage, folder: str) -> dict | None:
    return storage.read_json_or_none(storage.path(folder, MANIFEST))


def rows_deleted(storage: Storage, folder: str) -> bool:
    """Whether the folder's kept rows were deleted on purpose once read (`keep_intermediate: false`)."""
    return storage.exists(storage.path(folder, ROWS_DELETED))


def read_run_config(storage: Storage) -> dict:
    return storage.read_json_or_none(storage.path(CONFIG_JSON)) or {}


def shard_files(storage: Storage, folder: str) -> list[str]:
    """The Parquet files of a folder (not temporaries), in name order."""
    return [n for n in storage.list_files(storage.path(folder), suffix=".parquet") if not n.startswith(".")]


def _read(storage: Storage, where: str, columns: list[str]) -> pa.Table:
    files = [storage.path(where, n) for n in shard_files(storage, where)]
    if not files:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    dataset = ds.dataset(files, format="parquet", filesystem=storage.fs)
    present = [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=present)


def read_docs(storage: Storage, folder: str, columns: list[str]) -> pa.Table:
    """The columns (those that exist) of a stage folder's shards; projection keeps this cheap."""
    return _read(storage, folder, columns)


def read_rejects(
    storage: Storage, columns: tuple[str, ...] = ("stage", "reason", "source", "lang", "url", "url_domain")
) -> pa.Table:
    """Every stage's rejects as one table, with the stage folder each came from."""
    tables = []
    for folder in stage_folders(storage):
        t = _read(storage, f"{folder}/{REJECTS_DIR}", list(columns))
        if t.num_rows:
            t = t.append_column("folder", pa.array([folder] * t.num_rows, pa.string()))
            tables.append(t)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in ("folder", *columns)})
    return pa.concat_tables(tables, promote_options="permissive")


def read_removed(
    storage: Storage, columns: tuple[str, ...] = ("stage", "reason", "span", "id", "source", "lang")
) -> pa.Table:
    """Every rewriting stage's removed spans as one table, with the stage folder each came from."""
    tables = []
    for folder in stage_folders(storage):
        t = _read(storage, f"{folder}/{REMOVED_DIR}", list(columns))
        if t.num_rows:
            tables.append(t.append_column("folder", pa.array([folder] * t.num_rows, pa.string())))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in ("folder", *columns)})
    return pa.concat_tables(tables, promote_options="permissive")
