"""edgecnn's ``resize`` (2x area halvings, then one bilinear step) against OpenCV's INTER_AREA
straight to the model size, on a real photo (scikit-learn's china.jpg) scaled to camera sizes:
time ratio and PSNR of the result against INTER_AREA's.

    python benchmarks/resize.py [--runs 100]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _median_ms(function, runs: int) -> float:
    from edgecnn.runtime.stats import timed_ms

    return float(np.median(timed_ms(function, runs)))


def main() -> None:
    import cv2
    from sklearn.datasets import load_sample_image

    from edgecnn.runtime.images import resize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    photo = load_sample_image("china.jpg")
    rows = []
    for source in [(640, 480), (1280, 720), (1920, 1080)]:
        frame = cv2.resize(photo, source, interpolation=cv2.INTER_CUBIC)
        for target in [(224, 224), (256, 256), (300, 300), (320, 240)]:
            area = cv2.resize(frame, target, interpolation=cv2.INTER_AREA)
            ours = resize(frame, *target)
            error = np.mean((ours.astype(np.float64) - area) ** 2)
            area_ms = _median_ms(lambda: cv2.resize(frame, target, interpolation=cv2.INTER_AREA), args.runs)
            ours_ms = _median_ms(lambda: resize(frame, *target), args.runs)
            rows.append({"source": list(source), "target": list(target), "inter_area_ms": round(area_ms, 3),
                         "resize_ms": round(ours_ms, 3), "speed_ratio": round(area_ms / ours_ms, 2),
                         "psnr_db": round(float(10 * np.log10(255 ** 2 / error)), 2) if error else None})
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
