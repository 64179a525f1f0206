"""The C++ of the compiled CPU kernels, which `cpu_build` compiles into one extension.

Their Python wrappers and contracts: `cpu_decode_attention` (DECODE_ATTENTION) and
`cpu_elementwise` (ELEMENTWISE: RMSNorm, SiLU-and-mul, RoPE). The sources live apart from
the wrappers so that the builder imports them and the wrappers import the builder, not both.
"""

DECODE_ATTENTION = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kBlock = 64;
constexpr int64_t kAhead = 8;  // keys ahead to prefetch: slot rows cross pages every few keys

inline void prefetch_row(const void* ptr, int64_t bytes) {
  const char* c = static_cast<const char*>(ptr);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
}

template <typename T>
inline float to_f(T x) { return static_cast<float>(x); }

// scores s[g*kBlock + j] = q_g . k_j for a block of n keys (q pre-scaled, float32)
template <typename T>
inline void block_scores_any(const float* __restrict qf, const T* __restrict kb,
                             const int64_t* slots, int64_t n, int64_t slot_stride, int64_t hoff,
                             int64_t group, int64_t d, float* __restrict p) {
  for (int64_t j = 0; j < n; ++j) {
    const T* __restrict k = kb + slots[j] * slot_stride + hoff;
    for (int64_t g = 0; g < group; ++g) {
      const float* __restrict qg = qf + g * d;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < d; ++i) s += qg[i] * to_f(k[i]);
      p[g * kBlock + j] = s;
    }
  }
}

template <typename T>
inline void block_scores(const float* __restrict qf, const T* __restrict kb, const int64_t* slots,
                         int64_t n, int64_t slot_stride, int64_t hoff, int64_t group, int64_t d,
                         float* __restrict p) {
  block_scores_any<T>(qf, kb, slots, n, slot_stride, hoff, group, d, p);
}

#ifdef __AVX512F__
// float32, head dim 64, at most 4 query heads per KV head: q in registers, K prefetched ahead
template <>
inline void block_scores<float>(const float* __restrict qf, const float* __restrict kb,
                                const int64_t* slots, int64_t n, int64_t slot_stride,
                                int64_t hoff, int64_t group, int64_t d, float* __restrict p) {
  if (d != 64 || group > 4)
    return block_scores_any<float>(qf, kb, slots, n, slot_stride, hoff, group, d, p);
  __m512 q[4][4];
  for (int64_t g = 0; g < group; ++g)
    for (int c = 0; c < 4; ++c) q[g][c] = _mm512_loadu_ps(qf + g * 64 + c * 16);
  for (int64_t j = 0; j < n; ++j) {
    const float* k = kb + slots[j] * slot_stride + hoff;
    if (j + kAhead < n) prefetch_row(kb + slots[j + kAhead] * slot_stride + hoff, 64 * 4);
    const __m512 k0 = _mm512_loadu_ps(k), k1 = _mm512_loadu_ps(k + 16),
                 k2 = _mm512_loadu_ps(k + 32), k3 = _mm512_loadu_ps(k + 48);
    for (int64_t g = 0; g < group; ++g) {
      __m512 a = _mm512_mul_ps(q[g][0], k0);
      a = _mm512_fmadd_ps(q[g][1], k1, a);
      a = _mm512_fmadd_ps(q[g][2], k2, a);
      a = _mm512_fmadd_ps(q[g][3], k3, a);
      p[g * kBlock + j] = _mm512_reduce_add_ps(a);
    }
  }
}
#endif

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// float32, head dim a multiple of 8 up to 128, at most 4 query heads per KV head (AVX2):
// four keys at a time, each key row read once for the whole group, and the four keys' sums
// reduced together
template <>
inline void block_scores<float>(const float* __restrict qf, const float* __restrict kb,
                                const int64_t* slots, int64_t n, int64_t slot_stride,
                                int64_t hoff, int64_t group, int64_t d, float* __restrict p) {
  if (d % 8 != 0 || d > 128 || group > 4)
    return block_scores_any<float>(qf, kb, slots, n, slot_stride, hoff, group, d, p);
  const int64_t chunks = d / 8;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k[4];
    for (int u = 0; u < 4; ++u) {
      k[u] = kb + slots[j + u] * slot_stride + hoff;
      if (j + u + kAhead < n) prefetch_row(kb + slots[j + u + kAhead] * slot_stride + hoff, d * 4);
    }
    for (int64_t g = 0; g < group; ++g) {
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
      for (int64_t c = 0; c < chunks; ++c) {
        const __m256 qc = _mm256_loadu_ps(qf + g * d + c * 8);
        for (int u = 0; u < 4; ++u)
          acc[u] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k[u] + c * 8), acc[u]);
      }
      // [a0 a1 a2 a3] -> their four sums, in order
      const __m256 h01 = _mm256_hadd_ps(acc[0], acc[1]), h23 = _mm256_hadd_ps(acc[2], acc[3]);
      const __m256 h = _mm256_hadd_ps(h01, h23);
      _mm_storeu_ps(p + g * kBlock + j,
                    _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    }
  }
  for (; j < n; ++j) {
    const float* k = kb + slots[j] * slot_stride + hoff;
    for (int64_t g = 0; g < group; ++g) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t c = 0; c < chunks; ++c)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(qf + g * d + c * 8), _mm256_loadu_ps(k + c * 8),
                              acc);
      p[g * kBlock + j] = hsum8(acc);
    }
  }
}
#endif

