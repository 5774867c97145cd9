"""Binary classification scores: precision, recall and F1 of the positive class, and ROC AUC."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass
class BinaryScores:
    precision: float
    recall: float
    f1: float
    auc: float | None  # None when only one class is present
    accuracy: float
    support: int  # positives in the truth
    rows: int

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        auc = f"{self.auc:.4f}" if self.auc is not None else "n/a"
        return (f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  AUC {auc}  "
                f"accuracy {self.accuracy:.4f}  ({self.support:,} positive of {self.rows:,})")


def binary_scores(truth, predicted, scores=None) -> BinaryScores:
    truth = np.asarray(truth, bool)
    predicted = np.asarray(predicted, bool)
    tp = int(np.sum(truth & predicted))
    precision = tp / max(1, int(predicted.sum()))
    recall = tp / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = None
    if scores is not None and 0 < truth.sum() < len(truth):
        auc = float(roc_auc_score(truth, np.asarray(scores, np.float64)))
    return BinaryScores(precision, recall, f1, auc, float(np.mean(truth == predicted)) if len(truth) else 0.0, int(truth.sum()), len(truth))
