"""Run a model on LiteRT's GPU accelerator (``CompiledModel`` + ``HardwareAccelerator.GPU``).

On a machine without a GPU, a software Vulkan driver (SwiftShader, see deploy/software-gpu.sh)
gives the same delegate code path: which ops the GPU delegate accepts and whether the whole
graph runs there are real answers; its timings mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.runtime.engine import output_order
from edgecnn.runtime.native_logs import native_output_quiet, quiet_at_exit

ICD_NAME = "vk_swiftshader_icd.json"
# Vulkan drivers that run on the CPU: a real delegate code path, many times slower than XNNPACK
SOFTWARE_VULKAN = {"swiftshader": "SwiftShader", "lvp": "lavapipe", "lavapipe": "lavapipe", "llvmpipe": "llvmpipe"}
ICD_DIRECTORIES = ("/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d",
                   "~/.local/share/vulkan/icd.d")


def software_gpu_dir() -> Path:
    return Path(os.environ.get("EDGECNN_SWIFTSHADER_DIR") or Path.home() / ".cache" / "edgecnn" / "swiftshader")


def use_software_gpu() -> bool:
    """Point the Vulkan loader at SwiftShader if deploy/software-gpu.sh installed it and no
    driver was chosen already. Must run before the first GPU model is created in the process."""
    if os.environ.get("VK_ICD_FILENAMES"):
        return Path(os.environ["VK_ICD_FILENAMES"]).is_file()
    icd = software_gpu_dir() / ICD_NAME
    if not icd.is_file():
        return False
    os.environ["VK_ICD_FILENAMES"] = str(icd)
    runtime_dir = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/edgecnn-xdg-{os.getuid()}")
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return True


def software_vulkan_driver() -> str | None:
    """The name of the software Vulkan driver that LiteRT's GPU accelerator would run on here
    (SwiftShader, lavapipe), or None when a hardware driver is among the choices (or there is no
    Vulkan, e.g. Android's OpenCL path). The drivers are the ones the Vulkan loader would see: the
    ICD files named by VK_ICD_FILENAMES / VK_DRIVER_FILES, else those in the standard folders."""
    chosen = os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES")
    if chosen:
        names = [Path(item).name.lower() for item in chosen.split(os.pathsep) if item]
    else:
        names = [file.name.lower() for folder in ICD_DIRECTORIES if (path := Path(folder).expanduser()).is_dir()
                 for file in path.glob("*.json")]
    software = [label for name in names for key, label in SOFTWARE_VULKAN.items() if key in name]
    return software[0] if names and len(software) >= len(names) else None


@dataclass
class AcceleratedRun:
    """What happened when the model was compiled for the GPU (with CPU fallback) and run once."""

    available: bool  # a GPU accelerator could be created at all
    fully_accelerated: bool | None = None  # every op ran on the GPU
    outputs: list[np.ndarray] = field(default_factory=list)  # in the model's output order
    error: str | None = None


class GpuRunner:
    """A model compiled for LiteRT's GPU accelerator (CPU fallback for what the GPU rejects),
    with its I/O buffers created once. Inputs go in the model's own dtypes; outputs come back raw,
    in the model's output order."""

    def __init__(self, model: bytes) -> None:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator

        quiet_at_exit()  # its accelerators log again when the process ends
        # LiteRT's GPU set-up logs to stderr, while compiling and in the first run: both kept quiet
        with native_output_quiet():
            self.compiled = CompiledModel.from_buffer(
                model, hardware_accel=HardwareAccelerator.GPU | HardwareAccelerator.CPU)
            self.fully_accelerated = bool(self.compiled.is_fully_accelerated())
            signature = next(iter(self.compiled.get_signature_list()))
            self.input_buffers = self.compiled.create_input_buffers(0)
            self.output_buffers = self.compiled.create_output_buffers(0)
            details = self.compiled.get_output_tensor_details(signature)
        outputs = [(name, tuple(info["shape"]), np.dtype(info["dtype"]), buffer)
                   for buffer, (name, info) in zip(self.output_buffers, details.items())]
        self._outputs = sorted(outputs, key=lambda item: output_order(item[0]))
        self._first_run = True

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._first_run:  # the first buffer write creates LiteRT's environment, which logs
            self._first_run = False
            with native_output_quiet():
                return self._run(inputs)
        return self._run(inputs)

    def __del__(self) -> None:
        """Releasing the compiled model logs too (``DestroyAccelerator``): quietly."""
        parts = [self.__dict__.pop(name, None) for name in ("compiled", "input_buffers", "output_buffers", "_outputs")]
        with native_output_quiet():
            parts.clear()

    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for buffer, array in zip(self.input_buffers, inputs):
            buffer.write(np.ascontiguousarray(array))
        self.compiled.run_by_index(0, self.input_buffers, self.output_buffers)
        return [buffer.read(int(np.prod(shape)), dtype).reshape(shape) for _, shape, dtype, buffer in self._outputs]


def run_on_gpu(model: bytes, inputs: Sequence[np.ndarray]) -> AcceleratedRun:
    """Compile ``model`` for GPU with CPU fallback, run ``inputs`` (already in the model's input
    dtypes) once, read the raw outputs. Never raises for a missing GPU or a failed run:
    ``available`` is False, or ``error`` says what failed."""
    try:
        runner = GpuRunner(model)
    except ImportError as error:
        return AcceleratedRun(available=False, error=f"ai-edge-litert has no CompiledModel: {error}")
    except RuntimeError as error:
        return AcceleratedRun(available=False, error=_first_line(error))
    try:
        outputs = runner(inputs)
    except (RuntimeError, ValueError) as error:
        return AcceleratedRun(available=True, fully_accelerated=runner.fully_accelerated, error=_first_line(error))
    return AcceleratedRun(available=True, fully_accelerated=runner.fully_accelerated, outputs=outputs)


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith("===")]
    return lines[-1].strip() if lines else type(error).__name__
