// Dense 3x3 convolution (stride 1, zero padding 1, no dilation, one group), float32 NCHW, for MindSpore's
// CPU "aot" Custom operator.  Why: MindSpore 2.10 hands oneDNN plain NCHW/OIHW descriptors, so its CPU
// Conv2D and both backward passes run oneDNN's im2col + AVX2 GEMM path (an im2col copy of 9x the input
// per call) while PyTorch reaches oneDNN's direct kernels on blocked layouts.  Here each output tile of
// 4 channels x 24 pixels of one row stays in 12 vector registers while the input channels and the nine
// taps stream past it, reading shifted rows of a zero-padded copy of a block of input rows (no im2col).
//
// Entry points (MindSpore aot signature; params = inputs then outputs):
//   MsOsrConv3x3       (x (N,Ci,H,W), w (Co,Ci,3,3))  -> y (N,Co,H,W)    correlation, as torch conv2d
//   MsOsrConv3x3Bias   (x1..xk, w, b (Co))            -> y + b           the bias added in the output pass
//   MsOsrConv3x3BiasRelu (x1..xk, w, b (Co))          -> max(y + b, 0)   and the ReLU too (a BiasAdd and a
//                                                                         ReLU pass less: ~10% of GDN's forward)
//   MsOsrConv3x3Input  (dy (N,Co,H,W), w (Co,Ci,3,3)[, x1..xk]) -> dx1..dxk  grad wrt x: the same kernel with
//                                                                         w transposed and flipped
//   MsOsrConv3x3Filter (x1..xk, dy (N,Co,H,W))        -> dw (Co,Ci,3,3)  grad wrt w, summed over N
//   MsOsrConv3x3FilterBias (x1..xk, dy)               -> dw, db (Co)     and the bias gradient in the same pass
//   MsOsrConvTranspose3x3S2[Bias[Relu]] (x (N,Ci,H,W), w (Ci,Co,3,3)[, b (Co)]) -> y (N,Co,2H,2W)  the stride-2
//                                                                         transposed conv (torch padding 1, output
//                                                                         padding 1) [+ b [then ReLU]]
//   MsOsrConv3x3S2[Bias[Relu]] (x (N,Ci,H,W), w (Co,Ci,3,3)[, b (Co)]) -> y (N,Co,ceil(H/2),ceil(W/2))  the stride-2
//                                                                         conv (padding 1); each is the other's input
//                                                                         gradient (filter gradients: MindSpore's)
// x1..xk (N,Ci_j,H,W), k >= 1, are read as their concatenation along channels (Ci = sum Ci_j) and dx1..dxk
// are written as its parts: a dense block (GridDehazeNet's RDB) feeds every layer all earlier outputs without
// building the growing concatenation once per layer (Concat was 14% of GridDehazeNet's forward at 256^2).
// Built with the other kernels into one library by ms_osr/kernels/__init__.py.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "parallel.h"

namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef int i8 __attribute__((vector_size(32)));  // lane indices for __builtin_shuffle

constexpr int kOB = 4;         // output channels per register tile
constexpr int kV = 3;          // vectors of 8 pixels per register tile
constexpr int64_t kRows = 8;   // image rows per task
constexpr int64_t kFilterPixels = 1024;  // filter gradient: pixels per task (at least kRows rows)

inline v8 load(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, v8 v) { std::memcpy(p, &v, sizeof(v)); }
inline v8 splat(float f) { return v8{f, f, f, f, f, f, f, f}; }
inline float hsum(v8 v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}
inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// The bias (Co; null: none) padded with zeros to whole 4-channel register-tile blocks, for finish().
std::vector<float> padded_bias(const float* bias, int64_t Co) {
  std::vector<float> b(round_up(Co, kOB), 0.0f);
  if (bias != nullptr) std::copy(bias, bias + Co, b.begin());
  return b;
}

// Channels of one or several NCHW tensors (N, H, W equal) taken as their concatenation along channels:
// plane(n, c) is the H x W plane of channel c of image n.
struct Planes {
  std::vector<float*> base;    // per channel: its plane in image 0
  std::vector<int64_t> image;  // per channel: distance between images (its tensor's C x H x W)
  float* plane(int64_t n, int64_t c) const { return base[c] + n * image[c]; }
  int64_t channels() const { return static_cast<int64_t>(base.size()); }
  void add(const void* t, int64_t C, int64_t HW) {
    for (int64_t c = 0; c < C; ++c) {
      base.push_back(static_cast<float*>(const_cast<void*>(t)) + c * HW);
      image.push_back(C * HW);
    }
  }
};

Planes one_tensor(const void* t, int64_t C, int64_t HW) {
  Planes p;
  p.add(t, C, HW);
  return p;
}

// Rows [h0 - 1, h0 + rows + 1) of the C planes of image n (H x W), zero outside the image, into
// buf (C, rows + 2, P) at column offset 1 (P >= W + 2; the columns past W + 1 are zero too).
void pad_rows(const Planes& x, int64_t n, int64_t H, int64_t W, int64_t h0, int64_t rows, int64_t P, float* buf) {
  const int64_t C = x.channels();
  std::memset(buf, 0, sizeof(float) * C * (rows + 2) * P);
  for (int64_t c = 0; c < C; ++c) {
    const float* src = x.plane(n, c);
    for (int64_t r = 0; r < rows + 2; ++r) {
      const int64_t h = h0 - 1 + r;
      if (h < 0 || h >= H) continue;
      std::memcpy(buf + (c * (rows + 2) + r) * P + 1, src + h * W, sizeof(float) * W);
    }
  }
}

