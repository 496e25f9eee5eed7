"""Optimization targets (size, compression, latency, accuracy of int8 and pruned + QAT files), measured in one run and printed as ratios.

    python benchmarks/optimize_convert.py [--skip-resnet50] [--threads T]

1. ResNet-50 at 224x224: int8 size / fp32 size (target <= 0.27); 50%-pruned + PQAT int8 gzip /
   fp32 gzip (target <= 0.15); int8 / fp32 CPU latency p50 on XNNPACK, same threads (<= 0.45).
2. scikit-learn digits: top-1 of float, post-training int8, QAT int8 and 50%-pruned + PQAT int8.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time

import numpy as np

import edgecnn
from edgecnn._keras import keras
from edgecnn.data.images import load_classification_samples
from edgecnn.export.convert import convert
from edgecnn.export.report import cpu_latency
from edgecnn.optimize.pruning import PruningConfig, kernel_sparsity, prune, pruning_callbacks, strip
from edgecnn.optimize.qat import quantize_aware
from edgecnn.runtime import load_engine


def _compile(model, learning_rate):
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def resnet50(threads: int) -> dict:
    rng = np.random.default_rng(0)
    model = edgecnn.create_model("resnet50")
    calibration = rng.uniform(size=(8, 224, 224, 3)).astype(np.float32)
    fp32 = convert(model, "fp32")
    int8 = convert(model, "int8", lambda: ([image[None]] for image in calibration))
    # 50% magnitude pruning (a few steps apply the masks), strip, PQAT, int8
    pruned = _compile(prune(model, PruningConfig(0.5, "constant", end_step=2, frequency=1)), 1e-5)
    labels = rng.integers(0, 1000, size=4)
    pruned.fit(calibration[:4], labels, batch_size=2, epochs=1, verbose=0, callbacks=pruning_callbacks())
    stripped = strip(pruned)
    pqat = _compile(quantize_aware(stripped, preserve_sparsity=True), 1e-6)
    pqat.fit(calibration[:4], labels, batch_size=2, epochs=1, verbose=0)
    pqat_int8 = convert(pqat, "int8")
    sample = calibration[:1]
    fp32_latency = cpu_latency(load_engine(fp32, threads=threads), sample, threads)
    int8_latency = cpu_latency(load_engine(int8, threads=threads), sample, threads)
    fp32_gzip = len(gzip.compress(fp32, 9))
    return {
        "fp32_bytes": len(fp32), "int8_bytes": len(int8), "int8_size_ratio": len(int8) / len(fp32),
        "fp32_gzip": fp32_gzip, "pruned_pqat_int8_gzip": len(gzip.compress(pqat_int8, 9)),
        "pruned_pqat_gzip_ratio": len(gzip.compress(pqat_int8, 9)) / fp32_gzip,
        "pruned_kernel_sparsity": float(np.mean(list(kernel_sparsity(stripped).values()))),
        "fp32_p50_ms": fp32_latency["p50"], "int8_p50_ms": int8_latency["p50"],
        "int8_latency_ratio": int8_latency["p50"] / fp32_latency["p50"], "threads": threads,
    }


def digits() -> dict:
    size = (32, 32, 3)
    x, y, _ = load_classification_samples("builtin:digits", size, split="train")
    x_val, y_val, _ = load_classification_samples("builtin:digits", size, split="val")

    def top1(flatbuffer: bytes) -> float:
        engine = load_engine(flatbuffer)
        return float(np.mean([np.argmax(engine(image[None])[0]) == label for image, label in zip(x_val, y_val)]))

    keras.utils.set_random_seed(0)
    model = _compile(edgecnn.create_model("test_vgg", input_shape=size, num_classes=10, dropout=0.0), 2e-3)
    model.fit(x, y, epochs=30, batch_size=32, verbose=0,
              callbacks=[keras.callbacks.ReduceLROnPlateau("loss", factor=0.3, patience=3)])
    results = {"float_keras": float(model.evaluate(x_val, y_val, verbose=0)[1]), "fp32": top1(convert(model))}
    results["ptq_int8"] = top1(convert(model, "int8", lambda: ([image[None]] for image in x[:300])))
    qat = _compile(quantize_aware(model), 1e-4)
    qat.fit(x, y, epochs=3, batch_size=32, verbose=0)
    results["qat_int8"] = top1(convert(qat, "int8"))
    steps = 3 * int(np.ceil(len(x) / 32))
    pruned = _compile(prune(model, PruningConfig(0.5, "polynomial", end_step=steps, frequency=10)), 5e-4)
    pruned.fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=pruning_callbacks())
    pqat = _compile(quantize_aware(strip(pruned), preserve_sparsity=True), 1e-4)
    pqat.fit(x, y, epochs=3, batch_size=32, verbose=0)
    results["pruned_pqat_int8"] = top1(convert(pqat, "int8"))
    results["qat_minus_float_points"] = 100 * (results["qat_int8"] - results["fp32"])
    results["pruned_pqat_minus_float_points"] = 100 * (results["pruned_pqat_int8"] - results["fp32"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-resnet50", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    start = time.time()
    figures = {"digits": digits()}
    if not args.skip_resnet50:
        figures["resnet50"] = resnet50(args.threads)
    figures["seconds"] = round(time.time() - start, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
