// RoIAlign on the CPU.
//
// Two ways to read the feature map, chosen per call by their cost:
//
// * Channels-last: transpose the map to N x H x W x C once, then every bilinear sample reads
//   four contiguous runs of C values, a loop the compiler vectorises. Pays a pass over the whole
//   map (plus a new buffer of its size) to make each sample several times cheaper.
// * Planar: read the N x C x H x W map in place, one scattered load per corner and channel.
//   Wins when the RoIs sample little of a large map (a few RoIs on a fine FPN level).
//
// The bilinear sample positions depend only on the RoI, not on the channel, so each task
// computes them once per RoI. Forward passes run RoIs in parallel (each writes its own output
// rows); backward passes run blocks of channels in parallel (each writes its own channels of the
// gradient), which needs no atomics and keeps the summation order fixed.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../checks.h"
#include "../ops.h"
#include "../pooling_setup.h"
#include "../roi_align_geometry.h"
#include "map_geometry.h"

namespace maskrcnn_benchmark {
namespace cpu {
namespace {

// Everything a kernel needs to know about the call besides the tensors.
struct PoolingParams {
  double spatial_scale;
  int pooled_height;
  int pooled_width;
  int sampling_ratio;
  bool aligned;
  int64_t bins() const { return static_cast<int64_t>(pooled_height) * pooled_width; }
};

// Which RoIs a backward pass visits: all K in order, or the listed rows of a K-row call (the
// per-level backward of a multi-level pooler, which reads its rows of the full gradient in
// place instead of gathering them first).
struct RoISelection {
  const int64_t* rows = nullptr;  // null: every RoI
  int64_t count = 0;
  int64_t operator[](int64_t j) const { return rows ? rows[j] : j; }
};

template <typename acc_t>
RoIWindow<acc_t> window_of(const acc_t* roi, const PoolingParams& p) {
  return make_roi_window<acc_t>(roi, static_cast<acc_t>(p.spatial_scale), p.pooled_height,
                                p.pooled_width, p.sampling_ratio, p.aligned);
}

// The samples of one RoI, bin after bin, each bin holding grid_h * grid_w samples.
template <typename acc_t>
struct RoISamples {
  int64_t batch_index = 0;
  int64_t samples_per_bin = 0;
  std::vector<BilinearSample<acc_t>> samples;

  // 1 / the samples a bin averages (1 for an empty grid, whose bins are all 0).
  acc_t inv_count() const {
    return acc_t(1) / static_cast<acc_t>(samples_per_bin > 0 ? samples_per_bin : 1);
  }
};

// Computes the samples of one RoI at a time into a buffer it reuses; one per thread.
template <typename scalar_t, typename acc_t>
class RoISampler {
 public:
  RoISampler(const at::Tensor& rois, const PoolingParams& p, const MapGeometry& map)
      : rois_(rois.const_data_ptr<scalar_t>()), p_(p), map_(map) {}

  // The samples of RoI k, valid until the next call.
  const RoISamples<acc_t>& sample(int64_t k) {
    const scalar_t* roi = rois_ + k * 5;
    acc_t roi_acc[5];
    for (int i = 0; i < 5; ++i) roi_acc[i] = static_cast<acc_t>(roi[i]);
    out_.batch_index = static_cast<int64_t>(roi_acc[0]);
    TORCH_CHECK(out_.batch_index >= 0 && out_.batch_index < map_.batch_size,
                "roi_align: rois[:, 0] holds batch index ", out_.batch_index,
                " but the input batch has ", map_.batch_size, " images");
    const RoIWindow<acc_t> window = window_of(roi_acc, p_);
    const int grid_h = std::max(window.grid_h, 0);
    const int grid_w = std::max(window.grid_w, 0);
    out_.samples_per_bin = static_cast<int64_t>(grid_h) * grid_w;
    out_.samples.clear();
    out_.samples.reserve(out_.samples_per_bin * p_.bins());
    for (int ph = 0; ph < p_.pooled_height; ++ph) {
      for (int pw = 0; pw < p_.pooled_width; ++pw) {
        for (int iy = 0; iy < grid_h; ++iy) {
          const acc_t y = sample_y(window, ph, iy);
          for (int ix = 0; ix < grid_w; ++ix) {
            out_.samples.push_back(
                bilinear_sample<acc_t>(y, sample_x(window, pw, ix), map_.height, map_.width));
          }
        }
      }
    }
    return out_;
  }

