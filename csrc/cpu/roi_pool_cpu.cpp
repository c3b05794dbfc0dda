// RoIPool (max pooling over RoI bins) on the CPU. The forward pass records, for every output
// cell, the flat index into `input` of the winning element (-1 for an empty bin), so the
// backward pass is a scatter that needs neither the RoIs nor the geometry again.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <limits>
#include <vector>

#include "../checks.h"
#include "../ops.h"
#include "../pooling_setup.h"
#include "../roi_pool_geometry.h"
#include "map_geometry.h"

namespace maskrcnn_benchmark {
namespace cpu {
namespace {

template <typename scalar_t>
void roi_pool_forward_impl(const at::Tensor& input, const at::Tensor& rois, at::Tensor& output,
                           at::Tensor& argmax, double spatial_scale, int pooled_height,
                           int pooled_width) {
  using acc_t = at::opmath_type<scalar_t>;
  const MapGeometry map = MapGeometry::planar(input);
  const int64_t bins = static_cast<int64_t>(pooled_height) * pooled_width;
  const scalar_t* input_data = input.const_data_ptr<scalar_t>();
  const scalar_t* rois_data = rois.const_data_ptr<scalar_t>();
  scalar_t* output_data = output.mutable_data_ptr<scalar_t>();
  int64_t* argmax_data = argmax.mutable_data_ptr<int64_t>();

  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      acc_t roi[5];
      for (int i = 0; i < 5; ++i) roi[i] = static_cast<acc_t>(rois_data[k * 5 + i]);
      const int64_t b = static_cast<int64_t>(roi[0]);
      TORCH_CHECK(b >= 0 && b < map.batch_size, "roi_pool: rois[:, 0] holds batch index ", b,
                  " but the input batch has ", map.batch_size, " images");
      for (int ph = 0; ph < pooled_height; ++ph) {
        for (int pw = 0; pw < pooled_width; ++pw) {
          const PoolBin bin =
              roi_pool_bin<acc_t>(roi, static_cast<acc_t>(spatial_scale), ph, pw, pooled_height,
                                  pooled_width, map.height, map.width);
          for (int64_t c = 0; c < map.channels; ++c) {
            const int64_t plane_start = (b * map.channels + c) * map.plane();
            const int64_t out_index = (k * map.channels + c) * bins + ph * pooled_width + pw;
            scalar_t best = scalar_t(0);
            int64_t best_index = -1;
            if (!bin.empty()) {
              best = std::numeric_limits<scalar_t>::lowest();
              for (int64_t y = bin.y_begin; y < bin.y_end; ++y) {
                for (int64_t x = bin.x_begin; x < bin.x_end; ++x) {
                  const int64_t index = plane_start + y * map.width + x;
                  if (input_data[index] > best) {
                    best = input_data[index];
                    best_index = index;
                  }
                }
              }
            }
            output_data[out_index] = best;
            argmax_data[out_index] = best_index;
          }
        }
      }
    }
  });
}

template <typename scalar_t>
void roi_pool_backward_impl(const at::Tensor& grad_output, const at::Tensor& argmax,
                            at::Tensor& grad_input) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* grad_data = grad_output.const_data_ptr<scalar_t>();
  const int64_t* argmax_data = argmax.const_data_ptr<int64_t>();
  acc_t* grad_input_data = grad_input.mutable_data_ptr<acc_t>();
  const int64_t n = grad_output.numel();
  // Different RoIs may pick the same input element, so the scatter stays sequential.
  for (int64_t i = 0; i < n; ++i) {
    if (argmax_data[i] >= 0) grad_input_data[argmax_data[i]] += static_cast<acc_t>(grad_data[i]);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> roi_pool_forward(const at::Tensor& input,
                                                    const at::Tensor& rois,
                                                    double spatial_scale,
                                                    int64_t pooled_height,
                                                    int64_t pooled_width) {
  check_pooling_inputs("roi_pool", input, rois, pooled_height, pooled_width);
  const auto output_size = pooled_output_size(input, rois, pooled_height, pooled_width);
  if (nothing_to_pool(input, rois)) {
    return {input.new_zeros(output_size),
            input.new_full(output_size, -1, at::kLong)};
  }
  // The kernel writes every element of both, so neither needs initialising.
  auto output = input.new_empty(output_size);
  auto argmax = input.new_empty(output_size, at::kLong);
  const auto input_c = input.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_pool_forward_cpu", [&] {
        roi_pool_forward_impl<scalar_t>(input_c, rois_c, output, argmax, spatial_scale,
                                        static_cast<int>(pooled_height),
                                        static_cast<int>(pooled_width));
      });
  return {output, argmax};
}

at::Tensor roi_pool_backward(const at::Tensor& grad_output, const at::Tensor& argmax,
                             int64_t batch_size, int64_t channels, int64_t height,
                             int64_t width) {
  check_roi_pool_grad_output(grad_output, argmax);
  return scatter_input_grad(
      grad_output, batch_size, channels, height, width, [&](at::Tensor& grad_acc) {
        const auto grad_output_c = grad_output.contiguous();
        const auto argmax_c = argmax.contiguous();
        AT_DISPATCH_FLOATING_TYPES_AND2(
            at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_pool_backward_cpu",
            [&] { roi_pool_backward_impl<scalar_t>(grad_output_c, argmax_c, grad_acc); });
      });
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
