"""`edgecnn models` and `edgecnn summary`."""

from __future__ import annotations

import argparse

from edgecnn.cli.common import log, print_json, require_training_stack


def add_parsers(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the model zoo with parameter counts")
    models.add_argument("--task", choices=["classification", "detection", "segmentation", "instance_segmentation", "generation"],
                        help="only the models of this task (default: all)")
    models.add_argument("--include-test-variants", action="store_true", help="also list the tiny test_* models")
    models.add_argument("--json", action="store_true", help="print a JSON list of {name, task, params}")
    models.set_defaults(handler=run_models)

    summary = subparsers.add_parser("summary", help="per-layer table: output volume, F, S, P, parameters")
    summary.add_argument("name", help="a model name from `edgecnn models`")
    summary.add_argument("--input-size", nargs=3, type=int, metavar=("H", "W", "C"),
                         help="input size (default: the model's own, e.g. 224 224 3)")
    summary.add_argument("--num-classes", type=int, help="classes of the head (default: the model's, e.g. 1000)")
    summary.add_argument("--width-multiplier", type=float,
                         help="channels and FC units scaled by this (default: the model's, usually 1.0)")
    summary.add_argument("--all", action="store_true", help="also show activation, batch-norm, dropout ... layers")
    summary.add_argument("--json", action="store_true", help="print {layers:[...], total_params}")
    summary.set_defaults(handler=run_summary)


def run_models(args: argparse.Namespace) -> int:
    from edgecnn.models.zoo import get_entry, list_models

    names = list_models(args.task, include_test_variants=args.include_test_variants)
    require_training_stack("models")
    from edgecnn.models.catalog import parameter_counts

    counts = parameter_counts(names, progress=lambda name: log(f"counting parameters of {name} (cached afterwards)"))
    records = [{"name": n, "task": get_entry(n).task, "params": counts[n]} for n in names]
    if args.json:
        print_json(records)
        return 0
    width = max((len(n) for n in names), default=4)
    print(f"{'name'.ljust(width)}  {'task':<14}  {'params':>13}  description")
    for record in records:
        print(
            f"{record['name'].ljust(width)}  {record['task']:<14}  {record['params']:>13,}  "
            f"{get_entry(record['name']).description}"
        )
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from edgecnn.models.zoo import get_entry

    get_entry(args.name)  # an unknown name fails before TensorFlow is imported
    require_training_stack("summary")
    from edgecnn._keras import tf
    from edgecnn.models.summary import count_parameters, format_table, summarize
    from edgecnn.models.zoo import create_model

    overrides = {}
    if args.input_size:
        overrides["input_shape"] = tuple(args.input_size)
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    if args.width_multiplier is not None:
        overrides["width_multiplier"] = args.width_multiplier
    with tf.Graph().as_default():  # shapes without weight values: VGG-16 needs no 553 MB to be described
        model = create_model(args.name, **overrides)
        rows = summarize(model, all_layers=args.all)
        learnable, statistics = count_parameters(model)
    if args.json:
        print_json(
            {
                "name": args.name,
                "layers": [row.to_json() for row in rows],
                "total_params": learnable,
                "non_trainable_params": statistics,
            }
        )
    else:
        print(format_table(rows, learnable, statistics))
    return 0
