"""Sampling weights and the final shards, through the real pipeline on Ray: the mix of expected sampled
tokens meets the targets, each near-copy gets its share of its cluster, every term is a column, and
the export is a conservation-keeping, deterministic, seeded shuffle with a dataset card."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, default_folders, sample_inputs, write_config

from pipeline.config import ConfigError
from pipeline.runner import PipelineError, Runner
from stages.weights import (
    Boost,
    MixError,
    QualityTerm,
    SafetyTerm,
    TokenEstimate,
    boost_term,
    estimate_tokens,
    quality_term,
    safety_term,
    solve_mix,
)
from winnow.config import load_config

DEDUP = REPO / "tests" / "data" / "dedup"
TARGETS = {"dedup-en": 0.3, "dedup-zh": 0.7}


def read_stage(out: Path, folder: str) -> pa.Table:
    return pads.dataset(str(out / folder), ignore_prefixes=["_", ".", "rejects"]).to_table()


def read_export(out: Path, folder: str) -> tuple[pa.Table, list[Path]]:
    files = sorted((out / folder).glob("shard-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]), files


def expected_shares(table: pa.Table, by: str = "source") -> dict[str, float]:
    """What a sampler drawing documents by weight would give, in tokens, per group."""
    w = table.column("weight").to_numpy() * table.column("tokens_est").to_numpy()
    groups = np.asarray(table.column(by).to_pylist())
    return {g: float(w[groups == g].sum() / w.sum()) for g in np.unique(groups)}


def cluster_config(tmp_path: Path, *, workers: int | None = None, seed: int = 0, targets: dict | None = None) -> Path:
    """Labelled near-duplicate sets (real text, clusters of 2-4) as two sources in shards of 100, so
    clusters span shards; near-copies kept; min_length then drops some copies (the truncated ones)."""
    inputs = [
        {"path": str(DEDUP / "en.parquet"), "source": "dedup-en", "lang_field": "lang"},
        {"path": str(DEDUP / "zh.parquet"), "source": "dedup-zh", "lang_field": "lang"},
    ]
    stages = [
        {"name": "minhash_dedup", "mode": "keep", "threshold": 0.7},
        {"name": "min_length", "min_chars": 400},
        {"name": "weights", "mix": {"by": "source", "targets": targets if targets is not None else TARGETS}},
        {"name": "export", "shard_docs": 150, "seed": seed},
    ]
    extra = {"ingest": {"rows_per_shard": 100}}
    if workers:
        extra["ray"] = {"workers": workers}
    return write_config(tmp_path, inputs, stages, **extra)


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("clusters")
    cfg = load_config(cluster_config(tmp))
    Runner(cfg, progress=False).run_all()
    return Path(cfg.pipeline.output)


# --- the weights on real runs -----------------------------------------------------------------------


def test_sampled_token_mix_matches_targets_on_the_sample(weighted_run):
    """configs/default.yaml's targets per source, met within 1% by the exported weights; the source
    without a target gets what is left."""
    targets = yaml.safe_load(weighted_run.read_text())["stages"][-2]["mix"]["targets"]
    table, _ = read_export(weighted_run.parent / "out", default_folders()["export"])
    shares = expected_shares(table)
    for source, target in targets.items():
        assert shares[source] == pytest.approx(target, rel=0.01), (source, shares)
    unlisted = set(shares) - set(targets)
    assert unlisted and sum(shares[s] for s in unlisted) == pytest.approx(1 - sum(targets.values()), rel=0.01)
    before = Counter()
    for source, tokens in zip(table.column("source").to_pylist(), table.column("tokens_est").to_pylist()):
        before[source] += tokens
    total = sum(before.values())
    moved = max(abs(before[s] / total - t) for s, t in targets.items())
    assert moved > 0.05  # the targets really differ from the natural mix, so meeting them took weighting


def test_weights_are_finite_positive_and_the_product_of_their_terms(weighted_run):
    out = weighted_run.parent / "out"
    table = read_stage(out, default_folders()["weights"])
    w = table.column("weight").to_numpy()
    assert np.isfinite(w).all() and (w > 0).all()
    product = np.ones(len(w))
    for term in ("w_quality", "w_cluster", "w_safety", "w_boost", "w_mix"):
        values = table.column(term).to_numpy()
        assert np.isfinite(values).all() and (values > 0).all(), term
        product *= values
    np.testing.assert_allclose(w, product, rtol=1e-12)
    # the terms follow the configured formula from the score columns
    q = np.nan_to_num(table.column("quality").to_numpy(zero_copy_only=False).astype(float), nan=0.5)
    lang = np.asarray(table.column("lang").to_pylist())
    for language in np.unique(lang):  # normalize_by: lang: one scale per language
        rows = lang == language
        ratio = table.column("w_quality").to_numpy()[rows] / (0.2 + 0.8 * q[rows])
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    s = table.column("safety").to_numpy(zero_copy_only=False).astype(float)
    np.testing.assert_allclose(table.column("w_safety").to_numpy(), 1 - 0.5 * s, rtol=1e-6)
    boosted = table.column("quality_fasttext").to_numpy(zero_copy_only=False) >= 0.9
    assert boosted.any() and (~boosted).any()
    np.testing.assert_array_equal(table.column("w_boost").to_numpy(), np.where(boosted, 1.5, 1.0))
    # a weight is the expected passes per corpus-sized pass: sum(weight * tokens) = corpus tokens
    tokens = table.column("tokens_est").to_numpy()
    assert (w * tokens).sum() == pytest.approx(tokens.sum(), rel=1e-9)


def test_each_kept_copy_gets_its_share_of_the_cluster(cluster_run):
    """k copies of a cluster still in the corpus (after later stages dropped others) get 1/k each, so
    the cluster as a whole weighs one document; copies are counted across shards."""
    table, _ = read_export(cluster_run, "04_export")
    members = defaultdict(list)
    for row in table.select(["id", "dup_cluster", "dup_cluster_size", "dup_copies", "w_cluster"]).to_pylist():
        members[row["dup_cluster"]].append(row)
    multi = {c: rows for c, rows in members.items() if len(rows) >= 2}
    assert len(multi) >= 40
    for cluster, rows in members.items():
        for r in rows:
            assert r["dup_copies"] == len(rows), cluster
            assert r["w_cluster"] == pytest.approx(1 / len(rows))
        assert sum(r["w_cluster"] for r in rows) == pytest.approx(1.0)
    trimmed = [c for c, rows in members.items() if rows[0]["dup_cluster_size"] > len(rows)]
    assert trimmed  # clusters min_length thinned out after dedup: the share follows the copies left
    shards_of = defaultdict(set)
    weights_out = read_stage(cluster_run, "03_weights")
    for path in sorted((cluster_run / "03_weights").glob("part-*.parquet")):
        for c in pq.read_table(path, columns=["dup_cluster"]).column("dup_cluster").to_pylist():
            shards_of[c].add(path.name)
    assert any(len(shards_of[c]) > 1 for c in multi)  # copies in different shards were counted together
    assert weights_out.num_rows == table.num_rows


def test_mix_targets_hold_with_clusters(cluster_run):
    table, _ = read_export(cluster_run, "04_export")
    shares = expected_shares(table)
    for source, target in TARGETS.items():
        assert shares[source] == pytest.approx(target, rel=0.01)


def test_quality_normalised_per_language_moves_weight_within_a_language_only(tmp_path, ray_local):
    """Real quality scores (the shipped fastText models) on the sample (tweets and CCNet in English,
    Wikipedia in Chinese) and the labelled near-duplicate sets, near-copies kept: with `normalize_by:
    lang`, each language's quality-weighted tokens equal its tokens, the order within a language is the
    scores' order, and the languages' shares of sampled tokens are what the other terms alone give them,
    where without it the per-language models' different scales move them."""
    inputs = [{**i, "lang": i.get("lang", "en")} for i in sample_inputs()] + [
        {"path": str(DEDUP / "en.parquet"), "source": "dedup-en", "lang_field": "lang"},
        {"path": str(DEDUP / "zh.parquet"), "source": "dedup-zh", "lang_field": "lang"},
    ]
    stages = [
        {"name": "minhash_dedup", "mode": "keep", "threshold": 0.7},
        {"name": "quality", "models": [{"name": "fasttext", "models": {"zh": "quality-zh", "en": "quality-en"}}]},
        {"name": "weights", "quality": {"normalize_by": "lang"}},
        {"name": "export", "shard_docs": 150},
    ]
    cfg = load_config(write_config(tmp_path, inputs, stages, ingest={"rows_per_shard": 100}))
    Runner(cfg, progress=False).run_all()
    out = Path(cfg.pipeline.output)
    table, _ = read_export(out, "04_export")
    lang = np.asarray(table.column("lang").to_pylist())
    tokens = table.column("tokens_est").to_numpy().astype(float)
    q = table.column("quality").to_numpy(zero_copy_only=False).astype(float)
    w_quality = table.column("w_quality").to_numpy()
    others = np.ones(len(tokens))
    for term in ("w_cluster", "w_safety", "w_boost"):
        others *= table.column(term).to_numpy()
    raw_quality = 0.2 + 0.8 * q
    for language in ("en", "zh"):
        rows = lang == language
        assert (tokens[rows] * w_quality[rows]).sum() == pytest.approx(tokens[rows].sum(), rel=1e-9)
        ratio = w_quality[rows] / raw_quality[rows]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)  # one scale per language: order kept
    means = {g: np.average(raw_quality[lang == g], weights=tokens[lang == g]) for g in ("en", "zh")}
    assert abs(means["en"] - means["zh"]) > 0.05  # the two models really score on different levels

    def shares(w: np.ndarray) -> dict[str, float]:
        return {g: float((w * tokens)[lang == g].sum() / (w * tokens).sum()) for g in ("en", "zh")}

    actual, alone, unnormalised = expected_shares(table, by="lang"), shares(others), shares(others * raw_quality)
    # without the normalisation quality would move the mix by more than 5 points; with it, what is left
    # is the quality term's correlation with the cluster and safety terms inside a language
    assert abs(unnormalised["en"] - alone["en"]) > 0.05
    assert abs(actual["en"] - alone["en"]) < 0.25 * abs(unnormalised["en"] - alone["en"])
    summary = json.loads((out / "03_weights" / "_summary.json").read_text())
    assert summary["quality_by"] == "lang" and set(summary["quality_scales"]) == {"en", "zh"}
    assert (table.column("dup_copies").to_numpy() > 1).sum() >= 40  # the clusters' shares are scaled too


