// Where RoIAlign samples the feature map, shared by the CPU and CUDA kernels.
//
// A RoI is split into pooled_height x pooled_width bins; each bin averages a regular grid of
// bilinear samples. A sample is described by the four neighbouring pixel offsets (within one
// H x W plane) and their weights. Conventions follow torchvision.ops.roi_align: with
// `aligned` the RoI is shifted by half a pixel so that pixel centres sit at integer + 0.5;
// without it, RoIs are at least one pixel wide and tall (the legacy Detectron behaviour).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MRCNN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MRCNN_HOST_DEVICE inline
#endif

namespace maskrcnn_benchmark {

template <typename acc_t>
struct RoIWindow {
  acc_t start_y;
  acc_t start_x;
  acc_t bin_height;
  acc_t bin_width;
  int grid_h;  // samples per bin along y
  int grid_w;  // samples per bin along x
};

template <typename acc_t>
MRCNN_HOST_DEVICE RoIWindow<acc_t> make_roi_window(const acc_t* roi, acc_t spatial_scale,
                                                   int pooled_height, int pooled_width,
                                                   int sampling_ratio, bool aligned) {
  const acc_t offset = aligned ? acc_t(0.5) : acc_t(0);
  RoIWindow<acc_t> window;
  window.start_x = roi[1] * spatial_scale - offset;
  window.start_y = roi[2] * spatial_scale - offset;
  acc_t roi_width = roi[3] * spatial_scale - offset - window.start_x;
  acc_t roi_height = roi[4] * spatial_scale - offset - window.start_y;
  if (!aligned) {
    roi_width = roi_width > acc_t(1) ? roi_width : acc_t(1);
    roi_height = roi_height > acc_t(1) ? roi_height : acc_t(1);
  }
  window.bin_height = roi_height / pooled_height;
  window.bin_width = roi_width / pooled_width;
  // Adaptive grid: about one sample per feature-map pixel covered by the bin.
  window.grid_h = sampling_ratio > 0 ? sampling_ratio
                                     : static_cast<int>(ceil(roi_height / pooled_height));
  window.grid_w = sampling_ratio > 0 ? sampling_ratio
                                     : static_cast<int>(ceil(roi_width / pooled_width));
  return window;
}

template <typename acc_t>
struct BilinearSample {
  int64_t offsets[4];  // top-left, top-right, bottom-left, bottom-right within one plane
  acc_t weights[4];    // all zero when the sample falls outside the map
};

// Bilinear weights of the point (y, x) on an height x width plane. Points more than one pixel
// outside the plane contribute nothing; points up to one pixel outside are clamped to the edge.
template <typename acc_t>
MRCNN_HOST_DEVICE BilinearSample<acc_t> bilinear_sample(acc_t y, acc_t x, int64_t height,
                                                        int64_t width) {
  BilinearSample<acc_t> s;
  if (y < acc_t(-1) || y > acc_t(height) || x < acc_t(-1) || x > acc_t(width)) {
    for (int i = 0; i < 4; ++i) {
      s.offsets[i] = 0;
      s.weights[i] = acc_t(0);
    }
    return s;
  }
  if (y < acc_t(0)) y = acc_t(0);
  if (x < acc_t(0)) x = acc_t(0);
  int64_t y0 = static_cast<int64_t>(y);
  int64_t x0 = static_cast<int64_t>(x);
  int64_t y1, x1;
  if (y0 >= height - 1) {
    y0 = y1 = height - 1;
    y = acc_t(y0);
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= width - 1) {
    x0 = x1 = width - 1;
    x = acc_t(x0);
  } else {
    x1 = x0 + 1;
  }
  const acc_t dy = y - acc_t(y0);
  const acc_t dx = x - acc_t(x0);
  s.offsets[0] = y0 * width + x0;
  s.offsets[1] = y0 * width + x1;
  s.offsets[2] = y1 * width + x0;
  s.offsets[3] = y1 * width + x1;
  s.weights[0] = (acc_t(1) - dy) * (acc_t(1) - dx);
  s.weights[1] = (acc_t(1) - dy) * dx;
  s.weights[2] = dy * (acc_t(1) - dx);
  s.weights[3] = dy * dx;
  return s;
}

// Position of sample (iy, ix) of bin (ph, pw).
template <typename acc_t>
MRCNN_HOST_DEVICE acc_t sample_y(const RoIWindow<acc_t>& w, int ph, int iy) {
  return w.start_y + ph * w.bin_height + (acc_t(iy) + acc_t(0.5)) * w.bin_height / w.grid_h;
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t sample_x(const RoIWindow<acc_t>& w, int pw, int ix) {
  return w.start_x + pw * w.bin_width + (acc_t(ix) + acc_t(0.5)) * w.bin_width / w.grid_w;
}

}  // namespace maskrcnn_benchmark
