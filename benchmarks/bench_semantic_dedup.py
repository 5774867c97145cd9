"""Semantic dedup on the labelled paraphrase set (tests/data/semantic): pair precision and recall by
kind of edit and of negative, and the row-level scores of `winnow eval dedup --method semantic`.

A pair is predicted a duplicate when both documents end in the same `sem_cluster`.

    .venv/bin/python benchmarks/bench_semantic_dedup.py [--threshold 0.9] [--lang en|zh|all]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.ray_setup import ensure_ray  # noqa: E402
from winnow.eval_dedup import run_eval  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "semantic"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--lang", default="all")
    ap.add_argument("--zh-encoder", default="e5_small")
    args = ap.parse_args()
    docs = pq.read_table(DATA / "paraphrases.parquet")
    pairs = pq.read_table(DATA / "pairs.parquet").to_pylist()
    if args.lang != "all":
        docs = docs.filter(pc.equal(docs.column("lang"), args.lang))
        pairs = [p for p in pairs if p["a"].startswith(args.lang)]
    ensure_ray(None)
    with tempfile.TemporaryDirectory() as tmp:
        src = f"{tmp}/in.parquet"
        pq.write_table(docs.select(["id", "text", "lang", "true_dup"]), src)
        settings = {"threshold": args.threshold, "encoders": {"en": "minilm", "zh": args.zh_encoder, "*": "minilm"}}
        started = time.perf_counter()
        pred, rows, report = run_eval(src, "semantic", f"{tmp}/p.parquet", settings)
        seconds = time.perf_counter() - started
    cluster = dict(zip(pred.column("id").to_pylist(), pred.column("dup_cluster").to_pylist()))
    by_kind: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for p in pairs:
        same = cluster[p["a"]] == cluster[p["b"]]
        by_kind.setdefault(p["kind"], [0, 0])
        by_kind[p["kind"]][0] += int(same)
        by_kind[p["kind"]][1] += 1
        tp += same and p["duplicate"]
        fp += same and not p["duplicate"]
        fn += (not same) and p["duplicate"]
    out = {
        "lang": args.lang,
        "threshold": args.threshold,
        "pairs": len(pairs),
        "pair_precision": round(tp / max(1, tp + fp), 4),
        "pair_recall": round(tp / max(1, tp + fn), 4),
        "predicted_same_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
        "row_f1": round(rows.f1, 4),
        "docs": docs.num_rows,
        "seconds": round(seconds, 1),
        "report": {k: report.get(k) for k in ("spaces", "centroids", "clusters", "largest_kmeans_cluster")},
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
