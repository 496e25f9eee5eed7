"""Generation you can judge: the FCN-score of the shapes generation recipes, float / fp16 / int8.

    python benchmarks/generation.py [--runs runs] [--recipes shapes_pix2pix shapes_cyclegan ...]
                                    [--judge MODEL] [--picture docs/generation_examples.png]

Trains the judge (shapes_judge) and each generation recipe once into RUNS (reused afterwards),
converts each generator to fp16 (from model.keras) and int8 (from the QAT model_qat.h5), and prints
one JSON line per recipe: for the Keras model and both files the L1 to the held-out pictures and
the FCN-score beside the real pictures' (`edgecnn eval --judge`), whether the fp16 file ran fully
on the GPU accelerator (its conversion report; SwiftShader here: compatibility, not speed), and
`edgecnn benchmark` invoke and pipeline p50 of each file on the CPU (fp16 and int8 taking turns). ``--picture`` writes held-out examples:
input, each generator's output, target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from recipe_runs import trained_run  # benchmarks/, beside this script

RECIPES = ("shapes_pix2pix", "shapes_pix2pix_edges", "shapes_cyclegan", "shapes_cyclegan_edges")
KEYS = ("l1", "fcn_miou", "fcn_pixel_acc", "real_fcn_miou", "real_fcn_pixel_acc")


def trained(recipe: str, runs: Path, judge: Path | None) -> Path:
    """RUNS/<recipe>, trained once (resumed when interrupted) with ``judge`` as its judge."""
    return trained_run(f"{recipe}.yaml", runs, (f"evaluation.judge={judge}",) if judge else ())


def converted(directory: Path, target: str) -> tuple[Path, dict]:
    """The run's ``target`` file and its conversion report, converted once."""
    import edgecnn

    out, report_path = directory / f"model_{target}.tflite", directory / f"convert_{target}.json"
    if not report_path.exists():
        source = directory / ("model_qat.h5" if target == "int8" else "model.keras")
        edgecnn.convert(str(source), target, out=out, report=report_path)
    return out, json.loads(report_path.read_text())


def latency_p50s(paths: list[Path], rounds: int = 6, runs: int = 100) -> list[tuple[float, float]]:
    """`edgecnn benchmark` on the CPU, the files taking turns (``rounds`` times ``runs`` invokes
    each, so they see the same machine load): per file the median over rounds of the invoke p50
    and the whole-pipeline p50 (a 640x480 frame resized in, the picture resized back out; an
    edges -> photo file also draws the frame's edges), ms."""
    invoke: dict[Path, list[float]] = {path: [] for path in paths}
    pipeline: dict[Path, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            completed = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "benchmark", str(path),
                                        "--accelerator", "cpu", "--runs", str(runs), "--json"],
                                       capture_output=True, text=True, check=True)
            result = json.loads(completed.stdout)
            invoke[path].append(result["invoke_ms"]["p50"])
            pipeline[path].append(result["pipeline_ms"]["p50"])
    return [(float(np.median(invoke[path])), float(np.median(pipeline[path]))) for path in paths]


def held_out(directory: Path) -> str:
    """The DATA spec a run validated on (its recipe's data.val, else the held-out part of data.train)."""
    from edgecnn.training.recipe import load_recipe

    recipe = load_recipe(directory / "recipe.yaml")
    return recipe.data.val or recipe.data.train


def measure(recipe: str, runs: Path, judge: Path, timed: bool = True) -> dict:
    import edgecnn

    directory = trained(recipe, runs, judge)
    data = held_out(directory)  # the edges setting comes from the recipe.yaml beside each file
    row: dict = {"recipe": recipe, "data": data}
    scores = {"keras": edgecnn.evaluate(directory / "model.keras", data, judge=judge)}
    files = []
    for target in ("fp16", "int8"):
        path, report = converted(directory, target)
        files.append(path)
        scores[target] = edgecnn.evaluate(path, data, judge=judge)
        row[f"{target}_bytes"] = report["size_bytes"]
        row[f"{target}_gpu_fully_accelerated"] = report["gpu"].get("fully_accelerated")
    if timed:
        (fp16_invoke, fp16_pipeline), (int8_invoke, int8_pipeline) = latency_p50s(files)
        row.update({"fp16_invoke_p50_ms": fp16_invoke, "fp16_pipeline_p50_ms": fp16_pipeline,
                    "int8_invoke_p50_ms": int8_invoke, "int8_pipeline_p50_ms": int8_pipeline,
                    "int8_over_fp16_invoke": round(int8_invoke / fp16_invoke, 3)})
    for name, metrics in scores.items():
        row[name] = {key: round(metrics[key], 4) for key in KEYS if key in metrics}
    return row


def picture(runs: Path, recipes: list[str], out: Path, count: int = 4) -> None:
    """Held-out examples: per input kind (labels, edges) a block of rows, each row the input,
    every generator's output and the target picture, 2x enlarged."""
    import cv2

    from edgecnn.data.translation import load_translation_samples
    from edgecnn.runtime import Translator
    from edgecnn.runtime.drawing import side_by_side

    rows = []
    for edges in (False, True):
        chosen = [r for r in recipes if r.endswith("_edges") == edges and (runs / r / "model_fp16.tflite").exists()]
        if not chosen:
            continue
        data = load_translation_samples(held_out(runs / chosen[0]), (64, 64, 3), "val", count, edges=edges)
        translators = [Translator(runs / r / "model_fp16.tflite", accelerator="cpu") for r in chosen]
        for a, b in zip(data.a, data.b):
            rows.append(side_by_side(a, *[translate(a).image for translate in translators], b))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    grid = np.concatenate(rows, axis=0)
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}: rows = held-out examples; columns = input, {', '.join(recipes)} (fp16 files), target",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES))
    parser.add_argument("--judge", type=Path, help="a judge segmenter (default: shapes_judge, trained once)")
    parser.add_argument("--picture", type=Path, help="write held-out examples to this PNG")
    parser.add_argument("--no-timing", action="store_true", help="skip the latencies (a machine busy with other work)")
    args = parser.parse_args()
    judge = args.judge or trained_run("shapes_judge.yaml", args.runs) / "model.keras"
    for recipe in args.recipes:
        print(json.dumps(measure(recipe, args.runs, judge, not args.no_timing)), flush=True)
    if args.picture:
        picture(args.runs, args.recipes, args.picture)


if __name__ == "__main__":
    main()
