"""Detection mAP of any detector pipeline (YOLO, R-CNN, Fast R-CNN, Faster R-CNN; a .tflite file
or a Keras model behind ``keras_backend``): each image goes through the pipeline's own
pre-processing, backend and decoding, and only the boxes it returns are scored."""

from __future__ import annotations

import numpy as np

from edgecnn.data.detection import DetectionSet
from edgecnn.evaluation.inputs import with_progress
from edgecnn.evaluation.metrics import coco_map
from edgecnn.runtime.detection import RawDetections
from edgecnn.runtime.detector import DetectionResult, Detector


def as_raw(result: DetectionResult) -> RawDetections:
    """A pipeline's detections as arrays (boxes in the image's own pixels)."""
    found = result.detections
    return RawDetections(np.array([d.box for d in found], np.float32).reshape(-1, 4),
                         np.array([d.score for d in found], np.float32), np.array([d.index for d in found], np.int64))


def detect_dataset(detector: Detector, dataset: DetectionSet, proposals: list[np.ndarray] | None = None,
                   progress: bool = False) -> list[tuple[int, RawDetections]]:
    """Every image of ``dataset`` through ``detector``: (image id, detections). A detector that
    classifies proposals (R-CNN, Fast R-CNN) gets each image's selective-search ``proposals``
    (computed, or read from their cache, when not given), the same ones it would search for."""
    if proposals is None and (detector.takes_proposals or detector.warps_regions):
        from edgecnn.data.proposals import dataset_proposals

        proposals = dataset_proposals(dataset.samples)
    found = []
    for index in with_progress(range(len(dataset.samples)), progress, "evaluating"):
        sample = dataset.samples[index]
        regions = proposals[index] if proposals is not None else None
        found.append((sample.image_id, as_raw(detector(sample.image, proposals=regions))))
    return found


def evaluate_detector(detector: Detector, dataset: DetectionSet, proposals: list[np.ndarray] | None = None) -> dict:
    """{map, map50, images, detections}; ``detector`` opened with the
    evaluation's options (``metrics.EVALUATION_OPTIONS``)."""
    return coco_map(dataset, detect_dataset(detector, dataset, proposals))
