// The three entry points of ms_osr/kernels/dense3x3.cc timed alone (no MindSpore), with a spot check of the
// filter gradient against a direct sum in double (benchmarks/results.md, "The filter gradient"):
//   g++ -O3 -march=native -std=c++17 -pthread -I ms_osr/kernels -DKSRC=\"dense3x3.cc\" \
//       benchmarks/dense3x3_entry.cc ms_osr/kernels/parallel.cc -o /tmp/dense3x3_entry && /tmp/dense3x3_entry 1
// (argument: threads).  Medians of 7 calls (21 below 0.1 GFLOP), one warm-up call each.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <random>
#include <vector>
#include KSRC
extern "C" void MsOsrSetThreads(int n);
using clk = std::chrono::steady_clock;

static double timeit(int reps, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = clk::now();
    f();
    t.push_back(std::chrono::duration<double>(clk::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  MsOsrSetThreads(threads);
  struct S { int64_t N, Ci, Co, H, W; };
  std::vector<S> shapes = {{4, 64, 64, 128, 128}, {4, 48, 16, 128, 128}, {4, 16, 16, 64, 64},
                           {4, 112, 16, 32, 32}, {4, 3, 16, 128, 128}, {1, 5, 7, 13, 29}};
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> U(-1, 1);
  for (auto s : shapes) {
    std::vector<float> x(s.N * s.Ci * s.H * s.W), w(s.Co * s.Ci * 9), dy(s.N * s.Co * s.H * s.W);
    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size());
    for (auto& v : x) v = U(rng);
    for (auto& v : w) v = U(rng);
    for (auto& v : dy) v = U(rng);
    int nd[3] = {4, 4, 4};
    const char* dt[3] = {"float32", "float32", "float32"};
    int64_t sx[4] = {s.N, s.Ci, s.H, s.W}, sw[4] = {s.Co, s.Ci, 3, 3}, sy[4] = {s.N, s.Co, s.H, s.W};
    void* pf[3] = {x.data(), w.data(), y.data()};
    int64_t* shf[3] = {sx, sw, sy};
    void* pi[3] = {dy.data(), w.data(), dx.data()};
    int64_t* shi[3] = {sy, sw, sx};
    void* pw[3] = {x.data(), dy.data(), dw.data()};
    int64_t* shw[3] = {sx, sy, sw};
    double flop = 2.0 * s.N * s.Ci * s.Co * 9 * s.H * s.W;
    int reps = flop < 1e8 ? 21 : 7;
    double tf = timeit(reps, [&] { MsOsrConv3x3(3, pf, nd, shf, dt, nullptr, nullptr); });
    double ti = timeit(reps, [&] { MsOsrConv3x3Input(3, pi, nd, shi, dt, nullptr, nullptr); });
    double tw = timeit(reps, [&] { MsOsrConv3x3Filter(3, pw, nd, shw, dt, nullptr, nullptr); });
    // reference filter gradient on a few entries
    double maxerr = 0;
    for (int k = 0; k < 20; ++k) {
      int64_t o = rng() % s.Co, c = rng() % s.Ci, t = rng() % 9, ky = t / 3, kx = t % 3;
      double ref = 0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t h = 0; h < s.H; ++h)
          for (int64_t ww = 0; ww < s.W; ++ww) {
            int64_t hh = h + ky - 1, wx = ww + kx - 1;
            if (hh < 0 || hh >= s.H || wx < 0 || wx >= s.W) continue;
            ref += static_cast<double>(dy[((n * s.Co + o) * s.H + h) * s.W + ww]) *
                   x[((n * s.Ci + c) * s.H + hh) * s.W + wx];
          }
      maxerr = std::max(maxerr, std::abs(ref - dw[(o * s.Ci + c) * 9 + t]) / (1 + std::abs(ref)));
    }
    printf("N%ld %3ld->%3ld %4ldx%-4ld fwd %7.2f ms %6.1f GF/s | dx %7.2f ms %6.1f | dw %7.2f ms %6.1f"
           "  (dw rel err %.1e)\n", s.N, s.Ci, s.Co, s.H, s.W, tf * 1e3, flop / tf / 1e9, ti * 1e3, flop / ti / 1e9,
           tw * 1e3, flop / tw / 1e9, maxerr);
  }
}
