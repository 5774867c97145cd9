"""Ingest + normalise + write: winnow through its real runner versus bare pyarrow, in one run.

(a) winnow: a config with only the `normalize` stage (inputs and settings from configs/default.yaml)
    runs through `pipeline.runner.Runner(...).run_all()` on an embedded local Ray. Ray is started
    first and kept, so the wall time excludes Ray start-up. Each repeat writes into a fresh output
    folder (otherwise resume would skip every shard). Also reported: per-stage wall time and the sum
    of the per-shard `seconds` in the stats sidecars (worker compute); wall x cores minus that sum
    is what Ray scheduling, task start-up and idle cores cost.
(b) the ceiling: bare pyarrow, one process, pyarrow's thread pools capped at one thread: for every
    input file, read it (pyarrow.json.read_json through a decompressing input stream, or
    pyarrow.parquet.read_table), NFC-normalise the text column with pyarrow.compute.utf8_normalize,
    write Parquet (zstd).
Two explanatory rows (skip them with --no-extras):
(c) winnow without Ray: the same shard tasks as (a), `run_ingest_task` then `run_map_task`, called
    one after another in this process (one thread): winnow's own per-core cost.
(d) pyarrow as (b) but with winnow's whole normalize chain (`stages.normalize.normalize_text`: width
    folding, NFC, five regex passes, trim) instead of NFC only: the cost of the normalisation itself.
The differences between the rows split winnow's core-seconds into normalisation, worker code and Ray.

Docs and MB are the documents read and their text bytes (UTF-8, 1 MB = 1e6 bytes), the same
numerator for every row. `--scale N` writes N renamed copies of every input file to a temporary
folder so that fixed costs do not dominate; `--repeat K` runs each measurement K times and reports
the best (or, with --report median, the median); every run's wall time is printed too.

    .venv/bin/python benchmarks/bench_ingest.py                 # defaults: --scale 8 --repeat 3, about a minute on 2 cores
    .venv/bin/python benchmarks/bench_ingest.py --repeat 5 --report median --json out/bench_ingest.json
    .venv/bin/python benchmarks/bench_ingest.py --rows-per-shard 20000   # fewer, larger shards
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from anywhere without installing

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.json as pj  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "default.yaml"
SUFFIXES = (".jsonl.gz", ".jsonl.zst", ".jsonl", ".parquet")


# --- corpus --------------------------------------------------------------------------------------


def split_suffix(name: str) -> tuple[str, str]:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    raise ValueError(f"{name}: not a benchmark input (expected one of {SUFFIXES})")


def replicate_inputs(config_path: Path, scale: int, dest: Path) -> list[dict]:
    """N renamed copies of every configured input file, one folder per input; returns the input specs."""
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    specs = []
    for i, spec in enumerate(raw["input"]):
        src = Path(spec["path"])
        src = src if src.is_absolute() else REPO / src
        if not src.is_file() or src.name.endswith((".warc.gz", ".warc")):
            # WARC folders have no pyarrow counterpart to compare with; docs/ingest_web.md times them.
            print(f"skipping input {spec['path']}: not a JSONL/Parquet file", file=sys.stderr)
            continue
        folder = dest / f"{i:02d}-{spec['source']}"
        folder.mkdir(parents=True)
        stem, suffix = split_suffix(src.name)
        for copy in range(scale):
            shutil.copyfile(src, folder / f"{stem}-copy{copy:03d}{suffix}")
        specs.append({**spec, "path": str(folder)})
    return specs


def bench_config(config_path: Path, specs: list[dict], output: Path, dest: Path, rows_per_shard: int | None):
    """The default config with replicated inputs, a fresh output folder and only the normalize stage."""
    from winnow.config import load_config

    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    normalize = [s for s in raw.get("stages", []) if s.get("name") == "normalize"] or [{"name": "normalize"}]
    raw.update(input=specs, output=str(output), stages=normalize[:1])
    if rows_per_shard:
        raw.setdefault("ingest", {})["rows_per_shard"] = rows_per_shard
    path = dest / f"bench-{output.name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(path)


# --- (a) winnow --------------------------------------------------------------------------------------


def run_winnow(
    config_path: Path, specs: list[dict], work: Path, repeat: int, rows_per_shard: int | None
) -> list[dict]:
    from pipeline.runner import Runner
    from pipeline.stats import collect_funnel

    runs = []
    for k in range(repeat):
        output = work / f"winnow-out-{k}"
        cfg = bench_config(config_path, specs, output, work, rows_per_shard)
        runner = Runner(cfg, progress=False)
        stage_walls: list[float] = []
        run_stage = runner.run_stage

        def timed_stage(spec, _run=run_stage, _walls=stage_walls):  # per-stage wall time; run_all still drives
            t = time.perf_counter()
            try:
                return _run(spec)
            finally:
                _walls.append(time.perf_counter() - t)

        runner.run_stage = timed_stage
        started = time.perf_counter()
        runner.run_all()
        wall = time.perf_counter() - started
        funnel = {row.folder: row for row in collect_funnel(str(output))}
        ingest, normalize = funnel["00_ingest"], funnel["01_normalize"]
        tasks_ingest = len(runner.context(cfg.ingest).tasks)
        if ingest.status != "complete" or normalize.status != "complete":
            raise SystemExit(f"winnow run {k}: stages did not complete ({ingest.status}, {normalize.status})")
        runs.append(
            {
                "wall_s": wall,
                "docs": ingest.rows_out,
                "rejected": ingest.rows_rejected,
                "text_bytes": ingest.bytes_out,
                "tasks_ingest": tasks_ingest,
                "tasks_normalize": normalize.shards,
                "worker_s_ingest": ingest.seconds,
                "worker_s_normalize": normalize.seconds,
                "worker_s": ingest.seconds + normalize.seconds,
                "wall_s_ingest": stage_walls[0],
                "wall_s_normalize": stage_walls[1],
                "rows_per_shard": cfg.pipeline.ingest.rows_per_shard,
            }
        )
        shutil.rmtree(output)
        print(
            f"  winnow  run {k + 1}/{repeat}: {wall:6.2f} s wall, {runs[-1]['worker_s']:6.2f} s summed worker time",
            flush=True,
        )
    return runs


# --- (b) bare pyarrow --------------------------------------------------------------------------------


def read_input(path: Path) -> pa.Table:
    name = path.name
    if name.endswith(".parquet"):
        return pq.read_table(path, use_threads=False)
    compression = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
    with pa.input_stream(str(path), compression=compression) as stream:
        return pj.read_json(stream, read_options=pj.ReadOptions(use_threads=False, block_size=1 << 22))


@contextmanager
def single_thread():
    """Caps pyarrow's CPU and I/O thread pools at one thread, so a measurement is one core's worth."""
    cpu_before, io_before = pa.cpu_count(), pa.io_thread_count()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    try:
        yield
    finally:
        pa.set_cpu_count(cpu_before)
        pa.set_io_thread_count(io_before)


def run_pyarrow(files: list[tuple[Path, str]], work: Path, repeat: int, variant: str) -> list[dict]:
    """Single process, single thread: read, normalise, write each file."""
    if variant == "full":
        from stages.normalize import NormalizeConfig, normalize_text

        norm_cfg = NormalizeConfig()
        normalise = lambda text: normalize_text(text.cast(pa.large_string()), norm_cfg)  # noqa: E731  # winnow's text type
    else:
        normalise = lambda text: pc.utf8_normalize(text, form="NFC")  # noqa: E731
    runs = []
    with single_thread():
        for k in range(repeat):
            out = work / f"pyarrow-{variant}-out-{k}"
            out.mkdir()
            phases = {"read_s": 0.0, "normalize_s": 0.0, "write_s": 0.0}
            docs = text_bytes = 0
            cpu0, started = time.process_time(), time.perf_counter()
            for n, (path, text_field) in enumerate(files):
                t0 = time.perf_counter()
                table = read_input(path)
                t1 = time.perf_counter()
                idx = table.schema.get_field_index(text_field)
                text = table.column(idx)
                docs += table.num_rows
                text_bytes += int(pc.sum(pc.binary_length(text)).as_py() or 0)
                table = table.set_column(idx, text_field, normalise(text))
                t2 = time.perf_counter()
                pq.write_table(table, out / f"part-{n:05d}.parquet", compression="zstd")
                t3 = time.perf_counter()
                phases["read_s"] += t1 - t0
                phases["normalize_s"] += t2 - t1
                phases["write_s"] += t3 - t2
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            runs.append({"wall_s": wall, "cpu_s": cpu, "docs": docs, "text_bytes": text_bytes, **phases})
            shutil.rmtree(out)
            print(f"  pyarrow ({variant}) run {k + 1}/{repeat}: {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
    return runs


def input_files(specs: list[dict]) -> list[tuple[Path, str]]:
    files = []
    for spec in specs:
        for path in sorted(Path(spec["path"]).iterdir()):
            files.append((path, spec.get("text_field", "text")))
    return files


# --- (c) winnow's worker code without Ray ------------------------------------------------------------


def run_winnow_serial(
    config_path: Path, specs: list[dict], work: Path, repeat: int, rows_per_shard: int | None
) -> list[dict]:
    """The same shard tasks as (a), called one after another in this process: winnow's own cost, no Ray."""
    from pipeline.runner import Runner
    from pipeline.worker import run_map_task
    from stages.ingest.stage import run_ingest_task

    runs = []
    with single_thread():
        for k in range(repeat):
            output = work / f"serial-out-{k}"
            cfg = bench_config(config_path, specs, output, work, rows_per_shard)
            runner = Runner(cfg, progress=False)
            runner.storage.makedirs(runner.storage.root)
            spec = cfg.stages[0]
            stage = spec.stage_cls(spec.config)
            cpu0, started = time.process_time(), time.perf_counter()
            ctx = runner.context(cfg.ingest)
            sidecars = [
                run_ingest_task(
                    t,
                    cfg.pipeline.input[t.spec_index],
                    runner.storage,
                    ctx.folder,
                    ctx.config_hash,
                    cfg.pipeline.ingest.rows_per_shard,
                )
                for t in ctx.tasks
            ]
            mid = time.perf_counter()
            ctx = runner.context(spec)
            for t in ctx.tasks:
                run_map_task(stage, t, runner.storage, ctx.folder, ctx.config_hash, cfg.pipeline.batch_rows)
            wall = time.perf_counter() - started
            runs.append(
                {
                    "wall_s": wall,
                    "cpu_s": time.process_time() - cpu0,
                    "ingest_s": mid - started,
                    "normalize_s": wall - (mid - started),
                    "docs": sum(s["rows_out"] for s in sidecars),
                    "text_bytes": sum(s["bytes_out"] for s in sidecars),
                }
            )
            shutil.rmtree(output)
            print(
                f"  winnow no Ray run {k + 1}/{repeat}: {wall:6.2f} s wall (ingest {runs[-1]['ingest_s']:.2f} s, "
                f"normalize {runs[-1]['normalize_s']:.2f} s)",
                flush=True,
            )
    return runs


