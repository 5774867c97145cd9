"""The quality models on real crawl text: held-out AUC per language, and how the scores spread per source.

Documents come as the quality stage sees them: WARC pages extracted by winnow's ingest, everything
line-cleaned (`winnow/quality_sets.py`). The held-out part is the fixed 20% of sites and documents
that `make models` never trains on; AUC is reference (1) against crawl (0), on whole documents (what the
stage scores) and on training-sized chunks. Per source the score distribution is shown on documents the
model never saw: the held-out part of the training sources, and all of the evaluation-only sets (Weibo
threads, Chinese and English e-mails: no licence to ship a model trained on them, or not trained on).
`realweb/eval/` is never read.

Then the weights stage's quality factor on those scores, with the weights config of configs/default.yaml
(`w_quality = floor + (1 - floor) * q ** power`, times the boost where `quality_fasttext` reaches its
threshold), per source.

    .venv/bin/python benchmarks/bench_quality_models.py SHARED_DATA [--train] [--cv 5] \
        [--figure docs/quality-scores.png] [--json OUT.json]

`--train` retrains both models with the shipped recipe (unquantised, in a temporary folder) instead of
loading classifiers/models/; `--cv K` adds K-fold cross-validation grouped by site/document on the
training part (every training document scored once by a model that did not see it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import xxhash
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sklearn.metrics import roc_auc_score as roc_auc  # noqa: E402

from classifiers.registry import load_classifier  # noqa: E402
from winnow import quality_sets as qs  # noqa: E402

BINS = np.linspace(0, 1, 11)


def _jsonl(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        yield from (json.loads(line) for line in f if line.strip())


def evaluation_only(shared: Path, lang: str) -> list[qs.Doc]:
    """Real text never trained on: the tests-only sets and the English ham e-mails."""
    real = shared / "realweb"
    if lang == "en":
        return [
            qs.Doc(r["text"], "en-email-ham", r["id"], 0)
            for r in _jsonl(real / "en-emails-spamassassin-a.jsonl.gz")
            if r["label"] == "ham"
        ]
    docs = [
        qs.Doc(r["text"], "zh-weibo", f"w{i}", 0) for i, r in enumerate(_jsonl(real / "zh-weibo-threads-a.jsonl.gz"))
    ]
    docs += [
        qs.Doc(r["text"], f"zh-email-{r['label']}", f"m{i}", 0)
        for i, r in enumerate(_jsonl(real / "zh-emails-trec06c-a.jsonl.gz"))
        if r["label"] in ("spam", "ham")
    ]
    return docs


def train_model(docs: list[qs.Doc], lang: str):
    from classifiers.fasttext_model import FastTextClassifier

    rows = qs.training_rows(docs, lang)
    return FastTextClassifier.train(
        [t for t, _ in rows], [y for _, y in rows], task="quality", lang=lang, positive="reference", **qs.PARAMS[lang]
    )


def aucs(model, docs: list[qs.Doc], lang: str) -> tuple[float, float, int, int]:
    """(document AUC, chunk AUC, reference documents, crawl documents)."""
    labels = np.array([d.label for d in docs])
    doc_auc = roc_auc(labels, model.predict([d.text for d in docs]))
    rows = qs.chunk_rows(docs, lang)
    chunk_auc = roc_auc(np.array([y for _, y in rows]), model.predict([t for t, _ in rows]))
    return doc_auc, chunk_auc, int(labels.sum()), int(len(labels) - labels.sum())


def cross_validated(train: list[qs.Doc], lang: str, folds: int) -> tuple[float, float]:
    fold = np.array([xxhash.xxh3_64_intdigest(f"cv\x1f{d.group}".encode()) % folds for d in train])
    doc_scores = np.zeros(len(train))
    chunk_labels, chunk_scores = [], []
    for k in range(folds):
        fit = [d for d, f in zip(train, fold) if f != k]
        test = [d for d, f in zip(train, fold) if f == k]
        model = train_model(fit, lang)
        doc_scores[fold == k] = model.predict([d.text for d in test])
        rows = qs.chunk_rows(test, lang)
        chunk_labels += [y for _, y in rows]
        chunk_scores += list(model.predict([t for t, _ in rows]))
    labels = np.array([d.label for d in train])
    return roc_auc(labels, doc_scores), roc_auc(np.array(chunk_labels), np.array(chunk_scores))


def weights_config() -> dict:
    cfg = yaml.safe_load((REPO / "configs/default.yaml").read_text(encoding="utf-8"))
    return next(s for s in cfg["stages"] if s["name"] == "weights")


def quality_factor(scores: np.ndarray, cfg: dict) -> np.ndarray:
    """w_quality * w_boost as the weights stage computes them from `quality` and `quality_fasttext`."""
    q = cfg.get("quality", {})
    floor, power = q.get("floor", 0.2), q.get("power", 1.0)
    w = floor + (1 - floor) * np.clip(scores, 0, 1) ** power
    for boost in cfg.get("boosts", []):
        if boost["column"] in ("quality", "quality_fasttext"):
            w = np.where(scores >= np.float32(boost["threshold"]), w * boost["factor"], w)
    return w


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="Folder with reference/, web/ and realweb/.")
    parser.add_argument("--train", action="store_true", help="Retrain with the shipped recipe instead of loading.")
    parser.add_argument("--cv", type=int, default=0, help="Also K-fold grouped cross-validation on the training part.")
    parser.add_argument("--figure", type=Path, help="Write a histogram figure (PNG) here.")
    parser.add_argument("--json", type=Path, help="Write the figures as JSON here.")
    args = parser.parse_args(argv)

    weights = weights_config()
    result = {"languages": {}, "sources": {}}
    per_source: dict[str, np.ndarray] = {}
    for lang in ("en", "zh"):
        train, held = qs.split(qs.documents(args.shared, lang))
        model = train_model(train, lang) if args.train else load_classifier(f"quality-{lang}")
        doc_auc, chunk_auc, n_ref, n_crawl = aucs(model, held, lang)
        line = f"{lang}: held-out AUC documents {doc_auc:.3f}, chunks {chunk_auc:.3f}"
        line += f" ({n_ref} reference, {n_crawl} crawl documents)"
        result["languages"][lang] = {"doc_auc": doc_auc, "chunk_auc": chunk_auc, "reference": n_ref, "crawl": n_crawl}
        if args.cv:
            cv_doc, cv_chunk = cross_validated(train, lang, args.cv)
            line += f"; {args.cv}-fold CV on the training part: documents {cv_doc:.3f}, chunks {cv_chunk:.3f}"
            result["languages"][lang].update(cv_doc_auc=cv_doc, cv_chunk_auc=cv_chunk)
        print(line, flush=True)
        unseen = held + qs.line_cleaned(evaluation_only(args.shared, lang), lang)
        scores = model.predict([d.text for d in unseen])
        groups = defaultdict(list)
        for d, s in zip(unseen, scores):
            groups[d.source].append(float(s))
        for source, values in sorted(groups.items()):
            per_source[f"{lang}:{source}"] = np.array(values)

    print("\nscores per source (documents never trained on; 10 bins from 0 to 1)")
    print(f"{'source':26} {'docs':>5} {'p10':>5} {'p50':>5} {'p90':>5}  histogram              w p10  p50  p90")
    for name, values in per_source.items():
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        hist = np.histogram(values, BINS)[0]
        w = quality_factor(values, weights)
        w10, w50, w90 = np.percentile(w, [10, 50, 90])
        print(
            f"{name:26} {len(values):5d} {p10:5.2f} {p50:5.2f} {p90:5.2f}  {' '.join(f'{c:3d}' for c in hist)}"
            f"  {w10:4.2f} {w50:4.2f} {w90:4.2f}"
        )
        result["sources"][name] = {
            "docs": len(values),
            "quantiles": [round(float(x), 4) for x in (p10, p50, p90)],
            "histogram": hist.tolist(),
            "weight_quantiles": [round(float(x), 4) for x in (w10, w50, w90)],
        }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.figure:
        plot(per_source, args.figure)
    return 0


def plot(per_source: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, lang in zip(axes, ("en", "zh")):
        for name, values in per_source.items():
            if name.startswith(lang + ":"):
                share = np.histogram(values, BINS)[0] / len(values)
                ax.plot((BINS[:-1] + BINS[1:]) / 2, share, marker="o", label=f"{name[3:]} ({len(values)})")
        ax.set_title(f"quality-{lang} on documents never trained on")
        ax.set_xlabel("score")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("share of the source's documents")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    sys.exit(main())
