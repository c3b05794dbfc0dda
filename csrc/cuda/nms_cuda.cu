// Greedy NMS on CUDA.
//
// Boxes are sorted by decreasing score. A kernel compares every box with every later box in
// tiles of 64 x 64 and writes, per box, a bitmask of the later boxes it overlaps above the
// threshold. The greedy pass over those bitmasks is inherently sequential and cheap, so it
// runs on the host.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ceil_div.h>
#include <c10/cuda/CUDAGuard.h>

#include <vector>

#include "../checks.h"
#include "../nms_overlap.h"
#include "../ops.h"

namespace maskrcnn_benchmark {
namespace cuda {
namespace {

constexpr int kBitsPerMask = 64;

// Block (row_tile, col_tile): thread t handles box row_tile * 64 + t against the 64 boxes of
// col_tile, writing mask[box][col_tile]: bit j set when box suppresses col_tile's box j
// (nms_overlap.h).
template <typename scalar_t, bool kLegacy>
__global__ void nms_mask_kernel(int64_t count, double threshold,
                                const scalar_t* __restrict__ sorted_boxes,
                                uint64_t* __restrict__ mask) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t row_tile = blockIdx.y;
  const int64_t col_tile = blockIdx.x;
  if (row_tile > col_tile) return;  // only later boxes can be suppressed
  const int64_t tiles = gridDim.x;
  const int64_t rows_left = count - row_tile * kBitsPerMask;
  const int64_t cols_left = count - col_tile * kBitsPerMask;
  const int rows = static_cast<int>(rows_left < kBitsPerMask ? rows_left : kBitsPerMask);
  const int cols = static_cast<int>(cols_left < kBitsPerMask ? cols_left : kBitsPerMask);

  __shared__ acc_t tile_boxes[kBitsPerMask * 4];
  __shared__ acc_t tile_areas[kBitsPerMask];
  if (threadIdx.x < cols) {
    acc_t* c = tile_boxes + threadIdx.x * 4;
    for (int i = 0; i < 4; ++i) {
      c[i] = static_cast<acc_t>(sorted_boxes[(col_tile * kBitsPerMask + threadIdx.x) * 4 + i]);
    }
    tile_areas[threadIdx.x] = nms_box_area<kLegacy>(c[0], c[1], c[2], c[3]);
  }
  __syncthreads();
  if (threadIdx.x >= rows) return;

  const int64_t box = row_tile * kBitsPerMask + threadIdx.x;
  acc_t a[4];
  for (int i = 0; i < 4; ++i) a[i] = static_cast<acc_t>(sorted_boxes[box * 4 + i]);
  const acc_t area_a = nms_box_area<kLegacy>(a[0], a[1], a[2], a[3]);
  uint64_t bits = 0;
  const int first = row_tile == col_tile ? threadIdx.x + 1 : 0;
  for (int j = first; j < cols; ++j) {
    const acc_t* b = tile_boxes + j * 4;
    if (nms_suppresses<kLegacy>(a[0], a[1], a[2], a[3], area_a, b[0], b[1], b[2], b[3],
                                tile_areas[j], threshold)) {
      bits |= 1ULL << j;
    }
  }
  mask[box * tiles + col_tile] = bits;
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               bool legacy) {
  check_boxes_and_scores(boxes, scores);
  c10::cuda::CUDAGuard guard(boxes.device());
  const int64_t count = boxes.size(0);
  if (count == 0) return boxes.new_empty({0}, at::kLong);

  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const auto sorted_boxes = boxes.index_select(0, order).contiguous();
  const int64_t tiles = at::ceil_div<int64_t>(count, kBitsPerMask);
  auto mask = boxes.new_empty({count * tiles}, at::kLong);

  const dim3 grid(tiles, tiles);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, boxes.scalar_type(), "nms_cuda", [&] {
    const auto kernel = legacy ? nms_mask_kernel<scalar_t, true> : nms_mask_kernel<scalar_t, false>;
    kernel<<<grid, kBitsPerMask, 0, stream>>>(
        count, iou_threshold, sorted_boxes.const_data_ptr<scalar_t>(),
        reinterpret_cast<uint64_t*>(mask.mutable_data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  // Greedy pass: walk boxes best first, keep those no kept box has suppressed.
  const auto mask_host = mask.cpu();
  const uint64_t* mask_data = reinterpret_cast<const uint64_t*>(mask_host.const_data_ptr<int64_t>());
  std::vector<uint64_t> suppressed(tiles, 0);
  std::vector<int64_t> kept_positions;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t tile = i / kBitsPerMask;
    if (suppressed[tile] & (1ULL << (i % kBitsPerMask))) continue;
    kept_positions.push_back(i);
    const uint64_t* row = mask_data + i * tiles;
    for (int64_t t = tile; t < tiles; ++t) suppressed[t] |= row[t];
  }
  auto kept = boxes.new_empty({static_cast<int64_t>(kept_positions.size())},
                              at::TensorOptions(at::kLong).device(at::kCPU));
  std::copy(kept_positions.begin(), kept_positions.end(), kept.mutable_data_ptr<int64_t>());
  return order.index_select(0, kept.to(boxes.device(), /*non_blocking=*/false));
}

}  // namespace cuda
}  // namespace maskrcnn_benchmark
