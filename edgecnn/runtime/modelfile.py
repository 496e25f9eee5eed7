"""Read a .tflite flatbuffer's structure (operators, tensors) without TensorFlow, using the
schema module that ships inside ai-edge-litert."""

from __future__ import annotations

from collections import Counter
from functools import cache

from edgecnn.errors import EdgeCNNError


def tflite_schema():
    """The TFLite flatbuffer schema module that ships inside ai-edge-litert."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as error:
        raise EdgeCNNError("Reading .tflite structure needs ai-edge-litert.", "pip install ai-edge-litert") from error
    return schema_py_generated


@cache
def _builtin_names() -> dict[int, str]:
    operators = tflite_schema().BuiltinOperator
    return {value: name for name, value in vars(operators).items() if name.isupper() and isinstance(value, int)}


def operator_names(data: bytes) -> list[str]:
    """The name of every operator in every subgraph, in execution order. Custom ops appear as
    ``CUSTOM:<code>`` (Flex ops as ``CUSTOM:Flex...``)."""
    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for index in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(index)
            # Codes above 127 live in BuiltinCode; older files use the deprecated int8 field.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = _builtin_names().get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
            codes.append(name)
        names = []
        for graph_index in range(model.SubgraphsLength()):
            graph = model.Subgraphs(graph_index)
            for op_index in range(graph.OperatorsLength()):
                names.append(codes[graph.Operators(op_index).OpcodeIndex()])
    except Exception as error:  # a malformed flatbuffer raises from deep inside the reader
        raise EdgeCNNError(
            f"The model's flatbuffer could not be read ({type(error).__name__}).", "Convert the model again."
        ) from error
    return names


def activation_tensors(data: bytes) -> list[int]:
    """The main subgraph's tensors that hold no bytes in the file and are not variables: what the
    interpreter allocates in its arena."""
    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)
        return [index for index in range(graph.TensorsLength())
                if not graph.Tensors(index).IsVariable() and model.Buffers(graph.Tensors(index).Buffer()).DataLength() == 0
                and model.Buffers(graph.Tensors(index).Buffer()).Size() == 0]
    except Exception as error:  # a malformed flatbuffer raises from deep inside the reader
        raise EdgeCNNError(
            f"The model's flatbuffer could not be read ({type(error).__name__}).", "Convert the model again."
        ) from error


def op_histogram(data: bytes) -> dict[str, int]:
    return dict(sorted(Counter(operator_names(data)).items()))


def is_builtin_only(histogram: dict[str, int]) -> bool:
    return not any(name.startswith("CUSTOM") for name in histogram)
