"""The n-grams decontamination compares: word n-grams for English and other spaced scripts, character
n-grams for Chinese, on the same normalised form as near-dup shingles (lower case, punctuation and spaces
dropped), hashed to 64 bits.

Two views of the same hashes: `batch_ngrams` for a whole Arrow batch at once (the hot path, through
`stages.shingles`), and `located_ngrams` for one document with the character range each n-gram covers
(only for documents that hit, to cut the matching spans out): the batch hashes, with token offsets found by
the same regex. A test checks on real text that each range, hashed alone, gives its n-gram's hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.shingles import Shingles, shingle

WORD_CHAR = r"[\p{L}\p{N}]"  # a token's characters, as the shingles' NON_WORD split sees them
NON_WORD_CHAR = r"[^\p{L}\p{N}]"
HAN = r"\p{Han}"
ZH_MIN_HAN_SHARE = 0.3  # no language given: Chinese when >= 30% of its non-space characters are Han


def chinese_mask(texts: pa.Array, langs: pa.Array | None) -> np.ndarray:
    """True for documents read as Chinese: a `zh*` language, or no language and mostly Han characters."""
    n = len(texts)
    lang = pc.fill_null(langs.cast(pa.string()), "") if langs is not None else pa.array([""] * n, pa.string())
    zh = np.asarray(pc.starts_with(lang, "zh").to_numpy(zero_copy_only=False), dtype=bool)
    unknown = np.flatnonzero(np.asarray(pc.equal(lang, "").to_numpy(zero_copy_only=False), dtype=bool))
    if len(unknown):  # the script decides only where no language is given
        sub = texts.take(pa.array(unknown))
        han = pc.count_substring_regex(sub, HAN).to_numpy(zero_copy_only=False).astype(np.int64)
        chars = pc.utf8_length(pc.replace_substring_regex(sub, r"\s+", ""))
        chars = chars.to_numpy(zero_copy_only=False).astype(np.int64)
        zh[unknown] = (han > 0) & (han >= ZH_MIN_HAN_SHARE * np.maximum(chars, 1))
    return zh


def batch_ngrams(texts: pa.Array | pa.ChunkedArray, zh: np.ndarray, *, ngram: int, zh_ngram: int) -> Shingles:
    """Every n-gram hash of a batch; `zh` says which documents take character n-grams. A document with
    fewer tokens than n gets one n-gram of all of them (it matches only an item that is the same text)."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    langs = pa.array(np.where(zh, "zh", "en"), pa.string())
    return shingle(texts, langs, word_ngram=ngram, zh_ngram=zh_ngram, zh_shingle="char")


@dataclass(frozen=True)
class Located:
    """One document's n-grams with where they are: n-gram j covers text[start[j]:end[j]]."""

    hashes: np.ndarray  # uint64
    start: np.ndarray  # int64, character offsets into the original text
    end: np.ndarray


def located_ngrams(text: str, chinese: bool, *, ngram: int, zh_ngram: int) -> Located:
    """The n-grams of one document (`batch_ngrams`' own hashes, in token order) with their character ranges.
    The tokens are found by the same Arrow regex the hashes come from, so the two cannot disagree."""
    array = pa.array([text], pa.large_string())
    grams = batch_ngrams(array, np.array([chinese]), ngram=ngram, zh_ngram=zh_ngram)
    starts, ends = token_offsets(array, chinese)
    n = zh_ngram if chinese else ngram
    if len(starts) == 0:
        return Located(grams.hashes, starts, ends)
    if len(starts) < n:  # the one whole-document n-gram
        return Located(grams.hashes, starts[:1], ends[-1:])
    if len(grams.hashes) != len(starts) - n + 1:
        raise AssertionError(f"{len(grams.hashes)} n-grams for {len(starts)} tokens: tokeniser and hashes disagree")
    return Located(grams.hashes, starts[: len(starts) - n + 1], ends[n - 1 :])


def token_offsets(array: pa.Array, chinese: bool) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) code-point offsets of the tokens of a one-document array: runs of letters and digits
    (words), or each letter and digit (Chinese). Every code point becomes '+' (letter or digit) or '-'
    (anything else) in the lower-cased text the hashes are taken from; lower-casing maps code points one to
    one, so offsets in it are offsets in the original."""
    marks = pc.replace_substring_regex(pc.utf8_lower(array), NON_WORD_CHAR, "-")
    marks = pc.replace_substring_regex(marks, WORD_CHAR, "+")
    is_word = np.frombuffer(marks[0].as_py().encode("ascii"), dtype=np.uint8) == ord("+")
    if chinese:
        at = np.flatnonzero(is_word).astype(np.int64)
        return at, at + 1
    edges = np.diff(np.concatenate([[0], is_word.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1).astype(np.int64), np.flatnonzero(edges == -1).astype(np.int64)
