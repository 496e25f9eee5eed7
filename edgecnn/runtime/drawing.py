"""Drawing results on images (RGB in, RGB out): what `edgecnn predict` writes."""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.classifier import ClassificationResult
from edgecnn.runtime.detector import Detection, DetectionResult
from edgecnn.runtime.images import as_rgb8, resize
from edgecnn.runtime.instance_segmenter import InstanceSegmentationResult
from edgecnn.runtime.segmenter import SegmentationResult
from edgecnn.runtime.translator import TranslationResult


def draw(image: np.ndarray, result) -> np.ndarray:
    """``image`` annotated with any pipeline's ``result``; a translation is shown side by side
    with its input (input left, generated picture right; between them the edges the Translator
    drew, for an edges -> photo file given a photo)."""
    if isinstance(result, TranslationResult):
        if result.edges is None:
            return side_by_side(image, result.image)
        edges = resize(as_rgb8(result.edges), result.image.shape[1], result.image.shape[0])
        return side_by_side(image, edges, result.image)
    drawers = {ClassificationResult: draw_classification, DetectionResult: draw_detections,
               SegmentationResult: draw_segmentation, InstanceSegmentationResult: draw_instances}
    return drawers[type(result)](image, result)


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """RGB images of one height in a row, white gaps between them."""
    rows = [as_rgb8(image) for image in images]
    spacer = np.full((rows[0].shape[0], gap, 3), 255, np.uint8)
    parts = [part for image in rows for part in (image, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def draw_classification(image: np.ndarray, result: ClassificationResult) -> np.ndarray:
    """A copy of ``image`` (RGB) with the top prediction written on it."""
    import cv2

    canvas = as_rgb8(image).copy()
    best = result.top_k[0]
    scale = max(0.4, canvas.shape[1] / 640)
    text = f"{best.label} {best.score:.2f}"
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def class_colour(index: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class index (golden-ratio hue steps)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: np.ndarray, result: DetectionResult) -> np.ndarray:
    """A copy of ``image`` (RGB) with each detection's box, label and score."""
    import cv2

    canvas = as_rgb8(image).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 320))
    font = max(0.35, max(canvas.shape[:2]) / 900)
    for detection in result.detections:
        x1, y1, x2, y2 = (int(round(v)) for v in detection.box)
        colour = class_colour(detection.index)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{detection.label} {detection.score:.2f}"
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        top = max(0, y1 - text_h - 4)
        cv2.rectangle(canvas, (x1, top), (x1 + text_w + 2, top + text_h + 4), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


def draw_segmentation(image: np.ndarray, result: SegmentationResult, alpha: float = 0.5,
                      outlines: bool = True) -> np.ndarray:
    """``image`` (RGB) with every non-background class (id > 0) blended in its colour and each
    instance outlined."""
    canvas = as_rgb8(image).astype(np.float32)
    palette = np.array([class_colour(i) for i in range(max(len(result.labels), int(result.class_map.max()) + 1))],
                       np.float32)
    foreground = result.class_map > 0
    canvas[foreground] = (1 - alpha) * canvas[foreground] + alpha * palette[result.class_map[foreground]]
    canvas = canvas.astype(np.uint8)
    if outlines:  # each instance's outline in its class colour, so touching regions stay apart
        import cv2

        for instance in result.instances():
            contours, _ = cv2.findContours(instance.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, class_colour(instance.index), 1)
    return canvas


def draw_instances(image: np.ndarray, result: InstanceSegmentationResult, alpha: float = 0.45) -> np.ndarray:
    """``image`` (RGB) with each instance's mask blended in its class colour and outlined, its
    box and its label and score: touching instances of one class stay apart by their outlines."""
    import cv2

    canvas = as_rgb8(image).astype(np.float32)
    for instance in result.instances:
        colour = np.array(class_colour(instance.index), np.float32)
        canvas[instance.mask] = (1 - alpha) * canvas[instance.mask] + alpha * colour
    canvas = canvas.astype(np.uint8)
    thickness = max(1, round(max(canvas.shape[:2]) / 480))
    for instance in result.instances:
        contours, _ = cv2.findContours(instance.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, (255, 255, 255), thickness)
    boxes = DetectionResult([Detection(i.box, i.score, i.index, i.label) for i in result.instances],
                            result.invoke_ms, result.pipeline_ms, result.image_size)
    return draw_detections(canvas, boxes)
