"""`edgecnn train RECIPE --out DIR`."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log, require_training_stack


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train from a recipe (then its pruning / QAT stages)")
    parser.add_argument("recipe", help="a YAML recipe, e.g. recipes/digits_vgg.yaml")
    parser.add_argument("--out", required=True, help="output folder (model.keras, metrics.json, checkpoints/, logs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set training.epochs=5 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                        help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from edgecnn.training.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.set)  # recipe errors come before TensorFlow loads
    require_training_stack("train")
    from edgecnn.training.train import train

    metrics = train(recipe, args.out, resume=args.resume, strategy_name=args.strategy)
    for stage, figures in metrics["stages"].items():
        keys = ("val_top1", "map50", "map", "mask_map50", "mask_map", "miou", "pixel_acc", "val_l1", "val_cycle_l1")
        shown = ", ".join(f"{key} {figures[key]:.4f}" for key in keys if key in figures)
        log(f"{stage}: {shown} after {figures['epochs']} epochs")
    log(f"wrote {args.out}/model.keras and {args.out}/metrics.json")
    return 0
