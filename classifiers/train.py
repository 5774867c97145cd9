"""`winnow train classifier`: fit one classifier on labelled files, score it on a held-out part, save.

The held-out part (`holdout`, default 10%, stratified, seeded) is never seen by training; its scores
go into the card, so every saved model says how well it did and on what. With `eval_data` the
held-out part is that file instead (e.g. COLD's dev split).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.base import TASKS, Classifier
from classifiers.data import Labelled, load_labelled, split_holdout
from classifiers.metrics import BinaryScores, binary_scores
from classifiers.registry import KINDS

POSITIVE_MEANING = {
    "quality": "reference-like text (Wikipedia, abstracts, refined corpora)",
    "safety": "offensive or hateful",
}


def _concat(parts: Sequence[Labelled]) -> Labelled:
    ids, texts, labels = [], [], []
    for p in parts:
        ids += [f"{Path(p.source).name}:{i}" for i in p.ids]
        texts += p.texts
        labels.append(p.labels)
    return Labelled(
        ids, texts, np.concatenate(labels), None, ",".join(p.source for p in parts), sum(p.empty_rows for p in parts)
    )


def train_classifier(
    kind: str,
    task: str,
    lang: str | None,
    data: Sequence[str],
    out: str | Path,
    *,
    eval_data: str | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    text_col: str | None = None,
    label_col: str | None = None,
    positive: Sequence[str] | None = None,
    options: dict | None = None,
    log=print,
) -> tuple[Classifier, BinaryScores]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (choose from {', '.join(KINDS)})")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    load = lambda p: load_labelled(p, text_col=text_col, label_col=label_col, positive=positive, require_labels=True)  # noqa: E731
    everything = _concat([load(p) for p in data])
    keep = np.array([bool(t.strip()) for t in everything.texts])
    if (~keep).any():
        log(f"left out {int((~keep).sum())} rows without text")
    everything = everything.subset(np.flatnonzero(keep))
    if eval_data:
        held = load(eval_data)
        held_texts = set(held.texts)
        train = everything.subset(
            np.array([i for i, t in enumerate(everything.texts) if t not in held_texts], dtype=int)
        )
        if len(train) < len(everything):
            log(f"left out {len(everything) - len(train)} training rows whose text is also in {eval_data}")
    else:
        train_rows, held_rows = split_holdout(len(everything), holdout, seed, everything.labels)
        train, held = everything.subset(train_rows), everything.subset(held_rows)
    log(
        f"training {kind} ({task}, {lang or 'any language'}) on {len(train):,} rows ({int(train.labels.sum()):,} positive); "
        f"held out {len(held):,}"
    )
    started = time.perf_counter()
    options = dict(options or {})
    clf = KINDS[kind].train(
        train.texts, train.labels, task=task, lang=lang, positive=POSITIVE_MEANING[task], **options
    )
    seconds = time.perf_counter() - started
    scores = clf.predict(held.texts)
    result = binary_scores(held.labels, scores >= clf.card.threshold, scores)
    clf.card.training.update(
        {
            "data": [Path(p).name for p in data],
            "rows": len(train),
            "positives": int(train.labels.sum()),
            "held_out": eval_data and Path(eval_data).name or f"{holdout:.0%} stratified, seed {seed}",
            "seed": seed,
            "seconds": round(seconds, 1),
        }
    )
    clf.card.metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.as_dict().items()}
    clf.save(out)
    log(f"held-out: {result.line()}")
    log(f"saved to {out} in {seconds:.1f} s")
    return clf, result
