"""Main-text extraction on annotated real pages: precision, recall and F1 of every variant against the
truth, per language, and its speed in pages per CPU-second.

    python benchmarks/bench_extraction.py [--data DIR] [--variants NAME,...] [--workers N] [--json OUT]

Pages are the real-web sets with main-content truth (`en-pages-2025-a`, 501 English pages of 2025-26;
`zh-pages-cwced`, 69 Chinese pages), read and decoded as ingest reads them (HTTP block, content
encoding, charset), then handed to each variant as the same HTML string. Scores are the bag-of-tokens
overlap of `winnow eval extraction` (winnow/token_overlap.py); an empty extraction scores 0, as a page
ingest rejects does there. Speed is pages per CPU-second of the worker process (process time, so other
jobs on the machine slow it less than wall time would): the bare resiliparse and trafilatura calls are
the peer baselines; `winnow:<name>` rows are winnow's registered extractors as ingest calls them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SETS = {"en": "en-pages-2025-a", "zh": "zh-pages-cwced"}


def _resiliparse(**options):
    def run(html: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(html, **options)

    return run


def _trafilatura(**options):
    def run(html: str) -> str:
        import trafilatura

        return trafilatura.extract(html, **options) or ""

    return run


def _winnow(name: str):
    def run(html: str) -> str:
        from stages.ingest.web.extract import ExtractionFailed, main_text

        try:
            return main_text(html, name)
        except ExtractionFailed:
            return ""

    return run


VARIANTS = {
    "resiliparse main_content (bare)": _resiliparse(main_content=True),
    "resiliparse whole page": _resiliparse(main_content=False),
    "resiliparse main; alt_texts off": _resiliparse(main_content=True, alt_texts=False),
    "resiliparse main; comments off": _resiliparse(main_content=True, comments=False),
    "resiliparse main; noscript on": _resiliparse(main_content=True, noscript=True),
    "resiliparse main; hidden elements kept": _resiliparse(main_content=True, hidden_elements=True),
    "resiliparse main; links on": _resiliparse(main_content=True, links=True),
    "resiliparse main; skip nav/header/footer/aside": _resiliparse(
        main_content=True, skip_elements=["nav", "header", "footer", "aside"]
    ),
    "trafilatura defaults (bare)": _trafilatura(),
    "trafilatura favor_precision": _trafilatura(favor_precision=True),
    "trafilatura favor_recall": _trafilatura(favor_recall=True),
    "trafilatura include_tables off": _trafilatura(include_tables=False),
    "trafilatura include_comments off": _trafilatura(include_comments=False),
    "trafilatura no_fallback": _trafilatura(no_fallback=True),
    "trafilatura fast": _trafilatura(fast=True),
    "winnow:resiliparse": _winnow("resiliparse"),
    "winnow:trafilatura": _winnow("trafilatura"),
    "winnow:trafilatura+resiliparse": _winnow("trafilatura+resiliparse"),
}


def load_pages(data: Path, name: str) -> list[tuple[str, str, str]]:
    """(url, decoded HTML, truth main_content) of every page of a set, in file order."""
    from stages.ingest.web.charset import decode_html
    from stages.ingest.web.http import decode_transfer, header_charset, parse_http
    from stages.ingest.web.records import WarcStream, clean_uri, iter_records

    truth = [json.loads(line) for line in gzip.open(data / f"{name}.truth.jsonl.gz")]
    pages = []
    for record in iter_records(WarcStream(str(data / f"{name}.warc.gz"))):
        if record.type == "response":
            response = parse_http(record.block)
            charset = header_charset(response.headers.get("content-type"))
            html = decode_html(decode_transfer(response), charset)[0]
            pages.append((clean_uri(record.headers.get("warc-target-uri")), html))
    if [url for url, _ in pages] != [row["url"] for row in truth]:
        raise SystemExit(f"{name}: WARC and truth do not list the same pages in the same order")
    return [(url, html, row["main_content"]) for (url, html), row in zip(pages, truth)]


def run_variant(args: tuple[str, dict[str, list[tuple[str, str, str]]]]) -> dict:
    """Scores and CPU time of one variant on every set (in a worker process)."""
    from winnow.token_overlap import Overlap, overlap

    name, sets = args
    extract = VARIANTS[name]
    extract(sets[next(iter(sets))][0][1])  # first call imports and initialises
    result = {"variant": name}
    for lang, pages in sets.items():
        started = time.process_time()
        texts = []
        for _, html, _ in pages:
            try:
                texts.append(extract(html))
            except Exception:  # noqa: BLE001 - a variant that raises on a page scores 0 there
                texts.append("")
        seconds = time.process_time() - started
        scores = [overlap(text, truth) for text, (_, _, truth) in zip(texts, pages)]
        micro = sum(scores, Overlap(0, 0, 0))
        n = len(scores)
        result[lang] = {
            "pages": n,
            "micro": {"precision": micro.precision, "recall": micro.recall, "f1": micro.f1},
            "macro": {
                "precision": sum(s.precision for s in scores) / n,
                "recall": sum(s.recall for s in scores) / n,
                "f1": sum(s.f1 for s in scores) / n,
            },
            "empty": sum(1 for t in texts if not t.strip()),
            "cpu_seconds": seconds,
            "pages_per_cpu_second": n / seconds if seconds else None,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/realweb"))
    parser.add_argument("--variants", default=None, help="Comma-separated variant names (default: all).")
    parser.add_argument("--workers", type=int, default=1, help="Variants measured at once (processes).")
    parser.add_argument("--json", type=Path, default=None, help="Write every variant's figures here.")
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",")] if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    sets = {lang: load_pages(args.data, name) for lang, name in SETS.items()}
    header = "| variant | " + " | ".join(
        f"{lang} P | {lang} R | {lang} F1 (macro) | {lang} F1 (micro)" for lang in SETS
    )
    print(header + " | pages/s per core |")
    print("| --- " * (1 + 4 * len(SETS) + 1) + "|", flush=True)
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        for result in pool.map(run_variant, [(n, sets) for n in names]):
            results.append(result)
            print(table_row(result), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))


def table_row(result: dict) -> str:
    """One variant as a Markdown table row: macro P, R, F1 and micro F1 per language, then speed."""
    cells = []
    for lang in SETS:
        m = result[lang]
        cells += [f"{m['macro'][k]:.3f}" for k in ("precision", "recall", "f1")] + [f"{m['micro']['f1']:.3f}"]
    pages = sum(result[lang]["pages"] for lang in SETS)
    speed = pages / sum(result[lang]["cpu_seconds"] for lang in SETS)
    return f"| {result['variant']} | " + " | ".join(cells) + f" | {speed:.1f} |"


if __name__ == "__main__":
    main()
