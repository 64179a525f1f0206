"""The C++ of the compiled CPU decode step: a Llama decoder stack's decode pass as one call.

A decode step of a small model on a CPU is mostly the cost of calling its ops, not of
running them: each layer is a dozen Python-level calls (norms, projections, RoPE, the KV
store, attention, SiLU-and-mul), each with its own argument checks, allocations and
dispatch. A *stack* registers the model's tensors once (`decode_stack_new` -> an id);
`decode_stack_run` then runs every layer of a decode batch in C++, calling the same kernels
the per-op path calls (`rms_norm_rows`, `rope_rows`, `decode` from DECODE_ATTENTION and
ELEMENTWISE, `wq::gemv`/`wq::tiled` from WEIGHT_QUANT, ATen's GEMM for float weights), in
the same order, into buffers allocated once per step. It returns the final normed hidden
states, or the logits when the stack has the lm_head.

Scope (the Python side, `runtime/models/compiled_decode.py`, checks it): float32
activations, weights and K/V; one layer kind (Llama: fused q|k|v with optional bias, o,
fused gate|up, down, neox RoPE, no q/k norm, no sliding window, every layer owns its K/V).

Per layer, `decode_stack_new` takes `kLayerTensors` tensors in this order (an absent one is
an empty tensor): input norm, post-attention norm, then per projection q|k|v, o, gate|up,
down: weight (float [N, K], or the codes), scales, zeros (empty for float), and for q|k|v a
bias; then the layer's K and V buffers. After the layers: the embedding, the final norm,
the RoPE cache, and the lm_head's weight, scales and zeros (all empty: no lm_head).
`ints`: hidden, query heads, KV heads, head dim, intermediate size, GEMV
rows (`weight_quant.GEMV_ROWS`), bits (0 for float weights), group size.
"""

DECODE_STEP = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace dstep {

constexpr int64_t kLayerTensors = 17;
constexpr int64_t kFloatGemvRows = 4;

// out [m, n] = x [m, k] W^T for a float W [n, k] and a few rows of x: one pass over W
// (ATen's GEMM runs a one-row product through BLAS's gemv, which on some CPUs is a generic
// loop several times slower than this)
void float_gemv(const float* x, const float* w, float* out, int64_t m, int64_t n, int64_t k) {
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(k, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const float* row = w + j * k;
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * k;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t t = 0; t < k; ++t) sum += xi[t] * row[t];
        out[i * n + j] = sum;
      }
    }
  });
}

struct Projection {
  torch::Tensor weight, scales, zeros, bias;  // scales/zeros/bias may be empty
  int64_t bits = 0, group = 0;

  // out [m, n] = x [m, k] W^T (+ bias)
  void apply(const torch::Tensor& x, torch::Tensor& out, int64_t gemv_rows) const {
    if (bits == 0 && x.size(0) <= kFloatGemvRows) {
      float_gemv(x.data_ptr<float>(), weight.data_ptr<float>(), out.data_ptr<float>(),
                 x.size(0), weight.size(0), x.size(1));
    } else if (bits == 0) {
      at::mm_out(out, x, weight.t());
    } else {
      const int64_t m = x.size(0), k = x.size(1), n = weight.size(0);
      const wq::Weight w{weight.data_ptr<uint8_t>(), scales.data_ptr<at::Half>(),
                         zeros.data_ptr<at::Half>(), n, k, group, k / group, weight.stride(0)};
      if (m <= gemv_rows) {
        (bits == 8 ? wq::gemv<8> : wq::gemv<4>)(x.data_ptr<float>(), w, out.data_ptr<float>(), m);
      } else {
        (bits == 8 ? wq::tiled<8> : wq::tiled<4>)(x, w, out);
      }
    }
    if (bias.numel()) out.add_(bias);
  }
};

struct Layer {
  torch::Tensor in_norm, post_norm, k_buf, v_buf;
  Projection qkv, o, gate_up, down;
};

struct Stack {
  std::vector<Layer> layers;
  torch::Tensor embed, final_norm, rope;
  Projection lm_head;  // weight empty: the caller computes the logits
  int64_t hidden, hq, hkv, d, inter, gemv_rows;
  float eps, scale;
};

std::mutex registry_mutex;
std::vector<std::unique_ptr<Stack>> registry;

