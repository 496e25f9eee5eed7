// Selective search (the proposals of R-CNN and Fast R-CNN) and R-CNN's region warp, operation for
// operation as edgecnn.runtime.selective_search and search_pixels compute them, so the page
// proposes the same boxes and crops the same regions as the Python runtime. Every value that
// decides a proposal comes from IEEE double +, -, *, /, sqrt in the Python code's order;
// transcendental results are rounded to bytes or float32; ties go to the first pair in sorted
// order; the random factor is Mulberry32. Images are {width, height, data: RGB Uint8Array}.

import { roundHalfEven } from './images.js';

export const SEARCH_SETTINGS = { scales: [100, 200], sigma: 0.8, minSizeFraction: 0.0005, maxSide: 256, maxProposals: 2000, minBox: 4 };
const COLOR_BINS = 25, TEXTURE_BINS = 10, ORIENTATIONS = 8;
const LAB_WHITE = [0.950456, 1.0, 1.088754];
const RGB_TO_XYZ = [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];

const roundHalfUp = (v) => Math.floor(v + 0.5);
const toByte = (v) => Math.min(Math.max(roundHalfUp(v), 0), 255);

/** A 32-bit generator (search_pixels' Mulberry32): random() in [0, 1). */
export function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1) >>> 0;
    t = (((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0) ^ t) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- pixels: search_pixels.py --------------------------------------------------------------

// one axis of the area resize, on a float plane {width, height, channels, data: Float64Array}
function areaPass(plane, target, alongX) {
  const { width, height, channels, data } = plane;
  const source = alongX ? width : height;
  const ratio = source / target;
  const starts = [], ends = [], first = [];
  let taps = 0;
  for (let j = 0; j < target; j++) {
    starts.push(j * ratio);
    ends.push(Math.min((j + 1) * ratio, source));
    first.push(Math.floor(starts[j]));
    taps = Math.max(taps, Math.ceil(ends[j]) - first[j]);
  }
  const outW = alongX ? target : width, outH = alongX ? height : target;
  const out = new Float64Array(outW * outH * channels);
  for (let j = 0; j < target; j++) {
    for (let tap = 0; tap < taps; tap++) {
      const index = first[j] + tap;
      const weight = Math.max(Math.min(ends[j], index + 1) - Math.max(starts[j], index), 0) / ratio;
      const from = Math.min(index, source - 1);
      const across = alongX ? outH : outW;
      for (let i = 0; i < across; i++) {
        const src = alongX ? (i * width + from) : (from * width + i);
        const dst = alongX ? (i * outW + j) : (j * outW + i);
        for (let c = 0; c < channels; c++) out[dst * channels + c] = out[dst * channels + c] + weight * data[src * channels + c];
      }
    }
  }
  return { width: outW, height: outH, channels, data: out };
}

/** The RGB image shrunk to width x height by area averaging, columns first (search_pixels.area_resize). */
export function areaResize(image, width, height) {
  const plane = { width: image.width, height: image.height, channels: 3, data: Float64Array.from(image.data) };
  const shrunk = areaPass(areaPass(plane, width, true), height, false);
  return { width, height, data: Uint8Array.from(shrunk.data, toByte) };
}

/** RGB bytes -> HSV bytes: hue 0..179 (degrees / 2), saturation, value. */
export function toHsv(image) {
  const src = image.data, out = new Uint8Array(src.length);
  for (let p = 0; p < src.length; p += 3) {
    const r = src[p], g = src[p + 1], b = src[p + 2];
    const value = Math.max(r, g, b), spread = value - Math.min(r, g, b), divisor = Math.max(spread, 1);
    let hue;
    if (spread === 0) hue = 0;
    else if (value === r) hue = 60 * (g - b) / divisor;
    else if (value === g) hue = 120 + 60 * (b - r) / divisor;
    else hue = 240 + 60 * (r - g) / divisor;
    if (hue < 0) hue += 360;
    const saturation = value > 0 ? 255 * spread / value : 0;
    out[p] = roundHalfUp(hue / 2) % 180;
    out[p + 1] = roundHalfUp(saturation);
    out[p + 2] = value;
  }
  return out;
}

const SRGB_LINEAR = Array.from({ length: 256 }, (_, i) => {
  const v = i / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
});

/** RGB bytes -> CIE Lab bytes as OpenCV stores them: L * 255 / 100, a + 128, b + 128. */
export function toLab(image) {
  const src = image.data, out = new Uint8Array(src.length);
  const f = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  for (let p = 0; p < src.length; p += 3) {
    const r = SRGB_LINEAR[src[p]], g = SRGB_LINEAR[src[p + 1]], b = SRGB_LINEAR[src[p + 2]];
    const [x, y, z] = RGB_TO_XYZ.map((m, i) => (m[0] * r + m[1] * g + m[2] * b) / LAB_WHITE[i]);
    const fx = f(x), fy = f(y), fz = f(z);
    const lightness = y > 0.008856 ? 116 * fy - 16 : 903.3 * y;
    out[p] = toByte(lightness * 255 / 100);
    out[p + 1] = toByte(500 * (fx - fy) + 128);
    out[p + 2] = toByte(200 * (fy - fz) + 128);
  }
  return out;
}

function reflect(index, size) {
  if (size === 1) return 0;
  const period = 2 * (size - 1);
  index = Math.abs(index) % period;
  return index >= size ? period - index : index;
}

/** 2r + 1 weights, r = ceil(3 sigma), exp rounded to float32, summing to 1. */
export function gaussianKernel(sigma) {
  const radius = Math.ceil(3 * sigma), raw = [];
  for (let i = -radius; i <= radius; i++) raw.push(Math.fround(Math.exp(-(i * i) / (2 * sigma * sigma))));
  let total = 0;
  for (const value of raw) total += value;
  return raw.map((value) => value / total);
}

function convolve(plane, kernel, alongX) {
  const { width, height, channels, data } = plane, radius = kernel.length >> 1;
  const out = new Float64Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let total = 0;
        for (let tap = 0; tap < kernel.length; tap++) {
          const sx = alongX ? reflect(x + tap - radius, width) : x, sy = alongX ? y : reflect(y + tap - radius, height);
          total = total + kernel[tap] * data[(sy * width + sx) * channels + c];
        }
        out[(y * width + x) * channels + c] = total;
      }
    }
  }
  return { ...plane, data: out };
}

