"""Heuristic quality filters: junk, Gopher quality and repetition, C4, FineWeb, and Chinese web spam.

Every document gets one pass: its text is split once into lines and words (whitespace tokens, or
jieba words for Chinese) for the whole batch, and every rule family reads those shared, columnar
arrays (`View`); the per-rule numbers are kept as `h_` columns and as stats signals, and a dropped
document's reason names the first rule it failed (`gopher-word-count`, `zh-spam-gambling`, ...).
Rules and their order live in `stages/rules/` (one module per family); thresholds live in two
language profiles, `en` (used for every language but Chinese; the published thresholds) and `zh`
(chosen on real Chinese data, evidence in docs/heuristics.md). A null threshold switches a rule off
for that profile; `disabled:` switches rules off everywhere.

Which profile: the `lang` column when it says `zh*` (or `cmn`); when `lang` is null or missing, a
document is Chinese when at least `zh_detect_min_ratio` of its non-space characters are Han and it
has few kana (Japanese mixes kanji with kana).

Bounded work: rules look at the first `max_analyzed_chars` characters of a document (50 MB of text
would otherwise hold a worker for minutes in jieba and in n-gram counting); the word count is
extrapolated to the full length. Nothing is edited: the stored text is never changed here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput
from stages.rules import Rule, c4, chinese, fineweb, gopher, junk

FAMILIES = (junk, chinese, gopher, c4, fineweb)
# The order rules are tried in; a dropped document is named after the first it fails.
RULES: list[Rule] = [*junk.RULES, *chinese.RULES, *gopher.RULES, *c4.RULES, *fineweb.RULES, *chinese.LATE_RULES]
RuleName = Literal[tuple(dict.fromkeys(rule.name for rule in RULES))]  # type: ignore[valid-type]

_Opt = float | None


class Thresholds(StrictModel):
    """One language profile. Defaults are the English (published) values; null switches a rule off."""

    junk_min_letters: int | None = Field(
        1,
        description="Drop (`junk-only-symbols`) text with no letter at all: only digits, punctuation, symbols or whitespace (or empty).",
    )
    junk_max_mojibake_frac: _Opt = Field(
        0.002,
        description="Drop (`junk-mojibake`) when mojibake hits beyond the first (U+FFFD, private-use characters, `Ã©`, `â€`, `锟斤拷`, ...) per non-space character exceed this (1 in 500; good reference text has none).",
    )

    gopher_min_words: int | None = Field(50, description="Gopher: fewer words than this is `gopher-word-count`.")
    gopher_max_words: int | None = Field(100_000, description="Gopher: more words than this is `gopher-word-count`.")
    gopher_min_mean_word_len: _Opt = Field(
        3.0, description="Gopher: mean word length (characters) below this is `gopher-mean-word-length`."
    )
    gopher_max_mean_word_len: _Opt = Field(
        10.0, description="Gopher: mean word length above this is `gopher-mean-word-length`."
    )
    gopher_max_symbol_word_ratio: _Opt = Field(
        0.1, description="Gopher: `#` or ellipses per word above this is `gopher-symbol-ratio`."
    )
    gopher_max_bullet_line_frac: _Opt = Field(
        0.9, description="Gopher: share of lines starting with a bullet above this is `gopher-bullet-lines`."
    )
    gopher_max_ellipsis_line_frac: _Opt = Field(
        0.3, description="Gopher: share of lines ending in an ellipsis above this is `gopher-ellipsis-lines`."
    )
    gopher_min_alpha_frac: _Opt = Field(
        0.8, description="Gopher: share of tokens holding a letter below this is `gopher-alpha-words`."
    )
    gopher_min_stopwords: int | None = Field(
        2,
        description="Gopher: fewer distinct stopwords (the, be, to, of, and, that, have, with) is `gopher-stopwords`.",
    )
    gopher_max_dup_line_frac: _Opt = Field(0.30, description="Gopher: share of lines repeating an earlier line.")
    gopher_max_dup_para_frac: _Opt = Field(
        0.30, description="Gopher: share of paragraphs repeating an earlier paragraph."
    )
    gopher_max_dup_line_char_frac: _Opt = Field(0.20, description="Gopher: share of characters in repeated lines.")
    gopher_max_dup_para_char_frac: _Opt = Field(
        0.20, description="Gopher: share of characters in repeated paragraphs."
    )
    gopher_max_top_2gram_frac: _Opt = Field(
        0.20, description="Gopher: share of characters in the most frequent word 2-gram."
    )
    gopher_max_top_3gram_frac: _Opt = Field(
        0.18, description="Gopher: share of characters in the most frequent word 3-gram."
    )
    gopher_max_top_4gram_frac: _Opt = Field(
        0.16, description="Gopher: share of characters in the most frequent word 4-gram."
    )
    gopher_max_dup_5gram_frac: _Opt = Field(0.15, description="Gopher: share of characters in repeated word 5-grams.")
    gopher_max_dup_6gram_frac: _Opt = Field(0.14, description="Gopher: share of characters in repeated word 6-grams.")
    gopher_max_dup_7gram_frac: _Opt = Field(0.13, description="Gopher: share of characters in repeated word 7-grams.")
    gopher_max_dup_8gram_frac: _Opt = Field(0.12, description="Gopher: share of characters in repeated word 8-grams.")
    gopher_max_dup_9gram_frac: _Opt = Field(0.11, description="Gopher: share of characters in repeated word 9-grams.")
    gopher_max_dup_10gram_frac: _Opt = Field(
        0.10, description="Gopher: share of characters in repeated word 10-grams."
    )

    c4_lorem_ipsum: bool = Field(
        True, description="C4: drop pages with 'lorem ipsum' in a line C4 keeps (`c4-lorem-ipsum`)."
    )
    c4_curly_bracket: bool = Field(
        True,
        description="C4: drop pages with '{' in a line C4 keeps (`c4-curly-bracket`); drops code, as C4 meant to.",
    )
    c4_min_sentences: int | None = Field(
        2,
        description="C4: fewer sentences in the lines C4 keeps is `c4-too-few-sentences` (C4 published 5, counted after deleting lines; see docs/heuristics.md).",
    )
    c4_min_words_per_line: int = Field(3, ge=0, description="C4: lines with fewer words count as removed.")
    c4_max_removed_frac: _Opt = Field(
        0.75,
        description="Drop (`c4-removed-lines`) when C4's line removal would delete more than this share of the characters (winnow's stand-in for C4's line edits; no good reference document is above it).",
    )

    line_stops_as_terminal: int | None = Field(
        None,
        description="C4 and FineWeb line checks: a line holding at least this many sentence stops (。！？) counts as ending in terminal punctuation even when its end is cut off; null: only the line end counts (as published).",
    )

    fineweb_min_line_punct_frac: _Opt = Field(
        0.12, description="FineWeb: share of lines ending in terminal punctuation below this is `fineweb-line-punct`."
    )
    fineweb_max_short_line_frac: _Opt = Field(
        0.67, description="FineWeb: share of short lines above this is `fineweb-short-lines`."
    )
    fineweb_short_line_chars: int = Field(
        30, gt=0, description="FineWeb: a line of at most this many characters is short."
    )
    fineweb_max_dup_line_char_frac: _Opt = Field(
        0.01,
        description="FineWeb: share of characters (newlines excluded) in repeated lines above this is `fineweb-dup-line-chars`.",
    )
    fineweb_max_newline_ratio: _Opt = Field(
        0.3, description="FineWeb: newlines per token above this is `fineweb-list-lines`."
    )

    zh_min_char_ratio: _Opt = Field(
        None, description="Chinese: Han characters per non-space character below this is `zh-char-ratio`."
    )
    zh_max_spam_hits: int | None = Field(
        None, description="Chinese: more gambling/lottery phrase hits than this is `zh-spam-gambling`."
    )
    zh_max_invoice_hits: int | None = Field(
        None, description="Chinese: more invoice-selling phrase hits than this is `zh-spam-invoice`."
    )
    zh_max_contact_hits: int | None = Field(
        None, description="Chinese: more phone/QQ/WeChat solicitations than this is `zh-spam-contact`."
    )
    zh_max_top_word_share: _Opt = Field(
        None,
        description="Chinese: share of words taken by the most frequent content word above this is `zh-keyword-stuffing`.",
    )


class EnThresholds(Thresholds):
    """English and every other non-Chinese language: the published Gopher, C4 and FineWeb values."""


class ZhThresholds(Thresholds):
    """Chinese, on jieba words. Values not set here are the published English ones. Each value set
    here was chosen on real data (docs/heuristics.md has the percentiles): good text is the CMRC 2018
    Wikipedia paragraphs (= data/sample/zh/wikipedia.jsonl.zst) and the CSLDCP abstracts; bad text is
    the ChineseWebText Common Crawl sample (gambling/SEO spam) and its `dirty` set."""

    gopher_min_mean_word_len: _Opt = Field(
        1.2,
        description="Mean jieba word length below this is `gopher-mean-word-length` (good text: 1st percentile 1.37).",
    )
    gopher_max_mean_word_len: _Opt = Field(
        3.5,
        description="Mean jieba word length above this (good text: 99th percentile 2.4; long unsegmented Latin runs, codes).",
    )
    gopher_min_alpha_frac: _Opt = Field(
        0.5,
        description="Share of tokens holding a letter (Han counts) below this; jieba splits every punctuation mark and number off, so good text sits at 0.58-0.93.",
    )
    gopher_min_stopwords: int | None = Field(
        2, description="Fewer distinct Chinese function words (data/lexicons/zh-function-words.txt) than this."
    )
    gopher_max_top_2gram_frac: _Opt = Field(
        0.30,
        description="Most frequent 2-gram share; jieba splits a repeated term into several words, so abstracts reach 0.25 (99th percentile).",
    )
    gopher_max_top_3gram_frac: _Opt = Field(
        0.30, description="Most frequent 3-gram share (good text 99th percentile: 0.30)."
    )
    gopher_max_top_4gram_frac: _Opt = Field(
        0.30,
        description="Most frequent 4-gram share (good text 99th percentile: 0.34 on short abstracts, 0.17 on Wikipedia).",
    )
    gopher_max_dup_5gram_frac: _Opt = Field(
        0.25, description="Repeated 5-gram share (good text 99th percentile: 0.20)."
    )
    gopher_max_dup_6gram_frac: _Opt = Field(0.22, description="Repeated 6-gram share.")
    gopher_max_dup_7gram_frac: _Opt = Field(0.19, description="Repeated 7-gram share.")
    gopher_max_dup_8gram_frac: _Opt = Field(0.16, description="Repeated 8-gram share.")
    gopher_max_dup_9gram_frac: _Opt = Field(0.13, description="Repeated 9-gram share.")
    gopher_max_dup_10gram_frac: _Opt = Field(
        0.10, description="Repeated 10-gram share (as Gopher: good text 99th percentile 0.08)."
    )
    c4_min_words_per_line: int = Field(3, ge=0, description="C4: lines with fewer jieba tokens count as removed.")
    c4_min_sentences: int | None = Field(
        1, description="Sentences (。！？, or ASCII . before a Han character) in the lines C4 keeps below this."
    )
    line_stops_as_terminal: int | None = Field(
        2,
        description="A line holding at least this many sentence stops counts as ending in terminal punctuation: one-line Chinese paragraphs whose last sentence was cut are prose, not menus.",
    )
    fineweb_short_line_chars: int = Field(
        10,
        gt=0,
        description="A Chinese line of at most this many characters is short (10 Chinese characters hold about as much as 30 Latin ones).",
    )
    zh_min_char_ratio: _Opt = Field(
        0.3,
        description="Han characters per non-space character below this is `zh-char-ratio` (good text: 1st percentile 0.44).",
    )
    zh_max_spam_hits: int | None = Field(
        1,
        description="`h_spam_hits` above this is `zh-spam-gambling`: one brand phrase (2) or two gambling words (1 each).",
    )
    zh_max_invoice_hits: int | None = Field(
        0,
        description="`h_invoice_hits` above this is `zh-spam-invoice`: one invoice-selling phrase (none in 3,520 "
        "ham e-mails, Weibo, Zhihu, Wikipedia or the labelled safety sets; docs/heuristics.md).",
    )
    zh_max_contact_hits: int | None = Field(
        3, description="More phone/QQ/WeChat solicitations than this is `zh-spam-contact`."
    )
    zh_max_top_word_share: _Opt = Field(
        0.2,
        description="Share of words taken by the most frequent content word above this is `zh-keyword-stuffing` (good text: 99th percentile 0.12).",
    )


class HeuristicsConfig(StrictModel):
    disabled: list[RuleName] = Field(
        default_factory=list, description="Rules switched off for every language, by name (e.g. `c4-curly-bracket`)."
    )
    en: EnThresholds = Field(
        default_factory=EnThresholds, description="Thresholds for English and every non-Chinese document."
    )
    zh: ZhThresholds = Field(default_factory=ZhThresholds, description="Thresholds for Chinese documents.")
    zh_detect_min_ratio: float = Field(
        0.3,
        ge=0,
        le=1,
        description="With no `lang`, a document is Chinese when this share of its non-space characters is Han (and it has little kana).",
    )
    max_analyzed_chars: int = Field(
        100_000,
        gt=0,
        description="Rules look at this many leading characters of a document (bounds time on huge documents); the word count is extrapolated.",
    )
    jieba_hmm: bool = Field(
        False,
        description="jieba's HMM for unknown words; off is faster (dictionary words only) and enough for counting.",
    )
    t2s: bool = Field(
        False,
        description="Convert Traditional to Simplified (OpenCC t2s) before the zh rules; the stored text is never changed. Needs the `opencc` package.",
    )


class View:
    """A batch split once for every rule: the analysed text, its non-empty lines and its words."""

    def __init__(
        self,
        text: pa.Array,
        lang: pa.Array | None,
        config: HeuristicsConfig,
        segmenter,
        t2s,
        spam_patterns: tuple[str, str, str],
    ):
        self.n = n = len(text)
        self.config = config
        self.spam_patterns = spam_patterns
        text = pc.fill_null(text.cast(pa.large_string()), "")
        full_chars = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
        text = pc.utf8_slice_codeunits(text, 0, config.max_analyzed_chars)
        chars = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
        self.scale = np.where(chars > 0, full_chars / np.maximum(chars, 1), 1.0)

        self.han = chinese.han_count(text)
        spaces = pc.count_substring_regex(text, r"\s").to_numpy(zero_copy_only=False).astype(np.int64)
        self.nonspace = chars - spaces
        self.is_zh = self._profile(lang, text)
        if t2s is not None and self.is_zh.any():
            idx = np.flatnonzero(self.is_zh)
            converted = pa.array(t2s.convert(text.take(pa.array(idx)).to_pylist()), pa.large_string())
            text = pc.replace_with_mask(text, pa.array(self.is_zh), converted)
        self.text = text
        self.chars = chars

        # Lines: non-empty, trimmed, with their document.
        split = pc.split_pattern(text, "\n")
        lines = pc.utf8_trim_whitespace(pc.list_flatten(split))
        line_doc = pc.list_parent_indices(split).to_numpy(zero_copy_only=False).astype(np.int64)
        line_len = pc.utf8_length(lines).to_numpy(zero_copy_only=False).astype(np.int64)
        nonempty = line_len > 0
        self.lines = lines.filter(pa.array(nonempty))
        self.line_doc = line_doc[nonempty]
        self.line_len = line_len[nonempty]
        self.n_lines = np.bincount(self.line_doc, minlength=n)
        stops = pc.count_substring_regex(self.lines, chinese.SENTENCE_END).to_numpy(zero_copy_only=False)
        min_stops = self.param("line_stops_as_terminal", missing=np.inf)[self.line_doc]
        self.stops_terminate = stops >= min_stops  # lines that count as terminated whatever their last character
        dup = ~gopher.first_occurrence(self.line_doc, self.lines)
        self.dup_lines = np.bincount(self.line_doc[dup], minlength=n)
        self.dup_line_chars = np.bincount(self.line_doc[dup], weights=self.line_len[dup], minlength=n)

        self._split_words(segmenter)

    def _profile(self, lang: pa.Array | None, text: pa.Array) -> np.ndarray:
        detected = (self.han >= self.config.zh_detect_min_ratio * self.nonspace) & (self.han > 0)
        detected &= chinese.kana_count(text) * 5 < self.han
        if lang is None:
            self.en_stopwords = np.ones(self.n, dtype=bool)
            return detected
        code = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(lang, pa.string())))
        known = pc.fill_null(pc.greater(pc.utf8_length(code), 0), False).to_numpy(zero_copy_only=False)
        tagged_zh = pc.fill_null(pc.or_(pc.starts_with(code, "zh"), pc.equal(code, "cmn")), False).to_numpy(
            zero_copy_only=False
        )
        tagged_en = pc.fill_null(pc.starts_with(code, "en"), False).to_numpy(zero_copy_only=False)
        self.en_stopwords = ~known | tagged_en  # the English stopword list means nothing for other languages
        return np.where(known, tagged_zh, detected)

    def _split_words(self, segmenter) -> None:
        """Whitespace tokens for non-Chinese lines, jieba words for Chinese ones, in document order."""
        line_zh = self.is_zh[self.line_doc]
        parts, owners = [], []
        other = np.flatnonzero(~line_zh)
        if other.size:
            split = pc.utf8_split_whitespace(self.lines.take(pa.array(other)))
            parts.append(pc.list_flatten(split))
            owners.append(other[pc.list_parent_indices(split).to_numpy(zero_copy_only=False)])
        zh_lines = np.flatnonzero(line_zh)
        if zh_lines.size:
            tokens, counts = segmenter.cut_lines(self.lines.take(pa.array(zh_lines)).to_pylist())
            parts.append(pa.array(tokens, pa.large_string()))
            owners.append(np.repeat(zh_lines, counts))
        if parts:
            tokens = pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
            tok_line = np.concatenate(owners).astype(np.int64)
        else:
            tokens, tok_line = pa.array([], pa.large_string()), np.zeros(0, dtype=np.int64)
        if len(parts) > 1:
            order = np.argsort(tok_line, kind="stable")
            tokens, tok_line = tokens.take(pa.array(order)), tok_line[order]
        self.tokens = tokens
        self.tok_line = tok_line
        self.tok_doc = self.line_doc[tok_line]
        self.raw_len = pc.utf8_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
        self.is_word = pc.match_substring_regex(tokens, r"[\pL\pN]").to_numpy(zero_copy_only=False)
        self.has_alpha = pc.match_substring_regex(tokens, r"\pL").to_numpy(zero_copy_only=False)
        norm = pc.utf8_lower(pc.utf8_trim(tokens, characters=_TRIM))
        self.norm_len = pc.utf8_length(norm).to_numpy(zero_copy_only=False).astype(np.int64)
        self.raw_id = _ids(tokens)
        self.norm_id = _ids(norm)
        tok_zh = self.is_zh[self.tok_doc]
        in_en = pc.is_in(norm, value_set=_STOP_EN).to_numpy(zero_copy_only=False)
        in_zh = pc.is_in(norm, value_set=_STOP_ZH).to_numpy(zero_copy_only=False)
        self.is_stop = np.where(tok_zh, in_zh, in_en & self.en_stopwords[self.tok_doc])
        self.stopwords_apply = self.is_zh | self.en_stopwords
        self.n_words = np.bincount(self.tok_doc[self.is_word], minlength=self.n)

    def param(self, field: str, missing: float = np.nan) -> np.ndarray:
        """A profile setting as one value per document (`missing` where the profile's value is null)."""
        zh, en = getattr(self.config.zh, field), getattr(self.config.en, field)
        return np.where(self.is_zh, missing if zh is None else zh, missing if en is None else en)


_TRIM = "".join(sorted(set(".,;:!?\"'()[]{}<>«»“”‘’„…—–-_*/\\|`~@#$%^&+=，。、；：！？（）《》【】「」『』·")))
_STOP_EN = pa.array(gopher.STOPWORDS_EN, pa.large_string())
_STOP_ZH = pa.array(chinese.read_lexicon("zh-function-words.txt"), pa.large_string())


def _ids(values: pa.Array) -> np.ndarray:
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    return pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False).astype(np.int64)


