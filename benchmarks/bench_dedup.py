"""MinHash near-duplicate detection, winnow vs DataTrove, on the same labelled English corpus.

The corpus comes from benchmarks/make_dedup_sets.py in its big mode (`--docs`, default 100,000
rows; real passages, then documents remixed from real sentence units, ~30% of the originals with
1-3 lightly edited copies each; every row distinct text; labels `true_dup` and `cluster`). It is
built once and cached under out/bench/ (or given with --corpus).

DataTrove (0.10.1, run by --peer-python in its own venv as a subprocess) runs its four MinHash
stages with LocalPipelineExecutor, as its own example does:
  1. JsonlReader -> MinhashDedupSignature      (--tasks tasks, one JSONL input file each)
  2. MinhashDedupBuckets                       (14 tasks: one per bucket, as it requires)
  3. MinhashDedupCluster(save_cluster_id, save_cluster_size)        (1 task, as it requires)
  4. JsonlReader -> MinhashDedupFilter(load_cluster_ids, load_cluster_sizes,
                                       exclusion_writer=JsonlWriter) -> JsonlWriter
with MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8), its default 64-bit xxhash
(needs `xxhash<4` in the peer venv, as DataTrove's `processing` extra pins it: xxhash 4 refuses
the str that DataTrove hashes; `--dt-hash sha1` otherwise), its default English tokenisation
(simplify_text, then spaCy's blank `en` tokenizer: about 90% of its CPU time here) and --workers
processes. The two writers keep only
`id` and the cluster metadata, uncompressed, which is about what winnow writes (its predictions),
so neither side pays for re-writing the texts.

winnow runs its command line, as a user would:
  winnow eval dedup INPUT.parquet --method minhash --predictions PRED.parquet --config SETTINGS.yaml
with INPUT = id, text, lang, true_dup and SETTINGS = {ngram: 5, bands: 14, rows: 8}.

Both are measured from outside the same way: wall seconds of the whole command (interpreter
start, imports, Ray start for winnow, reading the input, all stages, writing the output); CPU
seconds of every process of the run, children included: the larger of (a) the kernel's
children-rusage (this script makes itself a child subreaper, so processes orphaned during the run
are re-parented to it and reaped; still, it misses processes whose parent never passes their
times on, e.g. when it ignores SIGCHLD: it saw only 7-35 s of winnow's ~38 s on Ray) and (b) a /proc sampler at 10 Hz that keeps the last CPU time seen
of every process in the tree (missing at most the last 0.1 s of each); docs/s per core = docs /
CPU seconds; peak memory = the largest sum over the process tree, sampled from /proc, of RSS
(10 Hz; shared pages counted once per process, e.g. a forkserver's children or Ray's object
store) and of PSS (1 Hz; shared pages split between the processes). The sampler's own CPU and the
CPU used meanwhile by processes outside the run are printed too: on a small machine, anything
else running makes the wall times meaningless (a warning says so).

What counts as "predicted duplicate": a row that ends up in a near-duplicate cluster of size >= 2,
for both systems. For winnow that is `dup_cluster_size >= 2` in the predictions. DataTrove's
cluster stage writes a node only if it was in at least one matched bucket pair, and its filter
removes every member of a cluster except its union-find root (the survivor); so a
row is a predicted duplicate if it was removed OR it carries `minhash_cluster_size >= 2`. Caveat
found in DataTrove 0.10.1: MinhashDedupFilter returns early, without adding any cluster metadata,
for a task that has no `.remove` file (no document of that task was removed), so a survivor whose
task lost no document would look unique in the filter's output. The script therefore also reads
the cluster stage's `{rank:06d}.sizes` files (the authoritative list of clustered documents, by
task and document index) and counts a row as predicted if either source says so; it prints how
many rows only the `.sizes` files revealed. Scoring "removed by the filter" instead would make
DataTrove's recall look lower only because survivors are not removed (winnow's survivors likewise
have `dup_cluster` = their own id); the "removed" column compares that side: rows each system
would drop against the true number of copies.

Run (about 4 minutes for 100,000 documents on 2 idle cores, nearly all of it DataTrove):
    .venv/bin/python benchmarks/bench_dedup.py --peer-python /path/to/datatrove-venv/bin/python [--docs 100000] [--workers 2]
    # peer venv: python3.11 -m venv V && V/bin/pip install datatrove==0.10.1 spacy regex tldextract nltk \
    #            pyahocorasick fasteners "xxhash<4" tokenizers orjson
    # (datatrove.pipeline.dedup imports `tokenizers` through its exact-substring module)
Options: --skip-winnow / --skip-datatrove, --corpus FILE (a make_dedup_sets.py Parquet), --tasks,
--winnow-settings YAML, --winnow PATH, --keep DIR (keep the work files), --json FILE (all figures).

Only the standard library is imported at the top: the peer interpreter imports this file too
(as its own `__main__`, and again in DataTrove's worker processes).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"ngram": 5, "bands": 14, "rows": 8}
NUM_BUCKETS, HASHES_PER_BUCKET, NGRAMS = 14, 8, 5


# --------------------------------------------------------------------------- process-tree meter

_CLK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _make_subreaper() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001 - not Linux: the rusage figure may then miss orphans
        return False


def _proc_table() -> dict[int, tuple[int, float, int]]:
    """pid -> (ppid, own CPU seconds, start time) for every process we can read."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        out[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK, int(fields[19]))
    return out


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all processes, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / _CLK  # user nice system idle iowait irq softirq steal: minus idle, iowait


