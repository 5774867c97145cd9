"""Cheap filters, winnow vs DataTrove, on the same English documents in one run.

DataTrove side: URLFilter -> GopherRepetition -> GopherQuality -> C4Quality -> FineWebQuality, per
document, stopping at the first drop (as its pipeline does). winnow side: the `url_filter` and
`heuristics` stages with the settings of configs/default.yaml, on Arrow batches of 2,048 rows.
Both single process; CPU (process_time) and wall time are measured after loading, and loading
(imports, lists, models, one warm-up call) is reported apart. DataTrove lives in its own venv if you
like: the script runs its half as a subprocess with `--peer-python` (default: this interpreter), the
documents going over in a temporary JSON file and the per-document reasons and timings coming back
as JSON. The long documents are replicated (`--repeat`, by default to about 5,000) so that timings
are not lost in noise; replication does not change the per-document cost (neither side caches
anything per text; winnow's per-host URL cache and per-shard URL dedup are the only state, and the
latter sees each shard = one 2,048-row batch afresh).

    pip install datatrove==0.10.1 spacy regex tldextract nltk pyahocorasick fasteners  # the peer venv

    .venv/bin/python benchmarks/bench_filters.py --peer-python /path/to/venv-with-datatrove/bin/python

NLTK's punkt data cannot be downloaded offline, so DataTrove's sentence splitting uses an untrained
PunktSentenceTokenizer (same algorithm and cost, no abbreviation list); its English word tokenizer
is spaCy's blank `en` model, which needs no download. tldextract is built on its bundled Public
Suffix List snapshot (no suffix-list URLs, no cache), so it never tries the network.
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

    long_docs = [
        {"text": r["text"], "url": r.get("url")}
        for r in map(json.loads, open(REPO / "data/sample/en/ccnet-head.jsonl"))
    ]
    with gzip.open(REPO / "data/sample/en/refined.jsonl.gz", "rt") as f:
        long_docs += [
            {"text": r["text"], "url": None} for r in map(json.loads, f) if "stackexchange" not in r.get("subset", "")
        ]
    for path in sorted((REPO / "data/sample/web").glob("dolma-*.warc.gz")):
        for chunk in read_chunks(str(path), path.name, InputSpec(path=str(path), source="web"), 10_000):
            long_docs += [
                {"text": t, "url": u}
                for t, u in zip(chunk.docs.column("text").to_pylist(), chunk.docs.column("url").to_pylist())
            ]
    tweets = [
        {"text": t, "url": None}
        for t in pq.read_table(REPO / "data/labelled/en/tweets.parquet", columns=["text"]).column("text").to_pylist()
    ]
    return long_docs, tweets


def _table(part: list[dict], start: int):
    import pyarrow as pa

    return pa.table(
        {
            "id": [str(start + i) for i in range(len(part))],
            "text": pa.array([d["text"] for d in part], pa.large_string()),
            "url": pa.array([d["url"] for d in part], pa.string()),
            "source": ["bench"] * len(part),
            "lang": ["en"] * len(part),
        }
    )


def run_winnow(docs: list[dict]) -> dict:
    l0, lw = time.process_time(), time.perf_counter()
    import numpy as np
    import pyarrow as pa

    from winnow.config import load_config

    cfg = load_config(REPO / "configs/default.yaml")
    stages = [s.stage_cls(s.config) for s in cfg.stages if s.name in ("url_filter", "heuristics")]
    warm = _table([{"text": "Warm up the rules and load the lists. " * 20, "url": "http://example.com/"}], 0)
    for stage in stages:  # lists, dictionaries and compiled patterns load on the first call
        stage.start_shard("warm-up")
        stage(warm)
    load_cpu, load_wall = time.process_time() - l0, time.perf_counter() - lw
    tables = [
        (start, _table(docs[start : start + 2048], start)) for start in range(0, len(docs), 2048)
    ]  # input, not timed
    t0, w0 = time.process_time(), time.perf_counter()
    reasons: list[str | None] = []
    for start, table in tables:  # as the runner does: each stage sees only the rows the one before kept
        batch_reasons: list[str | None] = [None] * table.num_rows
        rows = np.arange(table.num_rows)
        for stage in stages:
            stage.start_shard(f"b{start}")
            out = stage(table)
            for i, r in zip(rows[~out.keep], out.reasons.filter(pa.array(~out.keep)).to_pylist()):
                batch_reasons[i] = r
            table, rows = out.table.filter(pa.array(out.keep)), rows[out.keep]
        reasons += batch_reasons
    return {
        "cpu_s": time.process_time() - t0,
        "wall_s": time.perf_counter() - w0,
        "load_cpu_s": load_cpu,
        "load_wall_s": load_wall,
        "reasons": reasons,
    }


def run_datatrove(docs: list[dict]) -> dict:
    """The peer's half; runs in the interpreter that has datatrove."""
    l0, lw = time.process_time(), time.perf_counter()
    import nltk.tokenize
    import nltk.tokenize.punkt as punkt

    splitter = punkt.PunktSentenceTokenizer()
    nltk.tokenize.sent_tokenize = lambda text, language="english": splitter.tokenize(text)
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        URLFilter,
    )
    from datatrove.utils import word_tokenizers

    word_tokenizers.NLTKTokenizer.tokenizer = property(lambda self: splitter)
    from tldextract import TLDExtract

    url_filter = URLFilter()
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled snapshot, no fetch
    text_filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
    url_filter.filter(Document(text="warm up", id="w", metadata={"url": "http://example.com/"}))
    text_filters[1].filter(Document(text="warm up the tokenizer. " * 20, id="w"))
    load_cpu, load_wall = time.process_time() - l0, time.perf_counter() - lw
    documents = [
        Document(text=d["text"], id=str(i), metadata={"url": d["url"]} if d["url"] else {}) for i, d in enumerate(docs)
    ]  # input, not timed
    t0, w0 = time.process_time(), time.perf_counter()
    reasons = []
    for d, doc in zip(docs, documents):
        reason = None
        for f in ([url_filter] if d["url"] else []) + text_filters:
            r = f.filter(doc)
            if r is False or (isinstance(r, tuple) and r[0] is False):
                reason = f"{type(f).__name__}:{r[1] if isinstance(r, tuple) else 'drop'}"
                break
        reasons.append(reason)
    return {
        "cpu_s": time.process_time() - t0,
        "wall_s": time.perf_counter() - w0,
        "load_cpu_s": load_cpu,
        "load_wall_s": load_wall,
        "reasons": reasons,
    }


