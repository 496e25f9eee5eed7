"""The gain of starting weights on a small data set: a U-Net trained on builtin:shapes (the
source), then trained on a few dozen images of builtin:painted_shapes (the same shapes, painted
in colour families: another data set) from the source's weights, at the recipe's learning rate
and at a quarter of it, against the same training from random weights. Held-out mIoU of each, float and
int8 (post-training quantization, calibrated on the small set), on painted_shapes' val split.

    python benchmarks/fine_tuning.py --runs runs/bench --images 40 --json docs/fine_tuning.json

Every run is trained once into RUNS (reused when there; resumed when interrupted)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recipe_runs import trained_run  # benchmarks/, beside this script

MODEL = ["model.overrides.width_multiplier=0.125", "model.overrides.depth=3", "data.input_size=[64,64,3]",
         "optimization.qat.enabled=false"]


def variants(source: Path, images: int, epochs: int) -> dict[str, list[str]]:
    small = ["data.train=builtin:painted_shapes", f"data.limit={images}", f"training.epochs={epochs}"]
    start = f"model.weights={source / 'model.keras'}"
    return {"from random weights": small,
            "from the source's weights": [*small, start],
            "from the source's weights, learning rate / 4": [*small, start, "training.learning_rate=0.0005"]}


def main() -> None:
    import edgecnn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"), help="where the runs go (default runs/bench)")
    parser.add_argument("--images", type=int, default=40, help="training images of the small set (default 40)")
    parser.add_argument("--epochs", type=int, default=15, help="epochs on the small set (default 15)")
    parser.add_argument("--val", type=int, default=200, help="held-out images scored (default 200)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args()
    source = trained_run("shapes_unet.yaml", args.runs, (*MODEL, "data.limit=400", "training.epochs=30"),
                         "fine_tuning_source")
    runs = {"the source alone (no training on the small set)": source}
    for index, (name, overrides) in enumerate(variants(source, args.images, args.epochs).items()):
        runs[name] = trained_run("shapes_unet.yaml", args.runs, (*MODEL, *overrides), f"fine_tuning_{index}")
    rows = {}
    for name, run in runs.items():
        int8 = run / "model_int8.tflite"
        if not int8.exists():
            edgecnn.convert(run / "model.keras", "int8", out=int8)
        scores = {kind: edgecnn.evaluate(path, "builtin:painted_shapes", split="val", limit=args.val)["miou"]
                  for kind, path in (("float", run / "model.keras"), ("int8", int8))}
        rows[name] = scores
    print(f"\nU-Net/8 (depth 3, 64x64): {args.images} painted_shapes images, {args.epochs} epochs; "
          f"held-out mIoU on {args.val} painted_shapes val images")
    print(f"{'start':<50}{'float':>8}{'int8':>8}")
    for name, row in rows.items():
        print(f"{name:<50}{row['float']:>8.3f}{row['int8']:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"images": args.images, "epochs": args.epochs, "val": args.val,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
