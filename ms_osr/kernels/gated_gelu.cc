// Restormer's GDFN gate, y = GELU(a) * g with (a, g) the two channel halves of u, fused into one pass
// (and one for its gradient) for MindSpore's CPU "aot" Custom operator.  Why: written with MindSpore
// ops the gate is a channel split plus six element-wise passes forward and about ten backward, each
// over an activation-sized tensor.
//
//   MsOsrGatedGelu     (u (N,2C,H,W))              -> y (N,C,H,W)     y = GELU(a) * g, exact (erf) GELU
//   MsOsrGatedGeluGrad (u (N,2C,H,W), dy (N,C,H,W)) -> du (N,2C,H,W)  da = dy*g*GELU'(a), dg = dy*GELU(a)
//
// erf uses Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7) with a polynomial exp, so the loops
// vectorise; GELU differs from the exact erf form by < 1e-7 * |a|.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "parallel.h"

namespace {

// e^x for x <= 0 (the only use here): 2^n * e^r with |r| <= ln2/2, degree-6 Taylor polynomial
// (relative error < 2e-7); the 2^n factor is built from the exponent bits.
inline float exp_nonpositive(float x) {
  x = x < -87.f ? -87.f : x;
  // Round to nearest by adding and removing 1.5 * 2^23 (vectorises, unlike floorf without fast-math).
  const float n = (x * 1.44269504f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two for accuracy
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

// GELU(a) and GELU'(a) from one erf / exp evaluation.
inline void gelu_and_slope(float a, float* gelu, float* slope) {
  const float z = std::fabs(a) * 0.70710678f;  // |a| / sqrt(2)
  const float t = 1.f / (1.f + 0.3275911f * z);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f +
                     t * 1.061405429f))));
  const float e = exp_nonpositive(-z * z);                 // exp(-a^2 / 2)
  const float erf_abs = 1.f - poly * e;
  const float cdf = 0.5f * (1.f + (a < 0.f ? -erf_abs : erf_abs));  // Phi(a)
  *gelu = a * cdf;
  *slope = cdf + a * 0.39894228f * e;                      // Phi(a) + a * phi(a)
}

void gate(const float* a, const float* g, float* y, int64_t count) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    float gelu, slope;
    gelu_and_slope(a[i], &gelu, &slope);
    y[i] = gelu * g[i];
  }
}

void gate_grad(const float* a, const float* g, const float* dy, float* da, float* dg, int64_t count) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    float gelu, slope;
    gelu_and_slope(a[i], &gelu, &slope);
    da[i] = dy[i] * g[i] * slope;
    dg[i] = dy[i] * gelu;
  }
}

// Calls fn(a, g, out, count) for every (image, channel) plane: a and g are the offsets of the plane's two
// halves in u (N, 2C, H, W), out its offset in a (N, C, H, W) tensor, count its H*W elements.
template <typename Fn>
void for_each_gate_plane(int64_t** shapes, Fn fn) {
  const int64_t N = shapes[0][0], C = shapes[0][1] / 2, plane = shapes[0][2] * shapes[0][3];
  ms_osr::parallel_for(N * C, plane, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t a = ((p / C) * 2 * C + p % C) * plane;
      fn(a, a + C * plane, p * plane, plane);
    }
  });
}

}  // namespace

extern "C" {

int MsOsrGatedGelu(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                   void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 2) || shapes[0][1] % 2) return 1;
  const float* u = static_cast<const float*>(params[0]);
  float* y = static_cast<float*>(params[1]);
  for_each_gate_plane(shapes, [&](int64_t a, int64_t g, int64_t out, int64_t count) {
    gate(u + a, u + g, y + out, count);
  });
  return 0;
}

int MsOsrGatedGeluGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                       void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 3) || shapes[0][1] % 2) return 1;
  const float* u = static_cast<const float*>(params[0]);
  const float* dy = static_cast<const float*>(params[1]);
  float* du = static_cast<float*>(params[2]);
  for_each_gate_plane(shapes, [&](int64_t a, int64_t g, int64_t out, int64_t count) {
    gate_grad(u + a, u + g, dy + out, du + a, du + g, count);
  });
  return 0;
}

}  // extern "C"
