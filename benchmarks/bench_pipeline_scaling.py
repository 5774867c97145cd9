"""The whole CPU pipeline at 10k, 100k and 1M documents, and the same job on 1 node vs 2 nodes.

Part 1 (`--part scaling`). A deterministic corpus of two sources, written as JSONL.zst files of at
most 100,000 documents into a temp folder:
  - `web-en`: documents of 6-12 real English sentences drawn at random (the pool of
    benchmarks/bench_dedup_scaling.py: sentences of 6+ words of data/sample/en/ccnet-head.jsonl and
    refined.jsonl.gz), joined with spaces;
  - `web-zh`: documents of 6-12 real Chinese sentences (data/sample/zh/wikipedia.jsonl.zst split after
    。！？, 10+ characters), joined without spaces;
  half and half; every 11th document of a source is a near-copy of an earlier original of the same
  source with 1% of its words (English) or characters (Chinese) replaced, so 1/11 of the corpus
  (10% of the originals) are near-copies. Every document has a unique URL on one of 5,000 subdomains
  of example.org (so url_filter parses, looks up and deduplicates URLs but drops nothing), no id and
  no language (ingest makes ids, langid decides every language).
The pipeline is configs/default.yaml's stage list, unchanged except: the `minilm` member of the
safety stage is removed (a BERT model on the CPU, about 22 docs/s per core: docs/benchmarks.md), the
mix targets are {web-en: 0.5, web-zh: 0.5}, list paths are absolute, and `ingest.rows_per_shard` is
20000. Each size runs in its own process, `python -m winnow run CONFIG --no-report
--num-cpus 2` (an embedded local Ray), whose environment carries a unique marker variable; a thread
samples /proc/<pid>/status (VmHWM) and /proc/<pid>/stat (CPU time) of every marked process (the
driver, raylet, GCS, Ray's workers and agents) every 0.5 s. Reported: wall time of the command,
docs/s per core (= docs / wall / 2), the largest VmHWM of the driver and of any Ray worker process,
CPU seconds of all marked processes, and per stage the sum of the `seconds` of its stats sidecars,
the dedup phases (`_dedup.json`), and its span (time between the previous stage's and its own final
manifest write).

Part 2 (`--part nodes`). configs/default.yaml on the bundled sample (without the minilm member,
absolute paths) submitted with `ray job submit --working-dir .` to (a) a Ray head with 2 CPUs and
(b) a head with 1 CPU plus a second Ray node with 1 CPU on 127.0.0.1 (tests/ray_cluster.py), a fresh
cluster for every run, in the order a, b, a, b, ...; time from the `ray job submit` call to the
moment `ray job status` reports SUCCEEDED (polled every 0.5 s), plus Ray's own start-to-end time of
the job; the stage sidecars' `node` field says which nodes ran shard tasks.

    .venv/bin/python benchmarks/bench_pipeline_scaling.py --sizes 10000 100000 1000000 --json out/bench/pipeline_scaling.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from bench_dedup_scaling import sentence_pool  # noqa: E402  (English sentences of the bundled sample)
from ray_cluster import (  # noqa: E402
    cluster_env,
    job_status,
    marked_processes,
    start_head,
    start_worker_node,
    stop_cluster,
    stop_marked,
)

FILE_DOCS = 100_000
EN_FILLERS = ["data", "river", "blue", "seven"]  # as bench_dedup_scaling.py's near-copies
ZH_FILLERS = ["数", "河", "蓝", "七"]
SOURCES = ("web-en", "web-zh")
UPLOAD_EXCLUDES = [
    "/data/sample/",
    "/tests/data/",
    "/out/",
    ".pytest_cache/",
    "*.egg-info/",
    "__pycache__/",
]  # tests/test_job_submit.py
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- corpus ------------------------------------------------------------------------------------------


def zh_sentence_pool() -> list[str]:
    import zstandard

    with open(REPO / "data/sample/zh/wikipedia.jsonl.zst", "rb") as f:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
        texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return [s.strip() for t in texts for s in re.split(r"(?<=[。！？])", t) if len(s.strip()) >= 10]


def near_copy(text: str, lang: str, rnd: random.Random) -> str:
    """1% of the words (English) or characters (Chinese) replaced, at least one."""
    units = text.split(" ") if lang == "en" else list(text)
    fillers = EN_FILLERS if lang == "en" else ZH_FILLERS
    for _ in range(max(1, len(units) // 100)):
        units[rnd.randrange(len(units))] = rnd.choice(fillers)
    return (" " if lang == "en" else "").join(units)


def build_source(n: int, lang: str, folder: Path, seed: int = 0) -> dict:
    import orjson
    import zstandard

    pool = sentence_pool() if lang == "en" else zh_sentence_pool()
    sep = " " if lang == "en" else ""
    rnd = random.Random(f"{seed}-{lang}")
    folder.mkdir(parents=True, exist_ok=True)
    originals: list[tuple[int, ...]] = []  # sentence indices, so 1M documents need little memory
    stats = {"docs": 0, "near_copies": 0, "chars": 0, "files": 0}
    out = writer = None
    for i in range(n):
        if i % FILE_DOCS == 0:
            if writer is not None:
                writer.close()
                out.close()
            out = open(folder / f"part-{i // FILE_DOCS:04d}.jsonl.zst", "wb")
            writer = zstandard.ZstdCompressor(level=3).stream_writer(out)
            stats["files"] += 1
        if i % 11 == 10:
            text = near_copy(sep.join(pool[k] for k in rnd.choice(originals)), lang, rnd)
            stats["near_copies"] += 1
        else:
            picks = tuple(rnd.randrange(len(pool)) for _ in range(rnd.randint(6, 12)))
            originals.append(picks)
            text = sep.join(pool[k] for k in picks)
        url = f"https://s{rnd.randrange(5000)}.example.org/{lang}/{i:08d}.html"
        writer.write(orjson.dumps({"text": text, "url": url}) + b"\n")
        stats["docs"] += 1
        stats["chars"] += len(text)
    writer.close()
    out.close()
    return stats


def build_corpus(n: int, root: Path) -> dict:
    halves = {"web-en": (n // 2, "en"), "web-zh": (n - n // 2, "zh")}
    return {source: build_source(count, lang, root / source) for source, (count, lang) in halves.items()}


# --- configs -----------------------------------------------------------------------------------------


def default_config(inputs: list[dict], output: Path, targets: dict | None, rows_per_shard: int | None) -> dict:
    """configs/default.yaml with these inputs and output, absolute list paths, no MiniLM member."""
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["input"] = inputs
    data["output"] = str(output)
    if rows_per_shard:
        data["ingest"]["rows_per_shard"] = rows_per_shard
    for stage in data["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety":
            stage["members"] = [m for m in stage["members"] if m["name"] != "minilm"]
        if stage["name"] == "weights" and targets is not None:
            stage["mix"]["targets"] = targets
    return data


def write_yaml(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


# --- process sampling ----------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Every `interval` s: VmHWM, VmRSS and CPU time of every process carrying the marker."""

    def __init__(self, marker: str, interval: float = 0.5):
        super().__init__(daemon=True)
        self.marker, self.interval = marker, interval
        self.procs: dict[int, dict] = {}
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        self.samples += 1
        for pid, name in marked_processes(self.marker).items():
            try:
                status = open(f"/proc/{pid}/status").read()
                stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                info = self.procs.get(pid)
                if info is None:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                    info = self.procs[pid] = {"name": name, "cmd": cmd[:200], "hwm_kb": 0, "rss_kb": 0, "cpu_s": 0.0}
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    info["hwm_kb"] = max(info["hwm_kb"], int(line.split()[1]))
                elif line.startswith("VmRSS:"):
                    info["rss_kb"] = max(info["rss_kb"], int(line.split()[1]))
                elif line.startswith("Name:"):
                    info["comm"] = line.split(None, 1)[1]
            info["cpu_s"] = (int(stat[11]) + int(stat[12])) / CLK_TCK  # utime + stime (fields 14, 15)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def is_ray_worker(info: dict) -> bool:
    return info["cmd"].startswith("ray::") or "default_worker.py" in info["cmd"]


