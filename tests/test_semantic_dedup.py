"""Semantic dedup on real text: planted paraphrases (reordered, trimmed, reworded copies) cluster with
their originals, unrelated passages stay apart, the same clusters for any worker count, and the
weights stage shares a semantic cluster's weight among its members. Few documents: embedding is slow
on a CPU."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from stages.semantic_dedup import balanced_centroids, encoder_for
from stages.weights import cluster_labels, merge_clusters, row_label

DATA = REPO / "tests" / "data" / "semantic"


def small_set(lang: str, originals: int = 12) -> pa.Table:
    t = pq.read_table(DATA / "paraphrases.parquet")
    t = t.filter(pc.equal(t.column("lang"), lang))
    clusters = sorted(set(t.filter(t.column("true_dup")).column("cluster").to_pylist()))[: originals // 2]
    singles = sorted(set(t.filter(pc.invert(t.column("true_dup"))).column("cluster").to_pylist()))[: originals // 2]
    return t.filter(pc.is_in(t.column("cluster"), pa.array(clusters + singles)))


def test_encoder_per_language_prefix():
    enc = {"en": "minilm", "zh": "e5_small", "*": "minilm"}
    assert encoder_for("zh-Hant", enc) == "e5_small" and encoder_for("fr", enc) == "minilm"
    assert encoder_for(None, {"en": "a", "*": "b"}) == "b"


def test_balanced_centroids_bound_cluster_sizes_and_are_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 16)).astype(np.float32)
    x[:400] += 6 * np.eye(16, dtype=np.float32)[0]  # one dense blob of 400 that plain k-means keeps whole
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = balanced_centroids(x, 50, 20, 3)
    sizes = np.bincount((x @ c.T).argmax(1), minlength=len(c))
    assert sizes.max() <= 2 * 50 + 50 and len(c) >= 600 // 100
    assert np.array_equal(c, balanced_centroids(x, 50, 20, 3))


@pytest.mark.parametrize("lang", ["en"])
def test_planted_paraphrases_cluster_and_unrelated_stay_apart(ray_local, tmp_path, lang):
    from winnow.eval_dedup import run_eval

    t = small_set(lang)
    src = tmp_path / "in.parquet"
    pq.write_table(t.select(["id", "text", "lang", "true_dup"]), src)
    settings = {"threshold": 0.9, "cluster_docs": 8, "device": "cpu"}
    pred, scores, report = run_eval(str(src), "semantic", str(tmp_path / "p.parquet"), settings, rows_per_shard=9)
    got = dict(zip(pred.column("id").to_pylist(), pred.column("dup_cluster").to_pylist()))
    truth = dict(zip(t.column("id").to_pylist(), t.column("cluster").to_pylist()))
    ids = sorted(got)
    same_pred = {(a, b) for a in ids for b in ids if a < b and got[a] == got[b]}
    same_true = {(a, b) for a in ids for b in ids if a < b and truth[a] == truth[b]}
    assert len(same_true) >= 5 and report["docs"] == t.num_rows
    assert len(same_pred & same_true) >= 0.8 * len(same_true)  # recall of planted pairs
    assert len(same_pred - same_true) <= 0.2 * max(1, len(same_pred))  # unrelated passages apart
    again, _, _ = run_eval(str(src), "semantic", str(tmp_path / "q.parquet"), settings, rows_per_shard=5, workers=1)
    assert again.sort_by("id").equals(pred.sort_by("id"))  # other shards and workers, same clusters


def test_weights_count_a_document_in_both_kinds_of_cluster_once():
    t = pa.table(
        {
            "dup_cluster": ["a", "a", "c", "d", "e"],
            "dup_cluster_size": [2, 2, 1, 1, 1],
            "sem_cluster": ["a", "x", "x", "d", "e"],
            "sem_cluster_size": [1, 2, 2, 1, 1],
        }
    )
    dup, sem = cluster_labels(t)
    assert list(dup[:2]) == ["d:a", "d:a"] and dup[2] is None and list(sem[1:3]) == ["s:x", "s:x"]
    roots = merge_clusters(list(dup), list(sem))
    label = row_label(dup, sem)
    assert roots[label[0]] == roots[label[1]] == roots[label[2]]  # a-a near-dups, a2 ~ c semantically
    assert label[3] is None and label[4] is None  # singletons share nothing


def test_weights_stage_shares_a_semantic_cluster_among_its_members(tmp_path):
    """Summary, combine and the map of the weights stage on real passages: a semantic cluster of 3 and a
    near-dup pair linked to it by one document give 4 documents 1/4 each; the others keep 1."""
    from pipeline.storage import Storage
    from stages.weights import Weights, WeightsConfig, combine, summarize_task

    t = small_set("en").slice(0, 6)
    n = t.num_rows
    table = pa.table(
        {
            "id": t.column("id"),
            "text": t.column("text"),
            "lang": t.column("lang"),
            "source": pa.array(["s"] * n),
            "dup_cluster": pa.array(["x0", "x0", "x2", "x3", "x4", "x5"][:n]),
            "dup_cluster_size": pa.array([2, 2, 1, 1, 1, 1][:n], pa.int64()),
            "sem_cluster": pa.array(["y", "x1", "y", "y", "x4", "x5"][:n]),
            "sem_cluster_size": pa.array([3, 1, 3, 3, 1, 1][:n], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    storage = Storage(str(tmp_path))
    settings = WeightsConfig().model_dump(mode="json")
    result = summarize_task(
        storage, path=storage.path("in.parquet"), settings=settings, out="w/s0.parquet", batch_rows=100
    )
    context = combine(storage, work="w", results={"s0": result}, settings=settings)
    out = Weights(WeightsConfig(), context, storage.uri)(table)
    w = out.table.column("w_cluster").to_numpy()
    assert np.allclose(w, [0.25, 0.25, 0.25, 0.25, 1, 1][:n])
    assert out.table.column("dup_copies").to_pylist()[:4] == [4, 4, 4, 4]
