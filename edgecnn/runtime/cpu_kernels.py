"""Which of a file's nodes the CPU's fast kernels (the XNNPACK delegate) run, read from the
interpreter itself.

Coverage comes from the delegate's own partitioning: after the interpreter applies XNNPACK (by
default on every backend that has it), each partition it took is one DELEGATE node in the
interpreter's node list, whose inputs and outputs bound the partition. Walking back from the
graph's outputs and the partitions' inputs through the nodes that produce them finds the nodes
left to TFLite's default kernels; every other node of the file runs inside a partition."""

from __future__ import annotations

import collections
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from edgecnn.runtime.engine import Engine, load_engine

DELEGATE_OP = "DELEGATE"


@dataclass
class KernelCoverage:
    nodes: int  # the file's nodes (operators of the main subgraph)
    delegated: int  # of them, run inside XNNPACK partitions
    partitions: int  # XNNPACK partitions (one DELEGATE node each)
    left: dict[str, int] = field(default_factory=dict)  # op type -> nodes left to the default kernels
    left_nodes: list[tuple[str, str]] = field(default_factory=list)  # (op type, its first output's name)

    @property
    def share(self) -> float:
        return self.delegated / self.nodes if self.nodes else 1.0

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "left_nodes"}, "share": round(self.share, 4)}


def kernel_coverage(engine: Engine) -> KernelCoverage | None:
    """The XNNPACK coverage of a loaded engine (see the module); None for an interpreter that
    does not list its nodes."""
    # the node list has no public accessor in LiteRT, tflite_runtime or tf.lite; all three have this
    list_nodes = getattr(engine.interpreter, "_get_ops_details", None)
    if list_nodes is None:
        return None
    try:
        ops = list_nodes()
        details = engine.interpreter.get_tensor_details()
    except (ValueError, RuntimeError, UnicodeDecodeError, IndexError):  # a damaged file's node list or names
        return None
    delegates = [op for op in ops if op["op_name"] == DELEGATE_OP]
    originals = [op for op in ops if op["op_name"] != DELEGATE_OP]
    from_partitions = {int(t) for op in delegates for t in op["outputs"]}
    producer = {int(t): op for op in originals for t in op["outputs"]}
    pending = [info.index for info in engine.outputs] + [int(t) for op in delegates for t in op["inputs"]]
    seen: set[int] = set()
    left: dict[int, dict] = {}
    while pending:
        tensor = pending.pop()
        if tensor < 0 or tensor in seen:
            continue
        seen.add(tensor)
        node = None if tensor in from_partitions else producer.get(tensor)
        if node is not None and node["index"] not in left:
            left[node["index"]] = node
            pending.extend(int(t) for t in node["inputs"])
    counts = collections.Counter(op["op_name"] for op in left.values())
    names = {info["index"]: info["name"] for info in details}
    nodes = [(op["op_name"], names.get(int(op["outputs"][0]), "")) for _, op in sorted(left.items())]
    return KernelCoverage(len(originals), len(originals) - len(left), len(delegates), dict(sorted(counts.items())),
                          nodes)


def float_input_nodes(engine: Engine) -> set[str]:
    """Output tensor names of the nodes whose first input is float32: in an int8 file, the nodes
    that run in float (empty for an interpreter that does not list its nodes)."""
    list_nodes = getattr(engine.interpreter, "_get_ops_details", None)
    if list_nodes is None:
        return set()
    details = engine.interpreter.get_tensor_details()
    names = {info["index"]: info["name"] for info in details}
    floats = {info["index"] for info in details if info["dtype"] == np.float32}
    return {names.get(int(op["outputs"][0]), "") for op in list_nodes()
            if len(op["inputs"]) and len(op["outputs"]) and int(op["inputs"][0]) in floats}


def file_kernel_coverage(model: str | os.PathLike | bytes, threads: int | None = None) -> KernelCoverage | None:
    """``kernel_coverage`` of a file on the CPU interpreter."""
    return kernel_coverage(load_engine(model, threads=threads))
