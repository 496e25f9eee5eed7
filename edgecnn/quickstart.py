"""`edgecnn quickstart --out DIR`: the product's main job on embedded data, end to end.

data (builtin:shapes written as COCO JSON + PNG, read back through the ``coco:`` path like user
data) -> train the packaged YOLO recipe (float, magnitude pruning, sparsity-preserving QAT) ->
convert to int8 (from the QAT model) and fp16 (the GPU target, from the float model) -> evaluate
float / int8 / fp16 with pycocotools -> run the runtime Detector on held-out images (annotated
PNGs + predictions.jsonl) -> DIR/report.md and DIR/report.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgecnn.io_utils import atomic_write_text

RECIPE = "shapes_yolo"
STAGES = ("data", "train", "convert int8", "convert fp16", "evaluate", "predict", "report")
TRAIN_IMAGES, VAL_IMAGES, IMAGE_SIZE = 1200, 300, 128
TRAIN_SEED, VAL_SEED = 1000, 2000  # the seeds of builtin:shapes' splits: the same images
PREDICT_IMAGES = 8


class StageDisplay:
    """One line per stage on stderr: [k/n] name ... done in t s."""

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.stages, self.timings = stages, {}

    def run(self, name: str, function, *args, **kwargs):
        index = self.stages.index(name) + 1
        print(f"\n[{index}/{len(self.stages)}] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.timings[name] = round(time.perf_counter() - start, 1)
        print(f"[{index}/{len(self.stages)}] {name}: done in {self.timings[name]:.1f} s", file=sys.stderr, flush=True)
        return result


def _write_data(out: Path, train_images: int, val_images: int) -> dict:
    from edgecnn.data.shapes import write_shapes

    train = write_shapes(out / "data" / "train", train_images, IMAGE_SIZE, TRAIN_SEED)
    val = write_shapes(out / "data" / "val", val_images, IMAGE_SIZE, VAL_SEED)
    return {"train": f"coco:{train}", "val": f"coco:{val}"}


def _train(out: Path, data: dict, overrides: list[str], resume: bool) -> dict:
    from edgecnn.api import train

    return train(RECIPE, out / "train", [f"data.train={data['train']}", f"data.val={data['val']}", *overrides],
                 resume=resume)


def _convert(model: Path, target: str, out: Path, calibration: str) -> dict:
    from edgecnn.api import convert

    return convert(model, target, out, calibration, task="detection", report=out.with_suffix(".json")).to_json()


def _evaluate(out: Path, val_spec: str, files: dict) -> dict:
    from edgecnn.api import load_model
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.evaluation.detection import evaluate_detector
    from edgecnn.evaluation.inputs import backend_of
    from edgecnn.evaluation.keras_backend import evaluation_pipeline
    from edgecnn.evaluation.metrics import EVALUATION_OPTIONS
    from edgecnn.runtime.tasks import open as open_pipeline

    dataset = load_detection_samples(val_spec, "all")
    # the same pipeline for every row: only the backend differs
    pipelines = {"float": (evaluation_pipeline(load_model(out / "train" / "model.keras"), "detection"),
                           out / "train" / "model.keras")}
    for target, path in files.items():  # fp16 is the GPU target: on the GPU where one takes the whole graph
        pipelines[target] = (open_pipeline(path, "cpu" if target == "int8" else "auto", task="detection",
                                           **EVALUATION_OPTIONS["detection"]), path)
    return {target: {**evaluate_detector(pipeline, dataset), **backend_of(pipeline), "file": str(path)}
            for target, (pipeline, path) in pipelines.items()}


def _predict(out: Path, model: Path, val_spec: str) -> list[str]:
    import cv2

    from edgecnn.data.detection import load_detection_samples
    from edgecnn.io_utils import atomic_write_bytes
    from edgecnn.runtime import draw_detections
    from edgecnn.runtime import open as open_pipeline

    detector = open_pipeline(model, accelerator="cpu")
    dataset = load_detection_samples(val_spec, "all", PREDICT_IMAGES)
    written, lines = [], []
    for sample in dataset.samples:
        result = detector(sample.image)
        canvas = draw_detections(_upscaled(sample.image), _scaled(result, 3))
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        path = out / "predictions" / f"{Path(sample.file_name).stem}.png"
        atomic_write_bytes(path, encoded.tobytes())
        written.append(str(path))
        lines.append(json.dumps({"source": sample.file_name, **result.to_json()}))
    atomic_write_text(out / "predictions" / "predictions.jsonl", "\n".join(lines) + "\n")
    return written


def _upscaled(image, factor: int = 3):
    """128-pixel images are drawn at 3x so that labels stay legible."""
    import cv2

    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def _scaled(result, factor: int):
    import copy

    scaled = copy.deepcopy(result)
    for detection in scaled.detections:
        detection.box = [v * factor for v in detection.box]
    return scaled


def quickstart(out: str | Path, resume: bool = False, overrides: list[str] | None = None,
               train_images: int = TRAIN_IMAGES, val_images: int = VAL_IMAGES) -> dict:
    """Run every stage into ``out`` (``resume`` an interrupted run; ``overrides``: ``key=value``
    fields of the YOLO recipe); returns the report (also written as report.json/.md).

    >>> report = edgecnn.quickstart.quickstart("runs/quickstart")   # doctest: +SKIP
    """
    from edgecnn.errors import EdgeCNNError

    if train_images < 8 or val_images < 1:
        raise EdgeCNNError("The quickstart needs at least 8 training images and 1 validation image.",
                           "Raise --train-images / --val-images (defaults 1200 and 300).")
    out = Path(out)
    if (out / "train" / "checkpoints").exists() and not resume:
        raise EdgeCNNError(f"'{out}' already holds a quickstart run.",
                           "Pass --resume to continue it, or choose another --out.")
    display = StageDisplay(STAGES)
    started = time.perf_counter()
    data = display.run("data", _write_data, out, train_images, val_images)
    metrics = display.run("train", _train, out, data, list(overrides or []), resume)
    models = out / "models"
    int8 = display.run("convert int8", _convert, out / "train" / "model_qat.h5", "int8",
                       models / "yolo_int8.tflite", data["train"])
    fp16 = display.run("convert fp16", _convert, out / "train" / "model.keras", "fp16",
                       models / "yolo_fp16.tflite", data["train"])
    files = {"int8": models / "yolo_int8.tflite", "fp16": models / "yolo_fp16.tflite"}
    evaluation = display.run("evaluate", _evaluate, out, data["val"], files)
    images = display.run("predict", _predict, out, files["int8"], data["val"])
    conversions = {"int8": int8, "fp16": fp16}
    targets = {}
    for name, figures in evaluation.items():
        entry = {"map50": figures["map50"], "map": figures["map"], "file": figures["file"],
                 "size_bytes": Path(figures["file"]).stat().st_size}
        if name in conversions:
            report = conversions[name]
            entry.update({"size_bytes": report["size_bytes"], "gzip_bytes": report["gzip_bytes"],
                          "cpu_latency_ms": report["latency_ms"], "eval_backend": figures["backend"],
                          "eval_accelerator": figures["accelerator"],
                          "gpu_fully_accelerated": report["gpu"]["fully_accelerated"],
                          "gpu_unsupported_ops": report["gpu"]["unsupported_ops"], "builtin_only": report["builtin_only"]})
        targets[name] = entry
    report = {
        "recipe": RECIPE, "data": data, "classes": metrics["classes"],
        "training": {stage: {k: v for k, v in figures.items() if k != "history"}
                     for stage, figures in metrics["stages"].items()},
        "targets": targets,
        "map50_delta_vs_float": {name: targets[name]["map50"] - targets["float"]["map50"] for name in conversions},
        "predictions": images,
        "stage_seconds": display.timings,
    }
    display.run("report", _write_report, out, report)
    report["stage_seconds"]["total"] = round(time.perf_counter() - started, 1)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    return report


def _write_report(out: Path, report: dict) -> None:
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    rows = []
    for name, entry in report["targets"].items():
        gpu = entry.get("gpu_fully_accelerated")
        rows.append(f"| {name} | {entry['map50']:.3f} | {entry['map']:.3f} | {entry['size_bytes'] / 1024:.0f} KiB | "
                    + (f"{entry['cpu_latency_ms']:.2f} ms" if "cpu_latency_ms" in entry else "-") + " | "
                    + (f"{entry['eval_backend']} / {entry['eval_accelerator']}" if "eval_backend" in entry else "keras")
                    + f" | {'-' if gpu is None else gpu} |")
    training = "\n".join(f"- {stage}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in figures.items())
                          for stage, figures in report["training"].items())
    pictures = "\n".join(f"![{Path(p).stem}]({Path(p).relative_to(out)})" for p in report["predictions"][:4])
    sparsity = report["training"].get("pruned", {}).get("mean_kernel_sparsity", 0.0)
    text = f"""# edgecnn quickstart report

YOLO (anchor-free, EdgeNet backbone) trained on the synthetic shapes set ({', '.join(report['classes'])}),
pruned to {sparsity:.0%} sparsity, quantization-aware trained, converted to int8 (CPU/NPU) and fp16 (GPU).
Validation: {report['data']['val']} (COCO mAP through pycocotools).

| model | mAP@.5 | mAP@[.5:.95] | size | CPU latency p50 | evaluated on | GPU fully accelerated |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

mAP@.5 change against float: {', '.join(f"{k} {v:+.3f}" for k, v in report['map50_delta_vs_float'].items())}

Training stages (held-out split):
{training}

Stage timings (s): {', '.join(f"{k} {v}" for k, v in report['stage_seconds'].items())}

Annotated held-out images (int8 model, runtime Detector):

{pictures}
"""
    atomic_write_text(out / "report.md", text)
