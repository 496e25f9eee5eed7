"""The Runner: a model on the chosen accelerator (LiteRT's GPU accelerator or the CPU
interpreter), float arrays in and out, saying what actually ran where."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import Engine, dequantize, load_engine, pixel_table, quantize, read_model_bytes

log = logging.getLogger("edgecnn.runtime")
T = TypeVar("T")

ACCELERATORS = ("auto", "cpu", "gpu")


class Runner:
    """Float arrays in, float arrays out, on the chosen accelerator. ``backend``,
    ``accelerator`` and ``fully_accelerated`` say what actually ran; ``note`` why ``auto`` chose
    the CPU, when it did. ``auto`` takes LiteRT's GPU accelerator only when the whole graph runs
    there and the GPU is not a software Vulkan driver (SwiftShader, lavapipe: a real delegate
    code path, many times slower than the CPU); ``gpu`` takes it whatever it is. With ``probe`` (the default)
    the model is first loaded and run once in a child process (about 0.1 s on the CPU, more when
    the GPU compiles it), so that a file the native runtime aborts on raises an EdgeCNNError."""

    def __init__(self, data: bytes, accelerator: str = "auto", threads: int | None = None,
                 delegate: str | os.PathLike | None = None, probe: bool = True) -> None:
        if accelerator not in ACCELERATORS:
            raise EdgeCNNError(f"Unknown accelerator '{accelerator}'.", f"Choose one of: {', '.join(ACCELERATORS)}.")
        self.note: str | None = None
        try_gpu = accelerator == "gpu" or (accelerator == "auto" and not delegate)
        if accelerator == "gpu":
            from edgecnn.runtime.gpu import use_software_gpu

            use_software_gpu()  # before the probe, whose child inherits the Vulkan driver choice
        elif try_gpu:
            from edgecnn.runtime.gpu import software_vulkan_driver

            software = software_vulkan_driver()
            if software:
                try_gpu = False
                self.note = (f"the only GPU here is the software Vulkan driver {software}, slower than the CPU: "
                             "running on the CPU (--accelerator gpu uses it anyway)")
                log.info(self.note)
        if probe:  # a file the native runtime aborts on ends as an error, not a dead process
            from edgecnn.runtime.probe import require_loads

            require_loads(read_model_bytes(data), "The model", threads=threads, gpu=try_gpu and not delegate,
                          delegate=str(delegate) if delegate else None)
        # an external delegate library (old Pi images: tflite_runtime + a GPU delegate .so) takes
        # the place of LiteRT's own GPU accelerator; whether it took every op is not reported
        self.engine: Engine = load_engine(data, threads=threads, delegate=delegate)
        self.inputs, self.outputs = self.engine.inputs, self.engine.outputs
        self.gpu = None
        self._gpu_input: np.ndarray | None = None
        self.backend, self.accelerator, self.fully_accelerated = self.engine.backend, "cpu", None
        if delegate:
            self.accelerator = f"delegate:{Path(delegate).name}"
        elif try_gpu:
            self._try_gpu(data, required=accelerator == "gpu")

    def _try_gpu(self, data: bytes, required: bool) -> None:
        from edgecnn.runtime.gpu import GpuRunner

        try:
            runner = GpuRunner(data)
        except (ImportError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            if required:
                raise EdgeCNNError(f"LiteRT's GPU accelerator is not available here ({reason}).",
                                   "Use --accelerator cpu, or install a Vulkan driver (deploy/software-gpu.sh "
                                   "gives a software one for testing).") from error
            self.note = "no GPU accelerator could be created here: running on the CPU"
            log.debug("GPU accelerator: %s", reason)
            return
        if not runner.fully_accelerated and not required:
            self.note = "not every op runs on the GPU accelerator: running on the CPU"
            log.info(self.note)
            return
        self.gpu = runner
        self.backend, self.accelerator, self.fully_accelerated = "litert-compiled-model", "gpu", runner.fully_accelerated

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if self.gpu is None:
            return self.engine(*arrays)
        raw = self.gpu([quantize(np.asarray(a), info) for a, info in zip(arrays, self.inputs)])
        return [dequantize(o, info) for o, info in zip(raw, self.outputs)]

    def write_input(self, fill: Callable[[np.ndarray], T], raw: bool = False) -> T:
        """``fill`` writes the first input in place (into the interpreter's own tensor on the
        CPU): float values, or with ``raw`` the tensor's own dtype (see ``pixel_table``);
        ``invoke`` then runs the model. Returns what ``fill`` returns."""
        if self.gpu is None:
            return self.engine.write_input(fill, raw)
        if self._gpu_input is None:
            self._gpu_input = np.empty(self.inputs[0].shape, np.float32)
        return fill(self._gpu_input)

    def pixel_table(self, scale: float, offset: float) -> np.ndarray | None:
        """The pixel -> stored value table of an 8-bit quantized input (None on the GPU, which
        takes float input here, and for float models)."""
        return pixel_table(self.inputs[0], scale, offset) if self.gpu is None else None

    def invoke(self, dequantized: bool = True) -> list[np.ndarray]:
        """Run the model on the input ``write_input`` wrote; ``dequantized=False``: the outputs
        as stored (see ``Engine.invoke``)."""
        if self.gpu is None:
            return self.engine.invoke(dequantized)
        raw = self.gpu([quantize(self._gpu_input, self.inputs[0])])
        return [dequantize(o, info) for o, info in zip(raw, self.outputs)] if dequantized else raw
