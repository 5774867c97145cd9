"""Classifier throughput: the quality stage (fastText) against bare `fasttext.predict` on the same
documents, and the BERT-style member's docs/s, single process.

The fastText comparison: the same shipped model (quality-en / quality-zh), the same documents from the
bundled sample, one core (torch and fastText limited to one thread). "bare" is what a user would write
by hand, per batch of 2,048: line breaks replaced (fastText needs one line), for Chinese
`" ".join(jieba.lcut(text))` (segmentation is part of any Chinese fastText model, not overhead of the
stage), then `model.predict(texts, k=1)`. "stage" is the
`quality` stage's `__call__` on Arrow batches of 2,048 rows: text preparation, prediction, the
per-language grouping, the columns and the keep mask.

    .venv/bin/python benchmarks/bench_classifiers.py [--repeat 3] [--bert-docs 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
LABELLED = REPO / "data" / "labelled"


def english_docs() -> list[str]:
    docs = [
        json.loads(line)["text"]
        for line in (SAMPLE / "en" / "ccnet-head.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with gzip.open(SAMPLE / "en" / "refined.jsonl.gz", "rt", encoding="utf-8") as f:
        docs += [json.loads(line)["text"] for line in f if line.strip()]
    docs += pq.read_table(LABELLED / "en" / "tweets.parquet").column("text").to_pylist()
    return docs


def chinese_docs() -> list[str]:
    import zstandard

    with zstandard.open(SAMPLE / "zh" / "wikipedia.jsonl.zst", "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    with gzip.open(LABELLED / "zh" / "comments.jsonl.gz", "rt", encoding="utf-8") as f:
        docs += [json.loads(line)["text"] for line in f if line.strip()]
    return docs


def best_of(fns: dict, repeat: int) -> dict:
    """CPU seconds of each function, best of `repeat`, run round-robin so drift hits all alike."""
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {k: min(v) for k, v in times.items()}


def bench_fasttext(lang: str, docs: list[str], repeat: int) -> dict:
    import jieba

    from classifiers.registry import load_classifier
    from stages.quality import Quality, QualityConfig

    clf = load_classifier(f"quality-{lang}")
    model = clf.model
    stage = Quality(QualityConfig(models=[{"name": "fasttext", "models": {lang: f"quality-{lang}"}}]))
    chunks = [docs[i : i + 2048] for i in range(0, len(docs), 2048)]
    batches = [pa.table({"text": c, "lang": [lang] * len(c)}) for c in chunks]
    max_chars = clf.max_chars

    def bare():  # what one writes by hand: one line per text (and jieba words for Chinese), then predict
        for chunk in chunks:
            lines = [d[:max_chars].replace("\n", " ") for d in chunk]
            if lang == "zh":
                lines = [" ".join(jieba.lcut(t, HMM=False)) for t in lines]
            model.predict(lines, k=1)

    def run_stage():
        for b in batches:
            stage(b)

    timed = best_of({"bare": bare, "stage": run_stage}, repeat)
    # same scores: the stage's column equals the model's own answer on the prepared text
    ours = np.concatenate([stage(b).table.column("quality_fasttext").to_numpy() for b in batches])
    assert np.allclose(ours, clf.predict(docs), atol=1e-6)
    n = len(docs)
    return {
        "lang": lang,
        "docs": n,
        "chars": sum(len(d) for d in docs),
        "bare_docs_per_s": n / timed["bare"],
        "stage_docs_per_s": n / timed["stage"],
        "overhead_vs_bare": timed["stage"] / timed["bare"] - 1,
    }


def bench_bert(lang: str, docs: list[str], threads: int) -> dict:
    import torch

    from classifiers.registry import load_classifier

    torch.set_num_threads(threads)
    clf = load_classifier(f"safety-{lang}-minilm", device="auto")
    clf.predict(docs[:64])
    start = time.perf_counter()
    clf.predict(docs)
    wall = time.perf_counter() - start
    return {
        "lang": lang,
        "docs": len(docs),
        "device": clf.device,
        "threads": threads,
        "max_length": clf.max_length,
        "docs_per_s": len(docs) / wall,
        "mean_chars": float(np.mean([len(d) for d in docs])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bert-docs", type=int, default=2000)
    parser.add_argument("--bert-threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--skip-fasttext", action="store_true")
    args = parser.parse_args()
    import platform

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if not args.skip_fasttext:
        for lang, docs in (("en", english_docs()), ("zh", chinese_docs())):
            r = bench_fasttext(lang, docs, args.repeat)
            print(
                f"fastText quality-{lang}: {r['docs']:,} docs ({r['chars'] / r['docs']:.0f} chars avg), one core (CPU time, best of {args.repeat})"
            )
            print(
                f"  bare fasttext.predict{' + jieba' if lang == 'zh' else '        '} {r['bare_docs_per_s']:>10,.0f} docs/s"
            )
            print(
                f"  quality stage                {r['stage_docs_per_s']:>10,.0f} docs/s   overhead: {100 * r['overhead_vs_bare']:+.1f}%"
            )
    rng = np.random.default_rng(0)
    for lang, docs in (("en", english_docs()), ("zh", chinese_docs())):
        pick = [docs[i] for i in rng.choice(len(docs), size=min(args.bert_docs, len(docs)), replace=False)]
        for threads in args.bert_threads:
            r = bench_bert(lang, pick, threads)
            print(
                f"MiniLM safety-{lang}-minilm on {r['device']}: {r['docs']:,} docs ({r['mean_chars']:.0f} chars avg, {r['max_length']} tokens max), "
                f"{threads} thread(s): {r['docs_per_s']:,.0f} docs/s"
            )


if __name__ == "__main__":
    main()
