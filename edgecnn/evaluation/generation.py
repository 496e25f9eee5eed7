"""How good a generator's pictures are: the FCN-score of the Pix2Pix paper (Isola et al. 2017,
section 4.2) and the L1 distance to the target pictures.

The FCN-score asks whether generated pictures are recognisable: a segmenter trained on the real
pictures (the *judge*) labels the generated ones, and its per-pixel accuracy and mean class IoU
against the class maps the pictures should show are compared with the same figures on the real
pictures (what the judge can do at best). The paper's judge is an FCN-8s trained on Cityscapes;
here any edgecnn segmenter (.keras/.h5 or .tflite) trained on the real pictures of the data.

Keys: ``l1`` (mean |generated - target| of the 8-bit pictures mapped to [-1, 1], paired data only),
``fcn_miou``, ``fcn_pixel_acc`` (judge on generated), ``real_fcn_miou``, ``real_fcn_pixel_acc``
(judge on the real targets), ``fcn_miou_ratio`` (generated / real).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.data.translation import TranslationSet, to_unit_range
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.translator import Translator

log = logging.getLogger("edgecnn.evaluation")

def generate(translator: Translator, pictures: np.ndarray) -> np.ndarray:
    """uint8 pictures -> the translator pipeline's uint8 pictures (a .tflite file, or a Keras
    generator behind ``keras_backend``), one at a time as on a device."""
    return np.stack([translator(picture).image for picture in pictures])


class FcnJudge:
    """A segmenter as the FCN-score's judge: called with uint8 pictures (N, H, W, C), it returns
    their class maps (N, H, W) at the pictures' size, as the runtime Segmenter makes them."""

    def __init__(self, label_batch: Callable[[np.ndarray], np.ndarray], num_classes: int, name: str) -> None:
        self.label_batch, self.num_classes, self.name = label_batch, num_classes, name

    def __call__(self, pictures: np.ndarray) -> np.ndarray:
        return self.label_batch(pictures)


def open_judge(judge, trust: bool = False, threads: int | None = None) -> FcnJudge:
    """The segmenter ``judge`` (an ``FcnJudge``, a Keras model, or a .keras/.h5/.tflite path)
    as an ``FcnJudge``; open it once where several sets of pictures are judged."""
    if isinstance(judge, FcnJudge):
        return judge
    if isinstance(judge, (str, os.PathLike)):
        path = Path(judge)
        if not path.is_file():
            raise EdgeCNNError(f"Judge model '{path}' does not exist.",
                               "Train a segmenter on the real pictures first, e.g. `edgecnn train shapes_judge --out "
                               "runs/shapes_judge`, and pass runs/shapes_judge/model.keras.")
        if path.suffix == ".tflite":
            from edgecnn.runtime.segmenter import Segmenter

            return _pipeline_judge(Segmenter(path, accelerator="cpu", threads=threads), str(path))
        from edgecnn.export.keras_io import load_model

        name, judge = str(path), load_model(path, trust=trust)
    else:
        name = getattr(judge, "name", "judge")
    from edgecnn.evaluation.keras_backend import keras_pipeline
    from edgecnn.export.metadata import infer_task

    if infer_task(judge) != "segmentation":
        raise EdgeCNNError(f"The judge '{judge.name}' is not a segmentation model.",
                           "The FCN-score's judge is a segmenter trained on the real pictures (e.g. shapes_judge).")
    return _pipeline_judge(keras_pipeline(judge, "segmentation"), name)


def _pipeline_judge(segmenter, name: str) -> FcnJudge:
    return FcnJudge(lambda pictures: np.stack([segmenter(picture).class_map for picture in pictures]),
                    segmenter.num_classes, name)


def fcn_score(pictures: np.ndarray, labels: np.ndarray, judge: FcnJudge) -> dict:
    """The judge's mIoU and pixel accuracy on ``pictures`` against ``labels`` (N, H, W)."""
    from edgecnn.evaluation.metrics import segmentation_metrics

    return segmentation_metrics(judge(pictures), labels, judge.num_classes)


