"""Dedup building blocks against reference implementations, on real text, without Ray.

datasketch is the reference for MinHash (signatures, Jaccard estimates, LSH candidates); brute-force
exact Jaccard is the ground truth for recall; a union-find is the reference for connected components.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from itertools import combinations

import datasketch
import numpy as np
import pyarrow as pa
import pytest
import zstandard
from conftest import SAMPLE

from pipeline import components as cc
from pipeline.storage import Storage
from stages.dedup.planner import MemoryPlanError, plan
from stages.minhash import band_keys, optimal_bands, signatures
from stages.shingles import shingle, shingle_set
from stages.simhash import fingerprints, hamming, table_keys, table_masks


def real_docs(n_en: int = 60, n_zh: int = 60) -> tuple[list[str], list[str]]:
    with gzip.open(SAMPLE / "en" / "refined.jsonl.gz", "rt") as f:
        en = [r["text"] for r in map(json.loads, f) if len(r["text"]) > 300][:n_en]
    raw = zstandard.ZstdDecompressor().stream_reader(open(SAMPLE / "zh" / "wikipedia.jsonl.zst", "rb"))
    zh = [r["text"] for r in map(json.loads, io.TextIOWrapper(raw, encoding="utf-8")) if len(r["text"]) > 150][:n_zh]
    return en, zh


def edited(text: str, rate: float, rnd: random.Random, zh: bool) -> str:
    """A copy with a share of words (or characters) replaced."""
    units = list(text) if zh else text.split(" ")
    for _ in range(max(1, int(len(units) * rate))):
        units[rnd.randrange(len(units))] = "的" if zh else "lorem"
    return ("" if zh else " ").join(units)


@pytest.fixture(scope="module")
def corpus():
    """Real documents plus edited copies at several edit rates, so true Jaccard spreads over 0.3-1."""
    en, zh = real_docs()
    rnd = random.Random(7)
    texts, langs, copies = [], [], []
    for lang, docs in (("en", en), ("zh", zh)):
        for i, t in enumerate(docs):
            texts.append(t)
            langs.append(lang)
            if i % 3 != 2:
                rate = rnd.choice([0.003, 0.01, 0.03, 0.08, 0.15])
                texts.append(edited(t, rate, rnd, lang == "zh"))
                langs.append(lang)
                copies.append((len(texts) - 2, len(texts) - 1, rate))
    COPIES[:] = copies
    return texts, langs


COPIES: list[tuple[int, int, float]] = []  # (original, copy, edit rate), filled by the fixture


def test_signatures_equal_datasketch_minhash(corpus):
    texts, langs = corpus
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=5, zh_ngram=5)
    sig, ok = signatures(sh, 128, seed=1)
    assert ok.all()
    for d in range(0, len(texts), 7):
        ref = datasketch.MinHash(num_perm=128, seed=1, hashfunc=int)
        ref.update_batch([int(h) & 0xFFFFFFFF for h in sh.hashes[sh.doc == d]])
        assert np.array_equal(ref.hashvalues, sig[d]), f"doc {d} ({langs[d]})"


def test_jaccard_estimates_agree_with_datasketch_and_brute_force(corpus):
    """datasketch hashes the shingle strings with its own sha1; both estimates track the exact Jaccard."""
    texts, langs = corpus
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=5, zh_ngram=5)
    sig, _ = signatures(sh, 256, seed=3)
    sets = [set(sh.hashes[sh.doc == d].tolist()) for d in range(len(texts))]
    errors_ours, errors_ref = [], []
    for a in range(len(texts) - 1):
        b = a + 1
        exact = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        ours = float(np.mean(sig[a] == sig[b]))
        ma, mb = datasketch.MinHash(num_perm=256, seed=3), datasketch.MinHash(num_perm=256, seed=3)
        ma.update_batch([str(h).encode() for h in sets[a]])
        mb.update_batch([str(h).encode() for h in sets[b]])
        errors_ours.append(abs(ours - exact))
        errors_ref.append(abs(ma.jaccard(mb) - exact))
    # standard error of a 256-permutation estimate is at most 0.031
    assert np.mean(errors_ours) < 0.03 and max(errors_ours) < 0.15
    assert abs(np.mean(errors_ours) - np.mean(errors_ref)) < 0.02


def test_lsh_candidates_match_datasketch(corpus):
    texts, langs = corpus
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=5, zh_ngram=5)
    sig, _ = signatures(sh, 128, seed=1)
    bands, rows = optimal_bands(0.5, 128)
    keys = band_keys(sig, bands, rows)
    ours = {(a, b) for a, b in combinations(range(len(texts)), 2) if np.any(keys[a] == keys[b])}
    lsh = datasketch.MinHashLSH(threshold=0.5, num_perm=128)
    assert (lsh.b, lsh.r) == (bands, rows)
    mh = [datasketch.MinHash(num_perm=128, seed=1, hashvalues=sig[d], scheme="affine32") for d in range(len(texts))]
    for d, m in enumerate(mh):
        lsh.insert(d, m)
    theirs = {tuple(sorted((d, e))) for d, m in enumerate(mh) for e in lsh.query(m) if e != d}
    assert ours == theirs and len(ours) >= 40


def test_minhash_recall_against_brute_force_jaccard(corpus):
    """Every pair with exact 5-gram Jaccard >= 0.8 shares a band at the 0.8 setting (recall >= 0.95),
    and pairs far below it rarely do."""
    texts, langs = corpus
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=5, zh_ngram=5)
    sets = [set(sh.hashes[sh.doc == d].tolist()) for d in range(len(texts))]
    sig, _ = signatures(sh, 128, seed=1)
    keys = band_keys(sig, *optimal_bands(0.8, 128))
    truth, far, found, found_far = 0, 0, 0, 0
    for a, b in combinations(range(len(texts)), 2):
        j = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        hit = bool(np.any(keys[a] == keys[b]))
        if j >= 0.8:
            truth, found = truth + 1, found + hit
        elif j < 0.5:
            far, found_far = far + 1, found_far + hit
    assert truth >= 20
    assert found / truth >= 0.95
    assert found_far / far < 0.001


def test_chinese_shingles_are_characters_not_whitespace():
    text = "中文维基百科是一个自由的百科全书，任何人都可以编辑。"
    got = shingle_set(text, "zh", word_ngram=5, zh_ngram=5)
    letters = "中文维基百科是一个自由的百科全书任何人都可以编辑"
    assert len(got) == len(letters) - 4  # one per 5-character window, punctuation dropped
    assert shingle_set(text, "en", word_ngram=5, zh_ngram=5) != got  # as one "word" it would be one shingle
    assert len(shingle_set(text, "en", word_ngram=5, zh_ngram=5)) == 1


def test_simhash_tables_find_every_pair_within_distance():
    rnd = np.random.default_rng(0)
    base = rnd.integers(0, 2**63, 200, dtype=np.uint64)
    flips = np.array(
        [sum(1 << int(b) for b in rnd.choice(64, k, replace=False)) for k in rnd.integers(0, 6, 200)], dtype=np.uint64
    )
    other = base ^ flips
    ka, kb = table_keys(base, 5, 3), table_keys(other, 5, 3)
    shared = np.any(ka == kb, axis=1)
    dist = hamming(base, other)
    assert shared[dist <= 3].all()
    assert len(table_masks(5, 3)) == 10


def test_simhash_near_copies_are_close_unrelated_far(corpus):
    texts, langs = corpus
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=1, zh_ngram=2)
    fp, ok = fingerprints(sh, "none")
    assert ok.all()
    light = [(a, b) for a, b, rate in COPIES if rate <= 0.01]  # copies with at most 1% of words or characters changed
    assert len(light) >= 20
    assert np.median([hamming(fp[a : a + 1], fp[b : b + 1])[0] for a, b in light]) <= 3
    rnd = np.random.default_rng(1)
    a, b = rnd.integers(0, len(texts), 300), rnd.integers(0, len(texts), 300)
    assert np.median(hamming(fp[a[a != b]], fp[b[a != b]])) > 15


def run_components(tmp_path, edges: list[tuple[int, int]], parts: int) -> dict[int, int]:
    """The large-star/small-star rounds in-process (the same functions Ray runs), to convergence."""
    storage = Storage(str(tmp_path))
    u = np.array([e[0] for e in edges], np.uint64)
    v = np.array([e[1] for e in edges], np.uint64)
    a, b = cc.both_ways(u, v)
    cc.write_edges(storage, cc.round_folder("w", 0, "ls"), "in", a, b, parts)
    src, _, _ = cc.solve("w", parts, lambda name, fn, kwargs: [getattr(cc, fn)(storage, **kw) for kw in kwargs], 50)
    for j in range(parts):
        cc.assign_roots(storage, src=src, dst="w/roots", j=j)
    from pipeline.exchange import read_part

    t = pa.concat_tables([read_part(storage, "w/roots", j, cc.ASSIGN) for j in range(parts)])
    return dict(zip(t.column("node").to_pylist(), t.column("root").to_pylist()))


def union_find(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


@pytest.mark.parametrize("parts", [1, 4])
def test_components_match_union_find(tmp_path, parts):
    rnd = random.Random(parts)
    nodes = [rnd.randrange(1 << 40) for _ in range(400)]
    edges = [(rnd.choice(nodes), rnd.choice(nodes)) for _ in range(300)]
    edges += [(nodes[i], nodes[i + 1]) for i in range(100, 160)]  # a long chain: the slow case for label propagation
    edges = [(a, b) for a, b in edges if a != b]
    assert run_components(tmp_path, edges, parts) == union_find(edges)


def test_memory_planner_refuses_with_the_setting_to_change():
    with pytest.raises(MemoryPlanError, match="partitions"):
        plan(
            docs=50_000_000,
            max_shard_rows=10_000,
            max_shard_bytes=30 << 20,
            batch_rows=2048,
            records_per_doc=9,
            verifies=False,
            budget=1 << 30,
            partitions=2,
        )
    with pytest.raises(MemoryPlanError, match="rows_per_shard"):
        plan(
            docs=1_000_000,
            max_shard_rows=2_000_000,
            max_shard_bytes=4 << 30,
            batch_rows=2048,
            records_per_doc=9,
            verifies=False,
            budget=512 << 20,
        )
    p = plan(
        docs=50_000_000,
        max_shard_rows=10_000,
        max_shard_bytes=30 << 20,
        batch_rows=2048,
        records_per_doc=9,
        verifies=False,
        budget=4 << 30,
    )
    assert p.partitions > 10 and max(p.peaks.values()) <= 4 << 30
