// Argument validation shared by the CPU and CUDA kernels, so both backends reject bad input
// with the same message naming the offending argument.
#pragma once

#include <ATen/ATen.h>

namespace maskrcnn_benchmark {

inline void check_feature_map_and_rois(const char* op, const at::Tensor& input,
                                       const at::Tensor& rois) {
  TORCH_CHECK(input.dim() == 4, op, ": input must be a 4-D N x C x H x W tensor, got ",
              input.dim(), " dimensions");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op,
              ": rois must be K x 5 (batch index, x1, y1, x2, y2), got shape ", rois.sizes());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), op,
              ": input and rois must share a dtype, got ", input.scalar_type(), " and ",
              rois.scalar_type());
  TORCH_CHECK(input.device() == rois.device(), op,
              ": input and rois must be on the same device, got ", input.device(), " and ",
              rois.device());
}

inline void check_pooled_size(const char* op, int64_t pooled_height, int64_t pooled_width) {
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, op,
              ": output_size must be positive, got (", pooled_height, ", ", pooled_width, ")");
}

inline void check_boxes_and_scores(const at::Tensor& boxes, const at::Tensor& scores) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4,
              "nms: boxes must be N x 4 (x1, y1, x2, y2), got shape ", boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "nms: scores must be a vector with one entry per box, got shape ", scores.sizes(),
              " for ", boxes.size(0), " boxes");
  TORCH_CHECK(boxes.scalar_type() == scores.scalar_type(),
              "nms: boxes and scores must share a dtype, got ", boxes.scalar_type(), " and ",
              scores.scalar_type());
  TORCH_CHECK(boxes.device() == scores.device(),
              "nms: boxes and scores must be on the same device, got ", boxes.device(), " and ",
              scores.device());
}

inline void check_focal_loss_inputs(const at::Tensor& logits, const at::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2, "sigmoid_focal_loss: logits must be N x num_classes, got shape ",
              logits.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0),
              "sigmoid_focal_loss: targets must hold one label per row of logits, got shape ",
              targets.sizes(), " for logits of shape ", logits.sizes());
  TORCH_CHECK(!at::isFloatingType(targets.scalar_type()),
              "sigmoid_focal_loss: targets must be integer class labels (0 = background), got ",
              targets.scalar_type());
  TORCH_CHECK(logits.device() == targets.device(),
              "sigmoid_focal_loss: logits and targets must be on the same device, got ",
              logits.device(), " and ", targets.device());
}

}  // namespace maskrcnn_benchmark