# --- the export -------------------------------------------------------------------------------------


def test_export_keeps_every_document_once_in_sized_shuffled_shards(cluster_run):
    table, files = read_export(cluster_run, "04_export")
    upstream = read_stage(cluster_run, "03_weights")
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) == set(upstream.column("id").to_pylist())
    assert len(files) == math.ceil(upstream.num_rows / 150)
    assert [f.name for f in files] == [f"shard-{j:05d}-of-{len(files):05d}.parquet" for j in range(len(files))]
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert max(sizes) <= 1.5 * 150 and min(sizes) >= 0.5 * 150
    sources = table.column("source").to_pylist()
    runs = sum(1 for a, b in zip(sources, sources[1:]) if a != b)
    assert runs > len(sources) / 4  # interleaved, not source after source as ingested
    assert {"id", "text", "source", "lang", "weight", "tokens_est", "w_cluster", "w_mix"} <= set(table.column_names)
    sidecars = [json.loads(p.read_text()) for p in (cluster_run / "04_export" / "_stats").glob("*.json")]
    assert sum(s["rows_out"] for s in sidecars) == upstream.num_rows


def _digests(files: list[Path]) -> list[str]:
    return [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]


def test_export_is_deterministic_and_the_seed_changes_the_order(cluster_run, tmp_path, ray_local):
    _, files = read_export(cluster_run, "04_export")
    cfg = load_config(cluster_config(tmp_path, workers=1))
    Runner(cfg, progress=False).run_all()
    again, files_again = read_export(Path(cfg.pipeline.output), "04_export")
    assert _digests(files_again) == _digests(files)  # other worker count, same bytes
    # rerunning only the export with another seed reorders the same documents
    reseeded = load_config(cluster_config(tmp_path, workers=1, seed=7))
    Runner(reseeded, progress=False).run_one("export")
    shuffled, files_seeded = read_export(Path(cfg.pipeline.output), "04_export")
    assert sorted(shuffled.column("id").to_pylist()) == sorted(again.column("id").to_pylist())
    assert shuffled.column("id").to_pylist() != again.column("id").to_pylist()


