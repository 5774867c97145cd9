"""`line_clean`: removes boilerplate lines (and repost-chain boilerplate inside Weibo lines) from
each document, so that the whole-document rules of `heuristics` judge the text without them.

Whole-document filters throw away a Weibo thread for its "转发微博" lines and a good article for its
menu and footer; the labs clean below the document (C4 deletes lines, Gopher and FineWeb count
repeated ones). Each rule in `rules.RULES` is named and can be switched on or off; a removed line
goes, with its newline, to `line_clean/removed/` with the reason `line_clean:<rule>`. Blank lines left
doubled (or at the start or end) by a removal go too (`line_clean:blank_lines`), so the text keeps
normalize's shape. A document left with fewer than `min_chars` characters by the removal is dropped
as `line-clean-too-short` (it keeps its original text in the rejects); documents that were already
short are min_length's business and pass unchanged.

Columns: `line_clean_lines` (lines removed) and `line_clean_removed_frac` (share of the document's
characters removed), both also stats signals.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput, removed_spans
from stages.line_clean.rules import REPOST_CHAIN, RULES, Page, Settings, repost_chain_spans

RuleName = Literal[(*tuple(rule.name for rule in RULES), REPOST_CHAIN)]  # type: ignore[valid-type]
BLANK = "blank_lines"
TOO_SHORT = "line-clean-too-short"


class LineCleanConfig(StrictModel):
    rules: dict[RuleName, bool] = Field(
        default_factory=dict,
        description="Rules switched on or off by name; the others keep their default (all on but "
        "`lines_without_terminal_punctuation`, which would strip Chinese social text, lists and "
        "headings).",
    )
    only: list[RuleName] | None = Field(
        None,
        description="Exactly these rules and no other (`rules` is then ignored): a second `line_clean` "
        "later in the stage list runs one edit, e.g. C4's `lines_without_terminal_punctuation` after "
        "`heuristics` has judged the whole text.",
    )
    min_chars: int = Field(
        50,
        ge=0,
        description="A document left with fewer characters (trimmed) by the removal "
        "is dropped as `line-clean-too-short`.",
    )
    max_pattern_chars: int = Field(
        300, gt=0, description="Pattern rules judge only lines up to this long; longer lines are paragraphs."
    )
    nav_max_chars: int = Field(
        40, gt=0, description="A navigation-like line (menu or share words, no sentence end) is at most this long."
    )
    nav_min_run: int = Field(
        3,
        ge=1,
        description="Navigation-like lines go when at least this many stand together "
        "(blank lines aside), or at the page's edges.",
    )
    nav_anywhere: bool = Field(False, description="Remove navigation-like lines anywhere, a lone one too.")
    repeated_min_chars: int = Field(
        10, ge=1, description="`repeated_lines` removes later copies of lines at least this long."
    )
    repeated_min_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="`repeated_lines` acts on a document only when "
        "its later copies hold at least this share of its characters.",
    )
    thread_min_chars: int = Field(
        2,
        ge=1,
        description="In a social thread (see `thread_min_markers`), `repeated_lines` removes later copies "
        "of lines at least this long, at any share: reposts and echoed comments.",
    )
    thread_min_markers: int = Field(
        3,
        ge=0,
        description="A document with at least this many repost-marker, sticker-only, mention-only or "
        "`//@` repost-chain lines is a social thread (0: every document is).",
    )
    max_analyzed_chars: int = Field(
        1_000_000,
        gt=0,
        description="Rules read the lines in the first this many "
        "characters; the rest passes unchanged (a 50 MB dump would hold a worker "
        "for minutes; min_length drops such documents by default anyway).",
    )
    c4_min_words: int = Field(
        0,
        ge=0,
        description="With `lines_without_terminal_punctuation` on: also remove "
        "non-Chinese lines with fewer words (C4: 3).",
    )
    c4_keep_inner_stop: bool = Field(
        False,
        description="With `lines_without_terminal_punctuation` on: a Chinese line with a sentence end "
        "(。！？) inside stays even though its last sentence has no stop (see `c4_inner_stop_min_chars`).",
    )
    c4_inner_stop_min_chars: int = Field(
        40,
        ge=0,
        description="With `c4_keep_inner_stop`: only lines at least this long stay (shorter ones are mostly "
        "one-line reactions under a post).",
    )

    def _on(self, name: str, default: bool) -> bool:
        return name in self.only if self.only is not None else self.rules.get(name, default)

    def enabled(self) -> list:
        return [rule for rule in RULES if self._on(rule.name, rule.default)]

    def chain(self) -> bool:
        """Whether repost-chain boilerplate is cut inside lines."""
        return self._on(REPOST_CHAIN, True)

    def settings(self) -> Settings:
        return Settings(
            max_pattern_chars=self.max_pattern_chars,
            nav_max_chars=self.nav_max_chars,
            nav_min_run=self.nav_min_run,
            nav_anywhere=self.nav_anywhere,
            repeated_min_chars=self.repeated_min_chars,
            repeated_min_share=self.repeated_min_share,
            thread_min_chars=self.thread_min_chars,
            thread_min_markers=self.thread_min_markers,
            c4_min_words=self.c4_min_words,
            c4_keep_inner_stop=self.c4_keep_inner_stop,
            c4_inner_stop_min_chars=self.c4_inner_stop_min_chars,
        )


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NON_SPACE = re.compile(r"\S")


def is_chinese(text: str, lang: str | None) -> bool:
    """The `lang` column when it is set, else at least 30% Han among the first 2,000 non-space characters."""
    if lang:
        return lang.lower().startswith(("zh", "cmn", "yue"))
    head = text[:2000]
    letters = len(_NON_SPACE.findall(head))
    return letters > 0 and len(_HAN.findall(head)) >= 0.3 * letters


def clean(
    text: str, is_zh: bool, rules: list, settings: Settings, chain: bool = True, max_chars: int | None = None
) -> tuple[str, list[tuple[str, str]], int]:
    """The cleaned text, the removed spans as (text, rule name), and how many lines were removed.
    Invariant: len(text) == len(cleaned) + sum(len(span) for span, _ in removed). Beyond `max_chars`
    (cut after the last newline before it) the text is kept as it is."""
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind("\n", 0, max_chars) + 1 or max_chars
        head, removed, count = clean(text[:cut], is_zh, rules, settings, chain)
        return head + text[cut:], removed, count
    lines = text.split("\n")
    page = Page(lines, is_zh, settings)
    reason: dict[int, str] = {}
    for rule in rules:
        for i in rule.find(page):
            reason.setdefault(i, rule.name)
    last = len(lines) - 1
    pieces: list[str] = []  # kept lines, each with its newline (but the last line of the text)
    blank: list[bool] = []
    removed: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        newline = "\n" if i < last else ""
        if i not in reason and chain and "//" in line:
            spans = repost_chain_spans(line)
            if spans:
                gaps = zip([b for _, b in spans], [a for a, _ in spans[1:]] + [len(line)], strict=True)
                kept = line[: spans[0][0]] + "".join(line[b:nxt] for b, nxt in gaps)
                if kept.strip():
                    removed.extend((line[a:b], REPOST_CHAIN) for a, b in spans)
                    line = kept
                else:
                    reason[i] = REPOST_CHAIN
        if i in reason:
            removed.append((line + newline, reason[i]))
            continue
        pieces.append(line + newline)
        blank.append(not line.strip())
    if not removed:
        return text, [], 0
    out: list[str] = []
    for k, piece in enumerate(pieces):
        if not piece:  # the empty last line of a text ending in a newline
            continue
        # a blank line at the start, after another blank line or at the end was left by a removal
        if blank[k] and (not out or not out[-1].strip() or k == len(pieces) - 1):
            removed.append((piece, BLANK))
        else:
            out.append(piece)
    cleaned = "".join(out)
    if cleaned.endswith("\n") and not text.endswith("\n"):  # the old last line went; its newline goes too
        trimmed = cleaned.rstrip("\n")
        removed.append((cleaned[len(trimmed) :], BLANK))
        cleaned = trimmed
    return cleaned, removed, len(reason)


class LineClean(MapStage):
    name = "line_clean"
    version = "line_clean_v1"
    Config = LineCleanConfig
    rewrites = True

    def __init__(self, config: LineCleanConfig):
        super().__init__(config)
        self.rules = config.enabled()
        self.chain = config.chain()
        self.settings = config.settings()

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"line_clean_lines", "line_clean_removed_frac"}

    def __call__(self, table: pa.Table) -> StageOutput:
        texts = table.column("text").to_pylist()
        langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * len(texts)
        n = len(texts)
        new_texts: list[str | None] = []
        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        lines_removed = np.zeros(n, dtype=np.int64)
        frac = np.zeros(n, dtype=np.float64)
        rows, spans, span_reasons = [], [], []
        for row, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if not text:
                new_texts.append(text)
                continue
            cleaned, removed, count = clean(
                text, is_chinese(text, lang), self.rules, self.settings, self.chain, self.config.max_analyzed_chars
            )
            removed_chars = len(text) - len(cleaned)
            lines_removed[row], frac[row] = count, removed_chars / len(text)
            if removed and len(cleaned.strip()) < self.config.min_chars:
                keep[row], reasons[row] = False, TOO_SHORT
                new_texts.append(text)  # rejects keep the document as it came
                continue
            new_texts.append(cleaned)
            for span, rule in removed:
                rows.append(row)
                spans.append(span)
                span_reasons.append(f"line_clean:{rule}")
        text_type = table.schema.field("text").type
        table = table.set_column(table.schema.get_field_index("text"), "text", pa.array(new_texts, text_type))
        table = _set_column(table, "line_clean_lines", pa.array(lines_removed, pa.int32()))
        table = _set_column(table, "line_clean_removed_frac", pa.array(frac, pa.float32()))
        return StageOutput(
            table,
            keep,
            pa.array(reasons, pa.string()),
            signals={"line_clean_lines": lines_removed.astype(np.float64), "line_clean_removed_frac": frac},
            removed=removed_spans(rows, spans, span_reasons),
        )


def _set_column(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    idx = table.schema.get_field_index(name)
    return table.set_column(idx, name, column) if idx >= 0 else table.append_column(name, column)
