"""Two training sets, one model: the same architecture, schedule, token budget and tokenizer, trained K
times on each side with K seeds, scored on evaluation domains that neither side trained on.

Order of work (docs/ablation.md): the eval domains are sampled into files; both sides go through the
real `decontaminate` stage against every eval file and lose what it drops; one tokenizer is learnt
from an equal mix of the two sides; then 2 x K runs (on a CPU, as Ray tasks side by side), and the
table of mean and spread per domain. Only the seed differs between a side's runs (model init and
the sampler's draws), so the spread over seeds is the noise a difference must beat.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import ray
import torch

from pipeline.ray_setup import ensure_ray
from stages.pretrain.ablate_data import (
    decontaminate,
    heldout_domains,
    mixed_tokenizer,
    sample_domain,
    side_stats,
    write_side,
)
from stages.pretrain.ablate_stats import domain_rows, markdown
from stages.pretrain.config import PretrainConfig
from stages.pretrain.data import list_shards
from stages.pretrain.train import run_pretrain, wants_ray

SIDES = ("raw", "clean")


def ablate(
    base: PretrainConfig,
    raw: list[str],
    clean: list[str],
    evals: dict[str, str],
    output: str,
    *,
    labels: dict[str, str] | None = None,
    also: dict[str, list[str]] | None = None,
    log=print,
) -> dict:
    """Runs the whole comparison into `output`; writes and returns ablation.json's content.

    `also` (name -> shards): more sides, each compared with `clean` the way `raw` is, in one go: the
    tokenizer is learnt from an equal mix of every side and `clean` is trained once for all of them,
    so a leave-one-out table costs K runs per variant instead of 2K and its rows share one tokenizer.
    Each comparison is written to `output/also/<name>/ablation.{json,md}`."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labels = labels or {side: side for side in SIDES}
    also = also or {}
    settings = base.ablate
    paths = {"raw": raw, "clean": clean, **{f"also-{name}": p for name, p in also.items()}}
    files = {side: list_shards(p) for side, p in paths.items()}
    if not evals:
        log(
            "warning: no --eval given; scoring held-out documents of the clean side (one domain per source/lang). "
            "They favour the clean side's sources; pass --eval NAME=PATH for fresh text neither side saw."
        )
        evals = heldout_domains(clean, base.prep, out / "heldout")
    domains, eval_counts = {}, {}
    for name, path in evals.items():
        sampled, total = sample_domain(name, path, out / "eval", settings.eval_docs, base.prep.seed)
        domains[name], eval_counts[name] = str(sampled), total
    log(f"decontaminating {len(files)} sides against {len(evals)} eval set(s): {', '.join(evals)}")
    dropped, counts = decontaminate(files, evals, settings.decontaminate, out / "decontaminate")
    for side in files:
        log(f"[{side}] decontamination dropped {len(dropped[side]):,} document(s): {counts[side]}")
    kept = {side: write_side(files[side], dropped[side], out / "data" / side, base.prep.seed) for side in files}
    tok_path = out / "tokenizer.json"
    tokenizer = mixed_tokenizer(kept, base.prep, tok_path)
    log(
        f"tokenizer: {tokenizer.get_vocab_size():,} tokens, learnt from an equal mix of the {len(kept)} sides: {tok_path}"
    )
    stats = {side: side_stats(kept[side], tokenizer) for side in files}
    train = base.train.model_copy(update={"steps": None}) if base.train.tokens else base.train
    configs = {
        (side, k): base.model_copy(
            update={
                "data": kept[side],
                "eval_data": None,
                "eval_domains": domains,
                "output": str(out / "runs" / f"{side}-seed{k}"),
                "tokenizer": str(tok_path),
                "train": train,
                "prep": base.prep.model_copy(update={"seed": base.prep.seed + k}),
            }
        )
        for side in files
        for k in range(settings.seeds)
    }
    # A run folder left by an earlier call holds a model of other data or another tokenizer: resuming
    # from its last checkpoint would report that model's losses, so every call trains from scratch.
    shutil.rmtree(out / "runs", ignore_errors=True)
    shutil.rmtree(out / "also", ignore_errors=True)
    results = run_all(configs, settings.cpus_per_run, log)
    common = {
        "domains": domains,
        "results": results,
        "stats": stats,
        "dropped": dropped,
        "counts": counts,
        "kept": kept,
        "paths": paths,
        "evals": evals,
        "eval_counts": eval_counts,
        "tok_path": tok_path,
        "base": base,
        "configs": configs,
    }
    summary = _pair_summary("raw", labels, common)
    _write(out, summary)
    for name in also:
        pair = _pair_summary(f"also-{name}", {"raw": name, "clean": labels["clean"]}, common)
        _write(out / "also" / name, pair)
    return summary


