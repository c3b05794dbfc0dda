// Launch geometry shared by the CUDA kernels.
#pragma once

#include <ATen/ceil_div.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace maskrcnn_benchmark {
namespace cuda {

constexpr int kThreadsPerBlock = 256;

// Enough blocks to give every element a thread, capped; kernels loop with a grid stride.
inline int blocks_for(int64_t elements) {
  const int64_t wanted = at::ceil_div<int64_t>(elements, kThreadsPerBlock);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, 65535 * 8)));
}

// Runs a grid-stride kernel (one whose first argument is the element count) over `total`
// elements on the current stream, and checks the launch.
template <typename... Params, typename... Args>
void launch_grid_stride(void (*kernel)(int64_t, Params...), int64_t total, Args&&... args) {
  kernel<<<blocks_for(total), kThreadsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
      total, std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#define MRCNN_GRID_STRIDE_LOOP(i, n)                                                    \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace cuda
}  // namespace maskrcnn_benchmark
