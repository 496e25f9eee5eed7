"""How much memory a loaded interpreter's tensor arena takes, read from the tensors themselves.

LiteRT's Python API does not report the arena's size, but after ``allocate_tensors`` every
tensor the interpreter allocates is a view into its arena: the read-write tensors of the main
subgraph (not the file's constants, which stay in the model's buffer, nor variables) lie in one
block, whose extent is the span of their addresses. Tensors inside an XNNPACK partition are not
allocated by the interpreter (the delegate keeps them in its own workspace, which shows only in the
process's resident memory)."""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.engine import Engine
from edgecnn.runtime.modelfile import activation_tensors

ALIGNMENT = 64  # TFLite's arena aligns every tensor to this many bytes


def tensor_arena_mb(engine: Engine, data: bytes) -> float | None:
    """The arena's extent in MB (see the module); None where the interpreter does not expose its
    tensors' memory."""
    spans = []
    for index in activation_tensors(data):
        try:
            view = engine.interpreter.tensor(index)()
        except (ValueError, IndexError, RuntimeError):  # not allocated: inside a delegate's partition
            continue
        if isinstance(view, np.ndarray) and view.nbytes:
            spans.append((view.ctypes.data, view.ctypes.data + view.nbytes))
    if not spans:
        return None
    total = sum(end - start for start, end in spans)
    extent = max(end for _, end in spans) - min(start for start, _ in spans)
    if extent > total + ALIGNMENT * len(spans):  # not one block (tensors allocated one by one): their union
        extent, reach = 0, 0
        for start, end in sorted(spans):
            extent += max(0, end - max(start, reach))
            reach = max(reach, end)
    return round(extent / 1e6, 3)