def test_dataset_card_has_funnel_mix_and_config(cluster_run):
    folder = cluster_run / "04_export"
    card = json.loads((folder / "dataset.json").read_text())
    table, _ = read_export(cluster_run, "04_export")
    assert card["totals"]["docs"] == table.num_rows
    assert card["totals"]["tokens_est"] == sum(table.column("tokens_est").to_pylist())
    assert [f["folder"] for f in card["funnel"]] == [
        "00_ingest",
        "01_minhash_dedup",
        "02_min_length",
        "03_weights",
        "04_export",
    ]
    assert card["funnel"][2]["drops"]["too-short"] == card["funnel"][2]["rows_in"] - card["funnel"][2]["rows_out"] > 0
    for source, target in TARGETS.items():
        row = card["mix"]["source"][source]
        assert row["target"] == target and row["share_after"] == pytest.approx(target, rel=0.01)
        assert row["share_before"] != pytest.approx(target, rel=0.01)
    assert set(card["mix"]["lang"]) == {"en", "zh"}
    assert [s["name"] for s in card["shards"]] == sorted(p.name for p in folder.glob("shard-*.parquet"))
    assert {s["name"] for s in card["config"]["stages"]} == {"minhash_dedup", "min_length", "weights", "export"}
    readme = (folder / "README.md").read_text()
    for heading in (
        "## Funnel",
        "## Mix by source (targets by this column)",
        "## Mix by lang",
        "## Weights",
        "## Configuration",
    ):
        assert heading in readme
    assert "| dedup-zh |" in readme and "too-short" in readme