// acc[j][v] = sum over input channels c and the T taps t of wk[c][t][j] * xp[c * c_stride + off[t] + 8 v + lane]:
// the register tile of every direct kernel here, for any set of taps (the 3x3 conv's nine shifted rows, or one
// output phase of the stride-2 transposed conv).
template <int V, int T>
inline void tile_taps(const float* xp, int64_t c_stride, const int64_t (&off)[T], const float* wk, int64_t C,
                      v8 (&acc)[kOB][kV]) {
  for (int j = 0; j < kOB; ++j)
    for (int v = 0; v < V; ++v) acc[j][v] = v8{};
  for (int64_t c = 0; c < C; ++c) {
    const float* r = xp + c * c_stride;
    const float* k = wk + c * T * kOB;
#pragma GCC unroll 9
    for (int t = 0; t < T; ++t) {
      const float* p = r + off[t];
      v8 in[V];
      for (int v = 0; v < V; ++v) {
        in[v] = load(p + 8 * v);
        asm("" : "+x"(in[v]));  // keep the row in a register: folded into each FMA it is loaded 4x
      }
      const float* kk = k + t * kOB;
      for (int j = 0; j < kOB; ++j) {
        const v8 b = splat(kk[j]);
        for (int v = 0; v < V; ++v) acc[j][v] += b * in[v];
      }
    }
  }
}

// tile_taps for nv = 1..3 vectors (the last, partial tile of a row).
template <int T>
inline void tile_taps_any(int nv, const float* xp, int64_t c_stride, const int64_t (&off)[T], const float* wk,
                          int64_t C, v8 (&acc)[kOB][kV]) {
  if (nv == 1) tile_taps<1, T>(xp, c_stride, off, wk, C, acc);
  else if (nv == 2) tile_taps<2, T>(xp, c_stride, off, wk, C, acc);
  else tile_taps<3, T>(xp, c_stride, off, wk, C, acc);
}

// The 3x3 conv's tile: taps at rows ky and columns kx of a padded block with rows of P floats.
template <int V>
inline void tile(const float* xp, int64_t c_stride, int64_t P, const float* wk, int64_t C, v8 (&acc)[kOB][kV]) {
  const int64_t off[9] = {0, 1, 2, P, P + 1, P + 2, 2 * P, 2 * P + 1, 2 * P + 2};
  tile_taps<V, 9>(xp, c_stride, off, wk, C, acc);
}

// The output pass of a tile: + bias of its channels (zeros without one), then max(., 0) for a fused ReLU.
template <int V>
inline void finish(v8 (&acc)[kOB][kV], const float* bias, int nj, bool relu) {
  for (int j = 0; j < nj; ++j) {
    const v8 b = splat(bias[j]);
    for (int v = 0; v < V; ++v) {
      acc[j][v] += b;
      if (relu) acc[j][v] = acc[j][v] > v8{} ? acc[j][v] : v8{};
    }
  }
}

// y (N, Co, H, W) = 3x3 correlation of x (N, Ci, H, W) with packed weights wk (ceil(Co/4), Ci, 9, 4), plus
// bias (Co; may be null) and a ReLU when asked.
void conv(const Planes& x, const float* wk, int64_t N, int64_t Co, int64_t H, int64_t W, const Planes& y,
          const float* bias = nullptr, bool relu = false) {
  const int64_t Ci = x.channels();
  const std::vector<float> b = padded_bias(bias, Co);
  const int64_t blocks = (H + kRows - 1) / kRows, P = round_up(W, 8) + 2, OB = (Co + kOB - 1) / kOB;
  ms_osr::parallel_for(N * blocks, kRows * W * Co, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(Ci * (kRows + 2) * P);
    v8 acc[kOB][kV];
    float tail[kOB][8 * kV];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, h0 = task % blocks * kRows, rows = std::min(kRows, H - h0);
      pad_rows(x, n, H, W, h0, rows, P, buf.data());
      const int64_t c_stride = (rows + 2) * P;
      for (int64_t ob = 0; ob < OB; ++ob) {
        const float* k = wk + ob * Ci * 9 * kOB;
        const int nj = static_cast<int>(std::min<int64_t>(kOB, Co - ob * kOB));
        float* yb[kOB];
        for (int j = 0; j < nj; ++j) yb[j] = y.plane(n, ob * kOB + j) + h0 * W;
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = buf.data() + r * P;
          int64_t s = 0;
          for (; s + 8 * kV <= W; s += 8 * kV) {
            tile<kV>(xr + s, c_stride, P, k, Ci, acc);
            finish<kV>(acc, b.data() + ob * kOB, nj, relu);
            for (int j = 0; j < nj; ++j)
              for (int v = 0; v < kV; ++v) store(yb[j] + r * W + s + 8 * v, acc[j][v]);
          }
          const int64_t rem = W - s;
          if (rem > 0) {
            const int nv = static_cast<int>((rem + 7) / 8);
            if (nv == 1) tile<1>(xr + s, c_stride, P, k, Ci, acc);
            else if (nv == 2) tile<2>(xr + s, c_stride, P, k, Ci, acc);
            else tile<3>(xr + s, c_stride, P, k, Ci, acc);
            finish<kV>(acc, b.data() + ob * kOB, nj, relu);
            for (int j = 0; j < nj; ++j) {
              for (int v = 0; v < nv; ++v) store(tail[j] + 8 * v, acc[j][v]);
              std::memcpy(yb[j] + r * W + s, tail[j], sizeof(float) * rem);
            }
          }
        }
      }
    }
  });
}

// The filters w (Co, Ci, 3, 3) in conv()'s layout (out block, in, tap, j): for the forward conv as they are,
// for the input gradient ("adjoint": Ci outputs from Co inputs) transposed and rotated by 180 degrees.
std::vector<float> pack_filters(const float* w, int64_t Co, int64_t Ci, bool adjoint) {
  const int64_t outs = adjoint ? Ci : Co, ins = adjoint ? Co : Ci;
  std::vector<float> wk((outs + kOB - 1) / kOB * ins * 9 * kOB, 0.0f);
  for (int64_t o = 0; o < Co; ++o)
    for (int64_t c = 0; c < Ci; ++c)
      for (int t = 0; t < 9; ++t) {
        const int64_t a = adjoint ? c : o, b = adjoint ? o : c;
        wk[((a / kOB * ins + b) * 9 + t) * kOB + a % kOB] = w[(o * Ci + c) * 9 + (adjoint ? 8 - t : t)];
      }
  return wk;
}

