"""The browser page on the trained detectors: each detector recipe's int8 and fp16 files run in
headless Chromium (deploy/web, driven by deploy/web/test/drive.mjs) and in edgecnn's runtime on
the same fresh shapes images; per file and delegate, how many detections match (same label, box
IoU >= 0.9, score within 0.02), the worst IoU and score difference among them, and the page's
and the runtime's pipeline p50 (the page's GPU runs on SwiftShader here: compatibility, not speed).
YOLO files run in MediaPipe's semantics on both sides (one class per box, NMS across classes at
IoU 0.3), the region detectors in edgecnn's. The 128-pixel images are enlarged 4x by pixel
repetition (both sides shrink them back exactly): MediaPipe's boxes are whole pixels, which on a
25-pixel shape would cost the IoU more than the 0.9 bound.

    bash deploy/web/setup.sh
    python benchmarks/browser_detectors.py --runs runs/bench --images 8 --json docs/browser_detectors.json

Each recipe is trained once into --runs (reused afterwards); files are converted once beside it.
Needs Chromium (`apt-get install chromium`, or --chromium PATH) and Node.js.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from recipe_runs import model_file  # benchmarks/, beside this script

WEB = Path(__file__).resolve().parents[1] / "deploy" / "web"
RECIPES = ("shapes_yolo", "shapes_rcnn", "shapes_fast_rcnn", "shapes_faster_rcnn")
MEDIAPIPE = {"shapes_yolo": {"agnostic": True, "iou_threshold": 0.3}}  # the page runs YOLO files in MediaPipe
MIN_IOU, MAX_SCORE_DIFF = 0.9, 0.02
SIZE, ENLARGE = 128, 4  # the shapes images' side, and the pixel repetition


def compare(theirs: list[dict], ours: list, size: int, unmatched: list) -> tuple[int, int, float, float]:
    """(matched, max(count of either), worst IoU and score difference among the matched); the
    page's detections without a match are added to ``unmatched``."""
    from edgecnn.runtime.detection import iou_matrix

    matched, worst_iou, worst_score = 0, 1.0, 0.0
    for found in theirs:
        same = [mine for mine in ours if mine.label == found["label"]]
        if not same:
            unmatched.append(found)
            continue
        box = np.clip(found["box"], 0, size)  # MediaPipe does not clip boxes to the image; edgecnn does
        overlap = iou_matrix(np.array([box], np.float32), np.array([m.box for m in same], np.float32))[0]
        best = int(overlap.argmax())
        difference = abs(same[best].score - found["score"])
        if overlap[best] >= MIN_IOU and difference <= MAX_SCORE_DIFF:
            matched += 1
            worst_iou, worst_score = min(worst_iou, float(overlap[best])), max(worst_score, difference)
        else:
            unmatched.append({**found, "nearest": [round(float(overlap[best]), 3), round(same[best].score, 4)]})
    return matched, max(len(theirs), len(ours)), worst_iou, worst_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--targets", nargs="+", default=["int8", "fp16"])
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true", help="print the page's detections that found no match")
    args = parser.parse_args()
    if not args.chromium or not (WEB / "node_modules" / "playwright-core").is_dir() or not shutil.which("node"):
        sys.exit("needs Chromium (apt-get install chromium), Node.js and `bash deploy/web/setup.sh`")
    import cv2

    from edgecnn.data.shapes import generate_sample
    from edgecnn.runtime import open as open_pipeline

    sys.path.insert(0, str(WEB))
    from page_jobs import make_site, run_jobs  # deploy/web: the page's own server and driver

    rng = np.random.default_rng(2026)
    images = [np.repeat(np.repeat(generate_sample(rng, SIZE).image, ENLARGE, 0), ENLARGE, 1) for _ in range(args.images)]
    files = {(recipe, target): model_file(f"{recipe}.yaml", args.runs, target)
             for recipe in RECIPES for target in args.targets}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        served = make_site(site)
        urls = []
        for index, image in enumerate(images):
            cv2.imwrite(str(served / f"{index}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            urls.append(f"files/{index}.png")
        jobs = []
        for (recipe, target), path in files.items():
            shutil.copy(path, served / f"{recipe}_{target}.tflite")
            jobs += [{"name": f"{recipe} {target} {delegate}", "model": f"files/{recipe}_{target}.tflite",
                      "images": urls, "delegate": delegate, "options": {}} for delegate in ("cpu", "gpu")]
        output = run_jobs(site, jobs, args.chromium, site)
    print(f"{'file':28} {'delegate':28} {'matched':>9} {'min IoU':>8} {'max ds':>7} {'page ms':>8} {'runtime ms':>10}")
    for (recipe, target), path in files.items():
        detector = open_pipeline(path, accelerator="cpu", **MEDIAPIPE.get(recipe, {}))
        ours = [detector(image) for image in images]
        for delegate in ("cpu", "gpu"):
            run = output["jobs"][f"{recipe} {target} {delegate}"]
            if "error" in run:
                print(f"{recipe} {target} {delegate}: {run['error']}")
                continue
            unmatched: list[dict] = []
            totals = np.array([compare(r["detections"], o.detections, SIZE * ENLARGE, unmatched)
                               for r, o in zip(run["results"], ours)])
            row = {"recipe": recipe, "target": target, "delegate": run["delegate"],
                   "matched": int(totals[:, 0].sum()), "detections": int(totals[:, 1].sum()),
                   "min_iou": round(float(totals[:, 2].min()), 3), "max_score_diff": round(float(totals[:, 3].max()), 4),
                   "page_pipeline_p50_ms": round(float(np.median([r["pipeline_ms"] for r in run["results"]])), 1),
                   "runtime_pipeline_p50_ms": round(float(np.median([o.pipeline_ms for o in ours])), 1)}
            rows.append(row)
            print(f"{recipe + ' ' + target:28} {row['delegate']:28} {row['matched']:>4}/{row['detections']:<4} "
                  f"{row['min_iou']:>8} {row['max_score_diff']:>7} {row['page_pipeline_p50_ms']:>8} "
                  f"{row['runtime_pipeline_p50_ms']:>10}")
            for found in unmatched if args.verbose else ():
                print("    unmatched:", json.dumps(found))
    if args.json:
        args.json.write_text(json.dumps({"browser": output["browser"], "images": args.images, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
