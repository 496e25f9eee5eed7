"""Layer library: activations, normalization and the blocks the model families share."""

from edgecnn.layers.activations import ACTIVATIONS, Maxout, activation_spec, make_activation
from edgecnn.layers.blocks import (
    basic_block,
    bottleneck_block,
    conv2d,
    conv_bn_act,
    dense_act,
    inception_module,
    scale_channels,
    stack,
)
from edgecnn.layers.initializers import BilinearUpsampling
from edgecnn.layers.normalization import InstanceNormalization, LocalResponseNormalization
from edgecnn.layers.padding import ReflectionPadding2D
from edgecnn.layers.pooling import MaxUnpooling2D
from edgecnn.layers.regions import (
    BatchToRegionRows,
    DecodeAnchors,
    PyramidRoiAlign,
    RegionsToBatch,
    RoiAlign,
    StopGradient,
    TopProposals,
)

__all__ = [
    "ACTIVATIONS",
    "BatchToRegionRows",
    "BilinearUpsampling",
    "DecodeAnchors",
    "InstanceNormalization",
    "LocalResponseNormalization",
    "MaxUnpooling2D",
    "PyramidRoiAlign",
    "ReflectionPadding2D",
    "RegionsToBatch",
    "RoiAlign",
    "StopGradient",
    "TopProposals",
    "Maxout",
    "activation_spec",
    "basic_block",
    "bottleneck_block",
    "conv2d",
    "conv_bn_act",
    "dense_act",
    "inception_module",
    "make_activation",
    "scale_channels",
    "stack",
]
