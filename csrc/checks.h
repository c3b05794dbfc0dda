// Argument validation shared by the CPU and CUDA kernels, so both backends reject bad input
// with the same message naming the offending argument.
#pragma once

#include <ATen/core/Tensor.h>

namespace maskrcnn_benchmark {

// RoIAlign / RoIPool forward: an N x C x H x W map, K x 5 RoIs alike in dtype and device, and a
// positive output size.
inline void check_pooling_inputs(const char* op, const at::Tensor& input, const at::Tensor& rois,
                                 int64_t pooled_height, int64_t pooled_width) {
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
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, op,
              ": output_size must be positive, got (", pooled_height, ", ", pooled_width, ")");
}

// RoIAlign backward: grad_output must be the forward output's K x C x pooled_height x pooled_width.
inline void check_roi_align_grad_output(const at::Tensor& grad_output, const at::Tensor& rois,
                                        int64_t channels, int64_t pooled_height,
                                        int64_t pooled_width) {
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) &&
                  grad_output.size(1) == channels && grad_output.size(2) == pooled_height &&
                  grad_output.size(3) == pooled_width,
              "roi_align backward: grad_output has shape ", grad_output.sizes(), ", expected [",
              rois.size(0), ", ", channels, ", ", pooled_height, ", ", pooled_width, "]");
}

// The row selection of roi_align_forward_into / backward: int64 indices into the K RoIs.
inline void check_roi_rows(const at::Tensor& rows, const at::Tensor& rois) {
  TORCH_CHECK(rows.dim() == 1 && rows.scalar_type() == at::kLong,
              "roi_align: rows must be a 1-D int64 tensor, got ", rows.scalar_type(),
              " of shape ", rows.sizes());
  TORCH_CHECK(rows.device() == rois.device(), "roi_align: rows on ", rows.device(),
              " but rois on ", rois.device());
}

// The preallocated K x C x pooled_height x pooled_width output of roi_align_forward_into.
inline void check_roi_align_output(const at::Tensor& output, const at::Tensor& input,
                                   const at::Tensor& rois, int64_t pooled_height,
                                   int64_t pooled_width) {
  TORCH_CHECK(output.dim() == 4 && output.size(0) == rois.size(0) &&
                  output.size(1) == input.size(1) && output.size(2) == pooled_height &&
                  output.size(3) == pooled_width,
              "roi_align_forward_into: output has shape ", output.sizes(), ", expected [",
              rois.size(0), ", ", input.size(1), ", ", pooled_height, ", ", pooled_width, "]");
  TORCH_CHECK(output.scalar_type() == input.scalar_type() && output.device() == input.device() &&
                  output.is_contiguous(),
              "roi_align_forward_into: output must be a contiguous ", input.scalar_type(),
              " tensor on ", input.device(), ", got ", output.scalar_type(), " on ",
              output.device());
}

// RoIPool backward scatters grad_output through argmax element by element.
inline void check_roi_pool_grad_output(const at::Tensor& grad_output, const at::Tensor& argmax) {
  TORCH_CHECK(grad_output.sizes() == argmax.sizes(), "roi_pool backward: grad_output shape ",
              grad_output.sizes(), " differs from argmax shape ", argmax.sizes());
  TORCH_CHECK(argmax.scalar_type() == at::kLong, "roi_pool backward: argmax must be int64, got ",
              argmax.scalar_type());
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

// Focal loss backward: the forward's inputs plus one incoming gradient per logit.
inline void check_focal_loss_grad_inputs(const at::Tensor& logits, const at::Tensor& targets,
                                         const at::Tensor& grad_loss) {
  check_focal_loss_inputs(logits, targets);
  TORCH_CHECK(grad_loss.sizes() == logits.sizes(), "sigmoid_focal_loss backward: grad_loss shape ",
              grad_loss.sizes(), " differs from logits shape ", logits.sizes());
}

}  // namespace maskrcnn_benchmark
