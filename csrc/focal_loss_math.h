// Per-element sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection") and its
// derivative, shared by the CPU and CUDA kernels.
//
// Logit column d scores class d + 1. A row whose label equals d + 1 is a positive for that
// column; a row with any other label >= 0 (0 = background) is a negative; a negative label
// (-1) ignores the row. With p = sigmoid(x):
//   positive: -alpha       * (1 - p)^gamma * log(p)
//   negative: -(1 - alpha) *       p^gamma * log(1 - p)
// log(p) and log(1 - p) are evaluated as -softplus(-x) and -softplus(x), which stay finite for
// large |x|.
#pragma once

#include <cmath>
#include <cstdint>

#include "roi_align_geometry.h"  // MRCNN_HOST_DEVICE

namespace maskrcnn_benchmark {

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t stable_softplus(acc_t x) {
  return (x > acc_t(0) ? x : acc_t(0)) + log1p(exp(-fabs(x)));
}

// +1 for a positive, -1 for a negative, 0 for an ignored element.
MRCNN_HOST_DEVICE int focal_role(int64_t label, int64_t column) {
  if (label < 0) return 0;
  return label == column + 1 ? 1 : -1;
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_value(acc_t x, int role, acc_t gamma, acc_t alpha) {
  if (role == 0) return acc_t(0);
  const acc_t p = acc_t(1) / (acc_t(1) + exp(-x));
  if (role > 0) return -alpha * pow(acc_t(1) - p, gamma) * -stable_softplus(-x);
  return -(acc_t(1) - alpha) * pow(p, gamma) * -stable_softplus(x);
}

// d loss / d x. Using dp/dx = p (1 - p):
//   positive: -alpha       * (1 - p)^gamma * (1 - p - gamma * p * log(p))
//   negative: -(1 - alpha) *       p^gamma * (gamma * (1 - p) * log(1 - p) - p)
template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_grad(acc_t x, int role, acc_t gamma, acc_t alpha) {
  if (role == 0) return acc_t(0);
  const acc_t p = acc_t(1) / (acc_t(1) + exp(-x));
  if (role > 0) {
    const acc_t log_p = -stable_softplus(-x);
    return -alpha * pow(acc_t(1) - p, gamma) * (acc_t(1) - p - gamma * p * log_p);
  }
  const acc_t log_1mp = -stable_softplus(x);
  return -(acc_t(1) - alpha) * pow(p, gamma) * (gamma * (acc_t(1) - p) * log_1mp - p);
}

}  // namespace maskrcnn_benchmark
