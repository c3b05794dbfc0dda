// Greedy non-maximum suppression on the CPU.
//
// Boxes are copied, in decreasing score order, into one contiguous corner array; after each
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

template <typename scalar_t>
at::Tensor nms_impl(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
                    bool legacy) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto rule = make_nms_rule<acc_t>(iou_threshold, legacy);
  const int64_t count = boxes.size(0);
  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const int64_t* order_data = order.const_data_ptr<int64_t>();
  const auto boxes_c = boxes.contiguous();
  const scalar_t* box_data = boxes_c.const_data_ptr<scalar_t>();

  // corners[4 * i .. 4 * i + 3] of the i-th survivor
  std::vector<acc_t> corners(4 * count), area(count);
  std::vector<int64_t> original_index(count);
  for (int64_t i = 0; i < count; ++i) {
    const scalar_t* box = box_data + order_data[i] * 4;
    acc_t* c = corners.data() + 4 * i;
    for (int k = 0; k < 4; ++k) c[k] = static_cast<acc_t>(box[k]);
    area[i] = nms_box_area(c[0], c[1], c[2], c[3], rule.offset);
    original_index[i] = order_data[i];
  }

  std::vector<int64_t> keep;
  int64_t alive = count;  // survivors occupy the first `alive` slots, best first
  int64_t head = 0;
  while (head < alive) {
    keep.push_back(original_index[head]);
    const acc_t kept[4] = {corners[4 * head], corners[4 * head + 1], corners[4 * head + 2],
                           corners[4 * head + 3]};
    const acc_t kept_area = area[head];
    int64_t write = head + 1;
    for (int64_t j = head + 1; j < alive; ++j) {
      const acc_t* other = corners.data() + 4 * j;
      if (!nms_suppresses(kept, kept_area, other, area[j], rule)) {
        acc_t* slot = corners.data() + 4 * write;  // may be `other` itself
        for (int k = 0; k < 4; ++k) slot[k] = other[k];
        area[write] = area[j];
        original_index[write] = original_index[j];
        ++write;
      }
    }
    alive = write;
    ++head;
  }
  auto result = at::empty({static_cast<int64_t>(keep.size())}, boxes.options().dtype(at::kLong));
  std::copy(keep.begin(), keep.end(), result.mutable_data_ptr<int64_t>());
  return result;
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               bool legacy) {
  check_boxes_and_scores(boxes, scores);
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  at::Tensor keep;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, boxes.scalar_type(), "nms_cpu", [&] {
    keep = nms_impl<scalar_t>(boxes, scores, iou_threshold, legacy);
  });
  return keep;
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
