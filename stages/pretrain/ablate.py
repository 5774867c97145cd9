"""Raw versus cleaned: the same model, tokenizer, token budget and held-out text, two training sets.

The held-out documents come from the cleaned data (good text from every source and language it
keeps) and are removed from both training sets by id (the pipeline keeps ids from ingest to
export, so the raw copy of a held-out document is excluded too). One tokenizer, trained on the
cleaned training documents, serves both runs, so losses compare directly; bits per byte are there
too for comparisons across tokenizers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stages.pretrain.config import PretrainConfig
from stages.pretrain.data import is_shuffled, list_shards, reshuffle
from stages.pretrain.train import prepare, run_pretrain


def ablate(base: PretrainConfig, raw: list[str], clean: list[str], tokens: int, output: str, log=print) -> dict:
    out = Path(output)
    train = base.train.model_copy(update={"tokens": tokens, "steps": None})
    shared = prepare(
        base.model_copy(update={"data": clean, "eval_data": clean, "output": str(out / "shared"), "train": train})
    )
    runs = {}
    inputs = {}
    for name, paths in (("raw", raw), ("clean", clean)):
        files = list_shards(paths)
        if not is_shuffled(files):  # e.g. 00_ingest: one source per file; shuffle like the export does
            log(f"[{name}] shuffling {len(files)} file(s) into {out / (name + '-shuffled')} first")
            files = reshuffle(files, str(out / f"{name}-shuffled"), seed=base.prep.seed)
        inputs[name] = files
    for name, paths in inputs.items():
        run_dir = out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(shared.output) / "heldout.json", run_dir / "heldout.json")
        cfg = base.model_copy(
            update={
                "data": paths,
                "eval_data": clean,
                "output": str(run_dir),
                "tokenizer": shared.tokenizer,
                "train": train,
            }
        )
        log(f"[{name}] training on {len(paths)} shard(s) for {tokens:,} tokens")
        runs[name] = run_pretrain(cfg, log=lambda m, n=name: log(f"[{n}] {m}"))
    table = comparison(runs["raw"]["eval"], runs["clean"]["eval"])
    summary = {
        "tokens": tokens,
        "raw": raw,
        "clean": clean,
        "model": runs["clean"]["model"],
        "params": runs["clean"]["params"],
        "groups": table,
    }
    (out / "ablation.json").write_text(json.dumps(summary, indent=1))
    (out / "ablation.md").write_text(markdown(summary))
    return summary


def comparison(raw: dict, clean: dict) -> list[dict]:
    rows = []
    for group in sorted(set(raw) & set(clean), key=lambda g: (g == "all", g)):
        rows.append(
            {
                "group": group,
                "docs": clean[group]["docs"],
                "tokens": clean[group]["tokens"],
                "raw_loss": raw[group]["loss"],
                "clean_loss": clean[group]["loss"],
                "delta_loss": clean[group]["loss"] - raw[group]["loss"],
                "raw_bpb": raw[group]["bpb"],
                "clean_bpb": clean[group]["bpb"],
            }
        )
    return rows


def markdown(summary: dict) -> str:
    lines = [
        f"Held-out loss per source/lang after {summary['tokens']:,} training tokens ({summary['params']:,} parameters); "
        "lower is better, delta = clean - raw.",
        "",
        "| held-out group | docs | tokens | raw loss | clean loss | delta | raw bits/byte | clean bits/byte |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["groups"]:
        lines.append(
            f"| {r['group']} | {r['docs']:,} | {r['tokens']:,} | {r['raw_loss']:.3f} | {r['clean_loss']:.3f} | {r['delta_loss']:+.3f} | "
            f"{r['raw_bpb']:.3f} | {r['clean_bpb']:.3f} |"
        )
    return "\n".join(lines) + "\n"
