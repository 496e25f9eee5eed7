"""Every classification architecture at full size, fp32 and fp16, on LiteRT's GPU accelerator.

    python benchmarks/gpu_zoo.py [--models resnet50 vgg16 ...]

Prints one JSON line per model and target: fully_accelerated (measured by running the file on
the accelerator) and the max |diff| against Keras (targets: 1e-3 fp32, 2e-2 fp16, relative to
the largest logit). On SwiftShader (deploy/software-gpu.sh) compatibility is real, times are not.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import edgecnn
from edgecnn._keras import keras
from edgecnn.export.convert import convert
from edgecnn.runtime.gpu import run_on_gpu, use_software_gpu

TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=edgecnn.list_models("classification"))
    args = parser.parse_args()
    use_software_gpu()
    rng = np.random.default_rng(0)
    for name in args.models:
        model = edgecnn.create_model(name)
        x = rng.uniform(size=(1, *model.input_shape[1:])).astype(np.float32)
        expected = model(x, training=False).numpy()
        for target in ("fp32", "fp16"):
            start = time.time()
            result = run_on_gpu(convert(model, target), [x])
            diff = float(np.abs(result.outputs[0] - expected).max()) if result.outputs else None
            scale = max(1.0, float(np.abs(expected).max()))
            print(json.dumps({
                "model": name, "target": target, "available": result.available,
                "fully_accelerated": result.fully_accelerated, "max_abs_diff": diff,
                "within_tolerance": diff is not None and diff <= TOLERANCE[target] * scale,
                "error": result.error, "seconds": round(time.time() - start, 1),
            }), flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
