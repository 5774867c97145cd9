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
    log=print,
) -> dict:
    """Runs the whole comparison into `output`; writes and returns ablation.json's content."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labels = labels or {side: side for side in SIDES}
    settings = base.ablate
    files = {"raw": list_shards(raw), "clean": list_shards(clean)}
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
    log(f"decontaminating both sides against {len(evals)} eval set(s): {', '.join(evals)}")
    dropped, counts = decontaminate(files, evals, settings.decontaminate, out / "decontaminate")
    for side in SIDES:
        log(f"[{side}] decontamination dropped {len(dropped[side]):,} document(s): {counts[side]}")
    kept = {side: write_side(files[side], dropped[side], out / "data" / side, base.prep.seed) for side in SIDES}
    tok_path = out / "tokenizer.json"
    tokenizer = mixed_tokenizer(kept, base.prep, tok_path)
    log(f"tokenizer: {tokenizer.get_vocab_size():,} tokens, learnt from an equal mix of both sides: {tok_path}")
    stats = {side: side_stats(kept[side], tokenizer) for side in SIDES}
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
        for side in SIDES
        for k in range(settings.seeds)
    }
    # A run folder left by an earlier call holds a model of other data or another tokenizer: resuming
    # from its last checkpoint would report that model's losses, so every call trains from scratch.
    shutil.rmtree(out / "runs", ignore_errors=True)
    results = run_all(configs, settings.cpus_per_run, log)
    evals_of = {side: [results[(side, k)]["eval"] for k in range(settings.seeds)] for side in SIDES}
    rows, mean = domain_rows(evals_of["raw"], evals_of["clean"], list(domains))
    first = results[("clean", 0)]
    summary = {
        "labels": labels,
        "seeds": settings.seeds,
        "train_tokens": first["last"]["tokens"],
        "params": first["params"],
        "model": first["model"],
        "domains": rows,
        "mean": mean,
        "sides": {
            side: {
                "paths": raw if side == "raw" else clean,
                "label": labels[side],
                "docs_in": stats[side]["docs"] + len(dropped[side]),
                "decontaminated": counts[side],
                "train_files": kept[side],
                **stats[side],
            }
            for side in SIDES
        },
        "runs": [
            {
                "side": side,
                "seed": base.prep.seed + k,
                "tokens": results[(side, k)]["last"]["tokens"],
                "wall_s": results[(side, k)].get("wall_s"),
                "cpu_s": results[(side, k)].get("cpu_s"),
            }
            for side, k in configs
        ],
        "eval_files": {name: {"path": evals[name], "docs_in_file": eval_counts[name]} for name in evals},
        "tokenizer": str(tok_path),
        "config": base.model_dump(mode="json", exclude={"data", "eval_data", "eval_domains", "output", "tokenizer"}),
    }
    (out / "ablation.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    (out / "ablation.md").write_text(markdown(summary))
    return summary


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
