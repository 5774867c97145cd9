"""The safety ensemble's decision rule, one function used by the stage and by the selection that picks it.

Members score a row (NaN: no model for its language, no vote) and fire at their thresholds. Rules:
- `any`: one member firing is enough (highest recall);
- `majority`: more than half of the members that scored the row fire;
- `weighted_mean`: the weighted mean of the scores that exist reaches `threshold`.
Sharing the function means the rule chosen by cross-validation is exactly the rule that runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RULES = ("any", "majority", "weighted_mean")


def weighted_mean(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Per row, the weighted mean of the members that scored it (NaN = no model); NaN where none did."""
    stacked = np.vstack(scores)
    have = ~np.isnan(stacked)
    w = np.asarray(weights, float)[:, None] * have
    total = (np.where(have, stacked, 0.0) * w).sum(axis=0)
    weight = w.sum(axis=0)
    return np.where(weight > 0, total / np.maximum(weight, 1e-12), np.nan)


def decide(
    scores: Sequence[np.ndarray],
    thresholds: Sequence[float],
    weights: Sequence[float],
    rule: str,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(unsafe, safety = weighted mean, which members fired) for member `scores` (float arrays, NaN = no vote)."""
    if rule not in RULES:
        raise ValueError(f"unknown combine rule {rule!r} (choose from {', '.join(RULES)})")
    fired = [~np.isnan(s) & (np.nan_to_num(s, nan=-1.0) >= t) for s, t in zip(scores, thresholds)]
    voted = np.sum([~np.isnan(s) for s in scores], axis=0)
    count = np.sum(fired, axis=0)
    safety = weighted_mean(scores, weights)
    if rule == "any":
        unsafe = count >= 1
    elif rule == "majority":
        unsafe = (voted > 0) & (count * 2 > voted)
    else:
        unsafe = ~np.isnan(safety) & (np.nan_to_num(safety, nan=-1.0) >= threshold)
    return np.asarray(unsafe, bool), safety, fired
