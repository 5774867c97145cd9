"""The training loop: weighted batches in, AdamW steps, held-out loss per source and language out.

One function (`train_worker`) is the whole loop for one data-parallel rank. It runs in this process
for a single CPU or GPU worker, and on Ray Train's `TorchTrainer` workers (DDP) for several GPUs or
under `ray job submit`, so the cluster path is the same code. Everything a resumed run needs
(model, optimiser, each rank's sampler state, the step) is in a checkpoint, so a run killed at step
k and resumed computes the same step k+1 as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import ray
import ray.train
import ray.train.torch
import torch
import torch.nn.functional as F
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from pipeline.ray_setup import ensure_ray
from stages.pretrain.config import PretrainConfig
from stages.pretrain.data import (
    WeightedSampler,
    build_eval_set,
    choose_heldout,
    is_shuffled,
    list_shards,
    read_meta,
    read_text_file,
    read_texts,
)
from stages.pretrain.model import Llama, ModelConfig, bits_per_byte, lm_loss
from stages.pretrain.tokenizer import eos_id, load_tokenizer, train_tokenizer

# Dense bf16 peak FLOP/s per GPU, for MFU (vendor datasheets, SXM parts).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}
LN2 = math.log(2)


@dataclass
class Prepared:
    """What every rank shares: the tokenizer, the held-out ids per group, the files."""

    output: str
    tokenizer: str
    heldout: dict[str, list[str]]
    train_files: list[str]
    eval_files: list[str]


# --- preparation (driver) ---------------------------------------------------------------------------


def prepare(cfg: PretrainConfig) -> Prepared:
    """Chooses the held-out split and trains the tokenizer once, saved beside the run (a resumed or
    repeated run reuses both, so its numbers stay comparable)."""
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    train_files = list_shards(cfg.data)
    eval_files = [] if cfg.eval_domains else list_shards(cfg.eval_data or cfg.data)
    p = cfg.prep
    heldout_path = out / "heldout.json"
    if cfg.eval_domains:  # evaluation text comes from its own files: nothing of the data is held out
        heldout, eval_files = {}, []
        heldout_path.write_text("{}")
    elif heldout_path.exists():
        heldout = json.loads(heldout_path.read_text())
    else:
        heldout = choose_heldout(
            read_meta(eval_files),
            fraction=p.heldout_fraction,
            min_docs=p.heldout_min_docs,
            max_docs=p.heldout_max_docs,
            seed=p.seed,
        )
        heldout_path.write_text(json.dumps(heldout, indent=1, ensure_ascii=False))
    tok_path = cfg.tokenizer or str(out / "tokenizer.json")
    if not os.path.exists(tok_path):
        excluded = {i for ids in heldout.values() for i in ids}
        train_tokenizer(tokenizer_sample(train_files, excluded, p.tokenizer_docs, p.seed), p.vocab_size, tok_path)
    return Prepared(str(out), tok_path, heldout, train_files, eval_files)


def tokenizer_sample(files: list[str], excluded: set[str], limit: int, seed: int) -> list[str]:
    """Up to `limit` training documents (never held-out ones), from files in a seeded order."""
    texts: list[str] = []
    for i in np.random.Generator(np.random.PCG64(seed)).permutation(len(files)):
        t = pq.read_table(files[int(i)], columns=["id", "text"])
        for doc_id, text in zip(t.column("id").to_pylist(), t.column("text").to_pylist()):
            if doc_id not in excluded:
                texts.append(text)
                if len(texts) >= limit:
                    return texts
    return texts


# --- schedule, evaluation, checkpoints --------------------------------------------------------------


def total_steps(cfg: PretrainConfig, world: int) -> int:
    t = cfg.train
    if t.tokens is not None:
        return max(1, math.ceil(t.tokens / (t.batch_size * t.grad_accum * world * cfg.prep.seq_len)))
    return t.steps


def lr_at(step: int, steps: int, cfg: PretrainConfig) -> float:
    """Linear warmup, then WSD (flat, linear decay over the last `decay_fraction`) or cosine, to min_lr_ratio * lr."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    floor = t.lr * t.min_lr_ratio
    if t.schedule == "wsd":
        decay_start = steps - max(1, round(t.decay_fraction * steps))
        if step < decay_start:
            return t.lr
        frac = (step - decay_start + 1) / max(1, steps - decay_start)
        return t.lr - (t.lr - floor) * frac
    frac = (step - t.warmup_steps + 1) / max(1, steps - t.warmup_steps)
    return floor + 0.5 * (t.lr - floor) * (1 + math.cos(math.pi * min(1.0, frac)))


