"""MinHash signatures and LSH band keys, vectorised over a batch of shingles.

The permutations are datasketch's (2.0, default `affine32` scheme) exactly: the 32-bit shingle hash
is avalanched by MurmurHash3's finaliser, then `a*h + b mod 2^32` with odd `a`, drawn from the same
seeded generator. So a winnow signature equals `datasketch.MinHash(num_perm, seed, hashfunc=...)`
fed the same shingle hashes; the tests hold winnow to that. Everything is uint32 arithmetic that
wraps (no modulo), one (shingles x permutations) matrix per chunk, reduced per document with
`minimum.reduceat`: no Python loop per document or per permutation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from stages.shingles import Shingles, mix64

MAX_HASH = np.uint32(0xFFFFFFFF)
_CHUNK_CELLS = 8_000_000  # shingles x permutations per chunk: ~32 MB of uint32


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) as datasketch.MinHash draws them for the affine32 scheme."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch applies it before the permutations)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(sh: Shingles, num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(signature matrix n_docs x num_perm of uint32, has_shingles mask). Documents without
    shingles keep the all-max signature and must not be bucketed."""
    a, b = permutations(num_perm, seed)
    sig = np.full((sh.n_docs, num_perm), MAX_HASH, dtype=np.uint32)
    with np.errstate(over="ignore"):
        hv = fmix32((sh.hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        step = max(1, _CHUNK_CELLS // num_perm)
        for lo in range(0, len(hv), step):
            h = hv[lo : lo + step]
            d = sh.doc[lo : lo + step]
            phv = h[:, None] * a[None, :] + b[None, :]
            starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
            part = np.minimum.reduceat(phv, starts, axis=0)
            docs = d[starts]
            sig[docs] = np.minimum(sig[docs], part)
    return sig, sh.counts() > 0


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative areas: datasketch's own choice."""
    from datasketch.lsh import _optimal_param

    return tuple(int(x) for x in _optimal_param(threshold, num_perm, fp_weight, fn_weight))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """n_docs x bands keys: a 64-bit hash of each band's rows, with the band number mixed in so that
    equal values in different bands never share a bucket."""
    n = sig.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n, np.uint64(band + 1) * np.uint64(0xD6E8FEB86659FD93), dtype=np.uint64)
            for r in range(band * rows, (band + 1) * rows):
                h = mix64(h ^ sig[:, r].astype(np.uint64))
            keys[:, band] = h
    return keys


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of equal signature positions, row by row."""
    return np.mean(sig_a == sig_b, axis=-1)