// ------------------------------------------------------------------------------- Winograd F(2x2, 3x3)
// The same convolution with 16 multiplications per 2x2 output tile and input channel instead of 36 (Lavin &
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): Y = A^T [sum_c (G g G^T) . (B^T d B)] A.
// Why: the direct kernel above already runs near the FMA limit of a core, and GridDehazeNet spends two
// thirds of its forward in it. Filters are transformed once per call, input tiles once per (channel, tile)
// and reused by every output channel, so the transforms cost little once Co >= 8. Float32 rounding differs
// from the direct sum by a few ulps of the largest term (the tests compare with 2e-5 absolute).
constexpr int kTiles = 8 * kV;  // output tiles (2x2 pixels) per register tile: 3 vectors of 8

// G applied to three taps g0, g1, g2 along one axis: g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2.
inline void filter_transform(float g0, float g1, float g2, float (&t)[4]) {
  t[0] = g0;
  t[1] = 0.5f * (g0 + g1 + g2);
  t[2] = 0.5f * (g0 - g1 + g2);
  t[3] = g2;
}

// U (16, ceil(Co/4), Ci, 4): the transformed filters G g G^T, position-major, in register-tile blocks of 4
// output channels; with ``adjoint`` for the input gradient (transposed and rotated, as pack_filters).
std::vector<float> pack_winograd(const float* w, int64_t Co, int64_t Ci, bool adjoint) {
  const int64_t outs = adjoint ? Ci : Co, ins = adjoint ? Co : Ci, OB = (outs + kOB - 1) / kOB;
  std::vector<float> u(16 * OB * ins * kOB, 0.0f);
  for (int64_t o = 0; o < Co; ++o)
    for (int64_t c = 0; c < Ci; ++c) {
      const int64_t a = adjoint ? c : o, b = adjoint ? o : c;
      float g[3][3], gg[4][3], r[4];
      for (int t = 0; t < 9; ++t) g[t / 3][t % 3] = w[(o * Ci + c) * 9 + (adjoint ? 8 - t : t)];
      for (int x = 0; x < 3; ++x) {  // G g, column by column
        filter_transform(g[0][x], g[1][x], g[2][x], r);
        for (int y = 0; y < 4; ++y) gg[y][x] = r[y];
      }
      for (int y = 0; y < 4; ++y) {  // (G g) G^T, row by row
        filter_transform(gg[y][0], gg[y][1], gg[y][2], r);
        for (int x = 0; x < 4; ++x) u[(((y * 4 + x) * OB + a / kOB) * ins + b) * kOB + a % kOB] = r[x];
      }
    }
  return u;
}

// B^T d (or d B): the input transform of four rows (or columns) of a tile, elementwise over 8 tiles.
inline void input_transform(const v8 (&d)[4], v8 (&t)[4]) {
  t[0] = d[0] - d[2];
  t[1] = d[1] + d[2];
  t[2] = d[2] - d[1];
  t[3] = d[1] - d[3];
}

// Rows [h0 - 1, h0 + rows + 1) of the C planes of image n, split by column parity into eo (C, rows + 2, 2, Q):
// the "even" half holds image columns 2k - 1 and the "odd" half columns 2k (k < Q), zero outside the image.
// Then the 4x4 input tile of output tile t reads columns t and t + 1 of both halves: plain vector loads, where
// the interleaved rows would need two shuffles per vector (and this split is done once per row, not per tile).
void split_rows(const Planes& x, int64_t n, int64_t H, int64_t W, int64_t h0, int64_t rows, int64_t Q, float* eo) {
  const int64_t C = x.channels();
  for (int64_t c = 0; c < C; ++c) {
    const float* src = x.plane(n, c);
    for (int64_t r = 0; r < rows + 2; ++r) {
      float* even = eo + (c * (rows + 2) + r) * 2 * Q;
      float* odd = even + Q;
      const int64_t h = h0 - 1 + r;
      if (h < 0 || h >= H) {
        std::memset(even, 0, sizeof(float) * 2 * Q);
        continue;
      }
      const float* row = src + h * W;
      const auto one = [&](int64_t k) {
        even[k] = k > 0 && 2 * k - 1 < W ? row[2 * k - 1] : 0.0f;
        odd[k] = 2 * k < W ? row[2 * k] : 0.0f;
      };
      one(0);
      int64_t k = 1;
      for (; k + 8 <= Q && 2 * k + 14 < W; k += 8) {  // x[2k - 1 .. 2k + 14] lies inside the row
        const v8 a = load(row + 2 * k - 1), b = load(row + 2 * k + 7);
        store(even + k, __builtin_shuffle(a, b, i8{0, 2, 4, 6, 8, 10, 12, 14}));
        store(odd + k, __builtin_shuffle(a, b, i8{1, 3, 5, 7, 9, 11, 13, 15}));
      }
      for (; k < Q && 2 * k - 1 < W; ++k) one(k);
      std::memset(even + k, 0, sizeof(float) * (Q - k));
      std::memset(odd + k, 0, sizeof(float) * (Q - k));
    }
  }
}

