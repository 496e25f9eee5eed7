"""`edgecnn convert`: Keras model -> verified .tflite with metadata inside."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.cli.common import log, print_json, read_labels, require_training_stack
from edgecnn.errors import EdgeCNNError

TARGET_NAMES = ("fp32", "fp16", "dynamic", "int8", "int8-io")


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="convert a Keras model to a verified .tflite (builtin ops only)")
    parser.add_argument("model", help="a .keras (or .h5) model file")
    parser.add_argument("--target", required=True, choices=TARGET_NAMES,
                        help="fp32; fp16 (GPU); dynamic (int8 weights); int8 (float I/O); int8-io (int8 I/O)")
    parser.add_argument("--out", required=True, help="the .tflite file to write")
    parser.add_argument("--calibration", metavar="DATA",
                        help="DATA spec for int8 calibration and parity samples, e.g. builtin:digits, folder:DIR")
    parser.add_argument("--report", metavar="FILE.json", help="also write the verification report here")
    parser.add_argument("--labels", metavar="FILE", help="class names, one per line (default: from the data)")
    parser.add_argument("--task", choices=["classification", "detection", "segmentation", "generation"],
                        help="what the model does (default: classification for a single (1, N) output)")
    parser.add_argument("--samples", type=int, default=16, help="samples compared against Keras (default 16)")
    parser.add_argument("--calibration-samples", type=int, default=200, help="int8 calibration samples (default 200)")
    parser.add_argument("--threads", type=int, help="CPU threads for the latency figure (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_convert)


def infer_task(model, explicit: str | None) -> str:
    if explicit:
        return explicit
    if len(model.outputs) == 1 and len(model.outputs[0].shape) == 2:
        return "classification"
    shapes = [tuple(o.shape) for o in model.outputs]
    if len(shapes) == 2 and len(shapes[0]) == 3 and shapes[0][-1] == 4:
        return "detection"
    if any(name.endswith("image_out") for name in model.output_names):  # the zoo's generators
        return "generation"
    if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1:3] == tuple(model.input_shape[1:3]):
        return "segmentation"
    raise EdgeCNNError(
        f"Cannot tell what task model '{model.name}' performs from its outputs "
        f"{[tuple(o.shape) for o in model.outputs]}.",
        "Pass --task classification|detection|segmentation|generation.",
    )


# what each output holds, in the model's output order
OUTPUT_KINDS = {"classification": ["logits"], "detection": ["box_log_distances", "class_logits"],
                "segmentation": ["class_logits"], "generation": ["image"]}
# model input = pixel (0..255) * scale + offset; generators work in tanh's [-1, 1]
NORMALIZATION = {"generation": {"scale": 2 / 255, "offset": -1.0}}
OUTPUT_RANGE = {"generation": [-1.0, 1.0]}


def _decoding(model, task: str) -> dict | None:
    """Post-processing parameters the runtime needs, read from the model's graph."""
    if task == "detection":
        from edgecnn.models.yolo import detection_layout

        try:
            return detection_layout(model)
        except ValueError as error:
            raise EdgeCNNError(f"Cannot read the detection layout of '{model.name}': {error}.",
                               "edgecnn's Detector decodes models of the zoo's YOLO family.") from error
    return None


def _recipe_beside(model_path: str):
    """The resolved recipe `edgecnn train` saved next to its models, if there is one."""
    path = Path(model_path).parent / "recipe.yaml"
    if not path.is_file():
        return None
    from edgecnn.training.recipe import load_recipe

    return load_recipe(path)


def run_convert(args: argparse.Namespace) -> int:
    report = convert_to_report(args)
    if args.json:
        print_json(report)
    else:
        _print_summary(report)
    if not report["builtin_only"]:
        raise EdgeCNNError("The converted file contains non-builtin ops.", "See the report's ops histogram.")
    return 0


