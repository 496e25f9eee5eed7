"""Does int8 pay off for every family? For each recipe: its model as fp32, fp16 and int8 files
(int8 as `edgecnn convert` makes it, the nodes that run faster in float kept in float; and with
--all-int8, every node int8, for contrast), invoke p50 on the CPU interleaved in rounds (about
50 ms of invokes per file and round), int8 / best float ratio, XNNPACK nodes taken, the nodes kept
in float, each file's tensor arena and the peak resident memory of a process that runs it alone
(`edgecnn benchmark` in a child), and, for trained runs, each file's held-out metric.

    python benchmarks/int8_payoff.py --runs runs/bench --threads 2 --json docs/int8_payoff.json
    python benchmarks/int8_payoff.py --untrained --threads 2          # random weights: timing only

The first trains each recipe (and the generators' judge, shapes_judge) once into --runs.

``--untrained`` builds each recipe's architecture with random weights (speed and coverage do not
depend on the weights; accuracy does, so it is left out)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from recipe_runs import trained_run  # benchmarks/, beside this script
from rounds import timed_rounds  # benchmarks/, beside this script

RECIPES = ("digits_vgg", "shapes_yolo", "shapes_unet", "shapes_segnet", "shapes_fcn", "shapes_rcnn",
           "shapes_fast_rcnn", "shapes_faster_rcnn", "shapes_mask_rcnn", "shapes_pix2pix", "shapes_cyclegan")
METRIC = {"classification": "top1", "detection": "map50", "segmentation": "miou", "instance_segmentation": "mask_map50",
          "generation": "fcn_miou"}  # generators: the FCN-score, the judge segmenter's mIoU on their pictures
JUDGE = "shapes_judge"  # the generation recipes' judge, trained once into the runs folder


def _model(recipe_name: str, runs: Path, untrained: bool):
    import edgecnn
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / f"{recipe_name}.yaml")
    if not untrained:
        directory = trained_run(f"{recipe_name}.yaml", runs)
        return recipe, edgecnn.load_model(directory / "model.keras"), directory
    overrides = {"input_shape": tuple(recipe.data.input_size), **recipe.model.overrides}
    from edgecnn.models.zoo import get_entry

    if "num_classes" in get_entry(recipe.model.name).options:
        overrides.setdefault("num_classes", 10 if recipe.task == "classification" else 4)
    return recipe, edgecnn.create_model(recipe.model.name, **overrides), None


def peak_rss_mb(path: Path, threads: int) -> float:
    """The peak resident MB of a process that loads ``path`` and runs it (edgecnn benchmark)."""
    command = [sys.executable, "-m", "edgecnn.cli.main", "benchmark",
               str(path), "--accelerator", "cpu", "--threads", str(threads), "--runs", "5", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["memory"]["peak_rss_mb"]


def measure(recipe_name: str, runs: Path, untrained: bool, threads: int, rounds: int) -> dict:
    import edgecnn
    from edgecnn.runtime.engine import load_engine

    recipe, model, directory = _model(recipe_name, runs, untrained)
    files, reports = {}, {}
    for target in ("fp32", "fp16", "int8", "int8 all"):
        source = directory / ("model_qat.h5" if target.startswith("int8") and recipe.optimization.qat.enabled
                              else "model.keras") if directory else model
        out = (directory or runs / f"untrained_{recipe_name}") / f"payoff_{target.replace(' ', '_')}.tflite"
        out.parent.mkdir(parents=True, exist_ok=True)
        reports[target] = edgecnn.convert(source, target.split()[0], out=out, calibration=recipe.data.train,
                                          task=recipe.task, samples=2, calibration_samples=64, threads=threads,
                                          all_int8=target == "int8 all")
        files[target] = out
    engines = {target: load_engine(path, threads=threads) for target, path in files.items()}
    rng = np.random.default_rng(0)
    for engine in engines.values():
        engine(*[rng.uniform(0, 1, info.shape).astype(np.float32) for info in engine.inputs])
    from edgecnn.runtime.stats import timed_ms

    # about 50 ms of invokes per file and round: a tiny model's p50 needs hundreds of them
    per_round = max(20, int(50 / max(1e-3, float(np.median(timed_ms(engines["fp32"].invoke, 10, warmup=3))))))
    timings = timed_rounds({target: (lambda _, e=engine: e.invoke(dequantized=False))
                            for target, engine in engines.items()}, list(range(per_round)), rounds)
    p50 = {target: float(np.median(values)) for target, values in timings.items()}
    best_float = min(("fp32", "fp16"), key=p50.get)
    row = {"task": recipe.task, "p50_ms": {k: round(v, 4) for k, v in p50.items()}, "best_float": best_float,
           "int8_over_float": round(p50["int8"] / p50[best_float], 3),
           "xnnpack": {target: f"{r.xnnpack['delegated']}/{r.xnnpack['nodes']}" for target, r in reports.items()},
           "int8_float_nodes": reports["int8"].float_nodes, "size_bytes": {t: r.size_bytes for t, r in reports.items()},
           "arena_mb": {t: r.arena_mb for t, r in reports.items()},
           "peak_rss_mb": {t: peak_rss_mb(path, threads) for t, path in files.items()}}
    if directory is not None:
        data = recipe.data.val or recipe.data.train
        judge = trained_run(f"{JUDGE}.yaml", runs) / "model.keras" if recipe.task == "generation" else None
        row["metric"] = {target: edgecnn.evaluate(path, data, accelerator="cpu", judge=judge)[METRIC[recipe.task]]
                         for target, path in files.items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"), help="trained runs (default runs/bench)")
    parser.add_argument("--untrained", action="store_true", help="random weights: timing and coverage only")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="recipes to measure (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="interleaved rounds of about 50 ms of invokes per file (default 7)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = {}
    print(f"{'recipe':<20}{'fp32 ms':>9}{'fp16 ms':>9}{'int8 ms':>9}{'int8/float':>11}{'all-int8 ms':>12}"
          "  XNNPACK int8  arena MB int8/fp32  peak RSS MB int8/fp32  kept in float")
    for name in args.recipes:
        row = rows[name] = measure(name, args.runs, args.untrained, args.threads, args.rounds)
        if args.json:  # after every recipe: a failure later keeps what was measured
            args.json.write_text(json.dumps({"threads": args.threads, "untrained": args.untrained, "rows": rows},
                                            indent=2))
        kept = ", ".join(f"{op} x{n}" for op, n in row["int8_float_nodes"].items()) or "-"
        print(f"{name:<20}{row['p50_ms']['fp32']:>9.3f}{row['p50_ms']['fp16']:>9.3f}{row['p50_ms']['int8']:>9.3f}"
              f"{row['int8_over_float']:>10.2f}x{row['p50_ms']['int8 all']:>12.3f}  {row['xnnpack']['int8']:<13}"
              f"{row['arena_mb']['int8']:>8.3f}/{row['arena_mb']['fp32']:<9.3f}"
              f"{row['peak_rss_mb']['int8']:>11.1f}/{row['peak_rss_mb']['fp32']:<11.1f}{kept}"
              + (f"  metric {row['metric']}" if "metric" in row else ""), flush=True)


if __name__ == "__main__":
    main()