// y = conv(x, w) + bias (and a ReLU) as conv() computes it, through Winograd F(2x2, 3x3) with filters u from
// pack_winograd. One task is kRows / 2 rows of tiles (kRows output rows) of one image, so every input row is
// split 1.25 times (twice with one row of tiles per task, where the copies took a quarter of the time).
void conv_winograd(const Planes& x, const float* u, int64_t N, int64_t Co, int64_t H, int64_t W, const Planes& y,
                   const float* bias, bool relu) {
  const int64_t Ci = x.channels(), OB = (Co + kOB - 1) / kOB;
  const int64_t TY = (H + 1) / 2, TX = (W + 1) / 2, groups = (TX + kTiles - 1) / kTiles;
  const int64_t Q = groups * kTiles + 8;  // columns of each half row: every group's 24 + 1 tiles
  const std::vector<float> b = padded_bias(bias, Co);
  const int64_t blocks = (TY + kRows / 2 - 1) / (kRows / 2);
  ms_osr::parallel_for(N * blocks, kRows * W * Co, [&](int64_t begin, int64_t end) {
    std::vector<float> eo(Ci * (kRows + 2) * 2 * Q);
    // Transformed input tiles of one group: (16, Ci, 24), each position padded by a cache line: at a stride of
    // Ci * 96 bytes (a multiple of 2 KB for Ci = 64) the 16 stores of a tile fell into 2 sets of the L1 cache.
    const int64_t vs = Ci * kTiles + 16;
    std::vector<float> v(16 * vs);
    std::vector<float> m(16 * kOB * kTiles);  // products of one output block: (16, 4, 24)
    float out_rows[2][2 * kTiles];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, hb = task % blocks * kRows, rows = std::min(kRows, round_up(H - hb, 2));
      split_rows(x, n, H, W, hb, rows, Q, eo.data());  // image rows hb - 1 .. hb + rows
      const int64_t c_stride = (rows + 2) * 2 * Q;
      for (int64_t group = 0; group < rows / 2 * groups; ++group) {  // (row of tiles, group of 24 tiles)
        const int64_t tr = group / groups, h0 = hb + 2 * tr, t0 = group % groups * kTiles;
        for (int64_t c = 0; c < Ci; ++c) {
          for (int vv = 0; vv < kV; ++vv) {
            // d[r][k]: row r, column k (image column 2t - 1 + k) of the 4x4 input tiles of 8 tiles t.
            v8 d[4][4];
            for (int r = 0; r < 4; ++r) {
              const float* even = eo.data() + c * c_stride + (2 * tr + r) * 2 * Q + t0 + 8 * vv;
              d[r][0] = load(even);
              d[r][1] = load(even + Q);
              d[r][2] = load(even + 1);
              d[r][3] = load(even + Q + 1);
            }
            v8 rt[4][4];
            for (int r = 0; r < 4; ++r) input_transform(d[r], rt[r]);  // along each row: d B
            for (int k = 0; k < 4; ++k) {                                // along each column: B^T (d B)
              const v8 col[4] = {rt[0][k], rt[1][k], rt[2][k], rt[3][k]};
              v8 t[4];
              input_transform(col, t);
              for (int r = 0; r < 4; ++r) store(v.data() + (r * 4 + k) * vs + c * kTiles + 8 * vv, t[r]);
            }
          }
        }
        const int64_t width = std::min<int64_t>(2 * kTiles, W - 2 * t0);  // output columns of this group
        for (int64_t ob = 0; ob < OB; ++ob) {
          for (int pos = 0; pos < 16; ++pos) {
            v8 acc[kOB][kV];
            for (int j = 0; j < kOB; ++j)
              for (int vv = 0; vv < kV; ++vv) acc[j][vv] = v8{};
            const float* vp = v.data() + pos * vs;
            const float* up = u + (pos * OB + ob) * Ci * kOB;
            for (int64_t c = 0; c < Ci; ++c) {
              v8 in[kV];
              for (int vv = 0; vv < kV; ++vv) {
                in[vv] = load(vp + c * kTiles + 8 * vv);
                asm("" : "+x"(in[vv]));
              }
              for (int j = 0; j < kOB; ++j) {
                const v8 s = splat(up[c * kOB + j]);
                for (int vv = 0; vv < kV; ++vv) acc[j][vv] += s * in[vv];
              }
            }
            for (int j = 0; j < kOB; ++j)
              for (int vv = 0; vv < kV; ++vv) store(m.data() + (pos * kOB + j) * kTiles + 8 * vv, acc[j][vv]);
          }
          const int nj = static_cast<int>(std::min<int64_t>(kOB, Co - ob * kOB));
          for (int j = 0; j < nj; ++j) {
            const v8 bj = splat(b[ob * kOB + j]);
            for (int vv = 0; vv < kV; ++vv) {
              v8 s[2][4];  // A^T M: output row 0 = M0 + M1 + M2, row 1 = M1 - M2 - M3 (per column k)
              for (int k = 0; k < 4; ++k) {
                const float* mk = m.data() + (k * kOB + j) * kTiles + 8 * vv;
                const v8 m0 = load(mk), m1 = load(mk + 4 * kOB * kTiles),
                         m2 = load(mk + 8 * kOB * kTiles), m3 = load(mk + 12 * kOB * kTiles);
                s[0][k] = m0 + m1 + m2;
                s[1][k] = m1 - m2 - m3;
              }
              for (int r = 0; r < 2; ++r) {  // (A^T M) A: output column 0 and 1 of each tile, interleaved
                v8 y0 = s[r][0] + s[r][1] + s[r][2] + bj, y1 = s[r][1] - s[r][2] - s[r][3] + bj;
                if (relu) {
                  y0 = y0 > v8{} ? y0 : v8{};
                  y1 = y1 > v8{} ? y1 : v8{};
                }
                store(out_rows[r] + 16 * vv, __builtin_shuffle(y0, y1, i8{0, 8, 1, 9, 2, 10, 3, 11}));
                store(out_rows[r] + 16 * vv + 8, __builtin_shuffle(y0, y1, i8{4, 12, 5, 13, 6, 14, 7, 15}));
              }
            }
            float* out = y.plane(n, ob * kOB + j);
            for (int r = 0; r < 2 && h0 + r < H; ++r)
              std::memcpy(out + (h0 + r) * W + 2 * t0, out_rows[r], sizeof(float) * width);
          }
        }
      }
    }
  });
}

// Winograd unless MS_OSR_WINOGRAD=0 (read per call, so a process can compare both), or for fewer than 8 output
// channels (the input transform is then not shared by enough outputs to pay for itself).
bool use_winograd(int64_t Co) {
  const char* e = std::getenv("MS_OSR_WINOGRAD");
  return Co >= 8 && (e == nullptr || std::strcmp(e, "0") != 0);
}

