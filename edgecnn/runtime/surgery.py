"""Cut single operators out of a .tflite file: to ask the GPU accelerator about each op kind,
and to time each node alone."""

from __future__ import annotations

from edgecnn.runtime.modelfile import operator_names, tflite_schema


def single_operator_models(data: bytes) -> dict[str, bytes]:
    """One model per distinct op kind of the main subgraph (its first occurrence): see
    ``single_node_model``."""
    names = operator_names(data)
    first_index: dict[str, int] = {}
    for index, name in enumerate(names[:main_operator_count(data)]):
        first_index.setdefault(name, index)
    return {name: single_node_model(data, index) for name, index in first_index.items()}


def main_operator_count(data: bytes) -> int:
    return tflite_schema().Model.GetRootAs(data, 0).Subgraphs(0).OperatorsLength()


def single_node_model(data: bytes, op_index: int) -> bytes:
    """The main subgraph's node ``op_index`` alone: the op, its constant inputs, its other
    inputs as graph inputs and its outputs as graph outputs."""
    import flatbuffers

    schema = tflite_schema()
    names = operator_names(data)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    graph = model.subgraphs[0]
    operator = graph.operators[op_index]
    # an fp16 file's weights reach their op through a DEQUANTIZE of a constant: kept with the
    # op, they stay constant weights (as inputs, the GPU would reject a CONV_2D it runs)
    producers = {out: index for index, op in enumerate(graph.operators) for out in op.outputs}
    kept = [graph.operators[producers[t]] for t in operator.inputs
            if t in producers and names[producers[t]] == "DEQUANTIZE"
            and _is_constant(model, graph, graph.operators[producers[t]].inputs[0])]
    kept.append(operator)
    used = {t for op in kept for t in list(op.inputs) + list(op.outputs) if t >= 0}
    constants = {t for t in used if _is_constant(model, graph, t)}
    produced = {t for op in kept for t in op.outputs}
    used_buffers = {graph.tensors[t].buffer for t in used}
    for index, buffer in enumerate(model.buffers):
        if index not in used_buffers and index != 0:
            buffer.data = None  # keep indices, drop bytes
    graph.operators = kept
    graph.inputs = [t for t in operator.inputs if t >= 0 and t not in constants and t not in produced]
    graph.outputs = list(operator.outputs)
    model.subgraphs = [graph]
    model.signatureDefs = []
    model.metadata = []
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _is_constant(model, graph, tensor: int) -> bool:
    return _has_data(model.buffers[graph.tensors[tensor].buffer])


def _has_data(buffer) -> bool:
    """A constant tensor's buffer holds its bytes; an activation's is empty."""
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def output_tensor_name(data: bytes) -> str:
    """The name of the first output tensor of the main subgraph (converters name tensors after
    the layer that produced them, e.g. ``model/block1_norm/SquaredDifference``)."""
    graph = tflite_schema().Model.GetRootAs(data, 0).Subgraphs(0)
    return (graph.Tensors(graph.Outputs(0)).Name() or b"").decode(errors="replace")
