"""Where a file's invoke time goes, per op type (`edgecnn benchmark --ops`): every node of the
main subgraph cut out as a model of its own (``surgery.single_node_model``) and timed on the CPU
interpreter, XNNPACK included where it takes the op. LiteRT's Python API exposes no op profiler,
so these are the nodes' times alone: they leave out what running inside one partition saves (no
hand-over between nodes) and add one invoke's overhead per node, so read them as shares, not as a
sum that equals the whole model's invoke."""

from __future__ import annotations

import os

import numpy as np

from edgecnn.runtime.engine import load_engine, read_model_bytes
from edgecnn.runtime.modelfile import operator_names
from edgecnn.runtime.stats import timed_ms
from edgecnn.runtime.surgery import main_operator_count, single_node_model


def op_time_shares(model: str | os.PathLike | bytes, threads: int | None = None, runs: int = 20) -> dict:
    """{op type: {nodes, ms (p50 of each node alone, summed), share}}, largest first."""
    data = read_model_bytes(model)
    names = operator_names(data)
    totals: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    for index in range(main_operator_count(data)):
        engine = load_engine(single_node_model(data, index), threads=threads)
        arrays = [rng.uniform(0, 1, info.shape).astype(np.float32) if np.issubdtype(info.dtype, np.floating)
                  or info.quantized else np.zeros(info.shape, info.dtype) for info in engine.inputs]
        engine(*arrays)
        node_ms = float(np.median(timed_ms(lambda: engine.invoke(dequantized=False), runs)))  # noqa: B023
        totals.setdefault(names[index], []).append(node_ms)
    whole = sum(sum(times) for times in totals.values()) or 1.0
    rows = {name: {"nodes": len(times), "ms": round(sum(times), 4), "share": round(sum(times) / whole, 4)}
            for name, times in totals.items()}
    return dict(sorted(rows.items(), key=lambda item: -item[1]["ms"]))
