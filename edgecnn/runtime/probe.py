"""Load and run a model once in a child process before trusting it in this one.

Some well-formed files still make the native runtime abort: an int8 file whose calibration data
had no variation can carry requantization scales that a kernel's set-up rejects with an
assertion (SIGABRT inside ``allocate_tensors``), which no ``try`` can catch. A child process
takes that blow instead, and the caller gets an error that names the problem.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from edgecnn.errors import EdgeCNNError


@dataclass(frozen=True)
class ProbeResult:
    signal_name: str | None = None  # the signal that killed the child, if one did
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """The child loaded and ran the model, or failed with an ordinary Python error."""
        return self.signal_name is None and not self.timed_out


def probe(data: bytes, threads: int | None = None, gpu: bool = False, delegate: str | None = None,
          timeout: float = 300.0) -> ProbeResult:
    """Load ``data``, allocate and invoke it once on zeros (and on the GPU accelerator when
    ``gpu``) in a child process. Python-level failures count as ``ok``: the caller meets them
    again in-process, as proper errors; only a native crash or a hang is reported here."""
    request = json.dumps({"threads": threads, "gpu": gpu, "delegate": str(delegate) if delegate else None})
    command = [sys.executable, "-c", "from edgecnn.runtime.probe import child_main; child_main()", request]
    try:
        finished = subprocess.run(command, input=data, capture_output=True, timeout=timeout,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return ProbeResult(timed_out=True)
    if finished.returncode < 0:
        return ProbeResult(signal_name=_signal_name(-finished.returncode))
    return ProbeResult()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def child_main() -> None:
    import numpy as np

    request = json.loads(sys.argv[1])
    data = sys.stdin.buffer.read()
    try:
        from edgecnn.runtime.engine import load_engine

        engine = load_engine(data, threads=request["threads"], delegate=request["delegate"])
        zeros = [np.zeros(info.shape, np.float32) for info in engine.inputs]
        engine(*zeros)
        if request["gpu"]:
            from edgecnn.runtime.gpu import run_on_gpu
            from edgecnn.runtime.engine import quantize

            run_on_gpu(data, [quantize(z, info) for z, info in zip(zeros, engine.inputs)])
    except Exception:  # noqa: BLE001 - ordinary errors are the parent's to report, in-process
        pass


def crashing_operators(data: bytes, threads: int | None = None) -> list[str]:
    """Which op kinds, cut out of ``data`` one at a time (first occurrence), crash the runtime;
    each as ``OP (output tensor name)``, the name pointing at the layer it came from."""
    from edgecnn.runtime.surgery import output_tensor_name, single_operator_models

    found = []
    for name, single in single_operator_models(data).items():
        if probe(single, threads=threads, timeout=60).signal_name:
            found.append(f"{name} ({output_tensor_name(single)})")
    return found


def require_loads(data: bytes, what: str, threads: int | None = None, gpu: bool = False,
                  delegate: str | None = None, fix: str | None = None) -> None:
    """Raise an EdgeCNNError, instead of letting this process die, when ``data`` crashes the
    runtime. ``what`` names the file in the message; ``fix`` replaces the generic advice."""
    result = probe(data, threads=threads, gpu=gpu, delegate=delegate)
    if result.signal_name is None:  # no crash (a slow load is not one: go on and let it run here)
        return
    try:
        culprits = crashing_operators(data, threads)
    except Exception:  # noqa: BLE001 - a damaged file may not even cut into single ops; the crash is the news
        culprits = []
    where = f" The op that does it: {', '.join(culprits)}." if culprits else ""
    raise EdgeCNNError(
        f"{what} crashes the LiteRT runtime ({result.signal_name} while loading and running it once "
        f"in a separate process).{where}",
        fix or "Convert the model again; for int8 files, calibrate on varied, representative images.",
    )
