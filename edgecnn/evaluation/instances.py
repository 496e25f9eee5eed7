"""Instance segmentation metrics with COCO's own evaluation (pycocotools): box mAP (``bbox``)
and mask mAP (``segm``) of a Mask R-CNN, as a .keras model or a .tflite file. Both go through
the same runtime pipeline (``InstanceSegmenter``), so their figures are comparable; masks travel as
COCO RLE written by the runtime's encoder (``edgecnn.runtime.masks``)."""

from __future__ import annotations

import numpy as np

from edgecnn.data.detection import DetectionSet, coco_ground_truth
from edgecnn.errors import EdgeCNNError
from edgecnn.evaluation.metrics import coco_stats
from edgecnn.runtime.instance_segmenter import InstanceSegmenter
from edgecnn.runtime.masks import encode_rle


def ground_truth_with_masks(dataset: DetectionSet) -> dict:
    """``coco_ground_truth`` with each annotation's mask as RLE (``segm`` evaluation needs it)."""
    document = coco_ground_truth(dataset)
    masks = [mask for sample in dataset.samples for mask in _sample_masks(sample)]
    if len(masks) != len(document["annotations"]):
        raise EdgeCNNError("The evaluation data has boxes without instance masks.",
                           "Evaluate instance segmentation on COCO annotations with 'segmentation' polygons or RLE, "
                           "or on builtin:shapes.")
    for annotation, mask in zip(document["annotations"], masks):
        annotation["segmentation"] = encode_rle(mask)
        annotation["area"] = float(mask.sum())
    return document


def _sample_masks(sample) -> list[np.ndarray]:
    if sample.masks is None:
        raise EdgeCNNError(f"Image {sample.file_name or sample.image_id} has no instance masks.",
                           "Evaluate instance segmentation on data with masks (COCO segmentation or builtin:shapes).")
    return list(sample.masks)


def coco_instance_map(dataset: DetectionSet, found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                                list[np.ndarray]]]) -> dict:
    """{map, map50, mask_map, mask_map50, images, detections} of ``found``: per image (image id,
    boxes in original pixels, scores, classes, full-size masks)."""
    results = [{"image_id": int(image_id), "category_id": int(cls) + 1, "score": float(score),
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                "segmentation": encode_rle(mask)}
               for image_id, boxes, scores, classes, masks in found
               for b, score, cls, mask in zip(boxes, scores, classes, masks)]
    metrics = {"images": len(dataset.samples), "detections": len(results)}
    if not results:
        return {"map": 0.0, "map50": 0.0, "mask_map": 0.0, "mask_map50": 0.0, **metrics}
    (boxes, masks) = coco_stats(ground_truth_with_masks(dataset), results, ("bbox", "segm"))
    return {"map": boxes[0], "map50": boxes[1], "mask_map": masks[0], "mask_map50": masks[1], **metrics}


def segment_dataset(segmenter: InstanceSegmenter, dataset: DetectionSet) -> list[tuple]:
    """Every image through ``segmenter``: (image id, boxes in original pixels, scores, classes,
    full-size masks)."""
    found = []
    for sample in dataset.samples:
        instances = segmenter(sample.image).instances
        found.append((sample.image_id, np.array([i.box for i in instances], np.float32).reshape(-1, 4),
                      np.array([i.score for i in instances], np.float32), np.array([i.index for i in instances]),
                      [i.mask for i in instances]))
    return found


def evaluate_instance_segmenter(segmenter: InstanceSegmenter, dataset: DetectionSet) -> dict:
    """Box and mask mAP of an instance segmenter pipeline (a .tflite file, or a Mask R-CNN Keras
    model behind ``keras_backend``), opened with the evaluation's options."""
    return coco_instance_map(dataset, segment_dataset(segmenter, dataset))
