"""Load a TFLite/LiteRT model on the best interpreter present and run it on NumPy arrays.

Backends, in order of preference: ``ai-edge-litert`` (LiteRT), ``tflite_runtime`` (old Pi
images; it breaks with NumPy 2), ``tf.lite`` (last: it needs TensorFlow).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.native_logs import native_output_quiet

# (backend name, module holding Interpreter)
_BACKENDS = (
    ("litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tf.lite", "tensorflow.lite.python.interpreter"),  # tf.lite.Interpreter (the package itself lacks it)
)
_FLATBUFFER_ID = b"TFL3"
T = TypeVar("T")


def available_backends() -> list[str]:
    found = []
    for name, module in _BACKENDS:
        try:
            importlib.import_module(module)
        except Exception:  # ImportError, or tflite_runtime built for NumPy 1 failing on NumPy 2
            continue
        found.append(name)
    return found


def _interpreter_class(backend: str | None):
    errors = []
    for name, module in _BACKENDS:
        if backend not in (None, name):
            continue
        try:
            return name, importlib.import_module(module).Interpreter
        except Exception as error:
            errors.append(f"{name}: {type(error).__name__}: {error}")
    wanted = backend or "any backend"
    raise EdgeCNNError(
        f"No TFLite interpreter could be loaded for {wanted} ({'; '.join(errors) or 'unknown backend'}).",
        "Install the runtime with: pip install ai-edge-litert",
    )


def read_model_bytes(model: str | os.PathLike | bytes) -> bytes:
    """The model's bytes, after checks that keep a bad file from reaching native code."""
    if isinstance(model, (bytes, bytearray)):
        data, label = bytes(model), "the model buffer"
    else:
        path = Path(model)
        if not path.is_file():
            raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path.")
        data, label = path.read_bytes(), f"'{path}'"
    if len(data) < 8 or data[4:8] != _FLATBUFFER_ID:
        raise EdgeCNNError(
            f"{label} is not a TFLite/LiteRT model (no TFL3 flatbuffer header).",
            "Pass a .tflite file written by `edgecnn convert` or another TFLite converter.",
        )
    return data


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int
    index: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)


def _tensor_info(details: dict) -> TensorInfo:
    scale, zero_point = details.get("quantization", (0.0, 0))
    return TensorInfo(
        name=details["name"],
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
        index=int(details["index"]),
    )


def output_order(name: str) -> tuple[int, str]:
    """Sort key putting signature outputs ``output_0, output_1, ... output_10`` in the Keras
    model's output order (the subgraph's own order is arbitrary)."""
    match = re.search(r"(\d+)$", name)
    return (int(match.group(1)) if match else 0, name)


def _in_model_order(interpreter, outputs: list[TensorInfo]) -> list[TensorInfo]:
    try:
        signatures = interpreter.get_signature_list()
        if not signatures:
            return outputs
        details = interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
    except (AttributeError, ValueError, RuntimeError):  # old runtimes, files without signatures
        return outputs
    rank = {int(info["index"]): position for position, (_, info) in
            enumerate(sorted(details.items(), key=lambda item: output_order(item[0])))}
    return sorted(outputs, key=lambda info: rank.get(info.index, len(rank)))


class Engine:
    """One loaded model. Call it with float arrays; integer I/O is quantized and dequantized
    with the tensors' own scale and zero point, so callers always see float32."""

    def __init__(self, interpreter, backend: str) -> None:
        self.interpreter = interpreter
        self.backend = backend
        self.delegate: str | None = None  # path of an external delegate library, when one is used
        self.inputs = [_tensor_info(d) for d in interpreter.get_input_details()]
        self._scratch: np.ndarray | None = None
        self.outputs = _in_model_order(interpreter, [_tensor_info(d) for d in interpreter.get_output_details()])

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if len(arrays) != len(self.inputs):
            raise EdgeCNNError(f"The model takes {len(self.inputs)} input(s), got {len(arrays)}.")
        for info, array in zip(self.inputs, arrays):
            array = np.asarray(array)
            if tuple(array.shape) != info.shape:
                raise EdgeCNNError(
                    f"Input '{info.name}' must have shape {info.shape}, got {tuple(array.shape)}.",
                    "Resize the image to the model's input size (the runtime pipelines do this for you).",
                )
            self.interpreter.set_tensor(info.index, quantize(array, info))
        return self.invoke()

    def write_input(self, fill: Callable[[np.ndarray], T], raw: bool = False) -> T:
        """Let ``fill`` write the (first) input and return what it returns; then call ``invoke``.
        ``fill`` writes float32 values, or with ``raw`` values in the tensor's own dtype (e.g.
        int8 through ``pixel_table``). A float input, or any with ``raw``, is written straight
        into the interpreter's own tensor: a frame's pixels are not copied a second time (on a
        small model that copy is a visible share of the frame). Otherwise ``fill`` writes a
        float scratch buffer that is then quantized."""
        info = self.inputs[0]
        if not raw and (info.quantized or info.dtype != np.float32):
            if self._scratch is None:
                self._scratch = np.empty(info.shape, np.float32)
            result = fill(self._scratch)
            self.interpreter.set_tensor(info.index, quantize(self._scratch, info))
            return result
        view = self.interpreter.tensor(info.index)()
        try:
            return fill(view)
        finally:
            del view  # invoke() refuses to run while a view of the interpreter's memory is alive

    def invoke(self, dequantized: bool = True) -> list[np.ndarray]:
        """Run on the inputs set (``__call__`` or ``write_input``); float outputs, or with
        ``dequantized=False`` the outputs as stored (an int8 output stays int8), for a caller that
        needs no float values (an argmax) or times the model alone."""
        try:
            self.interpreter.invoke()
            outputs = [self.interpreter.get_tensor(info.index) for info in self.outputs]
            return [dequantize(o, info) for o, info in zip(outputs, self.outputs)] if dequantized else outputs
        except (RuntimeError, ValueError) as error:  # a damaged file can load and still fail here
            raise EdgeCNNError(
                f"The model failed to run on {self.backend} ({str(error).strip().splitlines()[-1]}).",
                "The file may be truncated or corrupt: convert it again.",
            ) from error


