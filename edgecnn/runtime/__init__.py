"""The device runtime: runs .tflite/LiteRT files with the base install only.

    import edgecnn.runtime
    pipeline = edgecnn.runtime.open("model.tflite")   # the pipeline the file's metadata names
    result = pipeline(image)                          # any size; gray, RGB or RGBA; 8 or 16 bit

Never import TensorFlow or Keras here (a test checks it in a fresh process): a Raspberry Pi or
phone has neither. Nothing here imports the workstation side of edgecnn either.
"""

from edgecnn.runtime.classifier import ClassificationResult, Classifier, Prediction
from edgecnn.runtime.detector import Detection, DetectionResult, Detector
from edgecnn.runtime.drawing import draw, draw_classification, draw_detections, draw_instances, draw_segmentation
from edgecnn.runtime.engine import Engine, available_backends, load_engine
from edgecnn.runtime.images import read_image
from edgecnn.runtime.inspection import inspect_model
from edgecnn.runtime.instance_segmenter import Instance, InstanceSegmentationResult, InstanceSegmenter
from edgecnn.runtime.metadata import ModelMetadata, read_metadata
from edgecnn.runtime.runner import Runner
from edgecnn.runtime.segmenter import SegmentationResult, SegmentInstance, Segmenter
from edgecnn.runtime.tasks import PIPELINES, open, pipeline_options, task_of
from edgecnn.runtime.translator import TranslationResult, Translator

__all__ = [
    "PIPELINES", "ClassificationResult", "Classifier", "Detection", "DetectionResult", "Detector", "Engine",
    "Instance", "InstanceSegmentationResult", "InstanceSegmenter", "ModelMetadata", "Prediction", "Runner", "SegmentInstance", "SegmentationResult", "Segmenter",
    "TranslationResult", "Translator", "available_backends", "draw", "draw_classification", "draw_detections", "draw_instances",
    "draw_segmentation", "inspect_model", "load_engine", "pipeline_options", "read_image", "read_metadata", "task_of",
]  # open is left out of __all__: a star import must not shadow the builtin open