def _rss(pid: int) -> int:
    """RSS bytes of one process (cheap: /proc/PID/statm), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _pss(pid: int) -> int:
    """PSS bytes of one process (/proc/PID/smaps_rollup: costly for processes that map a lot of
    shared memory, e.g. Ray's object store, so sampled less often), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeMeter:
    """Runs one command and measures it with all its descendants (see the module docstring)."""

    def __init__(self, interval: float = 0.1, pss_every: int = 10):
        self.interval, self.pss_every = interval, pss_every
        self.subreaper = _make_subreaper()

    def run(self, cmd: list[str], log_path: Path, env: dict | None = None) -> dict:
        me = os.getpid()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seen: dict[tuple[int, int], float] = {}  # (pid, start) -> last own CPU seconds
        peak = {"rss": 0, "pss": 0, "procs": 0}
        stop = threading.Event()

        n_samples = [0]

        def sample():
            n_samples[0] += 1
            with_pss = n_samples[0] % self.pss_every == 1
            table = _proc_table()
            kids: dict[int, list[int]] = {}
            for pid, (ppid, _, _) in table.items():
                kids.setdefault(ppid, []).append(pid)
            tree, todo = [], list(kids.get(me, []))
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo += kids.get(pid, [])
            rss = pss = 0
            for pid in tree:
                _, cpu, start = table[pid]
                cpu_seen[(pid, start)] = cpu
                rss += _rss(pid)
                pss += _pss(pid) if with_pss else 0
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            peak["procs"] = max(peak["procs"], len(tree))
            return tree

        def loop():
            while not stop.is_set():
                sample()
                stop.wait(self.interval)

        busy0 = _machine_busy_s()
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        with open(log_path, "wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            th = threading.Thread(target=loop, daemon=True)
            th.start()
            rc = proc.wait()
            wall = time.perf_counter() - t0
        # reap what the command left behind (orphans re-parented to us), up to a minute
        deadline, lingering = time.time() + 60, []
        while True:
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
            lingering = sample()
            if not lingering or time.time() > deadline:
                break
            time.sleep(0.2)
        stop.set()
        th.join()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_rusage = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        cpu_sampled = sum(cpu_seen.values())
        busy = _machine_busy_s() - busy0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        meter_s = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)  # this process: the sampler
        return {
            "rc": rc,
            "wall_s": wall,
            "cpu_s": max(cpu_rusage, cpu_sampled),
            "cpu_rusage_s": cpu_rusage,
            "cpu_sampled_s": cpu_sampled,
            "peak_rss_bytes": peak["rss"],
            "peak_pss_bytes": peak["pss"],
            "max_processes": peak["procs"],
            "lingering_pids": lingering,
            "subreaper": self.subreaper,
            # CPU that processes outside the run used meanwhile: a busy machine makes the wall time meaningless
            "other_cpu_s": max(0.0, busy - max(cpu_rusage, cpu_sampled) - meter_s),
            "meter_cpu_s": meter_s,
        }


# --------------------------------------------------------------------------- DataTrove (peer side)


def _dt_adapter(self, document) -> dict:  # JsonlWriter adapter: ids and cluster metadata only
    return {
        "id": document.id,
        "cluster": document.metadata.get("minhash_cluster_id", -1),
        "size": document.metadata.get("minhash_cluster_size", -1),
    }


def peer_datatrove(in_dir: str, work: str, workers: int, tasks: int, hash_fc: str) -> None:
    """Runs inside the peer interpreter: DataTrove's four MinHash stages, timed one by one."""
    t_import = time.perf_counter()
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.typeshelper import Languages

    import_s = time.perf_counter() - t_import
    cfg = MinhashConfig(
        n_grams=NGRAMS,
        num_buckets=NUM_BUCKETS,
        hashes_per_bucket=HASHES_PER_BUCKET,
        hash_config=HashConfig(precision=64, hash_fc=hash_fc),
    )
    w = Path(work)
    reader = lambda: JsonlReader(in_dir, glob_pattern="*.jsonl", compression=None)  # noqa: E731
    stages = [
        (
            "1 signatures",
            LocalPipelineExecutor(
                [
                    reader(),
                    MinhashDedupSignature(output_folder=str(w / "signatures"), config=cfg, language=Languages.english),
                ],
                tasks=tasks,
                workers=workers,
                logging_dir=str(w / "logs/signatures"),
            ),
        ),
        (
            "2 buckets",
            LocalPipelineExecutor(
                [
                    MinhashDedupBuckets(
                        input_folder=str(w / "signatures"), output_folder=str(w / "buckets"), config=cfg
                    )
                ],
                tasks=cfg.num_buckets,
                workers=workers,
                logging_dir=str(w / "logs/buckets"),
            ),
        ),
        (
            "3 cluster",
            LocalPipelineExecutor(
                [
                    MinhashDedupCluster(
                        input_folder=str(w / "buckets"),
                        output_folder=str(w / "remove_ids"),
                        config=cfg,
                        save_cluster_id=True,
                        save_cluster_size=True,
                    )
                ],
                tasks=1,
                workers=1,
                logging_dir=str(w / "logs/clusters"),
            ),
        ),
        (
            "4 filter",
            LocalPipelineExecutor(
                [
                    reader(),
                    MinhashDedupFilter(
                        input_folder=str(w / "remove_ids"),
                        load_cluster_ids=True,
                        load_cluster_sizes=True,
                        exclusion_writer=JsonlWriter(str(w / "removed"), compression=None, adapter=_dt_adapter),
                    ),
                    JsonlWriter(str(w / "kept"), compression=None, adapter=_dt_adapter),
                ],
                tasks=tasks,
                workers=workers,
                logging_dir=str(w / "logs/filter"),
            ),
        ),
    ]
    times = {}
    for name, ex in stages:
        t0 = time.perf_counter()
        ex.run()
        times[name] = time.perf_counter() - t0
    import datatrove

    version = getattr(datatrove, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v

        version = _v("datatrove")
    (w / "peer_result.json").write_text(
        json.dumps(
            {"import_s": import_s, "stage_wall_s": times, "version": version, "python": platform.python_version()}
        )
    )


# --------------------------------------------------------------------------- parent side


def load_corpus(args) -> dict:
    import pyarrow.parquet as pq

    if args.corpus:
        path = Path(args.corpus)
    else:
        path = REPO / "out" / "bench" / f"dedup-en-{args.docs}-s{args.seed}.parquet"
        if not path.exists():
            sys.path.insert(0, str(REPO / "benchmarks"))
            import make_dedup_sets as mds

            print(f"building the corpus ({args.docs:,} rows) -> {path.relative_to(REPO)}", file=sys.stderr)
            cols = mds.build("en", args.docs, seed=args.seed, fill="remix", log=lambda m: print(m, file=sys.stderr))
            mds.write_parquet(cols, path)
    t = pq.read_table(path, columns=["id", "text", "lang", "cluster", "true_dup"])
    return {"path": str(path), **{c: t.column(c).to_pylist() for c in t.column_names}}


def prf(pred: list[bool], true: list[bool]) -> dict:
    tp = sum(p and t for p, t in zip(pred, true))
    fp = sum(p and not t for p, t in zip(pred, true))
    fn = sum(t and not p for p, t in zip(pred, true))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": prec,
        "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "predicted": tp + fp,
    }


def run_datatrove(args, corpus: dict, tmp: Path, meter: TreeMeter) -> dict:
    in_dir, work = tmp / "dt_input", tmp / "dt_work"
    in_dir.mkdir()
    work.mkdir()
    n, tasks = len(corpus["id"]), args.tasks or args.workers
    files = []  # per task: the ids in file order (= DataTrove's doc index in that task)
    for r in range(tasks):
        lo, hi = r * n // tasks, (r + 1) * n // tasks
        with open(in_dir / f"part-{r:05d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(lo, hi):
                f.write(json.dumps({"id": corpus["id"][i], "text": corpus["text"][i]}, ensure_ascii=False) + "\n")
        files.append(corpus["id"][lo:hi])
    hash_fc = args.dt_hash
    if hash_fc == "auto":
        # DataTrove 0.10.1 hashes str, which xxhash >= 4 refuses (it pins xxhash<4 in its `processing` extra)
        ok = (
            subprocess.run(
                [args.peer_python, "-c", "import xxhash; xxhash.xxh64_intdigest('a')"], capture_output=True
            ).returncode
            == 0
        )
        hash_fc = "xxhash" if ok else "sha1"
    cmd = [
        args.peer_python,
        str(Path(__file__).resolve()),
        "--_peer-datatrove",
        str(in_dir),
        str(work),
        str(args.workers),
        str(tasks),
        hash_fc,
    ]
    print(f"DataTrove: {shlex.join(cmd)}", file=sys.stderr)
    m = meter.run(cmd, tmp / "datatrove.log")
    if m["rc"] != 0:
        print((tmp / "datatrove.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        raise SystemExit(f"DataTrove run failed (rc {m['rc']}); log above")
    peer = json.loads((work / "peer_result.json").read_text())

    # rows in a cluster of size >= 2, from the filter's outputs ...
    removed, in_cluster, no_meta = set(), set(), 0
    for sub, is_removed in (("removed", True), ("kept", False)):
        for p in sorted((work / sub).glob("*.jsonl")):
            for line in open(p, encoding="utf-8"):
                rec = json.loads(line)
                if is_removed:
                    removed.add(rec["id"])
                if rec["size"] == -1:
                    no_meta += 1
                elif rec["size"] >= 2:
                    in_cluster.add(rec["id"])
    # ... and from the cluster stage's .sizes files: (doc index, size) pairs per task
    import struct

    from_sizes = set()
    for r, ids in enumerate(files):
        p = work / "remove_ids" / f"{r:06d}.sizes"
        if p.exists():
            data = p.read_bytes()
            for doc, size in struct.iter_unpack("<II", data):
                if size >= 2:
                    from_sizes.add(ids[doc])
    filter_view = removed | in_cluster
    pred_ids = filter_view | from_sizes
    return {
        **m,
        "stage_wall_s": peer["stage_wall_s"],
        "import_s": peer["import_s"],
        "version": peer["version"],
        "hash_fc": hash_fc,
        "tasks": tasks,
        "removed": len(removed),
        "pred": [i in pred_ids for i in corpus["id"]],
        "only_in_sizes_files": len(from_sizes - filter_view),
        "only_in_filter_output": len(filter_view - from_sizes),
        "rows_without_cluster_metadata": no_meta,
    }


def run_winnow(args, corpus: dict, tmp: Path, meter: TreeMeter) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    inp, pred_path, settings = tmp / "winnow_input.parquet", tmp / "winnow_pred.parquet", tmp / "settings.yaml"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(corpus["id"], pa.string()),
                "text": pa.array(corpus["text"], pa.large_string()),
                "lang": pa.array(corpus["lang"], pa.string()),
                "true_dup": pa.array(corpus["true_dup"], pa.bool_()),
            }
        ),
        inp,
    )
    settings.write_text(args.winnow_settings + "\n")
    cmd = [
        args.winnow,
        "eval",
        "dedup",
        str(inp),
        "--method",
        "minhash",
        "--predictions",
        str(pred_path),
        "--config",
        str(settings),
    ]
    print(f"winnow: {shlex.join(cmd)}", file=sys.stderr)
    m = meter.run(cmd, tmp / "winnow.log")
    if m["rc"] != 0 or not pred_path.exists():
        print((tmp / "winnow.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        raise SystemExit(f"winnow run failed (rc {m['rc']}); log above")
    t = pq.read_table(pred_path, columns=["id", "dup_cluster", "dup_cluster_size"])
    ids, cl, sz = (t.column(c).to_pylist() for c in ("id", "dup_cluster", "dup_cluster_size"))
    if len(ids) != len(corpus["id"]) or set(ids) != set(corpus["id"]):
        raise SystemExit(f"winnow predictions: {len(ids)} rows, expected one per input id ({len(corpus['id'])})")
    by_id = dict(zip(ids, sz))
    return {
        **m,
        "pred": [by_id[i] >= 2 for i in corpus["id"]],
        "removed": sum(1 for i, c in zip(ids, cl) if c != i),
        "log_tail": (tmp / "winnow.log").read_text(errors="replace")[-1500:],
    }


def machine() -> str:
    try:
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if ln.startswith("Model name")
            ),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_peer-datatrove":
        in_dir, work, workers, tasks, hash_fc = argv[1:6]
        peer_datatrove(in_dir, work, int(workers), int(tasks), hash_fc)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=100_000, help="corpus rows (default 100,000)")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument("--corpus", help="a Parquet file from make_dedup_sets.py instead of building one")
    ap.add_argument("--peer-python", default=sys.executable, help="interpreter with datatrove installed")
    ap.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="DataTrove worker processes (default: the cores)",
    )
    ap.add_argument(
        "--tasks", type=int, default=0, help="DataTrove tasks (= input files) for stages 1 and 4 (default: --workers)"
    )
    ap.add_argument(
        "--dt-hash",
        choices=["auto", "xxhash", "sha1"],
        default="auto",
        help="DataTrove's hash function (auto: its default xxhash if the peer has it, else sha1)",
    )
    ap.add_argument("--winnow", default=str(REPO / ".venv" / "bin" / "winnow"), help="the winnow command")
    ap.add_argument(
        "--winnow-settings",
        default="{" + ", ".join(f"{k}: {v}" for k, v in SETTINGS.items()) + "}",
        help="the YAML mapping given to winnow as --config (default: %(default)s; winnow's num_perm stays "
        "at its default 128, of which 14 x 8 = 112 are used, DataTrove computes 112)",
    )
    ap.add_argument("--skip-winnow", action="store_true")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--keep", help="keep the work files in this folder (default: a temporary one, removed)")
    ap.add_argument("--json", help="write all figures to this file")
    args = ap.parse_args(argv)

    corpus = load_corpus(args)
    n = len(corpus["id"])
    true = corpus["true_dup"]
    true_removed = n - len(set(corpus["cluster"]))
    mean_chars = sum(map(len, corpus["text"])) / n
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_dedup_"))
    tmp.mkdir(parents=True, exist_ok=True)
    meter = TreeMeter()
    results = {}
    try:
        if not args.skip_datatrove:
            results["DataTrove"] = run_datatrove(args, corpus, tmp, meter)
        if not args.skip_winnow:
            results["winnow"] = run_winnow(args, corpus, tmp, meter)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    for r in results.values():
        r.update(prf(r["pred"], true))
        r["docs_per_s_per_core"] = n / r["cpu_s"] if r["cpu_s"] else 0.0
        r["docs_per_s"] = n / r["wall_s"]
    ratio = (
        results["winnow"]["docs_per_s_per_core"] / results["DataTrove"]["docs_per_s_per_core"]
        if len(results) == 2
        else None
    )

    command = "python " + shlex.join(["benchmarks/bench_dedup.py", *argv])
    header = (
        f"{n:,} English documents (mean {mean_chars:,.0f} characters; {sum(true):,} in true duplicate "
        f"clusters, {true_removed:,} copies to remove), 5-grams, 14 bands x 8 rows"
    )
    rows = [
        (
            "system",
            "wall s",
            "CPU s",
            "docs/s",
            "docs/s/core",
            "peak RSS MiB",
            "peak PSS MiB",
            "precision",
            "recall",
            "F1",
            "removed",
        )
    ]
    for name, r in results.items():
        rows.append(
            (
                name,
                f"{r['wall_s']:.1f}",
                f"{r['cpu_s']:.1f}",
                f"{r['docs_per_s']:,.0f}",
                f"{r['docs_per_s_per_core']:,.0f}",
                f"{r['peak_rss_bytes'] / 2**20:,.0f}",
                f"{r['peak_pss_bytes'] / 2**20:,.0f}",
                f"{r['precision']:.4f}",
                f"{r['recall']:.4f}",
                f"{r['f1']:.4f}",
                f"{r['removed']:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(header)
    for row in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if "DataTrove" in results:
        d = results["DataTrove"]
        print(
            f"DataTrove {d['version']} ({d['hash_fc']}, {args.workers} workers, {d['tasks']} tasks): stages "
            + ", ".join(f"{k} {v:.1f}s" for k, v in d["stage_wall_s"].items())
            + f"; imports {d['import_s']:.1f}s; "
            f"clustered rows found only in .sizes files: {d['only_in_sizes_files']}, rows without cluster metadata: "
            f"{d['rows_without_cluster_metadata']}"
        )
    for name, r in results.items():
        print(
            f"{name}: CPU by rusage {r['cpu_rusage_s']:.1f}s, by /proc sampling {r['cpu_sampled_s']:.1f}s; "
            f"up to {r['max_processes']} processes"
            + (f"; still running after it ended: {r['lingering_pids']}" if r["lingering_pids"] else "")
            + f"; the meter's own CPU {r['meter_cpu_s']:.1f}s; CPU used by other processes meanwhile: {r['other_cpu_s']:.1f}s"
        )
        if r["other_cpu_s"] > 0.1 * r["wall_s"]:
            print(
                f"  WARNING: other processes kept the machine busy during the {name} run "
                f"({r['other_cpu_s'] / r['wall_s']:.1f} cores on average): its wall time is not meaningful",
                file=sys.stderr,
            )
    if ratio:
        print(f"winnow / DataTrove, docs/s per core: {ratio:.2f}x")

    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    md = [
        f"**MinHash dedup, winnow vs DataTrove** ({date}; {machine()})",
        "",
        f"`{command}`",
        "",
        header + ".",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
    ]
    md += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    if ratio:
        md += ["", f"winnow / DataTrove, docs/s per core: **{ratio:.2f}x**."]
    busy = [
        f"{k} {r['other_cpu_s'] / r['wall_s']:.1f}" for k, r in results.items() if r["other_cpu_s"] > 0.1 * r["wall_s"]
    ]
    if busy:
        md += [
            "",
            "Note: other processes used the machine during the run (cores on average: "
            + ", ".join(busy)
            + "), so the wall times are inflated; the CPU figures are less affected.",
        ]
    md += [
        "",
        "Predicted duplicate = in a cluster of size >= 2 (both systems); removed = rows not kept as their "
        "cluster's survivor. CPU = all processes of the run, children included; docs/s/core = docs / CPU s.",
    ]
    print("\n" + "\n".join(md))
    if args.json:
        out = {
            "docs": n,
            "mean_chars": mean_chars,
            "true_dup": sum(true),
            "true_removed": true_removed,
            "corpus": corpus["path"],
            "command": command,
            "date": date,
            "machine": machine(),
            "ratio_per_core": ratio,
            "results": {k: {kk: vv for kk, vv in v.items() if kk not in ("pred",)} for k, v in results.items()},
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
