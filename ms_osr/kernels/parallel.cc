#include "parallel.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace {
int g_threads = 0;  // 0: std::thread::hardware_concurrency()
}  // namespace

namespace ms_osr {

constexpr int64_t kMinElementsPerThread = 32768;

void parallel_for(int64_t total, int64_t item_cost, const std::function<void(int64_t, int64_t)>& body) {
  const int configured = g_threads > 0 ? g_threads : static_cast<int>(std::thread::hardware_concurrency());
  const int64_t by_size = std::max<int64_t>(1, total * std::max<int64_t>(1, item_cost) / kMinElementsPerThread);
  const int64_t workers = std::min<int64_t>(std::min<int64_t>(std::max(1, configured), total), by_size);
  if (workers <= 1) {
    if (total > 0) body(0, total);
    return;
  }
  const int64_t chunk = (total + workers - 1) / workers;
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int64_t t = 1; t < workers; ++t) {
    const int64_t begin = t * chunk, end = std::min(total, begin + chunk);
    if (begin < end) pool.emplace_back(body, begin, end);
  }
  body(0, std::min(total, chunk));
  for (auto& th : pool) th.join();
}

bool float32_4d_args(int nparam, const int* ndims, const char** dtypes, int expected) {
  if (nparam != expected) return false;
  for (int i = 0; i < nparam; ++i) {
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
  }
  return true;
}

}  // namespace ms_osr

extern "C" void MsOsrSetThreads(int n) { g_threads = n; }
