"""Convert and verify: a Keras model (or its file) -> a .tflite with edgecnn's metadata inside,
checked against the Keras model, and the report that says how it went. ``edgecnn.convert`` and
`edgecnn convert` are this function."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.consistency import problems
from edgecnn.runtime.metadata import ModelMetadata

log = logging.getLogger("edgecnn.export")


@dataclass
class ConversionReport:
    """What `convert` wrote and measured; ``to_json()`` is the `edgecnn convert --json` report."""

    target: str
    output: str | None  # the file written, None when only bytes were asked for
    source: str
    size_bytes: int
    gzip_bytes: int
    ops: dict[str, int]
    builtin_only: bool
    gpu: dict[str, Any]
    parity: dict[str, Any]
    latency_ms: float
    latency: dict[str, Any]
    xnnpack: dict[str, Any]  # the nodes the CPU's XNNPACK delegate took (runtime.cpu_kernels)
    arena_mb: float | None  # the CPU interpreter's tensor arena (runtime.tensor_arena)
    consistency: dict[str, Any]
    float_nodes: dict[str, int]  # int8: op type -> nodes kept in float (export.selective_quantization)
    metadata: ModelMetadata
    flatbuffer: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "source": self.source, "target": self.target, "size_bytes": self.size_bytes,
                "gzip_bytes": self.gzip_bytes, "ops": self.ops, "builtin_only": self.builtin_only, "gpu": self.gpu,
                "parity": self.parity, "latency_ms": self.latency_ms, "latency": self.latency,
                "xnnpack": self.xnnpack, "arena_mb": self.arena_mb, "float_nodes": self.float_nodes,
                "consistency": self.consistency, "metadata": self.metadata.to_dict()}


def convert(model_or_path, target: str, out: str | os.PathLike | None = None, calibration: str | None = None, *,
            task: str | None = None, labels: list[str] | None = None, samples: int = 16,
            calibration_samples: int = 200, threads: int | None = None, report: str | os.PathLike | None = None,
            trust: bool = False, all_int8: bool = False) -> ConversionReport:
    """Convert ``model_or_path`` (a Keras model, or a .keras/.h5 file) to ``target`` (fp32, fp16,
    dynamic, int8, int8-io) with builtin ops only, store the metadata, verify the file (parity
    with Keras, ops, GPU accelerator, CPU latency) and write it to ``out`` (atomically; nothing is
    written when it fails). ``calibration`` is a DATA spec (e.g. ``builtin:digits``) for int8
    ranges and parity samples; a file next to the ``recipe.yaml`` of `edgecnn train` takes its
    data and task from it. ``labels``: the class names in output order; by default those of the
    training run the file belongs to, else none (classes named by index): calibration data never
    names the classes. A list of the wrong length is refused. ``trust``: allow loading a model
    file whose layers hold Python code. ``int8`` keeps in float the nodes the CPU's XNNPACK
    kernels run only in float (``export.selective_quantization``; report ``float_nodes``);
    ``all_int8`` makes every node int8 (``int8-io`` always does, for NPUs).

    >>> report = edgecnn.convert("runs/digits/model_qat.h5", "int8", out="model_int8.tflite")  # doctest: +SKIP
    >>> report.size_bytes, report.parity["top1_agreement"]                                     # doctest: +SKIP
    """
    from edgecnn.export.convert import get_target

    spec = get_target(target)
    if samples < 1:
        raise EdgeCNNError("samples must be at least 1 (CLI: --samples).")
    if calibration:
        from edgecnn.data.specs import parse_spec

        parse_spec(calibration)  # a bad spec fails before the slow model load
    from edgecnn.export.convert import convert as to_flatbuffer
    from edgecnn.export.convert import is_quantization_aware
    from edgecnn.export.device_heads import add_device_heads
    from edgecnn.export.keras_io import load_model
    from edgecnn.export.metadata import infer_task, metadata_for, write_metadata
    from edgecnn.export.report import build_report
    from edgecnn.io_utils import atomic_write_bytes, atomic_write_text
    from edgecnn.models.detector_families import detector_family
    from edgecnn.models.fast_rcnn import random_proposals
    from edgecnn.runtime.inspection import inspect_model

    source, recipe = "the Keras model in memory", None
    if isinstance(model_or_path, (str, os.PathLike)):
        source = str(model_or_path)
        log.info(f"loading {source}")
        model = load_model(model_or_path, trust=trust)
        recipe = _recipe_beside(Path(model_or_path))
        if recipe is not None:
            log.info(f"using {Path(model_or_path).parent / 'recipe.yaml'} (written by `edgecnn train`)")
            calibration = calibration or recipe.export.calibration or recipe.data.train
            task = task or recipe.task
    else:
        model = model_or_path
    if spec.needs_calibration and not calibration and not is_quantization_aware(model):
        raise EdgeCNNError(
            f"Target '{target}' quantizes activations and needs calibration data (or a QAT model).",
            "Pass calibration data (CLI: --calibration DATA), e.g. builtin:digits or folder:images/.",
        )
    task = infer_task(model, task)
    family = detector_family(model) if task in ("detection", "instance_segmentation") else None
    if family is not None:
        model = family.deployed(model)  # training-only outputs (the RPN's, R-CNN's softmax head) dropped
    takes_proposals = family is not None and family.proposal_input
    size = tuple(int(d) for d in (model.input_shape[0] if takes_proposals else model.input_shape)[1:])
    label_source = "argument" if labels else "none"
    if not labels and recipe is not None:
        labels, label_source = _run_labels(Path(model_or_path), recipe, size, task), "training run"
    _require_fitting_labels(labels, label_source, metadata_for(model, task))
    calibration_images = None
    if calibration:
        from edgecnn.data.samples import load_input_samples

        log.info(f"loading samples from {calibration}")
        edges = bool(recipe is not None and recipe.data.edges)  # an edges -> photo generator's inputs
        parity_samples, _ = load_input_samples(calibration, size, samples, "val", task, edges)
        if spec.needs_calibration:
            calibration_images, _ = load_input_samples(calibration, size, calibration_samples, "train", task, edges)
        sample_source = f"{len(parity_samples)} samples of {calibration}"
    else:
        low = -1.0 if task == "generation" else 0.0
        parity_samples = np.random.default_rng(0).uniform(low, 1, size=(samples, *size)).astype(np.float32)
        sample_source = f"{samples} uniform random inputs in [{low:g}, 1] (pass calibration data for real samples)"

    log.info(f"converting to {target} ({spec.description}), builtin ops only")
    if takes_proposals:  # proposal boxes beside each image: random ones, over the whole input
        count = int(model.input_shape[1][1])
        parity_samples = [(image[None], random_proposals(size[:2], count, seed)[None])
                          for seed, image in enumerate(parity_samples)]
        sample_source += f", each with {count} random proposal boxes"
    representative = None
    if calibration_images is not None:
        def representative():
            for seed, image in enumerate(calibration_images):
                extra = [random_proposals(size[:2], int(model.input_shape[1][1]), seed)[None]] if takes_proposals else []
                yield [image[None], *extra]
    flatbuffer = to_flatbuffer(model, target, representative)
    float_nodes: dict[str, int] = {}
    if target == "int8" and representative is not None and not all_int8:  # int8-io stays all integer: NPUs
        from edgecnn.export.selective_quantization import int8_with_slow_nodes_in_float

        flatbuffer, float_nodes = int8_with_slow_nodes_in_float(model, flatbuffer, representative)
    # MediaPipe's decoder reads one box per fixed anchor: a region detector's proposals are not that
    flatbuffer, device_head = (flatbuffer, False) if family is not None and not family.device_head \
        else add_device_heads(flatbuffer, task)
    _require_loads(flatbuffer, target, out, calibration, calibration_images, threads)
    metadata = metadata_for(model, task, labels, target,
                            Path(source).name if isinstance(model_or_path, (str, os.PathLike)) else None,
                            recipe.to_dict() if recipe is not None else None, device_head,
                            label_source if labels else "none")
    flatbuffer = write_metadata(flatbuffer, metadata)
    consistency = inspect_model(flatbuffer)["consistency"]  # the bytes that are written
    if not consistency["ok"]:
        raise EdgeCNNError(f"The converted file disagrees with itself ({'; '.join(problems(consistency))}); "
                           f"{'not written to ' + str(out) if out is not None else 'not returned'}.",
                           "Report it with the model and the command: every edgecnn file must pass these checks.")
    if out is not None:
        atomic_write_bytes(out, flatbuffer)
        log.info(f"wrote {out} ({len(flatbuffer):,} bytes); verifying (parity, ops, GPU, latency)")
    decode = _region_decoder(model) if family is not None and family.region_decoded else None
    figures = build_report(flatbuffer, model, target, parity_samples, task, sample_source, threads=threads,
                           device_head=device_head, decode=decode)
    result = ConversionReport(**figures, output=str(out) if out is not None else None, source=source,
                              consistency=consistency, float_nodes=float_nodes, metadata=metadata,
                              flatbuffer=flatbuffer)
    if report is not None:
        atomic_write_text(report, json.dumps(result.to_json(), indent=2))
    return result


def _region_decoder(model):
    """A Faster R-CNN's outputs -> its detections, as the runtime decodes them (for parity)."""
    from edgecnn.models.faster_rcnn import region_layout
    from edgecnn.runtime.regions import region_postprocess

    layout = region_layout(model)
    size, weights = tuple(layout["input_size"]), tuple(layout["delta_weights"])

    def decode(outputs):
        proposals, class_scores, box_deltas = (np.asarray(o)[0] for o in outputs[:3])  # (+ masks)
        return region_postprocess(proposals, class_scores, box_deltas, size, weights)

    return decode


