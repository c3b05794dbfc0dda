// Declarations of every kernel of maskrcnn_benchmark._C, per backend.
// The schemas (argument names and types) live in registration.cpp, the only place that
// registers anything with the dispatcher.
#pragma once

#include <optional>

// The sources include <ATen/core/Tensor.h> and allocate through Tensor methods (new_empty,
// new_zeros, new_full) instead of <ATen/ATen.h>: that header alone took ~12 s of each file's
// ~20 s compile, and every user builds these files on set-up.
#include <ATen/core/Tensor.h>

#include <tuple>

namespace maskrcnn_benchmark {

namespace cpu {

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned);

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              double spatial_scale, int64_t pooled_height,
                              int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio,
                              bool aligned, const std::optional<at::Tensor>& rows);

void roi_align_forward_into(const at::Tensor& input, const at::Tensor& rois,
                            const at::Tensor& rows, at::Tensor& output, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width,
                            int64_t sampling_ratio, bool aligned);

std::tuple<at::Tensor, at::Tensor> roi_pool_forward(const at::Tensor& input,
                                                    const at::Tensor& rois,
                                                    double spatial_scale,
                                                    int64_t pooled_height,
                                                    int64_t pooled_width);

at::Tensor roi_pool_backward(const at::Tensor& grad_output, const at::Tensor& argmax,
                             int64_t batch_size, int64_t channels, int64_t height,
                             int64_t width);

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               bool legacy);

at::Tensor sigmoid_focal_loss_forward(const at::Tensor& logits, const at::Tensor& targets,
                                      double gamma, double alpha);

at::Tensor sigmoid_focal_loss_backward(const at::Tensor& logits, const at::Tensor& targets,
                                       const at::Tensor& grad_loss, double gamma,
                                       double alpha);

}  // namespace cpu

#ifdef WITH_CUDA
namespace cuda {

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, bool aligned);

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              double spatial_scale, int64_t pooled_height,
                              int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio,
                              bool aligned, const std::optional<at::Tensor>& rows);

void roi_align_forward_into(const at::Tensor& input, const at::Tensor& rois,
                            const at::Tensor& rows, at::Tensor& output, double spatial_scale,
                            int64_t pooled_height, int64_t pooled_width,
                            int64_t sampling_ratio, bool aligned);

std::tuple<at::Tensor, at::Tensor> roi_pool_forward(const at::Tensor& input,
                                                    const at::Tensor& rois,
                                                    double spatial_scale,
                                                    int64_t pooled_height,
                                                    int64_t pooled_width);

at::Tensor roi_pool_backward(const at::Tensor& grad_output, const at::Tensor& argmax,
                             int64_t batch_size, int64_t channels, int64_t height,
                             int64_t width);

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               bool legacy);

at::Tensor sigmoid_focal_loss_forward(const at::Tensor& logits, const at::Tensor& targets,
                                      double gamma, double alpha);

at::Tensor sigmoid_focal_loss_backward(const at::Tensor& logits, const at::Tensor& targets,
                                       const at::Tensor& grad_loss, double gamma,
                                       double alpha);

}  // namespace cuda
#endif

}  // namespace maskrcnn_benchmark
