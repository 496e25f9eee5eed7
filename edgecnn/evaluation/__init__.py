"""Evaluation: one module per task (classification, detection, segmentation, instances,
generation) over shared metrics and inputs; ``evaluate`` (task_metrics) takes any model or file."""

from edgecnn.evaluation.metrics import METRIC_KEYS
from edgecnn.evaluation.task_metrics import evaluate

__all__ = ["METRIC_KEYS", "evaluate"]
