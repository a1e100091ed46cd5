// One decoding step of a bias-free Llama with SiLU MLPs (batch 1, one new token, float32 activations) in a single
// call.
//
// Why: from Python each small op costs a few microseconds, and a step has ~20 of them per layer besides the weight
// products; for a small model that is most of the step. Here fp32 weight products are the same ATen `mm`s that
// Python would call (and that bench/decode.py's floor loop times), and everything between them is a plain loop
// over one row of floats: RMSNorm, RoPE written straight into the KV cache, single-query attention, SiLU gating,
// residual adds. The arithmetic is the same as Hugging Face's Llama, but sums run in a different order, so
// logits agree to float rounding rather than bit for bit (tests/lm/test_generate.py checks both the logits and
// the greedy tokens).
//
// Weights are fp32 (ATen `mm`) or int8 with one float scale per output (weight-only int8: a quarter of the bytes,
// activations stay float32; our own matrix-vector loop, compiled for AVX-512, AVX2 and plain x86-64 and chosen
// at load time by the CPU).
//
// The KV cache, RoPE tables and weights are the Python decoder's own tensors (FastLlama): prefill and
// speculative verification run there, single-token steps here, on one shared cache.
#include <torch/extension.h>

#include "../../csrc/cpu_clones.h"

#include <cmath>
#include <vector>

namespace {

// y [d_out] = (x [d_in] · W) ∘ scale for int8 W stored as [d_in, d_out]: a sweep of axpys over W's rows, so the
// vectorised loop runs along the outputs with no horizontal sums (4× faster than a dot product per output).
AQAA_CPU_CLONES void int8_matvec(const int8_t* w, const float* scale, const float* x, float* y, int64_t in,
                                 int64_t out) {
  std::fill_n(y, out, 0.f);
  for (int64_t i = 0; i < in; ++i) {
    const int8_t* row = w + i * out;
    const float xi = x[i];
    for (int64_t o = 0; o < out; ++o) y[o] += xi * static_cast<float>(row[o]);
  }
  for (int64_t o = 0; o < out; ++o) y[o] *= scale[o];
}

// One weight matrix as [d_in, d_out]: an fp32 transposed view (for `mm`), or int8 + one float scale per output.
struct Product {
  torch::Tensor weight_t, scale;

