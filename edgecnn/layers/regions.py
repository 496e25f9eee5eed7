"""The region layers of the two-stage detectors, from TFLite builtin ops only.

``DecodeAnchors`` turns the region proposal network's per-anchor deltas into boxes,
``TopProposals`` keeps the K anchors the RPN scores highest (TOPK_V2 and a GATHER: a fixed,
padded number of proposals, no NMS inside the graph, so the file stays static and the GPU
accelerator can take everything but the GATHER), and ``RoiAlign`` pools a fixed grid of
features for every proposal.

CropAndResize, TensorFlow's ROI Align primitive, is not a TFLite builtin. Bilinear sampling is a
weighted sum, though, and it separates into rows and columns: the weight of feature row ``h`` for
a sample at (continuous) row ``y`` is the tent ``max(0, 1 - |y - h|)``. ``RoiAlign`` computes
those weights for every bin's samples with SUB, ABS, RELU and MEAN, and applies them with two
BATCH_MATMULs (rows, then columns), all builtins the GPU delegate runs.

Boxes are x1, y1, x2, y2 in input pixels throughout; a box delta is (dx, dy, dw, dh) relative to
its anchor (Girshick et al.: centre shift in anchor widths/heights, log size ratio).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from edgecnn._keras import keras, tf
from edgecnn.runtime.regions import MAX_LOG_SIZE_RATIO


def anchor_boxes(input_size: tuple[int, int], stride: int, sizes: tuple[float, ...],
                 ratios: tuple[float, ...]) -> np.ndarray:
    """(H/s * W/s * A, 4) anchors, x1 y1 x2 y2 in input pixels: per feature cell (row-major),
    every size at every aspect ratio (height / width), each of area size**2, centred on the cell."""
    rows, cols = input_size[0] // stride, input_size[1] // stride
    shapes = [(size * math.sqrt(ratio), size / math.sqrt(ratio)) for size in sizes for ratio in ratios]  # (h, w)
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij")
    centres = np.stack([xs.reshape(-1), ys.reshape(-1)], 1)[:, None, :]  # (cells, 1, 2)
    half = np.array([[w / 2, h / 2] for h, w in shapes])[None, :, :]  # (1, A, 2)
    return np.concatenate([centres - half, centres + half], axis=2).reshape(-1, 4).astype(np.float32)


def pyramid_anchor_boxes(input_size: tuple[int, int], strides: tuple[int, ...], sizes: tuple[float, ...],
                         ratios: tuple[float, ...]) -> np.ndarray:
    """Anchors of one feature map (one stride: every size at every cell, ``anchor_boxes``) or
    of a feature pyramid (several strides: one size per level, finest first, levels
    concatenated in that order), x1 y1 x2 y2 in input pixels."""
    if len(strides) == 1:
        return anchor_boxes(input_size, strides[0], sizes, ratios)
    if len(sizes) != len(strides):
        raise ValueError(f"a pyramid of {len(strides)} levels takes one anchor size per level, not {len(sizes)}")
    return np.concatenate([anchor_boxes(input_size, stride, (size,), ratios) for stride, size in zip(strides, sizes)])


def apply_deltas(boxes, deltas, weights=(1.0, 1.0, 1.0, 1.0)):
    """TensorFlow: boxes (..., 4) moved by deltas (..., 4) divided by ``weights``. Coordinates
    are taken apart with SPLIT and put back with CONCATENATION: the GPU delegate rejects the
    STRIDED_SLICE that indexing (``boxes[..., 0]``) converts to."""
    x1, y1, x2, y2 = tf.split(boxes, 4, axis=-1)
    dx, dy, dw, dh = tf.split(deltas, 4, axis=-1)
    widths, heights = x2 - x1, y2 - y1
    centre_x = x1 + 0.5 * widths + dx * (widths / weights[0])
    centre_y = y1 + 0.5 * heights + dy * (heights / weights[1])
    half_w = 0.5 * widths * tf.exp(tf.minimum(dw / weights[2], MAX_LOG_SIZE_RATIO))
    half_h = 0.5 * heights * tf.exp(tf.minimum(dh / weights[3], MAX_LOG_SIZE_RATIO))
    return tf.concat([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], axis=-1)


@keras.utils.register_keras_serializable(package="edgecnn")
class StopGradient(keras.layers.Layer):
    """Identity forward, no gradient backward: what trains after it (R-CNN's SVMs and box
    regressor) leaves the features before it alone. Converts to nothing."""

    def call(self, inputs):
        return tf.stop_gradient(inputs)


@keras.utils.register_keras_serializable(package="edgecnn")
class DecodeAnchors(keras.layers.Layer):
    """RPN deltas (B, N, 4) -> proposal boxes (B, N, 4) clipped to the input, for the anchors
    ``pyramid_anchor_boxes(input_size, strides, sizes, ratios)`` (rebuilt from the config: the
    file stores the anchor recipe, not the table). ``strides``: the feature pyramid's levels,
    finest first; without it, the one map at ``stride``."""

    def __init__(self, input_size, stride, sizes, ratios, strides=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.input_size = tuple(int(v) for v in input_size)
        self.stride = int(stride)
        self.strides = tuple(int(v) for v in strides) if strides else (self.stride,)
        self.sizes = tuple(float(v) for v in sizes)
        self.ratios = tuple(float(v) for v in ratios)
        self.anchors = pyramid_anchor_boxes(self.input_size, self.strides, self.sizes, self.ratios)

    def call(self, deltas):
        boxes = apply_deltas(tf.constant(self.anchors)[None], deltas)
        limit = tf.constant([self.input_size[1], self.input_size[0]] * 2, tf.float32)
        return tf.minimum(tf.maximum(boxes, 0.0), limit)

    def get_config(self):
        return {**super().get_config(), "input_size": list(self.input_size), "stride": self.stride,
                "sizes": list(self.sizes), "ratios": list(self.ratios),
                "strides": list(self.strides) if len(self.strides) > 1 else None}


@keras.utils.register_keras_serializable(package="edgecnn")
class TopProposals(keras.layers.Layer):
    """[objectness logits (B, N, 1), boxes (B, N, 4)] -> the ``count`` highest-scoring boxes
    (B, count, 4), best first. No gradient flows into the proposals (approximate joint training,
    as in Faster R-CNN's end-to-end scheme)."""

    def __init__(self, count: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, inputs):
        scores, boxes = inputs
        num = boxes.shape[1]
        _, best = tf.math.top_k(tf.reshape(scores, (-1, num)), k=self.count, sorted=True)  # (B, K)
        # one flat GATHER over (B * N) rows: 1-D int32 indices, which TFLite's GATHER takes as is
        offsets = tf.range(tf.shape(boxes)[0])[:, None] * num
        flat = tf.reshape(boxes, (-1, 4))
        chosen = tf.gather(flat, tf.reshape(best + offsets, (-1,)))
        return tf.stop_gradient(tf.reshape(chosen, (-1, self.count, 4)))

    def compute_output_shape(self, input_shape):
        return (input_shape[1][0], self.count, 4)

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.utils.register_keras_serializable(package="edgecnn")
class RoiAlign(keras.layers.Layer):
    """[features (B, H, W, C) at ``stride``, boxes (B, K, 4) in input pixels] -> pooled features
    (B, K, P * P * C): ROI Align (He et al.) with P x P bins of ``sampling`` x ``sampling``
    bilinear samples each, averaged. Sample positions follow the half-pixel convention
    (feature cell i covers input pixels [i*s, (i+1)*s)); outside the map the tent weights fall to
    zero instead of clamping to the border. Each ROI's vector is ordered (column bin, row bin,
    channel): the fully connected head does not care, and the order saves a TRANSPOSE.

    ``reduction="max"`` is Fast R-CNN's ROI max pooling: each bin takes the maximum of its
    samples (one MAX_POOL_2D over the sample grid) instead of their mean. With at least one sample
    per feature cell the bin covers (``sampling`` >= box side in cells / P), the samples include
    every cell the bin spans and the maximum is the paper's; with fewer, it is the maximum over
    the sampled points."""

    def __init__(self, pool_size: int = 7, sampling: int = 2, stride: int = 16, reduction: str = "mean",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if reduction not in ("mean", "max"):
            raise ValueError(f"reduction must be 'mean' or 'max', not {reduction!r}")
        self.pool_size, self.sampling, self.stride = int(pool_size), int(sampling), int(stride)
        self.reduction = reduction
        # fractions of the box side where the samples lie: bin p, sample s -> (p + (s + .5)/S) / P
        steps = [(p + (s + 0.5) / self.sampling) / self.pool_size
                 for p in range(self.pool_size) for s in range(self.sampling)]
        self.fractions = np.array(steps, np.float32)

    def _weights(self, low, high, cells: int):
        """(B, K, 1) box sides in feature units -> tent weights, (B, K * P, cells) averaged per
        bin, or (B, K * P * S, cells) one row per sample for the max reduction."""
        points = low + (high - low) * self.fractions  # (B, K, P * S)
        grid = tf.constant(np.arange(cells, dtype=np.float32))
        tents = tf.nn.relu(1.0 - tf.abs(tf.reshape(points, (-1, points.shape[1] * points.shape[2], 1)) - grid))
        if self.reduction == "max":
            return tents
        per_bin = tf.reshape(tents, (-1, points.shape[1] * self.pool_size, self.sampling, cells))
        return tf.reduce_mean(per_bin, axis=2)

    def call(self, inputs):
        features, boxes = inputs
        _, height, width, channels = features.shape
        count = boxes.shape[1]
        pool = self.pool_size * (self.sampling if self.reduction == "max" else 1)  # rows/columns sampled per ROI
        # feature-cell centres at integer positions; SPLIT, not indexing (see apply_deltas)
        x1, y1, x2, y2 = tf.split(boxes / float(self.stride) - 0.5, 4, axis=-1)
        rows = self._weights(y1, y2, height)  # (B, K*P, H)
        cols = self._weights(x1, x2, width)  # (B, K*P, W)
        by_rows = tf.matmul(rows, tf.reshape(features, (-1, height, width * channels)))  # (B, K*P, W*C)
        by_rows = tf.reshape(by_rows, (-1, pool, width, channels))  # (B*K, P, W, C)
        by_rows = tf.reshape(tf.transpose(by_rows, (0, 2, 1, 3)), (-1, width, pool * channels))
        pooled = tf.matmul(tf.reshape(cols, (-1, pool, width)), by_rows)  # (B*K, P, P*C)
        if self.reduction == "max":  # (B*K, P*S, P*S, C) samples -> the maximum of each bin's S x S
            grid = tf.reshape(pooled, (-1, pool, pool, channels))
            pooled = tf.nn.max_pool2d(grid, self.sampling, self.sampling, "VALID")
            pool = self.pool_size
        return tf.reshape(pooled, (-1, count, pool * pool * channels))

    def compute_output_shape(self, input_shape):
        features, boxes = input_shape
        return (boxes[0], boxes[1], self.pool_size * self.pool_size * features[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "sampling": self.sampling,
                "stride": self.stride, "reduction": self.reduction}


@keras.utils.register_keras_serializable(package="edgecnn")
class PyramidRoiAlign(keras.layers.Layer):
    """[features at each of ``strides`` (finest first), boxes (B, K, 4)] -> (B, K, P * P * C):
    ``RoiAlign`` on the pyramid level each box belongs to, by FPN's rule (Lin et al., eq. 1): a
    ``canonical_size`` box (224, ImageNet's) on the ``canonical_stride`` (16) map, a box twice
    as large one level coarser, i.e. a sqrt(w * h) box on the coarsest level whose stride is at
    most ``canonical_stride`` * sqrt(w * h) / ``canonical_size`` (a box spans 14-28 cells of its
    level), clamped to the pyramid. Every level is pooled for every box and masked: a 0/1 mask
    per level from the box area, made of SUB, MUL, MINIMUM and MAXIMUM (a step 1e-4 px^2 wide),
    keeps the graph static and on the GPU (no GATHER of computed indices), for L times the
    pooling work."""

    def __init__(self, pool_size: int = 7, sampling: int = 2, strides=(8, 16, 32), canonical_size: float = 224.0,
                 canonical_stride: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_size, self.sampling = int(pool_size), int(sampling)
        self.strides = tuple(int(v) for v in strides)
        self.canonical_size, self.canonical_stride = float(canonical_size), int(canonical_stride)
        # a box moves from the level at stride s to the one at 2s at sqrt(area) = 2s * 224 / 16
        self.area_thresholds = [(2 * stride * self.canonical_size / self.canonical_stride) ** 2
                                for stride in self.strides[:-1]]
        self.levels = [RoiAlign(self.pool_size, self.sampling, stride) for stride in self.strides]

    def call(self, inputs):
        *features, boxes = inputs
        x1, y1, x2, y2 = tf.split(boxes, 4, axis=-1)
        area = (x2 - x1) * (y2 - y1)  # (B, K, 1)
        above = [tf.clip_by_value((area - threshold) * 1e4, 0.0, 1.0) for threshold in self.area_thresholds]
        masks = [1.0 - above[0]] + [a - b for a, b in itertools.pairwise(above)] + [above[-1]]
        pooled = [mask * level([feature, boxes]) for mask, level, feature in zip(masks, self.levels, features)]
        return tf.add_n(pooled)

    def compute_output_shape(self, input_shape):
        *features, boxes = input_shape
        return (boxes[0], boxes[1], self.pool_size * self.pool_size * features[0][-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "sampling": self.sampling,
                "strides": list(self.strides), "canonical_size": self.canonical_size,
                "canonical_stride": self.canonical_stride}


@keras.utils.register_keras_serializable(package="edgecnn")
class RegionsToBatch(keras.layers.Layer):
    """(B, K, m * m * C) pooled regions in ``RoiAlign``'s (column bin, row bin, channel) order
    -> (B * K, m, m, C) images in (row, column, channel) order, for convolutions per region."""

    def __init__(self, pool_size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, pooled):
        size = self.pool_size
        grid = tf.reshape(pooled, (-1, size, size, pooled.shape[-1] // (size * size)))
        return tf.transpose(grid, (0, 2, 1, 3))

    def compute_output_shape(self, input_shape):
        size = self.pool_size
        return (None, size, size, input_shape[-1] // (size * size))

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.utils.register_keras_serializable(package="edgecnn")
class BatchToRegionRows(keras.layers.Layer):
    """(B * K, h, w, C) per-region images -> (B, K * h, w, C): the K regions of each image
    stacked along the rows (a RESHAPE: batch 1 on the device)."""

    def __init__(self, regions: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.regions = int(regions)

    def call(self, images):
        _, height, width, channels = images.shape
        return tf.reshape(images, (-1, self.regions * height, width, channels))

    def compute_output_shape(self, input_shape):
        _, height, width, channels = input_shape
        return (None, self.regions * height, width, channels)

    def get_config(self):
        return {**super().get_config(), "regions": self.regions}