def convert_to_report(args: argparse.Namespace) -> dict:
    """Convert, write the file (and the report if asked), return the verification report."""
    import numpy as np

    from edgecnn import __version__
    from edgecnn.export.convert import get_target

    target = get_target(args.target)
    if args.samples < 1:
        raise EdgeCNNError("--samples must be at least 1.")
    if args.calibration:
        from edgecnn.data.specs import parse_spec

        parse_spec(args.calibration)  # a bad spec fails before the slow model load
    require_training_stack("convert")
    from edgecnn.data.samples import load_input_samples
    from edgecnn.export.convert import convert
    from edgecnn.export.keras_io import load_model
    from edgecnn.export.report import build_report
    from edgecnn.io_utils import atomic_write_bytes, atomic_write_text
    from edgecnn.runtime.metadata import write_metadata

    log(f"loading {args.model}")
    model = load_model(args.model)
    from edgecnn.export.convert import is_quantization_aware

    recipe = _recipe_beside(args.model)
    if recipe is not None:
        log(f"using {Path(args.model).parent / 'recipe.yaml'} (written by `edgecnn train`)")
        args.calibration = args.calibration or recipe.export.calibration or recipe.data.train
        args.task = args.task or recipe.task
    if target.needs_calibration and not args.calibration and not is_quantization_aware(model):
        raise EdgeCNNError(
            f"Target '{args.target}' quantizes activations and needs calibration data (or a QAT model).",
            "Add --calibration DATA, e.g. --calibration builtin:digits or --calibration folder:images/.",
        )
    task = infer_task(model, args.task)
    size = tuple(int(d) for d in model.input_shape[1:])
    class_names = None
    calibration = None
    if args.calibration:
        log(f"loading samples from {args.calibration}")
        samples, class_names = load_input_samples(args.calibration, size, args.samples, "val", task)
        if target.needs_calibration:
            calibration_images, _ = load_input_samples(args.calibration, size, args.calibration_samples, "train", task)

            def calibration():
                for image in calibration_images:
                    yield [image[None]]
        source = f"{len(samples)} samples of {args.calibration}"
    else:
        low = -1.0 if task == "generation" else 0.0
        samples = np.random.default_rng(0).uniform(low, 1, size=(args.samples, *size)).astype(np.float32)
        source = f"{args.samples} uniform random inputs in [{low:g}, 1] (pass --calibration DATA for real samples)"

    log(f"converting to {args.target} ({target.description}), builtin ops only")
    flatbuffer = convert(model, args.target, calibration)
    _require_loads(flatbuffer, args, calibration_images if target.needs_calibration and args.calibration else None)
    labels = read_labels(args.labels) or class_names
    metadata = {
        "task": task,
        "labels": labels,
        "input": {"name": model.inputs[0].name.split(":")[0], "size": list(size), "layout": "NHWC",
                  "color": "RGB" if size[-1] == 3 else "GRAY",
                  # model input = pixel (0..255) * scale + offset
                  "normalization": NORMALIZATION.get(task, {"scale": 1 / 255, "offset": 0.0})},
        "outputs": [{"shape": [1, *[int(d) for d in o.shape[1:]]], "kind": kind,
                     **({"range": OUTPUT_RANGE[task]} if task in OUTPUT_RANGE else {})}
                    for o, kind in zip(model.outputs, OUTPUT_KINDS.get(task, ["raw"] * len(model.outputs)))],
        "decoding": _decoding(model, task),
        "target": args.target,
        "source_model": Path(args.model).name,
        "recipe": recipe.to_dict() if recipe is not None else None,
        "edgecnn_version": __version__,
    }
    flatbuffer = write_metadata(flatbuffer, metadata)
    atomic_write_bytes(args.out, flatbuffer)
    log(f"wrote {args.out} ({len(flatbuffer):,} bytes); verifying (parity, ops, GPU, latency)")
    report = build_report(flatbuffer, model, args.target, samples, task, source, threads=args.threads)
    report = {"output": str(args.out), "source": str(args.model), **report, "metadata": metadata}
    if args.report:
        atomic_write_text(args.report, json.dumps(report, indent=2))
    return report


def _require_loads(flatbuffer: bytes, args: argparse.Namespace, calibration_images) -> None:
    """Load and run the new file once in a child process first: a file the runtime aborts on
    must end as an error here, not as a signal that kills `convert` (or, later, a device)."""
    from edgecnn.runtime.gpu import use_software_gpu
    from edgecnn.runtime.probe import require_loads

    use_software_gpu()  # the verification runs it on the GPU accelerator too: so does the probe
    fix = "Convert it again; if it keeps happening, report it with the model and the command."
    if calibration_images is not None:
        flat = sum(float(image.std()) < 1 / 255 for image in calibration_images)
        fix = (f"int8 ranges come from the calibration data ({args.calibration}"
               + (f"; {flat} of its {len(calibration_images)} images are one flat colour, which leaves "
                  "normalization layers with zero variance" if flat else "")
               + "): calibrate on varied, representative images of the task, or train with QAT "
               "(`edgecnn train` with qat in the recipe) and convert the QAT model without --calibration.")
    require_loads(flatbuffer, f"The converted {args.target} file (not written to {args.out})",
                  threads=args.threads, gpu=True, fix=fix)


def _print_summary(report: dict) -> None:
    gpu = report["gpu"]
    parity = report["parity"]
    lines = [
        f"target          {report['target']}",
        f"file            {report['output']}  {report['size_bytes']:,} bytes ({report['gzip_bytes']:,} gzipped)",
        f"builtin only    {report['builtin_only']}  ops: {', '.join(f'{k} x{v}' for k, v in report['ops'].items())}",
        f"parity          max |diff| {parity['max_abs_diff']:.3g}"
        + (f", top-1 agreement {parity['top1_agreement']:.1%}" if "top1_agreement" in parity else "")
        + f" ({parity['against']})",
        f"GPU             fully accelerated: {gpu['fully_accelerated']}"
        + (f", rejected ops: {', '.join(gpu['unsupported_ops'])}" if gpu["unsupported_ops"] else "")
        + (f" [{gpu['device']}]" if gpu["device"] else f" [not run: {gpu['error']}]"),
        f"CPU latency     p50 {report['latency_ms']:.2f} ms ({report['latency']['threads']} threads, {report['latency']['backend']})",
    ]
    print("\n".join(lines))
