// Launch geometry shared by the CUDA kernels.
#pragma once

#include <ATen/ceil_div.h>

#include <algorithm>
#include <cstdint>

namespace maskrcnn_benchmark {
namespace cuda {

constexpr int kThreadsPerBlock = 256;

// Enough blocks to give every element a thread, capped; kernels loop with a grid stride.
inline int blocks_for(int64_t elements) {
  const int64_t wanted = at::ceil_div<int64_t>(elements, kThreadsPerBlock);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, 65535 * 8)));
}

#define MRCNN_GRID_STRIDE_LOOP(i, n)                                                    \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace cuda
}  // namespace maskrcnn_benchmark