Projection projection(const std::vector<torch::Tensor>& t, int64_t i, int64_t bits,
                      int64_t group, bool with_bias) {
  Projection p;
  p.weight = t[i];
  p.scales = t[i + 1];
  p.zeros = t[i + 2];
  p.bias = with_bias ? t[i + 3] : torch::Tensor();
  if (!p.bias.defined()) p.bias = torch::empty({0});
  p.bits = bits;
  p.group = group;
  TORCH_CHECK(p.weight.is_contiguous(), "decode stack: weights must be contiguous");
  TORCH_CHECK(bits != 0 || p.weight.scalar_type() == at::kFloat,
              "decode stack: float weights must be float32");
  return p;
}

void rms(const Stack& s, const float* x, float* residual_inout, const torch::Tensor& weight,
         float* out, int64_t rows) {
  // residual_inout: x + residual is written back into it and normalised (the reference's
  // `rms_norm(x, weight, eps, residual)`); null: x alone
  rms_norm_rows<float>(x, residual_inout, weight.data_ptr<float>(), out, residual_inout, rows,
                       s.hidden, s.eps);
}

}  // namespace dstep

int64_t decode_stack_new(std::vector<torch::Tensor> tensors, std::vector<int64_t> ints,
                         std::vector<double> floats) {
  using namespace dstep;
  TORCH_CHECK(ints.size() == 8 && floats.size() == 2, "decode_stack_new: 8 ints, 2 floats");
  TORCH_CHECK(tensors.size() >= 6 && (tensors.size() - 6) % kLayerTensors == 0,
              "decode_stack_new: layers of ", kLayerTensors, " tensors, then 6");
  auto s = std::make_unique<Stack>();
  s->hidden = ints[0]; s->hq = ints[1]; s->hkv = ints[2]; s->d = ints[3]; s->inter = ints[4];
  s->gemv_rows = ints[5];
  const int64_t bits = ints[6], group = ints[7];
  s->eps = static_cast<float>(floats[0]);
  s->scale = static_cast<float>(floats[1]);
  const int64_t num_layers = (tensors.size() - 6) / kLayerTensors;
  for (int64_t l = 0; l < num_layers; ++l) {
    const int64_t b = l * kLayerTensors;
    Layer layer;
    layer.in_norm = tensors[b];
    layer.post_norm = tensors[b + 1];
    layer.qkv = projection(tensors, b + 2, bits, group, true);   // b+2..b+5 (bias)
    layer.o = projection(tensors, b + 6, bits, group, false);    // b+6..b+8
    layer.gate_up = projection(tensors, b + 9, bits, group, false);
    layer.down = projection(tensors, b + 12, bits, group, false);
    layer.k_buf = tensors[b + 15];
    layer.v_buf = tensors[b + 16];
    for (const auto& t : {layer.in_norm, layer.post_norm, layer.k_buf, layer.v_buf})
      TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous(),
                  "decode stack: norms and K/V buffers must be contiguous float32");
    s->layers.push_back(layer);
  }
  const int64_t top = num_layers * kLayerTensors;
  s->embed = tensors[top];
  s->final_norm = tensors[top + 1];
  s->rope = tensors[top + 2];
  TORCH_CHECK(s->embed.scalar_type() == at::kFloat && s->rope.scalar_type() == at::kFloat,
              "decode stack: the embedding and the RoPE cache must be float32");
  const torch::Tensor& head_scales = tensors[top + 4];
  if (tensors[top + 3].numel()) {  // the lm_head's own format (a tied one is int8)
    const int64_t head_bits = head_scales.numel()
        ? tensors[top + 3].size(1) * 8 / s->hidden : 0;
    const int64_t head_group = head_scales.numel() ? s->hidden / head_scales.size(1) : 0;
    s->lm_head = projection(tensors, top + 3, head_bits, head_group, false);
  }
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry.push_back(std::move(s));
  return static_cast<int64_t>(registry.size()) - 1;
}

void decode_stack_free(int64_t id) {
  std::lock_guard<std::mutex> lock(dstep::registry_mutex);
  if (id >= 0 && id < static_cast<int64_t>(dstep::registry.size())) dstep::registry[id].reset();
}