def _run_labels(model_path: Path, recipe, size: tuple[int, ...], task: str) -> list[str] | None:
    """The class names of the training run ``model_path`` belongs to: its labels file, else (runs
    made before it was written) the class names of the recipe's training data."""
    from edgecnn.data.samples import load_input_samples
    from edgecnn.runtime.metadata import read_labels
    from edgecnn.training.recipe import RUN_LABELS

    written = model_path.parent / RUN_LABELS
    if written.is_file():
        return read_labels(written)
    if task == "generation":
        return None
    _, names = load_input_samples(recipe.data.train, size, 1, "val", task, bool(recipe.data.edges))
    return list(names) or None


def _require_fitting_labels(labels: list[str] | None, source: str, metadata: ModelMetadata) -> None:
    """Refuse, before the slow conversion, class names that cannot name the model's outputs (a
    label list of another length breaks MediaPipe at its first frame)."""
    from edgecnn.runtime.metadata import class_count, label_mismatch

    problem = label_mismatch(labels, metadata)
    if problem is None:
        return
    count = class_count(metadata)
    where = {"argument": "--labels FILE, Python: labels=",
             "training run": "the training run's labels.txt (or its recipe's data)"}.get(source, source)
    fix = (f"Give exactly {count} class names, one per line, in the model's class order (CLI: --labels FILE; "
           "Python: labels=[...]), or none: the file then names its classes by index."
           if count is not None else "Pass no labels for this model.")
    raise EdgeCNNError(f"Cannot convert: {problem} (labels from {where}).", fix)


