"""The driver: plans each stage's shard tasks, skips finished ones, and runs the rest on Ray Data.

Every stage becomes a Ray Dataset with one row per pending shard task, mapped by `map_batches`:
stateless stages as plain tasks, model stages (`stateful = True`) as an actor pool whose actors
build the stage (load the model) once. The same code runs on an embedded local Ray (started
in-process with the machine's cores) and on a cluster (under `ray job submit`, where RAY_ADDRESS
is set); there is no separate local code path.

Why one row per shard rather than Ray Data's own read/write: a shard keeps its name from ingest to
export, so a rerun can skip it by name, stats join on it, and the output does not depend on how
Ray happened to split blocks. Ray Data still does the scheduling, backpressure, retries, actor pools
and GPU placement.
"""

from __future__ import annotations

import glob
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
import xxhash
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline import faults
from pipeline.config import ConfigError, RayConfig, ResolvedConfig, StageSpec, config_hash, expand_input
from pipeline.shards import (
    MANIFEST,
    REJECTS_DIR,
    STATS_DIR,
    Task,
    is_done,
    raw_file_fingerprint,
    read_manifest,
    read_sidecars,
    write_manifest,
)
from pipeline.storage import Storage

INGEST_FOLDER = "00_ingest"


class PipelineError(RuntimeError):
    """A stage finished with failed shards; finished shards are kept and a rerun retries the rest."""


@dataclass
class StageReport:
    folder: str
    total: int
    skipped: int
    ran: int
    failures: list[dict] = field(default_factory=list)


def ensure_ray(rc: RayConfig | None = None, num_cpus: int | None = None) -> None:
    """Connects to the configured cluster, or starts a local Ray in this process."""
    import ray

    if ray.is_initialized():
        return
    rc = rc or RayConfig()
    address = rc.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus or rc.num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=True)
    import logging

    ctx = ray.data.DataContext.get_current()  # importing ray.data configures its loggers; quieten them after
    # Ray Data logs an "execution finished" line per dataset; our progress bar already says so.
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    ctx.enable_progress_bars = False  # our own per-stage bar says more: shards done, docs kept
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ctx.print_on_execution_start = False


# --- worker side -------------------------------------------------------------------------------


class ShardWorker:
    """Runs shard tasks of one stage; a callable class so model stages load once per actor."""

    def __init__(self, *, kind: str, storage_uri: str, folder: str, stage_config_hash: str, batch_rows: int,
                 stage_name: str | None = None, stage_settings: dict | None = None,
                 input_specs: list[dict] | None = None, rows_per_shard: int = 0, context: dict | None = None):
        from pipeline.config import InputSpec
        from pipeline.worker import run_ingest_task, run_map_task

        self.storage = Storage(storage_uri)
        if kind == "apply":
            from stages.dedup import DedupApply

            stage = DedupApply(**stage_settings)
            self._run = lambda t: run_map_task(stage, t, self.storage, folder, stage_config_hash, batch_rows)
        elif kind == "ingest":
            specs = [InputSpec.model_validate(s) for s in input_specs or []]
            self._run = lambda t: run_ingest_task(t, specs[t.spec_index], self.storage, folder, stage_config_hash, rows_per_shard)
        else:
            from stages.registry import STAGES

            cls = STAGES[stage_name]
            config = cls.Config.model_validate(stage_settings)
            # aggregate stages also get what their summary pass found over the whole corpus
            stage = cls(config, context=context, storage=self.storage) if context is not None else cls(config)
            self._run = lambda t: run_map_task(stage, t, self.storage, folder, stage_config_hash, batch_rows)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from pipeline.worker import guarded

        results = [json.dumps(guarded(self._run, Task(**json.loads(t)))) for t in batch.column("task").to_pylist()]
        return pa.table({"result": pa.array(results, pa.string())})


def _run_stateless(batch: pa.Table, **kwargs) -> pa.Table:
    return ShardWorker(**kwargs)(batch)


# --- driver side -------------------------------------------------------------------------------


