// RoIAlign on CUDA: one thread per output cell (forward) or per output gradient (backward).
// The backward pass scatters with atomic adds into a buffer of the accumulation type, which is
// then cast to the gradient dtype.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../checks.h"
#include "../ops.h"
#include "../pooling_setup.h"
#include "../roi_align_geometry.h"
#include "launch.cuh"

namespace maskrcnn_benchmark {
namespace cuda {
namespace {

template <typename scalar_t, typename acc_t>
__device__ RoIWindow<acc_t> load_window(const scalar_t* rois, int64_t k, acc_t spatial_scale,
                                        int pooled_height, int pooled_width,
                                        int sampling_ratio, bool aligned, int64_t* batch_index) {
  acc_t roi[5];
  for (int i = 0; i < 5; ++i) roi[i] = static_cast<acc_t>(rois[k * 5 + i]);
  *batch_index = static_cast<int64_t>(roi[0]);
  return make_roi_window<acc_t>(roi, spatial_scale, pooled_height, pooled_width,
                                sampling_ratio, aligned);
}

template <typename scalar_t>
__global__ void roi_align_forward_kernel(int64_t total, const scalar_t* __restrict__ input,
                                         const scalar_t* __restrict__ rois,
                                         scalar_t* __restrict__ output, double spatial_scale,
                                         int64_t channels, int64_t height, int64_t width,
                                         int pooled_height, int pooled_width,
                                         int sampling_ratio, bool aligned) {
  using acc_t = at::opmath_type<scalar_t>;
  MRCNN_GRID_STRIDE_LOOP(index, total) {
    const int pw = index % pooled_width;
    const int ph = (index / pooled_width) % pooled_height;
    const int64_t c = (index / pooled_width / pooled_height) % channels;
    const int64_t k = index / pooled_width / pooled_height / channels;
    int64_t b;
    const RoIWindow<acc_t> window =
        load_window<scalar_t, acc_t>(rois, k, static_cast<acc_t>(spatial_scale), pooled_height,
                                     pooled_width, sampling_ratio, aligned, &b);
    const scalar_t* feature = input + (b * channels + c) * height * width;
    acc_t sum = 0;
    for (int iy = 0; iy < window.grid_h; ++iy) {
      const acc_t y = sample_y(window, ph, iy);
      for (int ix = 0; ix < window.grid_w; ++ix) {
        const BilinearSample<acc_t> s =
            bilinear_sample<acc_t>(y, sample_x(window, pw, ix), height, width);
        for (int corner = 0; corner < 4; ++corner) {
          sum += s.weights[corner] * static_cast<acc_t>(feature[s.offsets[corner]]);
        }
      }
    }
    const int count = window.grid_h * window.grid_w;
    output[index] = static_cast<scalar_t>(sum / static_cast<acc_t>(count > 0 ? count : 1));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void roi_align_backward_kernel(int64_t total, const scalar_t* __restrict__ grad_output,
                                          const scalar_t* __restrict__ rois,
                                          acc_t* __restrict__ grad_input, double spatial_scale,
                                          int64_t channels, int64_t height, int64_t width,
                                          int pooled_height, int pooled_width,
                                          int sampling_ratio, bool aligned) {
  MRCNN_GRID_STRIDE_LOOP(index, total) {
    const int pw = index % pooled_width;
    const int ph = (index / pooled_width) % pooled_height;
    const int64_t c = (index / pooled_width / pooled_height) % channels;
    const int64_t k = index / pooled_width / pooled_height / channels;
    int64_t b;
    const RoIWindow<acc_t> window =
        load_window<scalar_t, acc_t>(rois, k, static_cast<acc_t>(spatial_scale), pooled_height,
                                     pooled_width, sampling_ratio, aligned, &b);
    const int count = window.grid_h * window.grid_w;
    if (window.grid_h <= 0 || window.grid_w <= 0) continue;
    acc_t* grad_plane = grad_input + (b * channels + c) * height * width;
    const acc_t g = static_cast<acc_t>(grad_output[index]) / static_cast<acc_t>(count);
    for (int iy = 0; iy < window.grid_h; ++iy) {
      const acc_t y = sample_y(window, ph, iy);
      for (int ix = 0; ix < window.grid_w; ++ix) {
        const BilinearSample<acc_t> s =
            bilinear_sample<acc_t>(y, sample_x(window, pw, ix), height, width);
        for (int corner = 0; corner < 4; ++corner) {
          if (s.weights[corner] != acc_t(0)) {
            gpuAtomicAdd(grad_plane + s.offsets[corner], g * s.weights[corner]);
          }
        }
      }
    }
  }
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_pooling_inputs("roi_align", input, rois, pooled_height, pooled_width);
  c10::cuda::CUDAGuard guard(input.device());
  auto output =
      input.new_zeros(pooled_output_size(input, rois, pooled_height, pooled_width));
  if (nothing_to_pool(input, rois)) return output;
  const auto input_c = input.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cuda", [&] {
        launch_grid_stride(roi_align_forward_kernel<scalar_t>, output.numel(),
                           input_c.const_data_ptr<scalar_t>(), rois_c.const_data_ptr<scalar_t>(),
                           output.mutable_data_ptr<scalar_t>(), spatial_scale, input.size(1),
                           input.size(2), input.size(3), static_cast<int>(pooled_height),
                           static_cast<int>(pooled_width), static_cast<int>(sampling_ratio),
                           aligned);
      });
  return output;
}

void roi_align_forward_into(const at::Tensor& input, const at::Tensor& rois,
                            const at::Tensor& rows, at::Tensor& output, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width,
                            int64_t sampling_ratio, bool aligned) {
  check_roi_align_output(output, input, rois, pooled_height, pooled_width);
  check_roi_rows(rows, rois);
  // Pooled into a buffer of the selected rows, then copied (the CPU kernel writes in place).
  output.index_copy_(0, rows,
                     roi_align_forward(input, rois.index_select(0, rows), spatial_scale,
                                       pooled_height, pooled_width, sampling_ratio, aligned));
}

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              double spatial_scale, int64_t pooled_height,
                              int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio,
                              bool aligned, const std::optional<at::Tensor>& rows) {
  check_roi_align_grad_output(grad_output, rois, channels, pooled_height, pooled_width);
  c10::cuda::CUDAGuard guard(grad_output.device());
  if (rows.has_value()) {
    // Only the listed RoIs: gathered here, then the usual kernel (the CPU kernel reads the rows
    // in place instead).
    check_roi_rows(*rows, rois);
    return roi_align_backward(grad_output.index_select(0, *rows), rois.index_select(0, *rows),
                              spatial_scale, pooled_height, pooled_width, batch_size, channels,
                              height, width, sampling_ratio, aligned, std::nullopt);
  }
  return scatter_input_grad(
      grad_output, batch_size, channels, height, width, [&](at::Tensor& grad_acc) {
        const auto grad_output_c = grad_output.contiguous();
        const auto rois_c = rois.contiguous();
        AT_DISPATCH_FLOATING_TYPES_AND2(
            at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cuda", [&] {
              using acc_t = at::opmath_type<scalar_t>;
              launch_grid_stride(roi_align_backward_kernel<scalar_t, acc_t>, grad_output.numel(),
                                 grad_output_c.const_data_ptr<scalar_t>(),
                                 rois_c.const_data_ptr<scalar_t>(),
                                 grad_acc.mutable_data_ptr<acc_t>(), spatial_scale, channels,
                                 height, width, static_cast<int>(pooled_height),
                                 static_cast<int>(pooled_width),
                                 static_cast<int>(sampling_ratio), aligned);
            });
      });
}

}  // namespace cuda
}  // namespace maskrcnn_benchmark
