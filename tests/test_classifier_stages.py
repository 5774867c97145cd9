"""The quality and safety stages on a real local Ray, and the train/eval commands as users run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import REPO, write_config

from classifiers.metrics import binary_scores
from pipeline.context import gpus_per_task
from pipeline.runner import Runner
from winnow.config import load_config

DATA = REPO / "tests" / "data" / "classifiers"
ENSEMBLE = [
    {"name": "lexicon", "models": {"zh": "safety-zh-lexicon", "en": "safety-en-lexicon"}},
    {"name": "fasttext", "models": {"zh": "safety-zh", "en": "safety-en"}},
    {"name": "minilm", "models": {"zh": "safety-zh-minilm", "en": "safety-en-minilm"}},
]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """600 COLD dev comments (zh) and 900 Davidson tweets (en) with ids, language and 0/1 labels."""
    cold = pd.read_csv(DATA / "cold-dev-600.csv")
    dav = pd.read_csv(DATA / "davidson-balanced-900.csv")
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "id": [f"zh{i}" for i in range(len(cold))],
                    "text": cold["TEXT"],
                    "lang": "zh",
                    "label": cold["label"],
                }
            ),
            pd.DataFrame(
                {
                    "id": [f"en{i}" for i in range(len(dav))],
                    "text": dav["tweet"],
                    "lang": "en",
                    "label": (dav["class"] != 2).astype(int),
                }
            ),
        ],
        ignore_index=True,
    )
    path = tmp_path_factory.mktemp("labelled") / "labelled.parquet"
    frame.to_parquet(path, index=False)
    return path, frame


def _kept_and_rejected(out, folder):
    kept = pads.dataset(str(out / folder), ignore_prefixes=["_", ".", "rejects"]).to_table().to_pandas()
    rejects = (
        pads.dataset(str(out / folder / "rejects")).to_table().to_pandas()
        if (out / folder / "rejects").exists()
        else pd.DataFrame()
    )
    return kept, rejects


def test_quality_and_safety_stages_score_and_drop_with_reasons(ray_local, tmp_path, labelled):
    """Every document gets a quality score per model and a safety score per member; unsafe documents go
    to rejects with a reason naming the members that fired (a majority of three); nothing is lost; and
    the drop decision agrees with the human labels."""
    path, frame = labelled
    spec = {"path": str(path), "source": "labelled", "lang_field": "lang", "url_field": None}
    cfg_path = write_config(
        tmp_path,
        [spec],
        [
            {"name": "quality", "models": [{"name": "fasttext", "models": {"zh": "quality-zh", "en": "quality-en"}}]},
            {"name": "safety", "members": ENSEMBLE, "combine": "majority", "mode": "drop"},
        ],
    )
    cfg = load_config(cfg_path)
    Runner(cfg, progress=False).run_all()
    out = tmp_path / "out"
    kept, rejects = _kept_and_rejected(out, "02_safety")
    assert len(kept) + len(rejects) == len(frame)
    for col in (
        "quality_fasttext",
        "quality",
        "safety_lexicon",
        "safety_fasttext",
        "safety_minilm",
        "safety",
        "unsafe",
    ):
        assert col in kept.columns
    assert kept["quality"].notna().all() and kept["quality"].between(0, 1).all()
    assert not kept["unsafe"].any()
    members = {m["name"] for m in ENSEMBLE}
    for reason in rejects["reason"]:
        assert reason.startswith("unsafe:")
        fired = reason.split(":", 1)[1].split("+")
        assert set(fired) <= members and len(fired) >= 2, reason
    truth = frame.set_index("id")["label"]
    assert truth.index.is_unique
    predicted = pd.Series(truth.index.isin(set(rejects["id"])), index=truth.index)
    for lang, floor in (("zh", 0.80), ("en", 0.85)):
        rows = frame.loc[frame["lang"] == lang, "id"]
        result = binary_scores(truth[rows].to_numpy(), predicted[rows].to_numpy())
        assert result.f1 >= floor, (lang, result)
    stats = json.loads(next((out / "02_safety" / "_stats").glob("*.json")).read_text())
    assert stats["rows_in"] == stats["rows_out"] + stats["rows_rejected"]


def test_combination_rules_order_by_strictness(ray_local, tmp_path, labelled):
    """`any` flags at least what `majority` flags, which flags at least what all three agree on; keep
    mode annotates without dropping."""
    from classifiers.base import ModelCard
    from classifiers.registry import resolve_model

    path, frame = labelled
    spec = {"path": str(path), "source": "labelled", "lang_field": "lang", "url_field": None}
    counts = {}
    for combine in ("any", "majority"):
        (tmp_path / combine).mkdir()
        cfg = load_config(
            write_config(
                tmp_path / combine,
                [spec],
                [
                    {
                        "name": "safety",
                        "members": ENSEMBLE[:2] + [ENSEMBLE[1] | {"name": "fasttext2"}],
                        "combine": combine,
                        "mode": "keep",
                    }
                ],
            )
        )
        Runner(cfg, progress=False).run_all()
        kept, rejects = _kept_and_rejected(tmp_path / combine / "out", "01_safety")
        assert len(kept) == len(frame) and rejects.empty
        counts[combine] = int(kept["unsafe"].sum())
        if combine == "any":
            # thresholds are the cards', per language (chosen by cross-validation)
            card_cut = {
                m["name"]: {x: ModelCard.load(resolve_model(r)).threshold for x, r in m["models"].items()}
                for m in ENSEMBLE[:2]
            }
            cut = {name: kept["lang"].map(by_lang) for name, by_lang in card_cut.items()}
            fired_any = (kept["safety_lexicon"] >= cut["lexicon"]) | (kept["safety_fasttext"] >= cut["fasttext"])
            assert (kept["unsafe"] == fired_any).all()
    assert counts["any"] >= counts["majority"] > 0


def test_model_stage_asks_for_a_gpu_only_when_one_exists(ray_local, tmp_path, labelled):
    """With a BERT member the stage would take one GPU per actor; on a machine without GPUs it runs on
    CPU actors (and a fastText-only stage never asks)."""
    path, _ = labelled
    spec = {"path": str(path), "source": "labelled", "lang_field": "lang", "url_field": None}
    cfg = load_config(
        write_config(
            tmp_path, [spec], [{"name": "safety", "members": ENSEMBLE}, {"name": "quality", "models": [ENSEMBLE[1]]}]
        )
    )
    bert_stage, fasttext_stage = cfg.stages
    assert bert_stage.stage_cls.wants_gpu(bert_stage.config) and not fasttext_stage.stage_cls.wants_gpu(
        fasttext_stage.config
    )
    has_gpu = ray_local.cluster_resources().get("GPU", 0) >= 1
    assert gpus_per_task(bert_stage) == (1 if has_gpu else 0)
    assert gpus_per_task(fasttext_stage) == 0


def test_replacing_a_model_redoes_the_stage(tmp_path):
    """The stage's config hash covers the model files, so a retrained model is not mistaken for the old one."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(REPO / "classifiers" / "models" / "safety-en-lexicon", model)
    spec = {"path": str(DATA / "cold-dev-600.csv"), "source": "x"}
    stage = [{"name": "safety", "members": [{"name": "lexicon", "models": {"en": str(model)}}]}]
    before = load_config(write_config(tmp_path, [spec], stage)).stages[0].config_hash
    with open(model / "lexicon.tsv", "a", encoding="utf-8") as f:
        f.write("mined\tsomenewterm\n")
    after = load_config(write_config(tmp_path, [spec], stage)).stages[0].config_hash
    assert before != after


