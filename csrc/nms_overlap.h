// The overlap test of greedy NMS, shared by the CPU and CUDA kernels.
//
// Two box conventions:
//   default (torchvision, detectron2): width = x2 - x1, a box is suppressed when its IoU with a
//     kept box is above the threshold;
//   legacy (maskrcnn-benchmark, Detectron): width = x2 - x1 + 1 (pixel-inclusive corners), a box
//     is suppressed when its IoU is at or above the threshold.
//
// IoU when the union is empty: two boxes whose union area is not positive (two zero-area boxes,
// identical or not, or inverted boxes) have IoU 0, so they never suppress each other. That is the
// value structures.boxlist_ops.boxlist_iou gives, and the outcome torchvision's kernel reaches by
// comparing 0 / 0 = NaN; here no NaN is ever formed or compared. The clamps below are written so
// that a NaN operand ends as 0, so non-finite coordinates cannot produce a NaN IoU either.
#pragma once

#include "roi_align_geometry.h"  // MRCNN_HOST_DEVICE

namespace maskrcnn_benchmark {

// The convention is a template parameter so that each kernel is compiled once per convention and
// the default one does exactly torchvision's arithmetic.
template <bool kLegacy, typename acc_t>
MRCNN_HOST_DEVICE acc_t nms_length(acc_t lo, acc_t hi) {
  return kLegacy ? hi - lo + acc_t(1) : hi - lo;
}

template <bool kLegacy, typename acc_t>
MRCNN_HOST_DEVICE acc_t nms_box_area(acc_t x1, acc_t y1, acc_t x2, acc_t y2) {
  return nms_length<kLegacy>(x1, x2) * nms_length<kLegacy>(y1, y2);
}

// Length of the overlap of [lo_a, hi_a] and [lo_b, hi_b]; never negative.
template <bool kLegacy, typename acc_t>
MRCNN_HOST_DEVICE acc_t nms_overlap_length(acc_t lo_a, acc_t hi_a, acc_t lo_b, acc_t hi_b) {
  const acc_t hi = hi_b < hi_a ? hi_b : hi_a;
  const acc_t lo = lo_b > lo_a ? lo_b : lo_a;
  const acc_t length = nms_length<kLegacy>(lo, hi);
  return length > acc_t(0) ? length : acc_t(0);
}

// Whether box b is suppressed by the kept box a (corners x1, y1, x2, y2 and areas from
// nms_box_area).
template <bool kLegacy, typename acc_t>
MRCNN_HOST_DEVICE bool nms_suppresses(acc_t ax1, acc_t ay1, acc_t ax2, acc_t ay2, acc_t area_a,
                                      acc_t bx1, acc_t by1, acc_t bx2, acc_t by2, acc_t area_b,
                                      double threshold) {
  const acc_t inter = nms_overlap_length<kLegacy>(ax1, ax2, bx1, bx2) *
                      nms_overlap_length<kLegacy>(ay1, ay2, by1, by2);
  const acc_t union_area = area_a + area_b - inter;
  const acc_t iou = union_area > acc_t(0) ? inter / union_area : acc_t(0);
  // Compared in double, as the threshold arrives.
  const double value = static_cast<double>(iou);
  return kLegacy ? value >= threshold : value > threshold;
}

}  // namespace maskrcnn_benchmark