def load() -> float:
    return os.getloadavg()[0]


# --- stage figures from the output folder ------------------------------------------------------------------


def stage_figures(out: Path, started_epoch: float) -> list[dict]:
    rows, previous = [], started_epoch
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and re.match(r"\d\d_", p.name)):
        sidecars = [json.loads(p.read_text()) for p in (folder / "_stats").glob("*.json")]
        manifest = folder / "_manifest.json"
        finished = manifest.stat().st_mtime if manifest.exists() else previous
        dedup = json.loads((folder / "_dedup.json").read_text()) if (folder / "_dedup.json").exists() else None
        rows.append(
            {
                "stage": folder.name,
                "tasks": len(sidecars),
                "sidecar_s": round(sum(sc.get("seconds", 0) for sc in sidecars), 2),
                "dedup_phases_s": round(sum(dedup["seconds"].values()), 2) if dedup else None,
                "span_s": round(finished - previous, 1),
                "rows_in": sum(sc.get("rows_in", 0) for sc in sidecars),
                "rows_out": sum(sc.get("rows_out", 0) for sc in sidecars),
                "nodes": sorted({sc.get("node") for sc in sidecars} - {None}),
            }
        )
        previous = finished
    return rows


# --- part 1: scaling ------------------------------------------------------------------------------------


