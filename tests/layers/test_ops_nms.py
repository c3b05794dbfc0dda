"""NMS and batched NMS against torchvision.ops."""
import pytest
import torch
import torchvision

from maskrcnn_benchmark.layers import batched_nms, nms


def random_boxes(generator, count, extent=100.0, dtype=torch.float32):
    corners = torch.rand(count, 2, generator=generator, dtype=dtype) * extent
    sizes = torch.rand(count, 2, generator=generator, dtype=dtype) * extent / 4
    return torch.cat([corners, corners + sizes], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("count", [1, 50, 1000])
def test_same_indices_as_torchvision(dtype, threshold, count):
    g = torch.Generator().manual_seed(count)
    boxes = random_boxes(g, count, dtype=dtype)
    scores = torch.rand(count, generator=g, dtype=dtype)
    kept = nms(boxes, scores, threshold)
    assert kept.dtype == torch.long
    assert torch.equal(kept, torchvision.ops.nms(boxes, scores, threshold))
    assert torch.all(scores[kept][1:] <= scores[kept][:-1]), "kept boxes not sorted by score"


def test_hand_computed_example():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0],    # score 0.9
                          [1.0, 0.0, 11.0, 10.0],    # IoU 90/110 = 0.818 with box 0
                          [5.0, 0.0, 15.0, 10.0],    # IoU 50/150 = 0.333 with box 0
                          [20.0, 20.0, 30.0, 30.0]])  # disjoint
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.3).tolist() == [0, 3]
    assert nms(boxes, scores, 0.9).tolist() == [0, 1, 2, 3]


def test_no_boxes_and_degenerate_boxes():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    degenerate = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 4.0, 0.0],
                               [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert torch.equal(nms(degenerate, scores, 0.5), torchvision.ops.nms(degenerate, scores, 0.5))


@pytest.mark.parametrize("count", [0, 20, 2000])
def test_batched_nms_matches_torchvision(count):
    g = torch.Generator().manual_seed(1 + count)
    boxes = random_boxes(g, count) - 30.0  # negative coordinates too
    scores = torch.rand(count, generator=g)
    idxs = torch.randint(0, 5, (count,), generator=g)
    ours = batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(ours, torchvision.ops.batched_nms(boxes, scores, idxs, 0.5))


def test_batched_nms_keeps_overlapping_boxes_of_different_classes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.9, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [1, 2]


def test_bad_arguments_name_the_culprit():
    with pytest.raises(RuntimeError, match="boxes must be N x 4"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(RuntimeError, match="scores must be a vector"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="idxs"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.long), 0.5)
