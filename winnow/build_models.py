"""`make models`: trains the shipped default models from the real labelled data sets.

    python -m winnow.build_models SHARED_DATA_DIR [--only NAME ...]

- safety-zh (fastText), safety-zh-lexicon (mined), safety-zh-e5 (multilingual-e5-small + head): COLD train
  and RTP-LX (licences that allow shipping), every text of a report split (COLD dev, ToxiCN test) removed;
  thresholds, the e5 head's strength and the stage's combine rule chosen by 5-fold cross-validation on
  those training rows only (`classifiers/safety_zh.py`); the combine rule is printed for
  configs/default.yaml. Their cards' figures are on COLD dev, used for nothing else.
- safety-zh-minilm (MiniLM + head, no longer in the default ensemble): COLD's training file, minus any
  text that also appears in its dev file; scored on the dev file (cold-dev.csv).
- safety-en, safety-en-lexicon (better-profanity's list + mined terms), safety-en-minilm: the Davidson
  tweets, hate or offensive (class 0/1) vs neither (class 2); a fixed stratified 30% (seed 0) is
  held out and never trained on; it is written to `benchmarks/data/davidson-heldout.parquet` for the
  ensemble evaluation.
- quality-zh, quality-en (fastText): reference text (Chinese Wikipedia paragraphs of CMRC 2018; refined
  C4/CC/NIH/USPTO documents) against real crawl text as winnow's ingest extracts it (web pages, CCNet,
  Zhihu, spam e-mails), both line-cleaned, in chunks of similar length (`winnow/quality_sets.py`).
  A fixed 20% of sites and documents is held out and written to `.models-work/quality-<lang>-held.parquet`
  (whole documents): the cards' figures are on it. What it learns is "reads like reference text", the
  GPT-3/LLaMA/DCLM style of quality classifier.
The BERT heads are trained on a seeded sample of 6,000 rows: a linear head on frozen 384-dimensional
embeddings gains little from more, and embedding on a 2-core CPU runs at about 50 texts/s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from classifiers.data import split_holdout
from classifiers.lexicon import better_profanity_terms
from classifiers.registry import MODELS_DIR
from classifiers.train import train_classifier
from winnow.quality_sets import PARAMS as QUALITY_PARAMS

REPO = Path(__file__).resolve().parent.parent
BENCH_DATA = REPO / "benchmarks" / "data"
BERT_ROWS = 6000
HOLDOUT_SEED = 0


def _davidson(shared: Path) -> tuple[Path, Path]:
    frame = pd.read_csv(shared / "safety/en/davidson-hate-offensive-dev.csv")
    frame = pd.DataFrame(
        {"id": frame.iloc[:, 0].astype(str), "text": frame["tweet"], "label": (frame["class"] != 2).astype(int)}
    )
    train_rows, held_rows = split_holdout(len(frame), 0.3, HOLDOUT_SEED, frame["label"].to_numpy())
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    work = REPO / ".models-work"
    work.mkdir(exist_ok=True)
    train, held = work / "davidson-train.parquet", BENCH_DATA / "davidson-heldout.parquet"
    frame.iloc[train_rows].to_parquet(train, index=False)
    frame.iloc[held_rows].assign(lang="en").to_parquet(held, index=False)
    return train, held


def _cold(shared: Path) -> tuple[Path, Path]:
    work = REPO / ".models-work"
    work.mkdir(exist_ok=True)
    out = {}
    for split in ("train", "dev"):
        frame = pd.read_csv(shared / f"safety/zh/cold-{split}.csv")
        frame = pd.DataFrame(
            {"id": frame.iloc[:, 0].astype(str), "text": frame["TEXT"], "label": frame["label"].astype(int)}
        )
        if split == "dev":
            frame = frame.assign(
                id=[f"dev{i}" for i in range(len(frame))], lang="zh"
            )  # upstream ids repeat across splits
        out[split] = work / f"cold-{split}.parquet"
        frame.to_parquet(out[split], index=False)
    return out["train"], out["dev"]


def _quality_sets(shared: Path) -> dict[str, tuple[Path, Path]]:
    """Per language: training chunks and held-out whole documents (winnow/quality_sets.py)."""
    from winnow import quality_sets

    work = REPO / ".models-work"
    work.mkdir(exist_ok=True)
    out = {}
    for lang in ("zh", "en"):
        train, held = quality_sets.split(quality_sets.documents(shared, lang))
        rows = quality_sets.training_rows(train, lang, HOLDOUT_SEED)
        paths = work / f"quality-{lang}-train.parquet", work / f"quality-{lang}-held.parquet"
        pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [y for _, y in rows]}), paths[0])
        pq.write_table(pa.table({"text": [d.text for d in held], "label": [d.label for d in held]}), paths[1])
        out[lang] = paths
    return out


def _sample(path: Path, rows: int) -> Path:
    frame = pd.read_parquet(path)
    if len(frame) <= rows:
        return path
    small = path.with_name(path.stem + f"-{rows}.parquet")
    frame.sample(rows, random_state=HOLDOUT_SEED).to_parquet(small, index=False)
    return small


def _safety_zh(shared: Path, cache: Path | None) -> None:
    """The three Chinese members from one cross-validated recipe (what benchmarks/bench_safety_zh.py reports)."""
    from benchmarks.bench_safety_zh import run_variant
    from classifiers.e5_model import EmbeddingCache, embed

    print("== safety-zh, safety-zh-lexicon, safety-zh-e5", flush=True)
    run_variant("shipped", shared, EmbeddingCache(cache) if cache else embed, save=True, check=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "shared", type=Path, help="Folder with safety/, reference/, web/ (see the README's data section)."
    )
    parser.add_argument("--only", nargs="*", help="Build only these models.")
    parser.add_argument(
        "--e5-cache", type=Path, help="EmbeddingCache folder for the e5 member (embeds each text once)."
    )
    args = parser.parse_args(argv)
    cold_train, cold_dev = _cold(args.shared)
    dav_train, dav_held = _davidson(args.shared)
    quality = _quality_sets(args.shared)
    ft = {"quantize": True}
    jobs = {
        "safety-zh-minilm": ("bert", "safety", "zh", [_sample(cold_train, BERT_ROWS)], cold_dev, {}),
        "safety-en": ("fasttext", "safety", "en", [dav_train], dav_held, ft),
        "safety-en-lexicon": (
            "lexicon",
            "safety",
            "en",
            [dav_train],
            dav_held,
            {"base": better_profanity_terms(), "min_count": 8, "min_precision": 0.9},
        ),
        "safety-en-minilm": ("bert", "safety", "en", [_sample(dav_train, BERT_ROWS)], dav_held, {}),
        **{
            f"quality-{lang}": ("fasttext", "quality", lang, [train], held, dict(QUALITY_PARAMS[lang]))
            for lang, (train, held) in quality.items()
        },
    }
    if not args.only or {"safety-zh", "safety-zh-lexicon", "safety-zh-e5"} & set(args.only):
        _safety_zh(args.shared, args.e5_cache)
    for name, (kind, task, lang, data, held, options) in jobs.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        train_classifier(
            kind,
            task,
            lang,
            [str(p) for p in data],
            MODELS_DIR / name,
            eval_data=str(held) if held else None,
            holdout=0.2,
            options=options,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
