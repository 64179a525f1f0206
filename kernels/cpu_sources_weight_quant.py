"""The C++ of the compiled weight-only quantized linear (`y = x W^T`, `weight_quant` layout).

W ``[N, K]`` is stored per output row as codes in groups along K with a float16 scale and
zero per group (int8: a byte a code; int4: two codes a byte, low nibble first). The kernel
never expands W as a whole. Two paths, chosen by the number of rows M of x:

- few rows (decode): one pass over the codes. x is first written as int16 per group of W
  (a scale per row and group: 2^-16 of the group's largest value, far finer than the
  float16 scales), then per group ``scale * xscale * (xq . codes) + zero * sum(x)``: the
  codes are widened to int16 16 at a time and multiplied with ``madd`` (16 products a step,
  exact in int32) against up to four rows of x, and reduced once per output row. This is
  the batch-1 GEMV, bound by the bytes of W it reads, which is what int8 and int4 shrink
  (float multiplies would first widen every code to a float: twice the instructions).
- many rows (prefill, large decode batches): W is dequantized a tile of output rows at a
  time into a float scratch the size of a cache, and each tile runs through ATen's float GEMM
  (`at::mm_out` into the output's columns). The GEMM is compute bound, so the dequantization
  is a small share of it, and no float copy of W outlives the call.

The vector code is AVX2 + FMA + F16C intrinsics, compiled when the build machine has them
(``-march=native`` defines the macros); elsewhere a portable loop computes the same in float32.
Wrapped by `weight_quant.cpu_quant_linear`.
"""

WEIGHT_QUANT = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <vector>
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define WQ_AVX2 1
#endif

namespace wq {

struct Weight {
  const uint8_t* codes;
  const at::Half* scales;
  const at::Half* zeros;
  int64_t n, k, group, groups, row_bytes;
};

// float16 -> float32 for `count` values
inline void halves_to_floats(const at::Half* src, int64_t count, float* dst) {
  int64_t i = 0;
#ifdef WQ_AVX2
  for (; i + 8 <= count; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                  reinterpret_cast<const __m128i*>(src + i))));
#endif
#ifdef WQ_AVX2
  for (; i < count; ++i) dst[i] = _cvtsh_ss(src[i].x);  // one instruction (F16C)
#else
  for (; i < count; ++i) dst[i] = static_cast<float>(src[i]);
#endif
}

// code of value t (portable path)
template <int BITS>
inline float code_at(const uint8_t* row, int64_t t) {
  if (BITS == 8) return static_cast<float>(row[t]);
  const uint8_t byte = row[t / 2];
  return static_cast<float>(t % 2 == 0 ? (byte & 0xF) : (byte >> 4));
}

#ifdef WQ_AVX2
// values [t, t + 16) of a row's codes as two vectors of 8 floats (t a multiple of 16)
template <int BITS>
inline void load16(const uint8_t* row, int64_t t, __m256& lo, __m256& hi) {
  __m128i bytes;
  if (BITS == 8) {
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + t));
  } else {  // 8 bytes -> 16 nibbles, interleaved back into value order
    const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + t / 2));
    const __m128i mask = _mm_set1_epi8(0xF);
    bytes = _mm_unpacklo_epi8(_mm_and_si128(packed, mask),
                              _mm_and_si128(_mm_srli_epi16(packed, 4), mask));
  }
  lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

#ifdef WQ_AVX2
// codes [t, t + 16) of a row widened to 16 int16 (t a multiple of 16)
template <int BITS>
inline __m256i codes16(const uint8_t* row, int64_t t) {
  __m128i bytes;
  if (BITS == 8) {
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + t));
  } else {
    const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + t / 2));
    const __m128i mask = _mm_set1_epi8(0xF);
    bytes = _mm_unpacklo_epi8(_mm_and_si128(packed, mask),
                              _mm_and_si128(_mm_srli_epi16(packed, 4), mask));
  }
  return _mm256_cvtepu8_epi16(bytes);
}

