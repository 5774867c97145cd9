"""Settings of a pretraining run (configs/pretrain_*.yaml), validated like the pipeline's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from pipeline.config import StrictModel
from pipeline.yaml_lines import ConfigError, LineIndex, format_validation_error
from stages.pretrain.model import ModelConfig


class DataConfig(StrictModel):
    seq_len: int = Field(256, gt=8, description="Tokens per training sequence.")
    buffer_docs: int = Field(512, gt=0, description="Shuffle buffer of the weighted sampler, in documents.")
    heldout_fraction: float = Field(
        0.05, ge=0, lt=0.5, description="Share of each source/lang group held out for validation (never trained on)."
    )
    heldout_min_docs: int = Field(
        4, ge=1, description="At least this many held-out documents per group (but never more than half the group)."
    )
    heldout_max_docs: int = Field(
        200, ge=1, description="At most this many held-out documents per group (bounds evaluation time)."
    )
    tokenizer_docs: int = Field(
        20_000, gt=0, description="Training documents the tokenizer learns from (a seeded sample)."
    )
    vocab_size: int = Field(8192, ge=300, description="BPE vocabulary, including the 256 bytes and <|endoftext|>.")
    seed: int = Field(0, ge=0, description="Seed of the held-out choice, the tokenizer sample and the sampler.")


class TrainConfig(StrictModel):
    tokens: int | None = Field(None, gt=0, description="Training budget in tokens (sets the steps); or give `steps`.")
    steps: int | None = Field(None, gt=0, description="Optimiser steps; ignored when `tokens` is set.")
    batch_size: int = Field(16, gt=0, description="Sequences per micro-batch per worker.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimiser step.")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final learning rate as a share of the peak.")
    warmup_steps: int = Field(10, ge=0, description="Linear warmup from 0.")
    schedule: Literal["wsd", "cosine"] = Field(
        "wsd",
        description="wsd: warmup, stable, then linear decay over `decay_fraction` of the steps; cosine: cosine decay after warmup.",
    )
    decay_fraction: float = Field(0.2, gt=0, le=1, description="WSD: share of the steps spent decaying.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay on matrices (not on norms).")
    beta1: float = Field(0.9, gt=0, lt=1)
    beta2: float = Field(
        0.95, gt=0, lt=1, description="0.95 rather than 0.999: steadier with large batches and long runs."
    )
    grad_clip: float = Field(1.0, gt=0, description="Clip the global gradient norm to this.")
    max_z_weight: float = Field(0.0, ge=0, description="Baichuan 2's max-z loss weight (2e-4 there); 0 turns it off.")
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast on a GPU, fp32 on the CPU."
    )
    compile: bool = Field(False, description="torch.compile the model (a GPU run gains most).")
    eval_every: int = Field(0, ge=0, description="Evaluate on the held-out sets every N steps (0: only at the end).")
    log_every: int = Field(10, gt=0, description="Log loss, tokens/s and MFU every N steps.")
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every N steps (0: only at the end).")
    workers: int = Field(
        1,
        gt=0,
        description="Data-parallel workers (Ray Train, DDP); 1 trains in this process unless a GPU must be found on the cluster.",
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="auto: the local GPU, or the cluster's GPUs when there are any, else the CPU."
    )
    eval_batch_size: int = Field(16, gt=0, description="Held-out windows per evaluation batch.")

    @model_validator(mode="after")
    def _budget(self):
        if self.tokens is None and self.steps is None:
            raise ValueError("set `tokens` (a budget) or `steps`")
        return self


class AblateConfig(StrictModel):
    """How `winnow ablate` compares two training sets (docs/ablation.md)."""

    seeds: int = Field(1, ge=1, description="Runs per side, each with its own seed (model init and sampling).")
    eval_docs: int = Field(
        500, gt=0, description="At most this many documents of each evaluation domain are scored (a seeded sample)."
    )
    cpus_per_run: int = Field(
        1, gt=0, description="CPU runs go to a local Ray as tasks of this many cores each, as many at once as fit."
    )
    decontaminate: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of the decontaminate stage (ngram, threshold, ...); its benchmarks are the eval sets.",
    )


class PretrainConfig(StrictModel):
    data: list[str] = Field(
        min_length=1,
        description="Training shards: export folders, stage folders or Parquet files (text, source; lang, weight when present).",
    )
    eval_data: list[str] | None = Field(
        None, description="Where held-out documents come from (default: `data`); their ids are never trained on."
    )
    eval_domains: dict[str, str] | None = Field(
        None,
        description="Held-out domains, name -> Parquet or JSONL(.gz) file with a `text` field: scored instead of "
        "a held-out split of the data (then nothing is held out of `data`).",
    )
    output: str = Field(
        description="Run folder: tokenizer.json, heldout.json, checkpoints/, metrics.jsonl, eval.json."
    )
    tokenizer: str | None = Field(None, description="An existing tokenizer.json to use instead of training one.")
    prep: DataConfig = Field(default_factory=DataConfig, description="Sequences, held-out split, tokenizer, seed.")
    model: dict[str, Any] = Field(
        default_factory=dict,
        description="stages.pretrain.model.ModelConfig without vocab_size (taken from the tokenizer).",
    )
    train: TrainConfig
    ablate: AblateConfig = Field(default_factory=AblateConfig, description="`winnow ablate` only.")


def load_pretrain_config(path: str | Path, **overrides: Any) -> PretrainConfig:
    """Reads a pretraining YAML; `overrides` replace top-level keys (data, output, ...) or, as
    train__tokens=..., nested ones. Errors name the file, line and key."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    data = yaml.safe_load(text) or {}
    for key, value in overrides.items():
        if value is None:
            continue
        parts = key.split("__")
        target = data
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = value
    try:
        cfg = PretrainConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, PretrainConfig, where, LineIndex(text))) from None
    try:
        ModelConfig.model_validate({"vocab_size": cfg.prep.vocab_size, **cfg.model})
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(err, ModelConfig, where, LineIndex(text), prefix=("model",))
        ) from None
    return cfg
