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

// What every term needs from x, with a single exp and a single log1p:
// e = exp(-|x|), p = sigmoid(x), log(p) = -softplus(-x), log(1 - p) = -softplus(x).
template <typename acc_t>
struct SigmoidTerms {
  acc_t p;
  acc_t log_p;
  acc_t log_1mp;
};

// From e = exp(-|x|) and log1p(e), which the CPU kernel gets from ATen's vectorised ops.
template <typename acc_t>
MRCNN_HOST_DEVICE SigmoidTerms<acc_t> sigmoid_terms(acc_t x, acc_t e, acc_t log1p_e) {
  const acc_t inv = acc_t(1) / (acc_t(1) + e);
  SigmoidTerms<acc_t> t;
  t.p = x >= acc_t(0) ? inv : e * inv;
  t.log_p = -((x < acc_t(0) ? -x : acc_t(0)) + log1p_e);
  t.log_1mp = -((x > acc_t(0) ? x : acc_t(0)) + log1p_e);
  return t;
}

template <typename acc_t>
MRCNN_HOST_DEVICE SigmoidTerms<acc_t> sigmoid_terms(acc_t x) {
  const acc_t e = exp(-fabs(x));
  return sigmoid_terms(x, e, acc_t(log1p(e)));
}

// base^gamma; gamma = 2 (the paper's and every config's value) and 1, 0 without pow().
template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_power(acc_t base, acc_t gamma) {
  if (gamma == acc_t(2)) return base * base;
  if (gamma == acc_t(1)) return base;
  if (gamma == acc_t(0)) return acc_t(1);
  return pow(base, gamma);
}

// +1 for a positive, -1 for a negative, 0 for an ignored element.
MRCNN_HOST_DEVICE int focal_role(int64_t label, int64_t column) {
  if (label < 0) return 0;
  return label == column + 1 ? 1 : -1;
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_value(const SigmoidTerms<acc_t>& t, int role, acc_t gamma,
                                         acc_t alpha) {
  if (role == 0) return acc_t(0);
  if (role > 0) return -alpha * focal_power(acc_t(1) - t.p, gamma) * t.log_p;
  return -(acc_t(1) - alpha) * focal_power(t.p, gamma) * t.log_1mp;
}

// d loss / d x. Using dp/dx = p (1 - p):
//   positive: -alpha       * (1 - p)^gamma * (1 - p - gamma * p * log(p))
//   negative: -(1 - alpha) *       p^gamma * (gamma * (1 - p) * log(1 - p) - p)
template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_grad(const SigmoidTerms<acc_t>& t, int role, acc_t gamma,
                                        acc_t alpha) {
  if (role == 0) return acc_t(0);
  if (role > 0) {
    return -alpha * focal_power(acc_t(1) - t.p, gamma) * (acc_t(1) - t.p - gamma * t.p * t.log_p);
  }
  return -(acc_t(1) - alpha) * focal_power(t.p, gamma) * (gamma * (acc_t(1) - t.p) * t.log_1mp - t.p);
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_value(acc_t x, int role, acc_t gamma, acc_t alpha) {
  return role == 0 ? acc_t(0) : focal_loss_value(sigmoid_terms(x), role, gamma, alpha);
}

template <typename acc_t>
MRCNN_HOST_DEVICE acc_t focal_loss_grad(acc_t x, int role, acc_t gamma, acc_t alpha) {
  return role == 0 ? acc_t(0) : focal_loss_grad(sigmoid_terms(x), role, gamma, alpha);
}

}  // namespace maskrcnn_benchmark
