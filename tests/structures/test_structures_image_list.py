import pytest
import torch

from maskrcnn_benchmark.structures.image_list import ImageList, to_image_list


def test_list_of_images_is_zero_padded_to_the_largest_size():
    images = [torch.rand(3, 20, 30), torch.rand(3, 25, 17)]
    batch = to_image_list(images)
    assert batch.tensors.shape == (2, 3, 25, 30)
    assert batch.image_sizes == [(20, 30), (25, 17)]
    assert torch.equal(batch.tensors[0, :, :20, :30], images[0])
    assert torch.equal(batch.tensors[1, :, :25, :17], images[1])
    assert batch.tensors[0, :, 20:, :].abs().sum() == 0
    assert batch.tensors[1, :, :, 17:].abs().sum() == 0


def test_size_divisible_rounds_up_height_and_width():
    images = [torch.ones(3, 33, 65), torch.ones(3, 40, 20)]
    batch = to_image_list(images, size_divisible=32)
    assert batch.tensors.shape == (2, 3, 64, 96)
    assert batch.image_sizes == [(33, 65), (40, 20)]
    assert batch.tensors.sum().item() == 3 * (33 * 65 + 40 * 20)
    exact = to_image_list([torch.ones(3, 64, 32)], size_divisible=32)
    assert exact.tensors.shape == (1, 3, 64, 32)


def test_tensor_inputs_and_image_list_passthrough():
    single = torch.rand(3, 10, 12)
    batch = to_image_list(single)
    assert batch.tensors.shape == (1, 3, 10, 12) and batch.image_sizes == [(10, 12)]
    stacked = torch.rand(2, 3, 10, 12)
    padded = to_image_list(stacked, size_divisible=8)
    assert padded.tensors.shape == (2, 3, 16, 16)
    assert torch.equal(padded.tensors[:, :, :10, :12], stacked)
    assert to_image_list(padded) is padded
    moved = padded.to(torch.float64)
    assert isinstance(moved, ImageList) and moved.tensors.dtype == torch.float64
    assert moved.image_sizes == padded.image_sizes


def test_padding_keeps_gradients_flowing():
    image = torch.rand(3, 5, 7, requires_grad=True)
    batch = to_image_list([image, torch.rand(3, 8, 8)], size_divisible=4)
    batch.tensors.sum().backward()
    assert torch.equal(image.grad, torch.ones_like(image))


def test_bad_inputs_name_the_culprit():
    with pytest.raises(ValueError, match="image 1 has 1 channels"):
        to_image_list([torch.rand(3, 4, 4), torch.rand(1, 4, 4)])
    with pytest.raises(ValueError, match="image 0"):
        to_image_list([torch.rand(4, 4)])
    with pytest.raises(ValueError, match="empty"):
        to_image_list([])
    with pytest.raises(TypeError, match="str"):
        to_image_list("image.jpg")
