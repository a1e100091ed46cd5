// The vocoder's inference hot paths in C++: one causal ConvNeXt block (aqaa.vocoder.causal.ConvNeXtBlock),
//
//   y = LayerNorm(depthwise_causal_conv(cat(cache, x))) + bias;  out = x + scale ∘ (GELU(y W_upᵀ + b_up) W_downᵀ + b_down)
//
// and the flow's whole Euler solve over a block of frames (aqaa.vocoder.estimator.Estimator at every step, with
// classifier-free guidance), in a single call each.
//
// Weight products run on ATen `mm` (fp32, weights stored transposed: MKL multiplies a few rows by them ~1.5x
// faster than by a transposed view) or, where the CPU has AVX-512 and every weight
// of a matrix is exactly a float16 value (a float16 checkpoint, like the shipped vocoder), on our own kernel over
// float16 panels: the same products (fp32 arithmetic on the same values) from half the bytes, which is what a
// stream's few-row products wait for (each chunk reads every weight of the conditioner and mel2wav once).
//
// Why: a stream renders 360 ms at a time, so every tensor is a few rows, and in Python each small op costs more
// than its arithmetic; the flow runs its estimator 10 steps per chunk, ~60 ops each. Here everything between the
// products is a loop over rows (biases included, which saves `addmm`'s copy of them). Results equal the Python
// path's to float rounding (~1e-6): sums run in another order and erf/exp are our own polynomials (below), so
// the tests compare the two paths rather than assume them equal.
#include <torch/extension.h>

#include "../../csrc/cpu_clones.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define AQAA_HALF_PANELS 1
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t PANEL = 32;  // columns per float16 panel: two AVX-512 registers

#ifdef AQAA_HALF_PANELS
// out rows [MR, ≤ 32 columns] (row stride ldo) = x [MR, K] · one panel [K, 32] of float16 weights
template <int MR>
__attribute__((target("avx512f,f16c"))) void half_tile(const float* x, int64_t K, const uint16_t* panel, float* out,
                                                       int64_t ldo, int64_t cols) {
  __m512 lo[MR], hi[MR];
  for (int m = 0; m < MR; ++m) lo[m] = hi[m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * PANEL)));
    const __m512 w1 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * PANEL + 16)));
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) {
      const __m512 xk = _mm512_set1_ps(x[m * K + k]);
      lo[m] = _mm512_fmadd_ps(xk, w0, lo[m]);
      hi[m] = _mm512_fmadd_ps(xk, w1, hi[m]);
    }
  }
  const __mmask16 mask_lo = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 mask_hi = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  for (int m = 0; m < MR; ++m) {
    _mm512_mask_storeu_ps(out + m * ldo, mask_lo, lo[m]);
    _mm512_mask_storeu_ps(out + m * ldo + 16, mask_hi, hi[m]);
  }
}

// out [M, N] = x [M, K] · W, W as float16 panels [ceil(N / 32), K, 32]; rows in tiles of 12 (24 accumulators)
__attribute__((target("avx512f,f16c"))) void half_product(const float* x, int64_t M, int64_t K,
                                                          const uint16_t* panels, int64_t N, float* out) {
  for (int64_t p = 0; p * PANEL < N; ++p) {
    const uint16_t* panel = panels + p * K * PANEL;
    const int64_t cols = std::min(PANEL, N - p * PANEL);
    float* o = out + p * PANEL;
    int64_t m = 0;
    for (; m + 12 <= M; m += 12) half_tile<12>(x + m * K, K, panel, o + m * N, N, cols);
    for (; m + 6 <= M; m += 6) half_tile<6>(x + m * K, K, panel, o + m * N, N, cols);
    for (; m + 3 <= M; m += 3) half_tile<3>(x + m * K, K, panel, o + m * N, N, cols);
    for (; m < M; ++m) half_tile<1>(x + m * K, K, panel, o + m * N, N, cols);
  }
}
#endif

