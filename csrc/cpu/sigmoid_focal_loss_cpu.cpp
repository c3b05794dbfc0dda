// Sigmoid focal loss on the CPU: an element-wise kernel over the N x num_classes logits that
// returns the per-element loss (the caller reduces it).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "../checks.h"
#include "../focal_loss_math.h"
#include "../ops.h"

namespace maskrcnn_benchmark {
namespace cpu {
namespace {

// Calls fn(flat_index, role) for every element, rows in parallel.
template <typename Fn>
void for_each_element(const at::Tensor& logits, const at::Tensor& labels, const Fn& fn) {
  const int64_t num_classes = logits.size(1);
  const int64_t* label_data = labels.const_data_ptr<int64_t>();
  at::parallel_for(0, logits.size(0), 256, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t col = 0; col < num_classes; ++col) {
        fn(row * num_classes + col, focal_role(label_data[row], col));
      }
    }
  });
}

// exp(-|x|) and log1p of it, in the op-math dtype, through ATen's vectorised kernels: they are
// most of the work, and scalar libm calls made the fused loop several times slower than that.
struct ExpTerms {
  at::Tensor e;
  at::Tensor log1p_e;
};

ExpTerms exp_terms(const at::Tensor& logits) {
  const auto op_dtype = at::toOpMathType(logits.scalar_type());
  auto e = logits.to(op_dtype).abs().neg_().exp_();
  auto log1p_e = e.log1p();
  return {e, log1p_e};  // new tensors from a contiguous input: contiguous
}

}  // namespace

at::Tensor sigmoid_focal_loss_forward(const at::Tensor& logits, const at::Tensor& targets,
                                      double gamma, double alpha) {
  check_focal_loss_inputs(logits, targets);
  const auto logits_c = logits.contiguous();
  const auto labels = targets.to(at::kLong).contiguous();
  auto losses = logits_c.new_empty(logits_c.sizes());
  if (losses.numel() == 0) return losses;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, logits.scalar_type(), "sigmoid_focal_loss_forward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ExpTerms terms = exp_terms(logits_c);
        const scalar_t* x = logits_c.const_data_ptr<scalar_t>();
        const acc_t* e = terms.e.const_data_ptr<acc_t>();
        const acc_t* log1p_e = terms.log1p_e.const_data_ptr<acc_t>();
        scalar_t* out = losses.mutable_data_ptr<scalar_t>();
        for_each_element(logits_c, labels, [&](int64_t i, int role) {
          const auto t = sigmoid_terms<acc_t>(static_cast<acc_t>(x[i]), e[i], log1p_e[i]);
          out[i] = static_cast<scalar_t>(
              focal_loss_value<acc_t>(t, role, static_cast<acc_t>(gamma), static_cast<acc_t>(alpha)));
        });
      });
  return losses;
}

at::Tensor sigmoid_focal_loss_backward(const at::Tensor& logits, const at::Tensor& targets,
                                       const at::Tensor& grad_loss, double gamma,
                                       double alpha) {
  check_focal_loss_grad_inputs(logits, targets, grad_loss);
  const auto logits_c = logits.contiguous();
  const auto grad_c = grad_loss.to(logits.scalar_type()).contiguous();
  const auto labels = targets.to(at::kLong).contiguous();
  auto grad_logits = logits_c.new_empty(logits_c.sizes());
  if (grad_logits.numel() == 0) return grad_logits;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, logits.scalar_type(), "sigmoid_focal_loss_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const ExpTerms terms = exp_terms(logits_c);
        const scalar_t* x = logits_c.const_data_ptr<scalar_t>();
        const acc_t* e = terms.e.const_data_ptr<acc_t>();
        const acc_t* log1p_e = terms.log1p_e.const_data_ptr<acc_t>();
        const scalar_t* g = grad_c.const_data_ptr<scalar_t>();
        scalar_t* out = grad_logits.mutable_data_ptr<scalar_t>();
        for_each_element(logits_c, labels, [&](int64_t i, int role) {
          const auto t = sigmoid_terms<acc_t>(static_cast<acc_t>(x[i]), e[i], log1p_e[i]);
          out[i] = static_cast<scalar_t>(
              static_cast<acc_t>(g[i]) *
              focal_loss_grad<acc_t>(t, role, static_cast<acc_t>(gamma), static_cast<acc_t>(alpha)));
        });
      });
  return grad_logits;
}

}  // namespace cpu
}  // namespace maskrcnn_benchmark
