"""The driver: plans each stage's tasks, skips finished ones, runs the stage's phases, commits.

There is one path for every stage, ingest included: build its context (upstream folder, input
shards, config hash), let the stage plan its tasks, keep those not finished, write the manifest,
run the stage's phases (`Stage.run_phases`), then remove orphans and work files and mark the
stage complete. What differs between stages (one map, or exchanges, components and a final map) is
declared by the stage itself; this module knows no stage by name or kind.

The same code runs on an embedded local Ray (started in-process with the machine's cores) and on a
cluster (under `ray job submit`, where RAY_ADDRESS is set); there is no separate local code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from pipeline.config import ResolvedConfig, StageSpec, config_hash
from pipeline.context import StageContext
from pipeline.exchange import PhaseFailed
from pipeline.layout import (
    CONFIG_JSON,
    MANIFEST,
    REJECTS_DIR,
    REMOVED_DIR,
    ROWS_DELETED,
    STATS_DIR,
    WORK_DIR,
    read_manifest,
    read_sidecars,
    rows_deleted,
    shard_files,
)
from pipeline.shards import Task, is_done, write_manifest
from pipeline.stage import StageError
from pipeline.storage import Storage


class PipelineError(RuntimeError):
    """A stage finished with failed shards; finished shards are kept and a rerun retries the rest."""


@dataclass
class StageReport:
    folder: str
    total: int
    skipped: int
    ran: int
    failures: list[dict] = field(default_factory=list)


class Runner:
    """Runs a resolved config stage by stage, or one stage again."""

    def __init__(
        self, cfg: ResolvedConfig, *, workers: int | None = None, console: Console | None = None, progress: bool = True
    ):
        self.cfg = cfg
        self.storage = Storage(cfg.pipeline.output)
        self.workers = workers or cfg.pipeline.ray.workers
        self.console = console or Console(stderr=True)
        self.progress = progress

    # planning

    def upstream_tasks(self, folder: str) -> list[Task]:
        """One task per finished shard of a stage folder, in key order."""
        tasks = []
        for sidecar in read_sidecars(self.storage, folder):
            for out in sidecar["outputs"]:
                key = out["name"].removesuffix(".parquet")
                tasks.append(
                    Task(key=key, input_path=self.storage.path(folder, out["name"]), fingerprint=out["fingerprint"])
                )
        return sorted(tasks, key=lambda t: t.key)

    def context(self, spec: StageSpec) -> StageContext:
        """The stage's context with its tasks planned and the unfinished ones found."""
        upstream = self.cfg.upstream(spec)
        inputs = self.upstream_tasks(upstream.folder) if upstream else []
        chash = spec.config_hash
        if spec.stage_cls.corpus_wide:  # every shard's result depends on every input shard
            chash = config_hash([spec.config_hash, [t.fingerprint for t in inputs]])
        ctx = StageContext(
            spec=spec,
            storage=self.storage,
            upstream=upstream.folder if upstream else None,
            inputs=inputs,
            config_hash=chash,
            batch_rows=self.cfg.pipeline.batch_rows,
            workers=self.workers,
            console=self.console,
            progress=self.progress,
            config_path=self.cfg.path,
        )
        ctx.tasks = spec.stage_cls.plan(ctx)
        gone = rows_deleted(self.storage, spec.folder)
        ctx.todo = [t for t in ctx.tasks if not is_done(self.storage, spec.folder, t, chash, rows_gone=gone)]
        todo_keys = {t.key for t in ctx.todo}
        ctx.done_keys = [t.key for t in ctx.tasks if t.key not in todo_keys]
        return ctx

    # running

    def run_all(self) -> list[StageReport]:
        self.storage.makedirs(self.storage.root)
        self.storage.write_json(self.storage.path(CONFIG_JSON), self.cfg.to_json())
        reports = []
        for spec in self.cfg.all_stages:
            reports.append(self.run_stage(spec))
            self.drop_intermediate(spec)
        return reports

    def run_one(self, name: str) -> tuple[StageReport, list[tuple[str, int]]]:
        """Reruns one stage from its upstream output; returns its report and later stages now stale."""
        spec = self.cfg.find_stage(name)
        upstream = self.cfg.upstream(spec)
        if upstream is not None:
            self.require_complete(upstream)
        report = self.run_stage(spec)
        self.drop_intermediate(spec)
        return report, self.mark_downstream_stale(spec)

    def drop_intermediate(self, spec: StageSpec) -> None:
        """With `keep_intermediate: false`, deletes the kept rows of the stage `spec` read, now that it has
        committed (each stage is read by the next one only); its rejects, removed spans, sidecars and
        manifest stay, and `_rows_deleted.json` tells later runs that those files are gone on purpose."""
        upstream = self.cfg.upstream(spec)
        if self.cfg.pipeline.keep_intermediate or upstream is None:
            return
        names = shard_files(self.storage, upstream.folder)
        marker = self.storage.path(upstream.folder, ROWS_DELETED)
        if not names and self.storage.exists(marker):
            return
        deleted = (self.storage.read_json_or_none(marker) or {}).get("files", [])
        self.storage.write_json(marker, {"files": sorted({*deleted, *names}), "read_by": spec.folder})
        for name in names:  # the marker first: a crash in between leaves files that are simply deleted again
            self.storage.delete(self.storage.path(upstream.folder, name))

    def require_complete(self, spec: StageSpec) -> None:
        if not self.storage.exists(self.storage.path(spec.folder, MANIFEST)):
            raise PipelineError(
                f"{spec.folder} has not run yet; run `winnow run` (or `winnow stage {spec.name}`) first"
            )
        ctx = self.context(spec)
        if ctx.todo:
            raise PipelineError(
                f"{spec.folder} is out of date ({len(ctx.todo)} of {len(ctx.tasks)} shards need work); "
                f"rerun it first with `winnow stage {spec.name}`"
            )

    def mark_downstream_stale(self, spec: StageSpec) -> list[tuple[str, int]]:
        """After a stage reran, later stages whose inputs changed get status `stale` in their manifest."""
        stale = []
        upstream_stale = False
        for later in [s for s in self.cfg.stages if s.index > spec.index]:
            manifest = read_manifest(self.storage, later.folder)
            if manifest is None:
                continue
            ctx = self.context(later)
            if ctx.todo or upstream_stale:
                upstream_stale = True
                stale.append((later.folder, len(ctx.todo) if ctx.todo else len(ctx.tasks)))
                manifest.update(
                    status="stale", pending_shards=sorted(t.key for t in ctx.todo) or manifest.get("done_shards", [])
                )
                self.storage.write_json(self.storage.path(later.folder, MANIFEST), manifest)
        return stale

    def run_stage(self, spec: StageSpec) -> StageReport:
        ctx = self.context(spec)
        folder, cls = spec.folder, spec.stage_cls
        if ctx.todo:
            self.require_inputs(ctx)
        manifest = dict(
            stage=spec.name,
            version=spec.version,
            settings=spec.config.model_dump(mode="json"),
            stage_config_hash=ctx.config_hash,
            inputs=ctx.inputs or ctx.tasks,
            tasks=ctx.tasks,
        )
        write_manifest(self.storage, folder, **manifest, done=ctx.done_keys, status="running")
        ran = len(ctx.todo)
        if ctx.todo:
            try:
                cls.run_phases(ctx)
            except (StageError, PhaseFailed) as err:
                ctx.failures.append({"key": folder, "input": ctx.upstream or "", "error": str(err)})
                write_manifest(
                    self.storage, folder, **manifest, done=ctx.done_keys, status="incomplete", failures=ctx.failures
                )
                raise PipelineError(f"{folder}: {err}") from None
        failures = ctx.failures
        if not failures:
            self.remove_orphans(folder, ctx.tasks)
            if not cls.keeps_work(spec.config):
                self.storage.delete_dir(self.storage.path(folder, WORK_DIR))
        status = "complete" if not failures else "incomplete"
        write_manifest(self.storage, folder, **manifest, done=ctx.done_keys, status=status, failures=failures)
        if failures:
            first = failures[0]
            raise PipelineError(
                f"{folder}: {len(failures)} of {len(ctx.tasks)} shards failed (first: {first['key']}: "
                f"{first['error']}); finished shards are kept, rerun the same command to retry the rest"
            )
        try:
            cls.finish(ctx)
        except StageError as err:
            raise PipelineError(f"{folder}: {err}") from None
        if not ran:
            ctx.say(f"{folder}: all {len(ctx.tasks)} shards up to date, nothing to do")
        return StageReport(folder, len(ctx.tasks), len(ctx.tasks) - ran, ran, failures)

    def require_inputs(self, ctx: StageContext) -> None:
        """A stage with work to do needs its upstream's kept rows; they are gone when an earlier run
        deleted them (`keep_intermediate: false`), and only a run from the raw inputs brings them back."""
        if ctx.upstream is None or not rows_deleted(self.storage, ctx.upstream):
            return
        missing = [t for t in ctx.inputs if not self.storage.exists(t.input_path)]
        if missing:
            raise PipelineError(
                f"{ctx.folder} needs the kept rows of {ctx.upstream} ({len(missing)} of {len(ctx.inputs)} shards, "
                f"first {missing[0].key}), which an earlier run deleted after use (keep_intermediate: false); "
                f"rerun into a fresh output folder (or delete this one), with keep_intermediate: true to rerun "
                f"single stages later"
            )

    def remove_orphans(self, folder: str, tasks: list[Task]) -> None:
        """Deletes shards, rejects and sidecars that no current task produced (inputs removed, resharded, or
        another layout of output shards), and the temporary files of writers that were killed."""
        for where in (folder, f"{folder}/{STATS_DIR}", f"{folder}/{REJECTS_DIR}", f"{folder}/{REMOVED_DIR}"):
            self.storage.remove_temporaries(self.storage.path(where))
        keys = {t.key for t in tasks}
        wanted_parts, wanted_rejects, wanted_removed = set(), set(), set()
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
            if sidecar.get("removed"):
                wanted_removed.add(sidecar["removed"]["name"])
        for name in shard_files(self.storage, folder):
            if name not in wanted_parts:
                self.storage.delete(self.storage.path(folder, name))
        for sub, wanted in ((REJECTS_DIR, wanted_rejects), (REMOVED_DIR, wanted_removed)):
            for name in shard_files(self.storage, f"{folder}/{sub}"):
                if name not in wanted:
                    self.storage.delete(self.storage.path(folder, sub, name))
