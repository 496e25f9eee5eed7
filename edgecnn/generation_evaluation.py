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

from edgecnn.data.translation import TranslationSet, from_unit_range, to_unit_range
from edgecnn.errors import EdgeCNNError

log = logging.getLogger("edgecnn.evaluation")

Judge = Callable[[np.ndarray], np.ndarray]  # uint8 picture (H, W, C) -> (H, W) class ids
BATCH = 16


def keras_generate(generator, pictures: np.ndarray) -> np.ndarray:
    """uint8 pictures -> the Keras generator's uint8 pictures (inputs and outputs in [-1, 1])."""
    return from_unit_range(generator.predict(to_unit_range(pictures), batch_size=BATCH, verbose=0))


def open_judge(judge, trust: bool = False, threads: int | None = None) -> tuple[Judge, int, str]:
    """The segmenter ``judge`` (a Keras model, a .keras/.h5 path or a .tflite path) as a function
    from a picture to its class map at the picture's size, its class count and its name."""
    if isinstance(judge, (str, os.PathLike)):
        path = Path(judge)
        if not path.is_file():
            raise EdgeCNNError(f"Judge model '{path}' does not exist.",
                               "Train a segmenter on the real pictures first, e.g. `edgecnn train shapes_judge --out "
                               "runs/shapes_judge`, and pass runs/shapes_judge/model.keras.")
        if path.suffix == ".tflite":
            from edgecnn.runtime.segmenter import Segmenter

            segmenter = Segmenter(path, accelerator="cpu", threads=threads)
            return (lambda picture: segmenter(picture).class_map), segmenter.num_classes, str(path)
        from edgecnn.export.keras_io import load_model

        name, judge = str(path), load_model(path, trust=trust)
    else:
        name = getattr(judge, "name", "judge")
    return _keras_judge(judge), int(judge.outputs[0].shape[-1]), name


def _keras_judge(model) -> Judge:
    from edgecnn.export.metadata import infer_task
    from edgecnn.runtime.images import letterbox
    from edgecnn.runtime.segmenter import original_class_map

    if infer_task(model) != "segmentation":
        raise EdgeCNNError(f"The judge '{model.name}' is not a segmentation model.",
                           "The FCN-score's judge is a segmenter trained on the real pictures (e.g. shapes_judge).")
    height, width, channels = (int(d) for d in model.input_shape[1:])

    def label(picture: np.ndarray) -> np.ndarray:  # as the runtime Segmenter does: letterbox, [0, 1]
        fitted, fit = letterbox(picture if picture.shape[-1] == 3 else np.repeat(picture, 3, axis=-1), height, width)
        if channels == 1:
            fitted = fitted.mean(axis=2, keepdims=True)
        logits = np.asarray(model(fitted[None].astype(np.float32) / 255.0, training=False))[0]
        return original_class_map(logits, fit, picture.shape[1], picture.shape[0])

    return label


def fcn_score(pictures: np.ndarray, labels: np.ndarray, judge: Judge, num_classes: int) -> dict:
    """The judge's mIoU and pixel accuracy on ``pictures`` against ``labels`` (N, H, W)."""
    from edgecnn.evaluation import segmentation_metrics

    predicted = np.stack([judge(picture) for picture in pictures])
    return segmentation_metrics(predicted, labels, num_classes)


def generation_metrics(generated: np.ndarray, data: TranslationSet, judge=None, trust: bool = False) -> dict:
    """L1 to the targets (paired data) and, with a ``judge``, the FCN-score of ``generated``
    (uint8, one per ``data.a``) beside the real pictures'."""
    metrics: dict = {"images": len(generated)}
    if data.paired:
        metrics["l1"] = float(np.mean(np.abs(to_unit_range(generated) - to_unit_range(data.b[:len(generated)]))))
    if judge is None:
        return metrics
    if data.labels is None:
        raise EdgeCNNError(f"'{data.source}' has no class labels, so the FCN-score cannot be computed.",
                           "Use builtin:shapes, masks:DIR with --edges, or add DIR/masks/NAME.png (pixel = class "
                           "id) beside pairs:DIR's A/ and B/; or leave out --judge for L1 only.")
    label, num_classes, name = open_judge(judge, trust)
    labels = data.labels[:len(generated)]
    fake = fcn_score(generated, labels, label, num_classes)
    real = fcn_score(data.b[:len(generated)], labels, label, num_classes)
    log.info("FCN-score: generated mIoU %.4f, real %.4f", fake["miou"], real["miou"])
    return {**metrics, "fcn_miou": fake["miou"], "fcn_pixel_acc": fake["pixel_acc"],
            "fcn_per_class_iou": fake["per_class_iou"], "real_fcn_miou": real["miou"],
            "real_fcn_pixel_acc": real["pixel_acc"], "real_fcn_per_class_iou": real["per_class_iou"],
            "fcn_miou_ratio": fake["miou"] / real["miou"] if real["miou"] else None, "judge": name}


def translation_data(spec, size, split: str, limit: int | None, edges: bool) -> TranslationSet:
    from edgecnn.data.translation import load_translation_samples

    data = load_translation_samples(spec, size, split, limit, edges)
    log.info("evaluating on %d %s", len(data.a), "edges -> photo pairs" if edges else "pictures")
    return data


def evaluate_keras_generator(generator, spec, split: str = "val", limit: int | None = None, edges: bool = False,
                             judge=None, trust: bool = False) -> dict:
    size = tuple(int(d) for d in generator.input_shape[1:])
    data = translation_data(spec, size, split, limit, edges)
    return generation_metrics(keras_generate(generator, data.a), data, judge, trust)


def evaluate_tflite_generator(model_bytes: bytes, spec, split: str = "val", limit: int | None = None,
                              edges: bool = False, judge=None, accelerator: str = "cpu", threads: int | None = None,
                              trust: bool = False) -> dict:
    """Through the runtime Translator (its resizing and value mapping), one picture at a time."""
    from edgecnn.runtime.translator import Translator

    translator = Translator(model_bytes, accelerator, threads)
    data = translation_data(spec, translator.size, split, limit, edges)
    generated = np.stack([translator(picture).image for picture in data.a])
    metrics = generation_metrics(generated, data, judge, trust)
    return {**metrics, "backend": translator.runner.backend, "accelerator": translator.runner.accelerator,
            "fully_accelerated": translator.runner.fully_accelerated}


def run_settings(model_path: Path) -> tuple[str | None, bool]:
    """The judge and edges setting of the recipe a model was trained from (``recipe.yaml``
    that `edgecnn train` writes beside it), or (None, False) when there is none."""
    recipe = model_path.parent / "recipe.yaml"
    if not recipe.is_file():
        return None, False
    try:  # PyYAML comes with the workstation install; a device evaluating a .tflite may lack it
        import yaml
    except ImportError:
        return None, False
    try:
        document = yaml.safe_load(recipe.read_text()) or {}
    except yaml.YAMLError:
        return None, False
    judge = (document.get("evaluation") or {}).get("judge")
    return judge, bool((document.get("data") or {}).get("edges", False))
