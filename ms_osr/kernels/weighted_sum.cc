// GridDehazeNet's attention fusion y = wa * a + wb * b (per-channel weights wa, wb; maps a, b (N,C,H,W)) in one
// pass for MindSpore's CPU "aot" Custom operator.  Why: as MindSpore ops it is two Mul and an Add, three passes
// that read four maps and write three (4% of GridDehazeNet's forward at 256x256).  Its gradient is the cell's
// own bprop (models/griddehazenet.py, ChannelWeightedSum).
//
//   MsOsrChannelWeightedSum (wa (1,C,1,1), a (N,C,H,W), wb (1,C,1,1), b (N,C,H,W)) -> y (N,C,H,W)
#include <cstdint>
#include <cstring>

#include "parallel.h"

extern "C" {

int MsOsrChannelWeightedSum(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                            void* stream, void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 5)) return 1;
  const int64_t N = shapes[1][0], C = shapes[1][1], HW = shapes[1][2] * shapes[1][3];
  for (int i : {0, 2})
    if (shapes[i][0] != 1 || shapes[i][1] != C || shapes[i][2] != 1 || shapes[i][3] != 1) return 1;
  for (int i : {3, 4})
    for (int d = 0; d < 4; ++d)
      if (shapes[i][d] != shapes[1][d]) return 1;
  const float* wa = static_cast<const float*>(params[0]);
  const float* a = static_cast<const float*>(params[1]);
  const float* wb = static_cast<const float*>(params[2]);
  const float* b = static_cast<const float*>(params[3]);
  float* y = static_cast<float*>(params[4]);
  ms_osr::parallel_for(N * C, HW, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float sa = wa[plane % C], sb = wb[plane % C];
      const float* ap = a + plane * HW;
      const float* bp = b + plane * HW;
      float* yp = y + plane * HW;
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) yp[i] = sa * ap[i] + sb * bp[i];
    }
  });
  return 0;
}

}  // extern "C"
