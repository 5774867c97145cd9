"""Precision and recall of the detectors on a labelled set (tests/data/pii/labelled.jsonl).

A found span counts as right when it overlaps a labelled span of the same type (each labelled span
matched once): OCR-broken numbers and trailing extensions make exact bounds a matter of taste, the
type and the place are what matter for redaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


def score(rows: list[dict], find: Callable[[list[str]], dict[int, list]]) -> dict[str, dict[str, float]]:
    """Per type (and `all`): tp, fp, fn, precision, recall. `find` maps texts to spans per row, as the
    stage finds them (`Pii(config).find_spans`)."""
    counts: dict[str, Counter] = {}
    found = find([row["text"] for row in rows])
    for i, row in enumerate(rows):
        gold = [(s["start"], s["end"], s["type"]) for s in row["spans"]]
        used = [False] * len(gold)
        for start, end, kind in found.get(i, []):
            hit = next(
                (i for i, (gs, ge, gk) in enumerate(gold) if not used[i] and gk == kind and gs < end and start < ge),
                None,
            )
            if hit is None:
                counts.setdefault(kind, Counter())["fp"] += 1
            else:
                used[hit] = True
                counts.setdefault(kind, Counter())["tp"] += 1
        for (_, _, kind), matched in zip(gold, used, strict=True):
            if not matched:
                counts.setdefault(kind, Counter())["fn"] += 1
    counts["all"] = sum(counts.values(), Counter())
    return {kind: _rates(c) for kind, c in sorted(counts.items())}


def _rates(c: Counter) -> dict[str, float]:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
    }
