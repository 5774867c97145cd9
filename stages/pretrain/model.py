"""A compact LLaMA-style decoder: enough model to tell whether a cleaner corpus trains a better one.

    tokens -> embedding -> n_layers x [x + attn(rmsnorm(x)); x + swiglu(rmsnorm(x))] -> rmsnorm -> head

  - pre-norm RMSNorm, rotary position embeddings on q and k, no biases anywhere;
  - grouped-query attention (`n_kv_heads` < `n_heads`) through `scaled_dot_product_attention`, so a GPU
    gets a fused (flash / memory-efficient) kernel;
  - SwiGLU MLP, residual output projections initialised with std / sqrt(2 * n_layers);
  - optional Baichuan 2 NormHead (unit-norm output embedding rows) and max-z loss, two cheap guards
    against logits that drift large in long bf16 runs.

The forward has no Python control flow that depends on tensor values, so it runs as it is under
`torch.compile` and `torch.autocast("cuda", dtype=torch.bfloat16)`. `bits_per_byte` turns a summed
loss into the number that can be compared across tokenizers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from pipeline.config import StrictModel


class ModelConfig(StrictModel):
    vocab_size: int = Field(
        gt=0, description="Tokenizer vocabulary size (rows of the embedding and of the output head)."
    )
    dim: int = Field(256, gt=0, description="Width of the residual stream.")
    n_layers: int = Field(4, gt=0, description="Transformer blocks.")
    n_heads: int = Field(4, gt=0, description="Query heads; dim must be a multiple of it.")
    n_kv_heads: int | None = Field(
        None,
        gt=0,
        description="Key/value heads (grouped-query attention); must divide n_heads. Empty: n_heads (ordinary multi-head attention).",
    )
    ffn_dim: int | None = Field(
        None,
        gt=0,
        description="SwiGLU hidden width. Empty: 8/3 * dim rounded up to a multiple of 64 (about the parameters of a 4 * dim GELU MLP).",
    )
    max_seq_len: int = Field(512, gt=0, description="Longest sequence; the rotary tables are precomputed up to it.")
    rope_theta: float = Field(
        10000.0, gt=0, description="Rotary base: larger values rotate slower, for longer contexts."
    )
    norm_eps: float = Field(1e-5, gt=0, description="RMSNorm epsilon.")
    tie_embeddings: bool = Field(
        True, description="Share the input embedding with the output head (saves vocab_size * dim parameters)."
    )
    norm_head: bool = Field(
        False,
        description="Baichuan 2 NormHead: L2-normalise the output embedding rows before the logits (only in the head; a tied input lookup stays raw).",
    )
    init_std: float = Field(
        0.02,
        gt=0,
        description="Std of the normal init; residual output projections get init_std / sqrt(2 * n_layers).",
    )

    @model_validator(mode="after")
    def _shapes(self):
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.kv_heads})")
        if self.head_dim % 2:
            raise ValueError(
                f"head dim dim / n_heads = {self.head_dim} must be even: rotary embeddings rotate pairs of channels"
            )
        return self

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def hidden_dim(self) -> int:
        return self.ffn_dim or 64 * math.ceil(8 * self.dim / 3 / 64)


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 so bf16 activations do not lose the scale."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos and sin [max_seq_len, head_dim] for `apply_rope`: channel i and i + head_dim/2 form a pair
    rotated by angle pos * theta ** (-2i / head_dim)."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotates x [B, H, T, head_dim] by position: then q . k depends only on the distance between them."""
    x32 = x.float()
    first, second = x32.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return (x32 * cos + rotated * sin).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.kv_heads != self.n_heads:
            # Repeat rather than enable_gqa=True: the flag sends fp32 inputs (and some GPUs) to the
            # unfused math kernel, while repeated heads get a fused kernel everywhere.
            repeat = self.n_heads // self.kv_heads
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x): the gated MLP of PaLM and LLaMA."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = SwiGLU(cfg)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    """Decoder-only language model: tokens [B, T] -> next-token logits [B, T, vocab_size]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        # non-persistent: derived from the config, so checkpoints stay free of them
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) everywhere; the projections that write into the residual stream get
        init_std / sqrt(2 * n_layers), so the stream's variance does not grow with depth (GPT-2)."""
        std = self.cfg.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        for layer in self.layers:
            for proj in (layer.attention.wo, layer.feed_forward.w2):
                nn.init.normal_(proj.weight, mean=0.0, std=std / math.sqrt(2 * self.cfg.n_layers))

    @property
    def head_weight(self) -> Tensor:
        """Output embedding as the logits see it: unit-norm rows under NormHead."""
        weight = self.tok_embeddings.weight if self.output is None else self.output.weight
        return F.normalize(weight, dim=-1) if self.cfg.norm_head else weight

    def forward(self, tokens: Tensor) -> Tensor:
        seq_len = tokens.shape[1]
        if seq_len > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {seq_len} tokens is longer than max_seq_len ({self.cfg.max_seq_len})")
        cos, sin = self.rope_cos[:seq_len], self.rope_sin[:seq_len]
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return F.linear(self.norm(x), self.head_weight)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, a tied matrix counted once. `non_embedding` leaves out the input embedding table
        (a lookup, no FLOPs); an untied output head stays in, because it is a matmul."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.tok_embeddings.weight.numel() if non_embedding else total

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward), the PaLM / Chinchilla estimate used for MFU:
        6 * N + 12 * n_layers * dim * seq_len, N the non-embedding parameters (2 FLOPs per weight per
        token forward, 4 backward) and the second term attention's q.k and p.v matmuls over the full
        T x T (the causal half is not discounted, as in PaLM). A tied head is not in N but still
        does a vocab x dim matmul: it adds 6 * vocab_size * dim."""
        cfg = self.cfg
        flops = 6 * self.num_params(non_embedding=True) + 12 * cfg.n_layers * cfg.dim * seq_len
        if cfg.tie_embeddings:
            flops += 6 * cfg.vocab_size * cfg.dim
        return float(flops)


def lm_loss(
    logits: Tensor, targets: Tensor, *, ignore_index: int = -100, max_z_weight: float = 0.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean cross-entropy over the positions whose target is not `ignore_index`, in float32 (bf16
    log-softmax over a large vocabulary loses the small probabilities), plus Baichuan 2's max-z loss
    max_z_weight * mean(max logit ** 2), which keeps logits from drifting large. Returns (loss,
    {"ce", "max_z"}) with the parts as detached 0-d tensors, so reading them (which waits for the
    device) is left to the caller, once per step; max_z is reported even when its weight is 0, as a
    watch on logit growth."""
    logits = logits.float().flatten(0, -2)
    targets = targets.flatten()
    keep = (targets != ignore_index).float()
    count = keep.sum().clamp_min(1.0)  # all positions ignored: 0 rather than nan
    ce = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="sum") / count
    max_z = (logits.max(dim=-1).values.square() * keep).sum() / count
    loss = ce + max_z_weight * max_z if max_z_weight > 0 else ce
    return loss, {"ce": ce.detach(), "max_z": max_z.detach()}


def bits_per_byte(total_nats: float, total_bytes: int) -> float:
    """Summed next-token loss of a text (nats) over its UTF-8 bytes, in bits: unlike loss per token it
    does not depend on how many tokens the tokenizer cut the text into, so it compares tokenizers."""
    if total_bytes <= 0:
        raise ValueError(f"total_bytes must be positive, got {total_bytes}")
    return total_nats / (math.log(2) * total_bytes)
