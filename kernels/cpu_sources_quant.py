"""The C++ of the compiled CPU kernels over group-wise quantized data (`kv_quant` layout).

QUANT: decode attention over a quantized KV pool, and the store that quantizes into it
(the weight-only quantized linear is `cpu_sources_weight_quant`).

The attention makes the same walk as `cpu_sources.DECODE_ATTENTION` (per request and KV head, blocks of 64 keys,
online softmax in float32, optional tanh cap), but each K and V row is read as its codes
and dequantized in registers with its group's float16 scale and zero (`kv_quant` gives
the layout): the pool is never expanded to floats. Wrapped by `cpu_decode_attention`.

The store quantizes new tokens' K/V rows straight into their slots, group by group, with
the reference's arithmetic (`kv_quant.quantize`): float16 zero = min, float16 scale =
(max - zero) / levels, codes rounded half to even. Wrapped by `kv_store.cpu_store_kv`.
"""

QUANT = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace kvq {

constexpr int64_t kBlock = 64;
constexpr int64_t kAhead = 8;

struct Rows {  // one layer's quantized K or V: per slot, codes then group scales and zeros
  const uint8_t* codes;
  const at::Half* scales;
  const at::Half* zeros;
  int64_t code_stride;   // bytes per slot
  int64_t param_stride;  // groups per slot
  int64_t group;         // values per group
};

// values [start, start + len) of slot `slot`'s flattened row, dequantized into out
template <int BITS>
inline void dequant(const Rows& r, int64_t slot, int64_t start, int64_t len,
                    float* __restrict out) {
  const uint8_t* __restrict codes = r.codes + slot * r.code_stride;
  const at::Half* scales = r.scales + slot * r.param_stride;
  const at::Half* zeros = r.zeros + slot * r.param_stride;
  for (int64_t i = start, end = start + len; i < end;) {
    const int64_t g = i / r.group;
    const int64_t stop = std::min(end, (g + 1) * r.group);
    const float s = static_cast<float>(scales[g]), z = static_cast<float>(zeros[g]);
    float* __restrict o = out + (i - start);
    if (BITS == 8) {
#pragma omp simd
      for (int64_t k = 0; k < stop - i; ++k) o[k] = z + s * static_cast<float>(codes[i + k]);
    } else {  // i and stop are even: whole bytes, low nibble first
      const uint8_t* __restrict c = codes + i / 2;
#pragma omp simd
      for (int64_t k = 0; k < (stop - i) / 2; ++k) {
        o[2 * k] = z + s * static_cast<float>(c[k] & 0xF);
        o[2 * k + 1] = z + s * static_cast<float>(c[k] >> 4);
      }
    }
    i = stop;
  }
}

inline void prefetch_slot(const Rows& r, int64_t slot, int64_t start, int64_t len, int bits) {
  __builtin_prefetch(r.codes + slot * r.code_stride + start * bits / 8);
  if (len * bits / 8 > 64) __builtin_prefetch(r.codes + slot * r.code_stride + start * bits / 8 + 64);
  __builtin_prefetch(r.scales + slot * r.param_stride + start / r.group);
  __builtin_prefetch(r.zeros + slot * r.param_stride + start / r.group);
}

template <typename T, int BITS>
void decode(const T* q, const Rows& kr, const Rows& vr, const int64_t* table,
            int64_t table_stride, const int64_t* rows, const int64_t* starts,
            const int64_t* lens, T* out, int64_t batch, int64_t hq, int64_t hkv, int64_t d,
            float scale, float cap) {
  const int64_t group = hq / hkv;
  at::parallel_for(0, batch * hkv, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(group * d), acc(group * d), m(group), l(group), p(group * kBlock),
        row(d);
    for (int64_t work = begin; work < end; ++work) {
      const int64_t b = work / hkv, h = work % hkv, hoff = h * d;
      const int64_t* slot_of = table + rows[b] * table_stride;
      for (int64_t g = 0; g < group; ++g) {
        const T* src = q + (b * hq + h * group + g) * d;
        for (int64_t i = 0; i < d; ++i) qf[g * d + i] = static_cast<float>(src[i]) * scale;
        m[g] = std::numeric_limits<float>::lowest();
        l[g] = 0.f;
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t t0 = starts[b]; t0 < lens[b]; t0 += kBlock) {
        const int64_t n = std::min(kBlock, lens[b] - t0);
        const int64_t* slots = slot_of + t0;
        for (int64_t j = 0; j < n; ++j) {
          if (j + kAhead < n) prefetch_slot(kr, slots[j + kAhead], hoff, d, BITS);
          dequant<BITS>(kr, slots[j], hoff, d, row.data());
          for (int64_t g = 0; g < group; ++g) {
            const float* __restrict qg = &qf[g * d];
            float s = 0.f;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < d; ++i) s += qg[i] * row[i];
            p[g * kBlock + j] = s;
          }
        }
        for (int64_t g = 0; g < group; ++g) {
          float* pg = &p[g * kBlock];
          if (cap > 0.f)
            for (int64_t j = 0; j < n; ++j) pg[j] = cap * std::tanh(pg[j] / cap);
          float mx = m[g];
          for (int64_t j = 0; j < n; ++j) mx = std::max(mx, pg[j]);
          const float corr = std::exp(m[g] - mx);
          l[g] *= corr;
          float* a = &acc[g * d];
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) a[i] *= corr;
          m[g] = mx;
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < n; ++j) {
            pg[j] = std::exp(pg[j] - mx);
            sum += pg[j];
          }
          l[g] += sum;
        }
        for (int64_t j = 0; j < n; ++j) {
          if (j + kAhead < n) prefetch_slot(vr, slots[j + kAhead], hoff, d, BITS);
          dequant<BITS>(vr, slots[j], hoff, d, row.data());
          for (int64_t g = 0; g < group; ++g) {
            const float pj = p[g * kBlock + j];
            float* __restrict a = &acc[g * d];
#pragma omp simd
            for (int64_t i = 0; i < d; ++i) a[i] += pj * row[i];
          }
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        T* dst = out + (b * hq + h * group + g) * d;
        const float inv = l[g] > 0.f ? 1.f / l[g] : 0.f;
        for (int64_t i = 0; i < d; ++i) dst[i] = static_cast<T>(acc[g * d + i] * inv);
      }
    }
  });
}