def run_size(n: int, workdir: Path, timeout: float) -> dict:
    corpus = workdir / "corpus"
    t0 = time.perf_counter()
    built = build_corpus(n, corpus)
    build_s = time.perf_counter() - t0
    inputs = [{"path": str(corpus / s), "source": s} for s in SOURCES]
    config = write_yaml(
        default_config(inputs, workdir / "out", {"web-en": 0.5, "web-zh": 0.5}, 20_000), workdir / "pipeline.yaml"
    )
    marker = uuid.uuid4().hex
    env = cluster_env(marker)
    env.pop("WINNOW_FAULTS", None)
    log = open(workdir / "run.log", "w")
    sampler = Sampler(marker)
    load_before = load()
    sampler.start()
    started_epoch = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "winnow", "run", str(config), "--no-report", "--num-cpus", "2"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout"
    wall = time.perf_counter() - t0
    sampler.stop()
    log.close()
    forced = stop_marked(marker, grace_s=10)  # whatever outlived the driver (normally nothing)
    if rc != 0:
        raise RuntimeError(
            f"{n:,} docs: the pipeline exited with {rc}:\n" + (workdir / "run.log").read_text(errors="replace")[-4000:]
        )
    procs = sampler.procs
    driver = procs.get(proc.pid, {"hwm_kb": 0, "cpu_s": 0})
    workers = [p for pid, p in procs.items() if pid != proc.pid and is_ray_worker(p)]
    system = [p for pid, p in procs.items() if pid != proc.pid and not is_ray_worker(p)]
    top_system = max(system, key=lambda p: p["hwm_kb"], default={"hwm_kb": 0, "comm": "-"})
    stages = stage_figures(workdir / "out", started_epoch)
    return {
        "docs": n,
        "corpus": built,
        "corpus_build_s": round(build_s, 1),
        "wall_s": round(wall, 1),
        "docs_per_s_per_core": round(n / wall / 2, 1),
        "driver_peak_mb": round(driver["hwm_kb"] / 1024),
        "worker_peak_mb": round(max((p["hwm_kb"] for p in workers), default=0) / 1024),
        "ray_system_peak_mb": round(top_system["hwm_kb"] / 1024),
        "ray_system_peak_proc": top_system.get("comm", top_system.get("name")),
        "worker_processes": len(workers),
        "processes": len(procs),
        "samples": sampler.samples,
        "cpu_s_all": round(sum(p["cpu_s"] for p in procs.values()), 1),
        "cpu_s_workers": round(sum(p["cpu_s"] for p in workers), 1),
        "cpu_s_driver": round(driver["cpu_s"], 1),
        "load_before": round(load_before, 2),
        "load_after": round(load(), 2),
        "kept": stages[-1]["rows_out"] if stages else None,
        "stages": stages,
        "leftover_processes_forced": forced,
    }


