"""Stage 0: raw input files into document shards, one task per input file.

Its settings are the config's top-level `input:` list and `ingest:` block. Each file is read by the
reader its format names; the documents are cut into shards of `rows_per_shard` rows with stable ids,
and rows that cannot become documents are rejects with a reason naming file and line.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from pydantic import Field

from pipeline.config import StrictModel, config_hash
from pipeline.layout import REJECTS_DIR, sidecar_path
from pipeline.schema import CORE_COLUMNS
from pipeline.shards import Task, build_sidecar, output_fingerprint, raw_file_fingerprint
from pipeline.stage import Stage, StageError
from pipeline.storage import AtomicParquetWriter, Storage
from pipeline.worker import node_id, text_bytes
from stages.ingest import (
    VERSION,
    Chunk,
    InputFileError,
    InputSpec,
    detect_format,
    expand_input,
    read_chunks,
    rejects_table,
)
from stages.ingest.base import RESERVED
from stages.ingest.readers.jsonl import open_lines
from stages.ingest.web.extract import DEFAULT_EXTRACTOR


class IngestSettings(StrictModel):
    rows_per_shard: int = Field(
        5000, gt=0, description="Documents per output shard; a shard is the unit of work, resume and stats."
    )
    extractor: Literal["trafilatura+resiliparse", "resiliparse", "trafilatura"] = Field(
        DEFAULT_EXTRACTOR,
        description=(
            "Main-text extractor for WARC and HTML pages: trafilatura with a resiliparse fallback (most accurate), "
            "resiliparse alone (the former default, 12x faster) or trafilatura alone; see docs/ingest_web.md."
        ),
    )


class IngestConfig(StrictModel):
    input: list[InputSpec] = Field(min_length=1, description="Raw inputs to ingest.")
    ingest: IngestSettings = Field(default_factory=IngestSettings)


class Ingest(Stage):
    """Reads every input file into `part-<file hash>-NNNN.parquet` shards plus rejects."""

    name = "ingest"
    version = VERSION
    Config = IngestConfig

    @classmethod
    def check(cls, config: IngestConfig) -> list[tuple[tuple, str]]:
        return [
            (("input", i, "path"), f"no such file, folder or glob match: {spec.path}")
            for i, spec in enumerate(config.input)
            if not expand_input(spec.path)
        ]

    @classmethod
    def hash_payload(cls, config: IngestConfig) -> dict:
        # each file's own input spec is in its task fingerprint: adding an input redoes only that input
        return {
            "version": VERSION,
            "rows_per_shard": config.ingest.rows_per_shard,
            "extractor": config.ingest.extractor,
        }

    @classmethod
    def writes(cls, config: IngestConfig) -> set[str]:
        columns = set(CORE_COLUMNS)
        for spec in config.input:
            columns |= input_fields(spec)
        return columns

    @classmethod
    def plan(cls, ctx) -> list[Task]:
        """One task per input file; small one-document files (HTML pages) in groups of up to
        `rows_per_shard` per folder, so a folder of a million pages is not a million shards."""
        tasks = []
        for i, spec in enumerate(ctx.config.input):
            spec_hash = config_hash(spec.model_dump(mode="json"))
            base = input_base(spec.path)
            pages: dict[str, list[str]] = {}
            for path in expand_input(spec.path):
                relpath = os.path.relpath(path, base) if base else os.path.basename(path)
                if (spec.format if spec.format != "auto" else detect_format(path)) in PAGE_FORMATS:
                    pages.setdefault(os.path.dirname(relpath), []).append(path)
                    continue
                key = "part-" + xxhash.xxh32_hexdigest(f"{spec.source}\x1f{relpath}".encode())
                tasks.append(
                    Task(
                        key=key,
                        input_path=path,
                        fingerprint=raw_file_fingerprint(path, spec_hash),
                        relpath=relpath,
                        spec_index=i,
                    )
                )
            size = ctx.config.ingest.rows_per_shard
            for folder, files in sorted(pages.items()):
                for g in range(0, len(files), size):
                    group = tuple(files[g : g + size])
                    relpath = f"{folder or '.'}#{g // size}"
                    key = "part-" + xxhash.xxh32_hexdigest(f"{spec.source}\x1f{relpath}".encode())
                    fingerprint = config_hash([raw_file_fingerprint(f, spec_hash) for f in group])
                    tasks.append(
                        Task(
                            key=key,
                            input_path=os.path.dirname(group[0]),
                            fingerprint=fingerprint,
                            relpath=relpath,
                            spec_index=i,
                            members=group,
                        )
                    )
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            raise StageError(f"{ctx.config_path}: two inputs resolve to the same file and source; list each file once")
        return tasks

    @classmethod
    def run_phases(cls, ctx) -> None:
        settings = ctx.config.ingest
        ctx.run_shards(
            ingest_runner,
            {
                "specs": list(ctx.config.input),
                "rows_per_shard": settings.rows_per_shard,
                "extractor": settings.extractor,
            },
        )


PAGE_FORMATS = {"html"}  # formats of one document per file, read in groups


def ingest_runner(
    storage: Storage,
    folder: str,
    chash: str,
    batch_rows: int,
    *,
    specs: list[InputSpec],
    rows_per_shard: int,
    extractor: str = DEFAULT_EXTRACTOR,
):
    return lambda task: run_ingest_task(
        task, specs[task.spec_index], storage, folder, chash, rows_per_shard, extractor
    )


def task_chunks(task: Task, spec: InputSpec, rows_per_shard: int, extractor: str | None = None) -> Iterator[Chunk]:
    """The chunks of a task: its file's, or for a group of small files, theirs gathered into chunks of
    up to `rows_per_shard` documents."""
    if not task.members:
        yield from read_chunks(task.input_path, task.relpath, spec, rows_per_shard, extractor)
        return
    base = input_base(spec.path)
    docs, rejects, skipped = [], [], Counter()
    rows = 0
    for path in task.members:
        relpath = os.path.relpath(path, base) if base else os.path.basename(path)
        for chunk in read_chunks(path, relpath, spec, rows_per_shard, extractor):
            rejects += chunk.rejects
            skipped.update(chunk.skipped)
            if chunk.docs.num_rows:
                docs.append(chunk.docs)
                rows += chunk.docs.num_rows
        if rows >= rows_per_shard:
            yield Chunk(pa.concat_tables(docs), rejects, dict(skipped))
            docs, rejects, skipped, rows = [], [], Counter(), 0
    if docs or rejects or skipped:
        yield Chunk(pa.concat_tables(docs) if docs else pa.table({}), rejects, dict(skipped))


def run_ingest_task(
    task: Task,
    spec: InputSpec,
    storage: Storage,
    folder: str,
    stage_config_hash: str,
    rows_per_shard: int,
    extractor: str | None = None,
) -> dict:
    """Reads one raw input file into shards `<key>-NNNN.parquet` plus its rejects."""
    started = time.perf_counter()
    outputs, rejects, errors = [], [], []
    drops: Counter = Counter()
    skipped: Counter = Counter()
    rows_out = bytes_out = rejected_bytes = 0
    written: list[AtomicParquetWriter] = []
    try:
        try:
            for chunk in task_chunks(task, spec, rows_per_shard, extractor):
                rejects.extend(chunk.rejects)
                skipped.update(chunk.skipped)
                if chunk.docs.num_rows == 0:
                    continue
                part = f"{task.key}-{len(outputs):04d}"
                writer = AtomicParquetWriter(storage, storage.path(folder, f"{part}.parquet"), chunk.docs.schema)
                writer.write(chunk.docs)
                written.append(writer)
                outputs.append(
                    {
                        "name": f"{part}.parquet",
                        "rows": chunk.docs.num_rows,
                        "fingerprint": output_fingerprint(task.fingerprint, stage_config_hash, part),
                    }
                )
                rows_out += chunk.docs.num_rows
                bytes_out += text_bytes(chunk.docs)
        except InputFileError as err:
            errors.append(str(err))
        rej = None
        if rejects:
            table = rejects_table(rejects)
            drops.update(table.column("reason").to_pylist())
            rejected_bytes = text_bytes(table)
            rej_writer = AtomicParquetWriter(
                storage, storage.path(folder, REJECTS_DIR, f"{task.key}.parquet"), table.schema
            )
            rej_writer.write(table)
            written.append(rej_writer)
            rej = {"name": f"{task.key}.parquet", "rows": len(rejects)}
        for w in written:
            w.commit()
    except BaseException:
        for w in written:
            w.abort()
        raise
    if rows_out == 0 and not rejects and not errors and not skipped:
        errors.append(f"{task.input_path}: no documents (empty file)")
    sidecar = build_sidecar(
        stage="ingest",
        folder=folder,
        task=task,
        config_hash=stage_config_hash,
        version=VERSION,
        outputs=outputs,
        rejects=rej,
        rows_in=rows_out + len(rejects),
        rows_out=rows_out,
        rows_rejected=len(rejects),
        bytes_in=bytes_out + rejected_bytes,
        bytes_out=bytes_out,
        drops=drops,
        skipped=dict(sorted(skipped.items())),
        errors=errors,
        seconds=time.perf_counter() - started,
        node=node_id(),
    )
    storage.write_json(sidecar_path(storage, folder, task.key), sidecar)
    return sidecar


def input_fields(spec: InputSpec) -> set[str]:
    """Fields an input carries besides the core ones (they become columns), read from its first file:
    the Parquet schema, or the keys of the first JSON line. Web archives carry a fixed set."""
    files = expand_input(spec.path)
    if not files:
        return set()
    path = files[0]
    fmt = spec.format if spec.format != "auto" else detect_format(path)
    mapped = {spec.text_field, spec.url_field, spec.id_field, spec.lang_field}
    try:
        if fmt == "parquet":
            names = pq.ParquetFile(path).schema_arrow.names
        elif fmt == "jsonl":
            names = list(_first_json_keys(path))
        else:
            return {"fetch_date", "warc_record_id", "charset"}
    except Exception:  # noqa: BLE001 - a damaged file is ingest's to report, with file and row
        return set()
    return {f"orig_{n}" if n in RESERVED else n for n in names if n not in mapped}


def _first_json_keys(path: str, lines: int = 100) -> dict[str, None]:
    """Keys of the first JSON objects of a file, in order of appearance."""
    keys: dict[str, None] = {}
    with open_lines(path) as f:
        for n, raw in enumerate(f):
            if n >= lines:
                break
            value = orjson.loads(raw) if raw.strip() else None
            if isinstance(value, dict):
                keys.update(dict.fromkeys(value))
    return keys


def input_base(path: str) -> str | None:
    """The folder ids are relative to: the input folder, the glob's fixed prefix, or none for a single file."""
    if os.path.isdir(path):
        return path
    if glob.has_magic(path):
        fixed = []
        for part in path.split(os.sep):
            if glob.has_magic(part):
                break
            fixed.append(part)
        return os.sep.join(fixed) or "."
    return None
