"""mIoU and pixel accuracy of any segmenter pipeline (a .tflite file, or a Keras model behind
``keras_backend``): each image through the pipeline's letterbox, backend and class map."""

from __future__ import annotations

import numpy as np

from edgecnn.data.segmentation import SegmentationSet
from edgecnn.evaluation.inputs import as_pixels
from edgecnn.evaluation.metrics import segmentation_metrics
from edgecnn.runtime.segmenter import Segmenter


def evaluate_segmenter(segmenter: Segmenter, spec, split: str = "val", limit: int | None = None) -> dict:
    """On the data's images at the model's input size (letterboxed with their masks by the
    loader, so the class maps and the masks line up pixel for pixel)."""
    from edgecnn.data.segmentation import load_segmentation_samples

    return segmentation_set_metrics(segmenter, load_segmentation_samples(spec, segmenter.size, split, limit))


def segmentation_set_metrics(segmenter: Segmenter, dataset: SegmentationSet, num_classes: int | None = None) -> dict:
    """{miou, pixel_acc, per_class_iou} of ``segmenter`` on a loaded set (images and masks at
    the model's input size); ``num_classes`` where the data names more classes than the model."""
    predicted = np.stack([segmenter(picture).class_map for picture in as_pixels(dataset.images)])
    return segmentation_metrics(predicted, dataset.masks, num_classes or segmenter.num_classes)
