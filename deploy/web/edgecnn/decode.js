// Model outputs -> results, as edgecnn.runtime decodes them (regions.py, detection.py,
// masks.py, translator.py): a Faster R-CNN's proposals, class scores and per-class box deltas ->
// detections with class-aware NMS; a Mask R-CNN's masks pasted at their proposals' boxes; a
// generator's output mapped to bytes.

export const DEFAULT_DELTA_WEIGHTS = [10, 10, 5, 5];
const MAX_LOG_SIZE_RATIO = Math.log(1000 / 16);
export const MASK_THRESHOLD = 0.5;

/** Indices of the kept candidates, best first: greedy NMS where boxes of different classes never
 * suppress each other (edgecnn.runtime.detection.batched_nms). */
export function batchedNms(boxes, scores, classes, iouThreshold, maxKeep = Infinity) {
  // a stable sort on descending scores, as NumPy's argsort(kind="stable")
  let rest = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const keep = [];
  while (rest.length && keep.length < maxKeep) {
    const best = rest[0];
    keep.push(best);
    const [ax1, ay1, ax2, ay2] = boxes[best];
    const area = Math.max(ax2 - ax1, 0) * Math.max(ay2 - ay1, 0);
    rest = rest.slice(1).filter((other) => {
      if (classes[other] !== classes[best]) return true;
      const [bx1, by1, bx2, by2] = boxes[other];
      const width = Math.min(ax2, bx2) - Math.max(ax1, bx1), height = Math.min(ay2, by2) - Math.max(ay1, by1);
      if (width <= 0 || height <= 0) return true;
      const inter = width * height;
      const union = area + Math.max(bx2 - bx1, 0) * Math.max(by2 - by1, 0) - inter;
      return !(inter > iouThreshold * Math.max(union, 1e-9));
    });
  }
  return keep;
}

function applyDeltas(box, deltas, weights) {
  const width = box[2] - box[0], height = box[3] - box[1];
  const cx = box[0] + 0.5 * width + (deltas[0] / weights[0]) * width;
  const cy = box[1] + 0.5 * height + (deltas[1] / weights[1]) * height;
  const halfW = 0.5 * width * Math.exp(Math.min(deltas[2] / weights[2], MAX_LOG_SIZE_RATIO));
  const halfH = 0.5 * height * Math.exp(Math.min(deltas[3] / weights[3], MAX_LOG_SIZE_RATIO));
  return [cx - halfW, cy - halfH, cx + halfW, cy + halfH];
}

/** One image's P proposals (P x 4), softmax scores (P x (K + 1), column 0 background) and per-class
 * deltas (P x 4K) -> [{box (input pixels), score, class, proposal}] (regions.region_postprocess). */
export function regionPostprocess(proposals, classScores, boxDeltas, inputSize, options) {
  const { deltaWeights = DEFAULT_DELTA_WEIGHTS, scoreThreshold = 0.25, iouThreshold = 0.5, maxDetections = 100 } = options;
  const count = proposals.length / 4, classes = classScores.length / count - 1;
  const [height, width] = inputSize;
  const candidates = [];
  for (let row = 0; row < count; row++) {  // row-major, as NumPy's nonzero
    for (let k = 0; k < classes; k++) {
      const score = classScores[row * (classes + 1) + 1 + k];
      if (!(score > scoreThreshold)) continue;
      const proposal = Array.from(proposals.subarray(4 * row, 4 * row + 4));
      const deltas = boxDeltas.subarray(row * 4 * classes + 4 * k, row * 4 * classes + 4 * k + 4);
      const box = applyDeltas(proposal, deltas, deltaWeights)
        .map((v, i) => Math.fround(Math.min(Math.max(v, 0), i % 2 === 0 ? width : height)));
      candidates.push({ box, score, class: k, proposal: row });
    }
  }
  const keep = batchedNms(candidates.map((c) => c.box), candidates.map((c) => c.score),
    candidates.map((c) => c.class), iouThreshold, maxDetections);
  return keep.map((i) => candidates[i]);
}