// y = 3x3 correlation of x with w (Co, Ci, 3, 3) (``adjoint``: of x with w transposed and rotated, Ci outputs),
// plus bias and ReLU: through Winograd or the direct kernel.
void conv_any(const Planes& x, const float* w, int64_t Co, int64_t Ci, bool adjoint, int64_t N, int64_t H,
              int64_t W, const Planes& y, const float* bias = nullptr, bool relu = false) {
  const int64_t outs = adjoint ? Ci : Co;
  if (use_winograd(outs)) {
    conv_winograd(x, pack_winograd(w, Co, Ci, adjoint).data(), N, outs, H, W, y, bias, relu);
  } else {
    conv(x, pack_filters(w, Co, Ci, adjoint).data(), N, outs, H, W, y, bias, relu);
  }
}

// ------------------------------------------------------------------ transposed 3x3 conv, stride 2
// PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) as GridDehazeNet up-samples: y (N, Co, 2H, 2W)
// with y[2a + py][2b + px] = sum over the taps of one output phase (py, px) of x[a + dy][b + dx] . w[ky][kx]
// (x zero past its last row and column; w (Ci, Co, 3, 3)). Each phase is a small direct conv over x, run by the
// register tile above, so the 9 taps per input pixel are all the multiplications there are, where MindSpore's
// transposed conv (oneDNN's backward-data GEMM into the padded 2H+1 x 2W+1 result, then a crop) ran at a fifth
// of the dense kernel's speed (about 20 GFLOP/s at 32 channels, 128 x 128).
struct PhaseTap {
  int dy, dx, ky, kx;
};
constexpr PhaseTap kPhase00[1] = {{0, 0, 1, 1}};
constexpr PhaseTap kPhase01[2] = {{0, 1, 1, 0}, {0, 0, 1, 2}};
constexpr PhaseTap kPhase10[2] = {{1, 0, 0, 1}, {0, 0, 2, 1}};
constexpr PhaseTap kPhase11[4] = {{1, 1, 0, 0}, {1, 0, 0, 2}, {0, 1, 2, 0}, {0, 0, 2, 2}};

// One phase's filters in the tile's layout (ceil(Co/4), Ci, T, 4), from w (Ci, Co, 3, 3).
template <int T>
std::vector<float> pack_phase(const float* w, int64_t Ci, int64_t Co, const PhaseTap (&taps)[T]) {
  std::vector<float> wk((Co + kOB - 1) / kOB * Ci * T * kOB, 0.0f);
  for (int64_t o = 0; o < Co; ++o)
    for (int64_t c = 0; c < Ci; ++c)
      for (int t = 0; t < T; ++t)
        wk[((o / kOB * Ci + c) * T + t) * kOB + o % kOB] = w[(c * Co + o) * 9 + taps[t].ky * 3 + taps[t].kx];
  return wk;
}

// The tile of one phase at input row r, columns s.. of a pad_rows block (row stride P, origin at (-1, -1)).
template <int T>
inline void phase_tile_any(int nv, const float* buf, int64_t c_stride, int64_t P, int64_t r, int64_t s,
                           const PhaseTap (&taps)[T], const float* wk, int64_t C, v8 (&acc)[kOB][kV]) {
  int64_t off[T];
  for (int t = 0; t < T; ++t) off[t] = (r + 1 + taps[t].dy) * P + s + 1 + taps[t].dx;
  tile_taps_any<T>(nv, buf, c_stride, off, wk, C, acc);
}

