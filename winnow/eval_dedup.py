"""`winnow eval dedup`: the pipeline's own dedup stage on a labelled Parquet file, and its scores.

The file goes through the real path (ingest, then the `<method>_dedup` stage on Ray, in keep mode so
every row gets a cluster), not a separate evaluation code path; so what is measured is what runs.
A row is predicted a duplicate when its cluster has two or more members; the truth column
`true_dup` says whether the row has a near-duplicate in the file (or, when it is not boolean, it is
a cluster label and rows sharing a label are duplicates).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from winnow.eval_run import run_stage_on_file, stage_settings, write_predictions

METHODS = ("exact", "minhash", "simhash", "semantic")


@dataclass
class DupScores:
    precision: float
    recall: float
    f1: float
    macro_f1: float
    support: int
    predicted: int
    rows: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int(np.sum(pred & truth))
    p = tp / max(1, int(pred.sum()))
    r = tp / max(1, int(truth.sum()))
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def duplicate_scores(pred: np.ndarray, truth: np.ndarray) -> DupScores:
    """Precision/recall/F1 of the duplicate class, and the macro F1 over both classes (text-dedup's figure)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    p, r, f = _prf(pred, truth)
    _, _, f_neg = _prf(~pred, ~truth)
    return DupScores(p, r, f, (f + f_neg) / 2, int(truth.sum()), int(pred.sum()), len(pred))


def truth_from_column(col: pa.ChunkedArray) -> np.ndarray:
    """Boolean truth as given, or derived from cluster labels (a label used twice or more = duplicate)."""
    if pa.types.is_boolean(col.type):
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), bool)
    labels = col.to_pylist()
    counts: dict = {}
    for x in labels:
        if x is not None:
            counts[x] = counts.get(x, 0) + 1
    return np.array([x is not None and counts[x] > 1 for x in labels], bool)


def load_settings(method: str, config: Path | None) -> dict:
    """Stage settings from a YAML mapping, or from the matching stage of a pipeline YAML."""
    return stage_settings(config, f"{method}_dedup") if config is not None else {}


def run_eval(
    input_path: str,
    method: str,
    predictions: str,
    settings: dict,
    *,
    work_dir: str | None = None,
    workers: int | None = None,
    rows_per_shard: int = 10_000,
    console=None,
) -> tuple[pa.Table, DupScores | None, dict]:
    """Runs ingest + the dedup stage on the file; writes and returns predictions, scores and the stage report."""
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    schema = pq.read_schema(input_path)
    for col in ("id", "text"):
        if col not in schema.names:
            raise ValueError(f"{input_path}: needs a `{col}` column (has: {', '.join(schema.names)})")
    owned = work_dir is None
    stage = {"name": f"{method}_dedup", **settings, "mode": "keep", "keep_work": False}
    cluster_col, size_col = (
        ("sem_cluster", "sem_cluster_size") if method == "semantic" else ("dup_cluster", "dup_cluster_size")
    )
    got, work, runner = run_stage_on_file(
        input_path,
        stage,
        work_dir,
        lang_field="lang" if "lang" in schema.names else None,
        columns=["id", cluster_col, size_col],
        workers=workers,
        rows_per_shard=rows_per_shard,
        console=console,
    )
    report = runner.storage.read_json_or_none(runner.storage.path(runner.cfg.stages[0].folder, "_dedup.json")) or {}
    source = pq.read_table(input_path, columns=["id"] + (["true_dup"] if "true_dup" in schema.names else []))
    ids = source.column("id").cast(pa.string())
    index = {k: i for i, k in enumerate(got.column("id").to_pylist())}
    cluster = got.column(cluster_col).to_pylist()
    size = got.column(size_col).to_pylist()
    out_cluster, out_size = [], []
    for k in ids.to_pylist():  # rows ingest rejected (no text) are their own singleton cluster
        i = index.get(k)
        out_cluster.append(cluster[i] if i is not None else k)
        out_size.append(size[i] if i is not None else 1)
    pred = pa.table(
        {
            "id": ids,
            "dup_cluster": pa.array(out_cluster, pa.string()),
            "dup_cluster_size": pa.array(out_size, pa.int64()),
        }
    )
    write_predictions(pred, predictions)
    scores = None
    if "true_dup" in source.column_names:
        scores = duplicate_scores(np.asarray(out_size) >= 2, truth_from_column(source.column("true_dup")))
    if owned:
        shutil.rmtree(work, ignore_errors=True)
    return pred, scores, report
