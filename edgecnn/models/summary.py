"""Per-layer tables in the textbook's terms: output volume, kernel F, stride S, padding P and
parameters, with explicit zero-padding folded into the convolution or pooling it feeds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgecnn._keras import keras

# Keras class name -> the kind shown in the table. Layers not listed are shown only with --all.
_KINDS = {
    "InputLayer": "input",
    "Conv2D": "conv",
    "Conv2DTranspose": "deconv",
    "DepthwiseConv2D": "dwconv",
    "MaxPooling2D": "maxpool",
    "AveragePooling2D": "avgpool",
    "GlobalAveragePooling2D": "gap",
    "GlobalMaxPooling2D": "gmp",
    "Dense": "fc",
    "LocalResponseNormalization": "norm",
    "Concatenate": "concat",
    "Add": "add",
    "Maxout": "maxout",
    "UpSampling2D": "upsample",
}
_WINDOWED = {"conv", "deconv", "dwconv", "maxpool", "avgpool"}


@dataclass
class LayerRow:
    name: str
    kind: str
    input_shape: tuple | None
    output_shape: tuple
    kernel: int | None = None
    stride: int | None = None
    padding: tuple[int, int] | None = None  # zeros added before and after, along the height
    params: int = 0

    @property
    def padding_text(self) -> str:
        if self.padding is None:
            return ""
        before, after = self.padding
        return str(before) if before == after else f"{before}/{after}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["output_shape"] = list(self.output_shape)
        data["input_shape"] = list(self.input_shape) if self.input_shape else None
        data["padding"] = list(self.padding) if self.padding else None
        return data


def count_parameters(model: keras.Model) -> tuple[int, int]:
    """(learnable, non-learnable) parameter counts. The learnable count is the one papers and
    torchvision report; batch-norm moving statistics are the non-learnable ones."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, non_trainable


def multiply_accumulates(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass at the model's input size, counted over its
    convolutions (plain, depthwise, transposed) and dense layers, where nearly all of a CNN's
    arithmetic is; twice this is the "FLOPs" that Ultralytics and thop report."""
    total = 0
    for layer in _leaf_layers(model):
        kernel = getattr(layer, "depthwise_kernel", None)
        kernel = getattr(layer, "kernel", None) if kernel is None else kernel
        if kernel is None or not hasattr(layer, "output_shape"):
            continue
        output = _shape(layer.output_shape)  # without the batch axis
        weights = int(np.prod(kernel.shape))
        if isinstance(layer, keras.layers.Conv2DTranspose):
            total += weights * int(np.prod(_shape(layer.input_shape)[:2]))  # each input pixel, whole kernel
        elif isinstance(layer, keras.layers.Dense):
            total += weights * int(np.prod(output[:-1] or (1,)))
        elif len(output) == 3:  # Conv2D: kernel volume per output pixel; depthwise: the same, one input channel
            total += weights * int(np.prod(output[:2]))
    return total


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _shape(shape) -> tuple:
    if isinstance(shape, list):  # several inputs (concat, add): show the first
        shape = shape[0]
    return tuple(int(d) if d is not None else None for d in shape[1:])


def _inbound(layer) -> list:
    nodes = layer.inbound_nodes
    if not nodes:
        return []
    inbound = nodes[0].inbound_layers
    return inbound if isinstance(inbound, list) else [inbound]


def _pair(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _window(layer, kind: str) -> tuple[int, int, tuple[int, int], tuple | None]:
    """Kernel, stride, (pad before, pad after) and the input shape before any folded padding."""
    config = layer.get_config()
    kernel = _pair(config.get("kernel_size") or config.get("pool_size"))
    stride = _pair(config["strides"])
    input_shape = _shape(layer.input_shape)
    output_shape = _shape(layer.output_shape)
    if config["padding"] == "same":
        total = max((output_shape[0] - 1) * stride + kernel - input_shape[0], 0)
        padding = (total // 2, total - total // 2)
    else:
        padding = (0, 0)
        sources = _inbound(layer)
        if len(sources) == 1 and type(sources[0]).__name__ == "ZeroPadding2D":
            (top, bottom), _ = sources[0].get_config()["padding"]
            padding = (int(top), int(bottom))
            input_shape = _shape(sources[0].input_shape)
    return kernel, stride, padding, input_shape


def summarize(model: keras.Model, all_layers: bool = False) -> list[LayerRow]:
    rows = []
    for layer in model.layers:
        kind = _KINDS.get(type(layer).__name__)
        if kind is None and not all_layers:
            continue
        kind = kind or type(layer).__name__
        row = LayerRow(
            name=layer.name,
            kind=kind,
            input_shape=None if kind == "input" else _shape(layer.input_shape),
            output_shape=_shape(layer.output_shape),
            params=sum(int(np.prod(w.shape)) for w in layer.trainable_weights),
        )
        if kind in _WINDOWED:
            row.kernel, row.stride, row.padding, row.input_shape = _window(layer, kind)
        rows.append(row)
    return rows


def volume(shape: tuple) -> str:
    return "[" + "x".join("?" if d is None else str(d) for d in shape) + "]"


def format_table(rows: list[LayerRow], total_params: int, non_trainable: int) -> str:
    header = ("layer", "kind", "output volume", "F", "S", "P", "params")
    lines = [
        (r.name, r.kind, volume(r.output_shape), str(r.kernel or ""), str(r.stride or ""), r.padding_text,
         f"{r.params:,}")
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(cell.rjust(w) if i >= 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))
    out.append(f"total parameters: {total_params:,} learnable" + (f" (+{non_trainable:,} batch-norm statistics)" if non_trainable else ""))
    return "\n".join(out)
