"""Output heads appended to a converted file so the phone ecosystem's decoders read it as it is.

MediaPipe's ImageClassifier reports the output tensor as scores (it applies no softmax), and its
ObjectDetector decodes raw boxes only as (y centre, x centre, height, width) relative to fixed
anchors (centre = raw * anchor size + anchor centre), while edgecnn's models output logits and,
for YOLO, log-distances (left, top, right, bottom) in stride units. So after conversion, and
only where the file's outputs are float (every target but int8-io, whose int8 input MediaPipe
does not take anyway), builtin float ops are appended: SOFTMAX for classifiers; for detectors
MINIMUM (the runtime's clip at 8), EXP and one FULLY_CONNECTED with a constant 4x4 matrix that
turns the four distances into (dy, dx, h, w) in stride units. The score output stays logits
(MediaPipe applies the sigmoid: ``sigmoid_score``). The same transforms in NumPy
(``reference_outputs``) give the Keras model's expected outputs for the parity check, and
edgecnn's runtime decodes the new encodings (``boxes_yxhw_stride``, ``probabilities``).

Appending after conversion instead of before keeps these ops out of quantization: they run in
float on the dequantized outputs, exactly as the runtime's decoding did.
"""

from __future__ import annotations

import re

import numpy as np

from edgecnn.runtime.detection import MAX_LOG_DISTANCE
from edgecnn.runtime.modelfile import tflite_schema

# (dy, dx, h, w) = exp(left, top, right, bottom) @ BOX_MATRIX.T, all in stride units:
# centre offset = (far side - near side) / 2, size = near + far
BOX_MATRIX = np.array([[0.0, -0.5, 0.0, 0.5],
                       [-0.5, 0.0, 0.5, 0.0],
                       [0.0, 1.0, 0.0, 1.0],
                       [1.0, 0.0, 1.0, 0.0]], np.float32)
HEADS = {"classification": "probabilities", "detection": "boxes_yxhw_stride"}


def keras_output_order(data: bytes) -> list[int]:
    """For each output tensor of the file, in file order, the index of the Keras output it holds
    (the converter may reorder them; its signature names them ``output_<k>`` in Keras order, its
    tensors ``StatefulPartitionedCall:<k>``)."""
    schema = tflite_schema()
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    outputs = [graph.Outputs(k) for k in range(graph.OutputsLength())]
    by_tensor: dict[int, int] = {}
    if model.SignatureDefsLength():
        signature = model.SignatureDefs(0)
        for k in range(signature.OutputsLength()):
            entry = signature.Outputs(k)
            match = re.fullmatch(rb"output_(\d+)", entry.Name() or b"")
            if match:
                by_tensor[entry.TensorIndex()] = int(match.group(1))
    if len(by_tensor) != len(outputs):
        by_tensor = {}
        for tensor in outputs:
            match = re.search(rb":(\d+)$", graph.Tensors(tensor).Name() or b"")
            if match:
                by_tensor[tensor] = int(match.group(1))
    if sorted(by_tensor.get(t, -1) for t in outputs) != list(range(len(outputs))):
        return list(range(len(outputs)))
    return [by_tensor[t] for t in outputs]


