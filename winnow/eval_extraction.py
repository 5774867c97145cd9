"""`winnow eval extraction`: the ingest readers' main text of each page against a main-content truth.

The pages go through the readers ingest uses (`read_chunks`: WARC or HTML files, charset repair, the
configured extractor), not a separate path, so what is measured is what ingest writes. Each truth line
names a page by `url` and gives its `main_content`; the pages are joined by URL (`WARC-Target-URI`,
or for HTML files the URL from `urls.tsv`). A URL captured more than once is joined in order of
appearance: the first truth line with that URL with the first page, and so on.

Scores are bag-of-tokens overlap (`winnow.token_overlap`): micro pools the token counts of all pages,
macro is the mean of per-page scores. A truth page that ingest did not turn into a document (rejected,
or absent from the input) is *missing*: recall 0 and F1 0, and it is listed with the reason; it has no
precision, so macro precision is the mean over the pages that were extracted.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from stages.ingest import READERS, InputFileError, InputSpec, detect_format, expand_input, read_chunks
from stages.ingest.web.extract import DEFAULT_EXTRACTOR, EXTRACTORS
from winnow.token_overlap import Overlap, overlap

NOT_IN_INPUT = "not-in-input"  # the reason of a truth page no record of the input has the URL of


class TruthFileError(ValueError):
    """The truth file is missing or not JSON lines with `url` and `main_content`; names file and line."""


@dataclass(frozen=True)
class TruthPage:
    url: str
    main_content: str
    line: int


@dataclass(frozen=True)
class PageScore:
    url: str
    line: int  # of the truth file
    scores: Overlap
    missing: str | None = None  # why ingest gave no document: a reject reason or NOT_IN_INPUT

    def as_dict(self) -> dict:
        s = self.scores
        return {
            "url": self.url,
            "truth_line": self.line,
            "status": "missing" if self.missing else "extracted",
            "reason": self.missing,
            "truth_tokens": s.truth,
            "extracted_tokens": s.extracted,
            "matched_tokens": s.matched,
            "precision": None if self.missing else s.precision,
            "recall": s.recall,
            "f1": 0.0 if self.missing else s.f1,
        }


@dataclass
class ExtractionEval:
    """The result: every truth page's score, and what the input held beyond the truth."""

    input: str
    truth: str
    extractor: str
    pages: list[PageScore]
    extra_documents: int = 0  # documents of the input that no truth line asks for
    seconds: float = 0.0
    missing: list[PageScore] = field(init=False)

    def __post_init__(self):
        self.missing = [p for p in self.pages if p.missing]

    @property
    def micro(self) -> Overlap:
        total = Overlap(0, 0, 0)
        for page in self.pages:
            total += page.scores
        return total

    @property
    def macro(self) -> dict[str, float]:
        """Mean per-page precision (over extracted pages), recall and F1 (over all truth pages)."""
        extracted = [p.scores for p in self.pages if not p.missing]
        n = len(self.pages)
        return {
            "precision": sum(s.precision for s in extracted) / len(extracted) if extracted else 0.0,
            "recall": sum(p.scores.recall for p in self.pages) / n if n else 0.0,
            "f1": sum(0.0 if p.missing else p.scores.f1 for p in self.pages) / n if n else 0.0,
        }

    def as_dict(self) -> dict:
        micro = self.micro
        return {
            "input": self.input,
            "truth": self.truth,
            "extractor": self.extractor,
            "pages": len(self.pages),
            "extracted": len(self.pages) - len(self.missing),
            "missing": [{"url": p.url, "truth_line": p.line, "reason": p.missing} for p in self.missing],
            "extra_documents": self.extra_documents,
            "micro": {
                "precision": micro.precision,
                "recall": micro.recall,
                "f1": micro.f1,
                "matched_tokens": micro.matched,
                "extracted_tokens": micro.extracted,
                "truth_tokens": micro.truth,
            },
            "macro": self.macro,
            "seconds": round(self.seconds, 3),
            "per_page": [p.as_dict() for p in self.pages],
        }


