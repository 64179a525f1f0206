"""RMSNorm (with the residual add), SiLU-and-mul and RoPE as compiled CPU kernels, one pass
each.

The PyTorch references (`rmsnorm.py`, `activation.py`, `rope.py`) make four to ten passes
over the activations (square, mean, rsqrt, scale, cast; chunk, silu, multiply; gather,
chunk, four products, concatenate); on a 2-core CPU they cost about a tenth of an engine
step. These do one pass per row, parallel over rows with
ATen's thread pool, rounding where the references round (the residual sum and the normalised
values in the input dtype), so they agree with them to float32 rounding. Built with the
decode-attention kernel into one extension (`cpu_build`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sglc.kernels.cpu_build import extension

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>

namespace {

constexpr int64_t kMinElementsPerTask = 1 << 15;  // below this, one thread (no fork cost)

int64_t grain(int64_t width) { return std::max<int64_t>(1, kMinElementsPerTask / width); }

template <typename T>
void rms_norm_rows(const T* x, const T* residual, const float* weight, T* out, T* summed,
                   int64_t rows, int64_t width, float eps) {
  at::parallel_for(0, rows, grain(width), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* src = x + r * width;
      if (summed) {  // the residual sum is rounded to T, as the reference adds in T
        const T* res = residual + r * width;
        T* sr = summed + r * width;
#pragma omp simd
        for (int64_t i = 0; i < width; ++i)
          sr[i] = static_cast<T>(static_cast<float>(src[i]) + static_cast<float>(res[i]));
        src = sr;
      }
      float ss = 0.f;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < width; ++i) {
        const float v = static_cast<float>(src[i]);
        ss += v * v;
      }
      const float inv = 1.f / std::sqrt(ss / static_cast<float>(width) + eps);
      T* o = out + r * width;
#pragma omp simd
      for (int64_t i = 0; i < width; ++i) {
        const T normed = static_cast<T>(static_cast<float>(src[i]) * inv);
        o[i] = static_cast<T>(weight[i] * static_cast<float>(normed));
      }
    }
  });
}

template <typename T>
void silu_mul_rows(const T* x, T* out, int64_t rows, int64_t half) {
  at::parallel_for(0, rows, grain(2 * half), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* gate = x + r * 2 * half;
      const T* up = gate + half;
      T* o = out + r * half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float g = static_cast<float>(gate[i]);
        const T act = static_cast<T>(g / (1.f + std::exp(-g)));
        o[i] = static_cast<T>(static_cast<float>(act) * static_cast<float>(up[i]));
      }
    }
  });
}

template <typename T, bool kNeox>
void rope_rows(const T* x, T* out, const int64_t* positions, const float* cache,
               int64_t tokens, int64_t heads, int64_t dim, int64_t rotary) {
  const int64_t half = rotary / 2;
  at::parallel_for(0, tokens, grain(heads * dim), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* cos = cache + positions[t] * rotary;
      const float* sin = cos + half;
      for (int64_t h = 0; h < heads; ++h) {
        const T* src = x + (t * heads + h) * dim;
        T* dst = out + (t * heads + h) * dim;
        if (kNeox) {  // halves (x[:R/2], x[R/2:]) rotate together
#pragma omp simd
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = static_cast<float>(src[i]), x2 = static_cast<float>(src[i + half]);
            dst[i] = static_cast<T>(x1 * cos[i] - x2 * sin[i]);
            dst[i + half] = static_cast<T>(x2 * cos[i] + x1 * sin[i]);
          }
        } else {  // GPT-J pairs (x[2i], x[2i+1])
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = static_cast<float>(src[2 * i]), x2 = static_cast<float>(src[2 * i + 1]);
            dst[2 * i] = static_cast<T>(x1 * cos[i] - x2 * sin[i]);
            dst[2 * i + 1] = static_cast<T>(x2 * cos[i] + x1 * sin[i]);
          }
        }
        for (int64_t i = rotary; i < dim; ++i) dst[i] = src[i];
      }
    }
  });
}

}  // namespace

std::vector<torch::Tensor> rope(torch::Tensor q, torch::Tensor k, torch::Tensor positions,
                                torch::Tensor cache, bool neox) {
  std::vector<torch::Tensor> outs;
  for (auto& x : {q, k}) {
    auto out = torch::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rope", [&] {
      auto run = neox ? rope_rows<scalar_t, true> : rope_rows<scalar_t, false>;
      run(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), positions.data_ptr<int64_t>(),
          cache.data_ptr<float>(), x.size(0), x.size(1), x.size(2), cache.size(1));
    });
    outs.push_back(out);
  }
  return outs;
}

std::vector<torch::Tensor> rms_norm(torch::Tensor x, torch::Tensor weight, double eps,
                                    c10::optional<torch::Tensor> residual) {
  auto out = torch::empty_like(x);
  auto summed = residual ? torch::empty_like(x) : torch::Tensor();
  const int64_t width = x.size(-1), rows = x.numel() / std::max<int64_t>(width, 1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rms_norm", [&] {
    rms_norm_rows<scalar_t>(x.data_ptr<scalar_t>(),
                            residual ? residual->data_ptr<scalar_t>() : nullptr,
                            weight.data_ptr<float>(), out.data_ptr<scalar_t>(),
                            residual ? summed.data_ptr<scalar_t>() : nullptr, rows, width,
                            static_cast<float>(eps));
  });
  if (residual) return {out, summed};
  return {out};
}

torch::Tensor silu_and_mul(torch::Tensor x) {
  const int64_t half = x.size(-1) / 2, rows = x.numel() / std::max<int64_t>(2 * half, 1);
  auto sizes = x.sizes().vec();
  sizes.back() = half;
  auto out = torch::empty(sizes, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "silu_mul", [&] {
    silu_mul_rows<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), rows, half);
  });
  return out;
}
"""