def print_scaling(rows: list[dict]) -> None:
    print(
        "\n| docs | wall s | docs/s | docs/s per core | driver peak RSS MB | worker peak RSS MB | CPU s (all processes) | kept | load before/after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['docs']:,} | {r['wall_s']:,.1f} | {r['docs'] / r['wall_s']:,.0f} | {r['docs_per_s_per_core']:,.0f} | {r['driver_peak_mb']:,} | "
            f"{r['worker_peak_mb']:,} | {r['cpu_s_all']:,.0f} | {r['kept']:,} | {r['load_before']:.1f} / {r['load_after']:.1f} |"
        )
    for r in rows:
        print(
            f"\nPer stage at {r['docs']:,} docs (sidecar s = sum of `seconds` in _stats/*.json; span = wall time between manifests):"
        )
        print("| stage | tasks | rows in | rows out | sidecar s | dedup phases s | span s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for s in r["stages"]:
            dp = f"{s['dedup_phases_s']:,.1f}" if s["dedup_phases_s"] is not None else ""
            print(
                f"| {s['stage']} | {s['tasks']} | {s['rows_in']:,} | {s['rows_out']:,} | {s['sidecar_s']:,.1f} | {dp} | {s['span_s']:,.1f} |"
            )


# --- part 2: 1 node vs 2 nodes -----------------------------------------------------------------------------


def sample_config(workdir: Path) -> Path:
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    inputs = [{**spec, "path": str(REPO / spec["path"])} for spec in data["input"]]
    return write_yaml(default_config(inputs, workdir / "out", None, None), workdir / "pipeline.yaml")


def job_times(head, job_id: str) -> dict:
    """Ray's own record of the job (start and end in ms), read through the job server's HTTP API."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{head.dashboard}/api/jobs/{job_id}", timeout=30) as r:
            info = json.loads(r.read())
        return {
            "ray_start_to_end_s": round((info["end_time"] - info["start_time"]) / 1000, 2),
            "driver_node": info.get("driver_node_id"),
        }
    except Exception as err:  # noqa: BLE001  (a figure we can do without)
        return {"ray_start_to_end_s": None, "ray_info_error": str(err)[:200]}


def run_nodes(mode: str, workdir: Path, timeout: float) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    config = sample_config(workdir)
    head = start_head(num_cpus=2) if mode == "a" else start_head(num_cpus=1)
    try:
        if mode == "b":
            start_worker_node(head, num_cpus=1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # both raylets registered before the clock starts
                res = head.ray("status", f"--address=127.0.0.1:{head.gcs_port}", timeout=60)
                if len(set(re.findall(r"node_[0-9a-f]+", res.stdout))) >= 2:
                    break
                time.sleep(1)
        job_id = f"bench-{uuid.uuid4().hex[:8]}"
        runtime_env = {"excludes": UPLOAD_EXCLUDES}
        load_before = load()
        t0 = time.perf_counter()
        res = head.ray(
            "job",
            "submit",
            "--log-color=false",
            "--address",
            head.dashboard,
            "--submission-id",
            job_id,
            "--working-dir",
            str(REPO),
            "--runtime-env-json",
            json.dumps(runtime_env),
            "--no-wait",
            "--",
            "python",
            "-m",
            "winnow",
            "run",
            str(config),
            "--no-report",
            timeout=300,
        )
        submitted = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"ray job submit failed: {res.stdout}{res.stderr}")
        status = None
        while time.perf_counter() - t0 < timeout:
            status, _ = job_status(head, job_id)
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        if status != "SUCCEEDED":
            logs = head.ray("job", "logs", "--address", head.dashboard, job_id, timeout=60)
            raise RuntimeError(f"job {job_id} ({mode}): {status}\n{(logs.stdout + logs.stderr)[-4000:]}")
        stages = stage_figures(workdir / "out", time.time() - elapsed)
        per_node: dict[str, int] = {}
        for p in (workdir / "out").glob("[0-9][0-9]_*/_stats/*.json"):
            node = json.loads(p.read_text()).get("node")
            per_node[node] = per_node.get(node, 0) + 1
        return {
            "mode": mode,
            "cpus": "2" if mode == "a" else "1 + 1",
            "submit_to_succeeded_s": round(elapsed, 1),
            "submit_call_s": round(submitted, 1),
            **job_times(head, job_id),
            "nodes_with_tasks": len(set(per_node) - {None}),
            "tasks_per_node": sorted((v for k, v in per_node.items() if k is not None), reverse=True),
            "tasks_without_node": per_node.get(None, 0),
            "kept": stages[-1]["rows_out"] if stages else None,
            "load_before": round(load_before, 2),
            "load_after": round(load(), 2),
        }
    finally:
        forced = stop_cluster(head)
        if forced:
            print(f"  (teardown SIGKILLed {forced})", file=sys.stderr)


def print_nodes(rows: list[dict]) -> None:
    print(
        "\n| cluster | run | submit -> SUCCEEDED s | Ray job start -> end s | nodes that ran shard tasks | shard tasks per node | kept | load before/after |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---|")
    seen: dict[str, int] = {}
    for r in rows:
        seen[r["mode"]] = seen.get(r["mode"], 0) + 1
        name = "(a) 1 node, 2 CPUs" if r["mode"] == "a" else "(b) 2 nodes, 1 + 1 CPUs"
        ray_s = f"{r['ray_start_to_end_s']:.1f}" if r.get("ray_start_to_end_s") is not None else "-"
        print(
            f"| {name} | {seen[r['mode']]} | {r['submit_to_succeeded_s']:.1f} | {ray_s} | {r['nodes_with_tasks']} | "
            f"{' + '.join(map(str, r['tasks_per_node']))} | {r['kept']:,} | {r['load_before']:.1f} / {r['load_after']:.1f} |"
        )


# --- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--part", choices=["scaling", "nodes", "both"], default="both")
    parser.add_argument("--node-runs", type=int, default=2, help="runs of each cluster shape")
    parser.add_argument("--json", help="write every figure here (rewritten after each run)")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds allowed per pipeline run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders (corpus and outputs)")
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_at_start": load()}, "scaling": [], "nodes": []}

    def save() -> None:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=1))

    if args.part in ("scaling", "both"):
        for n in args.sizes:
            workdir = Path(tempfile.mkdtemp(prefix=f"winnow-pipe-{n}-"))
            try:
                row = run_size(n, workdir, args.timeout)
            finally:
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
            results["scaling"].append(row)
            save()
            print(json.dumps({k: v for k, v in row.items() if k != "stages"}), flush=True)
        print_scaling(results["scaling"])
    if args.part in ("nodes", "both"):
        for i in range(args.node_runs):
            for mode in ("a", "b"):
                workdir = Path(tempfile.mkdtemp(prefix=f"winnow-nodes-{mode}{i}-"))
                try:
                    row = run_nodes(mode, workdir, 900)
                finally:
                    if not args.keep:
                        shutil.rmtree(workdir, ignore_errors=True)
                results["nodes"].append(row)
                save()
                print(json.dumps(row), flush=True)
        print_nodes(results["nodes"])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
