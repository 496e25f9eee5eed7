"""Open a .tflite with MediaPipe Tasks (the C++ task engine Android, iOS and the web run) and run
it on images; print one JSON document. A standalone script: it imports nothing from edgecnn, so
it runs in a separate environment that has mediapipe (which needs opencv-contrib-python, a
second ``cv2`` that must not share an environment with edgecnn's opencv-python-headless).

    python mediapipe_probe.py '{"model": "m.tflite", "task": "detection", "images": ["a.npy"],
                                "out": "dir", "score_threshold": 0.25, "max_results": -1}'

task: classification, detection or segmentation. Images: .npy (H, W, 3) uint8 RGB arrays, or
files OpenCV reads. Segmentation category masks go to <out>/<k>.npy. The request is one JSON
argument (not flags: this file belongs to the library, which leaves argument parsing to the CLI).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


class Request:
    def __init__(self, document: dict) -> None:
        self.model, self.task = str(document["model"]), str(document["task"])
        self.images = [str(image) for image in document.get("images", [])]
        self.out = document.get("out")
        self.score_threshold = float(document.get("score_threshold", 0.25))
        self.max_results = int(document.get("max_results", -1))


def main(argv: list[str]) -> int:
    args = Request(json.loads(argv[0]))
    report: dict = {"model": args.model, "task": args.task}
    try:
        import mediapipe as mp
        import numpy as np
        from mediapipe.tasks import python as tasks
        from mediapipe.tasks.python import vision

        report["mediapipe"] = mp.__version__
        base = tasks.BaseOptions(model_asset_path=args.model)
        if args.task == "classification":
            runner = vision.ImageClassifier.create_from_options(
                vision.ImageClassifierOptions(base_options=base, max_results=args.max_results))
        elif args.task == "detection":
            runner = vision.ObjectDetector.create_from_options(
                vision.ObjectDetectorOptions(base_options=base, max_results=args.max_results,
                                             score_threshold=args.score_threshold))
        else:
            runner = vision.ImageSegmenter.create_from_options(
                vision.ImageSegmenterOptions(base_options=base, output_category_mask=True,
                                             output_confidence_masks=False))
    except Exception as error:  # report why it does not open, as data
        report.update(opened=False, error=f"{type(error).__name__}: {error}")
        print(json.dumps(report))
        return 0
    report["opened"] = True
    results = []
    try:
        for index, path in enumerate(args.images):
            results.append(_run(runner, args, index, path, mp, np))
    except Exception as error:  # opened, then failed on a frame (e.g. labels that do not fit): data too
        report["run_error"] = f"{type(error).__name__}: {error}"
    report["results"] = results
    print(json.dumps(report), flush=True)  # before close(), which can fail after a failed frame
    runner.close()  # explicitly: at interpreter exit mediapipe's own __del__ fails noisily
    return 0


def _run(runner, args: Request, index: int, path: str, mp, np):
    """One image through the task: its categories, detections, or the path of its category mask."""
    rgb = _read(path)
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    if args.task == "classification":
        categories = runner.classify(image).classifications[0].categories
        return [{"index": c.index, "score": c.score, "label": c.category_name} for c in categories]
    if args.task == "detection":
        found = []
        for detection in runner.detect(image).detections:
            box, best = detection.bounding_box, detection.categories[0]
            found.append({"box": [box.origin_x, box.origin_y, box.origin_x + box.width, box.origin_y + box.height],
                          "score": best.score, "index": best.index, "label": best.category_name})
        return found
    mask = runner.segment(image).category_mask.numpy_view().copy()
    target = Path(args.out or ".") / f"{index}.npy"
    np.save(target, mask)
    return str(target)


def _read(path: str):
    import numpy as np

    if path.endswith(".npy"):
        return np.load(path)
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:  # a crash after opening: the traceback goes to stderr for the caller
        traceback.print_exc()
        sys.exit(1)
