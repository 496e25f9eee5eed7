"""Model-input samples of any DATA spec, for calibration and parity checks: float32
(N, H, W, C) in [0, 1] ([-1, 1] for generators), prepared the way the task's runtime pipeline
prepares them (classification and generation: resize; detection and segmentation: letterbox)."""

from __future__ import annotations

import numpy as np

from edgecnn.data.specs import DataSpec, is_shapes, parse_spec


def _classification(spec, size, limit, split):
    from edgecnn.data.images import load_classification_samples

    images, _, classes = load_classification_samples(spec, size, limit, split)
    return images, classes


def _detection(spec, size, limit, split):
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.runtime.images import letterbox

    dataset = load_detection_samples(spec, split, limit)
    images = []
    for sample in dataset.samples:
        image, _ = letterbox(sample.image, size[0], size[1])
        if size[2] == 1:
            image = image.mean(axis=2, keepdims=True)
        images.append(image.astype(np.float32) / 255.0)
    return np.stack(images), dataset.classes


def _segmentation(spec, size, limit, split):
    from edgecnn.data.segmentation import load_segmentation_samples

    dataset = load_segmentation_samples(spec, size, split, limit)
    return dataset.images, dataset.classes


def _generation(spec, size, limit, split, edges: bool = False):
    from edgecnn.data.translation import load_translation_samples, to_unit_range

    dataset = load_translation_samples(spec, size, split, limit, edges)
    return to_unit_range(dataset.a), []


_LOADERS = {
    ("builtin", "digits"): _classification,
    ("folder", None): _classification,
    ("builtin", "shapes"): _detection,
    ("builtin", "painted_shapes"): _detection,
    ("coco", None): _detection,
    ("masks", None): _segmentation,
    ("pairs", None): _generation,
    ("unpaired", None): _generation,
}


def load_input_samples(spec: str | DataSpec, size: tuple[int, int, int], limit: int | None = None,
                       split: str = "val", task: str | None = None, edges: bool = False
                       ) -> tuple[np.ndarray, list[str]]:
    """(images, class names). ``builtin:shapes`` serves detection by default and segmentation
    when ``task`` says so; ``edges``: a generator's inputs are the pictures' Canny edges."""
    from edgecnn.errors import EdgeCNNError

    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if task == "segmentation" and is_shapes(spec):
        return _segmentation(spec, size, limit, split)
    if task == "generation" and (edges or is_shapes(spec)):
        return _generation(spec, size, limit, split, edges)
    loader = _LOADERS.get((spec.kind, spec.location if spec.kind == "builtin" else None))
    if loader is None:
        raise EdgeCNNError(f"'{spec}' cannot provide model-input samples.",
                           "Use builtin:digits, builtin:shapes, folder:DIR, coco:ANN.json, masks:DIR, pairs:DIR or unpaired:DIR.")
    return loader(spec, size, limit, split)