def quantize(array: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return array.astype(info.dtype, copy=False)
    limits = np.iinfo(info.dtype)
    values = np.round(array / info.scale) + info.zero_point
    return np.clip(values, limits.min, limits.max).astype(info.dtype)


def pixel_table(info: TensorInfo, scale: float, offset: float) -> np.ndarray | None:
    """For an 8-bit quantized input: the 256-entry table, as raw bytes, from a pixel value to
    the stored value of ``pixel * scale + offset``, the same numbers ``quantize`` gives; one table
    look-up per pixel replaces normalizing and quantizing. None otherwise."""
    if not info.quantized or info.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        return None
    values = np.arange(256, dtype=np.float32) * np.float32(scale) + np.float32(offset)  # as the float path
    return quantize(values, info).view(np.uint8)


def dequantize(array: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return array.astype(np.float32, copy=False)
    return dequantize_values(array, info.scale, info.zero_point)


def dequantize_values(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Stored integers -> float32 ``(q - zero_point) * scale``, the one formula every caller uses
    (so a threshold found on stored values selects exactly what it would on dequantized ones)."""
    return ((array.astype(np.float32) - zero_point) * scale).astype(np.float32)


def load_delegate(backend: str, library: str | os.PathLike, options: dict | None = None):
    """An external TFLite delegate from a shared library (e.g. the GPU delegate built for an old
    Raspberry Pi image, ``libtensorflowlite_gpu_delegate.so``), loaded through ``backend``'s own
    ``load_delegate``."""
    path = Path(library)
    if not path.is_file():
        raise EdgeCNNError(f"Delegate library {path} does not exist.",
                           "Pass the path of a TFLite delegate .so (e.g. libtensorflowlite_gpu_delegate.so).")
    import ctypes

    try:
        exported = hasattr(ctypes.CDLL(str(path.resolve())), "tflite_plugin_create_delegate")
    except OSError as error:
        raise EdgeCNNError(f"{path.name} could not be opened as a shared library ({error}).",
                           "Pass a TFLite delegate .so built for this machine's architecture.") from error
    if not exported:  # checked first: the interpreter's loader fails late and noisily on such files
        raise EdgeCNNError(f"{path.name} is not a TFLite external delegate (no tflite_plugin_create_delegate).",
                           "Pass a delegate library such as libtensorflowlite_gpu_delegate.so.")
    module = importlib.import_module(dict(_BACKENDS)[backend])
    loader = getattr(module, "load_delegate", None) or getattr(getattr(module, "experimental", None),
                                                              "load_delegate", None)
    if loader is None:
        raise EdgeCNNError(f"The {backend} backend cannot load external delegates.",
                           "Install ai-edge-litert or tflite_runtime.")
    try:
        return loader(str(path), options or {})
    except (ValueError, RuntimeError, OSError, AttributeError) as error:
        raise EdgeCNNError(f"{path.name} could not be loaded as a TFLite delegate "
                           f"({str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}).",
                           "It must export tflite_plugin_create_delegate and match this machine "
                           "(architecture, TFLite version).") from error


def load_engine(model: str | os.PathLike | bytes, threads: int | None = None, backend: str | None = None,
                delegate: str | os.PathLike | None = None) -> Engine:
    """Load ``model`` (path or bytes) on the first backend that imports, or on ``backend``;
    ``delegate`` is the path of an external delegate library to run it with."""
    data = read_model_bytes(model)
    name, interpreter_class = _interpreter_class(backend)
    delegates = [load_delegate(name, delegate)] if delegate else None
    try:
        with native_output_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = interpreter_class(model_content=data, num_threads=threads, experimental_delegates=delegates)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise EdgeCNNError(
            f"The {name} interpreter could not load the model ({str(error).splitlines()[0] if str(error) else type(error).__name__}).",
            "The file may be truncated or corrupt: convert it again.",
        ) from error
    engine = Engine(interpreter, name)
    engine.delegate = str(delegate) if delegate else None
    return engine
