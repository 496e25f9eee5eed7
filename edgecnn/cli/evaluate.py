"""`edgecnn eval MODEL --data DATA`: task metrics for a .keras model or a .tflite file.

classification {top1}; detection {map, map50} (pycocotools); segmentation {miou, pixel_acc}.
A .tflite file is evaluated through the runtime pipelines (no TensorFlow needed for it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.cli.common import log, print_json, require_training_stack
from edgecnn.errors import EdgeCNNError


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="task metrics (top1 / map, map50 / miou, pixel_acc) of a model")
    parser.add_argument("model", help="a .keras/.h5 model or a .tflite file")
    parser.add_argument("--data", required=True, metavar="DATA", help="DATA spec, e.g. builtin:shapes, coco:val.json")
    parser.add_argument("--split", choices=["all", "train", "val"],
                        help="which part of DATA (default: val for builtin sets, all for your own files)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many images")
    parser.add_argument("--accelerator", default="cpu", choices=["auto", "cpu", "gpu"], help=".tflite only")
    parser.add_argument("--threads", type=int, help="CPU threads (.tflite)")
    parser.add_argument("--task", choices=["classification", "detection", "segmentation"],
                        help="the model's task, where it cannot be told from the file")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from edgecnn.data.specs import parse_spec

    spec = parse_spec(args.data)
    split = args.split or ("val" if spec.kind == "builtin" else "all")
    path = Path(args.model)
    if not path.is_file():
        raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path.")
    if path.suffix == ".tflite":
        metrics = evaluate_tflite(path.read_bytes(), spec, split, args)
    else:
        require_training_stack("eval")
        metrics = evaluate_keras(path, spec, split, args)
    metrics = {"model": str(path), "data": str(spec), "split": split, **metrics}
    if args.json:
        print_json(metrics)
    else:
        shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("top1", "map", "map50", "miou", "pixel_acc") if k in metrics)
        print(f"{path.name} on {spec} ({split}): {shown}")
    return 0


def _task_of_tflite(data: bytes, explicit: str | None) -> str:
    from edgecnn.runtime.metadata import read_metadata

    task = explicit or (read_metadata(data) or {}).get("task")
    if not task:
        raise EdgeCNNError("This .tflite file carries no edgecnn metadata, so its task is unknown.",
                           "Pass --task classification|detection|segmentation.")
    return task


def evaluate_tflite(data: bytes, spec, split: str, args) -> dict:
    task = _task_of_tflite(data, args.task)
    if task == "detection":
        from edgecnn.data.detection import load_detection_samples
        from edgecnn.evaluation import evaluate_tflite_detector

        dataset = load_detection_samples(spec, split, args.limit)
        log(f"evaluating on {len(dataset.samples)} images")
        return evaluate_tflite_detector(data, dataset, args.accelerator, args.threads)
    if task == "segmentation":
        from edgecnn.evaluation import evaluate_tflite_segmenter

        return evaluate_tflite_segmenter(data, spec, split, args.limit, args.accelerator, args.threads)
    if task == "classification":
        from edgecnn.evaluation import evaluate_tflite_classifier

        return evaluate_tflite_classifier(data, spec, split, args.limit, args.accelerator, args.threads)
    raise EdgeCNNError(f"`edgecnn eval` has no metric for task '{task}'.")


def evaluate_keras(path: Path, spec, split: str, args) -> dict:
    from edgecnn.cli.export import infer_task
    from edgecnn.export.keras_io import load_model

    log(f"loading {path}")
    model = load_model(path)
    task = infer_task(model, args.task)
    if task == "detection":
        from edgecnn.data.detection import load_detection_samples
        from edgecnn.evaluation import evaluate_keras_detector
        from edgecnn.models.yolo import detection_layout

        dataset = load_detection_samples(spec, split, args.limit)
        log(f"evaluating on {len(dataset.samples)} images")
        return evaluate_keras_detector(model, dataset, tuple(detection_layout(model)["strides"]))
    if task == "segmentation":
        from edgecnn.evaluation import evaluate_keras_segmenter

        return evaluate_keras_segmenter(model, spec, split, args.limit)
    if task == "classification":
        from edgecnn.evaluation import evaluate_keras_classifier

        return evaluate_keras_classifier(model, spec, split, args.limit)
    raise EdgeCNNError(f"`edgecnn eval` has no metric for task '{task}'.")
