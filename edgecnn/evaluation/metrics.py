"""The metrics themselves, with the standard definitions: COCO mAP through pycocotools (COCO's own
evaluation code, no home-made mAP), segmentation mIoU and pixel accuracy from one confusion matrix."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable

import numpy as np

from edgecnn.data.detection import DetectionSet, coco_ground_truth
from edgecnn.runtime.detection import RawDetections

# COCO evaluation settings: a low score floor and up to 100 detections per image
EVAL_SCORE_THRESHOLD = 0.01
EVAL_MAX_DETECTIONS = 100
# the options evaluation opens each task's pipeline with (the rest are the pipeline's defaults)
EVALUATION_OPTIONS = {
    "classification": {"top_k": 1},
    "detection": {"score_threshold": EVAL_SCORE_THRESHOLD, "max_detections": EVAL_MAX_DETECTIONS},
    "instance_segmentation": {"score_threshold": EVAL_SCORE_THRESHOLD, "max_detections": EVAL_MAX_DETECTIONS},
    "generation": {"edges": "given"},  # the evaluation data gives the edge drawings themselves
}

METRIC_KEYS = ("top1", "map", "map50", "mask_map", "mask_map50", "miou", "pixel_acc", "l1", "fcn_miou",
               "fcn_pixel_acc", "real_fcn_miou", "real_fcn_pixel_acc")


def coco_map(dataset: DetectionSet, detections: Iterable[tuple[int, RawDetections]]) -> dict:
    """mAP@[.5:.95] and mAP@.5 of ``detections`` (image id, boxes in original pixels)."""
    results = [
        {"image_id": int(image_id), "category_id": int(cls) + 1,
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], "score": float(score)}
        for image_id, found in detections
        for b, score, cls in zip(found.boxes, found.scores, found.classes)
    ]
    if not results:
        return {"map": 0.0, "map50": 0.0, "images": len(dataset.samples), "detections": 0}
    (overall, at_50), = coco_stats(coco_ground_truth(dataset), results, ("bbox",))
    return {"map": overall, "map50": at_50, "images": len(dataset.samples), "detections": len(results)}

def coco_stats(truth: dict, results: list[dict], kinds: tuple[str, ...]) -> list[tuple[float, float]]:
    """(mAP@[.5:.95], mAP@.5) per COCOeval ``kinds`` (bbox, segm) of ``results`` against the
    ground-truth document ``truth``, by pycocotools (quietly: it prints its tables on stdout)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    stats = []
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = truth
        ground_truth.createIndex()
        predicted = ground_truth.loadRes(results)
        for kind in kinds:
            evaluator = COCOeval(ground_truth, predicted, kind)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            stats.append((float(evaluator.stats[0]), float(evaluator.stats[1])))
    return stats

def segmentation_metrics(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> dict:
    """Mean IoU over the classes that occur (in the truth or the prediction) and pixel accuracy,
    from one confusion matrix over all images; IGNORE pixels are left out."""
    from edgecnn.data.segmentation import IGNORE

    valid = truth != IGNORE
    pairs = truth[valid].astype(np.int64) * num_classes + np.clip(predicted[valid], 0, num_classes - 1)
    confusion = np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    present = union > 0
    iou = np.where(present, intersection / np.maximum(union, 1), np.nan)
    return {"miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "pixel_acc": float(intersection.sum() / max(confusion.sum(), 1)),
            "per_class_iou": [None if np.isnan(v) else round(float(v), 4) for v in iou],
            "images": len(truth)}
