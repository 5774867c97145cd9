"""Reading the dataset card and the weights summary of a finished run (the report and `winnow stats` use these)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.layout import stage_folders
from pipeline.run_tables import count_by
from pipeline.storage import Storage
from pipeline.tokens import token_counts

CARD_JSON = "dataset.json"
CARD_MD = "README.md"


def weights_summary(storage: Storage) -> dict | None:
    """The weights stage's corpus summary (targets, factors, warnings), if a weights stage ran."""
    for folder in reversed(stage_folders(storage)):
        summary = storage.read_json_or_none(storage.path(folder, "_summary.json"))
        if summary is not None:
            return summary
    return None


def mix_table(table: pa.Table, by: str, targets: dict[str, float]) -> dict[str, dict]:
    """Per group: documents, tokens, share of tokens before weighting, expected share after, target,
    and epochs (expected passes over the group per corpus-sized pass)."""
    tokens = token_counts(table)
    weight = (
        table.column("weight").to_numpy().astype(np.float64)
        if "weight" in table.column_names
        else np.ones(len(tokens))
    )
    counted = {r[by]: r for r in count_by(table, [by], tokens)}
    docs = {g: r["docs"] for g, r in counted.items()}
    tok = {g: r["value"] for g, r in counted.items()}
    weighted = {r[by]: r["value"] for r in count_by(table, [by], weight * tokens)}
    total, total_w = sum(tok.values()) or 1.0, sum(weighted.values()) or 1.0
    rows = {}
    for g in sorted(tok, key=lambda g: -tok[g]):
        rows[g] = {
            "docs": int(docs[g]),
            "tokens_est": int(tok[g]),
            "share_before": tok[g] / total,
            "share_after": weighted[g] / total_w,
            "target": targets.get(g),
            "epochs": weighted[g] / tok[g] if tok[g] else None,
        }
    return rows
