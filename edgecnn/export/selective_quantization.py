"""int8 that pays off on the CPU: nodes the XNNPACK delegate does not run in int8 but does run in
float (measured per file: those left to the default kernels in the int8 file and not in the fp32
one), and comparisons left to the default kernels (which rescale every element of quantized
inputs: SegNet's unpooling switches took 0.39 ms in int8 against 0.04 ms in float), are kept in
float inside the otherwise int8 file, through the converter's quantization debugger. A QAT
model's fake quantization can pin a node to int8 anyway: only the nodes the written file runs in
float are reported. Figures per family: docs/figures.md."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from edgecnn.export.convert import convert
from edgecnn.runtime.cpu_kernels import file_kernel_coverage, float_input_nodes, kernel_coverage
from edgecnn.runtime.engine import load_engine
from edgecnn.runtime.probe import probe

log = logging.getLogger("edgecnn.export")

COMPARISONS = frozenset({"EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"})


def int8_with_slow_nodes_in_float(model, int8: bytes, representative: Callable) -> tuple[bytes, dict[str, int]]:
    """``int8`` (``model``'s full-integer file), or the same conversion with the nodes XNNPACK
    leaves to the slow kernels only in int8, and the comparisons it leaves there, kept in float;
    and {op type: nodes} kept in float. Every file is first run in a child process (``probe``):
    one the native runtime aborts on is returned as it is, for the conversion's own check to
    report, and never loaded here."""
    if not probe(int8, threads=1).ok:
        return int8, {}
    coverage = file_kernel_coverage(int8)
    if coverage is None or not coverage.left:
        return int8, {}
    in_float = file_kernel_coverage(convert(model, "fp32"))
    nodes = [(op, name) for op, name in coverage.left_nodes if name and (op not in in_float.left or op in COMPARISONS)]
    if not nodes:
        return int8, {}
    try:
        selective = convert(model, "int8", representative, float_nodes=[name for _, name in nodes])
    except Exception as error:  # noqa: BLE001  the debugger's internals: fall back to the plain file, said
        log.warning("keeping %d nodes in float failed (%s): the file stays all int8", len(nodes),
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        return int8, {}
    if not probe(selective, threads=1).ok:
        return int8, {}
    engine = load_engine(selective, threads=1)
    # the converter may leave a listed node int8 (QAT's fake quantization fixes some): report what is float
    floating = float_input_nodes(engine)
    nodes = [(op, name) for op, name in nodes if name in floating]
    after = kernel_coverage(engine)
    if not nodes or after is None or sum(after.left.values()) > sum(coverage.left.values()):
        return int8, {}
    kept = dict(sorted(Counter(op for op, _ in nodes).items()))
    log.info("int8: kept in float the nodes that run faster in float on the CPU (%s)",
             ", ".join(f"{op} x{count}" for op, count in kept.items()))
    return selective, kept
