"""`edgecnn convert`: Keras model -> verified .tflite with metadata inside."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import print_json, read_labels, require_training_stack
from edgecnn.errors import EdgeCNNError

TARGET_NAMES = ("fp32", "fp16", "dynamic", "int8", "int8-io")  # edgecnn.export.convert.TARGETS


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
    parser.add_argument("--task", choices=["classification", "detection", "segmentation", "instance_segmentation", "generation"],
                        help="what the model does (default: classification for a single (1, N) output)")
    parser.add_argument("--samples", type=int, default=16, help="samples compared against Keras (default 16)")
    parser.add_argument("--calibration-samples", type=int, default=200, help="int8 calibration samples (default 200)")
    parser.add_argument("--threads", type=int, help="CPU threads for the latency figure (default: all cores)")
    parser.add_argument("--all-int8", action="store_true",
                        help="int8: every node int8 (default off: nodes the CPU runs fast only in float stay float)")
    parser.add_argument("--trust-model", action="store_true",
                        help="allow a model file whose layers hold Python code (Lambda), which runs on load")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    require_training_stack("convert")
    import edgecnn

    report = edgecnn.convert(args.model, args.target, out=args.out, calibration=args.calibration, task=args.task,
                             labels=read_labels(args.labels), samples=args.samples,
                             calibration_samples=args.calibration_samples, threads=args.threads, report=args.report,
                             trust=args.trust_model, all_int8=args.all_int8).to_json()
    if args.json:
        print_json(report)
    else:
        _print_summary(report)
    if not report["builtin_only"]:
        raise EdgeCNNError("The converted file contains non-builtin ops.", "See the report's ops histogram.")
    return 0


def _detection_agreement(parity: dict) -> str:
    if "detection_agreement" not in parity:
        return ""
    if parity["detection_agreement"] is None:
        return ", no detections to compare (pass real calibration data)"
    return (f", {parity['detection_agreement']:.1%} of the Keras model's {parity['keras_detections']} detections "
            "repeated (the raw difference includes proposals in another order)")


def _print_summary(report: dict) -> None:
    gpu = report["gpu"]
    parity = report["parity"]
    lines = [
        f"target          {report['target']}",
        f"file            {report['output']}  {report['size_bytes']:,} bytes ({report['gzip_bytes']:,} gzipped)",
        f"builtin only    {report['builtin_only']}  ops: {', '.join(f'{k} x{v}' for k, v in report['ops'].items())}",
        f"parity          max |diff| {parity['max_abs_diff']:.3g}"
        + (f", top-1 agreement {parity['top1_agreement']:.1%}" if "top1_agreement" in parity else "")
        + _detection_agreement(parity) + f" ({parity['against']})",
        f"GPU             fully accelerated: {gpu['fully_accelerated']}"
        + (f", rejected ops: {', '.join(gpu['unsupported_ops'])}" if gpu["unsupported_ops"] else "")
        + (f" [{gpu['device']}]" if gpu["device"] else f" [not run: {gpu['error']}]"),
        f"CPU latency     p50 {report['latency_ms']:.2f} ms ({report['latency']['threads']} threads, {report['latency']['backend']})",
    ]
    coverage = report["xnnpack"]
    if coverage:
        kept = ", ".join(f"{op} x{n}" for op, n in report["float_nodes"].items())
        lines.append(f"CPU kernels     XNNPACK runs {coverage['delegated']} of {coverage['nodes']} nodes"
                     + (f"; kept in float: {kept}" if kept else "")
                     + (f"; tensor arena {report['arena_mb']} MB" if report["arena_mb"] is not None else ""))
    print("\n".join(lines))
