"""Detection and instance-segmentation samples: ``coco:`` files and ``builtin:shapes``.

A sample keeps the original image (RGB uint8) with boxes in its own pixels (x1, y1, x2, y2),
contiguous class indices, crowd flags and, when asked for, instance masks decoded from COCO
polygons or RLE by pycocotools. The COCO ground truth for evaluation is rebuilt from the same
samples, so ``builtin:shapes`` and user files are scored the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.data.specs import DataSpec, is_shapes, parse_spec
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.images import read_rgb8

# builtin:shapes splits: fixed seeds, so every run (and every machine) sees the same images
SHAPES_SPLITS = {"train": (1000, 1200), "val": (2000, 300)}  # split: (seed, number of images)
SHAPES_SIZE = 128


@dataclass
class DetectionSample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 in image pixels
    classes: np.ndarray  # (N,) int64 contiguous class index
    image_id: int
    crowd: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (N,) ignored in training
    masks: np.ndarray | None = None  # (N, H, W) bool instance masks
    file_name: str = ""


@dataclass
class DetectionSet:
    samples: list[DetectionSample]
    classes: list[str]
    source: str


def split_ids(ids: list[int], split: str) -> list[int]:
    """A fixed 80/20 split of the image ids (by a seeded permutation)."""
    if split == "all" or len(ids) < 5:
        return ids
    order = np.random.default_rng(0).permutation(len(ids))
    cut = int(0.8 * len(ids))
    return [ids[i] for i in sorted(order[:cut] if split == "train" else order[cut:])]


def load_coco(spec: DataSpec, split: str = "all", limit: int | None = None, with_masks: bool = False) -> DetectionSet:
    """Read a COCO JSON (boxes; masks from polygons or RLE). ``split``: all, train or val
    (80/20 of the images)."""
    from pycocotools.coco import COCO

    path = Path(spec.location)
    image_root = Path(spec.image_dir) if spec.image_dir else path.parent
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress on stdout
            coco = COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EdgeCNNError(f"'{path}' is not valid JSON ({error}).", "Give a COCO annotations file.") from error
    except (KeyError, TypeError, AssertionError) as error:
        raise EdgeCNNError(f"'{path}' is not a COCO annotations file ({type(error).__name__}: {error}).",
                           "It needs 'images', 'annotations' and 'categories'.") from error
    category_ids = sorted(coco.getCatIds())
    if not category_ids:
        raise EdgeCNNError(f"'{path}' defines no categories.", "Add a 'categories' list to the JSON.")
    index_of = {cat: i for i, cat in enumerate(category_ids)}
    names = [coco.loadCats(cat)[0].get("name", str(cat)) for cat in category_ids]
    ids = split_ids(sorted(coco.getImgIds()), split)[: limit or None]
    samples, unreadable = [], []
    for image_id in ids:
        info = coco.loadImgs(image_id)[0]
        image = read_rgb8(image_root / info["file_name"])
        if image is None:
            unreadable.append(info["file_name"])
            continue
        annotations = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if a.get("bbox")]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in annotations], np.float32).reshape(-1, 4)
        classes = np.array([index_of[a["category_id"]] for a in annotations], np.int64)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in annotations], bool)
        masks = None
        if with_masks:
            masks = np.zeros((len(annotations), *image.shape[:2]), bool)
            for k, annotation in enumerate(annotations):
                if annotation.get("segmentation"):
                    decoded = coco.annToMask(annotation)
                    masks[k] = decoded[: image.shape[0], : image.shape[1]].astype(bool)
        samples.append(DetectionSample(image, boxes, classes, int(image_id), crowd, masks, info["file_name"]))
    if unreadable:
        import logging

        logging.getLogger("edgecnn.data").warning("skipped %d unreadable image(s), e.g. %s", len(unreadable),
                                                  image_root / unreadable[0])
    if not samples:
        raise EdgeCNNError(f"No readable images for '{spec}' (split {split}).",
                           f"Images are looked up under '{image_root}'; use coco:ANN.json@IMAGE_DIR if they are elsewhere.")
    return DetectionSet(samples, names, str(spec))


_SHAPES_CACHE: dict[tuple, DetectionSet] = {}


def load_shapes(split: str = "val", limit: int | None = None, with_masks: bool = False,
                painted: bool = False) -> DetectionSet:
    from edgecnn.data.shapes import CLASSES, generate_sample

    if split not in SHAPES_SPLITS:
        split = "train" if split == "all" else split
    seed, count = SHAPES_SPLITS[split]
    count = min(count, limit) if limit else count
    key = (split, count, with_masks, painted)
    if key not in _SHAPES_CACHE:
        rng = np.random.default_rng(seed)
        samples = []
        for index in range(count):
            sample = generate_sample(rng, SHAPES_SIZE, painted=painted)
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (i.bbox for i in sample.instances)],
                             np.float32).reshape(-1, 4)
            classes = np.array([i.class_id for i in sample.instances], np.int64)
            masks = np.stack([i.mask for i in sample.instances]) if with_masks and sample.instances else (
                np.zeros((0, SHAPES_SIZE, SHAPES_SIZE), bool) if with_masks else None)
            samples.append(DetectionSample(sample.image, boxes, classes, index + 1, np.zeros(len(classes), bool),
                                           masks, f"shapes_{split}_{index:05d}.png"))
        name = "painted_shapes" if painted else "shapes"
        _SHAPES_CACHE[key] = DetectionSet(samples, list(CLASSES), f"builtin:{name} ({split})")
    return _SHAPES_CACHE[key]


def load_detection_samples(spec: str | DataSpec, split: str = "val", limit: int | None = None,
                           with_masks: bool = False) -> DetectionSet:
    """Detection samples of a DATA spec: ``builtin:shapes`` (or painted_shapes) or
    ``coco:ANN.json[@IMAGES]``."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if is_shapes(spec):
        return load_shapes(split, limit, with_masks, spec.location == "painted_shapes")
    if spec.kind == "coco":
        return load_coco(spec, split, limit, with_masks)
    raise EdgeCNNError(f"'{spec}' does not provide boxes.",
                       "Detection data is builtin:shapes or coco:ANNOTATIONS.json (boxes, optional masks).")


def coco_ground_truth(dataset: DetectionSet) -> dict:
    """A COCO-format ground-truth document for ``dataset`` (category ids = class index + 1)."""
    images, annotations = [], []
    for sample in dataset.samples:
        height, width = sample.image.shape[:2]
        images.append({"id": sample.image_id, "width": width, "height": height, "file_name": sample.file_name})
        crowd = sample.crowd if len(sample.crowd) == len(sample.boxes) else np.zeros(len(sample.boxes), bool)
        for box, cls, is_crowd in zip(sample.boxes, sample.classes, crowd):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": sample.image_id, "category_id": int(cls) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                                "iscrowd": int(is_crowd)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(dataset.classes)]}
