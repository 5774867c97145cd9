"""The pretraining model: causality, GQA, tied / NormHead heads, RoPE, the losses, FLOPs and compile."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import torch._inductor.config
import torch.nn.functional as F
from pydantic import ValidationError

from stages.pretrain.model import Llama, ModelConfig, apply_rope, bits_per_byte, lm_loss, rope_tables


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine threads that spin waiting
    for each other make them many times slower (60 steps: 0.3 s on one thread, 25 s on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = dict(vocab_size=64, dim=32, n_layers=2, n_heads=4, max_seq_len=64)


def tiny(**overrides) -> Llama:
    torch.manual_seed(0)
    return Llama(ModelConfig(**{**TINY, **overrides})).eval()


def tokens(batch: int = 2, seq: int = 16, vocab: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


# --- config -------------------------------------------------------------------------------------------


def test_config_defaults_and_checks():
    cfg = ModelConfig(vocab_size=100)
    assert (cfg.kv_heads, cfg.head_dim, cfg.hidden_dim) == (4, 64, 704)  # 8/3 * 256 = 682.7 -> 704
    assert ModelConfig(vocab_size=100, dim=96, n_heads=4).hidden_dim == 256
    assert ModelConfig(vocab_size=100, ffn_dim=100).hidden_dim == 100
    with pytest.raises(ValidationError, match="n_kv_heads"):
        ModelConfig(vocab_size=100, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValidationError, match="multiple of n_heads"):
        ModelConfig(vocab_size=100, dim=250, n_heads=4)
    with pytest.raises(ValidationError):
        ModelConfig(vocab_size=100, n_layer=2)  # typo: unknown keys are errors


# --- shapes and causality ---------------------------------------------------------------------------


def test_shapes_and_causality():
    model = tiny()
    x = tokens()
    logits = model(x)
    assert logits.shape == (2, 16, 64) and logits.dtype == torch.float32
    t = 6
    changed = x.clone()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 64
    with torch.no_grad():
        before, after = model(x), model(changed)
    torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], rtol=0, atol=1e-6)
    assert (after[:, t + 1 :] - before[:, t + 1 :]).abs().max() > 1e-3  # later positions do see the change


def test_sequence_longer_than_max_seq_len_is_refused():
    with pytest.raises(ValueError, match="max_seq_len"):
        tiny(max_seq_len=8)(tokens(seq=9))


# --- grouped-query attention --------------------------------------------------------------------------


def test_gqa_has_fewer_parameters_and_equals_mha_with_shared_kv_heads():
    gqa, mha = tiny(n_kv_heads=2), tiny()
    dim, head_dim, layers = 32, 8, 2
    assert mha.num_params() - gqa.num_params() == layers * 2 * dim * (4 - 2) * head_dim  # wk and wv
    x = tokens()
    assert gqa(x).shape == (2, 16, 64)

    # An MHA whose query heads 2h and 2h + 1 both use the k / v weights of GQA's kv head h computes the same.
    shared = {k: v for k, v in gqa.state_dict().items() if not k.endswith(("wk.weight", "wv.weight"))}
    mha.load_state_dict(shared, strict=False)
    for g_layer, m_layer in zip(gqa.layers, mha.layers):
        for name in ("wk", "wv"):
            w = getattr(g_layer.attention, name).weight.view(2, head_dim, dim)
            getattr(m_layer.attention, name).weight.data.copy_(
                w.repeat_interleave(2, dim=0).reshape(4 * head_dim, dim)
            )
    with torch.no_grad():
        torch.testing.assert_close(gqa(x), mha(x), rtol=1e-5, atol=1e-5)


# --- heads --------------------------------------------------------------------------------------------


def test_tied_and_untied_differ_by_one_vocab_by_dim_matrix():
    tied, untied = tiny(), tiny(tie_embeddings=False)
    assert untied.num_params() - tied.num_params() == 64 * 32
    assert untied.num_params(non_embedding=True) - tied.num_params(non_embedding=True) == 64 * 32
    assert tied.num_params() - tied.num_params(non_embedding=True) == 64 * 32
    assert untied.output is not None and tied.output is None


@pytest.mark.parametrize("tie", [True, False])
def test_norm_head_uses_unit_norm_rows_only_in_the_head(tie):
    model = tiny(norm_head=True, tie_embeddings=tie)
    hidden = {}
    model.norm.register_forward_hook(lambda module, inputs, output: hidden.update(h=output))
    model.layers[0].register_forward_pre_hook(lambda module, inputs: hidden.update(embedded=inputs[0]))
    x = tokens()
    with torch.no_grad():
        logits = model(x)
    raw = model.tok_embeddings.weight if tie else model.output.weight
    unit = raw / raw.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(logits, hidden["h"] @ unit.T, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits, hidden["h"] @ raw.T, atol=1e-3)  # the raw rows are far from unit norm
    torch.testing.assert_close(model.head_weight.norm(dim=-1), torch.ones(64))
    # the input lookup still reads the raw rows
    assert raw.norm(dim=-1).max() < 0.5
    torch.testing.assert_close(hidden["embedded"], model.tok_embeddings.weight[x], rtol=0, atol=0)


# --- rotary embeddings ------------------------------------------------------------------------------


def test_rope_scores_depend_only_on_relative_position():
    head_dim, seq = 16, 40
    cos, sin = rope_tables(head_dim, seq, 10000.0)
    gen = torch.Generator().manual_seed(0)
    q0, k0 = torch.randn(head_dim, generator=gen), torch.randn(head_dim, generator=gen)
    q = apply_rope(q0.expand(1, 1, seq, head_dim), cos, sin)[0, 0]  # the same vector at every position
    k = apply_rope(k0.expand(1, 1, seq, head_dim), cos, sin)[0, 0]
    scores = q @ k.T
    for i, j in [(3, 0), (10, 2), (7, 7), (20, 11)]:
        torch.testing.assert_close(scores[i + 5, j + 5], scores[i, j], rtol=1e-5, atol=1e-5)
    assert (scores[10, 2] - scores[10, 3]).abs() > 1e-3  # but the distance matters
    torch.testing.assert_close(q[0], q0)  # position 0 is not rotated
    torch.testing.assert_close(q.norm(dim=-1), q0.norm().expand(seq))  # a rotation keeps the norm


def test_rope_tables_are_not_in_the_state_dict():
    model = tiny()
    assert not any("rope" in key for key in model.state_dict())
    assert model.rope_cos.shape == (64, 8)


# --- losses -------------------------------------------------------------------------------------------


def test_lm_loss_matches_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 11, generator=gen), torch.randint(0, 11, (2, 5), generator=gen)
    loss, parts = lm_loss(logits, targets)
    expected = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    torch.testing.assert_close(loss, expected)
    assert parts["ce"].item() == pytest.approx(expected.item(), rel=1e-6)
    bf16_loss, _ = lm_loss(logits.bfloat16(), targets)
    assert bf16_loss.dtype == torch.float32


def test_lm_loss_ignores_masked_positions():
    gen = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(2, 6, 7, generator=gen), torch.randint(0, 7, (2, 6), generator=gen)
    masked = targets.clone()
    masked[0, :3] = -100
    masked[1, 5] = -100
    keep = masked != -100
    loss, _ = lm_loss(logits, masked)
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], targets[keep]))
    assert not torch.allclose(loss, lm_loss(logits, targets)[0])
    logits[~keep] = 1e4  # whatever the ignored positions hold, nothing changes
    torch.testing.assert_close(lm_loss(logits, masked)[0], loss)
    all_ignored, _ = lm_loss(logits, torch.full_like(targets, -100))
    assert all_ignored.item() == 0.0


def test_max_z_loss_is_the_hand_computation():
    gen = torch.Generator().manual_seed(2)
    logits = (3 * torch.randn(3, 4, 9, generator=gen)).requires_grad_()
    targets = torch.randint(0, 9, (3, 4), generator=gen)
    targets[2, 1] = -100
    keep = targets != -100
    loss, parts = lm_loss(logits, targets, max_z_weight=2e-4)
    ce = F.cross_entropy(logits[keep], targets[keep])
    max_z = (logits.detach()[keep].max(dim=-1).values ** 2).mean()
    assert parts["max_z"].item() == pytest.approx(max_z.item(), rel=1e-6)
    torch.testing.assert_close(loss, ce + 2e-4 * max_z)
    plain, plain_parts = lm_loss(logits, targets)
    torch.testing.assert_close(plain, ce)  # weight 0: reported, not added
    assert plain_parts["max_z"].item() == pytest.approx(max_z.item(), rel=1e-6)
    loss.backward()  # the z term has a gradient
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_bits_per_byte_of_a_uniform_model():
    vocab, n_tokens, n_bytes = 64, 12, 30
    logits = torch.zeros(1, n_tokens, vocab)  # uniform: ln(vocab) nats per token
    targets = tokens(batch=1, seq=n_tokens, vocab=vocab)
    loss, parts = lm_loss(logits, targets)
    assert parts["ce"].item() == pytest.approx(math.log(vocab))
    assert bits_per_byte(loss.item() * n_tokens, n_bytes) == pytest.approx(
        n_tokens * math.log2(vocab) / n_bytes
    )  # 2.4
    assert bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="total_bytes"):
            bits_per_byte(1.0, bad)


# --- training, compile, autocast, FLOPs ---------------------------------------------------------------


def test_tiny_model_overfits_a_fixed_batch():
    model = tiny().train()
    batch = tokens(batch=4, seq=33)
    inputs, targets = batch[:, :-1], batch[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    initial = None
    for _ in range(60):
        loss, _ = lm_loss(model(inputs), targets)
        initial = initial if initial is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = lm_loss(model(inputs), targets)[0].item()
    assert initial == pytest.approx(math.log(64), rel=0.05)  # small init: close to uniform
    assert final < 0.3 * initial


def test_compiled_model_matches_eager():
    model = tiny(n_kv_heads=2, norm_head=True)
    x = tokens()
    # compile_threads=1: no pool of compile workers to start, which on a busy 2-core machine takes
    # longer than compiling this model (cold: 19 s in-process, 60 s with the pool)
    with torch.no_grad(), torch._inductor.config.patch(compile_threads=1):
        eager = model(x)
        try:
            compiled = torch.compile(model)(x)
        except Exception as err:  # only a missing compiler is a reason to skip; anything else fails
            if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
                pytest.skip(f"torch.compile needs a C++ compiler for CPU code and none is on PATH: {err}")
            raise
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_forward_and_backward_under_bf16_autocast():
    model = tiny().train()
    x = tokens()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss, _ = lm_loss(logits, x)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_flops_per_token_is_6n_plus_attention():
    common = dict(vocab_size=100, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=128)
    # per layer: wq 64*64 + wk 64*32 + wv 64*32 + wo 64*64 + w1, w3, w2 3*64*128 + two norms 2*64 = 36992
    body = 2 * 36992 + 64  # + final norm
    untied = Llama(ModelConfig(**common, tie_embeddings=False))
    tied = Llama(ModelConfig(**common, tie_embeddings=True))
    assert untied.num_params(non_embedding=True) == body + 100 * 64 == 80448  # the untied head is a matmul
    assert tied.num_params(non_embedding=True) == body == 74048
    attention = 12 * 2 * 64 * 128
    assert untied.flops_per_token(128) == 6 * 80448 + attention == 679296
    assert tied.flops_per_token(128) == 6 * 74048 + 6 * 100 * 64 + attention == 679296  # same matmuls
    assert tied.flops_per_token(256) - tied.flops_per_token(128) == 12 * 2 * 64 * 128


def test_residual_output_projections_start_smaller():
    model = tiny(n_layers=2, dim=64)
    for layer in model.layers:
        for scaled, plain in (
            (layer.attention.wo, layer.attention.wq),
            (layer.feed_forward.w2, layer.feed_forward.w1),
        ):
            assert plain.weight.std().item() == pytest.approx(0.02, rel=0.1)
            assert scaled.weight.std().item() == pytest.approx(0.02 / math.sqrt(2 * 2), rel=0.1)
    assert torch.equal(model.norm.weight, torch.ones(64))