// x as int16 per group of W: x[i, t] ~= xs[i, g] * xq[i, t], |xq| <= 32767 (a relative
// error of 2^-16 of the group's largest value, far below float16 scales' own)
struct Int16Rows {
  std::vector<int16_t> q;
  std::vector<float> scale;
};

inline Int16Rows to_int16(const float* x, const Weight& w, int64_t m) {
  Int16Rows r{std::vector<int16_t>(m * w.k), std::vector<float>(m * w.groups)};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t g = 0; g < w.groups; ++g) {
      const float* src = x + i * w.k + g * w.group;
      float big = 0.f;
      for (int64_t t = 0; t < w.group; ++t) big = std::max(big, std::abs(src[t]));
      const float scale = big / 32767.f, inv = big > 0.f ? 32767.f / big : 0.f;
      r.scale[i * w.groups + g] = scale;
      int16_t* dst = r.q.data() + i * w.k + g * w.group;
      for (int64_t t = 0; t < w.group; ++t)
        dst[t] = static_cast<int16_t>(std::nearbyint(src[t] * inv));
    }
  return r;
}

// out[i, j] for MB rows of x (rows i0..) and output rows [begin, end): per group, the
// int16 dot products of codes and x (madd: 16 products a step, exact in int32), scaled once
template <int BITS, int MB>
void gemv_rows_int16(const Int16Rows& xr, const float* xsum, const Weight& w, float* out,
                     int64_t i0, int64_t begin, int64_t end) {
  std::vector<float> s(w.groups), z(w.groups);
  for (int64_t j = begin; j < end; ++j) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    halves_to_floats(w.scales + j * w.groups, w.groups, s.data());
    halves_to_floats(w.zeros + j * w.groups, w.groups, z.data());
    __m256 total[MB];
    for (int r = 0; r < MB; ++r) total[r] = _mm256_setzero_ps();
    for (int64_t g = 0; g < w.groups; ++g) {
      __m256i acc[MB];
      for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_si256();
      for (int64_t t = g * w.group, stop = t + w.group; t < stop; t += 16) {
        const __m256i c = codes16<BITS>(row, t);
        for (int r = 0; r < MB; ++r)
          acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(c, _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(xr.q.data() + (i0 + r) * w.k + t))));
      }
      for (int r = 0; r < MB; ++r)
        total[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r]),
                                   _mm256_set1_ps(s[g] * xr.scale[(i0 + r) * w.groups + g]),
                                   total[r]);
    }
    for (int r = 0; r < MB; ++r) {
      const float* xs = xsum + (i0 + r) * w.groups;
      float zero_part = 0.f;
      for (int64_t g = 0; g < w.groups; ++g) zero_part += z[g] * xs[g];
      out[(i0 + r) * w.n + j] = hsum(total[r]) + zero_part;
    }
  }
}

// one row of x (row i0) against output rows [begin, end), four at a time: each 16 values of
// x load once for four rows of codes, and the four sums reduce together
template <int BITS>
void gemv_one_row_int16(const Int16Rows& xr, const float* xsum, const Weight& w, float* out,
                        int64_t i0, int64_t begin, int64_t end) {
  const int16_t* x = xr.q.data() + i0 * w.k;
  const float* xscale = xr.scale.data() + i0 * w.groups;
  const float* xs = xsum + i0 * w.groups;
  std::vector<float> s(4 * w.groups), z(4 * w.groups);
  int64_t j = begin;
  for (; j + 4 <= end; j += 4) {
    halves_to_floats(w.scales + j * w.groups, 4 * w.groups, s.data());  // rows j..j+3
    halves_to_floats(w.zeros + j * w.groups, 4 * w.groups, z.data());
    const uint8_t* rows[4] = {w.codes + j * w.row_bytes, w.codes + (j + 1) * w.row_bytes,
                              w.codes + (j + 2) * w.row_bytes, w.codes + (j + 3) * w.row_bytes};
    // the next four rows start loading now: four short streams at once are more than the
    // hardware prefetcher follows when W does not fit in cache (a large lm_head)
    if (j + 8 <= end)
      for (int64_t off = 0; off < 4 * w.row_bytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(w.codes + (j + 4) * w.row_bytes + off),
                     _MM_HINT_T0);
    __m256 total[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
    for (int64_t g = 0; g < w.groups; ++g) {
      __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                        _mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int64_t t = g * w.group, stop = t + w.group; t < stop; t += 16) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + t));
        for (int r = 0; r < 4; ++r)
          acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(codes16<BITS>(rows[r], t), xv));
      }
      for (int r = 0; r < 4; ++r)
        total[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r]),
                                   _mm256_set1_ps(s[r * w.groups + g] * xscale[g]), total[r]);
    }
    for (int r = 0; r < 4; ++r) {
      float zero_part = 0.f;
      for (int64_t g = 0; g < w.groups; ++g) zero_part += z[r * w.groups + g] * xs[g];
      out[i0 * w.n + j + r] = hsum(total[r]) + zero_part;
    }
  }
  if (j < end) gemv_rows_int16<BITS, 1>(xr, xsum, w, out, i0, j, end);
}
#endif