# --- whichever stages ran ---------------------------------------------------------------------------


def test_weights_without_scores_use_the_mix_alone(tmp_path, ray_local):
    """No dedup, quality or safety stage: those terms are 1 and only the mix shapes the weights; a
    target for a source with no documents is reported, not fatal."""
    targets = {"wikipedia-zh": 0.5, "ccnet-en": 0.3, "nowhere": 0.05}
    stages = [
        {"name": "min_length", "min_chars": 50},
        {"name": "weights", "mix": {"targets": targets}},
        {"name": "export", "shard_docs": 1000},
    ]
    cfg = load_config(write_config(tmp_path, sample_inputs(), stages))
    Runner(cfg, progress=False).run_all()
    out = Path(cfg.pipeline.output)
    table, _ = read_export(out, "03_export")
    for term in ("w_quality", "w_cluster", "w_safety", "w_boost"):
        assert set(table.column(term).to_pylist()) == {1.0}
    assert len(set(table.column("w_mix").to_pylist())) == 3
    shares = expected_shares(table)
    assert sum(shares.values()) == pytest.approx(1.0)
    card = json.loads((out / "03_export" / "dataset.json").read_text())
    assert any("nowhere" in w for w in card["mix"]["warnings"])
    # the listed sources get their targets; the unlisted one (tweets-en) what is left, the absent target's share included
    assert shares["wikipedia-zh"] == pytest.approx(0.5, rel=0.01) and shares["ccnet-en"] == pytest.approx(
        0.3, rel=0.01
    )
    assert shares["tweets-en"] == pytest.approx(0.2, rel=0.01)


def test_targets_that_leave_sources_out_fail_clearly(tmp_path, ray_local):
    stages = [{"name": "weights", "mix": {"targets": {"wikipedia-zh": 0.6, "ccnet-en": 0.4}}}]
    cfg = load_config(write_config(tmp_path, sample_inputs(), stages))
    with pytest.raises(PipelineError, match=r"tweets-en.*no mix target"):
        Runner(cfg, progress=False).run_all()


def test_export_must_be_last_and_boosts_need_their_column(tmp_path, ray_local):
    with pytest.raises(ConfigError, match="must be the last stage"):
        load_config(write_config(tmp_path, sample_inputs(), [{"name": "export"}, {"name": "normalize"}]))
    stages = [{"name": "weights", "boosts": [{"column": "quality_edu", "threshold": 0.5, "factor": 2}]}]
    # a boost on a column no stage writes now fails when the config loads, before any work
    with pytest.raises(ConfigError, match="quality_edu"):
        load_config(write_config(tmp_path, sample_inputs(), stages))


# --- the terms on their own -------------------------------------------------------------------------


