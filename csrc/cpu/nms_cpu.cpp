// Greedy non-maximum suppression on the CPU.
//
// Boxes are copied, in decreasing score order, into separate coordinate arrays; after each
// kept box the survivors are compacted in place. The inner loop therefore reads contiguous
// memory and shrinks as boxes get suppressed, instead of re-testing suppressed flags. The
// overlap test and the two box conventions are in nms_overlap.h.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <algorithm>

#include <vector>

#include "../checks.h"
#include "../nms_overlap.h"
#include "../ops.h"

namespace maskrcnn_benchmark {
namespace cpu {
namespace {

template <typename scalar_t, bool kLegacy>
at::Tensor nms_impl(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t count = boxes.size(0);
  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const int64_t* order_data = order.const_data_ptr<int64_t>();
  const auto boxes_c = boxes.contiguous();
  const scalar_t* box_data = boxes_c.const_data_ptr<scalar_t>();

  std::vector<acc_t> x1(count), y1(count), x2(count), y2(count), area(count);
  std::vector<int64_t> original_index(count);
  for (int64_t i = 0; i < count; ++i) {
    const scalar_t* box = box_data + order_data[i] * 4;
    x1[i] = static_cast<acc_t>(box[0]);
    y1[i] = static_cast<acc_t>(box[1]);
    x2[i] = static_cast<acc_t>(box[2]);
    y2[i] = static_cast<acc_t>(box[3]);
    area[i] = nms_box_area<kLegacy>(x1[i], y1[i], x2[i], y2[i]);
    original_index[i] = order_data[i];
  }

  std::vector<int64_t> keep;
  int64_t alive = count;  // survivors occupy the first `alive` slots, best first
  int64_t head = 0;
  while (head < alive) {
    keep.push_back(original_index[head]);
    const acc_t kx1 = x1[head], ky1 = y1[head], kx2 = x2[head], ky2 = y2[head];
    const acc_t karea = area[head];
    int64_t write = head + 1;
    for (int64_t j = head + 1; j < alive; ++j) {
      if (!nms_suppresses<kLegacy>(kx1, ky1, kx2, ky2, karea, x1[j], y1[j], x2[j], y2[j], area[j],
                                   iou_threshold)) {
        x1[write] = x1[j];
        y1[write] = y1[j];
        x2[write] = x2[j];
        y2[write] = y2[j];
        area[write] = area[j];
        original_index[write] = original_index[j];
        ++write;
      }
    }
    alive = write;
    ++head;
  }
  auto result = boxes.new_empty({static_cast<int64_t>(keep.size())}, at::kLong);
  std::copy(keep.begin(), keep.end(), result.mutable_data_ptr<int64_t>());
  return result;
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               bool legacy) {
  check_boxes_and_scores(boxes, scores);
  if (boxes.size(0) == 0) return boxes.new_empty({0}, at::kLong);
  at::Tensor keep;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, boxes.scalar_type(), "nms_cpu", [&] {
    keep = legacy ? nms_impl<scalar_t, true>(boxes, scores, iou_threshold)
                  : nms_impl<scalar_t, false>(boxes, scores, iou_threshold);
  });
  return keep;
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
