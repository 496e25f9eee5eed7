"""The lecture's progression, measured: R-CNN, Fast R-CNN, Faster R-CNN and YOLO on the same
backbone (EdgeNet at 1/2 width) and the same 128x128 builtin:shapes images, each trained from its
recipe, converted (fp32, and int8 from PQAT), and run by the device runtime on LiteRT's CPU with
2 threads. Per model: mAP@.5 of the file on the 300 held-out images, and the per-image latency of
the whole pipeline (selective search, warping, every invoke, decoding and NMS) over ``--images``
held-out images, with each one's speed-up over R-CNN.

    python benchmarks/two_stage.py [--runs DIR] [--target fp32|int8] [--images 50] [--rounds 3] [--json OUT]

Training happens once per recipe into DIR/<recipe>/ (``--runs``, default runs/two_stage) and is
reused (resumed) afterwards. Selective search is cached on disk for mAP, so the accuracy figures
of the two proposal-based models cost no search time; the latency figures include it, run live.
The four models take turns in rounds (``rounds.timed_rounds``), so machine load affects them alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from recipe_runs import model_file  # benchmarks/, beside this script
from rounds import timed_rounds

RECIPES = {"R-CNN": "shapes_rcnn.yaml", "Fast R-CNN": "shapes_fast_rcnn.yaml",
           "Faster R-CNN": "shapes_faster_rcnn.yaml", "YOLO": "shapes_yolo.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/two_stage", type=Path)
    parser.add_argument("--target", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--images", default=50, type=int)
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--rounds", default=3, type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import edgecnn
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.data.specs import parse_spec

    files = {name: model_file(recipe, args.runs, args.target) for name, recipe in RECIPES.items()}
    results = {}
    for name, path in files.items():
        metrics = edgecnn.evaluate(str(path), "builtin:shapes", accelerator="cpu", threads=args.threads)
        results[name] = {"file": str(path), "size_bytes": path.stat().st_size, "map50": metrics["map50"],
                         "map": metrics["map"], "pipeline_ms": []}
    images = [s.image for s in load_detection_samples(parse_spec("builtin:shapes"), "val", None).samples]
    images = images[:args.images]
    pipelines = {name: edgecnn.runtime.open(str(path), accelerator="cpu", threads=args.threads)
                 for name, path in files.items()}
    timings = timed_rounds(pipelines, images, args.rounds)  # see rounds.py for why rounds
    for name, row in results.items():
        row["pipeline_ms"] = timings[name]
    base = float(np.median(results["R-CNN"]["pipeline_ms"]))
    print(f"\n{args.target} files, LiteRT CPU, {args.threads} threads, {len(images)} images of 128x128 x "
          f"{args.rounds} rounds (pipeline p50 includes proposals)")
    print(f"{'model':<14}{'mAP@.5':>8}{'mAP':>8}{'p50 ms':>10}{'p90 ms':>10}{'speed-up':>10}")
    for name, row in results.items():
        timings = row.pop("pipeline_ms")
        row["pipeline_ms"] = {"p50": float(np.median(timings)), "p90": float(np.percentile(timings, 90))}
        row["speedup_over_rcnn"] = base / row["pipeline_ms"]["p50"]
        print(f"{name:<14}{row['map50']:>8.3f}{row['map']:>8.3f}{row['pipeline_ms']['p50']:>10.2f}"
              f"{row['pipeline_ms']['p90']:>10.2f}{row['speedup_over_rcnn']:>9.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"target": args.target, "threads": args.threads, "images": len(images),
                                         "models": results}, indent=2))


if __name__ == "__main__":
    main()
