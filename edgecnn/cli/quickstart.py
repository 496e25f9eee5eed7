"""`edgecnn quickstart --out DIR`: the main job on embedded data (see edgecnn.quickstart)."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log, print_json, require_training_stack


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart", help="shapes data -> train YOLO -> prune + QAT -> convert int8/fp16 -> eval -> predict")
    parser.add_argument("--out", required=True, help="output folder (report.md, report.json, models/, predictions/)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of the YOLO recipe, e.g. --set training.epochs=5 (repeatable; default: none)")
    parser.add_argument("--train-images", type=int, default=1200, help="synthetic training images (default 1200)")
    parser.add_argument("--val-images", type=int, default=300, help="synthetic validation images (default 300)")
    parser.add_argument("--json", action="store_true", help="print report.json on stdout")
    parser.set_defaults(handler=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    require_training_stack("quickstart")
    from edgecnn.quickstart import quickstart

    report = quickstart(args.out, args.resume, args.set, args.train_images, args.val_images)
    if args.json:
        print_json(report)
    else:
        for name, entry in report["targets"].items():
            log(f"{name:6s} map50 {entry['map50']:.3f}  map {entry['map']:.3f}  {entry['size_bytes'] / 1024:.0f} KiB")
        log(f"wrote {args.out}/report.md and {args.out}/report.json")
    return 0