// out[i, j] for MB rows of x (x rows i0.., stride k) and output rows [begin, end): the
// portable loop
template <int BITS, int MB>
void gemv_rows(const float* x, const float* xsum, const Weight& w, float* out, int64_t i0,
               int64_t begin, int64_t end) {
  std::vector<float> s(w.groups), z(w.groups);
  for (int64_t j = begin; j < end; ++j) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    halves_to_floats(w.scales + j * w.groups, w.groups, s.data());
    halves_to_floats(w.zeros + j * w.groups, w.groups, z.data());
    for (int r = 0; r < MB; ++r) {
      const float* xr = x + (i0 + r) * w.k;
      float d = 0.f;
      for (int64_t g = 0; g < w.groups; ++g) {
        float part = 0.f;
        for (int64_t t = g * w.group; t < (g + 1) * w.group; ++t)
          part += xr[t] * code_at<BITS>(row, t);
        d += s[g] * part;
      }
      const float* xs = xsum + (i0 + r) * w.groups;
      float zero_part = 0.f;
      for (int64_t g = 0; g < w.groups; ++g) zero_part += z[g] * xs[g];
      out[(i0 + r) * w.n + j] = d + zero_part;
    }
  }
}

template <int BITS>
void gemv(const float* x, const Weight& w, float* out, int64_t m) {
  std::vector<float> xsum(m * w.groups);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t g = 0; g < w.groups; ++g) {
      float sum = 0.f;
      for (int64_t t = 0; t < w.group; ++t) sum += x[i * w.k + g * w.group + t];
      xsum[i * w.groups + g] = sum;
    }
  // a task covers ~64k weight values (no fork for the small projections)
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(w.k, 1));
#ifdef WQ_AVX2
  if (w.group % 16 == 0) {
    const Int16Rows xr = to_int16(x, w, m);
    at::parallel_for(0, w.n, grain, [&](int64_t begin, int64_t end) {
      int64_t i = 0;
      for (; i + 4 <= m; i += 4) gemv_rows_int16<BITS, 4>(xr, xsum.data(), w, out, i, begin, end);
      switch (m - i) {
        case 3: gemv_rows_int16<BITS, 3>(xr, xsum.data(), w, out, i, begin, end); break;
        case 2: gemv_rows_int16<BITS, 2>(xr, xsum.data(), w, out, i, begin, end); break;
        case 1: gemv_one_row_int16<BITS>(xr, xsum.data(), w, out, i, begin, end); break;
        default: break;
      }
    });
    return;
  }
#endif
  at::parallel_for(0, w.n, grain, [&](int64_t begin, int64_t end) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) gemv_rows<BITS, 4>(x, xsum.data(), w, out, i, begin, end);
    switch (m - i) {
      case 3: gemv_rows<BITS, 3>(x, xsum.data(), w, out, i, begin, end); break;
      case 2: gemv_rows<BITS, 2>(x, xsum.data(), w, out, i, begin, end); break;
      case 1: gemv_rows<BITS, 1>(x, xsum.data(), w, out, i, begin, end); break;
      default: break;
    }
  });
}