def add_device_heads(data: bytes, task: str) -> tuple[bytes, bool]:
    """The file with the task's device head appended, and whether it was (no change for tasks
    without one, or when an output is not float)."""
    if task not in HEADS:
        return data, False
    schema = tflite_schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    graph = model.subgraphs[0]
    if any(graph.tensors[t].type != schema.TensorType.FLOAT32 for t in graph.outputs):
        return data, False
    order = keras_output_order(data)
    position = order.index(0)  # the head goes on Keras output 0: the logits, or the boxes
    surgery = _Graph(schema, model)
    source = int(graph.outputs[position])
    if task == "classification":
        result = surgery.add("SOFTMAX", [source], "probabilities", schema.BuiltinOptions.SoftmaxOptions,
                             _options(schema.SoftmaxOptionsT, beta=1.0))
    else:
        limit = surgery.constant(np.array(MAX_LOG_DISTANCE, np.float32), "box_log_distance_limit")
        clipped = surgery.add("MINIMUM", [source, limit], "box_log_distances_clipped",
                              schema.BuiltinOptions.MaximumMinimumOptions, schema.MaximumMinimumOptionsT())
        distances = surgery.add("EXP", [clipped], "box_distances", schema.BuiltinOptions.ExpOptions,
                                schema.ExpOptionsT())
        weights = surgery.constant(BOX_MATRIX, "box_yxhw_matrix")
        result = surgery.add("FULLY_CONNECTED", [distances, weights, -1], "boxes_yxhw_stride",
                             schema.BuiltinOptions.FullyConnectedOptions,
                             _options(schema.FullyConnectedOptionsT, keepNumDims=True), version=5)
        # (keep_num_dims needs FULLY_CONNECTED version 5 in TFLite's op versioning)
    outputs = list(graph.outputs)
    outputs[position] = result
    graph.outputs = np.asarray(outputs, np.int32)
    for signature in model.signatureDefs or []:
        for entry in signature.outputs or []:
            if entry.tensorIndex == source:
                entry.tensorIndex = result
    import flatbuffers

    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), True


def reference_outputs(outputs: list[np.ndarray], task: str) -> list[np.ndarray]:
    """The Keras model's outputs (Keras order) as the file with its device head gives them."""
    outputs = [np.asarray(o, np.float32) for o in outputs]
    if task == "classification":
        shifted = np.exp(outputs[0] - outputs[0].max(axis=-1, keepdims=True))
        outputs[0] = shifted / shifted.sum(axis=-1, keepdims=True)
    elif task == "detection":
        outputs[0] = np.exp(np.minimum(outputs[0], MAX_LOG_DISTANCE)) @ BOX_MATRIX.T
    return outputs


def _options(cls, **values):
    options = cls()
    for key, value in values.items():
        setattr(options, key, value)
    return options


class _Graph:
    """Appends tensors, constants and builtin operators to a model's main subgraph (object API)."""

    def __init__(self, schema, model) -> None:
        self.schema, self.model, self.graph = schema, model, model.subgraphs[0]

    def tensor(self, shape, name: str, buffer: int = 0) -> int:
        tensor = self.schema.TensorT()
        tensor.shape = np.asarray(shape, np.int32)
        tensor.type = self.schema.TensorType.FLOAT32
        tensor.buffer = buffer
        tensor.name = name.encode()
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def constant(self, value: np.ndarray, name: str) -> int:
        buffer = self.schema.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(value, np.float32).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        return self.tensor(value.shape, name, len(self.model.buffers) - 1)

    def add(self, op: str, inputs: list[int], name: str, options_type: int, options, version: int = 1) -> int:
        source_shape = self.graph.tensors[inputs[0]].shape
        output = self.tensor(source_shape, name)
        operator = self.schema.OperatorT()
        operator.opcodeIndex = self._opcode(op, version)
        operator.inputs = np.asarray(inputs, np.int32)
        operator.outputs = np.asarray([output], np.int32)
        operator.builtinOptionsType = options_type
        operator.builtinOptions = options
        self.graph.operators.append(operator)
        return output

    def _opcode(self, op: str, version: int) -> int:
        code = getattr(self.schema.BuiltinOperator, op)
        for index, existing in enumerate(self.model.operatorCodes):
            if max(existing.builtinCode, existing.deprecatedBuiltinCode) == code and existing.version >= version:
                return index
        entry = self.schema.OperatorCodeT()
        entry.builtinCode = code
        entry.deprecatedBuiltinCode = min(code, 127)  # codes above 127 live only in builtinCode
        entry.version = version
        self.model.operatorCodes.append(entry)
        return len(self.model.operatorCodes) - 1
