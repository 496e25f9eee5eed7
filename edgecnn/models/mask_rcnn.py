"""Mask R-CNN (He et al. 2017): Faster R-CNN plus a mask branch that predicts, for every
proposal, a 28x28 mask per class from ROI Align at 14x14 (four 3x3 convolutions, a 2x transposed
convolution, a per-class sigmoid). Built by Faster R-CNN's builder with ``mask_size``; the
branch is ``edgecnn.models.region_parts.mask_branch``.

Outputs: Faster R-CNN's five, then ``masks`` (1, P * 28, 28, K): proposal p's masks are rows
p * 28 to (p + 1) * 28, one channel per class, predicted over the proposal's box. The device file
keeps the last four (proposals, class scores, box deltas, masks); the runtime's
``InstanceSegmenter`` picks each detection's class channel and pastes it at its proposal's box.
The mask branch runs on every proposal: NMS is not in the graph (see faster_rcnn), so the graph
cannot pick the final detections first, as the paper's inference does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.faster_rcnn import create_faster_rcnn
from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

MASK_SIZE = 28


@register_model("instance_segmentation", create_faster_rcnn, input_shape=(320, 320, 3), min_input_size=64)
def mask_rcnn_edgenet(**overrides) -> keras.Model:
    """Mask R-CNN (Faster R-CNN + 28x28 per-class masks from ROI Align 14x14) on EdgeNet."""
    return create_faster_rcnn("edgenet", **{"mask_size": MASK_SIZE, "mask_channels": 128, **overrides})


@register_model("instance_segmentation", create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def mask_rcnn_resnet50_fpn(**overrides) -> keras.Model:
    """Mask R-CNN on ResNet-50 with a feature pyramid (strides 4-32), as torchvision's."""
    return create_faster_rcnn("resnet50", **{"fpn_levels": (4, 8, 16, 32), "neck_channels": 256,
                                              "anchor_sizes": (32, 64, 128, 256), "head_units": 1024,
                                              "proposals": 300, "mask_size": MASK_SIZE, "mask_channels": 256,
                                              **overrides})


@register_model("instance_segmentation", create_faster_rcnn, input_shape=(64, 64, 3), min_input_size=64)
def test_mask_rcnn(**overrides) -> keras.Model:
    """Tiny Mask R-CNN on EdgeNet for fast tests (14x14 masks)."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "neck_channels": 32,
                "feature_stride": 8, "anchor_sizes": (8, 16, 32), "proposals": 8, "head_units": 32,
                "mask_size": 14, "mask_channels": 32}
    return create_faster_rcnn("edgenet", **{**defaults, "name": "test_mask_rcnn", **overrides})