// x [M, K] · W → [M, n]: W as fp32 [K, n] (ATen mm) or float16 panels [ceil(n / 32), K, 32] (pack_half)
torch::Tensor product(const torch::Tensor& x, const torch::Tensor& w, int64_t n) {
  if (w.scalar_type() == torch::kFloat32) return at::mm(x, w);
#ifdef AQAA_HALF_PANELS
  TORCH_CHECK(w.scalar_type() == torch::kHalf && w.dim() == 3 && w.size(2) == PANEL && w.size(1) == x.size(1) &&
                  w.size(0) * PANEL >= n && w.is_contiguous(),
              "weights must be fp32 [K, N] or float16 panels [ceil(N / 32), K, 32]");
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.is_contiguous() && x.dim() == 2, "x must be contiguous [M, K]");
  auto out = torch::empty({x.size(0), n}, x.options());
  half_product(x.data_ptr<float>(), x.size(0), x.size(1), reinterpret_cast<const uint16_t*>(w.data_ptr<at::Half>()),
               n, out.data_ptr<float>());
  return out;
#else
  TORCH_CHECK(false, "float16 panels need an x86-64 build");
#endif
}

// Rows a product's weights take (its K): fp32 [K, N] or panels [P, K, 32]
int64_t product_inputs(const torch::Tensor& w) { return w.dim() == 2 ? w.size(0) : w.size(1); }

// e^a for a ≤ 0, with no libm call or branch so that the GELU loop vectorises: a = n ln 2 + r, e^r by Cephes'
// expf polynomial (about 1 ulp), 2^n written into the exponent bits. Below -87 the result (≤ 1.7e-38) is
// irrelevant to erf and is clamped there. n is rounded by the 1.5 · 2^23 trick (exact in float arithmetic).
inline float exp_nonpositive(float a) {
  a = a < -87.f ? -87.f : a;
  const float n = (a * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = a - n * 0.693359375f + n * 2.12194440e-4f;
  const float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                     1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// o [C] = LayerNorm(v [C]) · gain + shift (+ extra [C]); o may be v
inline void normalize(const float* v, const float* gain, const float* shift, const float* extra, float eps,
                      int64_t C, float* o) {
  float mean = 0.f;
#pragma omp simd reduction(+ : mean)
  for (int64_t c = 0; c < C; ++c) mean += v[c];
  mean /= static_cast<float>(C);
  float var = 0.f;
#pragma omp simd reduction(+ : var)
  for (int64_t c = 0; c < C; ++c) var += (v[c] - mean) * (v[c] - mean);
  const float inv = 1.f / std::sqrt(var / static_cast<float>(C) + eps);
  if (extra == nullptr) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = (v[c] - mean) * inv * gain[c] + shift[c];
  } else {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = (v[c] - mean) * inv * gain[c] + shift[c] + extra[c];
  }
}

// y [B·T, C] = LayerNorm(causal depthwise conv of cat(cache [B, H, C], x [B, T, C])) + bias [B or 1, C]
AQAA_CPU_CLONES void conv_norm(const float* x, const float* cache, const float* taps /* [K, C] */,
                               const float* conv_bias, const float* gain, const float* shift, const float* bias,
                               int64_t bias_stride, float eps, int64_t B, int64_t T, int64_t C, int64_t K, float* y) {
  const int64_t H = K - 1;
  for (int64_t b = 0; b < B; ++b) {
    const float* extra = bias == nullptr ? nullptr : bias + b * bias_stride;
    for (int64_t t = 0; t < T; ++t) {
      float* out = y + (b * T + t) * C;
      std::memcpy(out, conv_bias, C * sizeof(float));
      for (int64_t k = 0; k < K; ++k) {
        const int64_t j = t + k;  // row of cat(cache, x)
        const float* in = j < H ? cache + (b * H + j) * C : x + (b * T + j - H) * C;
        const float* w = taps + k * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) out[c] += w[c] * in[c];
      }
      normalize(out, gain, shift, extra, eps, C, out);
    }
  }
}

