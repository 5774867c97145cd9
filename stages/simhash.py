"""64-bit SimHash fingerprints with token weights, and permuted-block tables for Hamming search.

A fingerprint bit is the sign of the weighted sum over a document's features (shingles), +w where
the feature's hash has the bit set, -w where not. The weight is `1 + log(count in the document)`
(`weights: tf`, the default: higher recall on the labelled sets, docs/benchmarks.md) or 1 per
distinct feature (`weights: none`). Candidates within Hamming
distance k are found as Manku et al. (2007) do: cut the 64 bits into `blocks` pieces; two
fingerprints that differ in at most k bits agree on at least `blocks - k` whole pieces, so one table
per choice of `blocks - k` pieces, keyed on those bits, puts every such pair in a shared bucket.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

from stages.shingles import Shingles, mix64

_CHUNK_ROWS = 200_000  # features per chunk of the (features x 64) bit matrix


def fingerprints(sh: Shingles, weights: str = "tf") -> tuple[np.ndarray, np.ndarray]:
    """(uint64 fingerprint per document, has_features mask); `weights` "tf" weighs a feature by
    1 + log(count in the document), "none" counts each distinct feature once."""
    fp = np.zeros(sh.n_docs, dtype=np.uint64)
    if len(sh.hashes) == 0:
        return fp, np.zeros(sh.n_docs, dtype=bool)
    # distinct (doc, feature) with counts; docs stay sorted
    order = np.lexsort((sh.hashes, sh.doc))
    doc, h = sh.doc[order], sh.hashes[order]
    new = np.r_[True, (doc[1:] != doc[:-1]) | (h[1:] != h[:-1])]
    starts = np.flatnonzero(new)
    counts = np.diff(np.r_[starts, len(h)])
    doc, h = doc[starts], h[starts]
    weight = (1.0 + np.log(counts)).astype(np.float32) if weights == "tf" else np.ones(len(counts), np.float32)
    acc = np.zeros((sh.n_docs, 64), dtype=np.float32)
    for lo in range(0, len(h), _CHUNK_ROWS):
        hh, dd, ww = h[lo : lo + _CHUNK_ROWS], doc[lo : lo + _CHUNK_ROWS], weight[lo : lo + _CHUNK_ROWS]
        bits = np.unpackbits(hh.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        signed = (bits.astype(np.float32) * 2.0 - 1.0) * ww[:, None]
        seg = np.flatnonzero(np.r_[True, dd[1:] != dd[:-1]])
        np.add.at(acc, dd[seg], np.add.reduceat(signed, seg, axis=0))
    positive = (acc > 0).astype(np.uint8)
    fp = np.packbits(positive, axis=1, bitorder="little").view("<u8").reshape(-1).astype(np.uint64)
    return fp, np.bincount(sh.doc, minlength=sh.n_docs) > 0


@lru_cache(maxsize=16)
def table_masks(blocks: int, max_distance: int) -> tuple[int, ...]:
    """One 64-bit mask per table: the union of `blocks - max_distance` of the `blocks` pieces."""
    if not 0 <= max_distance < blocks <= 64:
        raise ValueError(f"simhash needs 0 <= max_distance < blocks <= 64 (got {max_distance}, {blocks})")
    edges = np.linspace(0, 64, blocks + 1).round().astype(int)
    pieces = [((1 << int(hi)) - 1) ^ ((1 << int(lo)) - 1) for lo, hi in zip(edges[:-1], edges[1:])]
    return tuple(sum(pieces[i] for i in chosen) for chosen in combinations(range(blocks), blocks - max_distance))


def table_keys(fp: np.ndarray, blocks: int, max_distance: int) -> np.ndarray:
    """n_docs x tables bucket keys: the masked fingerprint mixed with the table number."""
    masks = table_masks(blocks, max_distance)
    keys = np.empty((len(fp), len(masks)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for t, mask in enumerate(masks):
            keys[:, t] = mix64((fp & np.uint64(mask)) ^ (np.uint64(t + 1) * np.uint64(0xA24BAED4963EE407)))
    return keys


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between two uint64 arrays, element-wise."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)