 private:
  const scalar_t* rois_;
  const PoolingParams& p_;
  MapGeometry map_;
  RoISamples<acc_t> out_;
};

// The parallel grain of the backward passes: one block of channels per thread. Each task sees
// every RoI (and so recomputes its samples, cheap next to the channel work) but only writes its
// own channels of the gradient.
inline int64_t channel_grain(int64_t channels) {
  const int64_t threads = std::max(1, at::get_num_threads());
  return std::max<int64_t>(1, (channels + threads - 1) / threads);
}

// bilinear_sample() zeroes all four weights of a sample that falls off the map (the weights of
// a sample on the map add up to 1).
template <typename acc_t>
inline bool off_the_map(const BilinearSample<acc_t>& s) {
  return s.weights[0] == acc_t(0) && s.weights[1] == acc_t(0) && s.weights[2] == acc_t(0) &&
         s.weights[3] == acc_t(0);
}

// ---------------------------------------------------------------------------------------------
// Choosing the layout
// ---------------------------------------------------------------------------------------------

// How many bilinear samples all RoIs take (the adaptive grid depends on each RoI's size).
template <typename scalar_t>
int64_t count_samples(const at::Tensor& rois, const PoolingParams& p, const RoISelection& selected) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* data = rois.const_data_ptr<scalar_t>();
  int64_t total = 0;
  for (int64_t j = 0; j < selected.count; ++j) {
    const int64_t k = selected[j];
    acc_t roi[5];
    for (int i = 0; i < 5; ++i) roi[i] = static_cast<acc_t>(data[k * 5 + i]);
    const RoIWindow<acc_t> window = window_of(roi, p);
    total += static_cast<int64_t>(std::max(window.grid_h, 0)) * std::max(window.grid_w, 0);
  }
  return total * p.bins();
}

// Channels-last pays about one pass over the map per transposed buffer (a few ns per element
// once the map outgrows the caches, much of it first-touch page faults of the new buffer) and
// saves about 2 ns per corner read and channel. Timed on 256-channel maps with RoIs of 4 to 28
// cells, it wins once the corner reads (4 per sample) outnumber the map's pixels 1 to 2 times
// (1 for maps that fit the caches, 2 for a batch of two 800 x 1216 images at stride 4); 1.5 it
// is. The box head's 1000 RoIs at 512 px are far above that on every FPN level.
bool sample_channels_last(int64_t total_samples, int64_t batch_size, int64_t height,
                          int64_t width) {
  const int64_t corner_reads = 4 * total_samples;
  return 2 * corner_reads >= 3 * batch_size * height * width;
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

// An N x H x W x C contiguous tensor holding `input` (N x C x H x W).
template <typename scalar_t>
at::Tensor to_channels_last(const at::Tensor& input) {
  if (!input.is_contiguous()) {
    // Other layouts (a channels-last map needs no copy at all) go through ATen.
    return input.permute({0, 2, 3, 1}).contiguous();
  }
  auto nhwc = input.new_empty({input.size(0), input.size(2), input.size(3), input.size(1)});
  transpose_matrices(input.const_data_ptr<scalar_t>(), nhwc.mutable_data_ptr<scalar_t>(),
                     input.size(0), input.size(1), input.size(2) * input.size(3));
  return nhwc;
}

// ---------------------------------------------------------------------------------------------
// Channels-last kernels
// ---------------------------------------------------------------------------------------------

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

// pixel[c] += weight * grad[c]. One corner at a time: corners of a sample clamped to the map's
// edge share a pixel (with zero weight), so the four destinations may alias.
template <typename acc_t>
inline void scatter_scaled(acc_t* __restrict pixel, const acc_t* __restrict grad, acc_t weight,
                           int64_t count) {
  for (int64_t c = 0; c < count; ++c) pixel[c] += weight * grad[c];
}

// input_nhwc: N x H x W x C; output: K x C x pooled_height x pooled_width.
template <typename scalar_t>
void forward_channels_last(const at::Tensor& input_nhwc, const at::Tensor& rois,
                           const RoISelection& selected, at::Tensor& output,
                           const PoolingParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const MapGeometry map = MapGeometry::channels_last(input_nhwc);
  const int64_t channels = map.channels;
  const int64_t bins = p.bins();
  const scalar_t* input_data = input_nhwc.const_data_ptr<scalar_t>();
  scalar_t* output_data = output.mutable_data_ptr<scalar_t>();

  at::parallel_for(0, selected.count, 1, [&](int64_t begin, int64_t end) {
    RoISampler<scalar_t, acc_t> sampler(rois, p, map);
    std::vector<acc_t> bin_sum(channels);
    for (int64_t j = begin; j < end; ++j) {
      const int64_t k = selected[j];
      const RoISamples<acc_t>& roi_samples = sampler.sample(k);
      const int64_t n = roi_samples.samples_per_bin;
      const acc_t inv_count = roi_samples.inv_count();
      const scalar_t* image = input_data + roi_samples.batch_index * map.image_size();
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

// grad_output: K x C x bins; grad_nhwc: N x H x W x C in the op-math type, zero on entry.
template <typename scalar_t>
void backward_channels_last(const at::Tensor& grad_output, const at::Tensor& rois,
                            const RoISelection& selected, at::Tensor& grad_nhwc,
                            const PoolingParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const MapGeometry map = MapGeometry::channels_last(grad_nhwc);
  const int64_t channels = map.channels;
  const int64_t bins = p.bins();
  const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
  acc_t* grad_data = grad_nhwc.mutable_data_ptr<acc_t>();

  at::parallel_for(0, channels, channel_grain(channels), [&](int64_t c_begin, int64_t c_end) {
    const int64_t block = c_end - c_begin;
    RoISampler<scalar_t, acc_t> sampler(rois, p, map);
    std::vector<acc_t> roi_grad(bins * block);  // this RoI's output gradient, bins x block
    for (int64_t j = 0; j < selected.count; ++j) {
      const int64_t k = selected[j];
      const RoISamples<acc_t>& roi_samples = sampler.sample(k);
      const int64_t n = roi_samples.samples_per_bin;
      if (n == 0) continue;
      const acc_t inv_count = roi_samples.inv_count();
      // Transpose C x bins to bins x C, folding in the 1 / count of the average.
      const scalar_t* grad_bins = grad_output_data + (k * channels + c_begin) * bins;
      for (int64_t c = 0; c < block; ++c) {
        for (int64_t bin = 0; bin < bins; ++bin) {
          roi_grad[bin * block + c] = static_cast<acc_t>(grad_bins[c * bins + bin]) * inv_count;
        }
      }
      acc_t* image = grad_data + roi_samples.batch_index * map.image_size() + c_begin;
      const BilinearSample<acc_t>* s = roi_samples.samples.data();
      for (int64_t bin = 0; bin < bins; ++bin) {
        const acc_t* bin_grad = roi_grad.data() + bin * block;
        for (int64_t i = 0; i < n; ++i, ++s) {
          for (int corner = 0; corner < 4; ++corner) {
            if (s->weights[corner] == acc_t(0)) continue;
            scatter_scaled(image + s->offsets[corner] * channels, bin_grad, s->weights[corner],
                           block);
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Planar kernels
// ---------------------------------------------------------------------------------------------

// input: N x C x H x W contiguous; output: K x C x pooled_height x pooled_width.
template <typename scalar_t>
void forward_planar(const at::Tensor& input, const at::Tensor& rois,
                    const RoISelection& selected, at::Tensor& output, const PoolingParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const MapGeometry map = MapGeometry::planar(input);
  const int64_t channels = map.channels;
  const int64_t plane = map.plane();
  const int64_t bins = p.bins();
  const scalar_t* input_data = input.const_data_ptr<scalar_t>();
  scalar_t* output_data = output.mutable_data_ptr<scalar_t>();

  at::parallel_for(0, selected.count, 1, [&](int64_t begin, int64_t end) {
    RoISampler<scalar_t, acc_t> sampler(rois, p, map);
    for (int64_t j = begin; j < end; ++j) {
      const int64_t k = selected[j];
      const RoISamples<acc_t>& roi_samples = sampler.sample(k);
      const int64_t n = roi_samples.samples_per_bin;
      const acc_t inv_count = roi_samples.inv_count();
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

// grad_output: K x C x bins; grad_input: N x C x H x W in the op-math type, zero on entry.
template <typename scalar_t>
void backward_planar(const at::Tensor& grad_output, const at::Tensor& rois,
                     const RoISelection& selected, at::Tensor& grad_input,
                     const PoolingParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const MapGeometry map = MapGeometry::planar(grad_input);
  const int64_t channels = map.channels;
  const int64_t plane = map.plane();
  const int64_t bins = p.bins();
  const scalar_t* grad_output_data = grad_output.const_data_ptr<scalar_t>();
  acc_t* grad_input_data = grad_input.mutable_data_ptr<acc_t>();

  at::parallel_for(0, channels, channel_grain(channels), [&](int64_t c_begin, int64_t c_end) {
    RoISampler<scalar_t, acc_t> sampler(rois, p, map);
    for (int64_t j = 0; j < selected.count; ++j) {
      const int64_t k = selected[j];
      const RoISamples<acc_t>& roi_samples = sampler.sample(k);
      const int64_t n = roi_samples.samples_per_bin;
      if (n == 0) continue;
      const acc_t inv_count = roi_samples.inv_count();
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

// Pools the selected RoIs into their rows of `output` (K x C x bins, contiguous), reading the
// map whichever way is cheaper for them.
void pool_selected(const at::Tensor& input, const at::Tensor& rois_c, const RoISelection& selected,
                   at::Tensor& output, const PoolingParams& params) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cpu", [&] {
        const int64_t samples = count_samples<scalar_t>(rois_c, params, selected);
        // A map that is channels-last already costs nothing to read that way.
        if ((input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous()) ||
            sample_channels_last(samples, input.size(0), input.size(2), input.size(3))) {
          forward_channels_last<scalar_t>(to_channels_last<scalar_t>(input), rois_c, selected,
                                          output, params);
        } else {
          forward_planar<scalar_t>(input.contiguous(), rois_c, selected, output, params);
        }
      });
}

// `rows` checked (1-D int64 indices into the K RoIs) and made contiguous.
at::Tensor checked_rows(const at::Tensor& rows, const at::Tensor& rois) {
  check_roi_rows(rows, rois);
  auto rows_c = rows.contiguous();
  if (rows_c.numel() > 0) {
    const int64_t lowest = rows_c.min().item<int64_t>();
    const int64_t highest = rows_c.max().item<int64_t>();
    TORCH_CHECK(lowest >= 0 && highest < rois.size(0), "roi_align: rows hold indices ", lowest,
                "..", highest, " but there are ", rois.size(0), " RoIs");
  }
  return rows_c;
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_pooling_inputs("roi_align", input, rois, pooled_height, pooled_width);
  const auto output_size = pooled_output_size(input, rois, pooled_height, pooled_width);
  if (nothing_to_pool(input, rois)) return input.new_zeros(output_size);
  // Both kernels write every output element, so the output needs no initialisation.
  auto output = input.new_empty(output_size);
  const PoolingParams params{spatial_scale, static_cast<int>(pooled_height),
                             static_cast<int>(pooled_width), static_cast<int>(sampling_ratio),
                             aligned};
  const auto rois_c = rois.contiguous();
  pool_selected(input, rois_c, {nullptr, rois_c.size(0)}, output, params);
  return output;
}

void roi_align_forward_into(const at::Tensor& input, const at::Tensor& rois,
                            const at::Tensor& rows, at::Tensor& output, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width,
                            int64_t sampling_ratio, bool aligned) {
  check_pooling_inputs("roi_align", input, rois, pooled_height, pooled_width);
  check_roi_align_output(output, input, rois, pooled_height, pooled_width);
  const auto rows_c = checked_rows(rows, rois);
  if (rows_c.numel() == 0) return;
  if (input.numel() == 0) {
    output.index_fill_(0, rows_c, 0);
    return;
  }
  const PoolingParams params{spatial_scale, static_cast<int>(pooled_height),
                             static_cast<int>(pooled_width), static_cast<int>(sampling_ratio),
                             aligned};
  pool_selected(input, rois.contiguous(), {rows_c.const_data_ptr<int64_t>(), rows_c.numel()},
                output, params);
}

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              double spatial_scale, int64_t pooled_height,
                              int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio,
                              bool aligned, const std::optional<at::Tensor>& rows) {
  check_roi_align_grad_output(grad_output, rois, channels, pooled_height, pooled_width);
  const std::vector<int64_t> input_size = {batch_size, channels, height, width};
  at::Tensor rows_c;
  RoISelection selected{nullptr, rois.size(0)};
  if (rows.has_value()) {
    rows_c = checked_rows(*rows, rois);
    selected = {rows_c.const_data_ptr<int64_t>(), rows_c.numel()};
  }
  if (selected.count == 0 || grad_output.numel() == 0 ||
      batch_size * channels * height * width == 0) {
    return grad_output.new_zeros(input_size);
  }
  const PoolingParams params{spatial_scale, static_cast<int>(pooled_height),
                             static_cast<int>(pooled_width), static_cast<int>(sampling_ratio),
                             aligned};
  const auto grad_output_c = grad_output.contiguous();
  const auto rois_c = rois.contiguous();
  // Gradients accumulate in the op-math type (float for half / bfloat16) and are rounded to the
  // gradient's dtype once, at the end.
  const auto opmath = at::toOpMathType(grad_output.scalar_type());
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "roi_align_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const int64_t samples = count_samples<scalar_t>(rois_c, params, selected);
        if (sample_channels_last(samples, batch_size, height, width)) {
          auto grad_nhwc = grad_output.new_zeros({batch_size, height, width, channels}, opmath);
          backward_channels_last<scalar_t>(grad_output_c, rois_c, selected, grad_nhwc, params);
          grad_input = grad_output.new_empty(input_size);
          transpose_matrices(grad_nhwc.const_data_ptr<acc_t>(),
                             grad_input.mutable_data_ptr<scalar_t>(), batch_size,
                             height * width, channels);
        } else {
          grad_input = scatter_input_grad(
              grad_output, batch_size, channels, height, width, [&](at::Tensor& grad_acc) {
                backward_planar<scalar_t>(grad_output_c, rois_c, selected, grad_acc, params);
              });
        }
      });
  return grad_input;
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