// In place: u [rows, E] = GELU(u + bias) with GELU(v) = v/2 · (1 + erf(v/√2)), erf by Abramowitz & Stegun
// 7.1.26 (|error| < 1.5e-7).
AQAA_CPU_CLONES void bias_gelu(float* u, const float* bias, int64_t rows, int64_t E) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = u + r * E;
#pragma omp simd
    for (int64_t i = 0; i < E; ++i) {
    const float v = row[i] + bias[i];
    const float z = (v < 0.f ? -v : v) * 0.70710678118654752f;
    const float t = 1.f / (1.f + 0.3275911f * z);
    const float poly =
        t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float erf_z = 1.f - poly * exp_nonpositive(-z * z);
    row[i] = 0.5f * v * (1.f + (v < 0.f ? -erf_z : erf_z));
    }
  }
}

// In place: d [rows, C] = x + scale ∘ (d + bias)
AQAA_CPU_CLONES void residual(const float* x, const float* scale, const float* bias, float* d, int64_t rows,
                              int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[r * C + c] = x[r * C + c] + scale[c] * (d[r * C + c] + bias[c]);
  }
}

void check_float(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous(), name,
              " must be a contiguous float32 CPU tensor");
}

// In place: cache [B, H, C] = the last H rows of cat(cache, x [B, T, C]) (plain copies: as ATen ops, narrow and
// copy_ cost more than the bytes they move)
void keep_last(float* cache, const float* x, int64_t B, int64_t T, int64_t H, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    float* c = cache + b * H * C;
    const float* xb = x + b * T * C;
    if (T >= H) {
      std::memcpy(c, xb + (T - H) * C, H * C * sizeof(float));
    } else {
      std::memmove(c, c + T * C, (H - T) * C * sizeof(float));
      std::memcpy(c + (H - T) * C, xb, T * C * sizeof(float));
    }
  }
}

// A block's operands as ConvNeXtBlock.operands() gives them: nine tensors and the LayerNorm eps.
struct Block {
  torch::Tensor taps, conv_bias, gain, shift, up_t, up_bias, down_t, down_bias, scale;
  double eps;

  Block(const std::vector<torch::Tensor>& p, double eps_)
      : taps(p.at(0)), conv_bias(p.at(1)), gain(p.at(2)), shift(p.at(3)), up_t(p.at(4)), up_bias(p.at(5)),
        down_t(p.at(6)), down_bias(p.at(7)), scale(p.at(8)), eps(eps_) {
    TORCH_CHECK(p.size() == 9, "a block has 9 operands");
    check_float(taps, "taps");
  }

  // x [B, T, C], cache [B, K - 1, C] (replaced in place by the last K - 1 rows of cat(cache, x)),
  // bias: B rows of C floats `bias_stride` apart (0: one row for all), or null → out [B, T, C]
  torch::Tensor run(const torch::Tensor& x, torch::Tensor& cache, const float* bias, int64_t bias_stride) const {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = taps.size(0), H = K - 1;
    check_float(x, "x");
    check_float(cache, "cache");
    TORCH_CHECK(cache.size(0) == B && cache.size(1) == H && cache.size(2) == C, "cache must be [B, kernel - 1, C]");
    TORCH_CHECK(taps.size(1) == C && product_inputs(up_t) == C && down_bias.size(0) == C, "weights do not match C");
    auto y = torch::empty({B * T, C}, x.options());
    conv_norm(x.data_ptr<float>(), cache.data_ptr<float>(), taps.data_ptr<float>(), conv_bias.data_ptr<float>(),
              gain.data_ptr<float>(), shift.data_ptr<float>(), bias, bias_stride, static_cast<float>(eps), B, T, C,
              K, y.data_ptr<float>());
    auto u = product(y, up_t, up_bias.size(0));  // [B·T, E]
    bias_gelu(u.data_ptr<float>(), up_bias.data_ptr<float>(), B * T, u.size(1));
    auto d = product(u, down_t, C);  // [B·T, C]
    residual(x.data_ptr<float>(), scale.data_ptr<float>(), down_bias.data_ptr<float>(), d.data_ptr<float>(), B * T, C);
    keep_last(cache.data_ptr<float>(), x.data_ptr<float>(), B, T, H, C);
    return d.view({B, T, C});
  }
};

