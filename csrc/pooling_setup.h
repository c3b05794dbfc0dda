// Host-side setup shared by the CPU and CUDA entry points of RoIAlign and RoIPool: the output
// shape, the early return when there is nothing to pool, and the accumulation buffer of the
// backward passes. Kept apart from the kernels so both backends treat edge cases alike.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

namespace maskrcnn_benchmark {

// K x C x pooled_height x pooled_width.
inline std::vector<int64_t> pooled_output_size(const at::Tensor& input, const at::Tensor& rois,
                                               int64_t pooled_height, int64_t pooled_width) {
  return {rois.size(0), input.size(1), pooled_height, pooled_width};
}

// No RoIs or an empty feature map: every output bin is 0 (and every RoIPool argmax -1).
inline bool nothing_to_pool(const at::Tensor& input, const at::Tensor& rois) {
  return rois.size(0) == 0 || input.numel() == 0;
}

// The N x C x H x W input gradient of a backward pass that adds into it: `scatter(buffer)` fills
// a zeroed buffer of the op-math type (float for half / bfloat16, so the sums do not round at
// every add), which is rounded to grad_output's dtype once. Nothing is scattered when either
// side is empty.
template <typename Scatter>
at::Tensor scatter_input_grad(const at::Tensor& grad_output, int64_t batch_size,
                              int64_t channels, int64_t height, int64_t width,
                              Scatter&& scatter) {
  const auto opmath = at::toOpMathType(grad_output.scalar_type());
  auto grad_input =
      grad_output.new_zeros({batch_size, channels, height, width}, opmath);
  if (grad_output.numel() > 0 && grad_input.numel() > 0) std::forward<Scatter>(scatter)(grad_input);
  return grad_input.to(grad_output.scalar_type());
}

}  // namespace maskrcnn_benchmark
