"""Exporting trained detectors for deployment: ``torch.export`` programs and ONNX files.

``exportable(model)`` wraps an evaluated detector into a module whose tensors all have sizes
fixed by the input size (see ``fixed_shape``): one ``1 x 3 x H x W`` image in, ``(boxes, scores,
labels)`` out, padded to a fixed number of rows (label 0 = padding). ``export_program``, ``export_onnx``
and ``save`` trace it for one image size; ``load_runner`` runs the file, ``disagreement`` compares it
with the eager detections. docs/EXPORT.md says what is exportable and why.
"""
import torch

from maskrcnn_benchmark.modeling.detector.dense_detector import DenseDetector
from maskrcnn_benchmark.modeling.detector.generalized_rcnn import GeneralizedRCNN

from .dense import ExportableDenseDetector
from .two_stage import ExportableRCNN

FORMATS = ("torch_export", "onnx")


def exportable(model):
    """The fixed-shape twin of ``model`` (sharing its weights), in evaluation mode."""
    if isinstance(model, DenseDetector):
        wrapped = ExportableDenseDetector(model)
    elif isinstance(model, GeneralizedRCNN):
        wrapped = ExportableRCNN(model)
    else:
        raise NotImplementedError(f"export: {type(model).__name__} detectors are not exportable")
    return wrapped.eval()


def export_program(model, images):
    """``torch.export.ExportedProgram`` of ``exportable(model)`` for images of ``images``'s shape."""
    with torch.no_grad():
        return torch.export.export(exportable(model), (images,))


def export_onnx(model, images, path):
    """Writes ``exportable(model)`` as an ONNX file at ``path`` (inputs ``images``, outputs
    ``boxes``, ``scores``, ``labels``) for images of ``images``'s shape; needs onnx and onnxscript."""
    from .ops import onnx_translation_table

    program = export_program(model, images)
    onnx_program = torch.onnx.export(
        program, (images,), dynamo=True, custom_translation_table=onnx_translation_table(),
        input_names=["images"], output_names=["boxes", "scores", "labels"], external_data=False, optimize=False,
    )
    onnx_program.save(str(path))
    return path


def detections(outputs):
    """``(boxes, scores, labels)`` of an exported model without the padding rows."""
    boxes, scores, labels = (torch.as_tensor(output) for output in outputs)
    keep = labels > 0
    return boxes[keep], scores[keep], labels[keep]


def save(model, images, export_format, path):
    """Exports ``model`` for images of ``images``'s shape as ``export_format`` (one of
    ``FORMATS``) into ``path``."""
    if export_format == "onnx":
        return export_onnx(model, images, path)
    if export_format == "torch_export":
        torch.export.save(export_program(model, images), str(path))
        return path
    raise ValueError(f"export: unknown format {export_format!r}; choose one of {FORMATS}")


def load_runner(export_format, path):
    """A function ``images -> (boxes, scores, labels)`` (torch tensors) running the exported file."""
    if export_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: tuple(torch.from_numpy(o) for o in session.run(None, {"images": images.numpy()}))
    if export_format == "torch_export":
        module = torch.export.load(str(path)).module()
        return lambda images: module(images)
    raise ValueError(f"export: unknown format {export_format!r}; choose one of {FORMATS}")


def disagreement(reference, outputs, atol=1e-4):
    """Why the exported ``outputs`` differ from the eager detections ``reference`` (a BoxList
    with "scores" and "labels"), or None when they agree: the same detections in the same order,
    the same labels, boxes and scores within ``atol``."""
    boxes, scores, labels = detections(outputs)
    if len(boxes) != len(reference):
        return f"{len(boxes)} exported detections, {len(reference)} in PyTorch"
    if not torch.equal(labels, reference.get_field("labels").to(labels.dtype)):
        return "the labels differ"
    box_error = (boxes - reference.bbox).abs().max().item() if len(boxes) else 0.0
    score_error = (scores - reference.get_field("scores")).abs().max().item() if len(boxes) else 0.0
    if box_error > atol or score_error > atol:
        return f"boxes differ by up to {box_error:.3g}, scores by {score_error:.3g} (tolerance {atol})"
    return None