  explicit Product(const std::vector<torch::Tensor>& parts) {
    TORCH_CHECK(parts.size() == 1 || parts.size() == 2, "a product is [fp32 weight_t] or [int8 weight_t, scales]");
    weight_t = parts[0];
    TORCH_CHECK(weight_t.dim() == 2, "weights must be 2-D");
    if (parts.size() == 1) {
      TORCH_CHECK(weight_t.scalar_type() == torch::kFloat32, "a product without scales needs float32 weights");
    } else {
      scale = parts[1];
      TORCH_CHECK(weight_t.scalar_type() == torch::kInt8 && weight_t.is_contiguous(),
                  "scaled weights must be contiguous int8 [d_in, d_out]");
      TORCH_CHECK(scale.scalar_type() == torch::kFloat32 && scale.is_contiguous() &&
                      scale.numel() == weight_t.size(1),
                  "one float32 scale per output");
    }
  }
  int64_t in_features() const { return weight_t.size(0); }
  int64_t out_features() const { return weight_t.size(1); }
  // out [1, d_out] = x [1, d_in] · W
  void apply(const torch::Tensor& x, torch::Tensor& out) const {
    if (scale.defined()) {
      int8_matvec(weight_t.data_ptr<int8_t>(), scale.data_ptr<float>(), x.data_ptr<float>(), out.data_ptr<float>(),
                  weight_t.size(0), weight_t.size(1));
    } else {
      at::mm_out(out, x, weight_t);
    }
  }
};

struct Layer {
  torch::Tensor norm1, norm2;
  Product qkv, out, gate_up, down;
};

// out = w * (x / sqrt(mean(x²) + eps)) over one row of n floats.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float r = 1.f / std::sqrt(sum / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

class DecodeStep {
 public:
  // norms: per layer the attention and MLP RMSNorm weights (2 × layers); products: per layer qkv, out, gate_up,
  // down, then the head (4 × layers + 1), each [fp32 weight_t] or [int8 weight_t, scales] (see Product).
  // k_cache, v_cache: [layers, kv_heads, max_len, head_dim]; cos, sin_signed: [max_len, 1, head_dim] (sin with its
  // first half negated, so RoPE is x·cos + roll(x, D/2)·sin±).
  DecodeStep(torch::Tensor embed, const std::vector<torch::Tensor>& norms,
             const std::vector<std::vector<torch::Tensor>>& products, torch::Tensor final_norm, torch::Tensor k_cache,
             torch::Tensor v_cache, torch::Tensor cos, torch::Tensor sin_signed, int64_t heads, double eps,
             double scaling)
      : embed_(embed), final_norm_(final_norm), head_(products.back()), k_cache_(k_cache), v_cache_(v_cache),
        cos_(cos), sin_(sin_signed), heads_(heads), eps_(static_cast<float>(eps)),
        scaling_(static_cast<float>(scaling)) {
    const size_t n_layers = norms.size() / 2;
    TORCH_CHECK(norms.size() == 2 * n_layers && products.size() == 4 * n_layers + 1,
                "expected 2 norms and 4 products per layer, then the head");
    for (const auto& t : {embed, final_norm, k_cache, v_cache, cos, sin_signed}) {
      TORCH_CHECK(t.scalar_type() == torch::kFloat32 && t.is_contiguous(), "tensors must be contiguous float32");
    }
    for (size_t l = 0; l < n_layers; ++l) {
      layers_.push_back({norms[2 * l], norms[2 * l + 1], Product(products[4 * l]), Product(products[4 * l + 1]),
                         Product(products[4 * l + 2]), Product(products[4 * l + 3])});
    }
    TORCH_CHECK(static_cast<int64_t>(n_layers) == k_cache.size(0), "one KV cache slice per layer");
    hidden_ = embed.size(1);
    kv_heads_ = k_cache.size(1);
    max_len_ = k_cache.size(2);
    head_dim_ = k_cache.size(3);
    TORCH_CHECK(heads_ % kv_heads_ == 0 && head_dim_ % 2 == 0, "bad head layout");
    d_ff_ = layers_[0].down.in_features();
    const auto options = torch::TensorOptions().dtype(torch::kFloat32);
    x_ = torch::empty({1, hidden_}, options);
    normed_ = torch::empty({1, hidden_}, options);
    qkv_ = torch::empty({1, (heads_ + 2 * kv_heads_) * head_dim_}, options);
    attn_ = torch::empty({1, heads_ * head_dim_}, options);
    proj_ = torch::empty({1, hidden_}, options);
    gate_up_ = torch::empty({1, 2 * d_ff_}, options);
    act_ = torch::empty({1, d_ff_}, options);
    scores_ = torch::empty({max_len_}, options);
  }

