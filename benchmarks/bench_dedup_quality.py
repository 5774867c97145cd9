"""Dedup quality on labelled real text: precision, recall and F1 of the duplicate class for exact,
MinHash and SimHash, Chinese and English, through the same code as `winnow eval dedup`.

The labelled sets are made by benchmarks/make_dedup_sets.py from real documents (originals, plus
copies with light word/character edits, boilerplate lines, formatting changes or truncation); the
small ones in tests/data/dedup are the default. Also compares Chinese shingles: characters vs jieba
words, and SimHash's candidate checks.

    .venv/bin/python benchmarks/bench_dedup_quality.py [--sets tests/data/dedup/en.parquet tests/data/dedup/zh.parquet]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VARIANTS = [
    ("exact", "exact", {}),
    ("minhash 0.8 (9x13)", "minhash", {}),
    ("minhash 0.7 (derived)", "minhash", {"threshold": 0.7}),
    ("minhash 14x8, 112 perm", "minhash", {"bands": 14, "rows": 8, "num_perm": 112}),
    ("minhash 0.7 + jieba words (3-gram)", "minhash", {"threshold": 0.7, "zh_shingle": "word", "zh_ngram": 3}),
    ("minhash 0.7 + verify jaccard", "minhash", {"threshold": 0.7, "verify": "jaccard"}),
    ("simhash 4 bits/6 blocks + jaccard 0.6", "simhash", {}),
    ("simhash 5 bits/7 blocks + jaccard 0.6", "simhash", {"max_distance": 5, "blocks": 7}),
    ("simhash 4 bits/6 blocks + lcs 0.5", "simhash", {"verify": "lcs", "verify_threshold": 0.5}),
    ("simhash 4 bits/6 blocks, no check", "simhash", {"verify": "none"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets",
        nargs="+",
        default=[str(REPO / "tests/data/dedup/en.parquet"), str(REPO / "tests/data/dedup/zh.parquet")],
    )
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from pipeline.ray_setup import ensure_ray
    from winnow.eval_dedup import run_eval

    ensure_ray(None)
    print("| set | rows (dup) | method | precision | recall | F1 | macro-F1 |")
    print("|---|---|---|---|---|---|---|")
    for path in args.sets:
        meta = pq.read_table(path, columns=["lang", "true_dup"])
        lang = meta.column("lang")[0].as_py()
        for label, method, settings in VARIANTS:
            if "jieba" in label and lang != "zh":
                continue
            with tempfile.TemporaryDirectory() as d:
                _, s, _ = run_eval(path, method, f"{d}/pred.parquet", settings)
            print(
                f"| {Path(path).name} | {meta.num_rows} ({s.support}) | {label} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.macro_f1:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
