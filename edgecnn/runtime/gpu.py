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

ICD_NAME = "vk_swiftshader_icd.json"


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


@dataclass
class AcceleratedRun:
    """What happened when the model was compiled for the GPU (with CPU fallback) and run once."""

    available: bool  # a GPU accelerator could be created at all
    fully_accelerated: bool | None = None  # every op ran on the GPU
    outputs: list[np.ndarray] = field(default_factory=list)  # in the model's output order
    error: str | None = None


def run_on_gpu(model: bytes, inputs: Sequence[np.ndarray]) -> AcceleratedRun:
    """Compile ``model`` for GPU with CPU fallback, run ``inputs`` (already in the model's input
    dtypes) once, read the raw outputs. Never raises for a missing GPU or a failed run:
    ``available`` is False, or ``error`` says what failed."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    except ImportError as error:
        return AcceleratedRun(available=False, error=f"ai-edge-litert has no CompiledModel: {error}")
    try:
        compiled = CompiledModel.from_buffer(model, hardware_accel=HardwareAccelerator.GPU | HardwareAccelerator.CPU)
    except RuntimeError as error:
        return AcceleratedRun(available=False, error=_first_line(error))
    fully_accelerated = bool(compiled.is_fully_accelerated())
    try:
        signature = next(iter(compiled.get_signature_list()))
        input_buffers = compiled.create_input_buffers(0)
        output_buffers = compiled.create_output_buffers(0)
        for buffer, array in zip(input_buffers, inputs):
            buffer.write(np.ascontiguousarray(array))
        compiled.run_by_index(0, input_buffers, output_buffers)
        details = compiled.get_output_tensor_details(signature)
        outputs = []
        for buffer, (name, info) in zip(output_buffers, details.items()):
            shape = tuple(info["shape"])
            outputs.append((name, buffer.read(int(np.prod(shape)), np.dtype(info["dtype"])).reshape(shape)))
    except (RuntimeError, ValueError) as error:
        return AcceleratedRun(available=True, fully_accelerated=fully_accelerated, error=_first_line(error))
    outputs.sort(key=lambda item: output_order(item[0]))
    return AcceleratedRun(available=True, fully_accelerated=fully_accelerated, outputs=[o for _, o in outputs])


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith("===")]
    return lines[-1].strip() if lines else type(error).__name__