@torch.no_grad()
def evaluate(model, eval_sets, device, autocast, batch_size: int) -> dict[str, dict]:
    """Per held-out group: mean loss per token (nats) and bits per byte; plus `all`, over every group."""
    model.eval()
    results, total_nats, total_tokens, total_bytes = {}, 0.0, 0, 0
    for es in eval_sets:
        nats, tokens = 0.0, 0
        for start in range(0, len(es.windows), batch_size):
            w = es.windows[start : start + batch_size].to(device)
            with autocast():
                logits = model(
                    w[:, :-1].clamp_min(0)
                )  # padding past the end only feeds positions whose targets are ignored
            targets = w[:, 1:]
            nats += float(
                F.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)),
                    targets.reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
            )
            tokens += int((targets != -100).sum())
        results[es.name] = {
            "loss": nats / max(tokens, 1),
            "bpb": bits_per_byte(nats, es.bytes),
            "tokens": tokens,
            "bytes": es.bytes,
            "docs": es.docs,
        }
        total_nats, total_tokens, total_bytes = total_nats + nats, total_tokens + tokens, total_bytes + es.bytes
    if eval_sets:
        results["all"] = {
            "loss": total_nats / max(total_tokens, 1),
            "bpb": bits_per_byte(total_nats, total_bytes),
            "tokens": total_tokens,
            "bytes": total_bytes,
            "docs": sum(es.docs for es in eval_sets),
        }
    model.train()
    return results


def checkpoint_dir(output: str) -> Path:
    return Path(output) / "checkpoints"


def latest_checkpoint(output: str) -> Path | None:
    marker = checkpoint_dir(output) / "latest"
    if not marker.exists():
        return None
    path = checkpoint_dir(output) / marker.read_text().strip()
    return path if path.exists() else None


def save_checkpoint(output: str, step: int, model, optimizer, sampler_state: dict, rank: int, world: int) -> None:
    """Each rank writes its sampler state; rank 0 the model and optimiser, then moves `latest` (last,
    so a crash mid-save leaves the previous checkpoint as the latest)."""
    path = checkpoint_dir(output) / f"step-{step:07d}"
    path.mkdir(parents=True, exist_ok=True)
    (path / f"sampler-{rank}.json").write_text(json.dumps(sampler_state))
    if world > 1:
        torch.distributed.barrier()
    if rank == 0:
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "world": world},
            path / "state.pt",
        )
        tmp = checkpoint_dir(output) / ".latest.tmp"
        tmp.write_text(path.name)
        os.replace(tmp, checkpoint_dir(output) / "latest")
    if world > 1:
        torch.distributed.barrier()


def load_checkpoint(path: Path, model, optimizer, sampler: WeightedSampler, rank: int, world: int) -> int:
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)  # no unpickling of arbitrary objects
    if state["world"] != world:
        raise ValueError(
            f"{path}: saved with {state['world']} workers, resumed with {world}; the sampler streams differ, so resume with the same number"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(json.loads((path / f"sampler-{rank}.json").read_text()))
    return int(state["step"])


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


# --- the loop ---------------------------------------------------------------------------------------


def build_optimizer(model, cfg: PretrainConfig, device: torch.device):
    t = cfg.train
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), eps=1e-8, fused=device.type == "cuda")


