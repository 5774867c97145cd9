"""The shipped quality models on real held-out text: reference text above crawl pages, and the recipe
that trains them (split by site, chunks of similar length on both sides, save and load)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from classifiers.fasttext_model import FastTextClassifier
from classifiers.registry import load_classifier
from tests.conftest import REPO
from winnow import quality_sets as qs

DATA = REPO / "tests" / "data" / "quality"


def heldout(lang: str) -> list[qs.Doc]:
    with gzip.open(DATA / f"heldout-{lang}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [qs.Doc(r["text"], r["source"], f"row:{i}", r["label"]) for i, r in enumerate(rows)]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_shipped_quality_model_scores_held_out_reference_text_above_crawl_pages(lang):
    """Pages and paragraphs of the held-out split (never trained on): reference text ranks above real
    crawl text (web pages, Q&A, CCNet, spam), and the crawl pages' scores are spread, not all at one end."""
    docs = heldout(lang)
    labels = np.array([d.label for d in docs])
    scores = load_classifier(f"quality-{lang}").predict([d.text for d in docs])
    assert roc_auc_score(labels, scores) >= 0.9
    assert np.median(scores[labels == 1]) > np.median(scores[labels == 0]) + 0.3
    crawl = scores[labels == 0]
    assert np.percentile(crawl, 90) - np.percentile(crawl, 10) >= 0.2  # the weights stage gets a signal
    assert (crawl < 0.9).mean() >= 0.7  # unlike a reference-vs-tweets model, crawl pages are not all ~1.0


def test_split_holds_out_whole_sites_and_is_fixed():
    docs = [qs.Doc(f"page {i}", "en-pages", f"site:example{i % 40}.com", 0) for i in range(400)]
    train, held = qs.split(docs)
    assert {d.group for d in train}.isdisjoint({d.group for d in held})
    assert 0.05 < len(held) / len(docs) < 0.4
    assert qs.split(docs) == (train, held)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_training_rows_are_balanced_chunks_of_similar_length(lang):
    """Both sides are cut into chunks at sentence ends; crawl pages give at most a few chunks each, and
    the crawl side is sampled down to the size of the reference side, so the model cannot learn length."""
    docs = heldout(lang)
    rows = qs.training_rows(docs, lang)
    pos = [len(t) for t, y in rows if y == 1]
    neg = [len(t) for t, y in rows if y == 0]
    assert len(pos) == len(neg) > 10
    assert 0.6 < np.median(pos) / np.median(neg) < 1.6
    for text, _ in rows[:20]:
        assert qs.CHUNK_CHARS[lang] // 3 <= len(text) <= 3 * qs.CHUNK_CHARS[lang]
    per_doc = qs.chunk_rows([d for d in docs if d.label == 0], lang, per_doc=qs.MAX_CHUNKS_PER_DOC)
    assert len(per_doc) <= qs.MAX_CHUNKS_PER_DOC * sum(d.label == 0 for d in docs)


def test_quality_recipe_trains_saves_and_loads_to_identical_scores(tmp_path):
    """The recipe's rows and settings train a fastText model that separates the sides it learned; the
    saved model, and a shipped model saved again, score every text exactly as before."""
    docs = heldout("en")
    rows = qs.training_rows(docs, "en")
    model = FastTextClassifier.train(
        [t for t, _ in rows], [y for _, y in rows], task="quality", lang="en", positive="reference", **qs.PARAMS["en"]
    )
    texts = [d.text for d in docs]
    scores = model.predict(texts)
    assert roc_auc_score([d.label for d in docs], scores) > 0.8
    model.save(tmp_path / "q")
    np.testing.assert_array_equal(load_classifier(tmp_path / "q").predict(texts), scores)
    shipped = load_classifier("quality-en")
    shipped.save(tmp_path / "shipped")
    np.testing.assert_array_equal(load_classifier(tmp_path / "shipped").predict(texts), shipped.predict(texts))
