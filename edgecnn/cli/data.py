"""`edgecnn data shapes`: write the synthetic shapes set as COCO JSON + PNG images and masks."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log


def add_parsers(subparsers) -> None:
    data = subparsers.add_parser("data", help="embedded data sets")
    kinds = data.add_subparsers(dest="data_command", metavar="SET")
    kinds.required = True
    shapes = kinds.add_parser("shapes", help="synthetic shapes: boxes, instance and semantic masks")
    shapes.add_argument("--out", required=True)
    shapes.add_argument("--num", type=int, default=200)
    shapes.add_argument("--size", type=int, default=128)
    shapes.add_argument("--seed", type=int, default=0)
    shapes.set_defaults(handler=run_shapes)


def run_shapes(args: argparse.Namespace) -> int:
    from edgecnn.data.shapes import write_shapes

    path = write_shapes(args.out, args.num, args.size, args.seed)
    log(f"wrote {args.num} images to {args.out} (coco:{path}, masks:{args.out})")
    return 0