export function gaussianBlur(plane, sigma) {
  const kernel = gaussianKernel(sigma);
  return convolve(convolve(plane, kernel, true), kernel, false);
}

function octant(gx, gy) {
  if (gy >= 0) return gx > 0 ? (gy < gx ? 4 : 5) : (gy > -gx ? 6 : 7);
  return gx < 0 ? (Math.abs(gy) < Math.abs(gx) ? 0 : 1) : (Math.abs(gy) > gx ? 2 : 3);
}

/** (H, W, C * 8) gradient magnitudes of the blurred image in the slots of their octants, max 1. */
export function textureValues(plane) {
  const { width, height, channels, data } = gaussianBlur(plane, 1.0);
  const at = (x, y, c) => data[(reflect(y, height) * width + reflect(x, width)) * channels + c];
  const out = new Float64Array(width * height * channels * ORIENTATIONS);
  let largest = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const across = (v) => at(x + 1, v, c) - at(x - 1, v, c);
        const along = (v) => at(x - 1, v, c) + 2 * at(x, v, c) + at(x + 1, v, c);
        const gx = across(y - 1) + 2 * across(y) + across(y + 1);
        const gy = along(y + 1) - along(y - 1);
        const magnitude = Math.sqrt(gx * gx + gy * gy);
        out[((y * width + x) * channels + c) * ORIENTATIONS + octant(gx, gy)] = magnitude;
        largest = Math.max(largest, magnitude);
      }
    }
  }
  const divisor = Math.max(largest, 1e-6);
  for (let i = 0; i < out.length; i++) out[i] = out[i] / divisor;
  return { width, height, channels: channels * ORIENTATIONS, data: out };
}

/** R-CNN's warp (search_pixels.warp_region): `box` grown so that `context` of the output on each
 * side is surrounding image, stretched bilinearly to height x width; outside the image is `fill`. */
export function warpRegion(image, box, height, width, context, fill = 114) {
  const [x1, y1, x2, y2] = box;
  const grow = 1.0 / Math.max(1.0 - 2.0 * context, 1e-3);
  const boxW = Math.max(x2 - x1, 1.0) * grow, boxH = Math.max(y2 - y1, 1.0) * grow;
  const left = (x1 + x2 - boxW) / 2, top = (y1 + y2 - boxH) / 2;
  const pixel = (row, col, c) => (row < 0 || col < 0 || row >= image.height || col >= image.width
    ? fill : image.data[(row * image.width + col) * 3 + c]);
  const data = new Uint8Array(width * height * 3);
  for (let v = 0; v < height; v++) {
    const ys = top + (v + 0.5) * (boxH / height) - 0.5, y0 = Math.floor(ys), fy = ys - y0;
    for (let u = 0; u < width; u++) {
      const xs = left + (u + 0.5) * (boxW / width) - 0.5, x0 = Math.floor(xs), fx = xs - x0;
      for (let c = 0; c < 3; c++) {
        const upper = pixel(y0, x0, c) * (1 - fx) + pixel(y0, x0 + 1, c) * fx;
        const lower = pixel(y0 + 1, x0, c) * (1 - fx) + pixel(y0 + 1, x0 + 1, c) * fx;
        data[(v * width + u) * 3 + c] = toByte(upper * (1 - fy) + lower * fy);
      }
    }
  }
  return { width, height, data };
}