def agreement(a: list, b: list) -> float:
    return sum((x is None) == (y is None) for x, y in zip(a, b)) / max(1, len(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", default=sys.executable, help="interpreter with datatrove installed")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="copies of the long documents for timing (default: enough for about --long-docs; per-doc cost unchanged)",
    )
    parser.add_argument(
        "--long-docs", type=int, default=5000, help="target number of long documents when --repeat is not given"
    )
    parser.add_argument("--no-tweets", action="store_true", help="time the long documents only")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # internal: run the DataTrove half on this JSON file
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(run_datatrove(json.loads(Path(args.peer).read_text()))))
        return

    long_docs, tweets = load_documents()
    if args.no_tweets:
        tweets = []
    if args.repeat is None:
        args.repeat = max(1, round(args.long_docs / len(long_docs)))
    # copies after the first get a distinct URL (an extra query parameter, which neither side's word
    # rules read as a word of note), else winnow's url-duplicate rule would drop them as copies
    timed = [
        d
        if k == 0 or not d["url"]
        else {"text": d["text"], "url": d["url"] + ("&" if "?" in d["url"] else "?") + f"bcopy={k}"}
        for k in range(args.repeat)
        for d in long_docs
    ] + tweets
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.json"
        path.write_text(json.dumps(timed))
        done = subprocess.run(
            [args.peer_python, __file__, "--peer", str(path)], capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"DataTrove half failed:\n{done.stderr[-3000:]}")
        peer = json.loads(done.stdout.strip().splitlines()[-1])
    ours = run_winnow(timed)
    n, chars = len(timed), sum(len(d["text"]) for d in timed)
    print(
        f"documents: {n:,} ({len(long_docs)} long English web documents x {args.repeat} + {len(tweets):,} tweets), {chars / 1e6:.1f} M chars"
    )
    print(
        f"{'':10} {'CPU s':>7} {'wall s':>7} {'docs/s/core':>12} {'M chars/s':>10} {'kept':>7} {'load CPU s':>11} {'load wall s':>12}"
    )
    for name, res in (("datatrove", peer), ("winnow", ours)):
        kept = sum(r is None for r in res["reasons"])
        print(
            f"{name:10} {res['cpu_s']:7.2f} {res['wall_s']:7.2f} {n / res['cpu_s']:12,.0f} {chars / res['cpu_s'] / 1e6:10.2f} "
            f"{kept:7,} {res['load_cpu_s']:11.2f} {res['load_wall_s']:12.2f}"
        )
    print(
        f"speed ratio winnow / datatrove per core (CPU): {peer['cpu_s'] / ours['cpu_s']:.1f}x (wall: {peer['wall_s'] / ours['wall_s']:.1f}x)"
    )
    nl, nlr = len(long_docs), len(long_docs) * args.repeat
    for name, res in (("datatrove", peer), ("winnow", ours)):  # each copy must get the same verdict
        copies = {tuple(res["reasons"][k * nl : (k + 1) * nl]) for k in range(args.repeat)}
        if len(copies) != 1:
            print(f"note: {name} gave different verdicts to copies of the same documents")
    line = f"agreement (both keep or both drop): long documents {agreement(ours['reasons'][:nl], peer['reasons'][:nl]):.1%} of {nl}"
    if tweets:
        line += f", tweets {agreement(ours['reasons'][nlr:], peer['reasons'][nlr:]):.1%} of {len(tweets):,}"
    print(line)
    print("disagreements on long documents (index, winnow, datatrove, url):")
    for i in range(nl):
        w, d = ours["reasons"][i], peer["reasons"][i]
        if (w is None) != (d is None):
            print(f"  {i:3d} {str(w):28} {str(d):44} {long_docs[i]['url']}")
    tweet_diff = [
        i for i in range(len(tweets)) if (ours["reasons"][nlr + i] is None) != (peer["reasons"][nlr + i] is None)
    ]
    if tweet_diff:
        print(f"disagreements on tweets: {len(tweet_diff)}; first 10 (index, winnow, datatrove, text):")
        for i in tweet_diff[:10]:
            print(
                f"  {i:5d} {str(ours['reasons'][nlr + i]):28} {str(peer['reasons'][nlr + i]):44} {tweets[i]['text'][:60]!r}"
            )


if __name__ == "__main__":
    main()
