"""Triton extend (prefill) attention: new tokens over a cached prefix, causal among themselves.

Same contract as :func:`sglc.kernels.extend_attention.extend_attention`.

Work is cut into *tiles* of ``BLOCK_M`` consecutive new queries of one request; the plan
lists them (longest context first, so the slowest tiles start earliest) and the grid is
``(num_tiles, Hq)``. A program holds its ``[BLOCK_M, BLOCK_D]`` query tile and walks the
key positions it may see, ``key_lo .. last query position``, in blocks of ``BLOCK_N``:
slots come from ``req_to_token`` and K/V rows of kv head ``h // (Hq // Hkv)`` are gathered
from the pool. The cached prefix and the new tokens form one range (``store_kv`` has
already put the new K/V in the pool; a quantized pool's codes are dequantized as they are
read, see `kv_quant`). Keys before the tile's first query position are seen
by every query of the tile, so without a sliding window the whole blocks among them run a
loop with no masks at all; only the blocks from there to the last query position (at most
``(BLOCK_M + BLOCK_N) / BLOCK_N`` of them) apply the causal mask. With a window every block
is masked. Softmax runs online in float32 (running max and denominator, exp2), so nothing of
size ``[M, keys]`` is materialised.

    tile (request b, queries i0 .. i0+BLOCK_M-1 at positions prefix_b + i)
    keys:  key_lo ........................ prefix_b + i0 ... last query position
           [BLOCK_N][BLOCK_N] ... unmasked  [BLOCK_N, BLOCK_N, masked causally]

Launch shapes (tile sides, warps, pipeline stages) come from :func:`launch_config`; the
values for head dims up to 128 were chosen by a sweep on an H200 (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import torch
import triton
import triton.language as tl
import triton.runtime.errors
from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionShape,
    IndexLike,
    check_options,
    check_shapes,
    to_int_list,
)
from sglc.kernels.kv_quant import KVBuffer
from sglc.kernels.triton_common import (
    KVOperand,
    attention_scores,
    check_kv_pair,
    check_launchable,
    check_plan_matches,
    dot_block,
    dot_precision,
    int32_tensor,
    is_interpreted,
    kv_operand,
    load_kv_rows,
    online_softmax_step,
    require_unit_last_stride,
    store_dtype,
)

# The interpreter uses the smallest `tl.dot` tiles so that small test shapes still cross
# block boundaries.
INTERPRETER_BLOCK = 16


class LaunchConfig(NamedTuple):
    """Tile sides and the Triton launch options of one extend-attention launch."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


# On a GPU, by head dim (BLOCK_D): up to 128 from the H200 sweep; larger heads keep smaller
# tiles so that the pipelined K/V buffers fit in shared memory.
GPU_CONFIGS = {64: LaunchConfig(128, 64, 8, 3), 128: LaunchConfig(128, 128, 8, 3)}
GPU_LARGE_HEAD_CONFIG = LaunchConfig(64, 32, 4, 2)
INTERPRETER_CONFIG = LaunchConfig(INTERPRETER_BLOCK, INTERPRETER_BLOCK, 4, 1)


# config asked for, dtype, head dim -> the config that launched (see `run_fitting`)
_FITTED: dict[tuple[LaunchConfig, torch.dtype, int], LaunchConfig] = {}