  // Feed `token` at position `pos` (the cache holds positions 0 … pos - 1); returns the next logits [vocab].
  torch::Tensor step(int64_t token, int64_t pos) {
    TORCH_CHECK(0 <= pos && pos < max_len_, "position ", pos, " is outside the KV cache of ", max_len_);
    TORCH_CHECK(0 <= token && token < embed_.size(0), "token id ", token, " is outside the embedding table");
    torch::NoGradGuard no_grad;
    const int64_t d = head_dim_, half = d / 2, group = heads_ / kv_heads_, len = pos + 1;
    float* x = x_.data_ptr<float>();
    float* normed = normed_.data_ptr<float>();
    float* qkv = qkv_.data_ptr<float>();
    float* attn = attn_.data_ptr<float>();
    float* proj = proj_.data_ptr<float>();
    float* scores = scores_.data_ptr<float>();
    const float* cos = cos_.data_ptr<float>() + pos * d;
    const float* sin = sin_.data_ptr<float>() + pos * d;
    std::copy_n(embed_.data_ptr<float>() + token * hidden_, hidden_, x);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      rms_norm(x, layer.norm1.data_ptr<float>(), normed, hidden_, eps_);
      layer.qkv.apply(normed_, qkv_);  // [1, (H + 2 H_kv) D]
      float* keys = k_cache_.data_ptr<float>() + l * kv_heads_ * max_len_ * d;
      float* values = v_cache_.data_ptr<float>() + l * kv_heads_ * max_len_ * d;
      // RoPE: q rotated in place (into attn, as scratch), k rotated into its cache slot; v copied to its slot.
      for (int64_t h = 0; h < heads_ + kv_heads_; ++h) {
        const float* src = qkv + h * d;
        float* dst = h < heads_ ? attn + h * d : keys + ((h - heads_) * max_len_ + pos) * d;
        for (int64_t i = 0; i < d; ++i) dst[i] = src[i] * cos[i] + src[(i + half) % d] * sin[i];
      }
      for (int64_t h = 0; h < kv_heads_; ++h) {
        std::copy_n(qkv + (heads_ + kv_heads_ + h) * d, d, values + (h * max_len_ + pos) * d);
      }
      // Attention of the one query over positions 0 … pos, head by head: softmax(q·K / √D) · V.
      for (int64_t h = 0; h < heads_; ++h) {
        float* q = attn + h * d;  // rotated query; overwritten below by this head's output
        const float* k = keys + (h / group) * max_len_ * d;
        const float* v = values + (h / group) * max_len_ * d;
        float top = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          float dot = 0.f;
#pragma omp simd reduction(+ : dot)
          for (int64_t i = 0; i < d; ++i) dot += q[i] * k[j * d + i];
          scores[j] = dot * scaling_;
          top = std::max(top, scores[j]);
        }
        float total = 0.f;
        for (int64_t j = 0; j < len; ++j) {
          scores[j] = std::exp(scores[j] - top);
          total += scores[j];
        }
        std::fill_n(q, d, 0.f);
        for (int64_t j = 0; j < len; ++j) {
          const float w = scores[j] / total;
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) q[i] += w * v[j * d + i];
        }
      }
      layer.out.apply(attn_, proj_);
      for (int64_t i = 0; i < hidden_; ++i) x[i] += proj[i];
      rms_norm(x, layer.norm2.data_ptr<float>(), normed, hidden_, eps_);
      layer.gate_up.apply(normed_, gate_up_);  // [1, 2 d_ff]: gate, then up
      const float* gate = gate_up_.data_ptr<float>();
      float* act = act_.data_ptr<float>();
      for (int64_t i = 0; i < d_ff_; ++i) act[i] = gate[i] / (1.f + std::exp(-gate[i])) * gate[d_ff_ + i];
      layer.down.apply(act_, proj_);
      for (int64_t i = 0; i < hidden_; ++i) x[i] += proj[i];
    }
    rms_norm(x, final_norm_.data_ptr<float>(), normed, hidden_, eps_);
    auto logits = torch::empty({1, head_.out_features()}, x_.options());  // fresh: the caller may keep it
    head_.apply(normed_, logits);
    return logits[0];
  }

 private:
  torch::Tensor embed_, final_norm_;
  Product head_;
  torch::Tensor k_cache_, v_cache_, cos_, sin_;
  std::vector<Layer> layers_;
  int64_t heads_, kv_heads_ = 0, hidden_ = 0, max_len_ = 0, head_dim_ = 0, d_ff_ = 0;
  float eps_, scaling_;
  torch::Tensor x_, normed_, qkv_, attn_, proj_, gate_up_, act_, scores_;  // scratch rows, reused every step
};

}  // namespace

void bind_decode_step(pybind11::module_& m) {
  pybind11::class_<DecodeStep>(m, "DecodeStep")
      .def(pybind11::init<torch::Tensor, const std::vector<torch::Tensor>&,
                          const std::vector<std::vector<torch::Tensor>>&, torch::Tensor, torch::Tensor, torch::Tensor,
                          torch::Tensor, torch::Tensor, int64_t, double, double>())
      .def("step", &DecodeStep::step);
}
