"""Training throughput of the bundled model against Hugging Face's LlamaForCausalLM of the same shape.

Both models get the same shape (layers, width, heads, SwiGLU width, vocabulary, tied embeddings,
RoPE), the same random token batches, the same AdamW step with gradient clipping, and the same
precision (bf16 autocast on a GPU, fp32 on the CPU), with or without torch.compile; attention is
`scaled_dot_product_attention` in both. Prints tokens/s of each, the ratio, and on a known GPU the
MFU (6N + 12LdT FLOPs per token over the dense bf16 peak).

    .venv/bin/python benchmarks/bench_pretrain.py --config configs/pretrain_tiny.yaml --batch 8 --steps 20
    python benchmarks/bench_pretrain.py --config configs/pretrain_125m.yaml --batch 16 --steps 30 --compile   # GPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.pretrain.config import load_pretrain_config  # noqa: E402
from stages.pretrain.model import Llama, ModelConfig, lm_loss  # noqa: E402
from stages.pretrain.train import peak_flops  # noqa: E402


def hf_twin(cfg: ModelConfig):
    """transformers' LLaMA with the very same shape."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.dim,
        intermediate_size=cfg.hidden_dim,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(hf)


def time_steps(forward, params, batches, device, autocast, steps: int, warmup: int) -> float:
    """Seconds per step of forward, loss, backward, clip and AdamW, after warmup."""
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        batch = batches[i % len(batches)]
        with autocast():
            logits = forward(batch[:, :-1])
        loss, _ = lm_loss(logits, batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/pretrain_tiny.yaml")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=None, help="default: the config's seq_len")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--only", choices=["winnow", "hf"], default=None)
    args = ap.parse_args()

    cfg = load_pretrain_config(args.config)
    seq = args.seq or cfg.prep.seq_len
    mcfg = ModelConfig.model_validate({"vocab_size": cfg.prep.vocab_size, "max_seq_len": seq, **cfg.model})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda"
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if bf16
        else (lambda: torch.autocast("cpu", enabled=False))
    )
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, mcfg.vocab_size, (args.batch, seq + 1), generator=gen).to(device) for _ in range(4)]
    tokens_per_step = args.batch * seq
    ours = Llama(mcfg).to(device)
    flops = ours.flops_per_token(seq)
    peak = peak_flops(device)
    name = torch.cuda.get_device_name(device) if bf16 else "CPU"
    print(
        f"{args.config}: {ours.num_params():,} parameters ({ours.num_params(non_embedding=True):,} non-embedding), batch {args.batch} x {seq}, "
        f"{'bf16' if bf16 else 'fp32'}, compile={args.compile}, {name}, torch threads {torch.get_num_threads()}"
    )
    results = {}
    if args.only in (None, "winnow"):
        fwd = torch.compile(ours) if args.compile else ours
        results["winnow"] = time_steps(
            fwd, list(ours.parameters()), batches, device, autocast, args.steps, args.warmup
        )
    del ours
    if args.only in (None, "hf"):
        hf = hf_twin(mcfg).to(device)
        print(f"transformers LlamaForCausalLM: {sum(p.numel() for p in hf.parameters()):,} parameters")
        model = torch.compile(hf) if args.compile else hf
        results["hf"] = time_steps(
            lambda x: model(input_ids=x).logits,
            list(hf.parameters()),
            batches,
            device,
            autocast,
            args.steps,
            args.warmup,
        )
    for key, sec in results.items():
        tps = tokens_per_step / sec
        mfu = f", MFU {100 * flops * tps / peak:.1f}%" if peak else ""
        print(f"{key:>7}: {sec * 1000:8.1f} ms/step  {tps:12,.0f} tokens/s{mfu}")
    if len(results) == 2:
        print(f"ratio winnow / transformers tokens/s: {results['hf'] / results['winnow']:.2f}")


if __name__ == "__main__":
    main()
