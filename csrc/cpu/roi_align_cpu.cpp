// RoIAlign on the CPU.
//
// The bilinear sample positions depend only on the RoI, not on the channel, so each kernel
// computes them once per RoI and reuses them for every channel. The forward pass runs RoIs in
// parallel (each writes its own output rows); the backward pass runs channels in parallel
// (each writes its own gradient planes), which needs no atomics.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../checks.h"
#include "../ops.h"
#include "../roi_align_geometry.h"

namespace maskrcnn_benchmark {
namespace cpu {
namespace {

// The samples of one RoI, bin after bin, each bin holding grid_h * grid_w samples.
template <typename acc_t>
struct RoISamples {
  int64_t batch_index = 0;
  int64_t samples_per_bin = 0;
  std::vector<BilinearSample<acc_t>> samples;
};

template <typename scalar_t, typename acc_t>
void collect_roi_samples(const scalar_t* roi, acc_t spatial_scale, int pooled_height,
                         int pooled_width, int sampling_ratio, bool aligned, int64_t batch_size,
                         int64_t height, int64_t width, RoISamples<acc_t>& out) {
  acc_t roi_acc[5];
  for (int i = 0; i < 5; ++i) roi_acc[i] = static_cast<acc_t>(roi[i]);
  out.batch_index = static_cast<int64_t>(roi_acc[0]);
  TORCH_CHECK(out.batch_index >= 0 && out.batch_index < batch_size,
              "roi_align: rois[:, 0] holds batch index ", out.batch_index,
              " but the input batch has ", batch_size, " images");
  const RoIWindow<acc_t> window = make_roi_window<acc_t>(
      roi_acc, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned);
  const int grid_h = window.grid_h > 0 ? window.grid_h : 0;
  const int grid_w = window.grid_w > 0 ? window.grid_w : 0;
  out.samples_per_bin = static_cast<int64_t>(grid_h) * grid_w;
  out.samples.clear();
  out.samples.reserve(out.samples_per_bin * pooled_height * pooled_width);
  for (int ph = 0; ph < pooled_height; ++ph) {
    for (int pw = 0; pw < pooled_width; ++pw) {
      for (int iy = 0; iy < grid_h; ++iy) {
        const acc_t y = sample_y(window, ph, iy);
        for (int ix = 0; ix < grid_w; ++ix) {
          out.samples.push_back(bilinear_sample<acc_t>(y, sample_x(window, pw, ix), height, width));
        }
      }
    }
  }
}

template <typename scalar_t>
void roi_align_forward_impl(const at::Tensor& input, const at::Tensor& rois, at::Tensor& output,
                            double spatial_scale, int pooled_height, int pooled_width,
                            int sampling_ratio, bool aligned) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t batch_size = input.size(0);
  const int64_t channels = input.size(1);
  const int64_t height = input.size(2);
  const int64_t width = input.size(3);
  const int64_t plane = height * width;
  const int64_t bins = static_cast<int64_t>(pooled_height) * pooled_width;
  const scalar_t* input_data = input.const_data_ptr<scalar_t>();
  const scalar_t* rois_data = rois.const_data_ptr<scalar_t>();
  scalar_t* output_data = output.mutable_data_ptr<scalar_t>();

  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    RoISamples<acc_t> roi_samples;
    for (int64_t k = begin; k < end; ++k) {
      collect_roi_samples<scalar_t, acc_t>(rois_data + k * 5, static_cast<acc_t>(spatial_scale),
                                           pooled_height, pooled_width, sampling_ratio, aligned,
                                           batch_size, height, width, roi_samples);
      const int64_t n = roi_samples.samples_per_bin;
      const acc_t inv_count = acc_t(1) / static_cast<acc_t>(n > 0 ? n : 1);
      for (int64_t c = 0; c < channels; ++c) {
        const scalar_t* feature = input_data + (roi_samples.batch_index * channels + c) * plane;
        scalar_t* out = output_data + (k * channels + c) * bins;
        const BilinearSample<acc_t>* s = roi_samples.samples.data();
        for (int64_t bin = 0; bin < bins; ++bin) {
          acc_t sum = 0;
          for (int64_t i = 0; i < n; ++i, ++s) {
            sum += s->weights[0] * static_cast<acc_t>(feature[s->offsets[0]]) +
                   s->weights[1] * static_cast<acc_t>(feature[s->offsets[1]]) +
                   s->weights[2] * static_cast<acc_t>(feature[s->offsets[2]]) +
                   s->weights[3] * static_cast<acc_t>(feature[s->offsets[3]]);
          }
          out[bin] = static_cast<scalar_t>(sum * inv_count);
        }
      }
    }
  });
}