// A bias [B or 1, 1, C] (or None) as (pointer, row stride).
std::pair<const float*, int64_t> bias_rows(const c10::optional<torch::Tensor>& bias, int64_t B, int64_t C) {
  if (!bias.has_value()) return {nullptr, 0};
  check_float(*bias, "bias");
  TORCH_CHECK(bias->numel() == C || bias->numel() == B * C, "bias must be [B or 1, 1, C]");
  return {bias->data_ptr<float>(), bias->numel() == C ? 0 : C};
}

// out [R, C] = LayerNorm(rows [R, C])
AQAA_CPU_CLONES void layer_norm(const float* rows, const float* gain, const float* shift, float eps, int64_t R,
                                int64_t C, float* out) {
  for (int64_t r = 0; r < R; ++r) normalize(rows + r * C, gain, shift, nullptr, eps, C, out + r * C);
}

// out [B, R, C] = a [R, C] (shared by the batch, a_stride 0) or [B, R, C] (a_stride R·C) + a_bias [C]
//                 + cond [B, R, C] + bias rows [B, C]
AQAA_CPU_CLONES void add_condition(float* out, const float* a, int64_t a_stride, const float* a_bias,
                                   const float* cond, const float* bias, int64_t B, int64_t R, int64_t C) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < R; ++r) {
      float* o = out + (b * R + r) * C;
      const float* p = a + b * a_stride + r * C;
      const float* k = cond + (b * R + r) * C;
      const float* e = bias + b * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = p[c] + a_bias[c] + k[c] + e[c];
    }
}

// In place: up [R, C] += bias [C] + skip [R, C] (or nothing)
AQAA_CPU_CLONES void add_skip(float* up, const float* bias, const float* skip, int64_t R, int64_t C) {
  for (int64_t r = 0; r < R; ++r) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) up[r * C + c] += bias[c] + (skip ? skip[r * C + c] : 0.f);
  }
}

}  // namespace

// x [B, T, C], cache [B, K - 1, C], bias [B or 1, 1, C] or None; parts and eps: the block's operands (Block)
// → (out [B, T, C], new cache [B, K - 1, C]: the last K - 1 rows of cat(cache, x))
std::tuple<torch::Tensor, torch::Tensor> convnext_block(const torch::Tensor& x, const torch::Tensor& cache,
                                                        const c10::optional<torch::Tensor>& bias,
                                                        const std::vector<torch::Tensor>& parts, double eps) {
  check_float(x, "x");
  check_float(cache, "cache");
  TORCH_CHECK(x.dim() == 3 && cache.dim() == 3, "x and cache must be [B, T, C]");
  const Block block(parts, eps);
  auto next = cache.clone();
  const auto [rows, stride] = bias_rows(bias, x.size(0), x.size(2));
  auto out = block.run(x, next, rows, stride);
  return {out, next};
}