def test_solve_mix_meets_targets_and_normalises():
    weighted = {"a": 10.0, "b": 30.0, "c": 60.0, "d": 20.0}
    factors, shares, warnings = solve_mix(weighted, 200.0, {"a": 0.5, "b": 0.2})
    after = {g: factors[g] * weighted[g] for g in weighted}
    assert sum(after.values()) == pytest.approx(200.0)
    assert after["a"] / 200 == pytest.approx(0.5) and after["b"] / 200 == pytest.approx(0.2)
    assert after["c"] / after["d"] == pytest.approx(3.0)  # unlisted groups keep their relative size
    assert not warnings
    with pytest.raises(MixError, match="no mix target"):
        solve_mix(weighted, 200.0, {"a": 0.5, "b": 0.5})


def test_quality_safety_and_boost_terms():
    t = pa.table(
        {
            "quality": pa.array([0.0, 0.5, 1.0, None], pa.float32()),
            "safety": pa.array([0.0, 1.0, 0.5, None], pa.float32()),
            "unsafe": pa.array([False, True, False, None]),
            "edu": pa.array([0.95, 0.1, 0.9, None], pa.float32()),
        }
    )
    np.testing.assert_allclose(quality_term(t, QualityTerm(floor=0.2)), [0.2, 0.6, 1.0, 0.6])
    np.testing.assert_allclose(quality_term(t, QualityTerm(power=2, floor=0.1)), [0.1, 0.325, 1.0, 0.325])
    buckets = QualityTerm(buckets=[{"min": 0, "weight": 0.1}, {"min": 0.5, "weight": 1}, {"min": 0.9, "weight": 3}])
    np.testing.assert_allclose(quality_term(t, buckets), [0.1, 1, 3, 1])
    np.testing.assert_allclose(safety_term(t, SafetyTerm(penalty=0.5, unsafe_factor=0.1)), [1.0, 0.05, 0.75, 1.0])
    np.testing.assert_allclose(boost_term(t, [Boost(column="edu", threshold=0.9, factor=2)]), [2, 1, 2, 1])
    with pytest.raises(ValueError, match="min: 0"):
        QualityTerm(buckets=[{"min": 0.5, "weight": 1}])


def test_token_estimate_counts_han_characters_and_bytes():
    t = pa.table(
        {
            "text": pa.array(
                ["hello world, this is forty bytes long!!", "中文字符" * 13, "mixed 中文 text"], pa.large_string()
            )
        }
    )
    est = estimate_tokens(t, TokenEstimate(han_chars_per_token=1.3, bytes_per_token=4.0))
    assert est.tolist() == [10, 40, round(2 / 1.3 + 11 / 4)]


# --- what `winnow stats` says about it ---------------------------------------------------------------


def test_stats_per_source_and_language_add_up(weighted_run):
    """Per source: documents in = out + rejected across all stages (so the table accounts for every
    ingested document), and the shares after weighting are the targets."""
    import subprocess
    import sys

    from pipeline.stats import collect_funnel, group_rows

    out = weighted_run.parent / "out"
    targets = yaml.safe_load(weighted_run.read_text())["stages"][-2]["mix"]["targets"]
    ingested = collect_funnel(str(out))[0].rows_in
    for by in ("source", "lang"):
        rows = group_rows(str(out), by)
        assert sum(r["docs_in"] for r in rows) == ingested
        assert sum(r["share_after"] for r in rows) == pytest.approx(1.0)
    sources = {r["source"]: r for r in group_rows(str(out), "source")}
    # every source that lost documents says why (the sample's e-mails and crawl pages lose many)
    lost = {s: r for s, r in sources.items() if r["docs_out"] < r["docs_in"]}
    assert {"emails-en", "web-crawl"} <= set(lost) and all(r["reasons"] for r in lost.values())
    for source, target in targets.items():
        assert sources[source]["target"] == target and sources[source]["share_after"] == pytest.approx(
            target, rel=0.01
        )
    proc = subprocess.run(
        [sys.executable, "-m", "winnow", "stats", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    for title in (
        "winnow funnel",
        "drops by reason",
        "per source",
        "per lang",
        default_folders()["export"],
        "wikipedia-zh",
        f"{targets['wikipedia-zh']:.1%}",
    ):
        assert title in proc.stdout, title