def generation_metrics(generated: np.ndarray, data: TranslationSet, judge=None, trust: bool = False) -> dict:
    """L1 to the targets (paired data) and, with a ``judge`` (see ``open_judge``), the FCN-score of
    ``generated`` (uint8, one per ``data.a``) beside the real pictures'."""
    metrics: dict = {"images": len(generated)}
    if data.paired:
        metrics["l1"] = float(np.mean(np.abs(to_unit_range(generated) - to_unit_range(data.b[:len(generated)]))))
    if judge is None:
        return metrics
    return {**metrics, **fcn_metrics(generated, data, judge, trust)}


def fcn_metrics(generated: np.ndarray, data: TranslationSet, judge, trust: bool = False) -> dict:
    """The FCN-score keys (``fcn_*``, ``real_fcn_*``, ``fcn_miou_ratio``, ``judge``) of
    ``generated`` (uint8, one per ``data.a``) against ``data.labels``."""
    if data.labels is None:
        raise EdgeCNNError(f"'{data.source}' has no class labels, so the FCN-score cannot be computed.",
                           "Use builtin:shapes, masks:DIR with --edges, or add DIR/masks/NAME.png (pixel = class "
                           "id) beside pairs:DIR's A/ and B/; or leave out --judge for L1 only.")
    judge = open_judge(judge, trust)
    labels = data.labels[:len(generated)]
    fake = fcn_score(generated, labels, judge)
    real = fcn_score(data.b[:len(generated)], labels, judge)
    log.info("FCN-score: generated mIoU %.4f, real %.4f", fake["miou"], real["miou"])
    return {"fcn_miou": fake["miou"], "fcn_pixel_acc": fake["pixel_acc"], "fcn_per_class_iou": fake["per_class_iou"],
            "real_fcn_miou": real["miou"], "real_fcn_pixel_acc": real["pixel_acc"],
            "real_fcn_per_class_iou": real["per_class_iou"],
            "fcn_miou_ratio": fake["miou"] / real["miou"] if real["miou"] else None, "judge": judge.name}


def translation_data(spec, size, split: str, limit: int | None, edges: bool) -> TranslationSet:
    from edgecnn.data.translation import load_translation_samples

    data = load_translation_samples(spec, size, split, limit, edges)
    log.info("evaluating on %d %s", len(data.a), "edges -> photo pairs" if edges else "pictures")
    return data


def evaluate_generator(translator: Translator, spec, split: str = "val", limit: int | None = None,
                       edges: bool | None = None, judge=None, trust: bool = False) -> dict:
    """Through the translator pipeline (its resizing and value mapping), one picture at a time;
    ``edges`` defaults to what the model's metadata says its input is. The pairs' A side is
    what the model is given (edges drawn here when ``edges``): open the translator with
    ``edges="given"`` (``metrics.EVALUATION_OPTIONS``) so that it draws none."""
    data = translation_data(spec, translator.size, split, limit, translator.takes_edges if edges is None else edges)
    return generation_metrics(generate(translator, data.a), data, judge, trust)


def run_settings(model_path: Path) -> tuple[str | None, bool | None]:
    """The judge and edges setting of the recipe a model was trained from (``recipe.yaml``
    that `edgecnn train` writes beside it), or (None, None) when there is none."""
    recipe = model_path.parent / "recipe.yaml"
    if not recipe.is_file():
        return None, None
    try:  # PyYAML comes with the workstation install; a device evaluating a .tflite may lack it
        import yaml
    except ImportError:
        return None, None
    try:
        document = yaml.safe_load(recipe.read_text()) or {}
    except yaml.YAMLError:
        return None, None
    judge = (document.get("evaluation") or {}).get("judge")
    return judge, bool((document.get("data") or {}).get("edges", False))
