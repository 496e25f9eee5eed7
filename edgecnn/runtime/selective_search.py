"""Selective search (Uijlings et al. 2013), the region proposals of R-CNN and Fast R-CNN,
TensorFlow-free: NumPy and the base ``cv2`` only.

OpenCV's implementation lives in ``opencv-contrib``'s ximgproc, and the contrib wheel installs a
second ``cv2`` beside ``opencv-python-headless`` (the base install's): an environment must never
hold both. So edgecnn carries its own, and every install (workstation or device) has proposals.

The algorithm, as in the paper's "fast" mode:
1. Initial regions: Felzenszwalb-Huttenlocher graph segmentation (4-connected pixel graph, edge
   weight = colour distance after a Gaussian blur, merge while the edge is no heavier than both
   components' internal difference + k / size; small components merged into a neighbour).
2. Hierarchical grouping: neighbouring regions are merged greedily by a similarity that sums
   colour (25-bin histograms per channel, intersection), texture (8 gradient orientations x 10
   bins per channel, intersection), size (small regions first) and fill (how well the two fill
   their joint box); every region ever formed is a proposal.
3. Diversification: two colour spaces (HSV, Lab) x two scales k x two similarity sets
   (colour + texture + size + fill; texture + size + fill), boxes ranked by the merge step they
   came from (with the paper's random factor, seeded), duplicates removed.

Images are proposed at up to ``max_side`` pixels (boxes scaled back): the segmentation loop is
Python over the pixel graph's edges, about 0.1 s per pass at 128x128.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgecnn.errors import EdgeCNNError

COLOR_BINS, TEXTURE_BINS, ORIENTATIONS = 25, 10, 8


@dataclass(frozen=True)
class SearchSettings:
    scales: tuple[float, ...] = (100.0, 200.0)  # Felzenszwalb's k, in colour distance units
    sigma: float = 0.8
    min_size_fraction: float = 0.0005  # smallest initial region, as a share of the pixels (at least 4)
    max_side: int = 256
    max_proposals: int = 2000
    min_box: int = 4  # boxes narrower or shorter than this (input pixels) are dropped


def felzenszwalb(image: np.ndarray, k: float, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
    """(H, W) int32 region labels 0..R-1 of an (H, W, C) float image."""
    height, width = image.shape[:2]
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma) if sigma > 0 else image.astype(np.float32)
    index = np.arange(height * width).reshape(height, width)
    pairs = [(index[:, :-1], index[:, 1:], smooth[:, :-1] - smooth[:, 1:]),
             (index[:-1, :], index[1:, :], smooth[:-1, :] - smooth[1:, :])]
    sources = np.concatenate([p[0].ravel() for p in pairs])
    targets = np.concatenate([p[1].ravel() for p in pairs])
    weights = np.concatenate([np.sqrt((p[2] ** 2).sum(-1)).ravel() for p in pairs])
    order = np.argsort(weights, kind="stable")
    sources, targets, weights = sources[order].tolist(), targets[order].tolist(), weights[order].tolist()
    parent = list(range(height * width))
    size = [1] * (height * width)
    threshold = [k] * (height * width)  # internal difference + k / size, per root
    # union-find with path halving, written inline: this loop is most of selective search's time
    # and a function call per lookup doubled it
    for a, b, weight in zip(sources, targets, weights):
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        if a != b and weight <= threshold[a] and weight <= threshold[b]:
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
            threshold[a] = weight + k / size[a]
    for a, b in zip(sources, targets):  # components below min_size join a neighbour
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        if a != b and (size[a] < min_size or size[b] < min_size):
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = node = parent[parent[node]]
        return node

    roots = np.array([find(node) for node in range(height * width)])
    return np.unique(roots, return_inverse=True)[1].reshape(height, width).astype(np.int32)


def _histograms(values: np.ndarray, labels: np.ndarray, count: int, bins: int, low: float, high: float) -> np.ndarray:
    """(R, C * bins) per-region histograms of (H, W, C) ``values``, each L1-normalised."""
    channels = values.shape[-1]
    binned = np.clip(((values - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
    flat = labels.ravel()
    result = np.zeros((count, channels * bins), np.float64)
    for channel in range(channels):
        keys = flat * (channels * bins) + channel * bins + binned[..., channel].ravel()
        result += np.bincount(keys, minlength=count * channels * bins).reshape(count, channels * bins)
    return result / np.maximum(result.sum(axis=1, keepdims=True), 1e-12)


def _texture_values(image: np.ndarray) -> np.ndarray:
    """(H, W, C * ORIENTATIONS) gradient magnitudes split by orientation, scaled to [0, 1]."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3).reshape(*image.shape[:2], -1)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3).reshape(*image.shape[:2], -1)
    magnitude = np.sqrt(gx ** 2 + gy ** 2)
    orientation = ((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * ORIENTATIONS).astype(np.int64) % ORIENTATIONS
    result = np.zeros((*magnitude.shape, ORIENTATIONS), np.float32)
    np.put_along_axis(result, orientation[..., None], magnitude[..., None], axis=-1)
    result = result.reshape(*image.shape[:2], -1)
    return result / max(float(result.max()), 1e-6)


def _group(labels: np.ndarray, colour: np.ndarray, texture: np.ndarray, use_colour: bool,
           rng: np.random.Generator) -> list[tuple[float, tuple[int, int, int, int]]]:
    """Hierarchical grouping of one segmentation: (rank, box x1 y1 x2 y2 inclusive) of every region."""
    count = int(labels.max()) + 1
    height, width = labels.shape
    image_size = float(height * width)
    sizes = np.bincount(labels.ravel(), minlength=count).astype(np.float64)
    ys, xs = np.indices(labels.shape)
    flat = labels.ravel()
    boxes = np.stack([np.full(count, width), np.full(count, height), np.full(count, -1), np.full(count, -1)], 1)
    np.minimum.at(boxes[:, 0], flat, xs.ravel())
    np.minimum.at(boxes[:, 1], flat, ys.ravel())
    np.maximum.at(boxes[:, 2], flat, xs.ravel())
    np.maximum.at(boxes[:, 3], flat, ys.ravel())
    colour_hist = _histograms(colour, labels, count, COLOR_BINS, 0.0, 1.0)
    texture_hist = _histograms(texture, labels, count, TEXTURE_BINS, 0.0, 1.0)
    regions = {r: {"size": sizes[r], "box": boxes[r].tolist(), "colour": colour_hist[r], "texture": texture_hist[r]}
               for r in range(count)}
    neighbours = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        differ = a != b
        for x, y in zip(a[differ].tolist(), b[differ].tolist()):
            neighbours.add((min(x, y), max(x, y)))

    def similarity(a: dict, b: dict) -> float:
        box = [min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]),
               max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])]
        box_area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
        score = (1 - (a["size"] + b["size"]) / image_size) + (1 - (box_area - a["size"] - b["size"]) / image_size)
        score += float(np.minimum(a["texture"], b["texture"]).sum())
        if use_colour:
            score += float(np.minimum(a["colour"], b["colour"]).sum())
        return score

    scores = {pair: similarity(regions[pair[0]], regions[pair[1]]) for pair in neighbours}
    found = [(0.0, tuple(regions[r]["box"])) for r in range(count)]
    step = 0
    while scores:
        a, b = max(scores, key=scores.get)
        step += 1
        merged_id = count + step - 1
        first, second = regions[a], regions[b]
        total = first["size"] + second["size"]
        regions[merged_id] = {
            "size": total,
            "box": [min(first["box"][0], second["box"][0]), min(first["box"][1], second["box"][1]),
                    max(first["box"][2], second["box"][2]), max(first["box"][3], second["box"][3])],
            "colour": (first["colour"] * first["size"] + second["colour"] * second["size"]) / total,
            "texture": (first["texture"] * first["size"] + second["texture"] * second["size"]) / total,
        }
        touching = set()
        for pair in [p for p in scores if a in p or b in p]:
            del scores[pair]
            touching.update(x for x in pair if x not in (a, b))
        for other in touching:
            scores[(other, merged_id)] = similarity(regions[other], regions[merged_id])
        found.append((float(step), tuple(regions[merged_id]["box"])))
    # rank: later (larger) regions first within a hierarchy, times the paper's random factor
    last = max(step, 1)
    return [((last - level + 1) * rng.random(), box) for level, box in found]


