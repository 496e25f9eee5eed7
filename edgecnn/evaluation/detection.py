"""Detection mAP of YOLO, R-CNN, Fast R-CNN and Faster R-CNN, Keras models and .tflite files, through
the runtime's decoding (``edgecnn.runtime.detection.postprocess``, ``regions``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgecnn.data.detection import DetectionSet
from edgecnn.evaluation.inputs import letterboxed, with_progress
from edgecnn.evaluation.metrics import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, coco_map
from edgecnn.runtime.detection import LOG_DISTANCES, RawDetections, postprocess
from edgecnn.runtime.regions import padded_proposals, region_postprocess
from edgecnn.runtime.tasks import open as open_pipeline


def detect_dataset(dataset: DetectionSet, input_size: tuple[int, int, int], strides: tuple[int, ...],
                   infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], batch_size: int = 1,
                   progress: bool = False, box_encoding: str = LOG_DISTANCES) -> list[tuple[int, RawDetections]]:
    """Letterbox every image, run ``infer`` on a batch (B, H, W, C) float32 in [0, 1] returning
    raw (B, N, 4) and (B, N, C) outputs, post-process and map boxes back to each image."""
    height, width = input_size[:2]
    found = []
    samples = dataset.samples
    for start in with_progress(range(0, len(samples), batch_size), progress, "evaluating"):
        chunk = samples[start:start + batch_size]
        images, fits = letterboxed(chunk, input_size)
        raw_boxes, raw_scores = infer(images)
        for sample, fit, boxes, scores in zip(chunk, fits, raw_boxes, raw_scores):
            result = postprocess(boxes, scores, (height, width), strides, EVAL_SCORE_THRESHOLD, 0.5,
                                 EVAL_MAX_DETECTIONS, box_encoding=box_encoding)
            result.boxes = fit.to_original(result.boxes, sample.image.shape[1], sample.image.shape[0])
            found.append((sample.image_id, result))
    return found

def evaluate_keras_detector(model, dataset: DetectionSet, strides: tuple[int, ...], batch_size: int = 16) -> dict:
    size = tuple(int(d) for d in model.input_shape[1:])

    def infer(batch):
        boxes, scores = model(batch, training=False)
        return np.asarray(boxes), np.asarray(scores)

    return coco_map(dataset, detect_dataset(dataset, size, strides, infer, batch_size))

def evaluate_keras_region_detector(model, dataset: DetectionSet, batch_size: int = 16) -> dict:
    """mAP of a Faster R-CNN Keras model, decoded by the runtime's ``region_postprocess``."""
    from edgecnn.models.faster_rcnn import region_layout

    def infer(batch):
        return [np.asarray(o) for o in model(batch, training=False)[2:]]  # the deployed outputs

    size = tuple(int(d) for d in model.input_shape[1:])
    delta_weights = tuple(region_layout(model)["delta_weights"])
    return coco_map(dataset, detect_dataset_two_stage(dataset, size, infer, delta_weights, batch_size))

def detect_dataset_two_stage(dataset: DetectionSet, input_size: tuple[int, int, int],
                             infer: Callable[[np.ndarray], list[np.ndarray]], delta_weights: tuple[float, ...],
                             batch_size: int = 1) -> list[tuple[int, RawDetections]]:
    """``detect_dataset`` for a Faster R-CNN: ``infer`` returns its (B, P, 4) proposals, (B, P,
    K + 1) class scores and (B, P, 4K) box deltas."""
    found = []
    for start in range(0, len(dataset.samples), batch_size):
        chunk = dataset.samples[start:start + batch_size]
        images, fits = letterboxed(chunk, input_size)
        proposals, class_scores, box_deltas = infer(images)
        for sample, fit, rows in zip(chunk, fits, zip(proposals, class_scores, box_deltas)):
            result = region_postprocess(*rows, input_size[:2], delta_weights, EVAL_SCORE_THRESHOLD, 0.5,
                                        EVAL_MAX_DETECTIONS)
            result.boxes = fit.to_original(result.boxes, sample.image.shape[1], sample.image.shape[0])
            found.append((sample.image_id, result))
    return found

def evaluate_keras_fast_rcnn(model, dataset: DetectionSet, proposals: list[np.ndarray] | None = None,
                             batch_size: int = 16) -> dict:
    """mAP of a Fast R-CNN Keras model on ``dataset`` with its selective-search ``proposals``
    (computed, or read from their cache, when not given)."""
    from edgecnn.data.proposals import dataset_proposals
    from edgecnn.models.fast_rcnn import fast_rcnn_layout

    layout = fast_rcnn_layout(model)
    proposals = proposals if proposals is not None else dataset_proposals(dataset.samples)
    size = tuple(int(d) for d in model.inputs[0].shape[1:])

    def infer(images, regions):
        return [np.asarray(o) for o in model([images, regions], training=False)]

    return coco_map(dataset, detect_dataset_with_proposals(dataset, size, proposals, layout["proposals"], infer,
                                                           tuple(layout["delta_weights"]), batch_size))

