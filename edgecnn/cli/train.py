"""`edgecnn train RECIPE --out DIR`."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log, print_json, require_training_stack


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train from a recipe (then its pruning / QAT stages)")
    parser.add_argument("recipe", help="a packaged recipe's name (`edgecnn recipes` lists them), e.g. digits_vgg, or a YAML file")
    parser.add_argument("--out", required=True, help="output folder (model.keras, metrics.json, checkpoints/, logs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set training.epochs=5 (repeatable; default: none)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                        help="tf.distribute strategy: default (one device), mirrored (all local GPUs), multiworker (reads "
                             "TF_CONFIG) (default: default)")
    parser.set_defaults(handler=run_train)

    recipes = subparsers.add_parser("recipes", help="list the packaged recipes that train can start from")
    recipes.add_argument("--task", choices=["classification", "detection", "segmentation", "instance_segmentation",
                                            "generation"], help="only the recipes of this task (default: all)")
    recipes.add_argument("--json", action="store_true", help="print a JSON list of {name, task, model, description}")
    recipes.set_defaults(handler=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from edgecnn.training.recipe import list_recipes

    found = list_recipes(args.task)
    if args.json:
        print_json(found)
        return 0
    width = max(len(entry["name"]) for entry in found) if found else 0
    for entry in found:
        print(f"{entry['name']:{width}s}  {entry['task']:21s}  {entry['description']}")
    return 0


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
