"""Labelled text files for training and evaluation, in the formats people have them in.

- fastText format (`.txt`): `__label__<y> text` per line;
- Parquet, CSV (`.csv`, `.tsv`), JSON lines (`.jsonl`, `.jsonl.gz`).
Column names are found by their usual spellings (`text`/`TEXT`/`tweet`/`content`, `label`/`class`,
`id`) or given. Labels must be 0/1 (or booleans) unless `positive` lists the raw values that count as
positive (Davidson's `class` 0 hate and 1 offensive vs 2 neither: `positive=["0", "1"]`). A bad label
is an error naming the file and row; rows without text are counted and reported, never dropped
silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_COLUMNS = ("text", "TEXT", "tweet", "content")
LABEL_COLUMNS = ("label", "class")
TRUE_VALUES = {"1", "true", "1.0"}
FALSE_VALUES = {"0", "false", "0.0"}


@dataclass
class Labelled:
    ids: list[str]
    texts: list[str]
    labels: np.ndarray | None  # int8 0/1, None when the file has no labels
    langs: list[str | None] | None
    source: str
    empty_rows: int = 0  # rows without text (kept as "" for evaluation, left out of training)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: np.ndarray) -> Labelled:
        pick = lambda xs: [xs[i] for i in rows]  # noqa: E731
        return Labelled(
            pick(self.ids),
            pick(self.texts),
            None if self.labels is None else self.labels[rows],
            None if self.langs is None else pick(self.langs),
            self.source,
        )


def _read_frame(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".csv"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if name.endswith(".tsv"):
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        return pd.read_json(path, lines=True, dtype=False)
    if name.endswith(".txt"):
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            head, _, text = line.partition(" ")
            if not head.startswith("__label__"):
                raise ValueError(f"{path}:{lineno}: fastText format needs `__label__<y> text`, got {line[:60]!r}")
            rows.append({"id": str(lineno), "label": head[len("__label__") :], "text": text})
        return pd.DataFrame(rows, columns=["id", "label", "text"])
    raise ValueError(f"{path}: unknown format (use .parquet, .csv, .tsv, .jsonl[.gz] or fastText .txt)")


def _pick(
    columns: Sequence[str], given: str | None, usual: Sequence[str], what: str, path: Path, required: bool
) -> str | None:
    if given is not None:
        if given not in columns:
            raise ValueError(f"{path}: no column {given!r} for the {what} (has: {', '.join(map(str, columns))})")
        return given
    for name in usual:
        if name in columns:
            return name
    if required:
        raise ValueError(
            f"{path}: no {what} column (looked for {', '.join(usual)}; has: {', '.join(map(str, columns))}); name it with --{what}-col"
        )
    return None


def load_labelled(
    path: str | Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    id_col: str | None = None,
    positive: Sequence[str] | None = None,
    require_labels: bool = False,
) -> Labelled:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    frame = _read_frame(path)
    cols = list(frame.columns)
    text_name = _pick(cols, text_col, TEXT_COLUMNS, "text", path, True)
    label_name = _pick(cols, label_col, LABEL_COLUMNS, "label", path, require_labels)
    id_name = _pick(cols, id_col, ("id",), "id", path, False)
    texts_raw = frame[text_name].tolist()
    empty = sum(1 for t in texts_raw if not isinstance(t, str) or not t)
    texts = [t if isinstance(t, str) else "" for t in texts_raw]
    ids = [str(x) for x in frame[id_name].tolist()] if id_name else [str(i) for i in range(len(frame))]
    labels = None
    if label_name is not None:
        labels = _labels(frame[label_name].tolist(), positive, path, label_name)
    langs = [x if isinstance(x, str) else None for x in frame["lang"].tolist()] if "lang" in cols else None
    return Labelled(ids, texts, labels, langs, str(path), empty)


def _labels(values: list, positive: Sequence[str] | None, path: Path, column: str) -> np.ndarray:
    out = np.zeros(len(values), np.int8)
    wanted = {str(p).strip().lower() for p in positive} if positive else None
    for row, value in enumerate(values):
        key = str(value).strip().lower()
        if isinstance(value, float) and np.isnan(value) or value is None or key == "":
            raise ValueError(f"{path}: row {row}: column {column!r} has no label")
        if wanted is not None:
            out[row] = key in wanted
        elif key in TRUE_VALUES:
            out[row] = 1
        elif key not in FALSE_VALUES:
            raise ValueError(
                f"{path}: row {row}: label {value!r} in column {column!r} is not 0/1; "
                "say which values are positive with --positive (e.g. --positive 0,1)"
            )
    return out


def split_holdout(
    n: int, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/held-out split of row numbers, stratified by label when labels are given."""
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        cut = int(round(n * (1 - fraction)))
        return np.sort(order[:cut]), np.sort(order[cut:])
    train, held = [], []
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cut = int(round(len(rows) * (1 - fraction)))
        train.append(rows[:cut])
        held.append(rows[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))