// y (N, Co, 2H, 2W) = the transposed conv of x (N, Ci, H, W) with w (Ci, Co, 3, 3), plus bias, then a ReLU when
// asked. Per register tile (4 channels x 24 input columns of one input row) the two phases of an output row are
// computed one after the other and interleaved column by column on the way out.
void conv_transpose_s2(const Planes& x, const float* w, int64_t N, int64_t Co, int64_t H, int64_t W, const Planes& y,
                       const float* bias, bool relu) {
  const int64_t Ci = x.channels(), OB = (Co + kOB - 1) / kOB, W2 = 2 * W;
  const std::vector<float> w00 = pack_phase(w, Ci, Co, kPhase00), w01 = pack_phase(w, Ci, Co, kPhase01),
                           w10 = pack_phase(w, Ci, Co, kPhase10), w11 = pack_phase(w, Ci, Co, kPhase11);
  const std::vector<float> b = padded_bias(bias, Co);
  const int64_t blocks = (H + kRows - 1) / kRows, P = round_up(W, 8) + 2;
  ms_osr::parallel_for(N * blocks, kRows * 4 * W * Co, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(Ci * (kRows + 2) * P);
    v8 acc[kOB][kV];
    float even[kOB][8 * kV], out[2 * 8 * kV];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, h0 = task % blocks * kRows, rows = std::min(kRows, H - h0);
      pad_rows(x, n, H, W, h0, rows, P, buf.data());
      const int64_t c_stride = (rows + 2) * P;
      for (int64_t ob = 0; ob < OB; ++ob) {
        const int64_t at = ob * Ci * kOB;
        const int nj = static_cast<int>(std::min<int64_t>(kOB, Co - ob * kOB));
        for (int64_t r = 0; r < rows; ++r) {
          for (int py = 0; py < 2; ++py) {
            for (int64_t s = 0; s < W; s += 8 * kV) {
              const int64_t width = std::min<int64_t>(8 * kV, W - s);
              const int nv = static_cast<int>((width + 7) / 8);
              // even output columns 2b first, kept in `even`; then the odd ones, in registers
              if (py == 0) phase_tile_any(nv, buf.data(), c_stride, P, r, s, kPhase00, w00.data() + at * 1, Ci, acc);
              else phase_tile_any(nv, buf.data(), c_stride, P, r, s, kPhase10, w10.data() + at * 2, Ci, acc);
              for (int j = 0; j < kOB; ++j)
                for (int v = 0; v < nv; ++v) store(even[j] + 8 * v, acc[j][v]);
              if (py == 0) phase_tile_any(nv, buf.data(), c_stride, P, r, s, kPhase01, w01.data() + at * 2, Ci, acc);
              else phase_tile_any(nv, buf.data(), c_stride, P, r, s, kPhase11, w11.data() + at * 4, Ci, acc);
              for (int j = 0; j < nj; ++j) {
                const v8 bj = splat(b[ob * kOB + j]);
                for (int v = 0; v < nv; ++v) {
                  v8 e = load(even[j] + 8 * v) + bj, o = acc[j][v] + bj;
                  if (relu) {
                    e = e > v8{} ? e : v8{};
                    o = o > v8{} ? o : v8{};
                  }
                  store(out + 16 * v, __builtin_shuffle(e, o, i8{0, 8, 1, 9, 2, 10, 3, 11}));
                  store(out + 16 * v + 8, __builtin_shuffle(e, o, i8{4, 12, 5, 13, 6, 14, 7, 15}));
                }
                float* row = y.plane(n, ob * kOB + j) + (2 * (h0 + r) + py) * W2 + 2 * s;
                std::memcpy(row, out, sizeof(float) * 2 * width);
              }
            }
          }
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------ 3x3 conv, stride 2
// y (N, Co, ceil(H/2), ceil(W/2)) = the stride-2 3x3 correlation of x (N, Ci, H, W) (zero padding 1, as torch's
// Conv2d(k=3, s=2, p=1)) with packed filters wk (pack_filters), plus bias and a ReLU when asked. Input rows are
// split by column parity once per task (split_rows), so the taps of 8 neighbouring outputs are plain vector
// loads: image columns 2b - 1 and 2b + 1 from the "even" half (b, b + 1), column 2b from the "odd" half (b).
// GridDehazeNet's down-sampling, and the input gradient of the transposed conv above.
void conv_s2(const Planes& x, const float* wk, int64_t N, int64_t Co, int64_t H, int64_t W, const Planes& y,
             const float* bias, bool relu) {
  const int64_t Ci = x.channels(), OB = (Co + kOB - 1) / kOB, Ho = (H + 1) / 2, Wo = (W + 1) / 2;
  const int64_t Q = round_up(Wo, 8) + 8;
  const std::vector<float> b = padded_bias(bias, Co);
  const int64_t blocks = (Ho + kRows - 1) / kRows;
  ms_osr::parallel_for(N * blocks, kRows * Wo * Co * 4, [&](int64_t begin, int64_t end) {
    std::vector<float> eo(Ci * (2 * kRows + 2) * 2 * Q);
    v8 acc[kOB][kV];
    float tail[kOB][8 * kV];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, a0 = task % blocks * kRows, rows = std::min(kRows, Ho - a0);
      split_rows(x, n, H, W, 2 * a0, 2 * rows, Q, eo.data());  // image rows 2 a0 - 1 .. 2 (a0 + rows)
      const int64_t c_stride = (2 * rows + 2) * 2 * Q;
      for (int64_t ob = 0; ob < OB; ++ob) {
        const float* k = wk + ob * Ci * 9 * kOB;
        const int nj = static_cast<int>(std::min<int64_t>(kOB, Co - ob * kOB));
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t s = 0; s < Wo; s += 8 * kV) {
            const int64_t width = std::min<int64_t>(8 * kV, Wo - s);
            const int nv = static_cast<int>((width + 7) / 8);
            int64_t off[9];
            for (int ky = 0; ky < 3; ++ky) {
              const int64_t row = (2 * r + ky) * 2 * Q + s;
              off[ky * 3] = row;
              off[ky * 3 + 1] = row + Q;
              off[ky * 3 + 2] = row + 1;
            }
            tile_taps_any<9>(nv, eo.data(), c_stride, off, k, Ci, acc);
            finish<kV>(acc, b.data() + ob * kOB, nj, relu);
            for (int j = 0; j < nj; ++j) {
              for (int v = 0; v < nv; ++v) store(tail[j] + 8 * v, acc[j][v]);
              std::memcpy(y.plane(n, ob * kOB + j) + (a0 + r) * Wo + s, tail[j], sizeof(float) * width);
            }
          }
        }
      }
    }
  });
}

// Parameters [first, first + k) as one channel concatenation: each float32 NCHW with the N, H, W of the first.
bool gather(void** params, const int* ndims, int64_t** shapes, const char** dtypes, int first, int k, Planes& out) {
  if (k < 1) return false;
  for (int i = first; i < first + k; ++i) {
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
    for (int d : {0, 2, 3})
      if (shapes[i][d] != shapes[first][d]) return false;
    out.add(params[i], shapes[i][1], shapes[i][2] * shapes[i][3]);
  }
  return true;
}

bool is_float32(const char* dtype) { return std::strcmp(dtype, "float32") == 0; }

// x1..xk (N,Ci_j,H,W), w (Co,Ci,3,3), b (Co) -> y (N,Co,H,W): the forward with the bias (and a ReLU) in its
// output pass.
int conv_bias(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, bool relu) {
  const int k = nparam - 3;
  Planes x;
  if (!gather(params, ndims, shapes, dtypes, 0, k, x)) return 1;
  const int64_t* ws = shapes[k];
  if (ndims[k] != 4 || ndims[k + 1] != 1 || ndims[k + 2] != 4) return 1;
  if (!is_float32(dtypes[k]) || !is_float32(dtypes[k + 1]) || !is_float32(dtypes[k + 2])) return 1;
  const int64_t N = shapes[0][0], Ci = x.channels(), H = shapes[0][2], W = shapes[0][3], Co = ws[0];
  if (ws[1] != Ci || ws[2] != 3 || ws[3] != 3 || shapes[k + 1][0] != Co) return 1;
  conv_any(x, static_cast<const float*>(params[k]), Co, Ci, false, N, H, W, one_tensor(params[k + 2], Co, H * W),
           static_cast<const float*>(params[k + 1]), relu);
  return 0;
}

// The stride-2 convs' entries: x (N,Ci,H,W), w, [b (Co),] y. ``transposed``: w (Ci,Co,3,3), y (N,Co,2H,2W)
// (conv_transpose_s2); otherwise w (Co,Ci,3,3), y (N,Co,ceil(H/2),ceil(W/2)) (conv_s2). Without b: no bias.
int strided_entry(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, bool transposed,
                  bool relu) {
  const bool has_bias = nparam == 4;
  if (nparam != 3 && nparam != 4) return 1;
  for (int i = 0; i < nparam; ++i)
    if (!is_float32(dtypes[i]) || ndims[i] != (has_bias && i == 2 ? 1 : 4)) return 1;
  const int64_t N = shapes[0][0], Ci = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t* ws = shapes[1];
  const int64_t Co = transposed ? ws[1] : ws[0];
  if ((transposed ? ws[0] : ws[1]) != Ci || ws[2] != 3 || ws[3] != 3 || (has_bias && shapes[2][0] != Co)) return 1;
  const int64_t* ys = shapes[nparam - 1];
  const int64_t Ho = transposed ? 2 * H : (H + 1) / 2, Wo = transposed ? 2 * W : (W + 1) / 2;
  if (ys[0] != N || ys[1] != Co || ys[2] != Ho || ys[3] != Wo) return 1;
  const Planes x = one_tensor(params[0], Ci, H * W), y = one_tensor(params[nparam - 1], Co, Ho * Wo);
  const float* w = static_cast<const float*>(params[1]);
  const float* b = has_bias ? static_cast<const float*>(params[2]) : nullptr;
  if (transposed) conv_transpose_s2(x, w, N, Co, H, W, y, b, relu);
  else conv_s2(x, pack_filters(w, Co, Ci, false).data(), N, Co, H, W, y, b, relu);
  return 0;
}

}  // namespace