def _cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "winnow", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_train_then_eval_classifier_commands(tmp_path):
    """`winnow train classifier` writes a model with its held-out scores in the card; `winnow eval
    classifier` reads CSV with id/text/label and writes id/score, printing precision/recall/F1/AUC."""
    model = tmp_path / "ft"
    proc = _cli(
        "train",
        "classifier",
        "--kind",
        "fasttext",
        "--task",
        "safety",
        "--lang",
        "zh",
        "--data",
        str(DATA / "cold-train-2000.csv"),
        "--text-col",
        "TEXT",
        "--eval-data",
        str(DATA / "cold-dev-600.csv"),
        "--out",
        str(model),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((model / "classifier.json").read_text())
    assert card["kind"] == "fasttext" and card["metrics"]["f1"] >= 0.7 and card["training"]["rows"] == 2000
    dev = pd.read_csv(DATA / "cold-dev-600.csv")
    evalset = tmp_path / "dev.csv"
    pd.DataFrame({"id": dev["orig_id"], "text": dev["TEXT"], "label": dev["label"]}).to_csv(evalset, index=False)
    pred = tmp_path / "pred.parquet"
    proc = _cli("eval", "classifier", "--model", str(model), "--input", str(evalset), "--predictions", str(pred))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pq.read_table(pred)
    assert got.column_names == ["id", "score"] and got.num_rows == 600
    f1 = float(proc.stdout.split("F1 ")[1].split()[0])
    assert abs(f1 - card["metrics"]["f1"]) < 1e-3  # the same model on the same rows
    assert "AUC" in proc.stdout
    named = _cli("eval", "classifier", "--model", "safety-zh", "--input", str(evalset), "--predictions", str(pred))
    assert named.returncode == 0 and float(named.stdout.split("F1 ")[1].split()[0]) >= 0.82
    bad = _cli("eval", "classifier", "--model", "safety-xx", "--input", str(evalset), "--predictions", str(pred))
    assert bad.returncode == 2 and "safety-xx" in bad.stderr


def test_eval_safety_command_runs_the_configured_ensemble(tmp_path, labelled):
    """`winnow eval safety` runs the default config's safety stage on Ray over a labelled file and
    prints each member's and the ensemble's scores; the prediction file has id, score, unsafe."""
    path, frame = labelled
    pred = tmp_path / "pred.parquet"
    proc = _cli(
        "eval",
        "safety",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--input",
        str(path),
        "--predictions",
        str(pred),
        "--num-cpus",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pq.read_table(pred).to_pandas()
    assert list(got.columns[:3]) == ["id", "score", "unsafe"] and len(got) == len(frame)
    assert sorted(got["id"]) == sorted(frame["id"])
    for name in ("lexicon", "fasttext", "minilm", "ensemble"):
        assert f"{name}" in proc.stdout
    ensemble_f1 = float(proc.stdout.split("ensemble")[1].split("F1 ")[1].split()[0])
    assert ensemble_f1 >= 0.85