# --- report ------------------------------------------------------------------------------------------


def pick(runs: list[dict], how: str) -> dict:
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return dict(ordered[0] if how == "best" else ordered[(len(ordered) - 1) // 2])


def with_rates(run: dict, cores: float) -> dict:
    docs_s = run["docs"] / run["wall_s"]
    mb_s = run["text_bytes"] / 1e6 / run["wall_s"]
    run.update(cores=cores, docs_s=docs_s, mb_s=mb_s, docs_s_core=docs_s / cores, mb_s_core=mb_s / cores)
    return run


def machine() -> dict:
    import ray

    model = platform.processor() or "unknown"
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    ram = "unknown"
    try:
        kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "ram": ram,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "ray": ray.__version__,
        "git": git_commit(),
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def git_commit() -> str:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


LABELS = {
    "winnow": "winnow ingest+normalize, Ray",
    "serial": "  same shard tasks, no Ray (c)",
    "pyarrow": "pyarrow read+NFC+write",
    "pyarrow_full": "  pyarrow + winnow normalize_text",
}


def print_report(result: dict) -> None:
    m, w, p = result["machine"], result["winnow"], result["pyarrow"]
    cores = w["cores"]
    print()
    print(
        f"machine: {m['cores']} cores, {m['cpu_model']}, {m['ram']} RAM; Python {m['python']}, pyarrow {m['pyarrow']}, "
        f"Ray {m['ray']}; winnow {m['git']}"
    )
    busy_before = (
        float(result["load_average"]["before"].split()[0]) if result["load_average"]["before"] != "unknown" else 0.0
    )
    print(
        f"load average (1, 5, 15 min) before: {result['load_average']['before']}, after: {result['load_average']['after']}"
        + ("  (the machine was busy before the run: figures are noisy)" if busy_before > 0.5 else "")
    )
    print(
        f"corpus: {w['docs']:,} docs, {w['text_bytes'] / 1e6:.1f} MB of text ({result['scale']} copies of the sample, "
        f"{result['files']} files); {result['report']} of {result['repeat']} runs; rows_per_shard {w['rows_per_shard']}"
    )
    header = f"{'':34} {'cores':>5} {'wall s':>7} {'docs/s':>9} {'MB/s':>6} {'docs/s/core':>11} {'MB/s/core':>9} {'vs pyarrow/core':>15}"
    print(header)
    print("-" * len(header))
    for key in ("winnow", "serial", "pyarrow", "pyarrow_full"):
        run = result.get(key)
        if run:
            ratio = run["docs_s_core"] / p["docs_s_core"]
            print(
                f"{LABELS[key]:34} {run['cores']:>5g} {run['wall_s']:7.2f} {run['docs_s']:9,.0f} {run['mb_s']:6.2f} "
                f"{run['docs_s_core']:11,.0f} {run['mb_s_core']:9.2f} {ratio:14.3f}x"
            )
    print()
    print(f"ratio winnow per core / pyarrow per core: {result['ratio_per_core']:.3f}")
    busy = w["worker_s"] / (w["wall_s"] * cores)
    print(
        f"winnow stage wall: ingest {w['wall_s_ingest']:.2f} s ({w['tasks_ingest']} tasks), normalize {w['wall_s_normalize']:.2f} s "
        f"({w['tasks_normalize']} tasks)"
    )
    print(
        f"winnow worker compute (sum of sidecar seconds): {w['worker_s']:.2f} s (ingest {w['worker_s_ingest']:.2f} s, "
        f"normalize {w['worker_s_normalize']:.2f} s) of wall x cores = {w['wall_s'] * cores:.2f} core-s: busy {100 * busy:.0f}%, "
        f"{w['wall_s'] * cores - w['worker_s']:.2f} core-s outside shard tasks (Ray Data scheduling, task start-up, driver, idle cores)"
    )
    s, pf = result.get("serial"), result.get("pyarrow_full")
    if s and pf:
        total = w["wall_s"] * cores
        parts = [
            ("pyarrow read + NFC + write", p["wall_s"]),
            ("+ rest of winnow's normalize chain (width fold, 5 regexes, trim)", pf["wall_s"] - p["wall_s"]),
            (
                "+ winnow worker code (Python JSONL parsing, intermediate Parquet, bookkeeping)",
                s["wall_s"] - pf["wall_s"],
            ),
            ("+ Ray: scheduling, task overhead, contention, idle cores", total - s["wall_s"]),
        ]
        print(f"where winnow's {total:.2f} core-s go (differences between rows, so approximate):")
        for label, sec in parts:
            print(f"  {label:84} {sec:6.2f} core-s  {100 * sec / total:4.0f}%")
    for key in ("winnow", "serial", "pyarrow", "pyarrow_full"):
        if key in result["runs"]:
            walls = [r["wall_s"] for r in result["runs"][key]]
            print(
                f"{LABELS[key].strip()}: wall per run {', '.join(f'{x:.2f}' for x in walls)} s (median {statistics.median(walls):.2f} s)"
            )
    for key in ("pyarrow", "pyarrow_full"):
        run = result.get(key)
        if run:
            print(
                f"{LABELS[key].strip()}: read {run['read_s']:.2f} s, normalise {run['normalize_s']:.2f} s, write {run['write_s']:.2f} s; "
                f"CPU {run['cpu_s']:.2f} s for {run['wall_s']:.2f} s wall"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Ingest + normalise + write: winnow (real runner, local Ray) vs bare pyarrow."
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=8,
        help="copies of the sample corpus to process (default: 8; about a minute in all on 2 cores)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measurement; the best (or median) is reported (default: 3)"
    )
    parser.add_argument(
        "--report", choices=["best", "median"], default="best", help="which of the repeats to report (default: best)"
    )
    parser.add_argument("--cpus", type=int, default=None, help="CPUs for the embedded Ray (default: all cores)")
    parser.add_argument(
        "--rows-per-shard",
        type=int,
        default=None,
        help="override the config's ingest.rows_per_shard (default: keep it)",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="config whose inputs and normalize settings to use"
    )
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the two explanatory rows: winnow without Ray, pyarrow + normalize_text",
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="folder for the replicated corpus and outputs (default: system temp)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.scale < 1 or args.repeat < 1:
        parser.error("--scale and --repeat must be at least 1")

    config = args.config.resolve()
    os.chdir(REPO)  # config paths are relative to the repository root
    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="winnow-bench-ingest-", dir=args.tmp))
    try:
        specs = replicate_inputs(config, args.scale, work / "inputs")
        files = input_files(specs)
        print(f"replicated {len(files)} input files ({args.scale} copies each) into {work / 'inputs'}", flush=True)

        import ray

        from pipeline.ray_setup import ensure_ray

        t0 = time.perf_counter()
        ensure_ray(num_cpus=args.cpus)
        ray_cpus = float(ray.cluster_resources().get("CPU", 1))
        print(f"Ray started in {time.perf_counter() - t0:.1f} s (not counted) with {ray_cpus:g} CPUs", flush=True)
        try:
            runs = {"winnow": run_winnow(config, specs, work, args.repeat, args.rows_per_shard)}
        finally:
            ray.shutdown()
        if not args.no_extras:
            runs["serial"] = run_winnow_serial(config, specs, work, args.repeat, args.rows_per_shard)
        runs["pyarrow"] = run_pyarrow(files, work, args.repeat, "nfc")
        if not args.no_extras:
            runs["pyarrow_full"] = run_pyarrow(files, work, args.repeat, "full")

        result = {
            "machine": machine(),
            "load_average": {"before": load_before, "after": load_average()},
            "scale": args.scale,
            "repeat": args.repeat,
            "report": args.report,
            "files": len(files),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "runs": runs,
        }
        for key, key_runs in runs.items():
            result[key] = with_rates(pick(key_runs, args.report), ray_cpus if key == "winnow" else 1)
        w, p = result["winnow"], result["pyarrow"]
        result["ratio_per_core"] = w["docs_s_core"] / p["docs_s_core"]
        if (w["docs"] + w["rejected"], w["text_bytes"]) != (p["docs"], p["text_bytes"]):
            print(
                f"note: winnow kept {w['docs']:,} docs ({w['rejected']:,} rejects), {w['text_bytes']:,} text bytes; "
                f"pyarrow read {p['docs']:,} docs, {p['text_bytes']:,} bytes"
            )
        print_report(result)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
            print(f"\nresults written to {args.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