def train_worker(
    cfg: PretrainConfig,
    prepared: Prepared,
    *,
    rank: int = 0,
    world: int = 1,
    device: torch.device | None = None,
    stop_after: int | None = None,
    report=None,
    log=print,
) -> dict:
    """Trains (or resumes) to the configured budget; returns the final evaluation (rank 0) and timing.
    `stop_after` ends the run early after that many steps in total, as a crash would (for tests)."""
    t = cfg.train
    device = device or torch.device("cuda" if torch.cuda.is_available() and t.device != "cpu" else "cpu")
    bf16 = device.type == "cuda" and t.dtype in ("auto", "bf16")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else nullcontext
    torch.manual_seed(cfg.prep.seed)
    tok = load_tokenizer(prepared.tokenizer)
    mcfg = ModelConfig.model_validate(
        {"vocab_size": tok.get_vocab_size(), "max_seq_len": cfg.prep.seq_len, **cfg.model}
    )
    model = Llama(mcfg).to(device)
    optimizer = build_optimizer(model, cfg, device)
    excluded = frozenset(i for ids in prepared.heldout.values() for i in ids)
    sampler = WeightedSampler(
        prepared.train_files,
        tok,
        cfg.prep.seq_len,
        seed=cfg.prep.seed,
        exclude=excluded,
        rank=rank,
        world=world,
        buffer_docs=cfg.prep.buffer_docs,
    )
    step = 0
    resume_from = latest_checkpoint(prepared.output)
    if resume_from is not None:
        step = load_checkpoint(resume_from, model, optimizer, sampler, rank, world)
        if rank == 0:
            log(f"resumed from {resume_from} at step {step}")
    forward = model
    if world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if t.compile:
        forward = torch.compile(forward)
    eval_sets = []
    if rank == 0 and cfg.eval_domains:
        eval_sets = [
            build_eval_set(name, read_text_file(path), tok, cfg.prep.seq_len, eos_id(tok))
            for name, path in cfg.eval_domains.items()
        ]
    elif rank == 0:
        texts = read_texts(prepared.eval_files, set(excluded))
        eval_sets = [
            build_eval_set(g, [texts[i] for i in ids if i in texts], tok, cfg.prep.seq_len, eos_id(tok))
            for g, ids in sorted(prepared.heldout.items())
        ]
    steps = total_steps(cfg, world)
    flops_per_token = model.flops_per_token(cfg.prep.seq_len)
    peak = peak_flops(device)
    metrics_path = Path(prepared.output) / "metrics.jsonl"
    tokens_per_step = t.batch_size * t.grad_accum * world * cfg.prep.seq_len
    last = {}
    window_start, window_tokens = time.perf_counter(), 0
    end = steps if stop_after is None else min(steps, stop_after)
    while step < end:
        lr = lr_at(step, steps, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ce_sum, z_sum = torch.zeros((), device=device), torch.zeros((), device=device)
        for _ in range(t.grad_accum):
            batch = sampler.next_batch(t.batch_size).to(device, non_blocking=True)
            with autocast():
                logits = forward(batch[:, :-1])
            loss, parts = lm_loss(logits, batch[:, 1:], max_z_weight=t.max_z_weight)
            (loss / t.grad_accum).backward()
            ce_sum += parts["ce"] / t.grad_accum
            z_sum += parts["max_z"] / t.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        ce_sum, z_sum, grad_norm = (float(x) for x in (ce_sum, z_sum, grad_norm))  # the step's one wait for the device
        window_tokens += tokens_per_step
        last = {
            "step": step,
            "loss": ce_sum,
            "max_z": z_sum,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": step * tokens_per_step,
        }
        if step % t.log_every == 0 or step == end:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - window_start
            last["tokens_per_s"] = window_tokens / elapsed
            last["mfu"] = flops_per_token * last["tokens_per_s"] / (peak * world) if peak else None
            window_start, window_tokens = time.perf_counter(), 0
            if rank == 0:
                log(
                    f"step {step}/{steps}  loss {ce_sum:.4f}  lr {lr:.2e}  {last['tokens_per_s']:,.0f} tok/s"
                    + (f"  MFU {100 * last['mfu']:.1f}%" if last["mfu"] else "")
                )
        if rank == 0:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(last) + "\n")
        if report is not None:
            report(last)
        if t.eval_every and step % t.eval_every == 0 and step < end and rank == 0:
            _log_eval(metrics_path, step, evaluate(model, eval_sets, device, autocast, t.eval_batch_size), log)
        if (t.checkpoint_every and step % t.checkpoint_every == 0) or step == end:
            save_checkpoint(prepared.output, step, model, optimizer, sampler.state_dict(), rank, world)
    result = {
        "steps": steps,
        "step": step,
        "last": last,
        "params": model.num_params(),
        "params_non_embedding": model.num_params(non_embedding=True),
        "device": str(device),
        "world": world,
        "model": mcfg.model_dump(),
    }
    if rank == 0 and step >= steps:
        result["eval"] = evaluate(model, eval_sets, device, autocast, t.eval_batch_size)
        _log_eval(metrics_path, step, result["eval"], log)
        (Path(prepared.output) / "eval.json").write_text(json.dumps(result, indent=1))
    return result