def cpu_rms_norm(
    x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """Same contract as `rmsnorm.rms_norm`, for CPU tensors (weight in any float dtype: the
    weight multiply runs in float32 and rounds once, as the reference's type promotion does
    for a float32 weight)."""
    _check(x)
    if residual is not None and (residual.shape != x.shape or residual.dtype != x.dtype):
        raise ValueError(f"residual {tuple(residual.shape)} {residual.dtype} does not match "
                         f"x {tuple(x.shape)} {x.dtype}")
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"weight {tuple(weight.shape)} does not match width {x.shape[-1]}")
    parts = extension().rms_norm(x.contiguous(), weight.float().contiguous(), float(eps),
                                 None if residual is None else residual.contiguous())
    return parts[0] if residual is None else (parts[0], parts[1])


def cpu_silu_and_mul(x: Tensor) -> Tensor:
    """Same contract as `activation.silu_and_mul`, for CPU tensors."""
    _check(x)
    if x.shape[-1] % 2:
        raise ValueError(f"silu_and_mul needs an even last dimension, got {x.shape[-1]}")
    return extension().silu_and_mul(x.contiguous())


def cpu_apply_rope(
    q: Tensor, k: Tensor, positions: Tensor, cos_sin_cache: Tensor, *, is_neox: bool = True
) -> tuple[Tensor, Tensor]:
    """Same contract as `rope.apply_rope`, for CPU tensors."""
    for x in (q, k):
        _check(x)
        if x.dim() != 3 or x.shape[0] != positions.shape[0]:
            raise ValueError(f"expected [T, H, D] with T = {positions.shape[0]} positions, "
                             f"got {tuple(x.shape)}")
    rotary = cos_sin_cache.shape[-1]
    if rotary % 2 or rotary > q.shape[-1] or k.shape[-1] != q.shape[-1]:
        raise ValueError(f"rope cache width {rotary} does not fit head dims "
                         f"{q.shape[-1]} / {k.shape[-1]}")
    positions = positions.long().contiguous()
    if cos_sin_cache.dtype != torch.float32:  # the rows in use, in float32 (as the reference)
        cos_sin_cache = cos_sin_cache.index_select(0, positions).float()
        positions = torch.arange(positions.shape[0])
    q_out, k_out = extension().rope(q.contiguous(), k.contiguous(), positions,
                                    cos_sin_cache.contiguous(), bool(is_neox))
    return q_out, k_out


def _check(x: Tensor) -> None:
    if x.device.type != "cpu":
        raise ValueError("the CPU kernels need CPU tensors")
    if not torch.is_floating_point(x):
        raise ValueError(f"floating-point input expected, got {x.dtype}")