template <typename T>
inline void block_values(const float* __restrict p, const T* __restrict vb, const int64_t* slots,
                         int64_t n, int64_t slot_stride, int64_t hoff, int64_t group, int64_t d,
                         float* __restrict acc) {
  for (int64_t j = 0; j < n; ++j) {
    const T* __restrict v = vb + slots[j] * slot_stride + hoff;
    // again, ahead: the block-start prefetch alone measured slower (64 rows may not all stay)
    if (j + kAhead < n) prefetch_row(vb + slots[j + kAhead] * slot_stride + hoff, d * sizeof(T));
    for (int64_t g = 0; g < group; ++g) {
      const float pj = p[g * kBlock + j];
      float* __restrict a = acc + g * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) a[i] += pj * to_f(v[i]);
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// float32 V rows, a block's weighted sum kept in registers (CH 8-float chunks of each of G
// query heads) and stored once
template <int CH, int G>
inline void block_values_regs(const float* __restrict p, const float* __restrict vb,
                              const int64_t* slots, int64_t n, int64_t slot_stride, int64_t hoff,
                              float* __restrict acc) {
  constexpr int64_t d = CH * 8;
  __m256 a[G][CH];
  for (int g = 0; g < G; ++g)
    for (int c = 0; c < CH; ++c) a[g][c] = _mm256_loadu_ps(acc + g * d + c * 8);
  for (int64_t j = 0; j < n; ++j) {
    const float* v = vb + slots[j] * slot_stride + hoff;
    if (j + kAhead < n) prefetch_row(vb + slots[j + kAhead] * slot_stride + hoff, d * 4);
    __m256 vc[CH];
    for (int c = 0; c < CH; ++c) vc[c] = _mm256_loadu_ps(v + c * 8);
    for (int g = 0; g < G; ++g) {
      const __m256 pj = _mm256_set1_ps(p[g * kBlock + j]);
      for (int c = 0; c < CH; ++c) a[g][c] = _mm256_fmadd_ps(pj, vc[c], a[g][c]);
    }
  }
  for (int g = 0; g < G; ++g)
    for (int c = 0; c < CH; ++c) _mm256_storeu_ps(acc + g * d + c * 8, a[g][c]);
}

template <>
inline void block_values<float>(const float* __restrict p, const float* __restrict vb,
                                const int64_t* slots, int64_t n, int64_t slot_stride,
                                int64_t hoff, int64_t group, int64_t d, float* __restrict acc) {
  const int64_t key = d * 10 + group;
  switch (key) {
    case 32 * 10 + 1: return block_values_regs<4, 1>(p, vb, slots, n, slot_stride, hoff, acc);
    case 32 * 10 + 2: return block_values_regs<4, 2>(p, vb, slots, n, slot_stride, hoff, acc);
    case 32 * 10 + 4: return block_values_regs<4, 4>(p, vb, slots, n, slot_stride, hoff, acc);
    case 64 * 10 + 1: return block_values_regs<8, 1>(p, vb, slots, n, slot_stride, hoff, acc);
    case 64 * 10 + 2: return block_values_regs<8, 2>(p, vb, slots, n, slot_stride, hoff, acc);
    default: break;
  }
  for (int64_t j = 0; j < n; ++j) {
    const float* __restrict v = vb + slots[j] * slot_stride + hoff;
    if (j + kAhead < n) prefetch_row(vb + slots[j + kAhead] * slot_stride + hoff, d * 4);
    for (int64_t g = 0; g < group; ++g) {
      const float pj = p[g * kBlock + j];
      float* __restrict a = acc + g * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) a[i] += pj * v[i];
    }
  }
}
#endif

template <typename T>
void decode(const T* q, const T* kb, const T* vb, const int64_t* table, int64_t table_stride,
            const int64_t* rows, const int64_t* starts, const int64_t* lens, T* out,
            int64_t batch, int64_t hq, int64_t hkv, int64_t d, float scale, float cap) {
  const int64_t group = hq / hkv;
  const int64_t slot_stride = hkv * d;
  at::parallel_for(0, batch * hkv, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(group * d), acc(group * d), m(group), l(group), p(group * kBlock);
    for (int64_t work = begin; work < end; ++work) {
      const int64_t b = work / hkv, h = work % hkv;
      const int64_t* slot_of = table + rows[b] * table_stride;
      for (int64_t g = 0; g < group; ++g) {
        const T* src = q + (b * hq + h * group + g) * d;
        for (int64_t i = 0; i < d; ++i) qf[g * d + i] = to_f(src[i]) * scale;
        m[g] = std::numeric_limits<float>::lowest();
        l[g] = 0.f;
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t t0 = starts[b]; t0 < lens[b]; t0 += kBlock) {
        const int64_t n = std::min(kBlock, lens[b] - t0);
        const int64_t* slots = slot_of + t0;
        // the block's V rows load while its scores are computed
        for (int64_t j = 0; j < n; ++j)
          prefetch_row(vb + slots[j] * slot_stride + h * d, d * sizeof(T));
        block_scores<T>(qf.data(), kb, slots, n, slot_stride, h * d, group, d, p.data());
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
        block_values<T>(p.data(), vb, slots, n, slot_stride, h * d, group, d, acc.data());
      }
      for (int64_t g = 0; g < group; ++g) {
        T* dst = out + (b * hq + h * group + g) * d;
        const float inv = l[g] > 0.f ? 1.f / l[g] : 0.f;
        for (int64_t i = 0; i < d; ++i) dst[i] = static_cast<T>(acc[g * d + i] * inv);
      }
    }
  });
}

}  // namespace

torch::Tensor decode_attention(torch::Tensor q, torch::Tensor k_buffer, torch::Tensor v_buffer,
                               torch::Tensor req_to_token, torch::Tensor rows,
                               torch::Tensor starts, torch::Tensor lens, double scale,
                               double cap) {
  auto out = torch::empty_like(q);
  const int64_t batch = q.size(0), hq = q.size(1), d = q.size(2), hkv = k_buffer.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "decode", [&] {
    decode<scalar_t>(q.data_ptr<scalar_t>(), k_buffer.data_ptr<scalar_t>(),
                     v_buffer.data_ptr<scalar_t>(), req_to_token.data_ptr<int64_t>(),
                     req_to_token.stride(0), rows.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
                     lens.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), batch, hq, hkv, d,
                     static_cast<float>(scale), static_cast<float>(cap));
  });
  return out;
}
"""

ELEMENTWISE = r"""
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
