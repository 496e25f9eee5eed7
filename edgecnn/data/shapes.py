"""builtin:shapes: a deterministic synthetic detection/segmentation set.

Circles, rectangles, triangles and five-pointed stars in random colours and sizes on varied backgrounds
(gradients, noise, clutter lines), placed so that later shapes occlude earlier ones. Every
sample has boxes and instance masks of the *visible* parts and a semantic mask (class id + 1,
0 = background). Same seed, same bytes. Needs only NumPy and OpenCV.

builtin:painted_shapes (``painted=True``) is the same scenes with one colour family per class
(``PAINTS``, jittered) on greyish backgrounds: there the class decides a shape's appearance, as
it does for roads and sky in street scenes, so labels -> photo is a learnable translation (with
random colours no generator can know a shape's colour, and the L1 optimum is a flat grey).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError

# A hexagon was the fourth class until it was measured to be the detector's main confusion: at
# the 10-16 px radius of many shapes its sides differ from a circle's by 1-2 px.
CLASSES = ("circle", "rectangle", "triangle", "star")
STAR_INNER_RADIUS = 0.5  # of the outer radius: five points
MIN_VISIBLE_FRACTION = 0.35  # instances occluded beyond this are dropped, not half-labelled
MIN_AREA = 24
# builtin:painted_shapes: each class's base colour (RGB; circle orange, rectangle purple, triangle
# cyan, star lime: unlike the label maps' palette, so labels -> photo is not a copy), each channel
# jittered by up to PAINT_JITTER, on backgrounds of greys tinted by up to BACKGROUND_TINT
PAINTS = np.array([[250, 140, 30], [150, 60, 200], [40, 200, 200], [130, 210, 50]])
PAINT_JITTER = 35
BACKGROUND_TINT = 25


@dataclass
class Instance:
    class_id: int  # index into CLASSES
    mask: np.ndarray  # (H, W) bool, visible part
    bbox: tuple[int, int, int, int]  # x, y, w, h of the visible part


@dataclass
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    instances: list[Instance]
    semantic: np.ndarray  # (H, W) uint8, class id + 1


def _background(rng: np.random.Generator, size: int, painted: bool = False) -> np.ndarray:
    import cv2

    if painted:  # greys with a slight tint: every paint stands out from them
        start, end = (np.clip(rng.integers(50, 206) + rng.integers(-BACKGROUND_TINT, BACKGROUND_TINT + 1, 3), 0, 255)
                      for _ in range(2))
    else:
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[None, :, None]
    image = (start + (end - start) * ramp) * np.ones((size, size, 1))
    image = image + rng.normal(0, rng.uniform(2, 12), (size, size, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(0, 4)):  # clutter that is not an object
        p1, p2 = tuple(int(v) for v in rng.integers(0, size, 2)), tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(image, p1, p2, tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(1, 3)))
    return image


def _shape_mask(rng: np.random.Generator, class_id: int, size: int) -> np.ndarray:
    import cv2

    mask = np.zeros((size, size), np.uint8)
    radius = rng.uniform(0.08, 0.22) * size
    center = rng.uniform(radius * 0.6, size - radius * 0.6, 2)
    angle = rng.uniform(0, 2 * np.pi)
    name = CLASSES[class_id]
    if name == "circle":
        cv2.circle(mask, (int(center[0]), int(center[1])), int(radius), 1, -1)
    else:
        corners = {"rectangle": 4, "triangle": 3, "star": 10}[name]
        # a regular polygon (a star alternates outer and inner corners), stretched along its own
        # x axis (rectangles only) and then rotated: stretching after the rotation would turn
        # squares into rhombi and parallelograms
        base = np.pi / corners + np.arange(corners) * 2 * np.pi / corners
        stretch = rng.uniform(0.6, 1.4) if name == "rectangle" else 1.0
        reach = np.where(np.arange(corners) % 2, STAR_INNER_RADIUS, 1.0) if name == "star" else 1.0
        local = np.stack([np.cos(base) * stretch, np.sin(base)], 1) * (radius * np.reshape(reach, (-1, 1)))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = center + local @ rotation.T
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def generate_sample(rng: np.random.Generator, size: int = 128, max_objects: int = 4, painted: bool = False) -> Sample:
    import cv2

    image = _background(rng, size, painted)
    masks: list[tuple[int, np.ndarray, int, np.ndarray]] = []  # class, visible, full area, colour
    for _ in range(rng.integers(1, max_objects + 1)):
        class_id = int(rng.integers(0, len(CLASSES)))
        mask = _shape_mask(rng, class_id, size)
        # keep the shape distinguishable from its background and from every shape it touches
        # (a same-coloured neighbour would merge with it into one blob nobody could label)
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        avoid = [image[mask].mean(axis=0)] + [colour for _, visible, _, colour in masks if (visible & grown).any()]
        def draw_colour():
            if painted:
                return np.clip(PAINTS[class_id] + rng.integers(-PAINT_JITTER, PAINT_JITTER + 1, 3), 0, 255)
            return rng.integers(0, 256, 3)

        colour = draw_colour()
        for _ in range(100):  # a painted shape touching one of its own class may find no contrast: keep the last
            if min(np.abs(colour.astype(int) - other).sum() for other in avoid) >= 90:
                break
            colour = draw_colour()
        image[mask] = colour
        masks = [(c, m & ~mask, full, col) for c, m, full, col in masks]  # occlusion
        masks.append((class_id, mask, int(mask.sum()), colour))
    semantic = np.zeros((size, size), np.uint8)
    instances = []
    for class_id, visible, full_area, _ in masks:
        area = int(visible.sum())
        if area < MIN_AREA or area < MIN_VISIBLE_FRACTION * full_area:
            continue
        ys, xs = np.nonzero(visible)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        instances.append(Instance(class_id, visible, bbox))
        semantic[visible] = class_id + 1
    return Sample(image, instances, semantic)


def _polygons(mask: np.ndarray) -> list[list[float]]:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def write_shapes(out: str | Path, num: int = 200, size: int = 128, seed: int = 0, painted: bool = False) -> Path:
    """Write ``num`` samples as DIR/images/*.png, DIR/masks/*.png (class id + 1 per pixel) and
    DIR/annotations.json (COCO: boxes, polygon segmentations). Returns the JSON's path."""
    import cv2

    from edgecnn.io_utils import atomic_write_bytes, atomic_write_text

    if num < 1 or size < 32:
        raise EdgeCNNError(f"Need --num >= 1 and --size >= 32, got {num} and {size}.")
    out = Path(out)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for index in range(num):
        sample = generate_sample(rng, size, painted=painted)
        name = f"shapes_{index:05d}.png"
        for folder, array in (("images", cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)), ("masks", sample.semantic)):
            ok, encoded = cv2.imencode(".png", array)
            atomic_write_bytes(out / folder / name, encoded.tobytes())
        images.append({"id": index + 1, "file_name": f"images/{name}", "width": size, "height": size})
        for instance in sample.instances:
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": instance.class_id + 1,
                "bbox": list(instance.bbox), "area": int(instance.mask.sum()), "iscrowd": 0,
                "segmentation": _polygons(instance.mask),
            })
    document = {
        "info": {"description": f"edgecnn builtin:shapes (seed {seed}, {num} images of {size}x{size})"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)],
    }
    return atomic_write_text(out / "annotations.json", json.dumps(document))
