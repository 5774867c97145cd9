"""How the Chinese safety members are trained and chosen: one recipe for the shipped models and for the
benchmark's variants, so what is reported is what ships.

Members: a mined lexicon, fastText on jieba words, and multilingual-e5-small + logistic head (`e5`).
Training data: `SHIPPED_SETS` (COLD train and RTP-LX, licences that allow shipping a model); the benchmark's
`WITH_TOXICN` variant adds ToxiCN's train split and is never shipped (CC BY-NC-ND). Every text of a report
split (COLD dev, ToxiCN test) is removed from training first (`safety_sets.training_set`).
Choices, all by 5-fold cross-validation on training rows (`classifiers/selection.py`): the e5 head's L2
strength, how fastText reads Chinese (jieba words, or single characters with longer n-grams:
`FASTTEXT_CHOICES`), each member's threshold, the combine rule and its weights (a grid, or stacking: logistic
regression over the members' out-of-fold scores). The lexicon keeps the settings it shipped with.
Embedding is the cost (the encoder runs at 1-40 texts/s on a shared 2-core machine, depending on load), so
the e5 head and the cross-validation use at most `E5_CAPS` seeded rows of a training set (`selection_rows`):
COLD train is capped at 8,000 of its 25,629 rows, every other set (ToxiCN's train split included) is used
whole; the lexicon and fastText are then trained on all training rows. The seeded sample of a larger cap
starts with the rows of a smaller one, so raising the cap only adds embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from classifiers.base import Classifier
from classifiers.e5_model import E5Classifier, embed
from classifiers.fasttext_model import FastTextClassifier
from classifiers.lexicon import LexiconClassifier
from classifiers.selection import Selection, best_threshold, check_unseen, fold_ids, out_of_fold, select

SHIPPED_SETS = ["cold-train", "rtplx-hans", "rtplx-hant", "rtplx-benign"]
WITH_TOXICN = SHIPPED_SETS + ["toxicn-train"]
MEMBERS = ("lexicon", "fasttext", "e5")
LEXICON_OPTIONS = {"min_count": 8, "min_precision": 0.9}
E5_C = (1.0, 3.0, 10.0, 30.0)  # inverse L2 strengths tried for the head
FASTTEXT_CHOICES = {"words": {}, "chars": {"tokens": "chars", "wordNgrams": 3}}
E5_CAPS = {"cold-train": 8000}  # rows per training set for the e5 head and cross-validation (`selection_rows`)
FOLDS = 5
SEED = 0
POSITIVE = "offensive or hateful"

Embedder = Callable[[list[str]], np.ndarray]


@dataclass
class Ensemble:
    members: dict[str, Classifier]  # name -> trained on all training rows, card threshold = the chosen one
    selection: Selection
    e5_c: float
    rows: int
    fasttext: str = "words"  # the FASTTEXT_CHOICES entry chosen


def _train(
    kind: str,
    texts: list[str],
    labels: np.ndarray,
    x: np.ndarray | None,
    c: float = 1.0,
    quantize: bool = False,
    fasttext: str = "words",
):
    if kind == "lexicon":
        return LexiconClassifier.train(texts, labels, task="safety", lang="zh", positive=POSITIVE, **LEXICON_OPTIONS)
    if kind == "fasttext":
        return FastTextClassifier.train(
            texts,
            labels,
            task="safety",
            lang="zh",
            positive=POSITIVE,
            quantize=quantize,
            seed=SEED,
            **FASTTEXT_CHOICES[fasttext],
        )
    return E5Classifier.train(texts, labels, task="safety", lang="zh", positive=POSITIVE, c=c, embeddings=x, seed=SEED)


def cross_validate(train: pd.DataFrame, embedder: Embedder, *, log=print) -> tuple[dict[str, np.ndarray], float, str]:
    """Out-of-fold scores of every member on the training rows, the e5 head's chosen C and the fastText
    choice (the `FASTTEXT_CHOICES` entry with the best out-of-fold F1)."""
    texts, labels = train["text"].tolist(), train["label"].to_numpy()
    folds = fold_ids(len(train), FOLDS, SEED, labels)
    x = embedder(texts)
    oof = {}
    tried = [("lexicon", "words")] + [("fasttext", choice) for choice in FASTTEXT_CHOICES]
    best_ft = None
    for kind, choice in tried:
        started = time.perf_counter()
        scores = out_of_fold(
            lambda fit, held, k=kind, ch=choice: _train(
                k, [texts[i] for i in fit], labels[fit], None, fasttext=ch
            ).predict([texts[i] for i in held]),
            labels,
            folds,
        )
        f1 = best_threshold(scores, labels)[1]
        log(f"  {kind} ({choice}): out-of-fold F1 {f1:.4f} ({time.perf_counter() - started:.0f}s)")
        if kind == "lexicon":
            oof[kind] = scores
        elif best_ft is None or f1 > best_ft[0]:
            best_ft = (f1, choice, scores)
    oof["fasttext"], fasttext = best_ft[2], best_ft[1]
    best = None
    for c in E5_C:
        scores = out_of_fold(
            lambda fit, held, c=c: _train("e5", None, labels[fit], x[fit], c).predict_embedded(x[held]), labels, folds
        )
        f1 = best_threshold(scores, labels)[1]
        log(f"  e5 C={c}: out-of-fold F1 {f1:.4f}")
        if best is None or f1 > best[0]:
            best = (f1, c, scores)
    oof["e5"] = best[2]
    return oof, best[1], fasttext


def selection_rows(train: pd.DataFrame) -> pd.DataFrame:
    """At most `E5_CAPS[set]` rows of each training set (seeded sample; uncapped sets whole), in training order."""
    keep = []
    for name, rows in train.groupby("set", sort=True):
        cap = E5_CAPS.get(name, len(rows))
        keep.append(rows.sample(cap, random_state=SEED) if len(rows) > cap else rows)
    return train.loc[sorted(pd.concat(keep).index)].reset_index(drop=True)


def build(train: pd.DataFrame, reports: list[pd.DataFrame], embedder: Embedder = embed, *, log=print) -> Ensemble:
    """Cross-validates, selects, then trains every member on all of `train` with the chosen settings."""
    check_unseen(train, reports)
    chosen = selection_rows(train)
    oof, c, fasttext = cross_validate(chosen, embedder, log=log)
    selection = select(oof, chosen["label"].to_numpy(), chosen["id"].tolist())
    log(
        f"  chosen: thresholds {selection.thresholds}, {selection.combine} (weights {selection.weights}, "
        f"threshold {selection.mean_threshold}), out-of-fold F1 {selection.f1:.4f}"
    )
    members = {}
    for kind in MEMBERS:
        rows = chosen if kind == "e5" else train
        texts, labels = rows["text"].tolist(), rows["label"].to_numpy()
        x = embedder(texts) if kind == "e5" else None
        clf = _train(kind, texts, labels, x, c, quantize=kind == "fasttext", fasttext=fasttext)
        clf.card.threshold = selection.thresholds[kind]
        clf.card.training.update(
            {
                "data": sorted(set(rows["set"])),
                "rows": len(rows),
                "positives": int(labels.sum()),
                "per_set": {k: int(v) for k, v in rows["set"].value_counts().sort_index().items()},
                "selection": f"{FOLDS}-fold cross-validation on {len(chosen):,} training rows only "
                f"(seed {SEED}): threshold, "
                + {"e5": "head C, ", "fasttext": "tokens, "}.get(kind, "")
                + "combine rule",
                "out_of_fold_f1": round(selection.member_f1[kind], 4),
            }
        )
        members[kind] = clf
    return Ensemble(members, selection, c, len(train), fasttext)


def score_members(members: dict[str, Classifier], texts: list[str], embedder: Embedder) -> dict[str, np.ndarray]:
    """Each member's scores; the e5 member's through `embedder` (the same embeddings `predict` computes)."""
    out = {}
    for name, clf in members.items():
        out[name] = clf.predict_embedded(embedder(texts)) if isinstance(clf, E5Classifier) else clf.predict(texts)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}