def _log_eval(path: Path, step: int, results: dict, log) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, "eval": results}) + "\n")
    if "all" in results:
        log(
            f"step {step}: held-out loss {results['all']['loss']:.4f}, {results['all']['bpb']:.4f} bits/byte over {len(results) - 1} groups"
        )


# --- entry points -----------------------------------------------------------------------------------


def _ray_loop(config: dict) -> None:
    """A Ray Train worker: Ray has set up torch.distributed (gloo on CPU, NCCL on GPU)."""
    ctx = ray.train.get_context()
    cfg = PretrainConfig.model_validate(config["cfg"])
    prepared = Prepared(**config["prepared"])
    train_worker(
        cfg,
        prepared,
        rank=ctx.get_world_rank(),
        world=ctx.get_world_size(),
        device=ray.train.torch.get_device(),
        stop_after=config.get("stop_after"),
        report=lambda m: ray.train.report({k: v for k, v in m.items() if v is not None}),
    )


def wants_ray(cfg: PretrainConfig) -> tuple[bool, bool]:
    """(use Ray Train, use GPUs): several workers, or GPUs that only the cluster has, go through Ray Train."""
    t = cfg.train
    local_gpu = torch.cuda.is_available()
    cluster_gpu = False
    if os.environ.get("RAY_ADDRESS") and t.device != "cpu":
        ensure_ray()
        cluster_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    use_gpu = t.device == "cuda" or (t.device == "auto" and (local_gpu or cluster_gpu))
    return t.workers > 1 or (use_gpu and not local_gpu), use_gpu


def run_pretrain(cfg: PretrainConfig, *, stop_after: int | None = None, log=print) -> dict:
    """Prepares, then trains in this process or on Ray Train workers; returns the result of rank 0."""
    prepared = prepare(cfg)
    if not is_shuffled(prepared.train_files):
        log(
            "note: the training files are not export shards; the sampler streams them file by file through a "
            f"{cfg.prep.buffer_docs}-document buffer, so a source kept in its own files reaches the model in runs (export or shuffle them first)"
        )
    use_ray, use_gpu = wants_ray(cfg)
    if not use_ray:
        return train_worker(cfg, prepared, stop_after=stop_after, log=log)

    ensure_ray()
    trainer = TorchTrainer(
        _ray_loop,
        train_loop_config={"cfg": cfg.model_dump(mode="json"), "prepared": asdict(prepared), "stop_after": stop_after},
        scaling_config=ScalingConfig(num_workers=cfg.train.workers, use_gpu=use_gpu),
        run_config=RunConfig(name="pretrain", storage_path=str(Path(cfg.output).resolve() / "ray")),
    )
    trainer.fit()
    eval_path = Path(cfg.output) / "eval.json"
    return json.loads(eval_path.read_text()) if eval_path.exists() else {"step": stop_after}
