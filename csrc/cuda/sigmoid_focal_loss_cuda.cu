// Sigmoid focal loss on CUDA: element-wise kernels over the N x num_classes logits.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../checks.h"
#include "../focal_loss_math.h"
#include "../ops.h"
#include "launch.cuh"

namespace maskrcnn_benchmark {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void focal_loss_forward_kernel(int64_t total, int64_t num_classes,
                                          const scalar_t* __restrict__ logits,
                                          const int64_t* __restrict__ labels,
                                          scalar_t* __restrict__ losses, double gamma,
                                          double alpha) {
  using acc_t = at::opmath_type<scalar_t>;
  MRCNN_GRID_STRIDE_LOOP(i, total) {
    const int role = focal_role(labels[i / num_classes], i % num_classes);
    losses[i] = static_cast<scalar_t>(focal_loss_value<acc_t>(
        static_cast<acc_t>(logits[i]), role, static_cast<acc_t>(gamma),
        static_cast<acc_t>(alpha)));
  }
}

template <typename scalar_t>
__global__ void focal_loss_backward_kernel(int64_t total, int64_t num_classes,
                                           const scalar_t* __restrict__ logits,
                                           const int64_t* __restrict__ labels,
                                           const scalar_t* __restrict__ grad_loss,
                                           scalar_t* __restrict__ grad_logits, double gamma,
                                           double alpha) {
  using acc_t = at::opmath_type<scalar_t>;
  MRCNN_GRID_STRIDE_LOOP(i, total) {
    const int role = focal_role(labels[i / num_classes], i % num_classes);
    grad_logits[i] = static_cast<scalar_t>(
        static_cast<acc_t>(grad_loss[i]) *
        focal_loss_grad<acc_t>(static_cast<acc_t>(logits[i]), role, static_cast<acc_t>(gamma),
                               static_cast<acc_t>(alpha)));
  }
}

}  // namespace

at::Tensor sigmoid_focal_loss_forward(const at::Tensor& logits, const at::Tensor& targets,
                                      double gamma, double alpha) {
  check_focal_loss_inputs(logits, targets);
  c10::cuda::CUDAGuard guard(logits.device());
  const auto logits_c = logits.contiguous();
  const auto labels = targets.to(at::kLong).contiguous();
  auto losses = logits_c.new_empty(logits_c.sizes());
  const int64_t total = losses.numel();
  if (total == 0) return losses;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, logits.scalar_type(), "sigmoid_focal_loss_forward_cuda", [&] {
        launch_grid_stride(focal_loss_forward_kernel<scalar_t>, total, logits.size(1),
                           logits_c.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(),
                           losses.mutable_data_ptr<scalar_t>(), gamma, alpha);
      });
  return losses;
}

at::Tensor sigmoid_focal_loss_backward(const at::Tensor& logits, const at::Tensor& targets,
                                       const at::Tensor& grad_loss, double gamma,
                                       double alpha) {
  check_focal_loss_grad_inputs(logits, targets, grad_loss);
  c10::cuda::CUDAGuard guard(logits.device());
  const auto logits_c = logits.contiguous();
  const auto grad_c = grad_loss.to(logits.scalar_type()).contiguous();
  const auto labels = targets.to(at::kLong).contiguous();
  auto grad_logits = logits_c.new_empty(logits_c.sizes());
  const int64_t total = grad_logits.numel();
  if (total == 0) return grad_logits;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, logits.scalar_type(), "sigmoid_focal_loss_backward_cuda", [&] {
        launch_grid_stride(focal_loss_backward_kernel<scalar_t>, total, logits.size(1),
                           logits_c.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(),
                           grad_c.const_data_ptr<scalar_t>(),
                           grad_logits.mutable_data_ptr<scalar_t>(), gamma, alpha);
      });
  return grad_logits;
}

}  // namespace cuda
}  // namespace maskrcnn_benchmark
