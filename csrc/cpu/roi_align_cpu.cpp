// RoIAlign on the CPU.
//
// Both passes work on a channels-last (N x H x W x C) view of the feature map. A bilinear sample
// reads four pixels; in N x C x H x W every channel of every pixel is a separate scattered load,
// while channels-last makes each pixel one contiguous run of C values that the compiler
// vectorises. Converting the layout costs one pass over the map; the sampling costs
// RoIs x bins x samples x 4 x C multiply-adds, far more in any detector's box or mask head.
//
// The bilinear sample positions depend only on the RoI, not on the channel, so each task
// computes them once per RoI. The forward pass runs RoIs in parallel (each writes its own
// output rows); the backward pass runs blocks of channels in parallel (each writes its own
// channels of the gradient), which needs no atomics and keeps the summation order fixed.

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

// dst = src transposed, for each of `count` row-major rows x cols matrices (dst: cols x rows),
// converting src_t to dst_t on the way. A tile is read row by row into a small buffer and
// written out column by column, so both sides move along contiguous memory; reading a tile's
// column directly would touch `rows` addresses a whole plane apart, which share cache sets.
// (ATen's generic strided copy is several times slower for this permutation.)
template <typename src_t, typename dst_t>
void transpose_matrices(const src_t* src, dst_t* dst, int64_t count, int64_t rows,
                        int64_t cols) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  at::parallel_for(0, count * row_tiles, 1, [&](int64_t begin, int64_t end) {
    dst_t tile[kTile][kTile];  // [column][row]
    for (int64_t task = begin; task < end; ++task) {
      const int64_t matrix = task / row_tiles;
      const int64_t r0 = (task % row_tiles) * kTile;
      const int64_t tile_rows = std::min(kTile, rows - r0);
      const src_t* from = src + matrix * rows * cols;
      dst_t* to = dst + matrix * rows * cols;
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t tile_cols = std::min(kTile, cols - c0);
        for (int64_t r = 0; r < tile_rows; ++r) {
          const src_t* row = from + (r0 + r) * cols + c0;
          for (int64_t c = 0; c < tile_cols; ++c) tile[c][r] = static_cast<dst_t>(row[c]);
        }
        for (int64_t c = 0; c < tile_cols; ++c) {
          std::copy(tile[c], tile[c] + tile_rows, to + (c0 + c) * rows + r0);
        }
      }
    }
  });
}

// bilinear_sample() zeroes all four weights of a sample that falls off the map (weights of a
// sample on the map add up to 1).
template <typename acc_t>
inline bool off_the_map(const BilinearSample<acc_t>& s) {
  return s.weights[0] == acc_t(0) && s.weights[1] == acc_t(0) && s.weights[2] == acc_t(0) &&
         s.weights[3] == acc_t(0);
}

// sum[c] += weight * pixel[c] over a run of channels: the loop the layout exists for.
template <typename scalar_t, typename acc_t>
inline void add_scaled(acc_t* __restrict sum, const scalar_t* __restrict pixel, acc_t weight,
                       int64_t count) {
  for (int64_t c = 0; c < count; ++c) sum[c] += weight * static_cast<acc_t>(pixel[c]);
}

// sum[c] += the bilinear interpolation of channel c at one sample. All four corners in one pass,
// so the running sums are loaded and stored once per sample rather than once per corner.
template <typename scalar_t, typename acc_t>
inline void add_sample(acc_t* __restrict sum, const scalar_t* image,
                       const BilinearSample<acc_t>& s, int64_t channels) {
  const scalar_t* __restrict p0 = image + s.offsets[0] * channels;
  const scalar_t* __restrict p1 = image + s.offsets[1] * channels;
  const scalar_t* __restrict p2 = image + s.offsets[2] * channels;
  const scalar_t* __restrict p3 = image + s.offsets[3] * channels;
  const acc_t w0 = s.weights[0], w1 = s.weights[1], w2 = s.weights[2], w3 = s.weights[3];
  for (int64_t c = 0; c < channels; ++c) {
    sum[c] += w0 * static_cast<acc_t>(p0[c]) + w1 * static_cast<acc_t>(p1[c]) +
              w2 * static_cast<acc_t>(p2[c]) + w3 * static_cast<acc_t>(p3[c]);
  }
}

