"""MinHash signatures on torch (CPU or CUDA), bit-identical to `stages.minhash.signatures`.

torch has no full uint32 arithmetic, so the 32-bit values live in int64 tensors: a product of two
values below 2^32 may pass 2^63, and torch's int64 multiply wraps (two's complement, on CPU and
CUDA alike), which leaves the low 32 bits exact; masking with 0xFFFFFFFF after each multiply and add
gives the uint32 result numpy computes. The tests compare every permutation value on real text.

The shingle hashes come from `stages.shingles` (numpy); the (shingles x permutations) work, which
is nearly all the cost, runs on the device in chunks, reduced per document with `index_reduce_`.
"""

from __future__ import annotations

import warnings

import numpy as np

from stages.minhash import permutations
from stages.shingles import Shingles

MASK32 = 0xFFFFFFFF
_CHUNK_CELLS = 4_000_000  # shingles x permutations per chunk: ~32 MB of int64 per temporary


def pick_device(device: str = "auto") -> str:
    """`auto`: CUDA when a GPU is visible (Ray sets CUDA_VISIBLE_DEVICES for a GPU task), else CPU."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"


def fmix32(h):
    """MurmurHash3's 32-bit finaliser on an int64 tensor of uint32 values."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & MASK32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def signatures(sh: Shingles, num_perm: int, seed: int = 1, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Same contract as `stages.minhash.signatures`: (n_docs x num_perm uint32, has_shingles mask)."""
    import torch

    dev = pick_device(device)
    a_np, b_np = permutations(num_perm, seed)
    a = torch.from_numpy(a_np.astype(np.int64)).to(dev)
    b = torch.from_numpy(b_np.astype(np.int64)).to(dev)
    sig = torch.full((sh.n_docs, num_perm), MASK32, dtype=torch.int64, device=dev)
    low = (sh.hashes & np.uint64(MASK32)).astype(np.int64)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="index_reduce", category=UserWarning)
        hv = fmix32(torch.from_numpy(low).to(dev))
        doc = torch.from_numpy(sh.doc).to(dev)
        step = max(1, _CHUNK_CELLS // num_perm)
        for lo in range(0, hv.shape[0], step):
            phv = torch.mul(hv[lo : lo + step, None], a[None, :])
            phv.add_(b).bitwise_and_(MASK32)
            sig.index_reduce_(0, doc[lo : lo + step], phv, "amin")
    out = sig.cpu().numpy().astype(np.uint32)
    return out, sh.counts() > 0