// ---- the search: selective_search.py -------------------------------------------------------

/** Felzenszwalb-Huttenlocher segmentation of a 3-channel plane: Int32Array region labels. */
export function felzenszwalb(plane, k, sigma, minSize) {
  const { width, height } = plane;
  const smooth = sigma > 0 ? gaussianBlur(plane, sigma).data : plane.data;
  const sources = [], targets = [], weights = [];
  const edge = (a, b) => {
    const d0 = smooth[3 * a] - smooth[3 * b], d1 = smooth[3 * a + 1] - smooth[3 * b + 1], d2 = smooth[3 * a + 2] - smooth[3 * b + 2];
    sources.push(a); targets.push(b); weights.push(Math.sqrt(d0 * d0 + d1 * d1 + d2 * d2));
  };
  for (let y = 0; y < height; y++) for (let x = 0; x + 1 < width; x++) edge(y * width + x, y * width + x + 1);
  for (let y = 0; y + 1 < height; y++) for (let x = 0; x < width; x++) edge(y * width + x, (y + 1) * width + x);
  const order = weights.map((_, i) => i).sort((a, b) => weights[a] - weights[b] || a - b);
  const count = width * height;
  const parent = new Int32Array(count).map((_, i) => i), size = new Int32Array(count).fill(1);
  const threshold = new Float64Array(count).fill(k);
  const find = (node) => {
    while (parent[node] !== node) { parent[node] = parent[parent[node]]; node = parent[node]; }
    return node;
  };
  for (const e of order) {
    let a = find(sources[e]), b = find(targets[e]);
    const weight = weights[e];
    if (a !== b && weight <= threshold[a] && weight <= threshold[b]) {
      if (size[a] < size[b]) [a, b] = [b, a];
      parent[b] = a; size[a] += size[b]; threshold[a] = weight + k / size[a];
    }
  }
  for (const e of order) {
    let a = find(sources[e]), b = find(targets[e]);
    if (a !== b && (size[a] < minSize || size[b] < minSize)) {
      if (size[a] < size[b]) [a, b] = [b, a];
      parent[b] = a; size[a] += size[b];
    }
  }
  const ids = new Int32Array(count).fill(-1), labels = new Int32Array(count);
  let next = 0;
  for (let node = 0; node < count; node++) if (parent[node] === node) ids[node] = next++;  // roots in index order
  for (let node = 0; node < count; node++) labels[node] = ids[find(node)];
  return labels;
}

function histograms(plane, labels, count, bins) {
  const channels = plane.channels, width = channels * bins, out = [];
  for (let r = 0; r < count; r++) out.push(new Float64Array(width));
  for (let p = 0; p < labels.length; p++) {
    const counts = out[labels[p]];
    for (let c = 0; c < channels; c++) {
      counts[c * bins + Math.min(Math.max(Math.floor(plane.data[p * channels + c] * bins), 0), bins - 1)] += 1;
    }
  }
  return out;
}

// histogram intersection of two regions' counts as one exact integer ratio
function intersection(a, b, sizeA, sizeB, perPixel) {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.min(a[i] * sizeB, b[i] * sizeA);
  return total / (perPixel * sizeA * sizeB);
}

