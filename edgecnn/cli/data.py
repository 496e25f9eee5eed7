"""`edgecnn data shapes`: write the synthetic shapes set as COCO JSON + PNG images and masks.
`edgecnn data pairs DATA --out DIR [--edges]`: translation pairs as a pairs:DIR folder; with
--edges any pictures become edges -> photo pairs."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log


def add_parsers(subparsers) -> None:
    data = subparsers.add_parser("data", help="embedded data sets")
    kinds = data.add_subparsers(dest="data_command", metavar="SET")
    kinds.required = True
    shapes = kinds.add_parser("shapes", help="synthetic shapes: boxes, instance and semantic masks")
    shapes.add_argument("--out", required=True, help="folder for annotations.json, images/ and masks/")
    shapes.add_argument("--num", type=int, default=200, help="how many images (default 200)")
    shapes.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    shapes.add_argument("--seed", type=int, default=0, help="random seed: another seed, other images (default 0)")
    shapes.add_argument("--painted", action="store_true",
                        help="one colour family per class (builtin:painted_shapes), as the generation recipes use")
    shapes.set_defaults(handler=run_shapes)
    pairs = kinds.add_parser("pairs", help="translation pairs as pairs:DIR (DIR/A, DIR/B, DIR/masks); --edges: "
                                           "any pictures as edges -> photo")
    pairs.add_argument("data", metavar="DATA",
                       help="builtin:painted_shapes (labels -> photo), pairs:DIR, or with --edges any pictures: "
                            "folder:DIR, masks:DIR, ...")
    pairs.add_argument("--out", required=True, help="folder for A/, B/ and masks/ (read back as pairs:DIR)")
    pairs.add_argument("--edges", action="store_true", help="A = the Canny edges of each picture")
    pairs.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"),
                       help="the generator's input size (pictures are resized and edges drawn at it, as in training; "
                            "default 64 64)")
    pairs.add_argument("--split", choices=["all", "train", "val"], default="all",
                       help="which part of the data to write (default all)")
    pairs.add_argument("--limit", type=int, help="write at most this many pairs (default: every one)")
    pairs.set_defaults(handler=run_pairs)


def run_shapes(args: argparse.Namespace) -> int:
    from edgecnn.data.shapes import write_shapes

    path = write_shapes(args.out, args.num, args.size, args.seed, args.painted)
    log(f"wrote {args.num} images to {args.out} (coco:{path}, masks:{args.out})")
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from edgecnn.data.translation import load_translation_samples, write_pairs

    data = load_translation_samples(args.data, (*args.size, 3), args.split, args.limit, edges=args.edges)
    if not data.paired:
        from edgecnn.errors import EdgeCNNError

        raise EdgeCNNError(f"'{args.data}' holds two unpaired domains, not pairs.",
                           "Pass --edges to pair each B picture with its edges, or give paired data.")
    write_pairs(data, args.out)
    log(f"wrote {len(data.a)} {'edges -> photo ' if args.edges else ''}pairs to {args.out} (pairs:{args.out}"
        f"{', with class masks' if data.labels is not None else ''})")
    return 0