template <typename scalar_t>
void roi_align_backward_impl(const at::Tensor& grad_output, const at::Tensor& rois,
                             at::Tensor& grad_input, double spatial_scale, int pooled_height,
                             int pooled_width, int sampling_ratio, bool aligned) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t batch_size = grad_input.size(0);
  const int64_t channels = grad_input.size(1);
  const int64_t height = grad_input.size(2);
  const int64_t width = grad_input.size(3);
  const int64_t plane = height * width;
  const int64_t bins = static_cast<int64_t>(pooled_height) * pooled_width;
  const int64_t num_rois = rois.size(0);
  const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
  const scalar_t* rois_data = rois.const_data_ptr<scalar_t>();
  acc_t* grad_input_data = grad_input.mutable_data_ptr<acc_t>();

  // Each task owns a range of channels; it sees every RoI, so it recomputes their samples.
  // The grain keeps that recomputation small next to the per-channel work.
  const int64_t grain = std::max<int64_t>(1, channels / std::max(1, at::get_num_threads()));
  at::parallel_for(0, channels, grain, [&](int64_t c_begin, int64_t c_end) {
    RoISamples<acc_t> roi_samples;
    for (int64_t k = 0; k < num_rois; ++k) {
      collect_roi_samples<scalar_t, acc_t>(rois_data + k * 5, static_cast<acc_t>(spatial_scale),
                                           pooled_height, pooled_width, sampling_ratio, aligned,
                                           batch_size, height, width, roi_samples);
      const int64_t n = roi_samples.samples_per_bin;
      if (n == 0) continue;
      const acc_t inv_count = acc_t(1) / static_cast<acc_t>(n);
      for (int64_t c = c_begin; c < c_end; ++c) {
        acc_t* grad_plane = grad_input_data + (roi_samples.batch_index * channels + c) * plane;
        const scalar_t* grad_bins = grad_output_data + (k * channels + c) * bins;
        const BilinearSample<acc_t>* s = roi_samples.samples.data();
        for (int64_t bin = 0; bin < bins; ++bin) {
          const acc_t g = static_cast<acc_t>(grad_bins[bin]) * inv_count;
          for (int64_t i = 0; i < n; ++i, ++s) {
            for (int corner = 0; corner < 4; ++corner) {
              grad_plane[s->offsets[corner]] += g * s->weights[corner];
            }
          }
        }
      }
    }
  });
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_feature_map_and_rois("roi_align", input, rois);
  check_pooled_size("roi_align", pooled_height, pooled_width);
  auto output = at::zeros({rois.size(0), input.size(1), pooled_height, pooled_width},
                          input.options());
  // An empty feature map has nothing to sample: every bin stays 0.
  if (output.numel() == 0 || input.numel() == 0) return output;
  const auto input_c = input.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cpu", [&] {
        roi_align_forward_impl<scalar_t>(input_c, rois_c, output, spatial_scale,
                                         static_cast<int>(pooled_height),
                                         static_cast<int>(pooled_width),
                                         static_cast<int>(sampling_ratio), aligned);
      });
  return output;
}

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              double spatial_scale, int64_t pooled_height,
                              int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio,
                              bool aligned) {
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) &&
                  grad_output.size(1) == channels && grad_output.size(2) == pooled_height &&
                  grad_output.size(3) == pooled_width,
              "roi_align backward: grad_output has shape ", grad_output.sizes(), ", expected [",
              rois.size(0), ", ", channels, ", ", pooled_height, ", ", pooled_width, "]");
  const auto opmath = at::toOpMathType(grad_output.scalar_type());
  auto grad_input = at::zeros({batch_size, channels, height, width},
                              grad_output.options().dtype(opmath));
  if (grad_output.numel() == 0 || grad_input.numel() == 0) {
    return grad_input.to(grad_output.scalar_type());
  }
  const auto grad_output_c = grad_output.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cpu", [&] {
        roi_align_backward_impl<scalar_t>(grad_output_c, rois_c, grad_input, spatial_scale,
                                          static_cast<int>(pooled_height),
                                          static_cast<int>(pooled_width),
                                          static_cast<int>(sampling_ratio), aligned);
      });
  return grad_input.to(grad_output.scalar_type());
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
