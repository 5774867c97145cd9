"""The default pipeline on the developers' half of the real-web corpus, and what its final shards hold:
documents and text bytes kept per source, the most repeated lines left, e-mail addresses and Chinese
mobile numbers left (by a plain regex).

Runs `configs/default.yaml` of a checkout (this one, or `--repo` another, e.g. an older commit in a
git worktree, run with that checkout's own command line `--cli`) with the real-web inputs in place of
the sample and the encoder safety members (MiniLM, e5; tens of documents per second per core on the
CPU) left out, as the scaling benchmark does. Then reads the final shards (the last stage folder), and
scores what `line_clean` (both, where the config has two) and `line_dedup` removed from the crawl pages against the pages' main-content
truth (`*.truth.jsonl.gz`), in the pipeline's own order and corpus (line_dedup counts over every source).

    .venv/bin/python benchmarks/realweb_cleaning.py --data ../shared/data/realweb --out /tmp/rw-new
    .venv/bin/python benchmarks/realweb_cleaning.py --repo /path/to/old-checkout --cli pipeline.cli --out /tmp/rw-old
    .venv/bin/python benchmarks/realweb_cleaning.py --report /tmp/rw-old /tmp/rw-new     # both side by side
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import yaml

from pipeline.layout import read_docs, stage_folders
from pipeline.storage import Storage

REPO = Path(__file__).resolve().parents[1]
INPUTS = [
    ("en-pages-2025-a.warc.gz", "en-pages", None),
    ("zh-pages-cwced.warc.gz", "zh-pages", None),
    ("zh-weibo-threads-a.jsonl.gz", "zh-weibo", "zh"),
    ("zh-emails-trec06c-a.jsonl.gz", "zh-emails", "zh"),
    ("en-emails-spamassassin-a.jsonl.gz", "en-emails", "en"),
    ("zh-zhihu-and-cc.jsonl.gz", "zh-zhihu-cc", "zh"),
]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CN_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# The same, not glued to a letter, `-`, `_`, `/` or `=`: "15081599004-00001" (a website's police registration
# number) and "discussion=15941624520A37147500" (a URL parameter) match the plain regex and name no one.
CN_MOBILE_STANDALONE = re.compile(r"(?<![0-9A-Za-z_=/\-])1[3-9]\d{9}(?![0-9A-Za-z_\-])")
PAGES = {"en-pages": "en-pages-2025-a", "zh-pages": "zh-pages-cwced"}  # source -> truth file
LINE_STAGES = ("line_clean", "line_dedup")
C4_EDIT = "c4_lines"  # a second line_clean (the default's C4 terminal-punctuation edit after heuristics)
_WS = re.compile(r"\s+")


def run(repo: Path, cli: str, data: Path, out: Path) -> float:
    cfg = yaml.safe_load((repo / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["input"] = [{"path": str(data / f), "source": s, **({"lang": lang} if lang else {})} for f, s, lang in INPUTS]
    cfg["output"] = str(out)
    for stage in cfg["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(repo / extra["path"])
        if stage["name"] == "safety":
            stage["members"] = [m for m in stage["members"] if m["name"] not in ("minilm", "e5")]
        if stage["name"] == "weights":
            stage.get("mix", {})["targets"] = {}
    path = out.parent / f"{out.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(repo)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", cli, "run", str(path), "--no-report"], cwd=repo, env=env, check=True)
    return time.perf_counter() - t0


def final_folder(out: Path) -> Path:
    return sorted(p for p in out.iterdir() if p.is_dir() and re.match(r"\d\d_", p.name))[-1]


def shards(folder: Path) -> ds.Dataset:
    return ds.dataset(sorted(str(p) for p in folder.glob("*.parquet") if not p.name.startswith(".")))


def summarize(out: Path) -> dict:
    ingest = shards(out / "00_ingest").to_table(columns=["source", "text"])
    final = shards(final_folder(out)).to_table(columns=["source", "text"])
    per_source = {}
    for name, table in (("in", ingest), ("out", final)):
        for source, text in zip(table.column("source").to_pylist(), table.column("text").to_pylist()):
            row = per_source.setdefault(source, {"docs_in": 0, "bytes_in": 0, "docs_out": 0, "bytes_out": 0})
            row[f"docs_{name}"] += 1
            row[f"bytes_{name}"] += len(text.encode())
    lines: Counter = Counter()
    emails = mobiles = standalone = 0
    mobile_examples = []
    for text in final.column("text").to_pylist():
        lines.update({" ".join(line.split()) for line in text.splitlines() if len(line.strip()) >= 20})
        emails += len(EMAIL.findall(text))
        found = list(CN_MOBILE.finditer(text))
        mobiles += len(found)
        standalone += len(CN_MOBILE_STANDALONE.findall(text))
        mobile_examples += [text[max(0, m.start() - 40) : m.end() + 20] for m in found][: 20 - len(mobile_examples)]
    top = lines.most_common(10)
    return {
        "per_source": per_source,
        "final_docs": final.num_rows,
        "emails_left": emails,
        "cn_mobiles_left": mobiles,
        "cn_mobiles_left_standalone": standalone,
        "cn_mobile_examples": mobile_examples,
        "lines_in_over_5_docs": sum(1 for _, n in lines.items() if n > 5),
        "top_lines": [[t[:120], n] for t, n in top],
    }


def _key(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _texts(storage: Storage, folder: str, ids: set[str]) -> dict[str, str]:
    t = read_docs(storage, folder, ["id", "text"])
    return {i: x for i, x in zip(t.column("id").to_pylist(), t.column("text").to_pylist()) if i in ids}


def _stage_table(storage: Storage, folder: str, sub: str, columns: list[str]) -> list[dict]:
    return (
        read_docs(storage, f"{folder}/{sub}", columns).to_pylist() if storage.exists(storage.path(folder, sub)) else []
    )


def line_precision(out: Path, data: Path) -> dict:
    """Per page language and per stage: characters removed, the share outside the main content (plain: the
    removed line is not a substring of the page's truth; counted: nor is it missing, i.e. the truth holds
    it more often than the stage's output still does), and the main content that reached line_clean
    kept after both stages (lost: removed lines missing from the output, and pages a stage dropped)."""
    storage = Storage(str(out))
    folders = stage_folders(storage)
    named: dict[str, str] = {}
    for f in folders:  # a stage named twice: the first is `line_clean`, the second (C4's line edit) `c4_lines`
        stage = f.split("_", 1)[1]
        named.setdefault(C4_EDIT if stage == "line_clean" and stage in named else stage, f)
    if not all(s in named for s in LINE_STAGES):
        return {}
    stages = [s for s in (LINE_STAGES[0], C4_EDIT, *LINE_STAGES[1:]) if s in named]
    before = folders[folders.index(named["line_clean"]) - 1]
    ingest = read_docs(storage, "00_ingest", ["id", "url", "source"])
    result = {}
    for source, truth_name in PAGES.items():
        with gzip.open(data / f"{truth_name}.truth.jsonl.gz", "rt", encoding="utf-8") as f:
            truth = {row["url"]: _key(row["main_content"]) for row in map(json.loads, f)}
        columns = (ingest.column(c).to_pylist() for c in ("id", "url", "source"))
        url_of = {i: u for i, u, s in zip(*columns) if s == source and u in truth}
        reached = _texts(storage, before, set(url_of))
        main = {
            i: sum(len(k) for k in map(_key, t.split("\n")) if k and k in truth[url_of[i]]) for i, t in reached.items()
        }
        row = {"pages": len(reached), "main_chars": sum(main.values())}
        lost = 0
        for stage in stages:
            folder = named[stage]
            output = {i: _key(t) for i, t in _texts(storage, folder, set(reached)).items()}
            removed = [r for r in _stage_table(storage, folder, "removed", ["id", "span"]) if r["id"] in reached]
            dropped = [r["id"] for r in _stage_table(storage, folder, "rejects", ["id"]) if r["id"] in reached]
            total = outside = counted = 0
            for r in removed:
                k, tr = _key(r["span"]), truth[url_of[r["id"]]]
                if not k:
                    continue
                total += len(k)
                inside = k in tr
                missing = inside and tr.count(k) > output.get(r["id"], "").count(k)
                outside += 0 if inside else len(k)
                counted += 0 if missing else len(k)
                lost += len(k) if missing else 0
            lost += sum(main[i] for i in dropped)
            row[stage] = {
                "removed_chars": total,
                "outside_plain": round(outside / max(1, total), 4),
                "outside_counted": round(counted / max(1, total), 4),
                "pages_dropped": len(dropped),
            }
            row.setdefault("_outside", [0, 0, 0])
            row["_outside"] = [row["_outside"][0] + total, row["_outside"][1] + outside, row["_outside"][2] + counted]
        total, outside, counted = row.pop("_outside")
        row["both"] = {
            "removed_chars": total,
            "outside_plain": round(outside / max(1, total), 4),
            "outside_counted": round(counted / max(1, total), 4),
            "main_kept": round(1 - lost / max(1, row["main_chars"]), 4),
        }
        result[source] = row
    return result


def report(runs: dict[str, dict]) -> None:
    names = list(runs)
    sources = sorted({s for r in runs.values() for s in r["per_source"]})
    print(
        "| source | docs in | "
        + " | ".join(f"docs kept ({n})" for n in names)
        + " | "
        + " | ".join(f"MB kept ({n})" for n in names)
        + " |"
    )
    print("|---|---:|" + "---:|" * (2 * len(names)))
    for s in sources:
        first = runs[names[0]]["per_source"].get(s, {})
        cells = [
            f"{runs[n]['per_source'].get(s, {}).get('docs_out', 0):,} ({100 * runs[n]['per_source'].get(s, {}).get('docs_out', 0) / max(1, first.get('docs_in', 1)):.0f}%)"
            for n in names
        ]
        mb = [f"{runs[n]['per_source'].get(s, {}).get('bytes_out', 0) / 1e6:.2f}" for n in names]
        print(f"| {s} | {first.get('docs_in', 0):,} | " + " | ".join(cells) + " | " + " | ".join(mb) + " |")
    for n in names:
        r = runs[n]
        print(
            f"\n{n}: {r['final_docs']:,} final documents; e-mail addresses left {r['emails_left']:,}; Chinese mobile numbers left "
            f"{r['cn_mobiles_left']:,} ({r.get('cn_mobiles_left_standalone', '-')} standalone); distinct lines of 20+ "
            f"characters in more than 5 final documents: {r['lines_in_over_5_docs']:,}"
        )
        for example in r.get("cn_mobile_examples", [])[:5]:
            print(f"  mobile-shaped: {example!r}")
        for text, count in r["top_lines"][:5]:
            print(f"  {count:>5} docs  {text}")
        for source, row in r.get("line_precision", {}).items():
            print(f"  {source}: {row['pages']} pages reached line_clean, main content {row['main_chars']:,} chars")
            for stage in (s for s in row if isinstance(row[s], dict)):
                print(f"    {stage}: {json.dumps(row[stage])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=REPO)
    ap.add_argument(
        "--cli", default="winnow", help="module run with -m: `winnow`, or `pipeline.cli` in older checkouts"
    )
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, nargs="+", help="summaries (JSON beside each output) to print side by side")
    ap.add_argument("--summarize", action="store_true", help="only read an existing --out folder")
    args = ap.parse_args()
    if args.report:
        report({p.name: json.loads((p.parent / f"{p.name}.summary.json").read_text()) for p in args.report})
        return
    wall = 0.0 if args.summarize else run(args.repo.resolve(), args.cli, args.data.resolve(), args.out.resolve())
    summary = {"wall_s": round(wall, 1), **summarize(args.out), "line_precision": line_precision(args.out, args.data)}
    (args.out.parent / f"{args.out.name}.summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    report({args.out.name: summary})


if __name__ == "__main__":
    main()