/** R-CNN's decoding (regions.svm_postprocess): R regions ([x1, y1, x2, y2] in the image), their
 * R x (K + 1) SVM scores (column 0 background) -> per-class sigmoid(s_c - s_background), boxes
 * refined by each class's deltas, class-aware NMS; `imageSize` [height, width] to clip to. */
export function svmPostprocess(regions, svmScores, boxDeltas, imageSize, options) {
  if (!regions.length) return [];
  const columns = svmScores.length / regions.length;
  const probabilities = new Float32Array(svmScores.length);
  for (let r = 0; r < regions.length; r++) {
    for (let c = 1; c < columns; c++) {
      const margin = Math.min(Math.max(Math.fround(svmScores[r * columns + c] - svmScores[r * columns]), -60), 60);
      probabilities[r * columns + c] = 1 / (1 + Math.exp(-margin));
    }
  }
  return regionPostprocess(Float32Array.from(regions.flat()), probabilities, Float32Array.from(boxDeltas), imageSize, options);
}

/** An M x M probability mask over `box` (x1 y1 x2 y2 in the image) -> the image's (H x W) 0/1 mask:
 * bilinear resampling of the mask over the box, threshold, nothing outside the box (masks.paste_mask). */
export function pasteMask(mask, size, box, imageHeight, imageWidth, threshold = MASK_THRESHOLD) {
  const out = new Uint8Array(imageHeight * imageWidth);
  const [x1, y1, x2, y2] = box;
  const left = Math.max(Math.floor(x1), 0), top = Math.max(Math.floor(y1), 0);
  const right = Math.min(Math.ceil(x2), imageWidth), bottom = Math.min(Math.ceil(y2), imageHeight);
  const sx = Math.max(x2 - x1, 1e-3) / size, sy = Math.max(y2 - y1, 1e-3) / size;
  for (let v = top; v < bottom; v++) {
    if (!(v + 0.5 >= y1 && v + 0.5 < y2)) continue;
    // mask cell centre (c + .5) * s + x1 lands on pixel centre u + .5
    const fy = Math.min(Math.max((v + 0.5 - y1) / sy - 0.5, 0), size - 1);
    const r0 = Math.floor(fy), r1 = Math.min(r0 + 1, size - 1), wy = fy - r0;
    for (let u = left; u < right; u++) {
      if (!(u + 0.5 >= x1 && u + 0.5 < x2)) continue;
      const fx = Math.min(Math.max((u + 0.5 - x1) / sx - 0.5, 0), size - 1);
      const c0 = Math.floor(fx), c1 = Math.min(c0 + 1, size - 1), wx = fx - c0;
      const value = (mask[r0 * size + c0] * (1 - wx) + mask[r0 * size + c1] * wx) * (1 - wy)
        + (mask[r1 * size + c0] * (1 - wx) + mask[r1 * size + c1] * wx) * wy;
      out[v * imageWidth + u] = value >= threshold ? 1 : 0;
    }
  }
  return out;
}

/** A (1, P * M, M, K) mask output: proposal `row`'s M x M mask of class `k`. */
export function maskOf(masks, size, classes, row, k) {
  const out = new Float32Array(size * size);
  for (let i = 0; i < size * size; i++) out[i] = masks[(row * size * size + i) * classes + k];
  return out;
}

/** A generator's (H, W, C) output in [low, high] -> RGB bytes (translator.Translator). */
export function outputPixels(output, height, width, channels, low = -1, high = 1) {
  const data = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) {
      const value = output[p * channels + (channels === 1 ? 0 : c)];
      data[3 * p + c] = Math.min(Math.max(Math.round(((value - low) / (high - low)) * 255), 0), 255);
    }
  }
  return { width, height, data };
}
