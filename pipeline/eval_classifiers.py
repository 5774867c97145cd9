"""`winnow eval classifier` and `winnow eval safety`: scores of a model, or of the configured safety
ensemble, on a labelled file.

`eval classifier` loads one model in this process and scores the file in batches. `eval safety` goes
through the real pipeline path (ingest, then the config's `safety` stage on Ray in keep mode), so
what is measured is what runs: every member, the combination rule and the thresholds of the config.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import yaml

from classifiers.data import Labelled, load_labelled
from classifiers.metrics import BinaryScores, binary_scores


@dataclass
class EvalResult:
    predictions: pa.Table
    overall: BinaryScores | None
    members: dict[str, BinaryScores]


def _write(table: pa.Table, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def eval_classifier(model: str, input_path: str, predictions: str, *, threshold: float | None = None, batch_size: int = 4096,
                    device: str = "auto", text_col=None, label_col=None, positive=None, progress=None) -> EvalResult:
    from classifiers.registry import load_classifier

    clf = load_classifier(model, device=device)
    data = load_labelled(input_path, text_col=text_col, label_col=label_col, positive=positive)
    scores = np.zeros(len(data), np.float32)
    for start in range(0, len(data), batch_size):
        scores[start:start + batch_size] = clf.predict(data.texts[start:start + batch_size])
        if progress is not None:
            progress(min(len(data), start + batch_size))
    table = pa.table({"id": pa.array(data.ids, pa.string()), "score": pa.array(scores, pa.float32())})
    _write(table, predictions)
    cut = clf.card.threshold if threshold is None else threshold
    overall = binary_scores(data.labels, scores >= cut, scores) if data.labels is not None else None
    return EvalResult(table, overall, {})


def safety_settings(config: str | Path) -> dict:
    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    stages = data.get("stages", [data]) if isinstance(data, dict) else []
    matches = [s for s in stages if isinstance(s, dict) and s.get("name", "safety") == "safety" and "members" in s]
    if not matches:
        raise ValueError(f"{config}: no `safety` stage (with `members`) in it")
    return {k: v for k, v in matches[0].items() if k != "name"}


def eval_safety(config: str, input_path: str, predictions: str, *, lang: str | None = None, text_col=None, label_col=None,
                positive=None, workers: int | None = None, rows_per_shard: int = 5_000, work_dir: str | None = None, console=None) -> EvalResult:
    from pipeline.config import load_config
    from pipeline.runner import Runner, ensure_ray

    settings = safety_settings(config)
    data = load_labelled(input_path, text_col=text_col, label_col=label_col, positive=positive)
    langs = data.langs if data.langs is not None else [lang] * len(data)
    if lang is not None:
        langs = [lang] * len(data)
    if any(x is None for x in langs):
        raise ValueError(f"{input_path}: rows need a language for the members' models: give a `lang` column or --lang")
    owned = work_dir is None
    work = Path(work_dir or tempfile.mkdtemp(prefix="winnow-eval-safety-"))
    work.mkdir(parents=True, exist_ok=True)
    staged = work / "input.parquet"
    pq.write_table(pa.table({"id": data.ids, "text": data.texts, "lang": langs}), staged)
    spec = {"path": str(staged), "source": "eval", "format": "parquet", "id_field": "id", "text_field": "text", "url_field": None, "lang_field": "lang"}
    cfg_path = work / "eval.yaml"
    cfg_path.write_text(yaml.safe_dump({"input": [spec], "output": str(work / "out"), "ingest": {"rows_per_shard": rows_per_shard},
                                        "stages": [{"name": "safety", **settings, "mode": "keep"}]}), encoding="utf-8")
    cfg = load_config(cfg_path)
    ensure_ray(cfg.pipeline.ray)
    Runner(cfg, workers=workers, console=console, progress=console is not None).run_all()
    got = pads.dataset(str(work / "out" / cfg.stages[0].folder), ignore_prefixes=["_", ".", "rejects"]).to_table()
    members = [m["name"] for m in settings["members"]]
    index = {k: i for i, k in enumerate(got.column("id").to_pylist())}
    missing = [k for k in data.ids if k not in index]
    if missing:  # ingest rejects rows without text; they are reported, not silently scored
        raise ValueError(f"{input_path}: {len(missing)} rows did not reach the safety stage (e.g. id {missing[0]}: empty text?)")
    rows = pa.array([index[k] for k in data.ids])
    columns = {"id": pa.array(data.ids, pa.string()), "score": got.column("safety").take(rows), "unsafe": got.column("unsafe").take(rows)}
    for name in members:
        columns[f"safety_{name}"] = got.column(f"safety_{name}").take(rows)
    table = pa.table(columns)
    _write(table, predictions)
    if owned:
        shutil.rmtree(work, ignore_errors=True)
    if data.labels is None:
        return EvalResult(table, None, {})
    score = np.nan_to_num(table.column("score").to_numpy(zero_copy_only=False).astype(float))
    overall = binary_scores(data.labels, table.column("unsafe").to_numpy(zero_copy_only=False), score)
    stage_cfg = cfg.stages[0].config
    from stages.model_members import LoadedMember  # noqa: F401  (thresholds come from the cards)

    per_member = {}
    for member in stage_cfg.members:
        s = np.nan_to_num(table.column(f"safety_{member.name}").to_numpy(zero_copy_only=False).astype(float))
        cut = member.threshold if member.threshold is not None else _card_threshold(member)
        per_member[member.name] = binary_scores(data.labels, s >= cut, s)
    return EvalResult(table, overall, per_member)


def _card_threshold(member) -> float:
    from classifiers.base import ModelCard
    from classifiers.registry import resolve_model

    return ModelCard.load(resolve_model(next(iter(member.models.values())))).threshold
