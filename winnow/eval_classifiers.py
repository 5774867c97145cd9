"""`winnow eval classifier` and `winnow eval safety`: scores of a model, or of the configured safety
ensemble, on a labelled file.

`eval classifier` loads one model in this process and scores the file in batches. `eval safety` goes
through the real pipeline path (ingest, then the config's `safety` stage on Ray in keep mode), so
what is measured is what runs: every member, the combination rule and the thresholds of the config.
Every figure of `eval safety` carries a 95% bootstrap interval (1,000 resamples, seeded): a point of F1
on a few thousand rows is within sampling noise, and the interval says so.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from classifiers.data import load_labelled
from classifiers.metrics import BinaryScores, binary_scores, with_intervals
from classifiers.registry import load_classifier
from stages.model_members import member_threshold
from winnow.eval_run import run_stage_on_file, stage_settings, write_predictions


@dataclass
class EvalResult:
    predictions: pa.Table
    overall: BinaryScores | None
    members: dict[str, BinaryScores]


def eval_classifier(
    model: str,
    input_path: str,
    predictions: str,
    *,
    threshold: float | None = None,
    batch_size: int = 4096,
    device: str = "auto",
    text_col=None,
    label_col=None,
    positive=None,
    progress=None,
) -> EvalResult:
    clf = load_classifier(model, device=device)
    data = load_labelled(input_path, text_col=text_col, label_col=label_col, positive=positive)
    scores = np.zeros(len(data), np.float32)
    for start in range(0, len(data), batch_size):
        scores[start : start + batch_size] = clf.predict(data.texts[start : start + batch_size])
        if progress is not None:
            progress(min(len(data), start + batch_size))
    table = pa.table({"id": pa.array(data.ids, pa.string()), "score": pa.array(scores, pa.float32())})
    write_predictions(table, predictions)
    cut = clf.card.threshold if threshold is None else threshold
    overall = binary_scores(data.labels, scores >= cut, scores) if data.labels is not None else None
    return EvalResult(table, overall, {})


def eval_safety(
    config: str,
    input_path: str,
    predictions: str,
    *,
    lang: str | None = None,
    text_col=None,
    label_col=None,
    positive=None,
    workers: int | None = None,
    rows_per_shard: int = 5_000,
    work_dir: str | None = None,
    console=None,
) -> EvalResult:

    settings = stage_settings(config, "safety")
    if "members" not in settings:
        raise ValueError(f"{config}: no `safety` stage (with `members`) in it")
    data = load_labelled(input_path, text_col=text_col, label_col=label_col, positive=positive)
    langs = [lang] * len(data) if lang is not None or data.langs is None else data.langs
    if any(x is None for x in langs):
        raise ValueError(f"{input_path}: rows need a language for the members' models: give a `lang` column or --lang")
    owned = work_dir is None
    work = Path(work_dir or tempfile.mkdtemp(prefix="winnow-eval-safety-"))
    work.mkdir(parents=True, exist_ok=True)
    staged = work / "input.parquet"
    pq.write_table(pa.table({"id": data.ids, "text": data.texts, "lang": langs}), staged)
    members = [m["name"] for m in settings["members"]]
    got, _, runner = run_stage_on_file(
        staged,
        {"name": "safety", **settings, "mode": "keep", "remove_lines": False},  # judge each text whole
        work,
        lang_field="lang",
        columns=["id", "safety", "unsafe"] + [f"safety_{m}" for m in members],
        workers=workers,
        rows_per_shard=rows_per_shard,
        console=console,
    )
    index = {k: i for i, k in enumerate(got.column("id").to_pylist())}
    missing = [k for k in data.ids if k not in index]
    if missing:  # ingest rejects rows without text; they are reported, not silently scored
        raise ValueError(
            f"{input_path}: {len(missing)} rows did not reach the safety stage (e.g. id {missing[0]}: empty text?)"
        )
    rows = pa.array([index[k] for k in data.ids])
    columns = {
        "id": pa.array(data.ids, pa.string()),
        "score": got.column("safety").take(rows),
        "unsafe": got.column("unsafe").take(rows),
    }
    for name in members:
        columns[f"safety_{name}"] = got.column(f"safety_{name}").take(rows)
    table = pa.table(columns)
    write_predictions(table, predictions)
    if owned:
        shutil.rmtree(work, ignore_errors=True)
    if data.labels is None:
        return EvalResult(table, None, {})
    score = np.nan_to_num(table.column("score").to_numpy(zero_copy_only=False).astype(float))
    overall = with_intervals(data.labels, table.column("unsafe").to_numpy(zero_copy_only=False), score)
    per_member = {}
    for member in runner.cfg.stages[0].config.members:
        raw = table.column(f"safety_{member.name}").to_numpy(zero_copy_only=False).astype(float)
        have = ~np.isnan(raw)  # a member without a model for a row's language does not vote on it
        if not have.any():
            continue
        cuts = {x: member_threshold(member, x) for x in set(langs)}  # thresholds are per language
        cut = np.array([cuts[x] for x in langs])
        per_member[member.name] = with_intervals(data.labels[have], raw[have] >= cut[have], raw[have])
    return EvalResult(table, overall, per_member)