template <typename scalar_t>
void roi_align_forward_impl(const at::Tensor& input_nhwc, const at::Tensor& rois,
                            at::Tensor& output, double spatial_scale, int pooled_height,
                            int pooled_width, int sampling_ratio, bool aligned) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t batch_size = input_nhwc.size(0);
  const int64_t height = input_nhwc.size(1);
  const int64_t width = input_nhwc.size(2);
  const int64_t channels = input_nhwc.size(3);
  const int64_t image_stride = height * width * channels;
  const int64_t bins = static_cast<int64_t>(pooled_height) * pooled_width;
  const scalar_t* input_data = input_nhwc.const_data_ptr<scalar_t>();
  const scalar_t* rois_data = rois.const_data_ptr<scalar_t>();
  scalar_t* output_data = output.mutable_data_ptr<scalar_t>();

  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    RoISamples<acc_t> roi_samples;
    std::vector<acc_t> bin_sum(channels);
    for (int64_t k = begin; k < end; ++k) {
      collect_roi_samples<scalar_t, acc_t>(rois_data + k * 5, static_cast<acc_t>(spatial_scale),
                                           pooled_height, pooled_width, sampling_ratio, aligned,
                                           batch_size, height, width, roi_samples);
      const int64_t n = roi_samples.samples_per_bin;
      const acc_t inv_count = acc_t(1) / static_cast<acc_t>(n > 0 ? n : 1);
      const scalar_t* image = input_data + roi_samples.batch_index * image_stride;
      scalar_t* roi_output = output_data + k * channels * bins;  // C x bins
      const BilinearSample<acc_t>* s = roi_samples.samples.data();
      for (int64_t bin = 0; bin < bins; ++bin) {
        std::fill(bin_sum.begin(), bin_sum.end(), acc_t(0));
        for (int64_t i = 0; i < n; ++i, ++s) {
          if (off_the_map(*s)) continue;
          add_sample(bin_sum.data(), image, *s, channels);
        }
        for (int64_t c = 0; c < channels; ++c) {
          roi_output[c * bins + bin] = static_cast<scalar_t>(bin_sum[c] * inv_count);
        }
      }
    }
  });
}

template <typename scalar_t>
void roi_align_backward_impl(const at::Tensor& grad_output, const at::Tensor& rois,
                             at::Tensor& grad_nhwc, double spatial_scale, int pooled_height,
                             int pooled_width, int sampling_ratio, bool aligned) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t batch_size = grad_nhwc.size(0);
  const int64_t height = grad_nhwc.size(1);
  const int64_t width = grad_nhwc.size(2);
  const int64_t channels = grad_nhwc.size(3);
  const int64_t image_stride = height * width * channels;
  const int64_t bins = static_cast<int64_t>(pooled_height) * pooled_width;
  const int64_t num_rois = rois.size(0);
  const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
  const scalar_t* rois_data = rois.const_data_ptr<scalar_t>();
  acc_t* grad_data = grad_nhwc.mutable_data_ptr<acc_t>();

  // One block of channels per thread: each task sees every RoI (and so recomputes its samples,
  // cheap next to the channel work) but only writes its own channels.
  const int64_t threads = std::max(1, at::get_num_threads());
  const int64_t grain = std::max<int64_t>(1, (channels + threads - 1) / threads);
  at::parallel_for(0, channels, grain, [&](int64_t c_begin, int64_t c_end) {
    const int64_t block = c_end - c_begin;
    RoISamples<acc_t> roi_samples;
    std::vector<acc_t> roi_grad(bins * block);  // this RoI's output gradient, bins x block
    for (int64_t k = 0; k < num_rois; ++k) {
      collect_roi_samples<scalar_t, acc_t>(rois_data + k * 5, static_cast<acc_t>(spatial_scale),
                                           pooled_height, pooled_width, sampling_ratio, aligned,
                                           batch_size, height, width, roi_samples);
      const int64_t n = roi_samples.samples_per_bin;
      if (n == 0) continue;
      const acc_t inv_count = acc_t(1) / static_cast<acc_t>(n);
      // Transpose C x bins to bins x C, folding in the 1 / count of the average.
      const scalar_t* grad_bins = grad_output_data + (k * channels + c_begin) * bins;
      for (int64_t c = 0; c < block; ++c) {
        for (int64_t bin = 0; bin < bins; ++bin) {
          roi_grad[bin * block + c] = static_cast<acc_t>(grad_bins[c * bins + bin]) * inv_count;
        }
      }
      acc_t* image = grad_data + roi_samples.batch_index * image_stride + c_begin;
      const BilinearSample<acc_t>* s = roi_samples.samples.data();
      for (int64_t bin = 0; bin < bins; ++bin) {
        const acc_t* bin_grad = roi_grad.data() + bin * block;
        for (int64_t i = 0; i < n; ++i, ++s) {
          for (int corner = 0; corner < 4; ++corner) {
            if (s->weights[corner] == acc_t(0)) continue;
            add_scaled(image + s->offsets[corner] * channels, bin_grad, s->weights[corner],
                       block);
          }
        }
      }
    }
  });
}

