"""Choosing an ensemble without peeking: thresholds, head strength and the combine rule from cross-validation
on the training data only.

Each member is trained `folds` times on the other folds and scores the fold it did not see, which gives one
out-of-fold score per training row: what the member does on text it was not trained on, without touching any
report split. From those scores:
- each member's threshold is the one with the best out-of-fold F1 (on a 0.05..0.95 grid, so a lucky
  score between two rows is never picked);
- the combine rule (any, majority, weighted mean with weights and threshold from small grids) is the one
  with the best out-of-fold F1 of the ensemble, computed by `classifiers.ensemble.decide`, the stage's own
  function. One more weighted-mean candidate is stacking (`stacked_weights`): a logistic regression over the
  members' out-of-fold scores, whose coefficients, scaled to sum to the number of members, are weights the
  stage's weighted mean can run as they are (a linear stack with a threshold is a weighted mean with one).
`check_unseen` refuses training rows whose id or text belongs to a report split, and every `Selection`
records the ids it was computed on, so a test can check that no report row was ever seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classifiers.ensemble import decide
from classifiers.metrics import binary_scores

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)
WEIGHTS = (0.5, 1.0, 2.0)
MEAN_THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.02), 2)


@dataclass
class Selection:
    thresholds: dict[str, float]  # member -> threshold
    member_f1: dict[str, float]  # member -> out-of-fold F1 at its threshold
    combine: str
    weights: dict[str, float]
    mean_threshold: float  # for weighted_mean
    f1: float  # out-of-fold F1 of the chosen ensemble
    candidates: list[dict] = field(default_factory=list)  # every rule tried, with its out-of-fold F1
    seen_ids: list[str] = field(default_factory=list)  # the rows selection was computed on

    def stage_settings(self) -> dict:
        """The safety stage's `combine` and `threshold`; member weights go on the members (`weight`) and
        member thresholds into the model cards."""
        return {"combine": self.combine, "threshold": self.mean_threshold}


def check_unseen(train: pd.DataFrame, reports: Sequence[pd.DataFrame]) -> None:
    """Raises if a training row is (by id or by text) a row of a report split."""
    for report in reports:
        by_id = set(train["id"]) & set(report["id"])
        by_text = set(train["text"]) & set(report["text"])
        if by_id or by_text:
            example = next(iter(by_id or by_text))
            raise ValueError(
                f"{len(by_id | by_text)} training rows belong to a report split (e.g. {example!r}): "
                "report splits are never trained or selected on"
            )


def fold_ids(n: int, folds: int, seed: int, labels: np.ndarray) -> np.ndarray:
    """A fold number per row, stratified by label and seeded."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n, int)
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        out[rows] = np.arange(len(rows)) % folds
    return out


def out_of_fold(
    fit_score: Callable[[np.ndarray, np.ndarray], np.ndarray], labels: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Out-of-fold scores: `fit_score(train_rows, score_rows)` trains on the first rows, scores the second."""
    scores = np.full(len(labels), np.nan)
    for fold in np.unique(folds):
        held = np.flatnonzero(folds == fold)
        scores[held] = fit_score(np.flatnonzero(folds != fold), held)
    return scores


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) with the best F1 on the grid; ties go to the threshold nearest 0.5."""
    best = (-1.0, 0.5)
    for t in sorted(THRESHOLDS, key=lambda t: abs(t - 0.5)):
        f1 = binary_scores(labels, scores >= t).f1
        if f1 > best[0] + 1e-9:
            best = (f1, float(t))
    return best[1], best[0]


def stacked_weights(oof: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Logistic-regression weights over the members' out-of-fold scores (negative ones clipped to 0, since a
    member that counts against offensiveness makes no sense), scaled to sum to the number of members."""
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([oof[n] for n in oof])
    coef = np.clip(LogisticRegression(C=1.0, max_iter=1000).fit(x, labels).coef_[0], 0.0, None)
    if coef.sum() <= 0:
        coef = np.ones(len(oof))
    return {n: round(float(c * len(oof) / coef.sum()), 3) for n, c in zip(oof, coef)}


def select(oof: dict[str, np.ndarray], labels: np.ndarray, ids: Sequence[str]) -> Selection:
    """Member thresholds and the combine rule with the best out-of-fold F1 (see the module docstring)."""
    names = list(oof)
    thresholds, member_f1 = {}, {}
    for name in names:
        thresholds[name], member_f1[name] = best_threshold(oof[name], labels)
    scores = [oof[n] for n in names]
    cuts = [thresholds[n] for n in names]
    candidates = []
    for rule in ("any", "majority"):
        unsafe, _, _ = decide(scores, cuts, [1.0] * len(names), rule)
        candidates.append(
            {
                "combine": rule,
                "weights": dict.fromkeys(names, 1.0),
                "threshold": 0.5,
                "f1": binary_scores(labels, unsafe).f1,
            }
        )
    grid = [w for w in itertools.product(WEIGHTS, repeat=len(names)) if len(set(w)) > 1 or w[0] == 1.0]
    stacked = stacked_weights(oof, labels)
    for weights in [*grid, tuple(stacked[n] for n in names)]:
        _, mean, _ = decide(scores, cuts, weights, "any")
        for t in MEAN_THRESHOLDS:
            candidates.append(
                {
                    "combine": "weighted_mean",
                    "weights": dict(zip(names, weights)),
                    "threshold": float(t),
                    "f1": binary_scores(labels, mean >= t).f1,
                }
            )
    best = max(candidates, key=lambda c: c["f1"] + 1e-6 * (c["combine"] == "majority"))  # majority on a tie: simplest
    return Selection(
        thresholds,
        member_f1,
        best["combine"],
        best["weights"],
        best["threshold"],
        best["f1"],
        sorted(candidates, key=lambda c: -c["f1"])[:20],
        list(ids),
    )