extern "C" {

int MsOsrConv3x3(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                 void* extra) {
  if (!ms_osr::float32_4d_args(nparam, ndims, dtypes, 3)) return 1;
  const int64_t N = shapes[0][0], Ci = shapes[0][1], H = shapes[0][2], W = shapes[0][3], Co = shapes[1][0];
  if (shapes[1][1] != Ci || shapes[1][2] != 3 || shapes[1][3] != 3) return 1;
  conv_any(one_tensor(params[0], Ci, H * W), static_cast<const float*>(params[1]), Co, Ci, false, N, H, W,
           one_tensor(params[2], Co, H * W));
  return 0;
}

int MsOsrConv3x3Bias(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                     void* extra) {
  return conv_bias(nparam, params, ndims, shapes, dtypes, false);
}

int MsOsrConv3x3BiasRelu(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  return conv_bias(nparam, params, ndims, shapes, dtypes, true);
}

// One name per (op, arity): MindSpore keys an aot op's compiled graph by its function name (see the end).
#define MS_OSR_STRIDED_ENTRY(NAME, TRANSPOSED, RELU)                                                               \
  int NAME(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {                          \
    return strided_entry(n, p, nd, s, t, TRANSPOSED, RELU);                                                      \
  }
MS_OSR_STRIDED_ENTRY(MsOsrConvTranspose3x3S2, true, false)
MS_OSR_STRIDED_ENTRY(MsOsrConvTranspose3x3S2Bias, true, false)
MS_OSR_STRIDED_ENTRY(MsOsrConvTranspose3x3S2BiasRelu, true, true)
MS_OSR_STRIDED_ENTRY(MsOsrConv3x3S2, false, false)
MS_OSR_STRIDED_ENTRY(MsOsrConv3x3S2Bias, false, false)
MS_OSR_STRIDED_ENTRY(MsOsrConv3x3S2BiasRelu, false, true)
#undef MS_OSR_STRIDED_ENTRY

int MsOsrConv3x3Input(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                      void* stream, void* extra) {
  // (dy, w) -> dx, or for k >= 2 parts (dy, w, x1..xk) -> dx1..dxk: the parts are inputs for their shapes only
  if (nparam < 3 || !ms_osr::float32_4d_args(2, ndims, dtypes, 2)) return 1;
  const int k = nparam == 3 ? 1 : (nparam - 2) / 2;
  if (k > 1 && nparam != 2 + 2 * k) return 1;
  Planes dx;
  if (!gather(params, ndims, shapes, dtypes, nparam - k, k, dx)) return 1;
  const int64_t N = shapes[0][0], Co = shapes[0][1], H = shapes[0][2], W = shapes[0][3], Ci = shapes[1][1];
  if (shapes[1][0] != Co || shapes[1][2] != 3 || shapes[1][3] != 3 || dx.channels() != Ci) return 1;
  if (shapes[nparam - k][0] != N || shapes[nparam - k][2] != H || shapes[nparam - k][3] != W) return 1;
  // dx = correlation of dy with w transposed (Ci outputs from Co inputs) and rotated by 180 degrees.
  conv_any(one_tensor(params[0], Co, H * W), static_cast<const float*>(params[1]), Co, Ci, true, N, H, W, dx);
  return 0;
}

}  // extern "C"

namespace {

// x1..xk (N,Ci_j,H,W), dy (N,Co,H,W) -> dw (Co,Ci,3,3) and, with ``with_bias``, db (Co) = dy summed over batch
// and pixels, taken in the pass that copies dy anyway (a BiasAddGrad pass less per fused conv in training).
int filter_grad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, bool with_bias) {
  const int k = nparam - (with_bias ? 3 : 2);
  Planes x;
  if (!gather(params, ndims, shapes, dtypes, 0, k, x)) return 1;
  if (ndims[k] != 4 || ndims[k + 1] != 4 || !is_float32(dtypes[k]) || !is_float32(dtypes[k + 1])) return 1;
  if (with_bias && (ndims[k + 2] != 1 || !is_float32(dtypes[k + 2]))) return 1;
  const float* dy = static_cast<const float*>(params[k]);
  float* dw = static_cast<float*>(params[k + 1]);
  const int64_t N = shapes[0][0], Ci = x.channels(), H = shapes[0][2], W = shapes[0][3], Co = shapes[k][1];
  if (shapes[k][0] != N || shapes[k][2] != H || shapes[k][3] != W) return 1;
  if (with_bias && shapes[k + 2][0] != Co) return 1;
  const int64_t Wr = round_up(W, 8), P = Wr + 2, OB = (Co + kOB - 1) / kOB;
  // Row blocks of at least kFilterPixels pixels: each (output block, input channel, ky) sums its tiles
  // horizontally once per block, which on narrow images (8 rows x 32 px) cost as much as the FMAs.
  const int64_t rows_per = std::min(H, std::max(kRows, (kFilterPixels + Wr - 1) / Wr));
  const int64_t blocks = (H + rows_per - 1) / rows_per;
  // Each task (image, block of rows) adds its 4 x 3 tiles (output channels x horizontal taps) into a
  // per-thread total in double; the threads' totals are summed at the end.
  std::vector<double> total(Co * Ci * 9, 0.0), total_db(Co, 0.0);
  std::mutex lock;
  ms_osr::parallel_for(N * blocks, rows_per * W * Co, [&](int64_t begin, int64_t end) {
    std::vector<float> xb(Ci * (rows_per + 2) * P);
    std::vector<float> gb(OB * kOB * rows_per * Wr);
    std::vector<double> part(Co * Ci * 9, 0.0), part_db(Co, 0.0);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, h0 = task % blocks * rows_per, rows = std::min(rows_per, H - h0);
      pad_rows(x, n, H, W, h0, rows, P, xb.data());
      std::fill(gb.begin(), gb.end(), 0.0f);  // zero past W and past Co, so tails add nothing
      for (int64_t o = 0; o < Co; ++o)
        for (int64_t r = 0; r < rows; ++r) {
          const float* src = dy + ((n * Co + o) * H + h0 + r) * W;
          std::memcpy(gb.data() + (o * rows_per + r) * Wr, src, sizeof(float) * W);
          if (with_bias) {
            v8 acc{};
            int64_t s = 0;
            for (; s + 8 <= W; s += 8) acc += load(src + s);
            double row = hsum(acc);
            for (; s < W; ++s) row += src[s];
            part_db[o] += row;
          }
        }
      const int64_t c_stride = (rows + 2) * P;
      for (int64_t ob = 0; ob < OB; ++ob) {
        const float* g = gb.data() + ob * kOB * rows_per * Wr;
        const int nj = static_cast<int>(std::min<int64_t>(kOB, Co - ob * kOB));
        for (int64_t c = 0; c < Ci; ++c) {
          for (int ky = 0; ky < 3; ++ky) {
            v8 acc[kOB][3];
            for (int j = 0; j < kOB; ++j)
              for (int kx = 0; kx < 3; ++kx) acc[j][kx] = v8{};
            for (int64_t r = 0; r < rows; ++r) {
              const float* xr = xb.data() + c * c_stride + (r + ky) * P;
              const float* gr = g + r * Wr;
              for (int64_t s = 0; s < Wr; s += 8) {
                v8 x0 = load(xr + s), x1 = load(xr + s + 1), x2 = load(xr + s + 2);
                // Pinned in registers: left to the compiler, every FMA re-loads its x and folds in d (24 loads
                // per 12 FMAs, load-bound at a third of the forward's speed); pinned, 7 loads per 12 FMAs.
                asm("" : "+x"(x0), "+x"(x1), "+x"(x2));
                for (int j = 0; j < kOB; ++j) {
                  v8 d = load(gr + j * rows_per * Wr + s);
                  asm("" : "+x"(d));
                  acc[j][0] += d * x0;
                  acc[j][1] += d * x1;
                  acc[j][2] += d * x2;
                }
              }
            }
            for (int j = 0; j < nj; ++j)
              for (int kx = 0; kx < 3; ++kx) part[((ob * kOB + j) * Ci + c) * 9 + ky * 3 + kx] += hsum(acc[j][kx]);
          }
        }
      }
    }
    std::lock_guard<std::mutex> guard(lock);
    for (size_t i = 0; i < total.size(); ++i) total[i] += part[i];
    for (int64_t o = 0; o < Co; ++o) total_db[o] += part_db[o];
  });
  for (size_t i = 0; i < total.size(); ++i) dw[i] = static_cast<float>(total[i]);
  if (with_bias) {
    float* db = static_cast<float*>(params[k + 2]);
    for (int64_t o = 0; o < Co; ++o) db[o] = static_cast<float>(total_db[o]);
  }
  return 0;
}

}  // namespace