// An N x H x W x C contiguous tensor holding `input` (N x C x H x W).
template <typename scalar_t>
at::Tensor to_channels_last(const at::Tensor& input) {
  if (!input.is_contiguous()) {
    // Other layouts (a channels-last map needs no copy at all) go through ATen.
    return input.permute({0, 2, 3, 1}).contiguous();
  }
  auto nhwc = at::empty({input.size(0), input.size(2), input.size(3), input.size(1)},
                        input.options());
  transpose_matrices(input.const_data_ptr<scalar_t>(), nhwc.mutable_data_ptr<scalar_t>(),
                     input.size(0), input.size(1), input.size(2) * input.size(3));
  return nhwc;
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_feature_map_and_rois("roi_align", input, rois);
  check_pooled_size("roi_align", pooled_height, pooled_width);
  const std::vector<int64_t> output_size = {rois.size(0), input.size(1), pooled_height,
                                            pooled_width};
  // An empty feature map has nothing to sample: every bin is 0.
  if (rois.size(0) == 0 || input.numel() == 0) return at::zeros(output_size, input.options());
  // The kernel writes every output element, so the output needs no initialisation.
  auto output = at::empty(output_size, input.options());
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cpu", [&] {
        const auto input_nhwc = to_channels_last<scalar_t>(input);
        roi_align_forward_impl<scalar_t>(input_nhwc, rois_c, output, spatial_scale,
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
  if (grad_output.numel() == 0 || batch_size * channels * height * width == 0) {
    return at::zeros({batch_size, channels, height, width}, grad_output.options());
  }
  // Accumulated channels-last in the op-math type (float for half / bfloat16), then converted
  // to N x C x H x W and the gradient's dtype in one copy.
  const auto opmath = at::toOpMathType(grad_output.scalar_type());
  auto grad_nhwc = at::zeros({batch_size, height, width, channels},
                             grad_output.options().dtype(opmath));
  const auto grad_output_c = grad_output.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cpu", [&] {
        roi_align_backward_impl<scalar_t>(grad_output_c, rois_c, grad_nhwc, spatial_scale,
                                          static_cast<int>(pooled_height),
                                          static_cast<int>(pooled_width),
                                          static_cast<int>(sampling_ratio), aligned);
      });
  auto grad_input = at::empty({batch_size, channels, height, width}, grad_output.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cpu_layout", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        transpose_matrices(grad_nhwc.const_data_ptr<acc_t>(),
                           grad_input.mutable_data_ptr<scalar_t>(), batch_size,
                           height * width, channels);
      });
  return grad_input;
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