def _pair_summary(side: str, labels: dict[str, str], c: dict) -> dict:
    """ablation.json's content for one comparison: `side` in the raw position against `clean`."""
    seeds = c["base"].ablate.seeds
    evals_of = {s: [c["results"][(s, k)]["eval"] for k in range(seeds)] for s in (side, "clean")}
    rows, mean = domain_rows(evals_of[side], evals_of["clean"], list(c["domains"]))
    first = c["results"][("clean", 0)]
    pair = {"raw": side, "clean": "clean"}
    return {
        "labels": labels,
        "seeds": seeds,
        "train_tokens": first["last"]["tokens"],
        "params": first["params"],
        "model": first["model"],
        "domains": rows,
        "mean": mean,
        "sides": {
            role: {
                "paths": c["paths"][key],
                "label": labels[role],
                "docs_in": c["stats"][key]["docs"] + len(c["dropped"][key]),
                "decontaminated": c["counts"][key],
                "train_files": c["kept"][key],
                **c["stats"][key],
            }
            for role, key in pair.items()
        },
        "runs": [
            {
                "side": role,
                "seed": c["base"].prep.seed + k,
                "tokens": c["results"][(key, k)]["last"]["tokens"],
                "wall_s": c["results"][(key, k)].get("wall_s"),
                "cpu_s": c["results"][(key, k)].get("cpu_s"),
            }
            for role, key in pair.items()
            for k in range(seeds)
        ],
        "eval_files": {n: {"path": c["evals"][n], "docs_in_file": c["eval_counts"][n]} for n in c["evals"]},
        "tokenizer": str(c["tok_path"]),
        "tokenizer_sides": len(c["kept"]),
        "config": c["base"].model_dump(
            mode="json", exclude={"data", "eval_data", "eval_domains", "output", "tokenizer"}
        ),
    }


def _write(folder: Path, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ablation.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    (folder / "ablation.md").write_text(markdown(summary))


def run_all(configs: dict[tuple[str, int], PretrainConfig], cpus: int, log) -> dict:
    """Every run: on a CPU, Ray tasks of `cpus` cores each, as many at once as the cluster fits (small
    models use one core well and two badly); on GPUs, one after another, each as `winnow pretrain` runs."""
    some = next(iter(configs.values()))
    if wants_ray(some) != (False, False) or torch.cuda.is_available():
        results = {}
        for (side, k), cfg in configs.items():
            log(f"[{side} seed {k}] training")
            wall = time.perf_counter()
            results[(side, k)] = run_pretrain(cfg, log=lambda m, s=side, i=k: log(f"[{s} seed {i}] {m}"))
            results[(side, k)]["wall_s"] = time.perf_counter() - wall
        return results
    ensure_ray()
    task = ray.remote(num_cpus=cpus)(_cpu_run)
    log(f"{len(configs)} CPU runs as Ray tasks of {cpus} core(s) each")
    refs = {
        key: task.remote(cfg.model_dump(mode="json"), cpus, f"[{key[0]} seed {key[1]}]")
        for key, cfg in configs.items()
    }
    results = {}
    for key, ref in refs.items():
        results[key] = ray.get(ref)
        log(f"[{key[0]} seed {key[1]}] done: mean eval loss {results[key]['eval']['all']['loss']:.4f}")
    return results


def _cpu_run(config: dict, cpus: int, prefix: str) -> dict:
    """One run in a Ray worker, on `cpus` torch threads; with its wall and CPU seconds (the CPU time is what
    the run costs on a machine shared with other work)."""
    torch.set_num_threads(cpus)
    cfg = PretrainConfig.model_validate(config)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_pretrain(cfg, log=lambda m: print(f"{prefix} {m}", flush=True))
    return {**result, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
