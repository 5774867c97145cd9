"""Safety stage throughput on real web documents, per member and whole, against bare predict calls.

Documents: the real-web corpus (shared `realweb/`): Chinese Zhihu answers and Chinese Common Crawl pages
(`zh-zhihu-and-cc.jsonl.gz`) plus the hand-cleaned text of Chinese blog/news/forum pages (`zh-pages-cwced`),
English pages' annotated main text (`en-pages-2025-a.truth`): what the safety stage sees after extraction.
- bare: the model's own `predict` on the documents cut to the member's `max_chars`, batches of 1,024;
- stage: the `safety` stage's `__call__` on Arrow batches of 1,024 rows with that one member (or all of
  them: `whole`), keep mode: language grouping, scoring, thresholds, the combine rule, columns.
Throughput is documents per CPU-second (process CPU time, every engine held to one thread with
OMP_NUM_THREADS=1), i.e. docs/s per core: best of `--repeat` for the fast members on every document; the
encoder members and the whole stage once, on `--encoder-docs` documents per language (they run at a few
documents per second per core).

    nice -n 15 .venv/bin/python benchmarks/bench_safety_speed.py SHARED_DATA [--config configs/default.yaml]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BATCH = 1024


def documents(shared: Path) -> dict[str, list[str]]:
    def read(name, field):
        with gzip.open(shared / "realweb" / name, "rt", encoding="utf-8") as f:
            return [t for t in (json.loads(line).get(field) for line in f) if t and t.strip()]

    zh = read("zh-zhihu-and-cc.jsonl.gz", "text") + read("zh-pages-cwced.truth.jsonl.gz", "main_content")
    return {"zh": zh, "en": read("en-pages-2025-a.truth.jsonl.gz", "main_content")}


def cpu_best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def bench(members: list[dict], lang: str, docs: list[str], repeat: int) -> dict:
    """Bare predict of each model vs the stage with those members, on the same documents."""
    import torch

    from classifiers.registry import load_classifier
    from stages.safety import Safety, SafetyConfig

    torch.set_num_threads(1)
    stage = Safety(SafetyConfig(members=members, combine="majority", mode="keep"))
    models = [(load_classifier(m["models"][lang], device="cpu"), m.get("max_chars", 20_000)) for m in members]
    batches = [
        pa.table(
            {
                "id": [str(i) for i in range(s, s + len(docs[s : s + BATCH]))],
                "text": docs[s : s + BATCH],
                "lang": [lang] * len(docs[s : s + BATCH]),
            }
        )
        for s in range(0, len(docs), BATCH)
    ]
    stage(batches[0].slice(0, 8))  # warm: jieba's dictionary, the engines' first call

    def bare():
        for s in range(0, len(docs), BATCH):
            for model, max_chars in models:
                model.predict([d[:max_chars] for d in docs[s : s + BATCH]])

    def run_stage():
        for b in batches:
            stage(b)

    bare_s, stage_s = cpu_best(bare, repeat), cpu_best(run_stage, repeat)
    n = len(docs)
    return {
        "lang": lang,
        "members": [m["name"] for m in members],
        "docs": n,
        "mean_chars": float(np.mean([len(d) for d in docs])),
        "bare_docs_per_cpu_s": n / bare_s,
        "stage_docs_per_cpu_s": n / stage_s,
        "overhead": stage_s / bare_s - 1,
    }


def main(argv=None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--encoder-docs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "safety-speed.json")
    args = parser.parse_args(argv)
    stage = next(s for s in yaml.safe_load(args.config.read_text())["stages"] if s["name"] == "safety")
    rng = np.random.default_rng(0)
    results = []
    for lang, docs in documents(args.shared).items():
        members = [m for m in stage["members"] if lang in m["models"]]
        small = [
            docs[i] for i in np.sort(rng.choice(len(docs), size=min(args.encoder_docs, len(docs)), replace=False))
        ]
        for member in members:
            from classifiers.base import ModelCard
            from classifiers.registry import resolve_model

            encoder = ModelCard.load(resolve_model(member["models"][lang])).kind in ("e5", "bert")
            results.append(bench([member], lang, small if encoder else docs, 1 if encoder else args.repeat))
            print(json.dumps(results[-1]), flush=True)
        results.append(bench(members, lang, small, 1))  # whole stage: on the encoders' document set
        print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(
        f"{'lang':<4} {'members':<28} {'docs':>5} {'chars':>6} {'bare docs/s/core':>17} "
        f"{'stage docs/s/core':>18} {'overhead':>9}"
    )
    for r in results:
        print(
            f"{r['lang']:<4} {'+'.join(r['members']):<28} {r['docs']:>5} {r['mean_chars']:>6.0f} "
            f"{r['bare_docs_per_cpu_s']:>17,.1f} "
            f"{r['stage_docs_per_cpu_s']:>18,.1f} {100 * r['overhead']:>+8.1f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
