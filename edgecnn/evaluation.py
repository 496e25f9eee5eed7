"""Task metrics with the standard definitions: detection mAP through pycocotools (COCO's own
evaluation code, no home-made mAP), classification top-1, segmentation mIoU and pixel accuracy.
``evaluate`` (``edgecnn.evaluate``, `edgecnn eval`) takes a .keras/.h5 model or a .tflite file.

A .keras model and a .tflite file go through the same pre- and post-processing (letterbox,
``edgecnn.runtime.detection.postprocess``), so their figures are comparable.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgecnn.data.detection import DetectionSet, coco_ground_truth
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import LOG_DISTANCES, RawDetections, postprocess
from edgecnn.runtime.images import letterbox
from edgecnn.runtime.regions import padded_proposals, region_postprocess
from edgecnn.runtime.tasks import open as open_pipeline

log = logging.getLogger("edgecnn.evaluation")

# COCO evaluation settings: a low score floor and up to 100 detections per image
EVAL_SCORE_THRESHOLD = 0.01
EVAL_MAX_DETECTIONS = 100


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


def detect_dataset(dataset: DetectionSet, input_size: tuple[int, int, int], strides: tuple[int, ...],
                   infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], batch_size: int = 1,
                   progress: bool = False, box_encoding: str = LOG_DISTANCES) -> list[tuple[int, RawDetections]]:
    """Letterbox every image, run ``infer`` on a batch (B, H, W, C) float32 in [0, 1] returning
    raw (B, N, 4) and (B, N, C) outputs, post-process and map boxes back to each image."""
    height, width = input_size[:2]
    found = []
    samples = dataset.samples
    for start in _progress(range(0, len(samples), batch_size), progress, "evaluating"):
        chunk = samples[start:start + batch_size]
        images, fits = letterboxed(chunk, input_size)
        raw_boxes, raw_scores = infer(images)
        for sample, fit, boxes, scores in zip(chunk, fits, raw_boxes, raw_scores):
            result = postprocess(boxes, scores, (height, width), strides, EVAL_SCORE_THRESHOLD, 0.5,
                                 EVAL_MAX_DETECTIONS, box_encoding=box_encoding)
            result.boxes = fit.to_original(result.boxes, sample.image.shape[1], sample.image.shape[0])
            found.append((sample.image_id, result))
    return found


def _progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, unit="batch", leave=False)


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


def letterboxed(samples, input_size: tuple[int, int, int]) -> tuple[np.ndarray, list]:
    """The samples' images letterboxed to the model input, float32 in [0, 1], and their fits."""
    return letterboxed_images([sample.image for sample in samples], input_size)


def letterboxed_images(pictures, input_size: tuple[int, int, int]) -> tuple[np.ndarray, list]:
    """RGB uint8 pictures letterboxed to the model input, float32 in [0, 1], and their fits."""
    height, width, channels = input_size
    images, fits = [], []
    for picture in pictures:
        image, fit = letterbox(picture, height, width)
        if channels == 1:
            image = image.mean(axis=2, keepdims=True)
        images.append(image.astype(np.float32) / 255.0)
        fits.append(fit)
    return np.stack(images), fits


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


def _classification_data(spec, size, split: str, limit: int | None):
    from edgecnn.data.images import load_classification_samples

    return load_classification_samples(spec, size, limit, split)


def evaluate_keras_classifier(model, spec, split: str = "val", limit: int | None = None) -> dict:
    size = tuple(int(d) for d in model.input_shape[1:])
    images, labels, _ = _classification_data(spec, size, split, limit)
    logits = np.asarray(model.predict(images, batch_size=32, verbose=0))
    return {"top1": float(np.mean(logits.argmax(axis=1) == labels)), "images": len(labels)}


