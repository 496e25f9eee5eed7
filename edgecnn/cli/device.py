"""`edgecnn predict`, `edgecnn benchmark` and `edgecnn inspect`: the device side, with the base install only
(no TensorFlow is imported by these commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.cli.common import log, print_json, read_labels


def add_parsers(subparsers) -> None:
    predict = subparsers.add_parser("predict", help="run the model's pipeline on images, a folder, a video or a camera")
    predict.add_argument("model", help="a .tflite file")
    predict.add_argument("source", help="image, folder, glob, video file, camera index, stream URL, or picamera[:N] "
                                        "(a Raspberry Pi camera through Picamera2)")
    predict.add_argument("--out", required=True, help="folder for annotated outputs and predictions.jsonl")
    predict.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"],
                         help="auto: the GPU where the whole model runs there and it is a real GPU, else the CPU "
                              "(default auto)")
    predict.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    predict.add_argument("--delegate", metavar="LIBRARY", help="an external TFLite delegate library (.so) to run the model with, e.g. the GPU delegate of an old Pi image")
    predict.add_argument("--top-k", type=int, default=5, help="classification: classes reported per image (default 5)")
    predict.add_argument("--labels", help="class names, one per line (for models without edgecnn metadata)")
    predict.add_argument("--max-frames", type=int, help="stop after this many frames (cameras, long videos)")
    predict.add_argument("--no-annotated", action="store_true",
                         help="write predictions.jsonl only, no annotated images or video (a camera service)")
    predict.add_argument("--rotate-mb", type=float, metavar="MB",
                         help="start a new predictions.jsonl when it would pass MB megabytes, keeping the newest "
                              "--rotate-keep full ones as predictions.1.jsonl, ...; an earlier run's file is rotated, "
                              "not overwritten (default: one file that grows; the camera service sets 10)")
    predict.add_argument("--rotate-keep", type=int, default=5, metavar="N",
                         help="rotated predictions files kept with --rotate-mb (default 5)")
    predict.add_argument("--task", choices=["classification", "detection", "segmentation", "instance_segmentation", "generation"],
                         help="the pipeline to run, for models without edgecnn metadata")
    predict.add_argument("--score-threshold", type=float, default=0.25, help="detection: lowest score kept (default 0.25)")
    predict.add_argument("--iou-threshold", type=float,
                         help="detection: NMS overlap threshold (default: the model family's, 0.5; R-CNN 0.3)")
    predict.add_argument("--agnostic", action="store_true",
                         help="detection: one class per anchor and NMS across classes (MediaPipe's ObjectDetector "
                              "semantics; its default NMS overlap is --iou-threshold 0.3)")
    predict.add_argument("--strides", type=int, nargs="+",
                         help="detection: head strides, for models without edgecnn metadata (e.g. 8 16 32)")
    predict.add_argument("--edges", choices=["auto", "draw", "given"], default="auto",
                         help="edges -> photo generators: draw the Canny edges of each picture (draw), take the "
                              "pictures as edge drawings (given), or draw them unless a picture already is a "
                              "black-on-white drawing (auto, the default)")
    predict.set_defaults(handler=run_predict)

    benchmark = subparsers.add_parser("benchmark", help="invoke and full-pipeline latency percentiles")
    benchmark.add_argument("model", help="a .tflite file")
    benchmark.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"],
                           help="as for predict (default auto)")
    benchmark.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    benchmark.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    benchmark.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    benchmark.add_argument("--delegate", metavar="LIBRARY", help="an external TFLite delegate library (.so) to run the model with, e.g. the GPU delegate of an old Pi image")
    benchmark.add_argument("--ops", action="store_true",
                           help="also each op type's share of the time, every node timed alone on the CPU (default off)")
    benchmark.add_argument("--json", action="store_true",
                           help="print {backend, accelerator, fully_accelerated, invoke_ms, pipeline_ms, xnnpack, "
                                "memory[, ops]} as JSON")
    benchmark.set_defaults(handler=run_benchmark)

    inspect = subparsers.add_parser("inspect", help="what a .tflite file holds: I/O, quantization, ops, metadata")
    inspect.add_argument("model", help="any .tflite file")
    inspect.add_argument("--json", action="store_true", help="print the description as JSON")
    inspect.add_argument("--no-mediapipe", action="store_true",
                         help="do not ask MediaPipe Tasks to open the file (asked by default where a Python with "
                              "mediapipe is found: $EDGECNN_MEDIAPIPE_PYTHON or ~/.cache/edgecnn/venvs/mediapipe)")
    inspect.set_defaults(handler=run_inspect)


def run_predict(args: argparse.Namespace) -> int:
    import signal

    from edgecnn.runtime.records import JsonLines
    from edgecnn.runtime.sources import frames

    # systemd stops a service with SIGTERM: end like Ctrl-C, with every output complete
    signal.signal(signal.SIGTERM, _interrupt)
    pipeline = build_pipeline(args)
    log(f"{Path(args.model).name}: backend {pipeline.runner.backend}, accelerator {pipeline.runner.accelerator}"
        + (f" ({pipeline.runner.note})" if pipeline.runner.note else ""))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    writer = None
    count, interrupted = 0, False
    cap = None if args.rotate_mb is None else int(args.rotate_mb * 1_000_000)
    with JsonLines(out / "predictions.jsonl", cap, args.rotate_keep) as predictions:
        try:
            for frame in frames(args.source):
                result = pipeline(frame.image)
                predictions.write({"source": frame.source, "frame": frame.index, "backend": pipeline.runner.backend,
                                   "accelerator": pipeline.runner.accelerator, **result.to_json()})
                count += 1
                if not args.no_annotated:
                    writer = write_annotated(out, frame, result, writer)
                if args.max_frames and count >= args.max_frames:
                    break
        except KeyboardInterrupt:  # the way a camera stream is stopped: keep what was written
            interrupted = True
        finally:
            if writer is not None:
                writer.release()
    log(f"{count} frame(s) -> {out / 'predictions.jsonl'}")
    if interrupted:
        log("interrupted (Ctrl-C or SIGTERM): every output so far is complete (predictions.jsonl, images, "
            "annotated.mp4)")
        return 130  # the shell's convention for a command stopped by Ctrl-C, as `edgecnn train`
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def write_annotated(out: Path, frame, result, writer):
    """The annotated frame: into annotated.mp4 for a video or camera (the writer is opened on the
    first frame and returned), else a PNG beside the class-id PNG of a segmentation."""
    import cv2

    from edgecnn.io_utils import atomic_write_bytes
    from edgecnn.runtime import draw

    annotated = cv2.cvtColor(draw(frame.image, result), cv2.COLOR_RGB2BGR)
    if frame.is_video:
        if writer is None:
            height, width = annotated.shape[:2]
            writer = cv2.VideoWriter(str(out / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
        writer.write(annotated)
        return writer
    ok, encoded = cv2.imencode(".png", annotated)
    if ok:
        atomic_write_bytes(out / f"{Path(frame.source).stem}_{frame.index}.png", encoded.tobytes())
    class_map = getattr(result, "class_map", None)
    if class_map is not None:  # segmentation: the class ids themselves, as a PNG
        ok, encoded = cv2.imencode(".png", class_map)
        atomic_write_bytes(out / f"{Path(frame.source).stem}_{frame.index}_classes.png", encoded.tobytes())
    return writer


def build_pipeline(args: argparse.Namespace):
    """The pipeline the model's metadata asks for (or --task), with the options it takes."""
    from edgecnn.runtime import open as open_pipeline
    from edgecnn.runtime import pipeline_options, task_of

    task = task_of(args.model, args.task)
    given = {"top_k": args.top_k, "labels": read_labels(args.labels), "score_threshold": args.score_threshold,
             "iou_threshold": args.iou_threshold, "strides": args.strides, "agnostic": args.agnostic or None,
             "edges": args.edges}
    accepted = pipeline_options(task)
    options = {name: value for name, value in given.items() if name in accepted and value is not None}
    return open_pipeline(args.model, args.accelerator, args.threads, task=task, delegate=args.delegate, **options)