// The estimator's Euler solve for one block of frames. Built once per stream from the estimator's weights;
// `render` runs every step, each a forward pass of aqaa.vocoder.estimator.Estimator on the batch [conditioned,
// unconditioned] (or the conditioned one alone) combined by guidance.
class FlowSolver {
 public:
  // linears: inp, down, up, out as (weight transposed, bias) pairs; norm: (gain, shift); blocks: pre, low, post
  FlowSolver(const std::vector<torch::Tensor>& linears, const std::vector<torch::Tensor>& norm, double norm_eps,
             int64_t stride, const std::vector<std::vector<torch::Tensor>>& blocks, const std::vector<double>& eps,
             int64_t pre, int64_t low)
      : norm_eps_(norm_eps), stride_(stride), pre_(pre), low_(low) {
    TORCH_CHECK(linears.size() == 8 && norm.size() == 2, "expected 4 linears and one norm");
    TORCH_CHECK(blocks.size() == eps.size() && pre >= 0 && low >= 0 &&
                    static_cast<int64_t>(blocks.size()) == 2 * pre + low,
                "blocks must be pre, low and post (as many post as pre)");
    for (const auto& t : linears) TORCH_CHECK(t.is_contiguous(), "weights must be contiguous");
    inp_t_ = linears[0], inp_b_ = linears[1], down_t_ = linears[2], down_b_ = linears[3];
    up_t_ = linears[4], up_b_ = linears[5], out_t_ = linears[6], out_b_ = linears[7];
    gain_ = norm[0], shift_ = norm[1];
    for (size_t i = 0; i < blocks.size(); ++i) blocks_.emplace_back(blocks[i], eps[i]);
  }

  // x0 [1, T, n_mels] noise; cond_full [B, T, C], cond_low [B, T / stride, D] (B = 2: conditioned, then
  // unconditioned); biases[k]: step k's time biases in the estimator's order, each [B, 1, width]; states[k]: step
  // k's block caches, updated in place; dt[k]: step k's time increment → x [1, T, n_mels]
  torch::Tensor render(const torch::Tensor& x0, const torch::Tensor& cond_full, const torch::Tensor& cond_low,
                       const std::vector<std::vector<torch::Tensor>>& biases,
                       std::vector<std::vector<torch::Tensor>>& states, const std::vector<double>& dt,
                       double guidance) const {
    check_float(cond_full, "cond_full");
    check_float(cond_low, "cond_low");
    const int64_t steps = static_cast<int64_t>(dt.size()), B = cond_full.size(0), T = x0.size(1), N = x0.size(2);
    TORCH_CHECK(B == 1 || B == 2, "the batch is [conditioned] or [conditioned, unconditioned]");
    TORCH_CHECK(static_cast<int64_t>(biases.size()) == steps && static_cast<int64_t>(states.size()) == steps,
                "one set of biases and one state per step");
    TORCH_CHECK(T % stride_ == 0, "the estimator renders whole blocks of stride frames");
    auto x = x0.reshape({T, N}).contiguous().clone();
    const float w = static_cast<float>(guidance);
    for (int64_t k = 0; k < steps; ++k) {
      auto v = forward(x, B, cond_full, cond_low, biases[k], states[k]);  // [B, T, N]
      float* xp = x.data_ptr<float>();
      const float* vc = v.data_ptr<float>();
      const float step = static_cast<float>(dt[k]);
      const float* vu = B == 1 ? vc : vc + T * N;  // guided: vu + (1 + w)(vc - vu); the bias cancels in the difference
      const float* ob = out_b_.data_ptr<float>();
      for (int64_t t = 0; t < T; ++t) {
#pragma omp simd
        for (int64_t i = t * N; i < (t + 1) * N; ++i) xp[i] += step * (vu[i] + ob[i - t * N] + (1.f + w) * (vc[i] - vu[i]));
      }
    }
    return x.view({1, T, N});
  }