def selective_search(image: np.ndarray, settings: SearchSettings | None = None, seed: int = 0) -> np.ndarray:
    """(N, 4) float32 x1 y1 x2 y2 proposals in the pixels of ``image`` ((H, W, 3) uint8 RGB),
    best-ranked first, at most ``settings.max_proposals``."""
    settings = settings or SearchSettings()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise EdgeCNNError(f"Selective search needs an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}.")
    height, width = image.shape[:2]
    scale = min(1.0, settings.max_side / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image
    min_size = max(4, int(settings.min_size_fraction * small.shape[0] * small.shape[1]))
    rng = np.random.default_rng(seed)
    ranked: list[tuple[float, tuple]] = []
    for code in (cv2.COLOR_RGB2HSV, cv2.COLOR_RGB2LAB):
        converted = cv2.cvtColor(small, code).astype(np.float32)
        colour = converted / np.array([180.0, 255.0, 255.0] if code == cv2.COLOR_RGB2HSV else [255.0] * 3, np.float32)
        texture = _texture_values(colour)
        for k in settings.scales:
            labels = felzenszwalb(converted, k, settings.sigma, min_size)
            for use_colour in (True, False):
                ranked.extend(_group(labels, colour, texture, use_colour, rng))
    ranked.sort(key=lambda item: item[0])
    boxes, seen = [], set()
    for _, box in ranked:
        if box in seen:
            continue
        seen.add(box)
        x1, y1, x2, y2 = box
        if (x2 - x1 + 1) / scale >= settings.min_box and (y2 - y1 + 1) / scale >= settings.min_box:
            boxes.append((x1 / scale, y1 / scale, (x2 + 1) / scale, (y2 + 1) / scale))
        if len(boxes) >= settings.max_proposals:
            break
    return np.array(boxes, np.float32).reshape(-1, 4)