// the final normed hidden states [B, hidden] of one decode token per request, or with
// `logits` (and an lm_head registered) their float32 logits [B, vocab]
torch::Tensor decode_stack_run(int64_t id, torch::Tensor input_ids, torch::Tensor positions,
                               torch::Tensor slots, torch::Tensor req_to_token,
                               torch::Tensor rows, torch::Tensor seq_lens, bool logits) {
  using namespace dstep;
  const Stack* sp = nullptr;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    TORCH_CHECK(id >= 0 && id < static_cast<int64_t>(registry.size()) && registry[id],
                "decode_stack_run: no stack ", id);
    sp = registry[id].get();
  }
  const Stack& s = *sp;
  const int64_t batch = input_ids.size(0), H = s.hidden, d = s.d;
  const int64_t q_size = s.hq * d, kv_size = s.hkv * d, rotary = s.rope.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto x = torch::empty({batch, H}, opts), residual = torch::empty({batch, H}, opts);
  auto h = torch::empty({batch, H}, opts);
  auto qkv = torch::empty({batch, q_size + 2 * kv_size}, opts);
  auto q = torch::empty({batch, q_size}, opts), k = torch::empty({batch, kv_size}, opts);
  auto q_rot = torch::empty({batch, q_size}, opts), k_rot = torch::empty({batch, kv_size}, opts);
  auto attn = torch::empty({batch, q_size}, opts);
  auto gate_up = torch::empty({batch, 2 * s.inter}, opts);
  auto act = torch::empty({batch, s.inter}, opts);
  auto starts = torch::zeros({batch}, torch::kLong);
  const int64_t* ids = input_ids.data_ptr<int64_t>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  const float* embed = s.embed.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(x.data_ptr<float>() + b * H, embed + ids[b] * H, H * sizeof(float));
  std::memcpy(residual.data_ptr<float>(), x.data_ptr<float>(), batch * H * sizeof(float));
  bool first = true;
  for (const Layer& layer : s.layers) {
    if (first) {
      rms(s, residual.data_ptr<float>(), nullptr, layer.in_norm, h.data_ptr<float>(), batch);
      first = false;
    } else {
      rms(s, x.data_ptr<float>(), residual.data_ptr<float>(), layer.in_norm,
          h.data_ptr<float>(), batch);
    }
    layer.qkv.apply(h, qkv, s.gemv_rows);
    float* v = qkv.data_ptr<float>();
    for (int64_t b = 0; b < batch; ++b) {
      const float* src = qkv.data_ptr<float>() + b * (q_size + 2 * kv_size);
      std::memcpy(q.data_ptr<float>() + b * q_size, src, q_size * sizeof(float));
      std::memcpy(k.data_ptr<float>() + b * kv_size, src + q_size, kv_size * sizeof(float));
    }
    rope_rows<float, true>(q.data_ptr<float>(), q_rot.data_ptr<float>(), pos,
                           s.rope.data_ptr<float>(), batch, s.hq, d, rotary);
    rope_rows<float, true>(k.data_ptr<float>(), k_rot.data_ptr<float>(), pos,
                           s.rope.data_ptr<float>(), batch, s.hkv, d, rotary);
    float* kb = layer.k_buf.data_ptr<float>();
    float* vb = layer.v_buf.data_ptr<float>();
    for (int64_t b = 0; b < batch; ++b) {
      std::memcpy(kb + slot[b] * kv_size, k_rot.data_ptr<float>() + b * kv_size,
                  kv_size * sizeof(float));
      std::memcpy(vb + slot[b] * kv_size, v + b * (q_size + 2 * kv_size) + q_size + kv_size,
                  kv_size * sizeof(float));
    }
    decode<float>(q_rot.data_ptr<float>(), kb, vb, req_to_token.data_ptr<int64_t>(),
                  req_to_token.stride(0), rows.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
                  seq_lens.data_ptr<int64_t>(), attn.data_ptr<float>(), batch, s.hq, s.hkv, d,
                  s.scale, 0.f);
    layer.o.apply(attn, x, s.gemv_rows);
    rms(s, x.data_ptr<float>(), residual.data_ptr<float>(), layer.post_norm,
        h.data_ptr<float>(), batch);
    layer.gate_up.apply(h, gate_up, s.gemv_rows);
    silu_mul_rows<float>(gate_up.data_ptr<float>(), act.data_ptr<float>(), batch, s.inter);
    layer.down.apply(act, x, s.gemv_rows);
  }
  rms(s, x.data_ptr<float>(), residual.data_ptr<float>(), s.final_norm, h.data_ptr<float>(),
      batch);
  if (!logits || !s.lm_head.weight.defined()) return h;
  auto out = torch::empty({batch, s.lm_head.weight.size(0)}, opts);
  s.lm_head.apply(h, out, s.gemv_rows);
  return out;
}
"""