def detect_dataset_with_proposals(dataset: DetectionSet, input_size: tuple[int, int, int],
                                  proposals: list[np.ndarray], count: int,
                                  infer: Callable[[np.ndarray, np.ndarray], list[np.ndarray]],
                                  delta_weights: tuple[float, ...], batch_size: int = 1
                                  ) -> list[tuple[int, RawDetections]]:
    """``detect_dataset`` for a Fast R-CNN: each image's best ``count`` proposals (original
    pixels) go in beside it; ``infer`` returns (B, count, K + 1) scores and (B, count, 4K) deltas."""
    found = []
    for start in range(0, len(dataset.samples), batch_size):
        chunk = dataset.samples[start:start + batch_size]
        images, fits = letterboxed(chunk, input_size)
        padded = [padded_proposals(fit.to_input(boxes), count)
                  for fit, boxes in zip(fits, proposals[start:start + batch_size])]
        class_scores, box_deltas = infer(images, np.stack([regions for regions, _ in padded]))
        for index, (sample, fit, (regions, real)) in enumerate(zip(chunk, fits, padded)):
            result = region_postprocess(regions[:real], class_scores[index][:real], box_deltas[index][:real],
                                        input_size[:2], delta_weights, EVAL_SCORE_THRESHOLD, 0.5, EVAL_MAX_DETECTIONS)
            result.boxes = fit.to_original(result.boxes, sample.image.shape[1], sample.image.shape[0])
            found.append((sample.image_id, result))
    return found

def evaluate_keras_rcnn(model, dataset: DetectionSet, proposals: list[np.ndarray] | None = None,
                        batch_size: int = 256) -> dict:
    """mAP of an R-CNN Keras model: each image's best selective-search proposals warped and
    classified, decoded by the runtime's ``svm_postprocess``."""
    from edgecnn.data.proposals import dataset_proposals
    from edgecnn.models.rcnn import rcnn_layout

    layout = rcnn_layout(model)
    proposals = proposals if proposals is not None else dataset_proposals(dataset.samples)

    def infer(crops):
        outputs = model.predict(crops, batch_size=batch_size, verbose=0)
        return outputs[1], outputs[2]  # svm scores, box deltas (the softmax head only fine-tunes)

    return coco_map(dataset, detect_dataset_warped(dataset, proposals, tuple(layout["region_size"]),
                                                   layout["context"], infer, tuple(layout["delta_weights"])))

def detect_dataset_warped(dataset: DetectionSet, proposals: list[np.ndarray], region_size: tuple[int, int],
                          context: float, infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                          delta_weights: tuple[float, ...]) -> list[tuple[int, RawDetections]]:
    """``detect_dataset`` for an R-CNN: ``infer`` takes (R, h, w, 3) warped regions in [0, 1] and
    returns their (R, K + 1) SVM scores and (R, 4K) deltas."""
    from edgecnn.runtime.regions import MAX_WARPED_REGIONS, no_detections, svm_postprocess, warp_region

    found = []
    for sample, boxes in zip(dataset.samples, proposals):
        regions = boxes[:MAX_WARPED_REGIONS]
        if len(regions) == 0:  # an image too small for any proposal: nothing to warp or classify
            found.append((sample.image_id, no_detections()))
            continue
        crops = np.stack([warp_region(sample.image, box, region_size, context) for box in regions])
        svm_scores, box_deltas = infer(crops.astype(np.float32) / 255.0)
        found.append((sample.image_id, svm_postprocess(regions, svm_scores, box_deltas, sample.image.shape[:2],
                                                       delta_weights, EVAL_SCORE_THRESHOLD, 0.3,
                                                       EVAL_MAX_DETECTIONS)))
    return found

def evaluate_tflite_detector(model_bytes: bytes, dataset: DetectionSet, accelerator: str = "cpu",
                             threads: int | None = None) -> dict:
    detector = open_pipeline(model_bytes, accelerator, threads, task="detection",
                             score_threshold=EVAL_SCORE_THRESHOLD, max_detections=EVAL_MAX_DETECTIONS)

    delta_weights = detector.delta_weights
    if detector.warps_regions:  # the runtime's own warping and per-region invokes
        from edgecnn.data.proposals import dataset_proposals

        found = detect_dataset_warped(dataset, dataset_proposals(dataset.samples), detector.size[:2],
                                      detector.context, detector.classify_regions, delta_weights)
    elif detector.takes_proposals:  # the runtime's own selective search, read from the cache when it ran before
        from edgecnn.data.proposals import dataset_proposals

        def infer(images, regions):
            return detector.raw(images, regions[0])

        found = detect_dataset_with_proposals(dataset, detector.size, dataset_proposals(dataset.samples),
                                              detector.count, infer, delta_weights)
    elif detector.two_stage:
        found = detect_dataset_two_stage(dataset, detector.size, detector.raw, delta_weights)
    else:
        found = detect_dataset(dataset, detector.size, detector.strides, detector.raw, 1,
                               box_encoding=detector.box_encoding)
    metrics = coco_map(dataset, found)
    return {**metrics, "backend": detector.runner.backend, "accelerator": detector.runner.accelerator,
            "fully_accelerated": detector.runner.fully_accelerated}