def _recipe_beside(model_path: Path):
    """The resolved recipe `edgecnn train` saved next to its models, if there is one."""
    path = model_path.parent / "recipe.yaml"
    if not path.is_file():
        return None
    from edgecnn.training.recipe import load_recipe

    return load_recipe(path)


def _require_loads(flatbuffer: bytes, target: str, out, calibration: str | None, calibration_images,
                   threads: int | None) -> None:
    """Load and run the new file once in a child process first: a file the runtime aborts on
    must end as an error here, not as a signal that kills `convert` (or, later, a device)."""
    from edgecnn.runtime.gpu import use_software_gpu
    from edgecnn.runtime.probe import require_loads

    use_software_gpu()  # the verification runs it on the GPU accelerator too: so does the probe
    fix = "Convert it again; if it keeps happening, report it with the model and the command."
    if calibration_images is not None:
        flat = sum(float(image.std()) < 1 / 255 for image in calibration_images)
        fix = (f"int8 ranges come from the calibration data ({calibration}"
               + (f"; {flat} of its {len(calibration_images)} images are one flat colour, which leaves "
                  "normalization layers with zero variance" if flat else "")
               + "): calibrate on varied, representative images of the task, or train with QAT "
               "(`edgecnn train` with qat in the recipe) and convert the QAT model without calibration data.")
    where = f"not written to {out}" if out is not None else "not returned"
    require_loads(flatbuffer, f"The converted {target} file ({where})", threads=threads, gpu=True, fix=fix)
