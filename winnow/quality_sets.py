"""Training sets of the shipped quality models: reference-like text against real crawl text.

Positives are curated reference text, negatives what a crawl yields once winnow's ingest has extracted it
(the GPT-3 / LLaMA / DCLM recipe): the model learns "reads like reference text", so good crawl articles
score in between rather than at the top. Both sides go through the same steps the quality stage's input
went through (ingest's extraction for WARC pages, then `line_clean` with its defaults), so the model does
not learn menus and footers that the pipeline removes before it scores.

Split: a fixed share of *groups* is held out, a group being the page's site where the document has a URL
and the document itself otherwise, so held-out pages come from sites never trained on. Training rows
are chunks of about the same length on both sides (cut at sentence or line ends), at most a few per
document, so neither length nor one long document decides what the model learns.

Every set here has a licence that allows shipping a model trained on it (`SHIPPABLE`); the tests-only
sets (Weibo, TREC e-mails, FewCLUE, ChineseWebText) only ever serve as evaluation, in the benchmark.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import xxhash

HELD_SHARE = 0.2
SPLIT_SEED = "quality-v2"
CHUNK_CHARS = {"en": 200, "zh": 160}  # chosen by 5-fold grouped cross-validation on the training part
MAX_CHUNKS_PER_DOC = 6  # crawl side: many documents, so a few chunks each; reference side: every chunk
# fastText settings beyond the defaults, chosen by the same cross-validation. Small (16 dimensions, 50,000
# n-gram buckets): a few thousand rows need no more, and the model ships unquantised at ~3.5 MB, because
# quantising retrains it and pushes most crawl pages to 0 (no spread left for the weights stage). The
# Chinese model with 10 epochs does the same; 5 ranks as well (AUC 0.991 against 0.994).
SMALL = {"dim": 16, "bucket": 50_000}
PARAMS = {"en": SMALL, "zh": {**SMALL, "epoch": 5}}
MIN_DOC_CHARS = 50  # the default pipeline's min_length
SENTENCE_END = {"en": r"(?<=[.!?])\s+|\n+", "zh": r"(?<=[。！？!?])|\n+"}
HAN = re.compile(r"[\u3400-\u9fff]")

# set -> licence; only these may train a model that ships (docs/classifiers.md)
SHIPPABLE = {
    "dj-refined": "Apache-2.0",
    "cmrc2018-wikipedia": "CC BY-SA 4.0",
    "en-pages": "Apache-2.0",
    "dolma-crawl": "Apache-2.0",
    "cc-excerpt": "Apache-2.0",
    "ccnet-head": "Apache-2.0",
    "en-email-spam": "Apache-2.0",
    "zh-pages": "MIT",
    "zhihu": "Apache-2.0",
    "cc-zh": "Apache-2.0",
}


@dataclass(frozen=True)
class Doc:
    text: str
    source: str  # one of SHIPPABLE's sets, or an evaluation-only source
    group: str  # split unit: the site for pages with a URL, else the document
    label: int  # 1 reference-like, 0 crawl


def _host(url: str | None) -> str | None:
    """The site, or None where there is none (no URL, or a synthetic `*.invalid` one: the page is its own group)."""
    host = urlsplit(url or "").hostname or ""
    if host.endswith(".invalid"):
        return None
    return host.removeprefix("www.") or None


def _jsonl(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def warc_pages(path: Path) -> list[tuple[str, str | None]]:
    """(text, url) of every page winnow's ingest extracts from a WARC file."""
    from stages.ingest.readers.warc import read_warc_chunks

    spec = SimpleNamespace(source="quality", lang=None)
    pages = []
    for chunk in read_warc_chunks(str(path), path.name, spec, 100_000):
        pages += zip(chunk.docs.column("text").to_pylist(), chunk.docs.column("url").to_pylist())
    return pages


def _han_share(text: str) -> float:
    letters = sum(ch.isalpha() for ch in text)
    return len(HAN.findall(text)) / max(letters, 1)


def _is_english(text: str) -> bool:
    letters = [ch for ch in text[:3000] if ch.isalpha()]
    return len(letters) >= 20 and sum(ch.isascii() for ch in letters) / len(letters) > 0.95


def _pages(path: Path, source: str, lang: str) -> list[Doc]:
    keep = (lambda t: _han_share(t) >= 0.3) if lang == "zh" else _is_english
    return [
        Doc(text, source, f"site:{_host(url)}" if _host(url) else f"page:{url or text[:200]}", 0)
        for text, url in warc_pages(path)
        if keep(text)
    ]


def reference(shared: Path, lang: str) -> list[Doc]:
    if lang == "zh":
        cmrc = json.loads((shared / "reference/zh/cmrc2018-trial-zh-wikipedia.json").read_text(encoding="utf-8"))
        return [
            Doc(p["context"], "cmrc2018-wikipedia", f"article:{a['id']}", 1)
            for a in cmrc["data"]
            for p in a["paragraphs"]
        ]
    docs = []
    for path in sorted((shared / "reference/en").glob("dj-*-refined.jsonl")):
        if "stackexchange" in path.name:  # these are Spanish posts
            continue
        docs += [Doc(d["text"], "dj-refined", f"{path.stem}:{i}", 1) for i, d in enumerate(_jsonl(path))]
    return docs


