"""One description per detector family, read by conversion (the model a file holds, its parity
decoding, MediaPipe's device head), metadata (the decoding and what each output holds),
training (the task that trains it) and evaluation (through the metadata the runtime reads):
adding a family is one entry here plus its model file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecnn.models.fast_rcnn import fast_rcnn_layout, is_fast_rcnn
from edgecnn.models.faster_rcnn import has_masks, is_faster_rcnn, region_layout
from edgecnn.models.rcnn import is_rcnn, rcnn_layout
from edgecnn.models.yolo import detection_layout, has_yolo_heads


@dataclass(frozen=True)
class DetectorFamily:
    name: str  # the zoo family: its model file, models/<name>.py
    task: str  # detection or instance_segmentation
    matches: Callable[[Any], bool]  # is this Keras model (trained or deployed) one of the family?
    layout: Callable[[Any], dict]  # the decoding the runtime reads, from the graph (metadata ``decoding``)
    output_kinds: tuple[str, ...]  # what each output of the file holds, in order
    training_task: str  # "module:Class" of the training task, under edgecnn.training
    device_head: bool = False  # the file gets the anchor-per-point head MediaPipe's box decoder reads
    proposal_input: bool = False  # the file takes proposal boxes beside the image (runtime's search)
    region_decoded: bool = False  # decoded per proposal by runtime.regions.region_postprocess

    def deployed(self, model):
        """The Keras model the device file holds: the model's last outputs, the ones a device
        uses (training-only outputs such as the RPN's or R-CNN's softmax head dropped). Idempotent."""
        from edgecnn._keras import keras

        if len(model.outputs) == len(self.output_kinds):
            return model
        return keras.Model(model.inputs, model.outputs[-len(self.output_kinds):], name=model.name)


REGION_OUTPUTS = ("proposals", "class_probabilities", "box_deltas")  # a Faster R-CNN file's outputs

# most specific first: a Mask R-CNN is also a Faster R-CNN
DETECTOR_FAMILIES = (
    DetectorFamily("mask_rcnn", "instance_segmentation", lambda m: is_faster_rcnn(m) and has_masks(m),
                   region_layout, (*REGION_OUTPUTS, "mask_probabilities"), "mask_rcnn:MaskRCNNTask",
                   region_decoded=True),
    DetectorFamily("faster_rcnn", "detection", is_faster_rcnn, region_layout, REGION_OUTPUTS,
                   "region_detection:RegionDetectionTask",
                   region_decoded=True),
    DetectorFamily("fast_rcnn", "detection", is_fast_rcnn, fast_rcnn_layout, ("class_probabilities", "box_deltas"),
                   "fast_rcnn:FastRCNNTask", proposal_input=True),
    DetectorFamily("rcnn", "detection", is_rcnn, rcnn_layout, ("svm_scores", "box_deltas"), "rcnn:RCNNTask"),
    DetectorFamily("yolo", "detection", has_yolo_heads, detection_layout, ("box_log_distances", "class_logits"),
                   "detection:DetectionTask", device_head=True),
)


def detector_family(model) -> DetectorFamily | None:
    """The family of a Keras model, trained or deployed; None for a model of no detector family."""
    return next((family for family in DETECTOR_FAMILIES if family.matches(model)), None)


def family_named(name: str) -> DetectorFamily | None:
    """The description of the zoo family ``name`` (``models.zoo.family_of``), None if it is not a detector."""
    return next((family for family in DETECTOR_FAMILIES if family.name == name), None)


def deployed_model(model):
    """The Keras model a device file of ``model`` holds (see ``DetectorFamily.deployed``); the
    model itself for other tasks."""
    family = detector_family(model)
    return model if family is None else family.deployed(model)