 private:
  // x [T, N] (the same for every batch row) → v [B, T, N] less the output bias (render adds it)
  torch::Tensor forward(const torch::Tensor& x, int64_t B, const torch::Tensor& cond_full,
                        const torch::Tensor& cond_low, const std::vector<torch::Tensor>& biases,
                        std::vector<torch::Tensor>& caches) const {
    const int64_t T = x.size(0), C = inp_b_.size(0), D = down_b_.size(0), s = stride_;
    TORCH_CHECK(static_cast<int64_t>(biases.size()) == 2 + 2 * pre_ + low_ &&
                    static_cast<int64_t>(caches.size()) == 2 * pre_ + low_,
                "biases or caches do not match the estimator's blocks");
    for (const auto& b : biases) check_float(b, "a time bias");
    size_t next_bias = 0;
    auto bias = [&](int64_t width) {
      const auto& b = biases[next_bias++];
      TORCH_CHECK(b.numel() == B * width, "a time bias must be [B, 1, width]");
      return b.data_ptr<float>();
    };
    auto run = [&](int64_t first, int64_t count, torch::Tensor h) {
      for (int64_t i = first; i < first + count; ++i) {
        const int64_t width = h.size(2);
        h = blocks_[i].run(h, caches[i], bias(width), width);
      }
      return h;
    };
    // h = inp(x) + cond_full + bias, for each batch row
    auto shared = product(x, inp_t_, C);  // [T, C]
    auto h = torch::empty({B, T, C}, x.options());
    add_condition(h.data_ptr<float>(), shared.data_ptr<float>(), 0, inp_b_.data_ptr<float>(),
                  cond_full.data_ptr<float>(), bias(C), B, T, C);
    auto skip = run(0, pre_, h);
    auto z = product(skip.reshape({B * T / s, s * C}), down_t_, D).view({B, T / s, D});
    add_condition(z.data_ptr<float>(), z.data_ptr<float>(), T / s * D, down_b_.data_ptr<float>(),
                  cond_low.data_ptr<float>(), bias(D), B, T / s, D);
    z = run(pre_, low_, z);
    auto up = product(z.view({B * T / s, D}), up_t_, s * C).view({B, T, C});  // [B, T / s, s · C] as [B, T, C]
    add_skip(up.data_ptr<float>(), up_b_.data_ptr<float>(), skip.data_ptr<float>(), B * T / s, s * C);
    h = run(pre_ + low_, pre_, up);
    auto y = torch::empty({B * T, C}, h.options());
    layer_norm(h.data_ptr<float>(), gain_.data_ptr<float>(), shift_.data_ptr<float>(), static_cast<float>(norm_eps_),
               B * T, C, y.data_ptr<float>());
    return product(y, out_t_, out_b_.size(0)).view({B, T, -1});
  }

  torch::Tensor inp_t_, inp_b_, down_t_, down_b_, up_t_, up_b_, out_t_, out_b_, gain_, shift_;
  double norm_eps_;
  int64_t stride_, pre_, low_;
  std::vector<Block> blocks_;
};

// x [M, K] · W + bias [N] (W as `product` reads it)
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  check_float(bias, "bias");
  auto y = product(x, w, bias.size(0));
  add_skip(y.data_ptr<float>(), bias.data_ptr<float>(), nullptr, y.size(0), y.size(1));
  return y;
}

// fp32 W [K, N] → float16 panels [ceil(N / 32), K, 32] (the last zero-padded)
torch::Tensor pack_half(const torch::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kFloat32, "pack_half takes fp32 [K, N]");
  const int64_t K = w.size(0), N = w.size(1), P = (N + PANEL - 1) / PANEL;
  auto padded = torch::zeros({K, P * PANEL}, w.options());
  padded.narrow(1, 0, N).copy_(w);
  return padded.view({K, P, PANEL}).permute({1, 0, 2}).contiguous().to(torch::kHalf);
}

// Whether this CPU runs the float16-panel products
bool half_supported() {
#ifdef AQAA_HALF_PANELS
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

void bind_vocoder_kernels(pybind11::module_& m) {
  m.def("linear", &linear, "x · W + bias, W fp32 transposed or float16 panels");
  m.def("pack_half", &pack_half, "fp32 W [K, N] → float16 panels");
  m.def("half_supported", &half_supported, "whether this CPU runs the float16-panel products");
  m.def("convnext_block", &convnext_block, "one causal ConvNeXt block at inference (see the file's header)");
  pybind11::class_<FlowSolver>(m, "FlowSolver")
      .def(pybind11::init<const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>&, double, int64_t,
                          const std::vector<std::vector<torch::Tensor>>&, const std::vector<double>&, int64_t,
                          int64_t>())
      .def("render", &FlowSolver::render);
}