def crawl(shared: Path, lang: str) -> list[Doc]:
    web = shared / "web"
    real = shared / "realweb"
    docs = _pages(web / "warc/cc-main-2020-34-excerpt.warc.gz", "cc-excerpt", lang)
    if lang == "zh":
        docs += _pages(real / "zh-pages-cwced.warc.gz", "zh-pages", "zh")
        for i, row in enumerate(_jsonl(real / "zh-zhihu-and-cc.jsonl.gz")):
            if row["kind"] == "zhihu_qa":
                docs.append(Doc(row["text"], "zhihu", f"doc:{row.get('url') or i}", 0))
            elif row["kind"] == "ccnet_zh":
                docs.append(Doc(row["text"], "cc-zh", f"site:{_host(row.get('url')) or i}", 0))
        return docs
    docs += _pages(real / "en-pages-2025-a.warc.gz", "en-pages", "en")
    for path in sorted((web / "warc").glob("dolma-crawl-sample-*.warc.gz")):
        docs += _pages(path, "dolma-crawl", "en")
    for path in sorted((web / "jsonl").glob("ccnet-en-head-*.jsonl")):
        docs += [
            Doc(d["text"], "ccnet-head", f"site:{_host(d.get('url')) or d['text'][:200]}", 0) for d in _jsonl(path)
        ]
    for row in _jsonl(real / "en-emails-spamassassin-a.jsonl.gz"):
        if row["label"] == "spam":
            docs.append(Doc(row["text"], "en-email-spam", f"mail:{row['id']}", 0))
    return docs


def line_cleaned(docs: list[Doc], lang: str) -> list[Doc]:
    """The documents as the quality stage sees them: after `line_clean` (defaults), at least 50 characters."""
    from stages.line_clean import LineClean, LineCleanConfig

    if not docs:
        return []
    table = pa.table(
        {"id": [str(i) for i in range(len(docs))], "text": [d.text for d in docs], "lang": [lang] * len(docs)}
    )
    out = LineClean(LineCleanConfig())(table)
    texts = out.table.column("text").to_pylist()
    return [
        Doc(text, d.source, d.group, d.label)
        for d, text, keep in zip(docs, texts, out.keep.tolist())
        if keep and len(text.strip()) >= MIN_DOC_CHARS
    ]


def is_held(group: str, share: float = HELD_SHARE) -> bool:
    """A fixed hash of the group: the same pages are held out on every machine and every rebuild."""
    return xxhash.xxh3_64_intdigest(f"{SPLIT_SEED}\x1f{group}".encode()) % 10_000 < share * 10_000


def split(docs: list[Doc], share: float = HELD_SHARE) -> tuple[list[Doc], list[Doc]]:
    held = [is_held(d.group, share) for d in docs]
    return [d for d, h in zip(docs, held) if not h], [d for d, h in zip(docs, held) if h]


def chunks(text: str, lang: str, target: int | None = None) -> list[str]:
    """Pieces of about `target` characters cut at sentence or line ends; a last piece under a third is dropped."""
    target = target or CHUNK_CHARS[lang]
    pieces, current = [], ""
    sep = "" if lang == "zh" else " "
    for sentence in re.split(SENTENCE_END[lang], text):
        sentence = (sentence or "").strip()
        if not sentence:
            continue
        current = f"{current}{sep}{sentence}" if current else sentence
        if len(current) >= target:
            pieces.append(current[: 3 * target])
            current = ""
    if len(current) >= target // 3:
        pieces.append(current)
    return pieces


def chunk_rows(docs: list[Doc], lang: str, seed: int = 0, per_doc: int | None = None) -> list[tuple[str, int]]:
    """(chunk, label) rows: every chunk, or at most `per_doc` of each document drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in docs:
        pieces = chunks(d.text, lang)
        if per_doc is not None and len(pieces) > per_doc:
            pieces = [pieces[i] for i in sorted(rng.choice(len(pieces), per_doc, replace=False))]
        rows += [(p, d.label) for p in pieces]
    return rows


def training_rows(docs: list[Doc], lang: str, seed: int = 0) -> list[tuple[str, int]]:
    """Every reference chunk and as many crawl chunks (at most MAX_CHUNKS_PER_DOC a page, then a seeded
    sample), so the two sides are even and no long page dominates its side."""
    pos = chunk_rows([d for d in docs if d.label == 1], lang, seed)
    neg = chunk_rows([d for d in docs if d.label == 0], lang, seed, MAX_CHUNKS_PER_DOC)
    rng = np.random.default_rng(seed)
    if len(neg) > len(pos):
        neg = [neg[i] for i in sorted(rng.choice(len(neg), len(pos), replace=False))]
    return pos + neg


def documents(shared: Path, lang: str) -> list[Doc]:
    """Every shippable document of the language, line-cleaned: reference (label 1) and crawl (label 0)."""
    return line_cleaned(reference(shared, lang) + crawl(shared, lang), lang)