extern "C" {

int MsOsrConv3x3Filter(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                       void* stream, void* extra) {
  return filter_grad(nparam, params, ndims, shapes, dtypes, false);
}

int MsOsrConv3x3FilterBias(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                           void* stream, void* extra) {
  return filter_grad(nparam, params, ndims, shapes, dtypes, true);
}

// The same entry points under one name per number of input parts k = 2..6 (MsOsrConv3x3BiasX3, ...): MindSpore
// keys an aot op's compiled graph by its function name, so ops with k = 1 and k = 2 inputs under one name clash
// ("the parameters number of the function is 3, but ... 4").  Each entry reads k from its parameter count.
#define MS_OSR_PARTS_ENTRIES(K)                                                                                    \
  int MsOsrConv3x3BiasX##K(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {         \
    return MsOsrConv3x3Bias(n, p, nd, s, t, st, e);                                                            \
  }                                                                                                            \
  int MsOsrConv3x3BiasReluX##K(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {     \
    return MsOsrConv3x3BiasRelu(n, p, nd, s, t, st, e);                                                        \
  }                                                                                                            \
  int MsOsrConv3x3InputX##K(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {        \
    return MsOsrConv3x3Input(n, p, nd, s, t, st, e);                                                           \
  }                                                                                                            \
  int MsOsrConv3x3FilterX##K(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {       \
    return MsOsrConv3x3Filter(n, p, nd, s, t, st, e);                                                          \
  }                                                                                                            \
  int MsOsrConv3x3FilterBiasX##K(int n, void** p, int* nd, int64_t** s, const char** t, void* st, void* e) {   \
    return MsOsrConv3x3FilterBias(n, p, nd, s, t, st, e);                                                      \
  }
MS_OSR_PARTS_ENTRIES(2)
MS_OSR_PARTS_ENTRIES(3)
MS_OSR_PARTS_ENTRIES(4)
MS_OSR_PARTS_ENTRIES(5)
MS_OSR_PARTS_ENTRIES(6)
#undef MS_OSR_PARTS_ENTRIES

}  // extern "C"