def evaluate_tflite_classifier(model_bytes: bytes, spec, split: str = "val", limit: int | None = None,
                               accelerator: str = "cpu", threads: int | None = None) -> dict:
    classifier = open_pipeline(model_bytes, accelerator, threads, task="classification", top_k=1)
    images, labels, _ = _classification_data(spec, classifier.size, split, limit)
    scale = 255.0 * classifier.scale
    hits = [int(np.argmax(classifier.runner((image * scale + classifier.offset)[None].astype(np.float32))[0]) == label)
            for image, label in zip(images, labels)]
    return {"top1": float(np.mean(hits)), "images": len(labels), "backend": classifier.runner.backend,
            "accelerator": classifier.runner.accelerator, "fully_accelerated": classifier.runner.fully_accelerated}


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


def evaluate_keras_segmenter(model, spec, split: str = "val", limit: int | None = None) -> dict:
    from edgecnn.data.segmentation import load_segmentation_samples

    size = tuple(int(d) for d in model.input_shape[1:])
    dataset = load_segmentation_samples(spec, size, split, limit)
    logits = np.asarray(model.predict(dataset.images, batch_size=16, verbose=0))
    return segmentation_metrics(logits.argmax(axis=-1), dataset.masks, int(logits.shape[-1]))


def evaluate_tflite_segmenter(model_bytes: bytes, spec, split: str = "val", limit: int | None = None,
                              accelerator: str = "cpu", threads: int | None = None) -> dict:
    """Through the runtime Segmenter on the letterboxed inputs (class maps at input size)."""
    from edgecnn.data.segmentation import load_segmentation_samples

    segmenter = open_pipeline(model_bytes, accelerator, threads, task="segmentation")
    dataset = load_segmentation_samples(spec, segmenter.size, split, limit)
    predicted = np.stack([segmenter.class_map(image) for image in dataset.images])
    metrics = segmentation_metrics(predicted, dataset.masks, segmenter.num_classes)
    return {**metrics, "backend": segmenter.runner.backend, "accelerator": segmenter.runner.accelerator,
            "fully_accelerated": segmenter.runner.fully_accelerated}


METRIC_KEYS = ("top1", "map", "map50", "mask_map", "mask_map50", "miou", "pixel_acc", "l1", "fcn_miou",
               "fcn_pixel_acc", "real_fcn_miou", "real_fcn_pixel_acc")


def evaluate(model_or_path, data: str, *, split: str | None = None, limit: int | None = None,
             accelerator: str = "cpu", threads: int | None = None, task: str | None = None,
             trust: bool = False, judge=None, edges: bool | None = None) -> dict:
    """Task metrics of a Keras model, a .keras/.h5 file or a .tflite file (through the device
    runtime's pipeline, on ``accelerator``) on the DATA spec ``data``: classification {top1},
    detection {map, map50}, segmentation {miou, pixel_acc}, instance segmentation {map, map50,
    mask_map, mask_map50}, generation {l1, and with a segmenter ``judge`` fcn_miou, fcn_pixel_acc,
    real_fcn_miou, real_fcn_pixel_acc: see ``edgecnn.generation_evaluation``}; plus ``model``,
    ``data``, ``split`` and ``images``. ``split`` defaults to val for builtin sets and all for your
    own files. For a generator, ``judge`` and ``edges`` (the input is the pictures' Canny edges)
    default to the settings of the recipe it was trained from (recipe.yaml beside the file);
    a .tflite file's own metadata says whether it takes edges where there is no recipe.

    >>> edgecnn.evaluate("runs/digits/model_int8.tflite", "builtin:digits")["top1"]   # doctest: +SKIP
    """
    from edgecnn.data.specs import parse_spec

    spec = parse_spec(data)
    split = split or ("val" if spec.kind == "builtin" else "all")
    generation = {"judge": judge, "edges": edges, "trust": trust}
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if not path.is_file():
            raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path.")
        name = str(path)
        from edgecnn.generation_evaluation import run_settings

        recipe_judge, recipe_edges = run_settings(path)
        generation = {"judge": judge or recipe_judge, "edges": recipe_edges if edges is None else edges,
                      "trust": trust}
        if path.suffix == ".tflite":
            metrics = _evaluate_tflite(path.read_bytes(), spec, split, limit, accelerator, threads, task, generation)
        else:
            from edgecnn.export.keras_io import load_model

            log.info(f"loading {path}")
            metrics = _evaluate_keras(load_model(path, trust=trust), spec, split, limit, task, generation)
    else:
        name = getattr(model_or_path, "name", "model")
        metrics = _evaluate_keras(model_or_path, spec, split, limit, task, generation)
    return {"model": name, "data": str(spec), "split": split, **metrics}