class Runner:
    """Runs a resolved config stage by stage, or one stage again."""

    def __init__(self, cfg: ResolvedConfig, *, workers: int | None = None, console: Console | None = None, progress: bool = True):
        self.cfg = cfg
        self.storage = Storage(cfg.pipeline.output)
        self.workers = workers or cfg.pipeline.ray.workers
        self.console = console or Console(stderr=True)
        self.progress = progress

    # planning

    def ingest_config_hash(self) -> str:
        from stages.ingest import VERSION

        return config_hash({"version": VERSION, "rows_per_shard": self.cfg.pipeline.ingest.rows_per_shard})

    def plan_ingest(self) -> list[Task]:
        tasks = []
        for i, spec in enumerate(self.cfg.pipeline.input):
            spec_hash = config_hash(spec.model_dump(mode="json"))
            base = _input_base(spec.path)
            for path in expand_input(spec.path):
                relpath = os.path.relpath(path, base) if base else os.path.basename(path)
                key = "part-" + xxhash.xxh32_hexdigest(f"{spec.source}\x1f{relpath}".encode())
                tasks.append(Task(key=key, input_path=path, fingerprint=raw_file_fingerprint(path, spec_hash), relpath=relpath, spec_index=i))
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"{self.cfg.path}: two inputs resolve to the same file and source; list each file once")
        return tasks

    def plan_map(self, spec: StageSpec) -> list[Task]:
        upstream = self.upstream_folder(spec)
        sidecars = read_sidecars(self.storage, upstream)
        tasks = []
        for sidecar in sidecars:
            for out in sidecar["outputs"]:
                key = out["name"].removesuffix(".parquet")
                tasks.append(Task(key=key, input_path=self.storage.path(upstream, out["name"]), fingerprint=out["fingerprint"]))
        return sorted(tasks, key=lambda t: t.key)

    def upstream_folder(self, spec: StageSpec) -> str:
        before = [s for s in self.cfg.stages if s.index < spec.index]
        return before[-1].folder if before else INGEST_FOLDER

    def stage_plan(self, spec: StageSpec | None) -> tuple[str, str, list[Task]]:
        """(folder, config hash, tasks) for a stage; None means ingest."""
        if spec is None:
            return INGEST_FOLDER, self.ingest_config_hash(), self.plan_ingest()
        tasks = self.plan_map(spec)
        if depends_on_all(spec):  # every shard's result depends on every input shard
            chash = config_hash([spec.config_hash, [t.fingerprint for t in tasks]])
            if stage_kind(spec) == "export":  # its tasks are the output shards, not the input ones
                from pipeline.export import plan_outputs

                return spec.folder, chash, plan_outputs(self, spec, chash)
            return spec.folder, chash, tasks
        return spec.folder, spec.config_hash, tasks

    def pending(self, folder: str, chash: str, tasks: list[Task]) -> list[Task]:
        return [t for t in tasks if not is_done(self.storage, folder, t, chash)]

    # running

    def run_all(self) -> list[StageReport]:
        self.storage.makedirs(self.storage.root)
        self.storage.write_json(self.storage.path("_config.json"), self.cfg.to_json())
        reports = [self.run_stage(None)]
        for spec in self.cfg.stages:
            reports.append(self.run_stage(spec))
        return reports

    def run_one(self, name: str) -> tuple[StageReport, list[tuple[str, int]]]:
        """Reruns one stage from its upstream output; returns its report and later stages now stale."""
        spec = None if name in ("ingest", INGEST_FOLDER) else self.cfg.find_stage(name)
        if spec is not None:
            self.require_complete(self.upstream_spec(spec))
        report = self.run_stage(spec)
        return report, self.mark_downstream_stale(spec)

    def upstream_spec(self, spec: StageSpec) -> StageSpec | None:
        before = [s for s in self.cfg.stages if s.index < spec.index]
        return before[-1] if before else None

    def require_complete(self, spec: StageSpec | None) -> None:
        folder, chash, tasks = self.stage_plan(spec)
        if not self.storage.exists(self.storage.path(folder, MANIFEST)):
            raise PipelineError(f"{folder} has not run yet; run `winnow run` (or `winnow stage {spec.name if spec else 'ingest'}`) first")
        todo = self.pending(folder, chash, tasks)
        if todo:
            raise PipelineError(f"{folder} is out of date ({len(todo)} of {len(tasks)} shards need work); rerun it first with `winnow stage {spec.name if spec else 'ingest'}`")

    def mark_downstream_stale(self, spec: StageSpec | None) -> list[tuple[str, int]]:
        """After a stage reran, later stages whose inputs changed get status `stale` in their manifest."""
        stale = []
        upstream_stale = False
        later = [s for s in self.cfg.stages if spec is None or s.index > spec.index]
        for s in later:
            manifest = read_manifest(self.storage, s.folder)
            if manifest is None:
                continue
            folder, chash, tasks = self.stage_plan(s)
            todo = self.pending(folder, chash, tasks)
            if todo or upstream_stale:
                upstream_stale = True
                count = len(todo) if todo else len(tasks)
                stale.append((s.folder, count))
                manifest.update(status="stale", pending_shards=sorted(t.key for t in todo) or manifest.get("done_shards", []))
                self.storage.write_json(self.storage.path(s.folder, MANIFEST), manifest)
        return stale

    def run_stage(self, spec: StageSpec | None) -> StageReport:
        if stage_kind(spec) == "export":
            from pipeline.export import run_export

            return run_export(self, spec)
        folder, chash, tasks = self.stage_plan(spec)
        todo = self.pending(folder, chash, tasks)
        name = spec.name if spec else "ingest"
        settings = spec.config.model_dump(mode="json") if spec else self.cfg.pipeline.ingest.model_dump(mode="json")
        version = spec.version if spec else _ingest_version()
        manifest = dict(stage=name, version=version, settings=settings, stage_config_hash=chash, tasks=tasks)
        todo_keys = {t.key for t in todo}
        done_keys = [t.key for t in tasks if t.key not in todo_keys]
        write_manifest(self.storage, folder, **manifest, done=done_keys, status="running")

        failures: list[dict] = []
        if todo:
            worker_kwargs = dict(storage_uri=self.storage.uri, folder=folder, stage_config_hash=chash, batch_rows=self.cfg.pipeline.batch_rows)
            if spec is None:
                worker_kwargs.update(kind="ingest", input_specs=[s.model_dump(mode="json") for s in self.cfg.pipeline.input],
                                     rows_per_shard=self.cfg.pipeline.ingest.rows_per_shard)
            elif is_global(spec):
                work = self._run_global(spec, chash, tasks)
                worker_kwargs.update(kind="apply", stage_settings=dict(
                    storage_uri=self.storage.uri, work=work, shard_index={t.key: i for i, t in enumerate(tasks)},
                    method=spec.stage_cls.method, name=spec.name, mode=spec.config.mode))
            elif is_aggregate(spec):
                worker_kwargs.update(kind="map", stage_name=spec.name, stage_settings=settings, context=self._run_aggregate(spec, chash, tasks))
            else:
                worker_kwargs.update(kind="map", stage_name=spec.name, stage_settings=settings)
            stateful = bool(spec and spec.stage_cls.stateful)
            gpus = _gpus_per_worker(spec)
            for result in self._progress(folder, len(tasks) - len(todo), len(tasks), self._dispatch(todo, worker_kwargs, stateful, gpus)):
                if result["ok"]:
                    done_keys.append(result["sidecar"]["key"])
                    faults.hit(f"driver:{folder}")
                else:
                    failures.append({k: result[k] for k in ("key", "input", "error")})
                    self.console.print(f"[red]{folder}: shard {result['key']} failed[/red]: {result['error']}\n{result['traceback']}")
        status = "complete" if not failures else "incomplete"
        if not failures:
            self._remove_orphans(folder, tasks)
            if (is_global(spec) and not spec.config.keep_work) or is_aggregate(spec):
                self.storage.delete_dir(self.storage.path(folder, "_work"))
        write_manifest(self.storage, folder, **manifest, done=done_keys, status=status, failures=failures)
        if not todo:
            self.console.print(f"{folder}: all {len(tasks)} shards up to date, nothing to do")
        report = StageReport(folder, len(tasks), len(tasks) - len(todo), len(todo), failures)
        if failures:
            raise PipelineError(f"{folder}: {len(failures)} of {len(tasks)} shards failed (first: {failures[0]['key']}: {failures[0]['error']}); "
                                "finished shards are kept, rerun the same command to retry the rest")
        return report

    def _run_global(self, spec: StageSpec, chash: str, tasks: list[Task]) -> str:
        """Phases 1-5 of a dedup stage (pipeline/global_stage.py); returns its work folder."""
        from pipeline.global_stage import GlobalStageDriver
        from pipeline.memory_plan import MemoryPlanError, free_disk_bytes, plan, worker_budget

        cfg = spec.config
        sidecars = read_sidecars(self.storage, self.upstream_folder(spec))
        outs = [o for sc in sidecars for o in sc["outputs"]]
        per_shard_bytes = [sc.get("bytes_out", 0) / max(1, len(sc["outputs"])) for sc in sidecars]
        driver = GlobalStageDriver(self.storage, spec.folder, spec.name, cfg.model_dump(mode="json"), tasks, chash,
                                   batch_rows=self.cfg.pipeline.batch_rows, workers=self.workers, progress=self._phase_bar)
        try:
            p = plan(docs=sum(o["rows"] for o in outs), max_shard_rows=max((o["rows"] for o in outs), default=0),
                     max_shard_bytes=int(max(per_shard_bytes, default=0)), batch_rows=self.cfg.pipeline.batch_rows,
                     records_per_doc=driver.stage.record_count(), verifies=driver.stage.verifies(),
                     budget=worker_budget(cfg.memory_per_worker_mb), partitions=cfg.partitions, free_disk=free_disk_bytes(self.storage.root))
        except MemoryPlanError as err:
            raise PipelineError(f"{spec.folder}: will not fit, so not started: {err}") from None
        self.console.print(f"{spec.folder}: plan: {p.describe()}", highlight=False)
        try:
            report = driver.run(p.partitions)
        except RuntimeError as err:
            raise PipelineError(f"{spec.folder}: {err}") from None
        report["plan"] = {"partitions": p.partitions, "budget_mb": p.budget >> 20, "peaks_mb": {k: v >> 20 for k, v in p.peaks.items()}}
        self.storage.write_json(self.storage.path(spec.folder, "_dedup.json"), report)
        return driver.work

    def _run_aggregate(self, spec: StageSpec, chash: str, tasks: list[Task]) -> dict:
        """An aggregate stage's summary pass over every shard, combined on the driver into the context
        its map needs (also saved as `_summary.json` beside the stage's shards, for cards and users)."""
        from pipeline.exchange import PhaseTask, run_phase

        work = f"{spec.folder}/_work/{chash}"
        settings = spec.config.model_dump(mode="json")
        phase = [PhaseTask(t.key, spec.stage_cls.summarize, dict(path=t.input_path, settings=settings, out=f"{work}/summary/{t.key}.parquet",
                                                                  batch_rows=self.cfg.pipeline.batch_rows)) for t in tasks]
        try:
            results = run_phase(self.storage, f"{work}/summary", phase, label=f"{spec.folder} summary", workers=self.workers, progress=self._phase_bar)
            context = spec.stage_cls.combine(self.storage, work=work, results=results, settings=settings)
        except (RuntimeError, ValueError) as err:
            raise PipelineError(f"{spec.folder}: {err}") from None
        self.storage.write_json(self.storage.path(spec.folder, "_summary.json"), context)
        return context

    @contextmanager
    def _phase_bar(self, label: str, total: int, done: int):
        if not self.progress or not self.console.is_terminal:  # transient bars only make blank lines in logs
            yield lambda: None
            return
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            job = bar.add_task(label, total=total, completed=done)
            yield lambda: bar.update(job, advance=1)

    def _dispatch(self, tasks: list[Task], worker_kwargs: dict, stateful: bool, gpus: float) -> Iterator[dict]:
        import ray

        items = [{"task": json.dumps(t.to_dict())} for t in tasks]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        common = dict(batch_size=1, batch_format="pyarrow", num_cpus=1)
        if gpus:
            common["num_gpus"] = gpus
        if stateful:
            size = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            ds = ds.map_batches(ShardWorker, fn_constructor_kwargs=worker_kwargs, compute=ray.data.ActorPoolStrategy(min_size=1, max_size=size), **common)
        else:
            compute = ray.data.TaskPoolStrategy(size=self.workers) if self.workers else None
            ds = ds.map_batches(_run_stateless, fn_kwargs=worker_kwargs, compute=compute, **common)
        for row in ds.iter_rows():
            yield json.loads(row["result"])

    def _progress(self, folder: str, already: int, total: int, results: Iterator[dict]) -> Iterator[dict]:
        if not self.progress:
            yield from results
            return
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                   TextColumn("{task.fields[docs]} docs kept"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as bar:
            job = bar.add_task(folder, total=total, completed=already, docs=0)
            kept = 0
            for result in results:
                if result["ok"]:
                    kept += result["sidecar"]["rows_out"]
                bar.update(job, advance=1, docs=f"{kept:,}")
                yield result

    def _remove_orphans(self, folder: str, tasks: list[Task]) -> None:
        """Deletes shards, rejects and sidecars that no current task produced (inputs removed or resharded),
        and the temporary files of writers that were killed (their task ran again elsewhere)."""
        for where in (self.storage.path(folder), self.storage.path(folder, STATS_DIR), self.storage.path(folder, REJECTS_DIR)):
            self.storage.remove_temporaries(where)
        keys = {t.key for t in tasks}
        wanted_parts, wanted_rejects = set(), set()
        for name in self.storage.list_files(self.storage.path(folder, STATS_DIR), suffix=".json"):
            key = name.removesuffix(".json")
            path = self.storage.path(folder, STATS_DIR, name)
            if key not in keys:
                self.storage.delete(path)
                continue
            sidecar = self.storage.read_json_or_none(path) or {}
            wanted_parts.update(o["name"] for o in sidecar.get("outputs", []))
            if sidecar.get("rejects"):
                wanted_rejects.add(sidecar["rejects"]["name"])
        for name in self.storage.list_files(self.storage.path(folder), prefix="part-"):
            if name not in wanted_parts:
                self.storage.delete(self.storage.path(folder, name))
        for name in self.storage.list_files(self.storage.path(folder, REJECTS_DIR), prefix="part-"):
            if name not in wanted_rejects:
                self.storage.delete(self.storage.path(folder, REJECTS_DIR, name))


def stage_kind(spec: StageSpec | None) -> str:
    """map (shard by shard), global (dedup: multi-phase), aggregate (summary pass, then map) or export."""
    return "map" if spec is None else getattr(spec.stage_cls, "kind", "map")


def is_global(spec: StageSpec | None) -> bool:
    return stage_kind(spec) == "global"


def is_aggregate(spec: StageSpec | None) -> bool:
    return stage_kind(spec) == "aggregate"


def depends_on_all(spec: StageSpec | None) -> bool:
    return stage_kind(spec) in ("global", "aggregate", "export")


def _ingest_version() -> str:
    from stages.ingest import VERSION

    return VERSION


def _gpus_per_worker(spec: StageSpec | None) -> float:
    """A model stage gets one GPU per actor when the cluster has GPUs; CPU otherwise."""
    if spec is None:
        return 0
    wants_gpu = getattr(spec.stage_cls, "wants_gpu", None)
    if not (wants_gpu(spec.config) if wants_gpu is not None else spec.stage_cls.uses_gpu):
        return 0
    import ray

    return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def _input_base(path: str) -> str | None:
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