// rows [begin, end) of W as floats into dst ([end - begin, k])
template <int BITS>
void dequantize_rows(const Weight& w, int64_t begin, int64_t end, float* dst) {
  std::vector<float> s(w.groups), z(w.groups);
  for (int64_t j = begin; j < end; ++j) {
    const uint8_t* row = w.codes + j * w.row_bytes;
    float* o = dst + (j - begin) * w.k;
    halves_to_floats(w.scales + j * w.groups, w.groups, s.data());
    halves_to_floats(w.zeros + j * w.groups, w.groups, z.data());
    for (int64_t g = 0; g < w.groups; ++g) {
      int64_t t = g * w.group;
      const int64_t stop = t + w.group;
#ifdef WQ_AVX2
      if (w.group % 16 == 0) {
        const __m256 scale = _mm256_set1_ps(s[g]), zero = _mm256_set1_ps(z[g]);
        for (; t < stop; t += 16) {
          __m256 c_lo, c_hi;
          load16<BITS>(row, t, c_lo, c_hi);
          _mm256_storeu_ps(o + t, _mm256_fmadd_ps(c_lo, scale, zero));
          _mm256_storeu_ps(o + t + 8, _mm256_fmadd_ps(c_hi, scale, zero));
        }
      }
#endif
      for (; t < stop; ++t) o[t] = z[g] + s[g] * code_at<BITS>(row, t);
    }
  }
}

// y = x W^T through a float GEMM over cache-sized tiles of dequantized rows of W
template <int BITS>
void tiled(const torch::Tensor& x, const Weight& w, torch::Tensor& out) {
  const int64_t tile = std::max<int64_t>(16, ((1 << 16) / std::max<int64_t>(w.k, 1)) / 16 * 16);
  auto scratch = torch::empty({std::min(tile, w.n), w.k}, x.options());
  for (int64_t j0 = 0; j0 < w.n; j0 += tile) {
    const int64_t rows = std::min(tile, w.n - j0);
    float* dst = scratch.data_ptr<float>();
    at::parallel_for(j0, j0 + rows, 16, [&](int64_t begin, int64_t end) {
      dequantize_rows<BITS>(w, begin, end, dst + (begin - j0) * w.k);
    });
    auto part = out.narrow(1, j0, rows);
    at::mm_out(part, x, scratch.narrow(0, 0, rows).t());
  }
}

}  // namespace wq

// y = x W^T (float32 x [M, K] contiguous) with W as codes; the GEMV path up to
// `gemv_rows` rows of x, the tiled float GEMM above
torch::Tensor weight_quant_linear(torch::Tensor x, torch::Tensor codes, torch::Tensor scales,
                                  torch::Tensor zeros, int64_t bits, int64_t group,
                                  int64_t gemv_rows) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 2,
              "weight_quant_linear: x must be a contiguous float32 [M, K]");
  TORCH_CHECK(bits == 8 || bits == 4, "weight_quant_linear: bits must be 8 or 4");
  TORCH_CHECK(codes.is_contiguous() && scales.is_contiguous() && zeros.is_contiguous(),
              "weight_quant_linear: codes, scales and zeros must be contiguous");
  const int64_t m = x.size(0), k = x.size(1), n = codes.size(0);
  TORCH_CHECK(k % group == 0 && codes.size(1) * 8 == k * bits,
              "weight_quant_linear: x's K does not match the codes");
  const wq::Weight w{codes.data_ptr<uint8_t>(), scales.data_ptr<at::Half>(),
                     zeros.data_ptr<at::Half>(), n, k, group, k / group, codes.stride(0)};
  auto out = torch::empty({m, n}, x.options());
  if (m <= gemv_rows) {
    (bits == 8 ? wq::gemv<8> : wq::gemv<4>)(x.data_ptr<float>(), w, out.data_ptr<float>(), m);
  } else {
    (bits == 8 ? wq::tiled<8> : wq::tiled<4>)(x, w, out);
  }
  return out;
}
"""
