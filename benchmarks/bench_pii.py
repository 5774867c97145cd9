"""PII stage: precision and recall per type on the labelled set, speed per core against a bare regex pass,
and what a plain regex still finds after the stage on the real-web e-mail and Weibo sets.

    python benchmarks/bench_pii.py [DATA_DIR]   # DATA_DIR holds the real-web sets (README there)

One process, one core: docs/s and MB/s of the stage's `__call__` on 2,048-document batches, and of one
pass of `pc.count_substring_regex` with a plain e-mail regex over the same batches (the floor any
regex-based redaction pays).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from stages.pii import Pii, PiiConfig
from stages.pii.evaluation import score

REPO = Path(__file__).resolve().parents[1]
PLAIN_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
PLAIN_MOBILE = r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])"
SPEED_SETS = {
    "zh-emails-trec06c-a.jsonl.gz": "text",
    "en-emails-spamassassin-a.jsonl.gz": "text",
    "zh-weibo-threads-a.jsonl.gz": "text",
    "en-pages-2025-a.truth.jsonl.gz": "main_content",
    "zh-pages-cwced.truth.jsonl.gz": "main_content",
}
LEFT_SETS = ("zh-emails-trec06c-a.jsonl.gz", "en-emails-spamassassin-a.jsonl.gz", "zh-weibo-threads-a.jsonl.gz")


def load(path: Path, field: str) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f]


def batches(texts: list[str], size: int = 2048) -> list[pa.Table]:
    out = []
    for i in range(0, len(texts), size):
        chunk = texts[i : i + size]
        out.append(
            pa.table(
                {
                    "id": [str(j) for j in range(len(chunk))],
                    "text": pa.array(chunk, pa.large_string()),
                    "source": ["bench"] * len(chunk),
                    "lang": ["zh"] * len(chunk),
                }
            )
        )
    return out


def timed(fn, tables: list[pa.Table]) -> float:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for t in tables:
            fn(t)
        best = min(best, time.perf_counter() - started)
    return best


def main(data: Path) -> None:
    stage = Pii(PiiConfig(min_chars=0))
    rows = [json.loads(line) for line in (REPO / "tests/data/pii/labelled.jsonl").open(encoding="utf-8")]
    print(f"labelled set: {len(rows)} snippets, {sum(len(r['spans']) for r in rows)} labelled spans")
    print(f"{'type':<16}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}")
    for kind, r in score(rows, stage.find_spans).items():
        print(f"{kind:<16}{r['tp']:>5}{r['fp']:>5}{r['fn']:>5}{r['precision']:>11.3f}{r['recall']:>8.3f}")

    print(f"\n{'set':<36}{'docs':>7}{'MB':>7}{'stage docs/s':>14}{'MB/s':>7}{'regex docs/s':>14}{'MB/s':>7}")
    for name, field in SPEED_SETS.items():
        texts = load(data / name, field)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        tables = batches(texts)
        stage_s = timed(stage, tables)
        regex_s = timed(lambda t: pc.count_substring_regex(t.column("text"), PLAIN_EMAIL), tables)
        print(
            f"{name:<36}{len(texts):>7}{mb:>7.1f}{len(texts) / stage_s:>14,.0f}{mb / stage_s:>7.1f}"
            f"{len(texts) / regex_s:>14,.0f}{mb / regex_s:>7.1f}"
        )

    print(f"\n{'left by a plain regex':<36}{'e-mails before':>15}{'after':>7}{'mobiles before':>16}{'after':>7}")
    for name in LEFT_SETS:
        texts = load(data / name, "text")
        after = [t for table in batches(texts) for t in stage(table).table.column("text").to_pylist()]
        counts = [
            sum(len(re.findall(p, t)) for t in texts_)
            for texts_ in (texts, after)
            for p in (PLAIN_EMAIL, PLAIN_MOBILE)
        ]
        print(f"{name:<36}{counts[0]:>15}{counts[2]:>7}{counts[1]:>16}{counts[3]:>7}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data/realweb"))