def _evaluate_tflite(data: bytes, spec, split: str, limit: int | None, accelerator: str, threads: int | None,
                     task: str | None, generation: dict) -> dict:
    from edgecnn.runtime.metadata import read_metadata

    task = task or getattr(read_metadata(data), "task", None)
    if not task:
        raise EdgeCNNError("This .tflite file carries no edgecnn metadata, so its task is unknown.",
                           "Pass the task (CLI: --task classification|detection|segmentation).")
    if task == "detection":
        return evaluate_tflite_detector(data, _detection_set(spec, split, limit), accelerator, threads)
    if task == "segmentation":
        return evaluate_tflite_segmenter(data, spec, split, limit, accelerator, threads)
    if task == "instance_segmentation":
        from edgecnn.mask_evaluation import evaluate_tflite_instance_segmenter

        return evaluate_tflite_instance_segmenter(data, _detection_set(spec, split, limit, True), accelerator, threads)
    if task == "classification":
        return evaluate_tflite_classifier(data, spec, split, limit, accelerator, threads)
    if task == "generation":
        from edgecnn.generation_evaluation import evaluate_tflite_generator

        return evaluate_tflite_generator(data, spec, split, limit, generation["edges"], generation["judge"],
                                         accelerator, threads, generation["trust"])
    raise EdgeCNNError(f"There is no evaluation metric for task '{task}' yet.")


def _evaluate_keras(model, spec, split: str, limit: int | None, task: str | None, generation: dict) -> dict:
    from edgecnn.export.metadata import infer_task

    task = infer_task(model, task)
    if task == "detection":
        from edgecnn.models.fast_rcnn import is_fast_rcnn
        from edgecnn.models.faster_rcnn import is_faster_rcnn
        from edgecnn.models.rcnn import is_rcnn
        from edgecnn.models.yolo import detection_layout

        if is_faster_rcnn(model):
            return evaluate_keras_region_detector(model, _detection_set(spec, split, limit))
        if is_fast_rcnn(model):
            return evaluate_keras_fast_rcnn(model, _detection_set(spec, split, limit))
        if is_rcnn(model):
            return evaluate_keras_rcnn(model, _detection_set(spec, split, limit))
        strides = tuple(detection_layout(model)["strides"])
        return evaluate_keras_detector(model, _detection_set(spec, split, limit), strides)
    if task == "segmentation":
        return evaluate_keras_segmenter(model, spec, split, limit)
    if task == "instance_segmentation":
        from edgecnn.mask_evaluation import evaluate_keras_instance_segmenter

        return evaluate_keras_instance_segmenter(model, _detection_set(spec, split, limit, True))
    if task == "classification":
        return evaluate_keras_classifier(model, spec, split, limit)
    if task == "generation":
        from edgecnn.generation_evaluation import evaluate_keras_generator

        return evaluate_keras_generator(model, spec, split, limit, generation["edges"], generation["judge"],
                                        generation["trust"])
    raise EdgeCNNError(f"There is no evaluation metric for task '{task}' yet.")


def _detection_set(spec, split: str, limit: int | None, with_masks: bool = False) -> DetectionSet:
    from edgecnn.data.detection import load_detection_samples

    dataset = load_detection_samples(spec, split, limit, with_masks)
    log.info(f"evaluating on {len(dataset.samples)} images")
    return dataset
