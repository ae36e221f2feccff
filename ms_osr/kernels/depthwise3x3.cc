// Depthwise 3x3 convolution (stride 1, zero padding 1, no dilation), float32 NCHW, for MindSpore's
// CPU "aot" Custom operator.  Why: MindSpore 2.10 hands oneDNN plain NCHW descriptors, so a grouped
// 3x3 conv with one channel per group runs per-group im2col + GEMM at 2-5 GFLOP/s (forward and both
// backward passes); a plane-at-a-time stencil over a zero-padded copy is memory-bound instead.
//
// Entry points (MindSpore aot signature; params = inputs then outputs):
//   MsOsrDw3x3        (x (N,C,H,W), w (C,1,3,3))  -> y (N,C,H,W)     correlation, as torch conv2d
//   MsOsrDw3x3Flipped (dy (N,C,H,W), w (C,1,3,3)) -> dx (N,C,H,W)    grad wrt x: 180-degree flipped w
//   MsOsrDw3x3Filter  (x (N,C,H,W), dy (N,C,H,W)) -> dw (C,1,3,3)    grad wrt w, summed over N
// Built with the other kernels into one library by ms_osr/kernels/__init__.py.
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {

// Copies an H x W plane into the interior of an (H+2) x (W+2) buffer whose one-pixel border is zero.
// The border is never written, so a buffer zeroed once serves every plane of a task.
void pad_plane(const float* src, int64_t H, int64_t W, float* dst) {
  const int64_t P = W + 2;
  for (int64_t h = 0; h < H; ++h) std::memcpy(dst + (h + 1) * P + 1, src + h * W, sizeof(float) * W);
}

// y = sum_{i,j} k[i][j] * xp[h+i][w+j] over one padded plane.
void stencil_plane(const float* xp, const float* k, int64_t H, int64_t W, float* y) {
  const int64_t P = W + 2;
  const float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7],
              k8 = k[8];
  for (int64_t h = 0; h < H; ++h) {
    const float* r0 = xp + h * P;
    const float* r1 = r0 + P;
    const float* r2 = r1 + P;
    float* out = y + h * W;
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) {
      out[w] = k0 * r0[w] + k1 * r0[w + 1] + k2 * r0[w + 2] + k3 * r1[w] + k4 * r1[w + 1] +
               k5 * r1[w + 2] + k6 * r2[w] + k7 * r2[w + 1] + k8 * r2[w + 2];
    }
  }
}

int depthwise(void** params, int64_t** shapes, bool flip) {
  const float* x = static_cast<const float*>(params[0]);
  const float* w = static_cast<const float*>(params[1]);
  float* y = static_cast<float*>(params[2]);
  const int64_t N = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  if (shapes[1][0] != C || shapes[1][1] != 1 || shapes[1][2] != 3 || shapes[1][3] != 3) return 1;
  const int64_t plane = H * W;
  ms_osr::parallel_for(N * C, plane, [&](int64_t begin, int64_t end) {
    std::vector<float> xp((H + 2) * (W + 2));
    float k[9];
    for (int64_t p = begin; p < end; ++p) {
      const float* kc = w + (p % C) * 9;
      for (int t = 0; t < 9; ++t) k[t] = flip ? kc[8 - t] : kc[t];
      pad_plane(x + p * plane, H, W, xp.data());
      stencil_plane(xp.data(), k, H, W, y + p * plane);
    }
  });
  return 0;
}

}  // namespace

extern "C" {

int MsOsrDw3x3(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
               void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 3)) return 1;
  return depthwise(params, shapes, false);
}

int MsOsrDw3x3Flipped(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                      void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 3)) return 1;
  return depthwise(params, shapes, true);
}

int MsOsrDw3x3Filter(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                     void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 3)) return 1;
  const float* x = static_cast<const float*>(params[0]);
  const float* dy = static_cast<const float*>(params[1]);
  float* dw = static_cast<float*>(params[2]);
  const int64_t N = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t P = W + 2, plane = H * W;
  // One channel per task: its 9 taps are summed over every image and pixel (rows in float, the
  // running totals in double so large planes do not lose precision).
  ms_osr::parallel_for(C, N * plane, [&](int64_t begin, int64_t end) {
    std::vector<float> xp((H + 2) * P);
    for (int64_t c = begin; c < end; ++c) {
      double acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t n = 0; n < N; ++n) {
        const int64_t p = n * C + c;
        pad_plane(x + p * plane, H, W, xp.data());
        const float* g = dy + p * plane;
        for (int64_t h = 0; h < H; ++h) {
          const float* r0 = xp.data() + h * P;
          const float* r1 = r0 + P;
          const float* r2 = r1 + P;
          const float* gr = g + h * W;
          float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7, s8)
          for (int64_t w = 0; w < W; ++w) {
            const float d = gr[w];
            s0 += d * r0[w];
            s1 += d * r0[w + 1];
            s2 += d * r0[w + 2];
            s3 += d * r1[w];
            s4 += d * r1[w + 1];
            s5 += d * r1[w + 2];
            s6 += d * r2[w];
            s7 += d * r2[w + 1];
            s8 += d * r2[w + 2];
          }
          acc[0] += s0; acc[1] += s1; acc[2] += s2;
          acc[3] += s3; acc[4] += s4; acc[5] += s5;
          acc[6] += s6; acc[7] += s7; acc[8] += s8;
        }
      }
      for (int t = 0; t < 9; ++t) dw[c * 9 + t] = static_cast<float>(acc[t]);
    }
  });
  return 0;
}

}  // extern "C"
