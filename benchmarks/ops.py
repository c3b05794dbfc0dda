"""Speed of our compiled ops relative to torchvision.ops (ratio = ours / torchvision; < 1 is faster).

    python benchmarks/ops.py [--repeats 20] [--device cpu|cuda|all]   (after pip install -e .,
    or with PYTHONPATH=. from the repository root)

Cases: NMS on 1k and 10k boxes; RoIAlign forward + backward on FPN-like feature maps
(256 channels, strides 4..32 of an 800 x 1216 image, batch 2) with 512 RoIs spread over the levels.
"""
import argparse
import statistics
import time

import torch
import torchvision

from maskrcnn_benchmark.layers import nms, roi_align


def measure(fn, device, repeats):
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def nms_inputs(count, device, generator):
    corners = torch.rand(count, 2, generator=generator) * 1000
    sizes = torch.rand(count, 2, generator=generator) * 200 + 4
    boxes = torch.cat([corners, corners + sizes], dim=1).to(device)
    scores = torch.rand(count, generator=generator).to(device)
    return boxes, scores


def fpn_roi_align_inputs(device, generator, num_rois=512, channels=256, batch=2):
    """One RoI set per FPN level (P2..P5), RoIs sized for their level as the level mapper would."""
    image_h, image_w = 800, 1216
    levels = []
    for stride, rois_here, (low, high) in [(4, 192, (16, 112)), (8, 160, (112, 224)),
                                           (16, 96, (224, 448)), (32, 64, (448, 800))]:
        features = torch.randn(batch, channels, image_h // stride, image_w // stride,
                               generator=generator)
        sizes = torch.rand(rois_here, 2, generator=generator) * (high - low) + low
        xy = torch.rand(rois_here, 2, generator=generator) * torch.tensor([image_w, image_h])
        batch_index = torch.randint(0, batch, (rois_here, 1), generator=generator).float()
        rois = torch.cat([batch_index, xy, xy + sizes], dim=1)
        levels.append((features.to(device), rois.to(device), 1.0 / stride))
    assert sum(level[1].shape[0] for level in levels) == num_rois
    return levels


def roi_align_step(pool, levels):
    """Forward over all levels, then backward of a fixed random projection."""
    def step():
        inputs = [features.detach().requires_grad_() for features, _, _ in levels]
        outputs = [pool(x, rois, (7, 7), scale, 2, True)
                   for x, (_, rois, scale) in zip(inputs, levels)]
        torch.cat(outputs).sum().backward()
    return step


def run(device, repeats):
    generator = torch.Generator().manual_seed(0)
    rows = []
    for count in (1000, 10000):
        boxes, scores = nms_inputs(count, device, generator)
        assert torch.equal(nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))
        ours = measure(lambda: nms(boxes, scores, 0.5), device, repeats)
        theirs = measure(lambda: torchvision.ops.nms(boxes, scores, 0.5), device, repeats)
        rows.append((f"nms {count} boxes", ours, theirs))

    levels = fpn_roi_align_inputs(device, generator)
    ours = measure(roi_align_step(roi_align, levels), device, max(3, repeats // 4))
    theirs = measure(roi_align_step(torchvision.ops.roi_align, levels), device,
                     max(3, repeats // 4))
    rows.append(("roi_align fwd+bwd, FPN, 512 RoIs", ours, theirs))

    print(f"\n{device} ({torch.get_num_threads()} threads)" if device == "cpu" else
          f"\n{device} ({torch.cuda.get_device_name()})")
    print(f"{'case':36s} {'ours ms':>10s} {'torchvision ms':>15s} {'ratio':>7s}")
    for name, ours, theirs in rows:
        print(f"{name:36s} {ours:10.2f} {theirs:15.2f} {ours / theirs:7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("\ncuda: no GPU visible, skipped")
            continue
        run(device, args.repeats)


if __name__ == "__main__":
    main()
