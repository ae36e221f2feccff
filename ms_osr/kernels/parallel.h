// Shared by the kernels of ms_osr/kernels: a fork-join loop over plain threads, and the check of the
// arguments MindSpore passes to an aot Custom op.
#pragma once
#include <cstdint>
#include <functional>

namespace ms_osr {

// Runs body(begin, end) over [0, total) items of about item_cost elements each, in contiguous chunks on
// up to the configured number of threads (MsOsrSetThreads; default all cores), one thread per at least
// 32k elements so small tensors do not pay for thread start-up.  Plain threads rather than OpenMP:
// OpenMP workers spin after a region and would steal the cores from MindSpore's own thread pool
// running the next kernel.
void parallel_for(int64_t total, int64_t item_cost, const std::function<void(int64_t, int64_t)>& body);

// True when the op got `expected` tensors (inputs and output), each 4-D float32.
bool float32_4d_args(int nparam, const int* ndims, const char** dtypes, int expected);

}  // namespace ms_osr
