"""The YOLO variants of the zoo on the accuracy-speed front, each trained with the same budget
(shapes_yolo.yaml: 30 epochs at batch 8 on builtin:shapes' 1,200 training images at 128x128,
then its pruning and PQAT), converted to int8, scored with pycocotools on the 300 held-out
images and timed in one process (LiteRT CPU, interleaved rounds of invokes on one image).

    python benchmarks/detector_front.py [--runs DIR] [--variants a,b] [--set key=value]...
                                        [--threads 2] [--rounds 5] [--invokes 200] [--json OUT]

A variant is a zoo model trained from shapes_yolo.yaml with the model swapped (``VARIANTS``).
Each trains once into DIR/<variant>/ (default runs/detector_front) and is reused (resumed)
afterwards. ``--set`` adds recipe overrides to every variant (e.g. ``training.seed=1`` for a
second seed; use another --runs). With the reference variant in the run, each row also gives its invoke time as a
multiple of the reference's.
Columns: learnable parameters, GFLOPs at 128x128 (2 x multiply-accumulates, as Ultralytics
counts), int8 file size, int8 invoke p50 (the model alone, no pre/post-processing), mAP@.5 and
mAP@.5:.95 of the int8 file, and of the float model for contrast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from recipe_runs import trained_run  # benchmarks/, beside this script
from rounds import timed_rounds  # benchmarks/, beside this script

# variant -> recipe overrides on shapes_yolo.yaml (its model is yolo_edgenet_n); the ReLU nano is
# the architecture of the quickstart before SiLU, whose int8 file the YOLO11n comparison in
# docs/figures.md was measured against: on another machine latencies compare through it (REFERENCE)
VARIANTS = {
    "yolo_edgenet_n": [],
    "yolo_edgenet": ["model.name=yolo_edgenet"],
    "yolo_edgenet_n_relu": ["model.overrides.activation=relu"],
}
REFERENCE = "yolo_edgenet_n_relu"


def trained_variant(name: str, runs: Path, overrides: tuple[str, ...] = ()) -> Path:
    """DIR/<name>/ with the variant trained (float, pruned, PQAT) and its int8 file converted."""
    import edgecnn

    directory = trained_run("shapes_yolo.yaml", runs, (*VARIANTS[name], *overrides), name)
    out = directory / "model_int8.tflite"
    if not out.exists():
        edgecnn.convert(str(directory / "model_qat.h5"), "int8", out=out)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/detector_front", type=Path)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override for every variant (repeatable)")
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--rounds", default=5, type=int)
    parser.add_argument("--invokes", default=200, type=int, help="invokes per variant per round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import edgecnn
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.data.specs import parse_spec
    from edgecnn.export.keras_io import load_model
    from edgecnn.models.summary import count_parameters, multiply_accumulates
    from edgecnn.runtime.engine import load_engine
    from edgecnn.runtime.images import letterbox

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    rows, engines = {}, {}
    image = load_detection_samples(parse_spec("builtin:shapes"), "val", 1).samples[0].image
    for name in names:
        directory = trained_variant(name, args.runs, tuple(args.overrides))
        model = load_model(directory / "model.keras")
        metrics = json.loads((directory / "metrics.json").read_text())
        int8 = directory / "model_int8.tflite"
        scored = edgecnn.evaluate(str(int8), "builtin:shapes", accelerator="cpu", threads=args.threads)
        rows[name] = {"params": count_parameters(model)[0], "gflops": 2 * multiply_accumulates(model) / 1e9,
                      "int8_bytes": int8.stat().st_size, "map50": scored["map50"], "map": scored["map"],
                      "float_map50": metrics["stages"]["float"]["map50"], "float_map": metrics["stages"]["float"]["map"]}
        engine = load_engine(int8, threads=args.threads)
        size = engine.inputs[0].shape[1:3]
        engine(letterbox(image, *size)[0][None].astype(np.float32) / 255.0)  # a real image, set once
        engines[name] = engine
    invokes = [None] * args.invokes
    timings = timed_rounds({name: (lambda _, e=engine: e.invoke(dequantized=False)) for name, engine in engines.items()},
                           invokes, args.rounds)
    print(f"\nint8 files, LiteRT CPU, {args.threads} threads, invoke p50 over {args.rounds} x {args.invokes} "
          "interleaved invokes; mAP on builtin:shapes' 300 held-out images (pycocotools)")
    print(f"{'variant':<21}{'params':>10}{'GFLOPs':>8}{'int8 KiB':>10}{'p50 ms':>8}{'x ref':>7}{'mAP@.5':>8}"
          f"{'mAP':>7}{'float mAP@.5':>14}{'float mAP':>10}")
    for name, row in rows.items():
        row["invoke_ms_p50"] = float(np.median(timings[name]))
    for name, row in rows.items():
        if REFERENCE in rows:
            row["invoke_vs_reference"] = row["invoke_ms_p50"] / rows[REFERENCE]["invoke_ms_p50"]
        print(f"{name:<21}{row['params']:>10,}{row['gflops']:>8.3f}{row['int8_bytes'] / 1024:>10,.0f}"
              f"{row['invoke_ms_p50']:>8.3f}{row.get('invoke_vs_reference', float('nan')):>7.2f}{row['map50']:>8.3f}"
              f"{row['map']:>7.3f}{row['float_map50']:>14.3f}{row['float_map']:>10.3f}")
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.overrides, "threads": args.threads, "rounds": args.rounds, "invokes": args.invokes,
                                         "variants": rows}, indent=2))


if __name__ == "__main__":
    main()
