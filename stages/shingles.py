"""Shingles for near-duplicate detection: n-grams of words (English and other spaced scripts) or of
characters (Chinese), hashed to 64 bits, for a whole Arrow batch at once.

Why characters for Chinese by default: Chinese has no spaces, so whitespace shingles see a paragraph
as one "word" and every edit changes the only shingle. jieba words are the other choice
(`zh_shingle: word`); on the labelled Chinese set (docs/benchmarks.md) character 5-grams match or beat
jieba 3-grams in F1 and cost no segmentation, whose speed is ~1 MB/s per core.

Text is simplified first the way the peers do (lower case, punctuation and symbols dropped): a
near-duplicate with different quotes or spacing is still a near-duplicate. Hashes are stable across
batches, shards and machines (xxh3 of the word; a fixed mix of the code point for characters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.hashing import mix64

NON_WORD = r"[^\p{L}\p{N}]+"  # runs of anything but letters and digits (RE2, Unicode-aware)
_P = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of a batch: `hashes[i]` belongs to document `doc[i]`; `doc` is sorted ascending.
    A document with fewer tokens than n gets one shingle of all its tokens; one with none gets none."""

    hashes: np.ndarray  # uint64
    doc: np.ndarray  # int64
    n_docs: int

    def counts(self) -> np.ndarray:
        return np.bincount(self.doc, minlength=self.n_docs)


def is_chinese(langs: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where the language code is Chinese (zh, zh-Hant, ...)."""
    zh = pc.starts_with(pc.fill_null(langs, ""), "zh")
    return np.asarray(zh.to_numpy(zero_copy_only=False), dtype=bool)


def shingle(
    texts: pa.Array | pa.ChunkedArray, langs, *, word_ngram: int, zh_ngram: int, zh_shingle: str = "char"
) -> Shingles:
    """All shingle hashes of a batch, Chinese documents by `zh_shingle` ("char" or "word" for jieba)."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    n = len(texts)
    zh = is_chinese(langs) if langs is not None else np.zeros(n, dtype=bool)
    parts = []
    if (~zh).any():
        idx = np.flatnonzero(~zh)
        parts.append(_remap(_word_shingles(texts.take(pa.array(idx)), word_ngram), idx))
    if zh.any():
        idx = np.flatnonzero(zh)
        sub = texts.take(pa.array(idx))
        sh = _char_shingles(sub, zh_ngram) if zh_shingle == "char" else _jieba_shingles(sub, zh_ngram)
        parts.append(_remap(sh, idx))
    if not parts:
        return Shingles(np.zeros(0, np.uint64), np.zeros(0, np.int64), n)
    hashes = np.concatenate([p[0] for p in parts])
    doc = np.concatenate([p[1] for p in parts])
    order = np.argsort(doc, kind="stable")
    return Shingles(hashes[order], doc[order], n)


def _remap(sh: Shingles, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return sh.hashes, idx[sh.doc]


def _word_tokens(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(token hash, document index) for the words of each text, lower-cased, punctuation dropped."""
    lists = pc.split_pattern_regex(pc.utf8_lower(texts), NON_WORD)
    flat = pc.list_flatten(lists)
    doc = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    nonempty = pc.greater(pc.binary_length(flat), 0)
    flat = flat.filter(nonempty)
    doc = doc[np.asarray(nonempty.to_numpy(zero_copy_only=False), dtype=bool)]
    return _hash_strings(flat), doc


def _hash_strings(values: pa.Array) -> np.ndarray:
    """xxh3-64 of each string, hashing each distinct string once (word frequencies are Zipfian)."""
    if len(values) == 0:
        return np.zeros(0, np.uint64)
    encoded = pc.dictionary_encode(values)
    words = encoded.dictionary.to_pylist()
    table = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


def _word_shingles(texts: pa.Array, n: int) -> Shingles:
    tokens, doc = _word_tokens(texts)
    return ngrams(tokens, doc, n, len(texts))


def _char_shingles(texts: pa.Array, n: int) -> Shingles:
    """Character n-grams of the letters and digits of each text (spaces and punctuation dropped)."""
    stripped = pc.replace_substring_regex(pc.utf8_lower(texts), NON_WORD, "")
    lengths = pc.utf8_length(stripped).to_numpy(zero_copy_only=False).astype(np.int64)
    joined = "".join(s for s in stripped.to_pylist() if s)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    return ngrams(mix64(codes + np.uint64(1)), doc, n, len(texts))


def _jieba_shingles(texts: pa.Array, n: int) -> Shingles:
    """jieba word n-grams (dictionary only, no HMM), punctuation and spaces dropped."""
    import re

    import jieba

    keep = re.compile(r"\w")
    words, doc = [], []
    for i, text in enumerate(texts.to_pylist()):
        for w in jieba.lcut((text or "").lower(), HMM=False):
            if keep.search(w):
                words.append(w)
                doc.append(i)
    return ngrams(_hash_strings(pa.array(words, pa.string())), np.asarray(doc, np.int64), n, len(texts))


def ngrams(tokens: np.ndarray, doc: np.ndarray, n: int, n_docs: int) -> Shingles:
    """Hashes of every run of n consecutive tokens within a document (a polynomial over token hashes,
    then mixed); a document with 1..n-1 tokens gets one shingle of all of them."""
    m = len(tokens)
    if m == 0:
        return Shingles(np.zeros(0, np.uint64), np.zeros(0, np.int64), n_docs)
    h = tokens.copy()
    with np.errstate(over="ignore"):
        for k in range(1, n):
            if m <= k:
                h = h[:0]
                break
            h = h[:-1] * _P + tokens[k:]
    start = np.flatnonzero(doc[: len(h)] == doc[n - 1 :]) if len(h) else np.zeros(0, np.int64)
    hashes, hdoc = mix64(h[start]), doc[start]
    counts = np.bincount(doc, minlength=n_docs)
    short = np.flatnonzero((counts > 0) & (counts < n))
    if short.size:  # whole-document shingle for short documents
        first = np.searchsorted(doc, short)
        extra = np.empty(short.size, np.uint64)
        with np.errstate(over="ignore"):
            for j, (s, c) in enumerate(zip(first, counts[short])):
                acc = np.uint64(0)
                for t in tokens[s : s + c]:
                    acc = acc * _P + t
                extra[j] = acc
        hashes = np.concatenate([hashes, mix64(extra)])
        hdoc = np.concatenate([hdoc, short])
        order = np.argsort(hdoc, kind="stable")
        hashes, hdoc = hashes[order], hdoc[order]
    return Shingles(hashes, hdoc, n_docs)


def shingle_set(text: str, lang: str | None, *, word_ngram: int, zh_ngram: int, zh_shingle: str = "char") -> set[int]:
    """The shingle hashes of one document, as a set (for exact Jaccard on candidate pairs)."""
    sh = shingle(
        pa.array([text], pa.large_string()),
        pa.array([lang], pa.string()),
        word_ngram=word_ngram,
        zh_ngram=zh_ngram,
        zh_shingle=zh_shingle,
    )
    return set(sh.hashes.tolist())
