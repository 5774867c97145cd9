"""How MinHash dedup scales: time of each phase and peak memory per Ray worker at 10k, 100k and 1M documents.

The corpus: documents of 6-12 sentences drawn at random from a pool of real sentences (the bundled
English sample), so documents are distinct, plus 10% near-copies (1% of words replaced) of random
documents. Each size runs in its own process with its own local Ray, through the real pipeline
(ingest, then `minhash_dedup` in keep mode); phase times come from the stage's `_dedup.json`.
"Signatures to clusters" is everything after the records phase (buckets, components, survivors).
Ingest runs first in its own Ray session; the dedup stage then gets fresh Ray workers, and peak RSS
per worker is the largest VmHWM of those worker processes (read from /proc before Ray stops), so it
covers every dedup task each worker ran and nothing else.

    .venv/bin/python benchmarks/bench_dedup_scaling.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sentence_pool() -> list[str]:
    texts = [json.loads(line)["text"] for line in open(REPO / "data/sample/en/ccnet-head.jsonl")]
    with gzip.open(REPO / "data/sample/en/refined.jsonl.gz", "rt") as f:
        texts += [json.loads(line)["text"] for line in f]
    pool = [s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s.split()) >= 6]
    return pool


def build_corpus(n: int, path: Path, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(seed)
    pool = sentence_pool()
    originals = int(n / 1.1)
    writer = None
    batch, ids = [], []
    made = []
    for i in range(n):
        if i < originals:
            text = " ".join(rnd.choice(pool) for _ in range(rnd.randint(6, 12)))
            if len(made) < 200_000:
                made.append(text)
        else:
            words = rnd.choice(made).split(" ")
            for _ in range(max(1, len(words) // 100)):
                words[rnd.randrange(len(words))] = rnd.choice(["data", "river", "blue", "seven"])
            text = " ".join(words)
        batch.append(text)
        ids.append(f"d{i:08d}")
        if len(batch) == 50_000 or i == n - 1:
            t = pa.table({"id": ids, "text": batch, "lang": ["en"] * len(batch)})
            writer = writer or pq.ParquetWriter(path, t.schema)
            writer.write_table(t)
            batch, ids = [], []
    writer.close()


def worker_peak_rss_mb() -> float:
    """Largest VmHWM among this machine's Ray worker processes."""
    peak = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            if "default_worker.py" not in cmd and not cmd.startswith("ray::"):
                continue
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def run_one(n: int, workdir: Path) -> dict:
    import yaml

    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import Runner
    from winnow.config import load_config

    corpus = workdir / f"corpus-{n}.parquet"
    started = time.perf_counter()
    build_corpus(n, corpus)
    built = time.perf_counter() - started
    cfg_path = workdir / f"cfg-{n}.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "input": [
                    {
                        "path": str(corpus),
                        "source": "scaling",
                        "format": "parquet",
                        "lang_field": "lang",
                        "url_field": None,
                    }
                ],
                "output": str(workdir / f"out-{n}"),
                "ingest": {"rows_per_shard": 20_000},
                "stages": [
                    {
                        "name": "minhash_dedup",
                        "mode": "keep",
                        "ngram": 5,
                        "num_perm": 112,
                        "bands": 14,
                        "rows": 8,
                        "keep_work": False,
                    }
                ],
            }
        )
    )
    import ray

    ingest_only = workdir / f"ingest-{n}.yaml"
    data = yaml.safe_load(cfg_path.read_text())
    ingest_only.write_text(yaml.safe_dump({**data, "stages": []}))
    ensure_ray(None)
    Runner(load_config(ingest_only), progress=False).run_all()
    ray.shutdown()  # fresh workers, so their peak RSS is the dedup stage's alone
    cfg = load_config(cfg_path)
    ensure_ray(cfg.pipeline.ray)
    t0 = time.perf_counter()
    Runner(cfg, progress=False).run_all()  # ingest is up to date and skipped
    total = time.perf_counter() - t0
    report = json.loads((workdir / f"out-{n}" / "01_minhash_dedup" / "_dedup.json").read_text())
    secs = report["seconds"]
    return {
        "docs": n,
        "corpus_build_s": round(built, 1),
        "pipeline_s": round(total, 1),
        "records_s": secs.get("records", 0),
        "signatures_to_clusters_s": round(sum(v for k, v in secs.items() if k != "records"), 2),
        "cc_rounds": report.get("cc_rounds"),
        "partitions": report.get("partitions"),
        "clusters": report.get("clusters"),
        "clustered_docs": report.get("clustered_docs"),
        "peak_worker_rss_mb": round(worker_peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, Path(args.workdir))))
        return
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="winnow-scaling-") as d:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--workdir", d], capture_output=True, text=True, cwd=REPO
            )
            if proc.returncode != 0:
                sys.exit(proc.stderr[-3000:])
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(
        "\n| docs | records (signatures) s | signatures -> clusters s | per 1k docs s | CC rounds | partitions | peak RSS per worker MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['docs']:,} | {r['records_s']:.1f} | {r['signatures_to_clusters_s']:.1f} | {1000 * r['signatures_to_clusters_s'] / r['docs']:.3f} | "
            f"{r['cc_rounds']} | {r['partitions']} | {r['peak_worker_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
