// Which feature-map cells a RoIPool bin covers, shared by the CPU and CUDA kernels.
//
// Follows torchvision.ops.roi_pool: RoI corners are rounded to the nearest cell, the RoI spans
// (end - start + 1) cells (at least one), and bin ph covers rows
// [floor(ph * bin_h), ceil((ph + 1) * bin_h)) from the RoI start, clipped to the map.
#pragma once

#include <cmath>
#include <cstdint>

#include "roi_align_geometry.h"  // MRCNN_HOST_DEVICE

namespace maskrcnn_benchmark {

struct PoolBin {
  int64_t y_begin, y_end, x_begin, x_end;  // half-open, clipped to the map
  MRCNN_HOST_DEVICE bool empty() const { return y_end <= y_begin || x_end <= x_begin; }
};

MRCNN_HOST_DEVICE int64_t clip_cell(int64_t v, int64_t size) {
  return v < 0 ? 0 : (v > size ? size : v);
}

template <typename acc_t>
MRCNN_HOST_DEVICE PoolBin roi_pool_bin(const acc_t* roi, acc_t spatial_scale, int ph, int pw,
                                       int pooled_height, int pooled_width, int64_t height,
                                       int64_t width) {
  const int64_t start_x = static_cast<int64_t>(round(roi[1] * spatial_scale));
  const int64_t start_y = static_cast<int64_t>(round(roi[2] * spatial_scale));
  const int64_t end_x = static_cast<int64_t>(round(roi[3] * spatial_scale));
  const int64_t end_y = static_cast<int64_t>(round(roi[4] * spatial_scale));
  const int64_t roi_width = end_x - start_x + 1 > 1 ? end_x - start_x + 1 : 1;
  const int64_t roi_height = end_y - start_y + 1 > 1 ? end_y - start_y + 1 : 1;
  const acc_t bin_h = static_cast<acc_t>(roi_height) / static_cast<acc_t>(pooled_height);
  const acc_t bin_w = static_cast<acc_t>(roi_width) / static_cast<acc_t>(pooled_width);
  PoolBin bin;
  bin.y_begin = clip_cell(static_cast<int64_t>(floor(ph * bin_h)) + start_y, height);
  bin.y_end = clip_cell(static_cast<int64_t>(ceil((ph + 1) * bin_h)) + start_y, height);
  bin.x_begin = clip_cell(static_cast<int64_t>(floor(pw * bin_w)) + start_x, width);
  bin.x_end = clip_cell(static_cast<int64_t>(ceil((pw + 1) * bin_w)) + start_x, width);
  return bin;
}

}  // namespace maskrcnn_benchmark
