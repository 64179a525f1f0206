"""RoPE cache and rotation against transformers' Llama rotary embedding."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from sglc.kernels.rope import apply_rope, build_rope_cache

MAX_POSITIONS = 300
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Small, so the head's wavelengths fall in all three llama3 bands.
    "original_max_position_embeddings": 64,
}
SCALINGS = {
    "default": (10000.0, None),
    "linear": (10000.0, {"rope_type": "linear", "factor": 4.0}),
    "llama3": (500000.0, LLAMA3),
    "legacy-type-key": (10000.0, {"type": "linear", "factor": 2.0}),
}


def hf_rotary(head_dim: int, base: float, scaling: dict | None) -> LlamaRotaryEmbedding:
    params = {"rope_theta": base, **(scaling or {"rope_type": "default"})}
    if "type" in params:
        params["rope_type"] = params.pop("type")
    config = LlamaConfig(
        hidden_size=4 * head_dim,
        num_attention_heads=4,
        head_dim=head_dim,
        max_position_embeddings=MAX_POSITIONS,
        rope_parameters=params,
    )
    return LlamaRotaryEmbedding(config)


def random_qk(num_tokens, num_q_heads, num_k_heads, head_dim, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(num_tokens, num_q_heads, head_dim, generator=gen).to(dtype)
    k = torch.randn(num_tokens, num_k_heads, head_dim, generator=gen).to(dtype)
    positions = torch.randint(0, MAX_POSITIONS, (num_tokens,), generator=gen)
    return q, k, positions


def hf_rotate(rotary, q, k, positions):
    """HF's cos/sin and apply_rotary_pos_emb, on our [T, H, D] layout."""
    cos, sin = rotary(q, positions[None])  # [1, T, D]
    q_hf, k_hf = apply_rotary_pos_emb(q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos, sin)
    return q_hf[0].transpose(0, 1), k_hf[0].transpose(0, 1)


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("base, scaling", SCALINGS.values(), ids=SCALINGS.keys())
def test_cache_matches_hf_cos_sin(base, scaling, head_dim):
    cache = build_rope_cache(head_dim, MAX_POSITIONS, base, scaling)
    assert cache.shape == (MAX_POSITIONS, head_dim) and cache.dtype == torch.float32
    positions = torch.arange(MAX_POSITIONS)
    cos, sin = hf_rotary(head_dim, base, scaling)(cache, positions[None])
    half = head_dim // 2
    torch.testing.assert_close(cache[:, :half], cos[0, :, :half], atol=1e-6, rtol=0)
    torch.testing.assert_close(cache[:, half:], sin[0, :, :half], atol=1e-6, rtol=0)


def test_scalings_change_the_frequencies():
    default = build_rope_cache(64, MAX_POSITIONS, 500000.0)
    llama3 = build_rope_cache(64, MAX_POSITIONS, 500000.0, LLAMA3)
    linear = build_rope_cache(64, MAX_POSITIONS, 500000.0, {"rope_type": "linear", "factor": 2})
    # llama3 keeps the highest frequency and rescales the lowest; linear rescales all.
    lowest_sin, highest_sin = 63, 32
    assert torch.equal(llama3[:, highest_sin], default[:, highest_sin])
    torch.testing.assert_close(
        llama3[:, lowest_sin], torch.sin(torch.asin(default[:, lowest_sin]) / 8)
    )
    assert not torch.allclose(linear[:, highest_sin], default[:, highest_sin])


@pytest.mark.parametrize("scaling", [{"rope_type": "yarn", "factor": 2.0}, {"type": "dynamic"}])
def test_unsupported_rope_type_is_named(scaling):
    name = scaling.get("rope_type", scaling.get("type"))
    with pytest.raises(ValueError, match=f"unsupported rope type '{name}'"):
        build_rope_cache(64, 16, 10000.0, scaling)


@pytest.mark.parametrize("heads", [(4, 4), (8, 2)], ids=["mha", "gqa4"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("base, scaling", SCALINGS.values(), ids=SCALINGS.keys())
def test_neox_matches_hf_llama(base, scaling, head_dim, heads):
    q, k, positions = random_qk(11, *heads, head_dim)
    cache = build_rope_cache(head_dim, MAX_POSITIONS, base, scaling)
    q_out, k_out = apply_rope(q, k, positions, cache)
    q_hf, k_hf = hf_rotate(hf_rotary(head_dim, base, scaling), q, k, positions)
    torch.testing.assert_close(q_out, q_hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k_out, k_hf, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(q_out, q, atol=1e-2)


def test_neox_bf16_close_to_fp32_hf():
    q, k, positions = random_qk(9, 8, 2, 64, dtype=torch.bfloat16)
    cache = build_rope_cache(64, MAX_POSITIONS, 10000.0)
    q_out, k_out = apply_rope(q, k, positions, cache)
    assert q_out.dtype == k_out.dtype == torch.bfloat16
    q_hf, k_hf = hf_rotate(hf_rotary(64, 10000.0, None), q.float(), k.float(), positions)
    torch.testing.assert_close(q_out.float(), q_hf, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(k_out.float(), k_hf, atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("head_dim", [64, 128])
def test_interleaved_matches_complex_rotation(head_dim):
    """GPT-J style: pair (2i, 2i+1) is a complex number multiplied by exp(i * pos * f_i)."""
    q, k, positions = random_qk(7, 4, 2, head_dim)
    rotary = hf_rotary(head_dim, 10000.0, None)
    cache = build_rope_cache(head_dim, MAX_POSITIONS, 10000.0)
    q_out, k_out = apply_rope(q, k, positions, cache, is_neox=False)
    angles = (positions[:, None].float() * rotary.inv_freq[None, :]).double()  # fp32 angles
    turn = torch.polar(torch.ones_like(angles), angles)[:, None, :]
    for x, out in ((q, q_out), (k, k_out)):
        expected = torch.view_as_real(
            torch.view_as_complex(x.double().unflatten(-1, (-1, 2))) * turn
        )
        torch.testing.assert_close(out.double(), expected.flatten(-2), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(q_out, apply_rope(q, k, positions, cache)[0], atol=1e-2)


def test_partial_rotary_leaves_tail_untouched():
    q, k, positions = random_qk(5, 4, 4, 64)
    cache = build_rope_cache(32, MAX_POSITIONS, 10000.0)
    q_out, k_out = apply_rope(q, k, positions, cache)
    q_head, k_head = apply_rope(
        q[..., :32].contiguous(), k[..., :32].contiguous(), positions, cache
    )
    assert torch.equal(q_out[..., 32:], q[..., 32:]) and torch.equal(k_out[..., 32:], k[..., 32:])
    assert torch.equal(q_out[..., :32], q_head) and torch.equal(k_out[..., :32], k_head)