def load_truth(path: str | Path) -> list[TruthPage]:
    """Truth pages from JSON lines (plain or .gz), each an object with string `url` and `main_content`."""
    path = str(path)
    if not Path(path).is_file():
        raise TruthFileError(f"{path}: no such truth file")
    opener = gzip.open if path.endswith(".gz") else open
    pages = []
    line_no = 0
    try:
        with opener(path, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                pages.append(_truth_page(path, line_no, raw))
    except (OSError, EOFError, zlib.error) as err:
        raise TruthFileError(f"{path}:{line_no + 1}: cannot read ({type(err).__name__}: {err})") from None
    if not pages:
        raise TruthFileError(f"{path}: no truth pages (empty file)")
    return pages


def _truth_page(path: str, line_no: int, raw: bytes) -> TruthPage:
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise TruthFileError(f"{path}:{line_no}: not JSON ({err})") from None
    if not isinstance(row, dict):
        raise TruthFileError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
    for key in ("url", "main_content"):
        if not isinstance(row.get(key), str):
            got = "nothing" if key not in row else type(row[key]).__name__
            raise TruthFileError(f"{path}:{line_no}: `{key}` must be a string, got {got}")
    return TruthPage(row["url"].strip(), row["main_content"], line_no)


def ingest_pages(input_path: str, extractor: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(url, text, reject reason) of every document and reject the ingest readers make of the input."""
    files = [f for f in expand_input(input_path) if READERS[detect_format(f)].extracts_html]
    if not files:
        raise ValueError(f"{input_path}: no WARC or HTML files there")
    spec = InputSpec(path=input_path, source="eval-extraction")
    for path in files:
        try:
            for chunk in read_chunks(path, Path(path).name, spec, 1, extractor=extractor):
                if chunk.docs.num_rows:
                    for row in chunk.docs.select(["url", "text"]).to_pylist():
                        yield (row["url"] or "").strip(), row["text"], None
                for reject in chunk.rejects:
                    yield (reject["url"] or "").strip(), None, reject["reason"]
        except InputFileError as err:
            raise ValueError(str(err)) from None


def evaluate(
    input_path: str,
    truth_path: str,
    extractor: str = DEFAULT_EXTRACTOR,
    progress: Callable[[int], None] | None = None,
) -> ExtractionEval:
    """Scores the ingest extraction of `input_path` against `truth_path`; `progress(n)` after each page."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; use one of {', '.join(EXTRACTORS)}")
    started = time.perf_counter()
    truth = load_truth(truth_path)
    wanted: dict[str, deque[TruthPage]] = defaultdict(deque)
    for page in truth:
        wanted[page.url].append(page)
    results: dict[int, PageScore] = {}
    extra = 0
    for url, text, reason in ingest_pages(input_path, extractor):
        if not wanted.get(url):
            extra += text is not None
            continue
        page = wanted[url].popleft()
        if text is None:
            results[page.line] = PageScore(url, page.line, overlap("", page.main_content), missing=reason)
        else:
            results[page.line] = PageScore(url, page.line, overlap(text, page.main_content))
        if progress is not None:
            progress(len(results))
    for page in truth:
        if page.line not in results:
            results[page.line] = PageScore(page.url, page.line, overlap("", page.main_content), missing=NOT_IN_INPUT)
    pages = [results[page.line] for page in truth]
    return ExtractionEval(input_path, truth_path, extractor, pages, extra, time.perf_counter() - started)


def evaluate_with_progress(input_path: str, truth_path: str, extractor: str | None, console) -> ExtractionEval:
    """evaluate() with a progress bar over the truth pages on `console` (trafilatura reads ~10 pages/s)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    pages = len(load_truth(truth_path))
    columns = (TextColumn("extracting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("pages", total=pages)
        return evaluate(
            input_path,
            truth_path,
            extractor or DEFAULT_EXTRACTOR,
            progress=lambda done: bar.update(task, completed=done),
        )


MISSING_SHOWN = 20  # missing pages printed; the JSON lists all


def print_extraction_eval(result: ExtractionEval, out) -> None:
    """The scores as a table, then the missing pages with their reasons."""
    from rich.table import Table

    micro, macro = result.micro, result.macro
    table = Table(title=f"{result.extractor} on {Path(result.input).name}", title_justify="left")
    for name in ("", "precision", "recall", "F1", "pages"):
        table.add_column(name, justify="right" if name else "left")
    pages = f"{len(result.pages) - len(result.missing)} of {len(result.pages)}"
    table.add_row("micro", f"{micro.precision:.3f}", f"{micro.recall:.3f}", f"{micro.f1:.3f}", pages)
    table.add_row("macro", f"{macro['precision']:.3f}", f"{macro['recall']:.3f}", f"{macro['f1']:.3f}", pages)
    out.print(table)
    out.print(
        f"tokens: {micro.matched:,} matched, {micro.extracted:,} extracted, {micro.truth:,} in the truth; "
        f"{result.extra_documents:,} documents not in the truth; {result.seconds:.1f}s",
        highlight=False,
    )
    if result.missing:
        out.print(f"missing ({len(result.missing)}, recall 0):", highlight=False)
        for page in result.missing[:MISSING_SHOWN]:
            out.print(f"  {page.url}  ({page.missing}; truth line {page.line})", highlight=False, soft_wrap=True)
        if len(result.missing) > MISSING_SHOWN:
            out.print(f"  ... and {len(result.missing) - MISSING_SHOWN} more (all in --json)", highlight=False)
