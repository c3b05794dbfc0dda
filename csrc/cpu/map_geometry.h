// Sizes of a feature map as the CPU kernels index it, read once from the tensor whichever layout
// holds it, so each kernel keeps only the loops that differ.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace maskrcnn_benchmark {
namespace cpu {

struct MapGeometry {
  int64_t batch_size;
  int64_t channels;
  int64_t height;
  int64_t width;

  // A contiguous N x C x H x W tensor.
  static MapGeometry planar(const at::Tensor& t) {
    return {t.size(0), t.size(1), t.size(2), t.size(3)};
  }
  // A contiguous N x H x W x C tensor.
  static MapGeometry channels_last(const at::Tensor& t) {
    return {t.size(0), t.size(3), t.size(1), t.size(2)};
  }

  int64_t plane() const { return height * width; }
  // Elements of one image, the same in both layouts.
  int64_t image_size() const { return channels * height * width; }
};

}  // namespace cpu
}  // namespace maskrcnn_benchmark