def smaller_config(config: LaunchConfig) -> LaunchConfig | None:
    """The next smaller launch shape that keeps BLOCK_M (the plan's tiles): fewer pipeline
    stages first, then half the key block; None at the smallest."""
    if config.num_stages > 2:
        return config._replace(num_stages=2)
    if config.block_n > 16:
        return config._replace(block_n=config.block_n // 2)
    if config.num_stages > 1:
        return config._replace(num_stages=1)
    return None


def run_fitting(config: LaunchConfig, key: tuple[torch.dtype, int],
                launch: Callable[[LaunchConfig], None]) -> None:
    """``launch(config)``, stepping down through `smaller_config` while the GPU's shared
    memory is too small for it (float32 tiles take twice the room the sweep's bf16 ones did;
    smaller cards have less); the shape that fits is remembered per (config, dtype, head dim)."""
    tried = _FITTED.get((config, *key), config)
    while True:
        try:
            launch(tried)
        except triton.runtime.errors.OutOfResources:
            tried = smaller_config(tried)
            if tried is None:
                raise
            continue
        _FITTED[(config, *key)] = tried
        return


def launch_config(device: torch.device, head_dim: int) -> LaunchConfig:
    """The default launch shape for ``head_dim`` on ``device`` (CPU: the interpreter's)."""
    if device.type == "cpu":
        return INTERPRETER_CONFIG
    block_d = dot_block(head_dim)
    return GPU_CONFIGS.get(max(block_d, 64), GPU_LARGE_HEAD_CONFIG)


class TritonExtendPlan(NamedTuple):
    """A batch's extend layout as device tensors, built once per forward pass."""

    shape: AttentionShape
    sliding_window: int | None
    num_tokens: int  # sum of extend lens: rows of q
    max_extend_len: int
    config: LaunchConfig
    requests: Tensor  # [B, 4] int32: req_to_token row, first row in q, prefix len, extend len
    tiles: Tensor  # [num_tiles, 2] int32: request index, first query of the tile in it

    @property
    def num_tiles(self) -> int:
        return int(self.tiles.shape[0])

    @property
    def block_m(self) -> int:
        return self.config.block_m


def triton_plan_extend(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> TritonExtendPlan:
    """The tiles and per-request metadata `triton_extend_attention` needs (one sync at most).

    ``block_m`` .. ``num_stages`` override the `launch_config` default for this device."""
    check_options(sliding_window, None)
    rows, prefixes, extends = (to_int_list(x) for x in (req_pool_indices, prefix_lens, extend_lens))
    if not len(rows) == len(prefixes) == len(extends):
        raise ValueError("req_pool_indices, prefix_lens and extend_lens differ in length")
    default = launch_config(req_to_token.device, shape.head_dim)
    block_m, block_n = dot_block(block_m or default.block_m), dot_block(block_n or default.block_n)
    config = LaunchConfig(block_m, block_n, num_warps or default.num_warps,
                          num_stages or default.num_stages)
    q_offsets = list(itertools.accumulate(extends, initial=0))[:-1]
    requests = [list(r) for r in zip(rows, q_offsets, prefixes, extends, strict=True)]
    tiles = [(b, start) for b, extend in enumerate(extends) for start in range(0, extend, block_m)]
    tiles.sort(key=lambda t: -(prefixes[t[0]] + min(t[1] + block_m, extends[t[0]])))
    device = req_to_token.device
    return TritonExtendPlan(
        shape, sliding_window, sum(extends), max(extends, default=0), config,
        int32_tensor(requests, device).view(-1, 4),
        int32_tensor([list(t) for t in tiles], device).view(-1, 2),
    )  # fmt: skip


def triton_extend_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: TritonExtendPlan | None = None,
) -> Tensor:
    """Attention of each request's new tokens over its whole cached context.

    Contract as `extend_attention`: ``q[T, Hq, D]`` in request order, the new tokens' K/V
    already in the pool; returns ``[T, Hq, D]`` in ``q.dtype``. `plan` (from
    `triton_plan_extend` on the same metadata and window) skips re-deriving the layout.
    The pool may be quantized (`kv_quant`).
    """
    shape = check_shapes(q, k_buffer, v_buffer)
    check_options(sliding_window, logit_cap)
    if plan is None:
        plan = triton_plan_extend(
            req_to_token, req_pool_indices, prefix_lens, extend_lens, shape,
            sliding_window=sliding_window,
        )  # fmt: skip
    _check_plan(plan, shape, sliding_window, q)
    q = q if q.stride(-1) == 1 else q.contiguous()
    k, v = kv_operand(k_buffer), kv_operand(v_buffer)
    check_kv_pair(k, v)
    require_unit_last_stride(req_to_token)
    check_launchable(_extend_kernel, q, k.data, v.data, req_to_token, plan.requests)
    out = torch.empty(q.shape, dtype=store_dtype(_extend_kernel, q.dtype), device=q.device)
    if plan.num_tiles > 0:
        run_fitting(plan.config, (q.dtype, plan.shape.head_dim), lambda config: _launch(
            q, k, v, req_to_token, out, plan, config, sm_scale, logit_cap))
    return out.to(q.dtype)


def _check_plan(
    plan: TritonExtendPlan, shape: AttentionShape, sliding_window: int | None, q: Tensor
) -> None:
    check_plan_matches(plan.shape, plan.sliding_window, shape, sliding_window)
    if plan.num_tokens != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but extend_lens sum to {plan.num_tokens}")


def _launch(
    q: Tensor,
    k: KVOperand,
    v: KVOperand,
    req_to_token: Tensor,
    out: Tensor,
    plan: TritonExtendPlan,
    config: LaunchConfig,
    sm_scale: float,
    logit_cap: float | None,
) -> None:
    shape = plan.shape
    _extend_kernel[(plan.num_tiles, shape.num_q_heads)](
        q, k.data, k.scales, k.zeros, v.data, v.scales, v.zeros, out, req_to_token,
        plan.requests, plan.tiles,
        q.stride(0), q.stride(1), k.stride_slot, k.stride_head, k.stride_param,
        v.stride_slot, v.stride_head, v.stride_param, out.stride(0), out.stride(1),
        req_to_token.stride(0),
        sm_scale, logit_cap or 1.0, plan.sliding_window or 0,
        shape.num_q_heads // shape.num_kv_heads,
        HEAD_DIM=shape.head_dim, BLOCK_M=config.block_m, BLOCK_N=config.block_n,
        BLOCK_D=dot_block(shape.head_dim),
        HAS_WINDOW=plan.sliding_window is not None, HAS_CAP=logit_cap is not None,
        PRECISION=dot_precision(q.dtype), UPCAST=is_interpreted(_extend_kernel),
        KV_BITS=k.bits, KV_GROUP=k.group_size,
        num_warps=config.num_warps, num_stages=config.num_stages,
    )  # fmt: skip


@triton.jit
def _extend_kernel(
    q, k_data, k_scales, k_zeros, v_data, v_scales, v_zeros, out, req_to_token,
    requests, tiles,
    stride_q_tok, stride_q_head, stride_k_slot, stride_k_head, stride_k_param,
    stride_v_slot, stride_v_head, stride_v_param, stride_o_tok, stride_o_head,
    stride_r2t_row,
    sm_scale, logit_cap, sliding_window,
    kv_group,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, HAS_WINDOW: tl.constexpr, HAS_CAP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    KV_BITS: tl.constexpr, KV_GROUP: tl.constexpr,
):  # fmt: skip
    tile = tl.program_id(0)
    head = tl.program_id(1)
    req = tl.load(tiles + 2 * tile)
    first_query = tl.load(tiles + 2 * tile + 1)
    req_row = tl.load(requests + 4 * req).to(tl.int64)
    q_offset = tl.load(requests + 4 * req + 1)
    prefix_len = tl.load(requests + 4 * req + 2)
    extend_len = tl.load(requests + 4 * req + 3)

    queries = first_query + tl.arange(0, BLOCK_M)
    is_query = queries < extend_len
    q_pos = prefix_len + queries
    dims = tl.arange(0, BLOCK_D)
    is_dim = dims < HEAD_DIM
    q_rows = (q_offset + queries).to(tl.int64)
    q_mask = is_query[:, None] & is_dim[None, :]
    q_tile = tl.load(
        q + q_rows[:, None] * stride_q_tok + head * stride_q_head + dims[None, :],
        mask=q_mask, other=0.0,
    )  # fmt: skip

    key_hi = prefix_len + tl.minimum(first_query + BLOCK_M, extend_len)
    key_lo = 0
    # Keys before `full_hi` are visible to every query of the tile: no masks there.
    full_hi = (prefix_len + first_query) // BLOCK_N * BLOCK_N
    if HAS_WINDOW:
        key_lo = tl.maximum(prefix_len + first_query - sliding_window + 1, 0)
        full_hi = key_lo
    r2t_row = req_to_token + req_row * stride_r2t_row
    kv_head = head // kv_group
    m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    dim_mask = is_dim[None, :]
    for start in range(key_lo, full_hi, BLOCK_N):
        slots = tl.load(r2t_row + start + tl.arange(0, BLOCK_N)).to(tl.int64)
        k = _load_full_rows(k_data, k_scales, k_zeros, slots, kv_head, dims, dim_mask,
                            stride_k_slot, stride_k_head, stride_k_param,
                            HEAD_DIM == BLOCK_D, KV_BITS, KV_GROUP)
        s = attention_scores(q_tile, k, sm_scale, logit_cap, HAS_CAP, PRECISION, UPCAST)
        v = _load_full_rows(v_data, v_scales, v_zeros, slots, kv_head, dims, dim_mask,
                            stride_v_slot, stride_v_head, stride_v_param,
                            HEAD_DIM == BLOCK_D, KV_BITS, KV_GROUP)
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, v, PRECISION, UPCAST)
    for start in range(full_hi, key_hi, BLOCK_N):
        k_pos = start + tl.arange(0, BLOCK_N)
        is_key = k_pos < key_hi
        slots = tl.load(r2t_row + k_pos, mask=is_key, other=0).to(tl.int64)
        kv_mask = is_key[:, None] & dim_mask
        k = load_kv_rows(k_data, k_scales, k_zeros, slots, kv_head, dims, kv_mask,
                         stride_k_slot, stride_k_head, stride_k_param, KV_BITS, KV_GROUP)
        s = attention_scores(q_tile, k, sm_scale, logit_cap, HAS_CAP, PRECISION, UPCAST)
        visible = is_key[None, :] & (k_pos[None, :] <= q_pos[:, None])
        if HAS_WINDOW:
            visible &= k_pos[None, :] > q_pos[:, None] - sliding_window
        s = tl.where(visible, s, float("-inf"))
        v = load_kv_rows(v_data, v_scales, v_zeros, slots, kv_head, dims, kv_mask,
                         stride_v_slot, stride_v_head, stride_v_param, KV_BITS, KV_GROUP)
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, v, PRECISION, UPCAST)

    # Every real query sees at least itself; padded rows may see nothing and are not stored.
    result = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
    o_ptrs = out + q_rows[:, None] * stride_o_tok + head * stride_o_head + dims[None, :]
    tl.store(o_ptrs, result.to(out.dtype.element_ty), mask=q_mask)


@triton.jit
def _load_full_rows(data, scales, zeros, slots, kv_head, dims, dim_mask,
                    stride_slot, stride_head, stride_param,
                    EVEN_D: tl.constexpr, BITS: tl.constexpr, GROUP: tl.constexpr):  # fmt: skip
    """`load_kv_rows` for a block of real keys: a plain pool's rows with no mask at all when
    the head fills BLOCK_D."""
    if EVEN_D and BITS == 0:
        tile = tl.load(data + slots[:, None] * stride_slot + kv_head * stride_head + dims[None, :])
    else:
        tile = load_kv_rows(data, scales, zeros, slots, kv_head, dims, dim_mask,
                            stride_slot, stride_head, stride_param, BITS, GROUP)
    return tile
