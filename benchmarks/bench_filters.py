"""Cheap filters, winnow vs DataTrove, on the same English documents in one run.

DataTrove side: URLFilter -> GopherRepetition -> GopherQuality -> C4Quality -> FineWebQuality, per
document, stopping at the first drop (as its pipeline does). winnow side: the `url_filter` and
`heuristics` stages with the settings of configs/default.yaml, on Arrow batches of 2,048 rows.
Both single process, CPU time measured after loading. DataTrove lives in its own venv if you like:
the script runs its half with `--peer-python` (default: this interpreter).

    .venv/bin/python benchmarks/bench_filters.py --peer-python /path/to/venv-with-datatrove/bin/python

NLTK's punkt data cannot be downloaded offline, so DataTrove's sentence splitting uses an untrained
PunktSentenceTokenizer (same algorithm and cost, no abbreviation list); its English word tokenizer
is spaCy's blank `en` model, which needs no download.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_documents() -> tuple[list[dict], list[dict]]:
    """(long English web documents with their URLs, tweets) from the bundled sample."""
    import gzip

    import pyarrow.parquet as pq

    from pipeline.config import InputSpec
    from stages.ingest import read_chunks

    long_docs = [{"text": r["text"], "url": r.get("url")} for r in map(json.loads, open(REPO / "data/sample/en/ccnet-head.jsonl"))]
    with gzip.open(REPO / "data/sample/en/refined.jsonl.gz", "rt") as f:
        long_docs += [{"text": r["text"], "url": None} for r in map(json.loads, f) if "stackexchange" not in r.get("subset", "")]
    for path in sorted((REPO / "data/sample/web").glob("dolma-*.warc.gz")):
        for chunk in read_chunks(str(path), path.name, InputSpec(path=str(path), source="web"), 10_000):
            long_docs += [{"text": t, "url": u} for t, u in zip(chunk.docs.column("text").to_pylist(), chunk.docs.column("url").to_pylist())]
    tweets = [{"text": t, "url": None} for t in pq.read_table(REPO / "data/sample/en/tweets.parquet", columns=["text"]).column("text").to_pylist()]
    return long_docs, tweets


def run_winnow(docs: list[dict]) -> dict:
    import pyarrow as pa

    from pipeline.config import load_config

    cfg = load_config(REPO / "configs/default.yaml")
    stages = [s.stage_cls(s.config) for s in cfg.stages if s.name in ("url_filter", "heuristics")]
    t0 = time.process_time()
    reasons: list[str | None] = []
    for start in range(0, len(docs), 2048):
        part = docs[start:start + 2048]
        table = pa.table({
            "id": [str(start + i) for i in range(len(part))],
            "text": pa.array([d["text"] for d in part], pa.large_string()),
            "url": pa.array([d["url"] for d in part], pa.string()),
            "source": ["bench"] * len(part), "lang": ["en"] * len(part),
        })
        batch_reasons = [None] * len(part)
        for stage in stages:
            stage.start_shard(f"b{start}")
            out = stage(table)
            for i, r in enumerate(out.reasons.to_pylist()):
                batch_reasons[i] = batch_reasons[i] or r
        reasons += batch_reasons
    return {"cpu_s": time.process_time() - t0, "reasons": reasons}


def run_datatrove(docs: list[dict]) -> dict:
    """The peer's half; runs in the interpreter that has datatrove."""
    import nltk.tokenize
    import nltk.tokenize.punkt as punkt

    splitter = punkt.PunktSentenceTokenizer()
    nltk.tokenize.sent_tokenize = lambda text, language="english": splitter.tokenize(text)
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, URLFilter)
    from datatrove.utils import word_tokenizers

    word_tokenizers.NLTKTokenizer.tokenizer = property(lambda self: splitter)
    url_filter = URLFilter()
    text_filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
    url_filter.filter(Document(text="warm up", id="w", metadata={"url": "http://example.com/"}))
    text_filters[1].filter(Document(text="warm up the tokenizer. " * 20, id="w"))
    t0 = time.process_time()
    reasons = []
    for i, d in enumerate(docs):
        doc = Document(text=d["text"], id=str(i), metadata={"url": d["url"]} if d["url"] else {})
        reason = None
        for f in ([url_filter] if d["url"] else []) + text_filters:
            r = f.filter(doc)
            if r is False or (isinstance(r, tuple) and r[0] is False):
                reason = f"{type(f).__name__}:{r[1] if isinstance(r, tuple) else 'drop'}"
                break
        reasons.append(reason)
    return {"cpu_s": time.process_time() - t0, "reasons": reasons}


def agreement(a: list, b: list) -> float:
    return sum((x is None) == (y is None) for x, y in zip(a, b)) / max(1, len(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", default=sys.executable, help="interpreter with datatrove installed")
    parser.add_argument("--repeat", type=int, default=20, help="copies of the long documents for timing (per-doc cost unchanged)")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # internal: run the DataTrove half on this JSON file
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(run_datatrove(json.loads(Path(args.peer).read_text()))))
        return

    long_docs, tweets = load_documents()
    timed = long_docs * args.repeat + tweets
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.json"
        path.write_text(json.dumps(timed))
        done = subprocess.run([args.peer_python, __file__, "--peer", str(path)], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"DataTrove half failed:\n{done.stderr[-3000:]}")
        peer = json.loads(done.stdout.strip().splitlines()[-1])
    ours = run_winnow(timed)
    n, chars = len(timed), sum(len(d["text"]) for d in timed)
    print(f"documents: {n:,} ({len(long_docs)} long English web documents x {args.repeat} + {len(tweets):,} tweets), {chars / 1e6:.1f} M chars")
    print(f"{'':12} {'CPU s':>8} {'docs/s/core':>12} {'M chars/s':>10} {'kept':>7}")
    for name, res in (("datatrove", peer), ("winnow", ours)):
        kept = sum(r is None for r in res["reasons"])
        print(f"{name:12} {res['cpu_s']:8.2f} {n / res['cpu_s']:12,.0f} {chars / res['cpu_s'] / 1e6:10.2f} {kept:7,}")
    print(f"speed ratio winnow / datatrove per core: {peer['cpu_s'] / ours['cpu_s']:.1f}x")
    nl = len(long_docs)
    print(f"agreement (both keep or both drop): long documents {agreement(ours['reasons'][:nl], peer['reasons'][:nl]):.1%}, "
          f"tweets {agreement(ours['reasons'][-len(tweets):], peer['reasons'][-len(tweets):]):.1%}")
    print("disagreements on long documents (index, winnow, datatrove, url):")
    for i in range(nl):
        w, d = ours["reasons"][i], peer["reasons"][i]
        if (w is None) != (d is None):
            print(f"  {i:3d} {str(w):28} {str(d):44} {long_docs[i]['url']}")


if __name__ == "__main__":
    main()
