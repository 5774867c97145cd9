"""Global dedup through the real pipeline on Ray: documents repeated across input files (so across
shards), exact and edited copies of real text, survivors by quality, conservation, determinism."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import REPO, write_config
from test_dedup_units import edited, real_docs

from pipeline.runner import PipelineError, Runner
from winnow.config import load_config


def read_stage(out: Path, folder: str) -> pa.Table:
    return pads.dataset(str(out / folder), ignore_prefixes=["_", ".", "rejects"]).to_table().sort_by("id")


def read_rejects(out: Path, folder: str) -> pa.Table | None:
    path = out / folder / "rejects"
    return pq.read_table(path) if path.exists() else None


@pytest.fixture(scope="module")
def dup_corpus(tmp_path_factory):
    """Three JSONL files of real text: originals, exact copies and 1%-edited copies spread over files,
    each row with a `quality` score. Returns (folder, rows by id)."""
    en, zh = real_docs(40, 40)
    rnd = random.Random(11)
    rows = []
    for lang, docs in (("en", en), ("zh", zh)):
        for i, text in enumerate(docs):
            base = f"{lang}{i:03d}"
            rows.append({"id": base, "text": text, "lang": lang, "quality": 0.5, "group": base, "kind": "original"})
            if i % 4 == 0:
                rows.append(
                    {"id": base + "-exact", "text": text, "lang": lang, "quality": 0.9, "group": base, "kind": "exact"}
                )
            if i % 4 == 1:
                rows.append(
                    {
                        "id": base + "-near",
                        "text": edited(text, 0.01, rnd, lang == "zh"),
                        "lang": lang,
                        "quality": 0.2,
                        "group": base,
                        "kind": "near",
                    }
                )
    rnd.shuffle(rows)
    folder = tmp_path_factory.mktemp("dups")
    for k in range(3):
        with open(folder / f"part{k}.jsonl", "w", encoding="utf-8") as f:
            for r in rows[k::3]:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return folder, {r["id"]: r for r in rows}


def dedup_config(tmp_path, folder, *, workers=None, partitions=None, minhash_mode="drop", extra=None):
    part = {"partitions": partitions} if partitions else {}
    stages = [
        {"name": "exact_dedup", **part},
        {"name": "minhash_dedup", "mode": minhash_mode, **part, **(extra or {})},
        {"name": "simhash_dedup", "mode": "keep", **part},
    ]
    inputs = [{"path": str(folder), "source": "dups", "lang_field": "lang"}]
    return write_config(
        tmp_path, inputs, stages, ingest={"rows_per_shard": 15}, ray={"workers": workers} if workers else {}
    )


def test_dedup_stages_drop_copies_across_shards_and_keep_the_best(ray_local, tmp_path, dup_corpus):
    folder, rows = dup_corpus
    cfg = load_config(dedup_config(tmp_path, folder))
    Runner(cfg, progress=False).run_all()
    out = Path(cfg.pipeline.output)
    ingested = read_stage(out, "00_ingest")
    assert ingested.num_rows == len(rows)
    assert len(list((out / "00_ingest").glob("part-*.parquet"))) >= 6  # copies really sit in other shards

    # exact: every literal copy pair loses one member, and the survivor is the higher quality one
    exact = read_stage(out, "01_exact_dedup")
    rej = read_rejects(out, "01_exact_dedup")
    n_exact = sum(r["kind"] == "exact" for r in rows.values())
    assert rej.num_rows == n_exact and set(rej.column("reason").to_pylist()) == {"exact-dup"}
    assert all(rows[i]["kind"] == "original" for i in rej.column("id").to_pylist())  # quality 0.5 loses to 0.9
    kept_exact = dict(zip(exact.column("id").to_pylist(), exact.column("dup_cluster").to_pylist()))
    for i, c in kept_exact.items():
        assert c == i  # in drop mode every survivor is its own cluster's id

    # near-dup: the 1%-edited copies go, their (higher quality) originals stay
    near = read_stage(out, "02_minhash_dedup")
    rej = read_rejects(out, "02_minhash_dedup")
    dropped = set(rej.column("id").to_pylist())
    near_ids = {i for i, r in rows.items() if r["kind"] == "near"}
    assert len(dropped & near_ids) >= 0.9 * len(near_ids)
    assert all(rows[i]["kind"] == "near" for i in dropped), "only edited copies are dropped"
    assert set(rej.column("reason").to_pylist()) == {"minhash-dup"}

    # simhash in keep mode: nothing dropped, clusters annotated and consistent
    sim = read_stage(out, "03_simhash_dedup")
    assert sim.num_rows == near.num_rows
    sizes = Counter(sim.column("dup_cluster").to_pylist())
    for c, s in zip(sim.column("dup_cluster").to_pylist(), sim.column("dup_cluster_size").to_pylist()):
        assert sizes[c] == s

    # conservation per stage and shard, from the sidecars
    for stage in ("01_exact_dedup", "02_minhash_dedup", "03_simhash_dedup"):
        for sc in (out / stage / "_stats").glob("*.json"):
            s = json.loads(sc.read_text())
            assert s["rows_in"] == s["rows_out"] + s["rows_rejected"]
        report = json.loads((out / stage / "_dedup.json").read_text())
        assert report["docs"] > 0 and "plan" in report
        assert not (out / stage / "_work").exists()  # work files removed once complete


def test_keep_mode_annotates_cluster_sizes_and_survivors(ray_local, tmp_path, dup_corpus):
    folder, rows = dup_corpus
    cfg = load_config(dedup_config(tmp_path, folder, minhash_mode="keep"))
    Runner(cfg, progress=False).run_all()
    t = read_stage(Path(cfg.pipeline.output), "02_minhash_dedup")
    assert t.num_rows == len(rows) - sum(r["kind"] == "exact" for r in rows.values())
    by_id = dict(
        zip(
            t.column("id").to_pylist(),
            zip(t.column("dup_cluster").to_pylist(), t.column("dup_cluster_size").to_pylist()),
        )
    )
    pairs = [i for i, r in rows.items() if r["kind"] == "near" and by_id[i][1] == 2]
    assert len(pairs) >= 0.9 * sum(r["kind"] == "near" for r in rows.values())
    for i in pairs:
        assert by_id[i][0] == rows[i]["group"]  # the original (quality 0.5) beats the copy (0.2)
        assert by_id[rows[i]["group"]] == (rows[i]["group"], 2)


def test_same_clusters_whatever_the_workers_and_partitions(ray_local, tmp_path, dup_corpus):
    folder, _ = dup_corpus
    results = []
    for k, (workers, parts) in enumerate([(1, 1), (2, 5)]):
        d = tmp_path / f"run{k}"
        d.mkdir()
        cfg = load_config(dedup_config(d, folder, workers=workers, partitions=parts, minhash_mode="keep"))
        Runner(cfg, progress=False).run_all()
        out = Path(cfg.pipeline.output)
        results.append(
            [
                read_stage(out, f).select(["id", "dup_cluster", "dup_cluster_size"])
                for f in ("01_exact_dedup", "02_minhash_dedup", "03_simhash_dedup")
            ]
        )
    for a, b in zip(*results):
        assert a.equals(b)


def test_rerun_is_a_no_op_and_a_changed_setting_redoes_the_stage(ray_local, tmp_path, dup_corpus):
    folder, _ = dup_corpus
    cfg = load_config(dedup_config(tmp_path, folder))
    Runner(cfg, progress=False).run_all()
    reports = Runner(cfg, progress=False).run_all()
    assert all(r.ran == 0 for r in reports)
    cfg2 = load_config(dedup_config(tmp_path, folder, extra={"threshold": 0.5}))
    runner = Runner(cfg2, progress=False)
    report, stale = runner.run_one("minhash_dedup")
    assert report.ran == report.total > 0
    assert [f for f, _ in stale] == ["03_simhash_dedup"]


def test_memory_planner_refuses_before_any_work(ray_local, tmp_path, dup_corpus):
    folder, _ = dup_corpus
    cfg = load_config(dedup_config(tmp_path, folder, extra={"memory_per_worker_mb": 50}))
    with pytest.raises(PipelineError, match="memory_per_worker_mb|rows_per_shard"):
        Runner(cfg, progress=False).run_all()
    assert not list((Path(cfg.pipeline.output) / "02_minhash_dedup").glob("part-*"))


def test_eval_dedup_command_scores_a_labelled_file(tmp_path, dup_corpus):
    """The CLI as users run it: one prediction row per input id, scores printed."""
    _, rows = dup_corpus
    groups = Counter(r["group"] for r in rows.values())
    table = pa.Table.from_pylist(
        [
            {"id": r["id"], "text": r["text"], "lang": r["lang"], "true_dup": groups[r["group"]] > 1}
            for r in rows.values()
        ]
    )
    src = tmp_path / "labelled.parquet"
    pq.write_table(table, src)
    settings = tmp_path / "s.yaml"
    settings.write_text("ngram: 5\nbands: 14\nrows: 8\nnum_perm: 112\n")
    pred = tmp_path / "pred.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "winnow",
            "eval",
            "dedup",
            str(src),
            "--method",
            "minhash",
            "--predictions",
            str(pred),
            "--config",
            str(settings),
            "--num-cpus",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pq.read_table(pred)
    assert sorted(got.column("id").to_pylist()) == sorted(rows)
    assert "F1" in proc.stdout
    f1 = float(proc.stdout.split("F1 ")[1].split()[0])
    assert f1 >= 0.9
    bad = subprocess.run(
        [sys.executable, "-m", "winnow", "eval", "dedup", str(src), "--method", "minhsh", "--predictions", str(pred)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "minhsh" in bad.stderr


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_near_dup_quality_on_the_labelled_real_sets(ray_local, tmp_path, lang):
    """tests/data/dedup: real passages and lightly edited copies (benchmarks/make_dedup_sets.py)."""
    from winnow.eval_dedup import run_eval

    src = REPO / "tests" / "data" / "dedup" / f"{lang}.parquet"
    _, minhash, _ = run_eval(str(src), "minhash", str(tmp_path / "m.parquet"), {"threshold": 0.7})
    _, simhash, _ = run_eval(str(src), "simhash", str(tmp_path / "s.parquet"), {})
    _, exact, _ = run_eval(str(src), "exact", str(tmp_path / "e.parquet"), {})
    assert minhash.f1 >= 0.93 and minhash.precision >= 0.98
    assert simhash.f1 >= 0.85 and simhash.precision >= 0.98
    assert exact.recall < 0.2  # every copy is edited: exact hashing must not find them
