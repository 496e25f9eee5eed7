"""Semantic segmentation samples: ``masks:DIR`` (DIR/images + DIR/masks, PNG class ids, same
file stems) and ``builtin:shapes`` (the generator's semantic masks: 0 background, 1 + shape
class). Images and masks are letterboxed to the model input together; padding pixels get the
``IGNORE`` label so they count neither in training nor in the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.specs import DataSpec, is_shapes, parse_spec
from edgecnn.errors import EdgeCNNError

IGNORE = 255


@dataclass
class SegmentationSet:
    images: np.ndarray  # (N, H, W, C) float32 in [0, 1], letterboxed
    masks: np.ndarray  # (N, H, W) uint8 class ids, IGNORE on padding
    classes: list[str]
    source: str


def _letterboxed(image: np.ndarray, mask: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from edgecnn.runtime.images import letterbox

    height, width, channels = size
    fitted, _ = letterbox(image, height, width)
    fitted_mask, _ = letterbox(mask, height, width, pad_value=IGNORE, interpolation=cv2.INTER_NEAREST)
    if channels == 1:
        fitted = fitted.mean(axis=2, keepdims=True)
    return fitted.astype(np.float32) / 255.0, fitted_mask


def masks_by_stem(folder: Path) -> dict[str, Path]:
    """The class-id mask PNGs in ``folder`` by file stem (a picture's mask is named like it)."""
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() == ".png"}


def read_class_mask(path: Path) -> np.ndarray | None:
    """A mask PNG's class ids as (H, W) uint8; None when the file cannot be read. A mask with
    colour channels is refused: its pixels would not be class ids."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        return None
    if mask.ndim == 3:
        raise EdgeCNNError(f"Mask '{path}' has colour channels.",
                           "Masks are single-channel PNGs whose pixel values are class ids.")
    return mask.astype(np.uint8)


def _split(count: int, split: str) -> np.ndarray:
    if split == "all" or count < 5:
        return np.arange(count)
    order = np.random.default_rng(0).permutation(count)
    cut = int(0.8 * count)
    return np.sort(order[:cut] if split == "train" else order[cut:])


def load_mask_folder(path: Path, size, split: str = "all", limit: int | None = None) -> SegmentationSet:
    from edgecnn.runtime.images import IMAGE_SUFFIXES, read_rgb8

    images_dir, masks_dir = path / "images", path / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise EdgeCNNError(f"'{path}' needs an images/ and a masks/ folder.",
                           "Lay it out as DIR/images/NAME.jpg|png and DIR/masks/NAME.png (pixel = class id).")
    masks = masks_by_stem(masks_dir)
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks)
    if not files:
        raise EdgeCNNError(f"No image in '{images_dir}' has a mask of the same name in '{masks_dir}'.",
                           "Masks are PNG files named like their images.")
    chosen = [files[i] for i in _split(len(files), split)][: limit or None]
    images, labels = [], []
    for file in chosen:
        image = read_rgb8(file)
        mask = read_class_mask(masks[file.stem])
        if image is None or mask is None:
            continue
        if mask.shape != image.shape[:2]:
            raise EdgeCNNError(f"Mask '{masks[file.stem]}' is {mask.shape[1]}x{mask.shape[0]} but its image is "
                               f"{image.shape[1]}x{image.shape[0]}.", "A mask must have its image's size.")
        x, y = _letterboxed(image, mask, size)
        images.append(x)
        labels.append(y)
    if not images:
        raise EdgeCNNError(f"No readable image/mask pairs under '{path}'.")
    stack = np.stack(labels)
    names_file = path / "classes.txt"
    if names_file.is_file():
        classes = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    else:
        classes = [str(i) for i in range(int(stack[stack != IGNORE].max(initial=0)) + 1)]
    return SegmentationSet(np.stack(images), stack, classes, f"masks:{path}")


def load_shapes_semantic(size, split: str = "val", limit: int | None = None, painted: bool = False) -> SegmentationSet:
    from edgecnn.data.detection import SHAPES_SPLITS, SHAPES_SIZE
    from edgecnn.data.shapes import CLASSES, generate_sample

    split = "train" if split == "all" else split
    seed, count = SHAPES_SPLITS[split]
    count = min(count, limit) if limit else count
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(count):
        sample = generate_sample(rng, SHAPES_SIZE, painted=painted)
        x, y = _letterboxed(sample.image, sample.semantic, size)
        images.append(x)
        labels.append(y)
    name = "painted_shapes" if painted else "shapes"
    return SegmentationSet(np.stack(images), np.stack(labels), ["background", *CLASSES], f"builtin:{name} ({split})")


def load_segmentation_samples(spec: str | DataSpec, size, split: str = "val", limit: int | None = None
                              ) -> SegmentationSet:
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if is_shapes(spec):
        return load_shapes_semantic(size, split, limit, spec.location == "painted_shapes")
    if spec.kind == "masks":
        return load_mask_folder(Path(spec.location), size, split, limit)
    raise EdgeCNNError(f"'{spec}' does not provide segmentation masks.",
                       "Segmentation data is builtin:shapes or masks:DIR (DIR/images + DIR/masks).")
