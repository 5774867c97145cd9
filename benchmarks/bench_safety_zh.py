"""Chinese safety on data never used for any choice: COLD dev and ToxiCN's official test split.

For each variant the recipe of `classifiers/safety_zh.py` runs end to end: training rows (report-split texts
removed), 5-fold cross-validation on them to choose the e5 head's C, how fastText reads Chinese (words or
characters), member thresholds and the combine rule (grid or stacked weights),
members trained on all training rows, then one scoring of each report split. Variants:
- `shipped`: COLD train + RTP-LX (licences allow shipping); `--save-models` writes these members to
  classifiers/models/ (safety-zh-lexicon, safety-zh, safety-zh-e5) and prints the stage settings;
- `with-toxicn`: the same plus ToxiCN's train split (CC BY-NC-ND: evaluated here, never shipped).
Diagnosis sets, scored but never trained or selected on: Multilingual HateCheck Mandarin (template cases)
and a 3,000-row sample of the Weibo cyberbullying roles (noisy labels, no licence).
Figures carry 95% bootstrap intervals (1,000 resamples). Per-topic tables (COLD and ToxiCN topics) and
HateCheck per target group and per case type say where the ensemble fails.

    nice -n 15 .venv/bin/python benchmarks/bench_safety_zh.py SHARED_DATA [--cache /tmp/winnow-e5] \
        [--variants shipped with-toxicn] [--save-models] [--out benchmarks/results/safety-zh.json]

The e5 embeddings go through `EmbeddingCache` (keyed by text): the same numbers `predict` computes, embedded
once; `--check 200` re-embeds that many report rows live and fails if a score differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.e5_model import EmbeddingCache  # noqa: E402
from classifiers.ensemble import decide  # noqa: E402
from classifiers.metrics import binary_scores, with_intervals  # noqa: E402
from classifiers.safety_sets import REPORT_SPLITS, load_set, report_set, training_set  # noqa: E402
from classifiers.safety_zh import MEMBERS, SHIPPED_SETS, WITH_TOXICN, build, score_members  # noqa: E402

VARIANTS = {"shipped": SHIPPED_SETS, "with-toxicn": WITH_TOXICN}
# HateCheck's functionalities come in a fixed order; the supplied Mandarin file has no functionality column,
# so its cases are grouped by the label runs of that order (first row of each run, in file order).
MHC_FAMILIES = [
    (0, "H: derogation, threats, slurs, hateful profanity"),
    (1130, "N: non-hateful profanity"),
    (1230, "H: pronoun references, negated positive statements"),
    (1650, "N: negated hateful statements"),
    (1790, "H: hate phrased as a question or opinion"),
    (2063, "N: neutral/positive identity mentions, counter-speech, abuse of non-protected targets"),
    (2936, "H: spelling variations (character swaps, homophones, leet, spaces)"),
]
MHC_TARGETS = {
    "women": "女",
    "trans": "跨性别",
    "gay": "同性恋",
    "black": "黑人",
    "disabled": "残疾",
    "muslim": "穆斯林",
    "foreigners": "外国",
}


def diagnosis_sets(shared: Path) -> dict[str, pd.DataFrame]:
    mhc = load_set(shared, "mhc")
    mhc["topic"] = [next((k for k, v in MHC_TARGETS.items() if v in t), "none") for t in mhc["text"]]
    starts = [start for start, _ in MHC_FAMILIES]
    mhc["family"] = [MHC_FAMILIES[np.searchsorted(starts, i, side="right") - 1][1] for i in range(len(mhc))]
    weibo = load_set(shared, "weibo").sample(3000, random_state=0)
    return {"mhc": mhc, "weibo-sample": weibo}


def evaluate(frame: pd.DataFrame, member_scores: dict, selection, weights: dict) -> dict:
    labels = frame["label"].to_numpy()
    names = list(member_scores)
    unsafe, mean, _ = decide(
        [member_scores[n] for n in names],
        [selection.thresholds[n] for n in names],
        [weights[n] for n in names],
        selection.combine,
        selection.mean_threshold,
    )
    out = {"rows": len(frame), "positives": int(labels.sum()), "members": {}}
    for n in names:
        s = member_scores[n]
        out["members"][n] = with_intervals(labels, s >= selection.thresholds[n], s).as_dict()
    out["ensemble"] = with_intervals(labels, unsafe, np.nan_to_num(mean)).as_dict()
    for column in ("topic", "family"):
        if column not in frame or not frame[column].notna().any():
            continue
        out[f"by_{column}"] = {}
        for group, rows in frame.groupby(column).indices.items():
            r = binary_scores(labels[rows], unsafe[rows])
            out[f"by_{column}"][group] = {
                "rows": len(rows),
                "positives": int(labels[rows].sum()),
                "precision": r.precision,
                "recall": r.recall,
                "f1": r.f1,
                "flagged": float(unsafe[rows].mean()),
                "false_positives": int((unsafe[rows] & (labels[rows] == 0)).sum()),
                "false_negatives": int((~unsafe[rows] & (labels[rows] == 1)).sum()),
                "members_flagged": {
                    n: float(np.mean(member_scores[n][rows] >= selection.thresholds[n])) for n in names
                },
            }
    wrong = np.flatnonzero(unsafe != labels.astype(bool))
    out["errors_sample"] = [
        {"text": frame["text"].iloc[i][:80], "label": int(labels[i]), "topic": frame["topic"].iloc[i]}
        for i in wrong[:: max(1, len(wrong) // 12)][:12]
    ]
    return out


def run_variant(name: str, shared: Path, cache: EmbeddingCache, save: bool, check: int) -> dict:
    started = time.perf_counter()
    train = training_set(shared, VARIANTS[name], ship=name == "shipped")
    reports = {s: report_set(shared, s) for s in REPORT_SPLITS}
    print(
        f"== {name}: {len(train):,} training rows ({int(train['label'].sum()):,} offensive) from "
        f"{', '.join(f'{k} {v:,}' for k, v in train['set'].value_counts().items())}",
        flush=True,
    )
    ens = build(train, list(reports.values()), cache)
    sel = ens.selection
    weights = sel.weights if sel.combine == "weighted_mean" else dict.fromkeys(MEMBERS, 1.0)
    result = {
        "variant": name,
        "training_sets": VARIANTS[name],
        "training_rows": ens.rows,
        "e5_c": ens.e5_c,
        "fasttext_tokens": ens.fasttext,
        "e5_rows": ens.members["e5"].card.training["rows"],
        "selection": {
            "thresholds": sel.thresholds,
            "member_oof_f1": sel.member_f1,
            "combine": sel.combine,
            "weights": sel.weights,
            "mean_threshold": sel.mean_threshold,
            "oof_f1": sel.f1,
            "top_candidates": sel.candidates[:8],
            "rows_seen": len(sel.seen_ids),
        },
        "reports": {},
    }
    everything = {**reports, **diagnosis_sets(shared)}
    for set_name, frame in everything.items():
        scores = score_members(ens.members, frame["text"].tolist(), cache)
        result["reports"][set_name] = evaluate(frame, scores, sel, weights)
        e = result["reports"][set_name]["ensemble"]
        print(
            f"  {set_name}: ensemble {binary_scores_line(e)}; "
            + ", ".join(f"{m} F1 {r['f1']:.3f}" for m, r in result["reports"][set_name]["members"].items()),
            flush=True,
        )
    if check:
        frame = reports["cold-dev"].sample(check, random_state=1)
        live = ens.members["e5"].predict(frame["text"].tolist())
        cached = ens.members["e5"].predict_embedded(cache(frame["text"].tolist()))
        result["live_check"] = {"rows": check, "max_abs_difference": float(np.abs(live - cached).max())}
        print(
            f"  live e5 scores vs cached embeddings on {check} rows: "
            f"max difference {result['live_check']['max_abs_difference']:.2e}"
        )
    if save:
        from classifiers.registry import MODELS_DIR

        for kind, folder in (("lexicon", "safety-zh-lexicon"), ("fasttext", "safety-zh"), ("e5", "safety-zh-e5")):
            clf = ens.members[kind]
            dev = result["reports"]["cold-dev"]["members"][kind]
            clf.card.metrics = {
                k: dev[k] for k in ("precision", "recall", "f1", "auc", "accuracy", "support", "rows", "intervals")
            }
            clf.card.training["held_out"] = "cold-dev (report split: used for this figure only)"
            clf.save(MODELS_DIR / folder)
        print(f"  saved; stage settings: {sel.stage_settings()}, member weights {weights}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def binary_scores_line(r: dict) -> str:
    ci = r.get("intervals") or {}
    return f"P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} {ci.get('f1')} AUC {r['auc']:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="Folder with safety/{zh,zh-extra}.")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/winnow-e5"), help="EmbeddingCache folder.")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--save-models", action="store_true", help="Write the shipped variant's members to classifiers/models/."
    )
    parser.add_argument("--check", type=int, default=0, help="Rows of COLD dev to re-embed live against the cache.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "safety-zh.json")
    args = parser.parse_args(argv)
    cache = EmbeddingCache(args.cache)
    results = [
        run_variant(v, args.shared, cache, args.save_models and v == "shipped", args.check) for v in args.variants
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    previous.update({r["variant"]: r for r in results})
    args.out.write_text(json.dumps(previous, indent=1, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
