"""Where a Mask R-CNN image's time goes on the device, by instance count: per-image latency of the
runtime pipeline split into the model (one invoke), mask pasting (each detection's M x M mask
resampled into the image at its box) and the rest (letterbox, decoding, NMS, result assembly),
for 1, 10 and 50 instances in a 640x480 image.

The file comes from recipes/shapes_mask_rcnn.yaml (trained once into --runs, then converted).
A shapes image holds at most a handful of objects, so the instance count is set on the file's
real outputs: after the invoke, exactly N proposals (spread over the image) get a confident
class, the rest background; the masks are the model's own.

    python benchmarks/instance_pipeline.py [--runs DIR] [--target fp32|int8] [--repeats 50] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from recipe_runs import model_file  # benchmarks/, beside this script

COUNTS = (1, 10, 50)
IMAGE_SIZE = (480, 640)


def _with_instances(outputs: list[np.ndarray], count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The outputs with ``count`` proposals moved onto a grid over the input and made confident
    detections of class 0; every other proposal background."""
    proposals, scores, deltas, masks = (o.copy() for o in outputs)
    total = proposals.shape[1]
    if count > total:
        raise SystemExit(f"the file has {total} proposals: fewer than {count} instances")
    side = int(np.ceil(np.sqrt(count)))
    cell_h, cell_w = size[0] / side, size[1] / side
    scores[...] = 0.0
    scores[0, :, 0] = 1.0
    for index in range(count):
        row, col = divmod(index, side)
        proposals[0, index] = [col * cell_w + 1, row * cell_h + 1, (col + 1) * cell_w - 1, (row + 1) * cell_h - 1]
        scores[0, index] = 0.0
        scores[0, index, 1] = 0.95
    deltas[...] = 0.0
    return [proposals, scores, deltas, masks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/two_stage", type=Path)
    parser.add_argument("--target", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--repeats", default=50, type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import edgecnn
    from edgecnn.runtime.images import letterbox
    from edgecnn.runtime.instance_segmenter import decode_instances

    path = model_file("shapes_mask_rcnn.yaml", args.runs, args.target)
    segmenter = edgecnn.runtime.open(str(path), accelerator="cpu", threads=args.threads)
    height, width, _ = segmenter.size
    image = np.random.default_rng(0).integers(0, 255, (*IMAGE_SIZE, 3), dtype=np.uint8)
    rows = {}
    for count in COUNTS:
        parts = {"model": [], "paste": [], "rest": [], "total": []}
        for _ in range(args.repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            letterboxed, fit = letterbox(image, height, width)
            batch = letterboxed[None].astype(np.float32) / 255.0
            invoke = time.perf_counter()
            outputs = _with_instances(segmenter.raw(batch), count, (height, width))
            model_ms = (time.perf_counter() - invoke) * 1000
            found, masks, paste_ms = decode_instances(outputs, fit, IMAGE_SIZE, (height, width), segmenter.mask_size,
                                                      segmenter.delta_weights)
            fit.to_original(found.boxes, IMAGE_SIZE[1], IMAGE_SIZE[0])
            total_ms = (time.perf_counter() - start) * 1000
            if len(masks) != count:
                raise SystemExit(f"expected {count} instances, decoded {len(masks)}")
            for name, value in (("model", model_ms), ("paste", paste_ms), ("total", total_ms),
                                ("rest", total_ms - model_ms - paste_ms)):
                parts[name].append(value)
        rows[count] = {name: float(np.median(values[1:])) for name, values in parts.items()}
    print(f"\n{path.name} ({args.target}), LiteRT CPU, {args.threads} threads, {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} image, "
          f"{segmenter.mask_size}x{segmenter.mask_size} masks, p50 of {args.repeats}")
    print(f"{'instances':>10}{'model ms':>10}{'paste ms':>10}{'rest ms':>10}{'total ms':>10}")
    for count, row in rows.items():
        print(f"{count:>10}{row['model']:>10.2f}{row['paste']:>10.2f}{row['rest']:>10.2f}{row['total']:>10.2f}")
    if args.json:
        args.json.write_text(json.dumps({"file": str(path), "target": args.target, "threads": args.threads,
                                         "image_size": list(IMAGE_SIZE), "instances": rows}, indent=2))


if __name__ == "__main__":
    main()
