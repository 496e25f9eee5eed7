"""XNNPACK coverage as a checked property: the nodes of each test model's int8 file that the CPU's
fast kernels do not take, by op type, may not grow (a regression guard on counts, not timings).
The goal is none; the table records where each family stands, so that a change that leaves one
more node to TFLite's slower default kernels fails here, and one that delegates more passes
(then lower the table)."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn.export.convert import convert
from edgecnn.models.detector_families import deployed_model
from edgecnn.runtime.cpu_kernels import file_kernel_coverage

# int8 files of the zoo's test variants (random calibration): op type -> nodes left to the
# default kernels, measured 2026-12-05 with ai-edge-litert as pinned
LEFT_IN_INT8 = {
    "test_vgg": {}, "test_resnet": {}, "test_rcnn": {}, "test_fcn": {}, "test_unet": {},
    "test_yolo": {"RESIZE_NEAREST_NEIGHBOR": 2},
    "test_fast_rcnn": {"ABS": 2, "BATCH_MATMUL": 2, "RESIZE_NEAREST_NEIGHBOR": 1, "SOFTMAX": 1},
    "test_faster_rcnn": {"ABS": 2, "BATCH_MATMUL": 2, "EXP": 2, "GATHER": 1, "MINIMUM": 3, "MUL": 2, "RELU": 1,
                         "RESHAPE": 1, "RESIZE_NEAREST_NEIGHBOR": 1, "SOFTMAX": 1, "TOPK_V2": 1},
    "test_mask_rcnn": {"ABS": 2, "BATCH_MATMUL": 2, "EXP": 2, "GATHER": 1, "MINIMUM": 3, "MUL": 2, "RELU": 2,
                       "RESHAPE": 1, "RESIZE_NEAREST_NEIGHBOR": 1, "SOFTMAX": 1, "TOPK_V2": 1},
    "test_segnet": {"CAST": 12, "GREATER_EQUAL": 12, "MAXIMUM": 9},
    "test_pix2pix": {"RELU": 4},
    "test_cyclegan": {"ADD": 9, "MIRROR_PAD": 6, "RSQRT": 9, "SQUARED_DIFFERENCE": 9},
}


def _int8_file(name: str) -> bytes:
    from edgecnn.models.fast_rcnn import random_proposals

    model = deployed_model(edgecnn.create_model(name))
    shapes = [tuple(int(d) for d in tensor.shape[1:]) for tensor in model.inputs]
    rng = np.random.default_rng(0)

    def representative():
        for seed in range(8):  # images in [0, 1]; a Fast R-CNN's proposal boxes beside them
            yield [random_proposals(shapes[0][:2], shape[0], seed)[None] if len(shape) == 2
                   else rng.uniform(0, 1, (1, *shape)).astype(np.float32) for shape in shapes]

    return convert(model, "int8", representative)


@pytest.mark.parametrize("name", sorted(LEFT_IN_INT8))
def test_no_int8_node_falls_back_to_the_default_kernels_that_xnnpack_took_before(name):
    coverage = file_kernel_coverage(_int8_file(name), threads=1)
    grown = {op: count for op, count in coverage.left.items() if count > LEFT_IN_INT8[name].get(op, 0)}
    assert not grown, (f"{name}: more nodes left to the default kernels than before: {grown} "
                       f"(now {coverage.left}, {coverage.delegated} of {coverage.nodes} delegated)")
    assert coverage.delegated == coverage.nodes - sum(coverage.left.values()) and coverage.partitions >= 1


def test_coverage_reads_the_delegates_partitions():
    """A file that XNNPACK takes whole is one partition with nothing left; an op it has no kernel
    for (nearest-neighbour resize) stays outside, splitting the graph."""
    whole = file_kernel_coverage(convert(edgecnn.create_model("test_unet"), "fp32"))
    assert (whole.left, whole.partitions, whole.delegated) == ({}, 1, whole.nodes)
    split = file_kernel_coverage(convert(edgecnn.create_model("test_yolo"), "fp32"))
    assert split.left == {"RESIZE_NEAREST_NEIGHBOR": 2} and split.partitions == 3


def test_benchmark_ops_shares_every_op_type_of_the_file(tmp_path, capsys):
    import json

    from edgecnn.cli.main import main
    from edgecnn.runtime.modelfile import op_histogram

    path = tmp_path / "yolo.tflite"
    path.write_bytes(convert(edgecnn.create_model("test_yolo"), "fp32"))
    assert main(["benchmark", str(path), "--accelerator", "cpu", "--runs", "5", "--ops", "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)["ops"]
    assert {op: row["nodes"] for op, row in ops.items()} == op_histogram(path.read_bytes())
    assert abs(sum(row["share"] for row in ops.values()) - 1) < 0.01
    assert max(ops, key=lambda op: ops[op]["ms"]) == "CONV_2D"  # the convolutions hold most of the time
    assert main(["benchmark", str(path), "--accelerator", "cpu", "--runs", "5", "--ops"]) == 0
    assert "CONV_2D" in capsys.readouterr().out


def test_int8_conversion_keeps_the_nodes_xnnpack_runs_only_in_float_in_float(tmp_path):
    """edgecnn.convert's int8 keeps in float what XNNPACK has no int8 kernel for but runs in float
    (Pix2Pix's RELU after each skip concatenation; the region detectors' ROI pooling and box
    decoding) and the comparisons left to the default kernels (SegNet's unpooling switches);
    int8-io, for NPUs, stays all integer."""
    pix2pix = edgecnn.convert(edgecnn.create_model("test_pix2pix"), "int8", calibration="builtin:painted_shapes",
                              task="generation", samples=2)
    assert pix2pix.float_nodes == {"RELU": 4} and pix2pix.xnnpack["left"] == {}
    detector = edgecnn.convert(edgecnn.create_model("test_faster_rcnn", num_classes=4), "int8",
                               calibration="builtin:shapes", samples=2)
    assert {"BATCH_MATMUL", "EXP"} <= set(detector.float_nodes)
    assert set(detector.xnnpack["left"]) <= {"GATHER", "RESHAPE", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "TOPK_V2"}
    assert "detection_agreement" in detector.parity  # verified against Keras through the same decoding
    segnet = edgecnn.convert(edgecnn.create_model("test_segnet", num_classes=5), "int8", calibration="builtin:shapes",
                             samples=2)
    assert segnet.float_nodes["GREATER_EQUAL"] == 12 and segnet.xnnpack["left"] == {"CAST": 12, "GREATER_EQUAL": 12}
    whole = edgecnn.convert(edgecnn.create_model("test_pix2pix"), "int8-io", calibration="builtin:painted_shapes",
                            task="generation", samples=2)
    assert whole.float_nodes == {} and whole.xnnpack["left"] == {"RELU": 4}


def _conv_stack(size: int, tail_op: str | None = None):
    from edgecnn._keras import keras

    inputs = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    if tail_op == "floor_mod":  # an op XNNPACK does not take: its tensors stay in the interpreter's arena
        x = keras.layers.Lambda(lambda t: t - 2.0 * (t // 2.0))(x)
    return keras.Model(inputs, x)


def test_tensor_arena_is_read_from_the_interpreter():
    """A fully delegated file's arena holds its input and output alone (XNNPACK keeps the rest);
    a node left to the default kernels adds its tensors; a 4x larger input, 4x the arena."""
    from edgecnn.runtime.engine import load_engine
    from edgecnn.runtime.tensor_arena import tensor_arena_mb

    def arena(model) -> float:
        data = convert(model, "fp32")
        return tensor_arena_mb(load_engine(data, threads=1), data)

    in_out = (32 * 32 * 3 + 32 * 32 * 4) * 4 / 1e6
    delegated = arena(_conv_stack(32))
    assert in_out <= delegated <= in_out + 0.001
    assert arena(_conv_stack(64)) == pytest.approx(4 * delegated, rel=0.01)
    assert arena(_conv_stack(32, "floor_mod")) >= delegated + 32 * 32 * 4 * 4 / 1e6