def run_benchmark(args: argparse.Namespace) -> int:
    from edgecnn.runtime.benchmark import benchmark

    result = benchmark(args.model, args.accelerator, args.threads, args.runs, args.warmup, args.delegate, args.ops)
    if args.json:
        print_json(result)
    else:
        print(f"{result['backend']} on {result['accelerator']} (fully accelerated: {result['fully_accelerated']})")
        print(f"invoke   p50 {result['invoke_ms']['p50']:.3f} ms  p90 {result['invoke_ms']['p90']:.3f} ms")
        if result["pipeline_ms"]:
            print(f"pipeline p50 {result['pipeline_ms']['p50']:.3f} ms  p90 {result['pipeline_ms']['p90']:.3f} ms")
        coverage = result["xnnpack"]
        if coverage:
            left = ", ".join(f"{op} x{count}" for op, count in coverage["left"].items())
            print(f"XNNPACK  {coverage['delegated']} of {coverage['nodes']} nodes in {coverage['partitions']} "
                  f"partition(s)" + (f"; default kernels: {left}" if left else ""))
        memory = result["memory"]
        arena = f"tensor arena {memory['arena_mb']} MB; " if memory["arena_mb"] is not None else ""
        print(f"memory   {arena}{memory['rss_after_load_mb']} MB resident after load, "
              f"{memory['rss_after_first_invoke_mb']} MB after the first invoke, peak {memory['peak_rss_mb']} MB "
              "(this process)")
        for op, row in (result.get("ops") or {}).items():
            print(f"  {op:<28}{row['share']:>7.1%}  {row['nodes']:>3} node(s)  {row['ms']:.3f} ms alone")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from edgecnn.export.mediapipe_tasks import mediapipe_opens
    from edgecnn.runtime.inspection import format_inspection, inspect_model, task_of_file

    report = inspect_model(args.model)
    report["mediapipe"] = ({"checked": False, "reason": "skipped (--no-mediapipe)"} if args.no_mediapipe
                           else mediapipe_opens(args.model, task_of_file(report)))
    if args.json:
        print_json(report)
    else:
        print(format_inspection(report))
    return 0
