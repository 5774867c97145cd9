"""Decontamination on the real-web corpus: false positives against unrelated benchmarks, recall on planted
copies, and speed.

`python benchmarks/bench_decontaminate.py [DATA] [OUT]` (DATA: the realweb folder; OUT: a scratch folder)
runs ingest, normalize and decontaminate through the real runner (local Ray, 2 workers) on:
- the real-web corpus as it is: English and Chinese crawl pages (WARC, through ingest), English and
  Chinese e-mails, Weibo threads, Zhihu and Chinese Common Crawl. None of it is drawn from the benchmarks,
  so a flagged document is a false positive unless it really copies Wikipedia (each one is printed);
- the same corpus plus planted copies: 100 English Wikipedia paragraphs (WikiText-2) and 100 Chinese
  Wikipedia paragraphs (DRCD), each once as a document of its own and once pasted into a real e-mail.
The benchmarks are the held-out Wikipedia sets of `eval/` (whole WikiText-2 articles; DRCD paragraphs),
as the stage would use them. Prints flagged share, recall and docs/s and MB/s per core (from the
stage's sidecars: each task runs on one core).
"""

from __future__ import annotations

import gzip
import json
import platform
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.layout import read_docs, read_rejects, read_sidecars  # noqa: E402
from pipeline.runner import Runner  # noqa: E402
from pipeline.storage import Storage  # noqa: E402
from stages.registry import STAGES  # noqa: E402

FOLDER = "02_decontaminate"


def corpus(data: Path) -> list[dict]:
    return [
        {"path": str(data / "en-pages-2025-a.warc.gz"), "source": "en-pages"},
        {"path": str(data / "zh-pages-cwced.warc.gz"), "source": "zh-pages"},
        {"path": str(data / "mixed-pages.warc.gz"), "source": "mixed-pages"},
        {
            "path": str(data / "en-emails-spamassassin-a.jsonl.gz"),
            "source": "en-emails",
            "lang": "en",
            "id_field": None,
        },
        {"path": str(data / "zh-emails-trec06c-a.jsonl.gz"), "source": "zh-emails", "lang": "zh", "id_field": None},
        {"path": str(data / "zh-weibo-threads-a.jsonl.gz"), "source": "zh-weibo", "lang": "zh", "id_field": None},
        {"path": str(data / "zh-zhihu-and-cc.jsonl.gz"), "source": "zh-zhihu-cc", "lang": "zh", "id_field": None},
    ]


def benchmarks(data: Path) -> list[dict]:
    return [
        {"name": "wikitext2", "path": str(data / "eval" / "en-wikipedia-wikitext2-valid.jsonl.gz")},
        {"name": "drcd", "path": str(data / "eval" / "zh-wikipedia-drcd-traditional.jsonl.gz")},
    ]


