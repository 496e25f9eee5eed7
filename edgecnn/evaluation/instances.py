"""Instance segmentation metrics with COCO's own evaluation (pycocotools): box mAP (``bbox``)
and mask mAP (``segm``) of a Mask R-CNN, as a .keras model or a .tflite file. Both go through
the runtime's decoding (``decode_instances``), so their figures are comparable; masks travel as
COCO RLE written by the runtime's encoder (``edgecnn.runtime.masks``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgecnn.data.detection import DetectionSet, coco_ground_truth
from edgecnn.errors import EdgeCNNError
from edgecnn.evaluation.inputs import letterboxed
from edgecnn.evaluation.metrics import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, coco_stats
from edgecnn.runtime.instance_segmenter import decode_instances
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


def segment_dataset(dataset: DetectionSet, input_size: tuple[int, int, int], infer: Callable,
                    layout: dict) -> list[tuple]:
    """Letterbox each image, ``infer`` (a (1, H, W, C) float batch in [0, 1] -> the four outputs),
    decode with the runtime's ``decode_instances``."""
    found = []
    for sample in dataset.samples:
        batch, (fit,) = letterboxed([sample], input_size)
        detections, masks, _ = decode_instances(infer(batch), fit, sample.image.shape[:2], input_size[:2],
                                                int(layout["mask_size"]), tuple(layout["delta_weights"]),
                                                EVAL_SCORE_THRESHOLD, 0.5, EVAL_MAX_DETECTIONS)
        boxes = fit.to_original(detections.boxes, sample.image.shape[1], sample.image.shape[0])
        found.append((sample.image_id, boxes, detections.scores, detections.classes, masks))
    return found


def evaluate_keras_instance_segmenter(model, dataset: DetectionSet) -> dict:
    """Box and mask mAP of a Mask R-CNN Keras model (its deployed outputs, batch 1)."""
    from edgecnn.models.faster_rcnn import region_layout

    def infer(batch):
        return [np.asarray(o) for o in model(batch, training=False)[2:]]

    return coco_instance_map(dataset, segment_dataset(dataset, tuple(int(d) for d in model.input_shape[1:]), infer,
                                                      region_layout(model)))


def evaluate_tflite_instance_segmenter(model_bytes: bytes, dataset: DetectionSet, accelerator: str = "cpu",
                                       threads: int | None = None) -> dict:
    from edgecnn.runtime.tasks import open as open_pipeline

    segmenter = open_pipeline(model_bytes, accelerator, threads, task="instance_segmentation",
                              score_threshold=EVAL_SCORE_THRESHOLD, max_detections=EVAL_MAX_DETECTIONS)
    metrics = coco_instance_map(dataset, segment_dataset(dataset, segmenter.size, segmenter.raw,
                                                         segmenter.decoding))
    return {**metrics, "backend": segmenter.runner.backend, "accelerator": segmenter.runner.accelerator,
            "fully_accelerated": segmenter.runner.fully_accelerated}
