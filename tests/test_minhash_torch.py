"""The torch MinHash backend against the numpy one: every permutation value of every signature on
real English and Chinese text, and the same clusters through the pipeline on the labelled sets."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from stages import minhash, minhash_torch
from stages.shingles import shingle

DEDUP_DATA = REPO / "tests" / "data" / "dedup"


def labelled(lang: str):
    return pq.read_table(DEDUP_DATA / f"{lang}.parquet")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (250, 7)])
def test_torch_signatures_equal_numpy_on_real_text(lang, num_perm, seed):
    t = labelled(lang)
    sh = shingle(t.column("text"), t.column("lang"), word_ngram=5, zh_ngram=5)
    want, ok_np = minhash.signatures(sh, num_perm, seed)
    got, ok_t = minhash_torch.signatures(sh, num_perm, seed, device="cpu")
    assert got.dtype == np.uint32 and got.shape == want.shape == (t.num_rows, num_perm)
    assert np.array_equal(ok_np, ok_t)
    assert np.array_equal(got, want)  # every permutation value of every document
    assert len(np.unique(got)) > num_perm  # not a degenerate all-max matrix


def test_torch_signatures_cover_chunk_edges_and_empty_documents(monkeypatch):
    """Chunks that cut a document in two, and documents without shingles (the all-max signature)."""
    t = labelled("en").slice(0, 40)
    texts = t.column("text").to_pylist()
    texts[3] = "!!! ..."  # no letters: no shingles
    import pyarrow as pa

    sh = shingle(pa.array(texts, pa.large_string()), t.column("lang"), word_ngram=5, zh_ngram=5)
    monkeypatch.setattr(minhash_torch, "_CHUNK_CELLS", 128 * 37)
    got, ok = minhash_torch.signatures(sh, 128, 1, device="cpu")
    want, _ = minhash.signatures(sh, 128, 1)
    assert not ok[3] and (got[3] == 0xFFFFFFFF).all()
    assert np.array_equal(got, want)


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="device"):
        minhash_torch.pick_device("tpu")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_minhash_dedup_clusters_identical_for_both_backends(ray_local, tmp_path, lang):
    from winnow.eval_dedup import run_eval

    src = DEDUP_DATA / f"{lang}.parquet"
    runs = {}
    for backend in ("numpy", "torch"):
        pred, scores, _ = run_eval(
            str(src), "minhash", str(tmp_path / f"{backend}.parquet"), {"threshold": 0.7, "backend": backend}
        )
        runs[backend] = (pred.sort_by("id"), scores)
    assert runs["numpy"][0].equals(runs["torch"][0])
    assert runs["torch"][1].f1 >= 0.93  # and the clusters are the real ones, not two equal failures
