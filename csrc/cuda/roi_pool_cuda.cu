// RoIPool on CUDA: one thread per output cell; the forward pass records the flat input index of
// each maximum (-1 for an empty bin) and the backward pass scatters through it with atomics.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../checks.h"
#include "../ops.h"
#include "../pooling_setup.h"
#include "../roi_pool_geometry.h"
#include "launch.cuh"

namespace maskrcnn_benchmark {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void roi_pool_forward_kernel(int64_t total, const scalar_t* __restrict__ input,
                                        const scalar_t* __restrict__ rois,
                                        scalar_t* __restrict__ output,
                                        int64_t* __restrict__ argmax, double spatial_scale,
                                        int64_t channels, int64_t height, int64_t width,
                                        int pooled_height, int pooled_width) {
  using acc_t = at::opmath_type<scalar_t>;
  MRCNN_GRID_STRIDE_LOOP(index, total) {
    const int pw = index % pooled_width;
    const int ph = (index / pooled_width) % pooled_height;
    const int64_t c = (index / pooled_width / pooled_height) % channels;
    const int64_t k = index / pooled_width / pooled_height / channels;
    acc_t roi[5];
    for (int i = 0; i < 5; ++i) roi[i] = static_cast<acc_t>(rois[k * 5 + i]);
    const int64_t b = static_cast<int64_t>(roi[0]);
    const PoolBin bin = roi_pool_bin<acc_t>(roi, static_cast<acc_t>(spatial_scale), ph, pw,
                                            pooled_height, pooled_width, height, width);
    const int64_t plane_start = (b * channels + c) * height * width;
    acc_t best = acc_t(0);
    int64_t best_index = -1;
    if (!bin.empty()) {
      best = -INFINITY;
      for (int64_t y = bin.y_begin; y < bin.y_end; ++y) {
        for (int64_t x = bin.x_begin; x < bin.x_end; ++x) {
          const int64_t i = plane_start + y * width + x;
          const acc_t v = static_cast<acc_t>(input[i]);
          if (v > best) {
            best = v;
            best_index = i;
          }
        }
      }
    }
    output[index] = static_cast<scalar_t>(best);
    argmax[index] = best_index;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void roi_pool_backward_kernel(int64_t total, const scalar_t* __restrict__ grad_output,
                                         const int64_t* __restrict__ argmax,
                                         acc_t* __restrict__ grad_input) {
  MRCNN_GRID_STRIDE_LOOP(index, total) {
    const int64_t target = argmax[index];
    if (target >= 0) gpuAtomicAdd(grad_input + target, static_cast<acc_t>(grad_output[index]));
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> roi_pool_forward(const at::Tensor& input,
                                                    const at::Tensor& rois,
                                                    double spatial_scale,
                                                    int64_t pooled_height,
                                                    int64_t pooled_width) {
  check_pooling_inputs("roi_pool", input, rois, pooled_height, pooled_width);
  c10::cuda::CUDAGuard guard(input.device());
  auto output =
      input.new_zeros(pooled_output_size(input, rois, pooled_height, pooled_width));
  auto argmax = input.new_full(output.sizes(), -1, at::kLong);
  if (nothing_to_pool(input, rois)) return {output, argmax};
  const auto input_c = input.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_pool_forward_cuda", [&] {
        launch_grid_stride(roi_pool_forward_kernel<scalar_t>, output.numel(),
                           input_c.const_data_ptr<scalar_t>(), rois_c.const_data_ptr<scalar_t>(),
                           output.mutable_data_ptr<scalar_t>(), argmax.mutable_data_ptr<int64_t>(),
                           spatial_scale, input.size(1), input.size(2), input.size(3),
                           static_cast<int>(pooled_height), static_cast<int>(pooled_width));
      });
  return {output, argmax};
}

at::Tensor roi_pool_backward(const at::Tensor& grad_output, const at::Tensor& argmax,
                             int64_t batch_size, int64_t channels, int64_t height,
                             int64_t width) {
  check_roi_pool_grad_output(grad_output, argmax);
  c10::cuda::CUDAGuard guard(grad_output.device());
  return scatter_input_grad(
      grad_output, batch_size, channels, height, width, [&](at::Tensor& grad_acc) {
        const auto grad_output_c = grad_output.contiguous();
        const auto argmax_c = argmax.contiguous();
        AT_DISPATCH_FLOATING_TYPES_AND2(
            at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_pool_backward_cuda", [&] {
              using acc_t = at::opmath_type<scalar_t>;
              launch_grid_stride(roi_pool_backward_kernel<scalar_t, acc_t>, grad_output.numel(),
                                 grad_output_c.const_data_ptr<scalar_t>(),
                                 argmax_c.const_data_ptr<int64_t>(),
                                 grad_acc.mutable_data_ptr<acc_t>());
            });
      });
}

}  // namespace cuda
}  // namespace maskrcnn_benchmark
