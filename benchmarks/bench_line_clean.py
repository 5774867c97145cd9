"""line_clean on real pages and real social and e-mail text: precision of what it removes against the
pages' main-content truth, what it keeps of that main content, what `heuristics` keeps before and after
it, and its speed on one core.

    python benchmarks/bench_line_clean.py [--data DIR] [--samples N] [--config JSON]

Pages come through winnow's own ingest (WARC -> HTML -> main text) and normalize, as in a run. A removed
line is outside the main content when, whitespace collapsed, it is not a substring of the page's truth
`main_content`; the main content that reached the stage is the extracted lines found in the truth.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import yaml

from stages.heuristics import Heuristics, HeuristicsConfig
from stages.ingest import InputSpec, read_chunks
from stages.line_clean import LineClean, LineCleanConfig
from stages.min_length import MinLength, MinLengthConfig
from stages.normalize import NormalizeConfig, normalize_text

REPO = Path(__file__).resolve().parents[1]
PAGES = {"en": "en-pages-2025-a", "zh": "zh-pages-cwced"}
TEXTS = {"weibo-zh": "zh-weibo-threads-a", "emails-zh": "zh-emails-trec06c-a", "emails-en": "en-emails-spamassassin-a"}
_WS = re.compile(r"\s+")


def key(text: str) -> str:
    return _WS.sub(" ", text).strip()


def normalized(table: pa.Table) -> pa.Table:
    text = normalize_text(table.column("text"), NormalizeConfig())
    return table.set_column(table.schema.get_field_index("text"), "text", text)


def read_pages(data: Path, name: str) -> tuple[pa.Table, dict[str, str]]:
    path = str(data / f"{name}.warc.gz")
    table = pa.concat_tables(c.docs for c in read_chunks(path, name, InputSpec(path=path, source=name), 100_000))
    with gzip.open(data / f"{name}.truth.jsonl.gz", "rt") as f:
        truth = {row["url"]: key(row["main_content"]) for row in map(json.loads, f)}
    return normalized(table), truth


def read_texts(data: Path, name: str, source: str) -> pa.Table:
    with gzip.open(data / f"{name}.jsonl.gz", "rt") as f:
        texts = [row["text"] for row in map(json.loads, f)]
    ids = [f"{source}-{i}" for i in range(len(texts))]
    table = pa.table(
        {
            "id": ids,
            "text": pa.array(texts, pa.large_string()),
            "source": [source] * len(texts),
            "lang": pa.nulls(len(texts), pa.string()),
        }
    )
    return normalized(table)


def default_config(name: str) -> dict:
    stages = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())["stages"]
    entry = next((s for s in stages if s["name"] == name), {"name": name})
    return {k: v for k, v in entry.items() if k != "name"}


def precision(table: pa.Table, truth: dict[str, str], out, samples: int) -> dict:
    """Removed characters outside the main content, and main-content characters kept, per rule too.

    `outside_share` is the plain test (a removed line is inside when it is a substring of the truth);
    `outside_share_counted` counts copies: a removed line is inside only when the truth holds it more
    often than the cleaned text still does (a second copy of a paragraph that stays once is not lost)."""
    urls = table.column("url").to_pylist()
    texts = table.column("text").to_pylist()
    cleaned = [key(t) if keep else "" for t, keep in zip(out.table.column("text").to_pylist(), out.keep, strict=True)]
    removed = out.removed.to_pylist() if out.removed is not None else []
    outside, counted, total = Counter(), Counter(), Counter()
    examples = defaultdict(list)
    lost = 0
    for span in removed:
        reason, k, row = span["reason"], key(span["span"]), span["row"]
        truth_text = truth.get(urls[row])
        if not k or truth_text is None:
            continue
        total[reason] += len(k)
        inside = k in truth_text
        outside[reason] += 0 if inside else len(k)
        missing = inside and truth_text.count(k) > cleaned[row].count(k)
        counted[reason] += 0 if missing else len(k)
        lost += len(k) if missing else 0
        if missing and len(examples[reason]) < samples:
            examples[reason].append(k[:100])
    main = 0
    for row, (url, text) in enumerate(zip(urls, texts, strict=True)):
        truth_text = truth.get(url)
        if truth_text is None:
            continue
        in_truth = sum(len(k) for k in map(key, text.split("\n")) if k and k in truth_text)
        main += in_truth
        if not out.keep[row]:
            lost += in_truth
    removed_chars = max(1, sum(total.values()))
    return {
        "removed_chars": sum(total.values()),
        "outside_share": round(sum(outside.values()) / removed_chars, 4),
        "outside_share_counted": round(sum(counted.values()) / removed_chars, 4),
        "main_chars": main,
        "main_kept_share": round(1 - lost / max(1, main), 4),
        "dropped_docs": int((~out.keep).sum()),
        "by_rule": {
            r.split(":")[1]: [total[r], round(outside[r] / total[r], 3), round(counted[r] / total[r], 3)]
            for r in sorted(total)
        },
        "inside_examples": dict(examples),
    }


def kept(table: pa.Table, stages: list) -> tuple[int, int]:
    for stage in stages:
        out = stage(table)
        table = out.table.filter(pa.array(out.keep))
    return table.num_rows, sum(len(t.encode()) for t in table.column("text").to_pylist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    parser.add_argument("--samples", type=int, default=0, help="removed main-content lines to show per rule")
    parser.add_argument(
        "--config",
        type=json.loads,
        default={},
        help="line_clean settings over the default config's, as JSON: '{\"repeated_min_share\": 0}'",
    )
    args = parser.parse_args()
    clean = LineClean(LineCleanConfig(**{**default_config("line_clean"), **args.config}))
    heuristics = Heuristics(HeuristicsConfig(**default_config("heuristics")))
    min_length = MinLength(MinLengthConfig(**default_config("min_length")))
    report: dict = {"precision": {}, "kept": {}, "speed": {}}
    seconds, docs, mb = 0.0, 0, 0.0
    sets = {}
    for lang, name in PAGES.items():
        table, truth = read_pages(args.data, name)
        start = time.perf_counter()
        out = clean(table)
        seconds += time.perf_counter() - start
        docs += table.num_rows
        mb += sum(len(t.encode()) for t in table.column("text").to_pylist()) / 1e6
        report["precision"][lang] = precision(table, truth, out, args.samples)
        sets[f"pages-{lang}"] = table
    for source, name in TEXTS.items():
        sets[source] = read_texts(args.data, name, source)
    for source, table in sets.items():
        if source in TEXTS:
            start = time.perf_counter()
            clean(table)
            seconds += time.perf_counter() - start
            docs += table.num_rows
            mb += sum(len(t.encode()) for t in table.column("text").to_pylist()) / 1e6
        before = kept(table, [min_length, heuristics])
        after = kept(table, [min_length, clean, heuristics])
        report["kept"][source] = {
            "docs": table.num_rows,
            "before": {"docs": before[0], "bytes": before[1]},
            "after": {"docs": after[0], "bytes": after[1]},
        }
    report["speed"] = {
        "docs": docs,
        "mb": round(mb, 1),
        "seconds": round(seconds, 2),
        "docs_per_s_core": round(docs / seconds),
        "mb_per_s_core": round(mb / seconds, 2),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