function group(labels, width, height, colour, texture, useColour, random) {
  let count = 0;
  for (const label of labels) count = Math.max(count, label + 1);
  const imageSize = width * height;
  const colourHist = histograms(colour, labels, count, COLOR_BINS), textureHist = histograms(texture, labels, count, TEXTURE_BINS);
  const regions = [];
  for (let r = 0; r < count; r++) regions.push({ size: 0, box: [width, height, -1, -1], colour: colourHist[r], texture: textureHist[r] });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const region = regions[labels[y * width + x]];
      region.size += 1;
      region.box = [Math.min(region.box[0], x), Math.min(region.box[1], y), Math.max(region.box[2], x), Math.max(region.box[3], y)];
    }
  }
  const KEY = 2 * count + 1;  // pair (a, b), a < b -> a * KEY + b: numeric order is the pairs' sorted order
  const neighbours = new Set();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const here = labels[y * width + x];
      for (const there of [x + 1 < width ? labels[y * width + x + 1] : here, y + 1 < height ? labels[(y + 1) * width + x] : here]) {
        if (there !== here) neighbours.add(Math.min(here, there) * KEY + Math.max(here, there));
      }
    }
  }
  const similarity = (a, b) => {
    const box = [Math.min(a.box[0], b.box[0]), Math.min(a.box[1], b.box[1]), Math.max(a.box[2], b.box[2]), Math.max(a.box[3], b.box[3])];
    const boxArea = (box[2] - box[0] + 1) * (box[3] - box[1] + 1);
    let score = (1 - (a.size + b.size) / imageSize) + (1 - (boxArea - a.size - b.size) / imageSize);
    score += intersection(a.texture, b.texture, a.size, b.size, texture.channels);
    if (useColour) score += intersection(a.colour, b.colour, a.size, b.size, colour.channels);
    return score;
  };
  const scores = new Map();
  for (const key of [...neighbours].sort((p, q) => p - q)) {
    scores.set(key, similarity(regions[Math.floor(key / KEY)], regions[key % KEY]));
  }
  const found = regions.map((region) => [0, region.box]);
  let step = 0;
  while (scores.size) {
    let bestKey = -1, bestScore = -Infinity;
    for (const [key, score] of scores) if (score > bestScore) { bestKey = key; bestScore = score; }
    const a = Math.floor(bestKey / KEY), b = bestKey % KEY;
    step += 1;
    const mergedId = count + step - 1, first = regions[a], second = regions[b];
    regions.push({
      size: first.size + second.size,
      box: [Math.min(first.box[0], second.box[0]), Math.min(first.box[1], second.box[1]),
        Math.max(first.box[2], second.box[2]), Math.max(first.box[3], second.box[3])],
      colour: first.colour.map((v, i) => v + second.colour[i]),
      texture: first.texture.map((v, i) => v + second.texture[i]),
    });
    const touching = new Set();
    for (const key of [...scores.keys()]) {
      const p = Math.floor(key / KEY), q = key % KEY;
      if (p === a || p === b || q === a || q === b) {
        scores.delete(key);
        for (const x of [p, q]) if (x !== a && x !== b) touching.add(x);
      }
    }
    for (const other of [...touching].sort((p, q) => p - q)) {
      scores.set(other * KEY + mergedId, similarity(regions[other], regions[mergedId]));
    }
    found.push([step, regions[mergedId].box]);
  }
  const last = Math.max(step, 1);
  return found.map(([level, box]) => [(last - level + 1) * random(), box]);
}

/** Proposals [[x1, y1, x2, y2], ...] (float32 values, image pixels), best-ranked first
 * (edgecnn.runtime.selective_search.selective_search). */
export function selectiveSearch(image, settings = SEARCH_SETTINGS, seed = 0) {
  const scale = Math.min(1.0, settings.maxSide / Math.max(image.height, image.width));
  const small = scale < 1
    ? areaResize(image, Math.max(1, roundHalfEven(image.width * scale)), Math.max(1, roundHalfEven(image.height * scale)))
    : image;
  const { width, height } = small;
  const minSize = Math.max(4, Math.trunc(settings.minSizeFraction * height * width));
  const random = mulberry32(seed);
  const ranked = [];
  for (const [convert, divisors] of [[toHsv, [180, 255, 255]], [toLab, [255, 255, 255]]]) {
    const bytes = convert(small);
    const converted = { width, height, channels: 3, data: Float64Array.from(bytes) };
    const colour = { width, height, channels: 3, data: converted.data.map((v, i) => v / divisors[i % 3]) };
    const texture = textureValues(colour);
    for (const k of settings.scales) {
      const labels = felzenszwalb(converted, k, settings.sigma, minSize);
      for (const useColour of [true, false]) ranked.push(...group(labels, width, height, colour, texture, useColour, random));
    }
  }
  ranked.sort((p, q) => p[0] - q[0]);  // stable, as Python's sort
  const boxes = [], seen = new Set();
  for (const [, box] of ranked) {
    const key = box.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    const [x1, y1, x2, y2] = box;
    if ((x2 - x1 + 1) / scale >= settings.minBox && (y2 - y1 + 1) / scale >= settings.minBox) {
      boxes.push([x1 / scale, y1 / scale, (x2 + 1) / scale, (y2 + 1) / scale].map(Math.fround));
    }
    if (boxes.length >= settings.maxProposals) break;
  }
  return boxes;
}
