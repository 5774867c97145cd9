"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 and table A1), computed columnar over a whole batch.

Definitions, and where winnow differs from DataTrove's implementation:
- Words are whitespace tokens (the paper's definition) for English and other languages, jieba words
  for Chinese; a *word* holds at least one letter or digit (pure-symbol tokens such as `|` or `-`
  are not words, as in DataTrove's `non_symbol_words`). Word length is measured without the
  punctuation glued to either end (`end.` has length 3), like a tokenizer would split it.
- Alphabetic share: tokens holding a letter / all tokens (Chinese characters are letters).
- Stopwords: distinct words of the profile's list present (Gopher's eight English words: the, be,
  to, of, and, that, have, with; for Chinese the function words of `zh-function-words.txt`). For
  a document tagged with a language other than en/zh the English list would be wrong, so the rule
  is skipped for it.
- Duplicate lines and paragraphs: a line (paragraph) that already occurred earlier in the document
  counts as duplicate; the first occurrence does not. Char fractions are over the analysed text.
- Top n-gram (n = 2..4): characters of the most frequent word n-gram (words joined by one space)
  times its count, over the analysed text's length; ties go to the longest n-gram.
- Duplicate n-grams (n = 5..10): characters of the words covered by n-grams that already occurred
  earlier in the document, each word counted once. DataTrove skips ahead n words after a duplicate
  and so may miss some overlapping repeats; covering words is the paper's wording ("taking care not
  to count characters that occur in overlapping n-grams more than once").
n-grams are hashed (64-bit polynomial over per-batch word ids, with the document index mixed in) and
grouped by Arrow's hash kernel, so each n costs a few numpy passes over the batch's words.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.rules import Rule
from stages.rules import ratio as _div

STOPWORDS_EN = ("the", "be", "to", "of", "and", "that", "have", "with")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

RULES = [
    Rule("gopher-word-count", "h_words", "min", "gopher_min_words"),
    Rule("gopher-word-count", "h_words", "max", "gopher_max_words"),
    Rule("gopher-mean-word-length", "h_mean_word_len", "min", "gopher_min_mean_word_len"),
    Rule("gopher-mean-word-length", "h_mean_word_len", "max", "gopher_max_mean_word_len"),
    Rule("gopher-symbol-ratio", "h_symbol_ratio", "max", "gopher_max_symbol_word_ratio"),
    Rule("gopher-bullet-lines", "h_bullet_line_frac", "max", "gopher_max_bullet_line_frac"),
    Rule("gopher-ellipsis-lines", "h_ellipsis_line_frac", "max", "gopher_max_ellipsis_line_frac"),
    Rule("gopher-alpha-words", "h_alpha_frac", "min", "gopher_min_alpha_frac"),
    Rule("gopher-stopwords", "h_stopwords", "min", "gopher_min_stopwords"),
    Rule("gopher-dup-para-frac", "h_dup_para_frac", "max", "gopher_max_dup_para_frac"),
    Rule("gopher-dup-para-char-frac", "h_dup_para_char_frac", "max", "gopher_max_dup_para_char_frac"),
    Rule("gopher-dup-line-frac", "h_dup_line_frac", "max", "gopher_max_dup_line_frac"),
    Rule("gopher-dup-line-char-frac", "h_dup_line_char_frac", "max", "gopher_max_dup_line_char_frac"),
    *[Rule(f"gopher-top-{n}gram", f"h_top_{n}gram_frac", "max", f"gopher_max_top_{n}gram_frac") for n in TOP_NGRAMS],
    *[Rule(f"gopher-dup-{n}gram", f"h_dup_{n}gram_frac", "max", f"gopher_max_dup_{n}gram_frac") for n in DUP_NGRAMS],
]

_BULLET = r"^[•●○■□▪▫◦‣·*\-]"
_ELLIPSIS_END = r"(\.\.\.|…)$"
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multipliers for the polynomial n-gram hash
_Q = np.uint64(0xC2B2AE3D27D4EB4F)


def signals(view) -> dict[str, np.ndarray]:
    n = view.n
    out: dict[str, np.ndarray] = {}
    w = view.is_word
    words = view.n_words
    out["h_words"] = np.rint(words * view.scale).astype(np.int64)  # extrapolated past the analysed prefix
    out["h_mean_word_len"] = _div(np.bincount(view.tok_doc[w], weights=view.norm_len[w], minlength=n), words, np.nan)
    hashes = pc.count_substring(view.text, "#").to_numpy(zero_copy_only=False)
    ellipses = pc.count_substring(view.text, "...").to_numpy(zero_copy_only=False) + pc.count_substring(
        view.text, "…"
    ).to_numpy(zero_copy_only=False)
    out["h_symbol_ratio"] = _div(np.maximum(hashes, ellipses), words, 0.0)
    bullet = pc.match_substring_regex(view.lines, _BULLET).to_numpy(zero_copy_only=False)
    ellipsis = pc.match_substring_regex(view.lines, _ELLIPSIS_END).to_numpy(zero_copy_only=False)
    out["h_bullet_line_frac"] = _div(np.bincount(view.line_doc[bullet], minlength=n), view.n_lines, 0.0)
    # Gopher's rule targets lists of truncated snippets; a one-line document that trails off in "..."
    # is a cut teaser of ordinary prose (1 of the 20 CCNet head documents), so it needs >= 2 lines.
    ellipsis_frac = _div(np.bincount(view.line_doc[ellipsis], minlength=n), view.n_lines, 0.0)
    out["h_ellipsis_line_frac"] = np.where(view.n_lines >= 2, ellipsis_frac, 0.0)
    tokens = np.bincount(view.tok_doc, minlength=n)
    out["h_alpha_frac"] = _div(np.bincount(view.tok_doc[view.has_alpha], minlength=n), tokens, 0.0)
    stopwords = _distinct_per_doc(view.tok_doc[view.is_stop], view.norm_id[view.is_stop], n).astype(np.float64)
    out["h_stopwords"] = np.where(view.stopwords_apply, stopwords, np.nan)  # NaN: no list for this language

    out["h_dup_line_frac"] = _div(view.dup_lines, view.n_lines, 0.0)
    out["h_dup_line_char_frac"] = _div(view.dup_line_chars, view.chars, 0.0)
    paras, para_doc = _paragraphs(view.text)
    dup_para = ~first_occurrence(para_doc, paras)
    para_len = pc.utf8_length(paras).to_numpy(zero_copy_only=False)
    n_paras = np.bincount(para_doc, minlength=n)
    out["h_dup_para_frac"] = _div(np.bincount(para_doc[dup_para], minlength=n), n_paras, 0.0)
    out["h_dup_para_char_frac"] = _div(
        np.bincount(para_doc[dup_para], weights=para_len[dup_para], minlength=n), view.chars, 0.0
    )
    out.update(_ngram_signals(view))
    return out


def _ngram_signals(view) -> dict[str, np.ndarray]:
    n_docs = view.n
    w = view.is_word
    doc = view.tok_doc[w]
    length = view.raw_len[w].astype(np.int64)
    ids = view.raw_id[w].astype(np.uint64)
    out = {f"h_top_{k}gram_frac": np.zeros(n_docs) for k in TOP_NGRAMS}
    out.update({f"h_dup_{k}gram_frac": np.zeros(n_docs) for k in DUP_NGRAMS})
    m = len(ids)
    if m == 0:
        return out
    cum = np.concatenate([[0], np.cumsum(length)])
    doc_mix = doc.astype(np.uint64) * _Q
    with np.errstate(over="ignore"):
        h = (ids + np.uint64(1)) * _P  # 1-gram hashes; grown one word at a time below
        for k in range(2, max(DUP_NGRAMS) + 1):
            if m < k:
                break
            h = h[:-1] * _P + (ids[k - 1 :] + np.uint64(1)) * _Q
            start = np.flatnonzero(doc[: m - k + 1] == doc[k - 1 :])  # n-grams inside one document
            if start.size == 0:
                continue
            keys = h[start] ^ doc_mix[start]
            first, codes = _first_and_codes(keys)
            wdoc = doc[start]
            if k in TOP_NGRAMS:
                counts = np.bincount(codes)[codes]
                chars = cum[start + k] - cum[start] + (k - 1)  # words joined by single spaces
                score = counts * (1 << 32) + chars  # most frequent first, then longest
                best = np.zeros(n_docs, dtype=np.int64)
                np.maximum.at(best, wdoc, score)
                top = (best >> 32) * (best & 0xFFFFFFFF)
                out[f"h_top_{k}gram_frac"] = _div(top, view.chars, 0.0)
            if k in DUP_NGRAMS:
                dup_start = start[~first]
                edges = (
                    np.bincount(dup_start, minlength=m + 1)[: m + 1]
                    - np.bincount(dup_start + k, minlength=m + 1)[: m + 1]
                )
                covered = np.cumsum(edges)[:m] > 0
                dup_chars = np.bincount(doc[covered], weights=length[covered], minlength=n_docs)
                out[f"h_dup_{k}gram_frac"] = _div(dup_chars, view.chars, 0.0)
    return out


def _paragraphs(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Non-empty paragraphs (blocks separated by a blank line), trimmed, with their document index."""
    split = pc.split_pattern_regex(text, r"\n\s*\n")
    paras = pc.utf8_trim_whitespace(pc.list_flatten(split))
    para_doc = pc.list_parent_indices(split).to_numpy(zero_copy_only=False)
    keep = pc.greater(pc.utf8_length(paras), 0)
    return paras.filter(keep), para_doc[keep.to_numpy(zero_copy_only=False)]


def first_occurrence(doc: np.ndarray, values: pa.Array) -> np.ndarray:
    """True where a value appears for the first time within its document (values in document order)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    ids = pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False).astype(np.uint64)
    return _first_and_codes((doc.astype(np.uint64) << np.uint64(32)) | ids)[0]


def _first_and_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encodes keys (codes numbered in order of first appearance) and flags first appearances:
    a key is new exactly when its code exceeds every code before it."""
    codes = pc.dictionary_encode(pa.array(keys)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.ones(len(codes), dtype=bool)
    if len(codes) > 1:
        first[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return first, codes


def _distinct_per_doc(doc: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    if len(doc) == 0:
        return np.zeros(n, dtype=np.int64)
    keys = np.unique((doc.astype(np.uint64) << np.uint64(32)) | ids.astype(np.uint64))
    return np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=n)