class Heuristics(MapStage):
    name = "heuristics"
    version = "heuristics_v2"
    Config = HeuristicsConfig
    stateful = True  # jieba's dictionary and the lexicons load once per worker

    def __init__(self, config: HeuristicsConfig):
        super().__init__(config)
        self.segmenter = chinese.Segmenter(hmm=config.jieba_hmm)
        self.t2s = chinese.TraditionalToSimplified() if config.t2s else None
        self.spam_patterns = chinese.spam_patterns()
        disabled = set(config.disabled)
        self.rules = [rule for rule in RULES if rule.name not in disabled]

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"h_*"}  # every signal column is `h_<signal>`, plus `h_profile`

    def __call__(self, table: pa.Table) -> StageOutput:
        text = table.column("text").combine_chunks() if table.num_rows else pa.array([], pa.large_string())
        lang = table.column("lang").combine_chunks() if "lang" in table.column_names else None
        view = View(text, lang, self.config, self.segmenter, self.t2s, self.spam_patterns)
        signals: dict[str, np.ndarray] = {}
        for family in FAMILIES:
            signals.update(family.signals(view))
        reasons = np.full(view.n, None, dtype=object)
        for rule in reversed(self.rules):  # the first failed rule wins
            failed = self._failed(rule, signals[rule.signal], view)
            reasons[failed] = rule.name
        keep = np.equal(reasons, None)
        for name in sorted(signals):
            values = signals[name]
            column = pa.array(values.astype(np.float32) if values.dtype.kind == "f" else values.astype(np.int32))
            table = _set_column(table, name, column)
        table = _set_column(table, "h_profile", pa.array(np.where(view.is_zh, "zh", "en").astype(object), pa.string()))
        return StageOutput(
            table, keep, pa.array(reasons, pa.string()), signals={k: v.astype(np.float64) for k, v in signals.items()}
        )

    def _failed(self, rule: Rule, values: np.ndarray, view: View) -> np.ndarray:
        thresholds = []
        for profile in (self.config.en, self.config.zh):
            value = getattr(profile, rule.field)
            if isinstance(value, bool):  # an on/off page rule: any hit fails it
                value = 0 if value else None
            thresholds.append(np.nan if value is None else float(value))
        threshold = np.where(view.is_zh, thresholds[1], thresholds[0])
        with np.errstate(invalid="ignore"):
            return values < threshold if rule.kind == "min" else values > threshold


def _set_column(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    idx = table.schema.get_field_index(name)
    return table.set_column(idx, name, column) if idx >= 0 else table.append_column(name, column)
