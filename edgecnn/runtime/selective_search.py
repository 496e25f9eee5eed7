"""Selective search (Uijlings et al. 2013), the region proposals of R-CNN and Fast R-CNN,
TensorFlow-free, NumPy only.

OpenCV's implementation lives in ``opencv-contrib``'s ximgproc, whose wheel installs a second
``cv2``; and the browser page must propose the same boxes as this runtime. So edgecnn carries
its own, in arithmetic another runtime repeats exactly (``search_pixels``; the page's copy is
deploy/web/edgecnn/proposals.js): histograms are pixel counts, their intersection an exact
integer ratio, ties go to the first pair in a fixed order, the random factor is Mulberry32.

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
Python over the pixel graph's edges, about 0.1 s per image at 128x128.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.search_pixels import area_resize, gaussian_blur, texture_values, to_hsv, to_lab

COLOR_BINS, TEXTURE_BINS = 25, 10
ALGORITHM = 2  # changes whenever the same image and settings would give other boxes (caches key on it)


@dataclass(frozen=True)
class SearchSettings:
    scales: tuple[float, ...] = (100.0, 200.0)  # Felzenszwalb's k, in colour distance units
    sigma: float = 0.8
    min_size_fraction: float = 0.0005  # smallest initial region, as a share of the pixels (at least 4)
    max_side: int = 256
    max_proposals: int = 2000
    min_box: int = 4  # boxes narrower or shorter than this (input pixels) are dropped


class Mulberry32:
    """A 32-bit generator small enough to repeat exactly in any language: ``random()`` in [0, 1)."""

    MASK = 0xFFFFFFFF

    def __init__(self, seed: int):
        self.state = seed & self.MASK

    def random(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & self.MASK
        t = self.state
        t = ((t ^ (t >> 15)) * (t | 1)) & self.MASK
        t = ((t + (((t ^ (t >> 7)) * (t | 61)) & self.MASK)) & self.MASK) ^ t
        return (t ^ (t >> 14)) / 4294967296


def felzenszwalb(image: np.ndarray, k: float, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
    """(H, W) int32 region labels 0..R-1 of an (H, W, C) image."""
    height, width = image.shape[:2]
    smooth = gaussian_blur(image, sigma) if sigma > 0 else image.astype(np.float64)
    index = np.arange(height * width).reshape(height, width)
    pairs = [(index[:, :-1], index[:, 1:], smooth[:, :-1] - smooth[:, 1:]),
             (index[:-1, :], index[1:, :], smooth[:-1, :] - smooth[1:, :])]
    sources = np.concatenate([p[0].ravel() for p in pairs])
    targets = np.concatenate([p[1].ravel() for p in pairs])
    # channel by channel, in order: the distance must round the same in every runtime
    weights = np.concatenate([np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]).ravel()
                              for d in (p[2] for p in pairs)])
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


def _histograms(values: np.ndarray, labels: np.ndarray, count: int, bins: int) -> np.ndarray:
    """(R, C * bins) int64 per-region pixel counts of (H, W, C) ``values`` in [0, 1]."""
    channels = values.shape[-1]
    binned = np.clip(np.floor(values * bins).astype(np.int64), 0, bins - 1)
    flat = labels.ravel()
    result = np.zeros((count, channels * bins), np.int64)
    for channel in range(channels):
        keys = flat * (channels * bins) + channel * bins + binned[..., channel].ravel()
        result += np.bincount(keys, minlength=count * channels * bins).reshape(count, channels * bins)
    return result


def _intersection(a: np.ndarray, b: np.ndarray, size_a: int, size_b: int, per_pixel: int) -> float:
    """Histogram intersection of two regions' counts, each normalised by its total
    (``per_pixel`` counts per pixel), as one exact integer ratio."""
    return int(np.minimum(a * size_b, b * size_a).sum()) / (per_pixel * size_a * size_b)


def _group(labels: np.ndarray, colour: np.ndarray, texture: np.ndarray, use_colour: bool,
           rng: Mulberry32) -> list[tuple[float, tuple[int, int, int, int]]]:
    """Hierarchical grouping of one segmentation: (rank, box x1 y1 x2 y2 inclusive) of every region."""
    count = int(labels.max()) + 1
    height, width = labels.shape
    image_size = float(height * width)
    sizes = np.bincount(labels.ravel(), minlength=count).tolist()
    ys, xs = np.indices(labels.shape)
    flat = labels.ravel()
    boxes = np.stack([np.full(count, width), np.full(count, height), np.full(count, -1), np.full(count, -1)], 1)
    np.minimum.at(boxes[:, 0], flat, xs.ravel())
    np.minimum.at(boxes[:, 1], flat, ys.ravel())
    np.maximum.at(boxes[:, 2], flat, xs.ravel())
    np.maximum.at(boxes[:, 3], flat, ys.ravel())
    colour_hist = _histograms(colour, labels, count, COLOR_BINS)
    texture_hist = _histograms(texture, labels, count, TEXTURE_BINS)
    colour_per_pixel, texture_per_pixel = colour.shape[-1], texture.shape[-1]
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
        score += _intersection(a["texture"], b["texture"], a["size"], b["size"], texture_per_pixel)
        if use_colour:
            score += _intersection(a["colour"], b["colour"], a["size"], b["size"], colour_per_pixel)
        return score

    # pairs in sorted order, new pairs appended: equal scores go to the first, in every runtime
    scores = {pair: similarity(regions[pair[0]], regions[pair[1]]) for pair in sorted(neighbours)}
    found = [(0.0, tuple(regions[r]["box"])) for r in range(count)]
    step = 0
    while scores:
        a, b = max(scores, key=scores.get)
        step += 1
        merged_id = count + step - 1
        first, second = regions[a], regions[b]
        regions[merged_id] = {
            "size": first["size"] + second["size"],
            "box": [min(first["box"][0], second["box"][0]), min(first["box"][1], second["box"][1]),
                    max(first["box"][2], second["box"][2]), max(first["box"][3], second["box"][3])],
            "colour": first["colour"] + second["colour"],
            "texture": first["texture"] + second["texture"],
        }
        touching = set()
        for pair in [p for p in scores if a in p or b in p]:
            del scores[pair]
            touching.update(x for x in pair if x not in (a, b))
        for other in sorted(touching):
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
    small = area_resize(image, max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1 else image
    min_size = max(4, int(settings.min_size_fraction * small.shape[0] * small.shape[1]))
    rng = Mulberry32(seed)
    ranked: list[tuple[float, tuple]] = []
    for convert, divisors in ((to_hsv, (180.0, 255.0, 255.0)), (to_lab, (255.0, 255.0, 255.0))):
        converted = convert(small).astype(np.float64)
        colour = converted / np.array(divisors)
        texture = texture_values(colour)
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