def _jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def planted(data: Path, out: Path) -> tuple[list[dict], Counter]:
    """Two extra inputs: 200 benchmark paragraphs alone, and the same pasted into real e-mails."""
    articles = _jsonl(data / "eval" / "en-wikipedia-wikitext2-valid.jsonl.gz")
    paragraphs = [p.strip() for a in articles for p in a["text"].split("\n")]
    en = [p for p in paragraphs if len(p.split()) >= 60 and not p.startswith("=")]
    en = en[:: max(1, len(en) // 100)][:100]
    zh = [r["text"] for r in _jsonl(data / "eval" / "zh-wikipedia-drcd-traditional.jsonl.gz") if len(r["text"]) >= 150]
    zh = zh[:: max(1, len(zh) // 100)][:100]
    hosts = {
        "en": [r["text"] for r in _jsonl(data / "en-emails-spamassassin-a.jsonl.gz")[:100]],
        "zh": [r["text"] for r in _jsonl(data / "zh-emails-trec06c-a.jsonl.gz")[:100]],
    }
    inputs, expected = [], Counter()
    for lang, name, items in (("en", "wikitext2", en), ("zh", "drcd", zh)):
        path = out / f"planted-{lang}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i, item in enumerate(items):
                host = hosts[lang][i]
                for row in (
                    {"id": f"alone-{lang}-{i}", "text": item, "planted": name},
                    {"id": f"pasted-{lang}-{i}", "text": f"{host}\n\n{item}\n\n{host}", "planted": name},
                ):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                expected[name] += 2
        inputs.append({"path": str(path), "source": f"planted-{lang}", "lang": lang})
    return inputs, expected


def run(out: Path, inputs: list[dict], bench: list[dict], mode: str = "drop") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "input": inputs,
        "output": str(out / "out"),
        "ingest": {"rows_per_shard": 2000},
        "ray": {"workers": 2},
        "stages": [{"name": "normalize"}, {"name": "decontaminate", "benchmarks": bench, "mode": mode}],
    }
    path = out / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    started = time.perf_counter()
    Runner(load_config(path, STAGES), progress=False).run_all()
    print(f"  run: {time.perf_counter() - started:.1f} s wall (ingest + normalize + decontaminate)")
    return out / "out"


def speed(out: Path) -> str:
    sidecars = read_sidecars(Storage(str(out)), FOLDER)
    seconds = sum(s["seconds"] for s in sidecars)
    docs, mb = sum(s["rows_in"] for s in sidecars), sum(s["bytes_in"] for s in sidecars) / 1e6
    return (
        f"{docs:,} docs, {mb:.1f} MB in {seconds:.1f} core-s: "
        f"{docs / seconds:,.0f} docs/s, {mb / seconds:.2f} MB/s per core"
    )


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "realweb"
    scratch = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/bench_decontaminate")
    print(f"machine: {platform.machine()}, {platform.processor() or platform.system()}; {time.strftime('%Y-%m-%d')}")
    bench = benchmarks(data)

    print("false positives: the real-web corpus against English and Chinese Wikipedia (eval/)")
    out = run(scratch / "clean", corpus(data), bench)
    storage = Storage(str(out))
    total = read_docs(storage, "01_normalize", ["id"]).num_rows
    rejects = read_rejects(storage, ("stage", "reason", "source", "id", "url"))
    flagged = [r for r in rejects.to_pylist() if r["stage"] == "decontaminate"]
    print(
        f"  {len(flagged)} of {total:,} documents flagged ({100 * len(flagged) / max(total, 1):.3f}%): "
        + ", ".join(f"{k}: {v}" for k, v in Counter(r["reason"] for r in flagged).items())
    )
    for r in flagged[:20]:
        print(f"    {r['source']} {r['id']} {r['url']} {r['reason']}")
    print(f"  speed: {speed(out)}")

    print("recall: 100 English + 100 Chinese Wikipedia paragraphs planted alone and pasted into e-mails")
    extra, expected = planted(data, scratch)
    out = run(scratch / "planted", corpus(data) + extra, bench)
    storage = Storage(str(out))
    rejects = read_rejects(storage, ("stage", "reason", "planted")).to_pylist()
    for name, n in sorted(expected.items()):
        found = sum(
            1
            for r in rejects
            if r["stage"] == "decontaminate" and r["planted"] == name and r["reason"] == f"contaminated:{name}"
        )
        print(f"  {name}: {found} of {n} planted documents dropped ({100 * found / n:.1f}%)")
    others = sum(1 for r in rejects if r["stage"] == "decontaminate" and not r["planted"])
    print(f"  unplanted documents flagged: {others}")

    print("remove_spans: the same planted corpus, pasted paragraphs cut out")
    out = run(scratch / "spans", corpus(data) + extra, bench, mode="remove_spans")
    report = json.loads((out / FOLDER / "_decontaminate.json").read_text())
    for name, entry in report["benchmarks"].items():
        print(f"  {name}: {re.sub(r'[{}]', '', json.dumps(entry))}")
    print(f"  speed: {speed(out)}")


if __name__ == "__main__":
    main()