Rows rows_of(const torch::Tensor& codes, const torch::Tensor& scales, const torch::Tensor& zeros,
             int64_t group) {
  return Rows{codes.data_ptr<uint8_t>(), scales.data_ptr<at::Half>(), zeros.data_ptr<at::Half>(),
              codes.stride(0), scales.stride(0), group};
}

}  // namespace kvq

torch::Tensor decode_attention_quant(torch::Tensor q, torch::Tensor k_codes,
                                     torch::Tensor k_scales, torch::Tensor k_zeros,
                                     torch::Tensor v_codes, torch::Tensor v_scales,
                                     torch::Tensor v_zeros, int64_t bits, int64_t group,
                                     int64_t num_kv_heads, torch::Tensor req_to_token,
                                     torch::Tensor rows, torch::Tensor starts,
                                     torch::Tensor lens, double scale, double cap) {
  auto out = torch::empty_like(q);
  const int64_t batch = q.size(0), hq = q.size(1), d = q.size(2);
  const kvq::Rows kr = kvq::rows_of(k_codes, k_scales, k_zeros, group);
  const kvq::Rows vr = kvq::rows_of(v_codes, v_scales, v_zeros, group);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "decode_q", [&] {
    auto run = bits == 8 ? kvq::decode<scalar_t, 8> : kvq::decode<scalar_t, 4>;
    run(q.data_ptr<scalar_t>(), kr, vr, req_to_token.data_ptr<int64_t>(),
        req_to_token.stride(0), rows.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
        lens.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), batch, hq, num_kv_heads, d,
        static_cast<float>(scale), static_cast<float>(cap));
  });
  return out;
}

namespace kvq {

template <typename T, int BITS>
void quantize_rows(const T* x, const int64_t* loc, uint8_t* codes, at::Half* scales,
                   at::Half* zeros, int64_t tokens, int64_t row_len, int64_t group) {
  const int64_t groups = row_len / group, code_stride = row_len * BITS / 8;
  const float levels = static_cast<float>((1 << BITS) - 1);
  at::parallel_for(0, tokens, 16, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> q(group);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t slot = loc[t];
      for (int64_t g = 0; g < groups; ++g) {
        const T* src = x + t * row_len + g * group;
        float lo = static_cast<float>(src[0]), hi = lo;
        for (int64_t i = 1; i < group; ++i) {
          const float v = static_cast<float>(src[i]);
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        const at::Half zero_h = static_cast<at::Half>(lo);
        const float zero = static_cast<float>(zero_h);
        const at::Half scale_h = static_cast<at::Half>((hi - zero) / levels);
        const float scale = static_cast<float>(scale_h);
        const float safe = scale > 0.f ? scale : 1.f;
        for (int64_t i = 0; i < group; ++i) {
          const float c = std::nearbyint((static_cast<float>(src[i]) - zero) / safe);
          q[i] = static_cast<uint8_t>(std::min(std::max(c, 0.f), levels));
        }
        uint8_t* dst = codes + slot * code_stride + g * group * BITS / 8;
        if (BITS == 8) {
          std::copy(q.begin(), q.end(), dst);
        } else {
          for (int64_t i = 0; i < group / 2; ++i) dst[i] = q[2 * i] | (q[2 * i + 1] << 4);
        }
        scales[slot * groups + g] = scale_h;
        zeros[slot * groups + g] = zero_h;
      }
    }
  });
}

}  // namespace kvq

void quantize_store(torch::Tensor x, torch::Tensor loc, torch::Tensor codes,
                    torch::Tensor scales, torch::Tensor zeros, int64_t bits, int64_t group) {
  const int64_t tokens = x.size(0), row_len = x.numel() / std::max<int64_t>(tokens, 1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "quant_store", [&] {
    auto run = bits == 8 ? kvq::quantize_rows<scalar_t, 8> : kvq::quantize_rows<scalar_t, 4>;
    run(x.data_ptr<scalar_t>(), loc.data_ptr<int64_t>(), codes.data_ptr<uint8_t>(),
        scales.data_ptr<at::Half>(), zeros.data_ptr<at::Half>(), tokens, row_len, group);
  });
}
"""
