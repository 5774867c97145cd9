"""Labelled near-duplicate sets for evaluating (and timing) document deduplication.

Every row is real text or a lightly edited copy of real text, with the answer stored next to it:

    id                   string, unique (opaque: `en-000123`, says nothing about the cluster)
    text                 string
    lang                 "en" or "zh"
    cluster              string, the id of the original row this row derives from (its own id for
                         an original); an original and its copies share it
    true_dup             bool, the row's cluster has >= 2 members (it has a near-duplicate here)
    edit                 how the row was made: "original", or the edits applied in order, joined
                         with "+": words (en) / chars (zh), boilerplate, format, truncate
    jaccard_to_original  float, brute-force Jaccard similarity of the row's 5-gram shingle set to
                         its original's (1.0 for originals), so that the labels can be audited
    source               where the original came from: `<file>#<record>/p<passage>`, or `remix`

Construction (deterministic for a given --seed; the rows are shuffled with the same seed):

1. Real documents are read from clearly licensed files (see SOURCES): English = the data-juicer
   refined samples (RedPajama C4 and CC, Pile NIH and USPTO; the StackExchange file is Spanish and
   left out) and the CCNet head documents; Chinese = the CMRC 2018 Chinese Wikipedia paragraphs.
   There are only ~60 English documents, many of them several thousand characters long, so each
   document is cut into passages at line breaks (overlong lines at sentence ends), each passage
   aiming at a random length of 300-1,500 characters; documents up to 1,500 characters stay whole.
   Passages (and whole documents) under 300 characters are dropped. A passage that shares 5-gram
   shingles with an earlier one (Jaccard >= 0.3, e.g. repeated page boilerplate) is dropped, so
   that unrelated originals are not near-duplicates of each other by accident.
2. The originals are taken in a random order; each one becomes a near-duplicate cluster with
   probability --dup-fraction (default 0.3) and then gets 1 to --max-copies (default 3) copies.
   Each copy gets one edit, and with probability 0.35 a second, different one:
     words / chars  English: replace (with another word of the same document), insert, delete or
                    mistype (swap/drop/double a letter) 1-3.5% of the words. Chinese: replace a
                    character, insert or delete a span of 1-3 characters, or swap two neighbours,
                    at 0.5-2% of the characters.
     boilerplate    a header line, a footer line or both ("Share this article", "Copyright ...",
                    "转载请注明出处", "本文来源于网络，如有侵权请联系删除", ...).
     format         whitespace, punctuation and case: lower-casing, joined or doubled line breaks,
                    double spaces, curly quotes, dropped commas (English); half-width punctuation,
                    full-width digits/letters, spaces between Chinese and Latin, extra line breaks,
                    dropped commas (Chinese).
     truncate       the last 5-10% of the characters cut off.
   With these rates the copies' Jaccard to their original on 5-gram shingles is >= 0.7 for the
   large majority (it is stored; the README of tests/data/dedup gives the distribution).
   Shingles: NFKC, case-folded; English 5-grams of `\\w+` words, Chinese 5-grams of the
   alphanumeric characters (punctuation and whitespace dropped).
3. Every row's text is distinct (a copy that happens to equal an existing row is redone).

Big corpora (e.g. `--docs 100000` for the speed benchmark): when the real passages run out (a few
hundred of them), more rows have to come from the same text. --fill says how:

  remix (default)  new originals are made of distinct real sentence units (sentences, long ones
                   cut at commas/semicolons: ~3,400 English, ~5,100 Chinese) drawn at random from
                   the whole pool, at least 6 of them, up to a length drawn from the real
                   passages' lengths. Two such documents share a unit or two at most (in a check
                   of 15,000 rows of the 100,000-row English set, the largest Jaccard between
                   different clusters was 0.30), so they are unique documents and each starts its
                   own cluster, which keeps the set's shape (--dup-fraction of the originals with
                   copies, the rest unique) at any size. The text is real; the documents are not.
  repeat           the real passages are used again in a new random order, and each further use
                   adds fresh edited copies to the passage's existing cluster. Every row stays
                   distinct text and the labels stay right (copies of one source are one
                   cluster), but past a few hundred rows almost every row is a duplicate and the
                   clusters grow to hundreds of members: a stress test, not a realistic mix.
  none             stop when the real passages are used up (fewer rows than --docs): the sets in
                   tests/data/dedup are made so, from real passages only.

Usage (the small sets: see tests/data/dedup/README.md for the exact commands):
    .venv/bin/python benchmarks/make_dedup_sets.py --lang en --docs 600 --seed 1 --fill none --audit --out tests/data/dedup/en.parquet
    .venv/bin/python benchmarks/make_dedup_sets.py --lang en --docs 100000 --out out/bench/dedup-en-100000-s0.parquet   # ~15 s

--source sample (default) reads the bundled sample corpus in data/sample (the same texts, copied
there by data/sample/build_sample.py); --source shared reads the shared data folder (--data-dir).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path("../shared/data")  # the labelled data sets, beside the checkout (as `make models` expects)

MIN_CHARS = 300
PASSAGE_MIN, PASSAGE_MAX = 300, 1500
ORIGINAL_OVERLAP_MAX = 0.3  # originals sharing more than this (Jaccard) with an earlier one are dropped
NGRAM = 5

# Where the licensed texts are, per --source. (file label, path, field, filter)
SOURCES = {
    "en": {
        "sample": [
            (
                "dj-refined",
                "data/sample/en/refined.jsonl.gz",
                "text",
                lambda r: "stackexchange" not in r.get("subset", ""),
            ),
            ("ccnet-head", "data/sample/en/ccnet-head.jsonl", "text", None),
        ],
        "shared": [
            ("dj-redpajama-c4-refined", "reference/en/dj-redpajama-c4-refined.jsonl", "text", None),
            ("dj-redpajama-cc-2023-06-refined", "reference/en/dj-redpajama-cc-2023-06-refined.jsonl", "text", None),
            ("dj-the-pile-nih-refined", "reference/en/dj-the-pile-nih-refined.jsonl", "text", None),
            ("dj-the-pile-uspto-refined", "reference/en/dj-the-pile-uspto-refined.jsonl", "text", None),
            ("ccnet-en-head-0091", "web/jsonl/ccnet-en-head-0091.jsonl", "text", None),
            ("ccnet-en-head-0174", "web/jsonl/ccnet-en-head-0174.jsonl", "text", None),
        ],
    },
    "zh": {
        "sample": [("cmrc2018-wikipedia", "data/sample/zh/wikipedia.jsonl.zst", "text", None)],
        "shared": [("cmrc2018-wikipedia", "reference/zh/cmrc2018-trial-zh-wikipedia.json", "squad", None)],
    },
}

EN_HEADERS = [
    "Share this article",
    "Share on Facebook | Share on Twitter | Email",
    "Skip to main content",
    "Advertisement",
    "Home » News",
    "Click here to subscribe to our newsletter!",
    "You are here: Home",
    "Posted by admin",
    "Print this page",
    "Menu",
]
EN_FOOTERS = [
    "Share this article",
    "Copyright © 2019 All rights reserved.",
    "All rights reserved.",
    "Read more articles like this on our blog.",
    "This article was originally published on our website.",
    "Comments are closed.",
    "Leave a comment",
    "Like this: Like Loading...",
    "Tags: news, events, community",
    "Related posts",
    "Click here to read more.",
    "Back to top",
]
ZH_HEADERS = [
    "点击上方蓝字关注我们",
    "首页 > 新闻 > 正文",
    "分享到：微信 微博 QQ空间",
    "来源：网络",
    "广告",
    "【字体：大 中 小】",
    "本文导读",
]
ZH_FOOTERS = [
    "转载请注明出处",
    "本文来源于网络，如有侵权请联系删除。",
    "责任编辑：小编",
    "（完）",
    "免责声明：本文仅代表作者个人观点，与本站无关。",
    "更多精彩内容，请关注我们的微信公众号。",
    "版权所有 © 2020 保留所有权利",
    "返回顶部",
    "相关阅读",
]

_WORD = re.compile(r"\w+")
_SENT_EN = re.compile(r"(?<=[.!?])\s+")
_SENT_ZH = re.compile(r"(?<=[。！？；])")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


# --------------------------------------------------------------------------- shingles


def shingles(text: str, lang: str, n: int = NGRAM) -> set:
    """5-gram shingle set: NFKC + casefold; en: `\\w+` words, zh: alphanumeric characters."""
    s = unicodedata.normalize("NFKC", text).casefold()
    units = _WORD.findall(s) if lang == "en" else [c for c in s if c.isalnum()]
    if len(units) < n:
        return {tuple(units)} if units else set()
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


# --------------------------------------------------------------------------- real texts


def _read_records(path: Path) -> list[dict]:
    if path.suffix == ".zst":
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
        lines = raw.decode("utf-8").splitlines()
    elif path.suffix == ".gz":
        lines = gzip.open(path, "rt", encoding="utf-8").read().splitlines()
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def load_texts(lang: str, source: str, data_dir: Path) -> list[tuple[str, str]]:
    """[(label, text)] of the real documents, in file order."""
    base = REPO if source == "sample" else data_dir
    out = []
    for label, rel, field, keep in SOURCES[lang][source]:
        path = base / rel
        if field == "squad":
            data = json.loads(path.read_text(encoding="utf-8"))
            recs = [{"text": p["context"]} for art in data["data"] for p in art["paragraphs"]]
        else:
            recs = _read_records(path)
        for i, r in enumerate(recs):
            if keep is None or keep(r):
                out.append((f"{label}#{i}", r[field if field != "squad" else "text"]))
    return out


def split_sentences(text: str, lang: str) -> list[str]:
    pat = _SENT_EN if lang == "en" else _SENT_ZH
    return [s for s in pat.split(text) if s.strip()]


def split_passages(text: str, lang: str, rng: random.Random) -> list[str]:
    """Cuts a document into passages of a random target length at line breaks (overlong lines at
    sentence ends); a document up to PASSAGE_MAX characters stays whole."""
    text = text.strip()
    if len(text) <= PASSAGE_MAX:
        return [text] if len(text) >= MIN_CHARS else []
    pieces = []  # (piece, separator that followed it)
    for line in text.split("\n"):
        if len(line) > PASSAGE_MAX:
            sents = split_sentences(line, lang)
            pieces += [(s, " " if lang == "en" else "") for s in sents[:-1]] + [(sents[-1], "\n")] if sents else []
        else:
            pieces.append((line, "\n"))
    passages, cur, target = [], "", rng.randint(PASSAGE_MIN, PASSAGE_MAX)
    for piece, sep in pieces:
        if cur and len(cur) + len(piece) > PASSAGE_MAX:
            passages.append(cur)
            cur, target = "", rng.randint(PASSAGE_MIN, PASSAGE_MAX)
        cur += piece + sep
        if len(cur) >= target:
            passages.append(cur)
            cur, target = "", rng.randint(PASSAGE_MIN, PASSAGE_MAX)
    if cur.strip():
        if len(cur.strip()) < MIN_CHARS and passages:
            passages[-1] += cur
        else:
            passages.append(cur)
    return [p.strip() for p in passages if len(p.strip()) >= MIN_CHARS]


@dataclass
class Base:
    text: str
    source: str


def real_passages(lang: str, source: str, data_dir: Path, rng: random.Random) -> list[Base]:
    """Passages of the real documents, without pairs that are already similar (see docstring)."""
    out, kept_sh = [], []
    for label, text in load_texts(lang, source, data_dir):
        parts = split_passages(text, lang, rng)
        for j, p in enumerate(parts):
            sh = shingles(p, lang)
            if any(jaccard(sh, o) >= ORIGINAL_OVERLAP_MAX for o in kept_sh):
                continue
            kept_sh.append(sh)
            out.append(Base(p, f"{label}/p{j}" if len(parts) > 1 else label))
    return out


# --------------------------------------------------------------------------- edits


def _edit_words_en(text: str, rng: random.Random) -> str:
    parts = re.split(r"(\s+)", text)  # words at even positions, separators at odd ones
    words = [[parts[i], parts[i + 1] if i + 1 < len(parts) else ""] for i in range(0, len(parts), 2) if parts[i]]
    vocab = [w for w, _ in words]
    k = max(1, round(rng.uniform(0.01, 0.035) * len(words)))
    for _ in range(k):
        if not words:
            break
        i = rng.randrange(len(words))
        op = rng.choices(["replace", "insert", "delete", "typo"], [3, 2, 2, 2])[0]
        if op == "replace":
            words[i][0] = rng.choice(vocab)
        elif op == "insert":
            words.insert(i + 1, [rng.choice(vocab), " "])
            if not words[i][1]:
                words[i][1] = " "
        elif op == "delete" and len(words) > 1:
            sep = words[i][1]
            del words[i]
            if i == len(words):  # removed the last word: keep the trailing separator as it was
                words[-1][1] = sep
        else:
            w = words[i][0]
            if len(w) >= 3:
                j = rng.randrange(len(w) - 1)
                how = rng.randrange(3)
                if how == 0:
                    w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
                elif how == 1:
                    w = w[:j] + w[j + 1 :]
                else:
                    w = w[:j] + w[j] + w[j:]
                words[i][0] = w
    return "".join(w + s for w, s in words)


def _edit_chars_zh(text: str, rng: random.Random) -> str:
    chars = list(text)
    cjk = [c for c in chars if _CJK.match(c)] or chars
    k = max(1, round(rng.uniform(0.005, 0.02) * len(chars)))
    for _ in range(k):
        if len(chars) < 10:
            break
        i = rng.randrange(len(chars))
        op = rng.choices(["replace", "insert", "delete", "swap"], [3, 2, 2, 1])[0]
        span = rng.randint(1, 3)
        if op == "replace":
            chars[i] = rng.choice(cjk)
        elif op == "insert":
            j = rng.randrange(len(chars) - span)
            chars[i:i] = chars[j : j + span]
        elif op == "delete":
            del chars[i : i + span]
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _boilerplate(text: str, lang: str, rng: random.Random) -> str:
    heads, foots = (EN_HEADERS, EN_FOOTERS) if lang == "en" else (ZH_HEADERS, ZH_FOOTERS)
    where = rng.choice(["header", "footer", "both"])
    if where in ("header", "both"):
        text = rng.choice(heads) + "\n" + text
    if where in ("footer", "both"):
        text = text + "\n" + rng.choice(foots)
    return text


_CURLY = str.maketrans({"'": "\u2019", '"': "\u201d"})
_HALF = str.maketrans(
    {"，": ",", "。": ".", "：": ":", "；": ";", "！": "!", "？": "?", "（": "(", "）": ")", "、": ","}
)
_FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F) if chr(c).isalnum()}


def _format(text: str, lang: str, rng: random.Random) -> str:
    if lang == "en":
        ops = [
            "lower",
            "join_lines",
            "blank_lines",
            "double_spaces",
            "curly_quotes",
            "drop_commas",
            "space_before_punct",
        ]
    else:
        ops = ["half_width", "full_width", "space_latin", "break_sentences", "join_lines", "drop_commas"]
    for op in rng.sample(ops, rng.randint(1, 2)):
        if op == "lower":
            text = text.lower()
        elif op == "join_lines":
            text = re.sub(r"\s*\n\s*", " " if lang == "en" else "", text)
        elif op == "blank_lines":
            text = text.replace("\n", "\n\n")
        elif op == "double_spaces":
            text = re.sub(r"([.!?]) ", r"\1  ", text)
        elif op == "curly_quotes":
            text = text.translate(_CURLY)
        elif op == "drop_commas":
            comma = "," if lang == "en" else "，"
            text = "".join(c for c in text if c != comma or rng.random() < 0.5)
        elif op == "space_before_punct":
            text = re.sub(r"(\w)([,.;:!?])", r"\1 \2", text)
        elif op == "half_width":
            text = text.translate(_HALF)
        elif op == "full_width":
            text = "".join(_FULL.get(c, c) for c in text)
        elif op == "space_latin":
            text = re.sub(r"(?<=[\u4e00-\u9fff])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[\u4e00-\u9fff])", " ", text)
        elif op == "break_sentences":
            text = re.sub(r"(?<=[。！？])(?!\n)", "\n", text).rstrip("\n")
    return text


def _truncate(text: str, lang: str, rng: random.Random) -> str:
    cut = int(len(text) * (1 - rng.uniform(0.05, 0.10)))
    if lang == "en" and rng.random() < 0.7:  # mostly at a word boundary, sometimes mid-word
        sp = text.rfind(" ", 0, cut)
        cut = sp if sp > len(text) // 2 else cut
    return text[:cut].rstrip()


EDITS = ["words", "boilerplate", "format", "truncate"]


def make_copy(text: str, lang: str, rng: random.Random) -> tuple[str, str]:
    """One near-duplicate of `text` and the name of its edit(s)."""
    kinds = [rng.choice(EDITS)]
    if rng.random() < 0.35:
        kinds.append(rng.choice([e for e in EDITS if e != kinds[0]]))
    for kind in kinds:
        if kind == "words":
            text = _edit_words_en(text, rng) if lang == "en" else _edit_chars_zh(text, rng)
        elif kind == "boilerplate":
            text = _boilerplate(text, lang, rng)
        elif kind == "format":
            text = _format(text, lang, rng)
        else:
            text = _truncate(text, lang, rng)
    names = ["chars" if (k == "words" and lang == "zh") else k for k in kinds]
    return text, "+".join(names)


# --------------------------------------------------------------------------- the set


def remix_units(bases: list[Base], lang: str) -> list[str]:
    """The distinct sentences of the real passages, long ones cut further at commas, semicolons
    and colons: short units keep two documents that share one of them far apart."""
    lo, hi, cut = (20, 200, 120) if lang == "en" else (8, 100, 50)
    clause = re.compile(r"(?<=[,;:])\s+" if lang == "en" else r"(?<=[，；：])")
    units = []
    for b in bases:
        text = b.text.replace("\n", " ") if lang == "en" else b.text.replace("\n", "")
        for sent in split_sentences(text, lang):
            sent = sent.strip()
            parts = clause.split(sent) if len(sent) > cut else [sent]
            cur = ""
            for part in parts:
                cur = f"{cur} {part}" if (cur and lang == "en") else cur + part
                if len(cur) >= lo:
                    units.append(cur.strip())
                    cur = ""
            if cur.strip() and units:
                units.append(cur.strip())
    return list(dict.fromkeys(u for u in units if lo <= len(u) <= hi))


def remix_document(pool: list[str], lengths: list[int], lang: str, rng: random.Random) -> str:
    """A new document of distinct real sentence units drawn at random from the whole pool."""
    target = rng.choice(lengths)
    used: set[int] = set()
    out, size = [], 0
    while size < target or len(used) < 6:
        i = rng.randrange(len(pool))
        if i in used:
            continue
        used.add(i)
        out.append(pool[i])
        size += len(pool[i]) + 1
        out.append("\n" if rng.random() < 0.15 else (" " if lang == "en" else ""))
    return "".join(out).strip()


def build(
    lang: str,
    docs: int,
    seed: int = 0,
    dup_fraction: float = 0.3,
    max_copies: int = 3,
    fill: str = "remix",
    source: str = "sample",
    data_dir: Path = DEFAULT_SHARED,
    log=print,
):
    """Returns the rows as a dict of columns (see the module docstring)."""
    rng = random.Random(seed)
    bases = real_passages(lang, source, data_dir, rng)
    rng.shuffle(bases)
    lengths = [len(b.text) for b in bases]
    pool = remix_units(bases, lang)
    log(f"{lang}: {len(bases)} real passages ({sum(lengths):,} chars), {len(pool):,} sentence units for remixes")

    rows: list[dict] = []  # text, edit, base index, jaccard, source
    seen: set[bytes] = set()
    base_src: list[str] = []

    def add(text: str, edit: str, b: int, base_sh: set | None = None) -> bool:
        h = hashlib.sha1(text.encode("utf-8")).digest()
        if h in seen:
            return False
        seen.add(h)
        j = 1.0 if edit == "original" else jaccard(shingles(text, lang), base_sh)
        rows.append({"text": text, "edit": edit, "base": b, "jaccard": j, "source": base_src[b]})
        return True

    def add_copies(b: int, base_text: str, n: int) -> None:
        base_sh = shingles(base_text, lang)
        for _ in range(n):
            if len(rows) >= docs:
                return
            for attempt in range(20):
                text, edit = make_copy(base_text, lang, rng)
                if attempt == 19:  # e.g. lower-casing text that has no capitals: make it differ
                    text, edit = _boilerplate(text, lang, rng), edit + "+boilerplate"
                if add(text, edit, b, base_sh):
                    break

    next_real, used_real = 0, []
    while len(rows) < docs:
        if fill == "none" and next_real >= len(bases):
            log(f"{lang}: real passages used up at {len(rows)} rows (--fill none)")
            break
        if next_real < len(bases) or fill == "remix":
            if next_real < len(bases):
                text, src = bases[next_real].text, bases[next_real].source
            else:
                text, src = remix_document(pool, lengths, lang, rng), "remix"
            next_real += 1
            b = len(base_src)
            base_src.append(src)
            if not add(text, "original", b):
                base_src.pop()
                continue
            if src != "remix":
                used_real.append((b, text))
            if rng.random() < dup_fraction:
                add_copies(b, text, rng.randint(1, max_copies))
        else:  # fill == "repeat": fresh copies of a real passage, in its cluster
            if not used_real:
                raise SystemExit("no real passages to repeat")
            order = list(range(len(used_real)))
            rng.shuffle(order)
            for k in order:
                if len(rows) >= docs:
                    break
                b, text = used_real[k]
                add_copies(b, text, rng.randint(1, max_copies))

    rng.shuffle(rows)
    ids = [f"{lang}-{i:06d}" for i in range(len(rows))]
    orig_id = {r["base"]: ids[i] for i, r in enumerate(rows) if r["edit"] == "original"}
    size: dict[int, int] = {}
    for r in rows:
        size[r["base"]] = size.get(r["base"], 0) + 1
    return {
        "id": ids,
        "text": [r["text"] for r in rows],
        "lang": [lang] * len(rows),
        "cluster": [orig_id[r["base"]] for r in rows],
        "true_dup": [size[r["base"]] >= 2 for r in rows],
        "edit": [r["edit"] for r in rows],
        "jaccard_to_original": [round(r["jaccard"], 6) for r in rows],
        "source": [r["source"] for r in rows],
    }


def to_table(cols: dict):
    import pyarrow as pa

    return pa.table(
        {
            "id": pa.array(cols["id"], pa.string()),
            "text": pa.array(cols["text"], pa.string()),
            "lang": pa.array(cols["lang"], pa.string()),
            "cluster": pa.array(cols["cluster"], pa.string()),
            "true_dup": pa.array(cols["true_dup"], pa.bool_()),
            "edit": pa.array(cols["edit"], pa.string()),
            "jaccard_to_original": pa.array(cols["jaccard_to_original"], pa.float64()),
            "source": pa.array(cols["source"], pa.string()),
        }
    )


def write_parquet(cols: dict, out: Path) -> None:
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    small = len(cols["id"]) <= 10_000  # small sets: smallest file, one row group; big ones: quick
    pq.write_table(
        to_table(cols),
        out,
        compression="zstd",
        compression_level=19 if small else 3,
        row_group_size=max(1, len(cols["id"])) if small else 20_000,
    )


def summary(cols: dict, audit: bool) -> str:
    """Counts, the edit mix and the Jaccard distribution of the copies (and, with audit, the
    largest Jaccard between rows of different clusters, by brute force)."""
    n = len(cols["id"])
    lang = cols["lang"][0] if n else "?"
    clusters: dict[str, int] = {}
    for c in cols["cluster"]:
        clusters[c] = clusters.get(c, 0) + 1
    copies = [j for e, j in zip(cols["edit"], cols["jaccard_to_original"]) if e != "original"]
    edits: dict[str, int] = {}
    for e in cols["edit"]:
        edits[e] = edits.get(e, 0) + 1
    dup_clusters = [s for s in clusters.values() if s >= 2]
    lines = [
        f"rows {n:,}; originals {len(clusters):,}; duplicate clusters {len(dup_clusters):,} "
        f"(sizes {min(dup_clusters, default=0)}-{max(dup_clusters, default=0)}); copies {len(copies):,}; "
        f"true_dup rows {sum(cols['true_dup']):,} ({sum(cols['true_dup']) / max(n, 1):.1%}); unique rows "
        f"{n - sum(cols['true_dup']):,}",
        f"text length: mean {sum(map(len, cols['text'])) / max(n, 1):,.0f} chars, "
        f"min {min(map(len, cols['text']), default=0):,}, max {max(map(len, cols['text']), default=0):,}",
    ]
    if copies:
        cs = sorted(copies)
        q = lambda p: cs[min(len(cs) - 1, int(p * len(cs)))]  # noqa: E731
        lines.append(
            f"copies' Jaccard to original (5-gram shingles): min {cs[0]:.3f}, p10 {q(0.1):.3f}, median {q(0.5):.3f}; "
            f">= 0.7: {sum(j >= 0.7 for j in cs) / len(cs):.1%}, >= 0.5: {sum(j >= 0.5 for j in cs) / len(cs):.1%}"
        )
    lines.append("edits: " + ", ".join(f"{k} {v}" for k, v in sorted(edits.items(), key=lambda kv: (-kv[1], kv[0]))))
    if audit:
        sh = [shingles(t, lang) for t in cols["text"]]
        best = (0.0, "", "")
        for i in range(n):
            for k in range(i + 1, n):
                if cols["cluster"][i] != cols["cluster"][k]:
                    j = jaccard(sh[i], sh[k])
                    if j > best[0]:
                        best = (j, cols["id"][i], cols["id"][k])
        lines.append(f"largest Jaccard between rows of different clusters: {best[0]:.3f} ({best[1]}, {best[2]})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lang", choices=["en", "zh"], required=True)
    ap.add_argument("--docs", type=int, default=500, help="number of rows (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="output Parquet file")
    ap.add_argument(
        "--source",
        choices=["sample", "shared"],
        default="sample",
        help="sample: data/sample in the repo (default); shared: the shared data folder",
    )
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_SHARED, help="the shared data folder (--source shared)")
    ap.add_argument("--dup-fraction", type=float, default=0.3, help="share of originals that get copies (0.3)")
    ap.add_argument("--max-copies", type=int, default=3, help="copies per duplicated original: 1 to this (3)")
    ap.add_argument(
        "--fill",
        choices=["remix", "repeat", "none"],
        default="remix",
        help="how to go on when the real passages run out (see the docstring); "
        "none: stop there, with fewer rows than --docs",
    )
    ap.add_argument(
        "--audit",
        action="store_true",
        help="also compute the largest Jaccard between different clusters (all pairs: small sets only)",
    )
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    cols = build(a.lang, a.docs, a.seed, a.dup_fraction, a.max_copies, a.fill, a.source, a.data_dir, log)
    write_parquet(cols, a.out)
    log(summary(cols, a.audit))
    log(f"wrote {a.out} ({a.out.stat().st_size:,} bytes) in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
