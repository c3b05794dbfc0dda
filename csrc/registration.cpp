// The one place where maskrcnn_benchmark's operators meet the PyTorch dispatcher.
//
// TORCH_LIBRARY declares the schemas; TORCH_LIBRARY_IMPL binds each backend's kernels.
// Autograd formulas and shape-only ("fake") implementations are registered from Python in
// maskrcnn_benchmark/layers/_ops.py with torch.library.

#include <Python.h>
#include <torch/library.h>
#include <torch/version.h>

#include "ops.h"

namespace maskrcnn_benchmark {
namespace {

// Lets Python ask whether this build carries the CUDA kernels.
bool compiled_with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace
}  // namespace maskrcnn_benchmark

TORCH_LIBRARY(maskrcnn_benchmark, m) {
  m.def("compiled_with_cuda() -> bool", &maskrcnn_benchmark::compiled_with_cuda);
  m.def(
      "roi_align_forward(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width, int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "roi_align_backward(Tensor grad_output, Tensor rois, float spatial_scale, "
      "int pooled_height, int pooled_width, int batch_size, int channels, int height, "
      "int width, int sampling_ratio, bool aligned, Tensor? rows=None) -> Tensor");
  // Pools rois[rows] into output[rows]; the other rows of output are left as they are.
  m.def(
      "roi_align_forward_into(Tensor input, Tensor rois, Tensor rows, Tensor(a!) output, "
      "float spatial_scale, int pooled_height, int pooled_width, int sampling_ratio, "
      "bool aligned) -> ()");
  m.def(
      "roi_pool_forward(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width) -> (Tensor output, Tensor argmax)");
  m.def(
      "roi_pool_backward(Tensor grad_output, Tensor argmax, int batch_size, int channels, "
      "int height, int width) -> Tensor");
  // legacy: maskrcnn-benchmark's boxes (width x2 - x1 + 1, suppress at IoU >= threshold);
  // see nms_overlap.h.
  m.def("nms(Tensor boxes, Tensor scores, float iou_threshold, bool legacy=False) -> Tensor");
  m.def(
      "sigmoid_focal_loss_forward(Tensor logits, Tensor targets, float gamma, float alpha) "
      "-> Tensor");
  m.def(
      "sigmoid_focal_loss_backward(Tensor logits, Tensor targets, Tensor grad_loss, "
      "float gamma, float alpha) -> Tensor");
}

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CPU, m) {
  namespace k = maskrcnn_benchmark::cpu;
  m.impl("roi_align_forward", &k::roi_align_forward);
  m.impl("roi_align_backward", &k::roi_align_backward);
  m.impl("roi_align_forward_into", &k::roi_align_forward_into);
  m.impl("roi_pool_forward", &k::roi_pool_forward);
  m.impl("roi_pool_backward", &k::roi_pool_backward);
  m.impl("nms", &k::nms);
  m.impl("sigmoid_focal_loss_forward", &k::sigmoid_focal_loss_forward);
  m.impl("sigmoid_focal_loss_backward", &k::sigmoid_focal_loss_backward);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  namespace k = maskrcnn_benchmark::cuda;
  m.impl("roi_align_forward", &k::roi_align_forward);
  m.impl("roi_align_backward", &k::roi_align_backward);
  m.impl("roi_align_forward_into", &k::roi_align_forward_into);
  m.impl("roi_pool_forward", &k::roi_pool_forward);
  m.impl("roi_pool_backward", &k::roi_pool_backward);
  m.impl("nms", &k::nms);
  m.impl("sigmoid_focal_loss_forward", &k::sigmoid_focal_loss_forward);
  m.impl("sigmoid_focal_loss_backward", &k::sigmoid_focal_loss_backward);
}
#endif

#define MRCNN_STRINGIFY_(x) #x
#define MRCNN_STRINGIFY(x) MRCNN_STRINGIFY_(x)

// Importing maskrcnn_benchmark._C runs the registrations above. The module holds one attribute,
// built_with_torch ("major.minor" of the torch it was compiled against), which Python compares
// with the torch it runs with.
extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "maskrcnn_benchmark operators", -1,
                               nullptr};
  PyObject* m = PyModule_Create(&module);
  if (m != nullptr &&
      PyModule_AddStringConstant(m, "built_with_torch",
                                 MRCNN_STRINGIFY(TORCH_VERSION_MAJOR) "." MRCNN_STRINGIFY(
                                     TORCH_VERSION_MINOR)) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
