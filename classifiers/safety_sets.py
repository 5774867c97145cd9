"""The labelled safety sets, read from the shared data folder, with stable ids, licences and report splits.

Every row gets an id `<set>:<row>` (`cold-dev:17`, `toxicn-test:5`), so a split is a set of ids that a test
can check. Two kinds of split matter:
- report splits (`REPORT_SPLITS`): COLD dev and ToxiCN's official test split. Figures are reported on them
  and nothing (members, thresholds, calibration, combine rule, hyper-parameters) is chosen on them;
- training sets: built here with every text that also occurs in a report split removed (COLD's files and
  ToxiCN share some comments).
Licences decide what a shipped model may learn from (`SHIPPABLE`): ToxiCN is CC BY-NC-ND (no derivatives
distributed) and the Weibo roles set has no licence, so neither goes into a shipped model; they serve
evaluation and non-shipped variants only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REPORT_SPLITS = ("cold-dev", "toxicn-test")
LICENCES = {
    "cold": "Apache-2.0",
    "rtplx": "MIT",
    "mhc": "CC BY 4.0",
    "davidson": "MIT",
    "toxicn": "CC BY-NC-ND 4.0 (no derivatives distributed)",
    "weibo": "none stated (research, tests only)",
}
SHIPPABLE = {"cold", "rtplx", "mhc", "davidson"}
RTPLX_FILES = {
    "rtplx-hans": "rtplx_zh-hans.csv",
    "rtplx-hant": "rtplx_zh-hant.csv",
    "rtplx-benign": "rtplx_zh-hans_benign.csv",
}
COLUMNS = ["id", "text", "label", "set", "topic"]


def _frame(name: str, texts, labels, topics=None) -> pd.DataFrame:
    texts = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    return pd.DataFrame(
        {
            "id": [f"{name}:{i}" for i in range(len(texts))],
            "text": texts,
            "label": pd.Series(list(labels)).astype(int),
            "set": name,
            "topic": list(topics) if topics is not None else [None] * len(texts),
        }
    )


def load_set(shared: str | Path, name: str) -> pd.DataFrame:
    """One set as `id, text, label, set, topic`: cold-train, cold-dev, toxicn-train, toxicn-test,
    rtplx-hans, rtplx-hant, rtplx-benign, mhc, weibo."""
    root = Path(shared) / "safety"
    if name in ("cold-train", "cold-dev"):
        raw = pd.read_csv(root / "zh" / f"{name}.csv")
        return _frame(name, raw["TEXT"], raw["label"], raw["topic"])
    if name in ("toxicn-train", "toxicn-test"):
        raw = pd.read_csv(root / "zh-extra" / "toxicn.csv")
        raw = raw[raw["split"] == name.split("-")[1]]
        return _frame(name, raw["text"], raw["label"], raw["topic"])
    if name in RTPLX_FILES:
        raw = pd.read_csv(root / "zh-extra" / RTPLX_FILES[name])
        return _frame(name, raw["text"], raw["label"])
    if name == "mhc":
        raw = pd.read_csv(root / "zh-extra" / "mhc_mandarin_template.csv")
        return _frame(name, raw["text"], raw["label"])
    if name == "weibo":
        raw = pd.read_csv(root / "zh-extra" / "weibo_cyberbully_roles.csv")
        return _frame(name, raw["text"], raw["label"])
    raise ValueError(f"unknown safety set {name!r}")


def source_of(set_name: str) -> str:
    return set_name.split("-")[0]


def training_set(shared: str | Path, sets: list[str], *, ship: bool) -> pd.DataFrame:
    """The union of `sets`, without empty texts, repeated texts (first kept) or any text of a report split.
    `ship=True` refuses sets whose licence does not allow distributing a model trained on them."""
    if ship:
        refused = [s for s in sets if source_of(s) not in SHIPPABLE]
        if refused:
            raise ValueError(
                f"a shipped model may not be trained on {', '.join(refused)} "
                f"({'; '.join(LICENCES[source_of(s)] for s in refused)})"
            )
    if any(s in REPORT_SPLITS for s in sets):
        raise ValueError(f"report splits ({', '.join(REPORT_SPLITS)}) are never trained or selected on")
    frame = pd.concat([load_set(shared, s) for s in sets], ignore_index=True)
    reported = set(pd.concat([load_set(shared, s)["text"] for s in REPORT_SPLITS]))
    frame = frame[(frame["text"].str.strip() != "") & ~frame["text"].isin(reported)]
    return frame.drop_duplicates("text").reset_index(drop=True)


def report_set(shared: str | Path, name: str) -> pd.DataFrame:
    if name not in REPORT_SPLITS:
        raise ValueError(f"{name} is not a report split ({', '.join(REPORT_SPLITS)})")
    return load_set(shared, name)
