"""`edgecnn eval MODEL --data DATA`: task metrics for a .keras model or a .tflite file.

classification {top1}; detection {map, map50} (pycocotools); segmentation {miou, pixel_acc};
instance segmentation {map, map50, mask_map, mask_map50} (pycocotools bbox and segm);
generation {l1; with --judge SEGMENTER the FCN-score: fcn_miou, fcn_pixel_acc beside
real_fcn_miou, real_fcn_pixel_acc}.
A .tflite file is evaluated through the runtime pipelines (no TensorFlow needed for it).
"""

from __future__ import annotations

import argparse

from edgecnn.cli.common import print_json, require_training_stack


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="task metrics (top1 / map, map50 / miou, pixel_acc / mask_map) of a model")
    parser.add_argument("model", help="a .keras/.h5 model or a .tflite file")
    parser.add_argument("--data", required=True, metavar="DATA", help="DATA spec, e.g. builtin:shapes, coco:val.json")
    parser.add_argument("--split", choices=["all", "train", "val"],
                        help="which part of DATA (default: val for builtin sets, all for your own files)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many images")
    parser.add_argument("--accelerator", default="cpu", choices=["auto", "cpu", "gpu"],
                        help=".tflite only: where to run it (default cpu)")
    parser.add_argument("--threads", type=int, help="CPU threads (.tflite)")
    parser.add_argument("--task", choices=["classification", "detection", "segmentation", "instance_segmentation",
                                           "generation"],
                        help="the model's task, where it cannot be told from the file")
    parser.add_argument("--judge", metavar="SEGMENTER",
                        help="generation: a segmenter (.keras or .tflite) trained on the real pictures; reports the "
                             "FCN-score of the generated ones beside theirs (default: the recipe's evaluation.judge)")
    parser.add_argument("--edges", action=argparse.BooleanOptionalAction, default=None,
                        help="generation: the input is the Canny edges of the DATA pictures (edges -> photo; "
                             "default: the recipe's data.edges)")
    parser.add_argument("--trust-model", action="store_true",
                        help="allow a model file whose layers hold Python code (Lambda), which runs on load")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if Path(args.model).suffix != ".tflite" or (args.judge and Path(args.judge).suffix != ".tflite"):
        require_training_stack("eval")
    from edgecnn.evaluation import METRIC_KEYS, evaluate

    metrics = evaluate(args.model, args.data, split=args.split, limit=args.limit, accelerator=args.accelerator,
                       threads=args.threads, task=args.task, trust=args.trust_model, judge=args.judge,
                       edges=args.edges)
    if args.json:
        print_json(metrics)
    else:
        shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in METRIC_KEYS if isinstance(metrics.get(k), float))
        print(f"{Path(args.model).name} on {metrics['data']} ({metrics['split']}): {shown}")
    return 0
