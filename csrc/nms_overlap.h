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

template <typename acc_t>
struct NmsRule {
  acc_t offset;      // added to every width and height: 0 (default) or 1 (legacy)
  double threshold;  // IoU threshold
  bool inclusive;    // suppress at IoU >= threshold (legacy) instead of IoU > threshold
};

template <typename acc_t>
NmsRule<acc_t> make_nms_rule(double iou_threshold, bool legacy) {
  return {legacy ? acc_t(1) : acc_t(0), iou_threshold, legacy};
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t nms_box_area(acc_t x1, acc_t y1, acc_t x2, acc_t y2, acc_t offset) {
  return (x2 - x1 + offset) * (y2 - y1 + offset);
}

// Length of the overlap of [lo_a, hi_a] and [lo_b, hi_b] under the rule's offset; never negative.
template <typename acc_t>
MRCNN_HOST_DEVICE acc_t nms_overlap_length(acc_t lo_a, acc_t hi_a, acc_t lo_b, acc_t hi_b,
                                           acc_t offset) {
  const acc_t hi = hi_b < hi_a ? hi_b : hi_a;
  const acc_t lo = lo_b > lo_a ? lo_b : lo_a;
  const acc_t length = hi - lo + offset;
  return length > acc_t(0) ? length : acc_t(0);
}

// Whether box b (corners b[0..3], area area_b) is suppressed by the kept box a.
template <typename acc_t>
MRCNN_HOST_DEVICE bool nms_suppresses(const acc_t* a, acc_t area_a, const acc_t* b, acc_t area_b,
                                      const NmsRule<acc_t>& rule) {
  const acc_t inter = nms_overlap_length(a[0], a[2], b[0], b[2], rule.offset) *
                      nms_overlap_length(a[1], a[3], b[1], b[3], rule.offset);
  const acc_t union_area = area_a + area_b - inter;
  const acc_t iou = union_area > acc_t(0) ? inter / union_area : acc_t(0);
  // Compared in double, as the threshold arrives.
  const double value = static_cast<double>(iou);
  return rule.inclusive ? value >= rule.threshold : value > rule.threshold;
}

}  // namespace maskrcnn_benchmark
