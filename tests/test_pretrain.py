"""The pretraining stage on the CPU, on real shards: the tokenizer, the held-out split, the weighted
sampler (frequencies follow the weights; exact resume), training (loss falls; a resumed run repeats
an uninterrupted one step for step), evaluation (bits per byte), Ray Train (DDP on two CPU workers)
and `winnow ablate` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import REPO, default_folders

from stages.pretrain.config import load_pretrain_config
from stages.pretrain.data import WeightedSampler, build_eval_set, choose_heldout, list_shards, read_meta
from stages.pretrain.tokenizer import EOS, eos_id, train_tokenizer
from stages.pretrain.train import evaluate, run_pretrain

TINY = REPO / "configs" / "pretrain_tiny.yaml"


@pytest.fixture(scope="module")
def shards(weighted_run) -> Path:
    return weighted_run.parent / "out" / default_folders()["export"]


@pytest.fixture(scope="module")
def tokenizer(shards):
    texts = [
        t for f in list_shards([str(shards)]) for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()
    ]
    return train_tokenizer(texts, 1024)


def tiny(tmp_path: Path, shards: Path, **overrides):
    return load_pretrain_config(TINY, data=[str(shards)], output=str(tmp_path / "run"), **overrides)


# --- tokenizer and split -----------------------------------------------------------------------------


def test_tokenizer_splits_digits_keeps_bytes_and_whitespace(tokenizer):
    enc = tokenizer.encode("year 20231 costs 4.5")
    assert [t for t in enc.tokens if any(c.isdigit() for c in t)] == ["2", "0", "2", "3", "1", "4", "5"]
    for text in [
        "def f(x):\n        return x  # 注释",
        "emoji 🦀 and \u00e9 vs e\u0301, ＡＢＣ full-width",
        "\x00\x07 control",
    ]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text  # no normalisation, no unknown token
    assert tokenizer.get_vocab_size() == 1024 and tokenizer.token_to_id(EOS) is not None
    pieces = [p for p, _ in tokenizer.pre_tokenizer.pre_tokenize_str("if x:\n        return")]
    assert (
        "ĊĠĠĠĠĠĠĠ" in pieces
    )  # a newline and its indentation stay one piece (BPE can learn it as one token from code)


def test_heldout_choice_is_seeded_per_group_and_bounded(shards):
    clean = read_meta(list_shards([str(shards)]))
    a = choose_heldout(clean, fraction=0.1, min_docs=3, max_docs=20, seed=0)
    b = choose_heldout(clean, fraction=0.1, min_docs=3, max_docs=20, seed=0)
    assert a == b and set(a) == {
        f"{s}/{lang}" for s, lang in zip(clean.column("source").to_pylist(), clean.column("lang").to_pylist())
    }
    sizes = {g: len(ids) for g, ids in a.items()}
    assert all(3 <= n <= 20 for n in sizes.values()), sizes
    other_seed = choose_heldout(clean, fraction=0.1, min_docs=3, max_docs=20, seed=1)
    assert other_seed != a
    # a shuffled copy of the corpus holds out the same documents: the choice depends on ids, not order
    shuffled = clean.take(pa.array(np.random.default_rng(0).permutation(clean.num_rows)))
    assert choose_heldout(shuffled, fraction=0.1, min_docs=3, max_docs=20, seed=0) == a
    group_sizes = {}
    for s_, l_ in zip(clean.column("source").to_pylist(), clean.column("lang").to_pylist()):
        group_sizes[f"{s_}/{l_}"] = group_sizes.get(f"{s_}/{l_}", 0) + 1
    huge = choose_heldout(clean, fraction=0.49, min_docs=1000, max_docs=10**6, seed=0)
    assert all(len(ids) <= group_sizes[g] // 2 for g, ids in huge.items())  # never more than half a group


# --- the weighted sampler ---------------------------------------------------------------------------


def _weighted_file(tmp_path: Path, weights: list[float]) -> str:
    path = tmp_path / "w.parquet"
    texts = [f"document number {i} " + "word " * (i % 5) for i in range(len(weights))]
    pq.write_table(
        pa.table(
            {
                "id": [f"d{i}" for i in range(len(weights))],
                "text": texts,
                "source": ["s"] * len(weights),
                "weight": pa.array(weights, pa.float64()),
            }
        ),
        path,
    )
    return str(path)


def test_sampler_frequencies_follow_the_weights(tmp_path, tokenizer):
    """Chi-square of emitted document counts against counts proportional to weight."""
    from scipy.stats import chisquare

    weights = [0.1 + 0.15 * (i % 20) for i in range(40)]
    path = _weighted_file(tmp_path, weights)
    sampler = WeightedSampler([path], tokenizer, 32, seed=3, buffer_docs=16)
    texts = pq.read_table(path).column("text").to_pylist()
    counts = dict.fromkeys(texts, 0)
    for _ in range(20_000):
        counts[sampler.next_document()] += 1
    observed = np.array([counts[t] for t in texts], dtype=float)
    expected = np.array(weights) / sum(weights) * observed.sum()
    assert chisquare(observed, expected).pvalue > 0.001
    assert chisquare(observed, np.full(len(texts), observed.mean())).pvalue < 1e-6  # and plainly not uniform


def test_sampler_resumes_with_the_same_next_batch(shards, tokenizer):
    files = list_shards([str(shards)])
    a = WeightedSampler(files, tokenizer, 64, seed=5, buffer_docs=64)
    for _ in range(7):
        a.next_batch(4)
    state = json.loads(json.dumps(a.state_dict()))  # through JSON, as a checkpoint stores it
    expected = a.next_batch(4)
    b = WeightedSampler(files, tokenizer, 64, seed=5, buffer_docs=64)
    b.load_state_dict(state)
    assert torch.equal(b.next_batch(4), expected)
    c = WeightedSampler(files, tokenizer, 64, seed=6, buffer_docs=64)
    assert not torch.equal(
        c.next_batch(4), WeightedSampler(files, tokenizer, 64, seed=5, buffer_docs=64).next_batch(4)
    )


def test_ranks_see_disjoint_documents(tmp_path, tokenizer):
    path = _weighted_file(tmp_path, [1.0] * 30)
    seen = []
    for rank in (0, 1):
        s = WeightedSampler([path], tokenizer, 32, seed=0, rank=rank, world=2, buffer_docs=4)
        seen.append({s.next_document() for _ in range(200)})
    assert seen[0] and seen[1] and not (seen[0] & seen[1])


# --- evaluation -------------------------------------------------------------------------------------


def test_uniform_model_gives_log_vocab_loss_and_known_bits_per_byte(tokenizer):
    """A model whose logits are all zero predicts uniformly: ln V nats per token, so bits per byte is
    tokens * log2 V / bytes; and every token of the text plus its EOS is predicted exactly once."""
    from stages.pretrain.model import Llama, ModelConfig

    texts = ["短文本一。", "A short English text with some words.", "第二个中文文档，稍长一些，包含标点符号。"]
    es = build_eval_set("g", texts, tokenizer, 8, eos_id(tokenizer))
    n_tokens = sum(len(tokenizer.encode(t).ids) + 1 for t in texts)
    model = Llama(ModelConfig(vocab_size=tokenizer.get_vocab_size(), dim=32, n_layers=1, n_heads=2, max_seq_len=8))
    for p in model.parameters():
        p.data.zero_()
    result = evaluate(model, [es], torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False), 4)["g"]
    assert result["tokens"] == n_tokens
    assert result["loss"] == pytest.approx(math.log(tokenizer.get_vocab_size()), rel=1e-6)
    nbytes = sum(len(t.encode()) for t in texts)
    assert result["bytes"] == nbytes
    assert result["bpb"] == pytest.approx(n_tokens * math.log2(tokenizer.get_vocab_size()) / nbytes, rel=1e-6)


# --- training ---------------------------------------------------------------------------------------


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_loss_falls_and_every_group_is_evaluated(tmp_path, shards):
    cfg = tiny(tmp_path, shards)
    result = run_pretrain(cfg, log=lambda m: None)
    losses = _losses(Path(cfg.output))
    steps = sorted(losses)
    first = np.mean([losses[s] for s in steps[:3]])
    last = np.mean([losses[s] for s in steps[-10:]])
    assert first == pytest.approx(math.log(result["model"]["vocab_size"]), abs=0.3)  # starts near uniform
    assert last < first - 0.7
    groups = {
        f"{s}/{lang}"
        for s, lang in zip(
            *[pq.read_table(list_shards([str(shards)])[0]).column(c).to_pylist() for c in ("source", "lang")]
        )
    }
    assert groups <= set(result["eval"])
    for g, r in result["eval"].items():
        assert math.isfinite(r["bpb"]) and 0 < r["bpb"] < 8 and r["loss"] < math.log(result["model"]["vocab_size"]), g
    heldout = json.loads((Path(cfg.output) / "heldout.json").read_text())
    assert (Path(cfg.output) / "tokenizer.json").exists() and all(heldout.values())


def test_resume_continues_exactly(tmp_path, shards):
    """Killed after 6 of 12 steps and run again: steps 7-12 have the very losses of a run that never stopped."""
    straight = tiny(tmp_path / "a", shards, train__steps=12, train__log_every=4)
    run_pretrain(straight, log=lambda m: None)
    broken = tiny(tmp_path / "b", shards, train__steps=12, train__log_every=4)
    run_pretrain(broken, stop_after=6, log=lambda m: None)
    assert max(_losses(Path(broken.output))) == 6 and not (Path(broken.output) / "eval.json").exists()
    messages = []
    run_pretrain(broken, log=messages.append)
    assert any("resumed" in m and "step 6" in m for m in messages)
    a, b = _losses(Path(straight.output)), _losses(Path(broken.output))
    assert [b[s] for s in range(7, 13)] == [a[s] for s in range(7, 13)]
    ea = json.loads((Path(straight.output) / "eval.json").read_text())["eval"]["all"]["loss"]
    eb = json.loads((Path(broken.output) / "eval.json").read_text())["eval"]["all"]["loss"]
    assert ea == eb


def test_two_workers_through_ray_train(tmp_path, shards, ray_local):
    """workers: 2 goes through Ray Train's TorchTrainer (DDP, gloo on the CPU): both ranks train and
    checkpoint their sampler, rank 0 evaluates."""
    cfg = tiny(tmp_path, shards, train__steps=6, train__workers=2, train__log_every=3)
    result = run_pretrain(cfg, log=lambda m: None)
    assert result["world"] == 2 and result["step"] == 6 and "all" in result["eval"]
    ckpt = Path(cfg.output) / "checkpoints" / (Path(cfg.output) / "checkpoints" / "latest").read_text().strip()
    assert (ckpt / "sampler-0.json").exists() and (ckpt / "sampler-1.json").exists()
    s0, s1 = (json.loads((ckpt / f"sampler-{r}.json").read_text()) for r in (0, 1))
    assert s0["rng"] != s1["rng"]


def test_ablate_without_eval_falls_back_to_heldout_clean_documents(tmp_path, weighted_run):
    """No --eval: held-out documents of the clean side, one domain per source/lang, with a warning; the
    decontaminate stage takes them (and their raw copies) out of both sides before training."""
    out = weighted_run.parent / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "winnow",
            "ablate",
            "--raw",
            str(out / "00_ingest"),
            "--clean",
            str(out / default_folders()["export"]),
            "--config",
            str(TINY),
            "--tokens",
            "20000",
            "--output",
            str(tmp_path / "abl"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: no --eval given" in proc.stderr
    summary = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert len(summary["domains"]) >= 4 and summary["seeds"] == 1
    for r in summary["domains"]:
        assert math.isfinite(r["raw_loss"]) and math.isfinite(r["clean_loss"]) and r["raw_std"] == 0
    assert sum(summary["sides"]["clean"]["decontaminated"].values()) >= sum(r["docs"] for r in summary["domains"])
    assert sum(summary["sides"]["raw"]["decontaminated"].values()) > 0
    assert "held-out loss per domain" in proc.stdout and "clean loss" in proc.stdout


def test_reshuffle_interleaves_sources_and_keeps_every_document(tmp_path, weighted_run):
    """Ingest parts hold one input file each; reshuffled, every document is there once and sources mix."""
    from stages.pretrain.data import is_shuffled, reshuffle

    parts = list_shards([str(weighted_run.parent / "out" / "00_ingest")])
    assert not is_shuffled(parts)
    files = reshuffle(parts, str(tmp_path / "mixed"), seed=0, rows_per_shard=500)
    before = sorted(i for f in parts for i in pq.read_table(f, columns=["id"]).column("id").to_pylist())
    assert is_shuffled(files) and len(files) == math.ceil(len(before) / 500) >= 2
    table = pa.concat_tables([pq.read_table(f, columns=["id", "source"]) for f in files])
    assert sorted(table.column("id").to_pylist()) == before
    first = table.column("source").to_pylist()[:500]
    assert len(set(first)) >= 4  # the first rows already mix the sources
    assert reshuffle(parts, str(tmp_path / "mixed"), seed=0) == files  # done once, then reused
