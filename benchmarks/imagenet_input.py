"""What the ImageNet input layer costs: ResNet-50 at 224x224 in the layout of Keras Applications'
weights (ReLU, stride on the first 1x1), fp32, with and without the fixed 1x1 convolution that
turns RGB in [0, 1] into the weights' BGR, mean-subtracted input; invoke times interleaved in
rounds on the CPU.

    python benchmarks/imagenet_input.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse

import numpy as np
from rounds import timed_rounds  # benchmarks/, beside this script


def main() -> None:
    import edgecnn
    from edgecnn.export.convert import convert
    from edgecnn.runtime.engine import load_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--runs", type=int, default=10, help="invokes per model and round (default 10)")
    args = parser.parse_args()
    engines = {}
    for name, preprocessing in (("without", None), ("with the input layer", "caffe")):
        model = edgecnn.create_model("resnet50", bottleneck_stride="1x1", preprocessing=preprocessing)
        engines[name] = load_engine(convert(model, "fp32"), threads=args.threads)
    batch = np.random.default_rng(0).uniform(0, 1, (1, 224, 224, 3)).astype(np.float32)
    for engine in engines.values():
        engine(batch)
    timings = timed_rounds({name: (lambda _, e=engine: e.invoke(dequantized=False)) for name, engine in engines.items()},
                           list(range(args.runs)), args.rounds)
    medians = {name: float(np.median(values)) for name, values in timings.items()}
    print(f"\nResNet-50 (v1 layout), fp32, 224x224, LiteRT CPU, {args.threads} threads, "
          f"{args.rounds} rounds x {args.runs} invokes")
    for name, median in medians.items():
        print(f"{name:<24}{median:>9.2f} ms")
    print(f"ratio with / without: {medians['with the input layer'] / medians['without']:.3f}")


if __name__ == "__main__":
    main()
