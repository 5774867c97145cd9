"""The e5 safety member, the cross-validated selection and the report-split guard, on real Chinese data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from classifiers.e5_model import E5Classifier, EmbeddingCache
from classifiers.ensemble import decide
from classifiers.metrics import binary_scores, with_intervals
from classifiers.registry import load_classifier
from classifiers.safety_sets import REPORT_SPLITS, training_set
from classifiers.selection import check_unseen, fold_ids, out_of_fold, select
from tests.conftest import REPO

DATA = REPO / "tests" / "data"


@pytest.fixture(scope="module")
def zh_split():
    """500 COLD train comments + 150 RTP-LX prompts to learn from, 300 COLD dev comments held out."""
    cold = pd.read_csv(DATA / "classifiers" / "cold-train-2000.csv").sample(500, random_state=0)
    rtplx = pd.read_csv(DATA / "safety_zh" / "rtplx_zh-hans-150.csv")
    train = pd.DataFrame(
        {"text": list(cold["TEXT"]) + list(rtplx["text"]), "label": list(cold["label"]) + list(rtplx["label"])}
    )
    held = pd.read_csv(DATA / "classifiers" / "cold-dev-600.csv").sample(300, random_state=0)
    return train, pd.DataFrame({"text": held["TEXT"].tolist(), "label": held["label"].tolist()})


@pytest.fixture(scope="module")
def e5_trained(zh_split, tmp_path_factory):
    train, _ = zh_split
    cache = EmbeddingCache(tmp_path_factory.mktemp("e5-cache"))
    clf = E5Classifier.train(
        train["text"].tolist(), train["label"].to_numpy(), task="safety", lang="zh", positive="offensive"
    )
    return clf, cache


def test_e5_member_learns_chinese_offensive_language(zh_split, e5_trained):
    """A head on multilingual-e5-small embeddings, trained on 650 real rows, separates offensive from
    inoffensive COLD dev comments it never saw far better than chance (all-positive would give F1 0.67
    and AUC 0.5)."""
    _, held = zh_split
    clf, _ = e5_trained
    scores = clf.predict(held["text"].tolist())
    result = binary_scores(held["label"], scores >= clf.card.threshold, scores)
    assert result.auc >= 0.78 and result.f1 >= 0.70 and result.accuracy >= 0.70, result


def test_e5_save_load_scores_identically(zh_split, e5_trained, tmp_path):
    """The saved model is a card and a few-KB head (no encoder, no pickle); loaded by path it scores the
    same texts exactly as the trained one, and scores from cached embeddings are the same numbers."""
    _, held = zh_split
    clf, cache = e5_trained
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["classifier.json", "head.safetensors"]
    assert (tmp_path / "m" / "head.safetensors").stat().st_size < 4096
    card = json.loads((tmp_path / "m" / "classifier.json").read_text())
    assert card["kind"] == "e5" and card["settings"]["max_chars"] == 512
    loaded = load_classifier(tmp_path / "m")
    texts = held["text"].tolist()[:40]
    assert np.array_equal(loaded.predict(texts), clf.predict(texts))
    assert np.array_equal(loaded.predict_embedded(cache(texts)), clf.predict(texts))


def test_e5_member_runs_in_the_safety_stage(e5_trained, tmp_path):
    """A safety stage whose member is an e5 model (by path, Chinese only) scores Chinese rows exactly as
    the model's predict does, leaves English rows without a vote, and uses the card's threshold."""
    from stages.safety import Safety, SafetyConfig

    clf, _ = e5_trained
    clf.card.threshold = 0.42
    clf.save(tmp_path / "e5")
    config = SafetyConfig(
        members=[{"name": "e5", "models": {"zh": str(tmp_path / "e5")}}], combine="majority", mode="keep"
    )
    texts = ["你这个傻逼，滚出去", "今天天气很好，我们去公园散步吧。", "what a lovely day"]
    table = pa.table({"id": ["a", "b", "c"], "text": texts, "lang": ["zh", "zh", "en"]})
    out = Safety(config)(table).table
    got = out.column("safety_e5").to_pylist()
    assert np.allclose(got[:2], clf.predict(texts[:2])) and got[2] is None
    assert out.column("unsafe").to_pylist() == [got[0] >= 0.42, got[1] >= 0.42, False]


def _fake_shared(tmp_path):
    """A shared-data folder built from the test files: COLD train and dev samples, RTP-LX samples, and a
    stand-in ToxiCN file (COLD dev rows: ToxiCN itself may not be copied) whose test split repeats three
    COLD train texts, as the real sets share texts."""
    cold_train = pd.read_csv(DATA / "classifiers" / "cold-train-2000.csv")
    cold_dev = pd.read_csv(DATA / "classifiers" / "cold-dev-600.csv")
    (tmp_path / "safety" / "zh").mkdir(parents=True)
    (tmp_path / "safety" / "zh-extra").mkdir()
    cold_train.to_csv(tmp_path / "safety" / "zh" / "cold-train.csv", index=False)
    cold_dev.iloc[:300].to_csv(tmp_path / "safety" / "zh" / "cold-dev.csv", index=False)
    stand_in = pd.DataFrame(
        {
            "text": list(cold_dev["TEXT"].iloc[300:]) + list(cold_train["TEXT"].iloc[:3]),
            "label": list(cold_dev["label"].iloc[300:]) + list(cold_train["label"].iloc[:3]),
        }
    )
    stand_in["split"] = ["train"] * 150 + ["test"] * (len(stand_in) - 150)
    stand_in["topic"], stand_in["platform"] = "race", "zhihu"
    stand_in.to_csv(tmp_path / "safety" / "zh-extra" / "toxicn.csv", index=False)
    for name in ("rtplx_zh-hans", "rtplx_zh-hant", "rtplx_zh-hans_benign"):
        pd.read_csv(DATA / "safety_zh" / f"{name}-150.csv").to_csv(
            tmp_path / "safety" / "zh-extra" / f"{name}.csv", index=False
        )
    return tmp_path, cold_train["TEXT"].iloc[:3].tolist()


def test_selection_never_sees_a_report_split(tmp_path):
    """Training rows exclude every text of a report split (COLD dev, ToxiCN test), even one that is also
    in COLD train; report splits and unshippable sets are refused outright; and the ids selection was
    computed on are all training ids, none from a report split."""
    from classifiers.lexicon import LexiconClassifier
    from classifiers.safety_sets import report_set

    shared, shared_texts = _fake_shared(tmp_path)
    train = training_set(shared, ["cold-train", "rtplx-hans", "rtplx-hant", "rtplx-benign"], ship=True)
    reports = [report_set(shared, s) for s in REPORT_SPLITS]
    report_ids = set().union(*(set(r["id"]) for r in reports))
    report_texts = set().union(*(set(r["text"]) for r in reports))
    assert not set(train["id"]) & report_ids and not set(train["text"]) & report_texts
    assert not set(shared_texts) & set(train["text"])  # in COLD train, but also in the (stand-in) ToxiCN test split
    assert train["id"].str.startswith(("cold-train:", "rtplx-")).all()
    with pytest.raises(ValueError, match="report splits"):
        training_set(shared, ["cold-train", "cold-dev"], ship=False)
    with pytest.raises(ValueError, match="may not be trained on toxicn-train"):
        training_set(shared, ["cold-train", "toxicn-train"], ship=True)
    with pytest.raises(ValueError, match="report split"):
        check_unseen(pd.concat([train, reports[0].iloc[:1]]), reports)

    check_unseen(train, reports)
    texts, labels = train["text"].tolist(), train["label"].to_numpy()
    folds = fold_ids(len(train), 3, 0, labels)
    seen: set[str] = set()

    def fit_score(fit, held):
        seen.update(train["id"].iloc[np.concatenate([fit, held])])
        clf = LexiconClassifier.train(
            [texts[i] for i in fit], labels[fit], task="safety", lang="zh", positive="offensive", min_count=3
        )
        return clf.predict([texts[i] for i in held])

    oof = {
        "lexicon": out_of_fold(fit_score, labels, folds),
        "length": np.array([min(1.0, len(t) / 200) for t in texts]),
    }
    selection = select(oof, labels, train["id"].tolist())
    assert seen == set(train["id"]) and set(selection.seen_ids) == set(train["id"])
    assert not set(selection.seen_ids) & report_ids
    assert (
        selection.combine in ("any", "majority", "weighted_mean") and 0.05 <= selection.thresholds["lexicon"] <= 0.95
    )


def test_selection_picks_the_rule_with_the_best_out_of_fold_f1():
    """With one informative member and one random member, selection keeps the informative one's
    threshold near its best cut and chooses the rule whose F1 is the best of all candidates it tried: one
    that nearly matches the informative member alone (the noise is outvoted or outweighed)."""
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.5).astype(int)
    good = np.clip(0.35 * labels + 0.65 * rng.random(2000), 0, 1)
    oof = {"good": good, "noise": rng.random(2000)}
    selection = select(oof, labels, [str(i) for i in range(2000)])
    assert selection.f1 == max(c["f1"] for c in selection.candidates)
    assert selection.f1 >= selection.member_f1["good"] - 0.03
    if selection.combine == "weighted_mean":
        assert selection.weights["good"] > selection.weights["noise"]
    assert 0.25 <= selection.thresholds["good"] <= 0.7


def test_decide_rules_and_missing_votes():
    """`any` fires on one member; `majority` counts only members that scored the row (NaN: no model);
    `weighted_mean` uses the weights and the stage threshold; thresholds may differ per row (per language)."""
    a = np.array([0.9, 0.1, 0.9, np.nan])
    b = np.array([0.1, 0.1, 0.9, 0.9])
    c = np.array([0.1, np.nan, 0.1, np.nan])
    cuts = [0.5, 0.5, np.array([0.5, 0.5, 0.05, 0.5])]
    assert decide([a, b, c], cuts, [1, 1, 1], "any")[0].tolist() == [True, False, True, True]
    assert decide([a, b, c], cuts, [1, 1, 1], "majority")[0].tolist() == [False, False, True, True]
    unsafe, mean, _ = decide([a, b], [0.5, 0.5], [3, 1], "weighted_mean", 0.6)
    assert unsafe.tolist() == [True, False, True, True] and np.isclose(mean[0], 0.7)


def test_bootstrap_intervals_are_seeded_and_contain_the_figure():
    """The interval is reproducible (seeded), brackets the point figure, and narrows with more rows."""
    rng = np.random.default_rng(1)

    def run(n):
        y = rng.random(n) < 0.5
        s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
        return y, s

    y, s = run(600)
    first, again = with_intervals(y, s >= 0.5, s), with_intervals(y, s >= 0.5, s)
    assert first.intervals == again.intervals
    for metric in ("precision", "recall", "f1", "auc"):
        low, high = first.intervals[metric]
        assert low <= getattr(first, metric) <= high
    y2, s2 = run(6000)
    wide, narrow = first.intervals["f1"], with_intervals(y2, s2 >= 0.5, s2).intervals["f1"]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_fasttext_on_chinese_characters_learns_round_trips_and_reads_characters(zh_split, tmp_path):
    """`tokens="chars"` reads Chinese as single characters (no jieba), Latin words stay whole; trained on 650
    real rows it beats chance far on 300 unseen COLD dev comments, and the saved quantised model scores
    exactly as the trained one."""
    from classifiers.fasttext_model import FastTextClassifier, _lines

    assert _lines(["你这个 SB，滚"], "zh", None, "chars") == ["你 这 个 sb， 滚"]
    assert _lines(["你这个 SB，滚"], "zh", None, "words") != _lines(["你这个 SB，滚"], "zh", None, "chars")
    with pytest.raises(ValueError, match="unknown fastText tokens"):
        _lines(["x"], "zh", None, "pinyin")
    train, held = zh_split
    clf = FastTextClassifier.train(
        train["text"].tolist(),
        train["label"].to_numpy(),
        task="safety",
        lang="zh",
        positive="offensive",
        tokens="chars",
        wordNgrams=3,
        quantize=True,
    )
    scores = clf.predict(held["text"].tolist())
    result = binary_scores(held["label"], scores >= 0.5, scores)
    assert result.auc >= 0.75 and result.f1 >= 0.68, result
    clf.save(tmp_path / "ft")
    loaded = load_classifier(tmp_path / "ft")
    assert loaded.card.settings["tokens"] == "chars"
    assert np.array_equal(loaded.predict(held["text"].tolist()), scores)


def test_stacked_weights_favour_the_informative_member_and_are_a_candidate():
    """Stacking (logistic regression over out-of-fold scores) gives an informative member more weight than a
    weak one and a random one none to speak of; its weights are among the weighted-mean candidates, and the
    chosen rule is still the best candidate."""
    from classifiers.selection import stacked_weights

    rng = np.random.default_rng(2)
    labels = (rng.random(3000) < 0.5).astype(int)
    oof = {
        "good": np.clip(0.45 * labels + 0.55 * rng.random(3000), 0, 1),
        "weak": np.clip(0.15 * labels + 0.85 * rng.random(3000), 0, 1),
        "noise": rng.random(3000),
    }
    weights = stacked_weights(oof, labels)
    assert weights["good"] > weights["weak"] > weights["noise"] and weights["noise"] < 0.2
    assert abs(sum(weights.values()) - 3) < 0.01
    selection = select(oof, labels, [str(i) for i in range(3000)])
    assert selection.f1 == max(c["f1"] for c in selection.candidates)
    assert selection.f1 >= selection.member_f1["good"] - 0.01


def test_e5_rows_cap_only_cold_and_grow_by_prefix(tmp_path, monkeypatch):
    """The e5 head's rows: COLD train capped (a seeded sample), every other set whole; a larger cap keeps
    every row of a smaller one, so raising it only adds embeddings."""
    from classifiers import safety_zh

    shared, _ = _fake_shared(tmp_path)
    train = training_set(shared, ["cold-train", "rtplx-hans", "rtplx-hant", "rtplx-benign"], ship=True)
    monkeypatch.setattr(safety_zh, "E5_CAPS", {"cold-train": 300})
    small = safety_zh.selection_rows(train)
    monkeypatch.setattr(safety_zh, "E5_CAPS", {"cold-train": 900})
    large = safety_zh.selection_rows(train)
    counts = small["set"].value_counts()
    assert counts["cold-train"] == 300 and large["set"].value_counts()["cold-train"] == 900
    for name in ("rtplx-hans", "rtplx-hant", "rtplx-benign"):
        assert counts[name] == (train["set"] == name).sum()
    assert set(small["id"]) < set(large["id"])
