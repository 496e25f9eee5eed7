// Pixels in and out of a model, as edgecnn.runtime.images does them: an image as (H, W, 3) RGB
// bytes, resized by exact 2x2 halvings (area averaging, OpenCV's rounding) while it stays at
// least the target size and one bilinear step for the rest, letterboxed (centred, grey 114
// padding) for detectors. Exact halvings give the Python runtime's pixels; the bilinear step
// matches OpenCV's within a level of rounding.

export const PAD_VALUE = 114;

/** {width, height, data: RGB Uint8Array} of anything a canvas can draw (image, video, bitmap). */
export function rgbOf(source, width = source.naturalWidth || source.videoWidth || source.width,
  height = source.naturalHeight || source.videoHeight || source.height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i]; data[j + 1] = rgba[i + 1]; data[j + 2] = rgba[i + 2];
  }
  return { width, height, data };
}

function halve(image) {
  const width = image.width >> 1, height = image.height >> 1, src = image.data;
  const data = new Uint8Array(width * height * 3);
  const row = image.width * 3;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = (2 * y * image.width + 2 * x) * 3;
      for (let c = 0; c < 3; c++) {
        data[(y * width + x) * 3 + c] = (src[a + c] + src[a + 3 + c] + src[a + row + c] + src[a + row + 3 + c] + 2) >> 2;
      }
    }
  }
  return { width, height, data };
}

function bilinear(image, width, height) {
  const data = new Uint8Array(width * height * 3), src = image.data;
  const sx = image.width / width, sy = image.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), image.height - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, image.height - 1), wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), image.width - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, image.width - 1), wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const top = src[(y0 * image.width + x0) * 3 + c] * (1 - wx) + src[(y0 * image.width + x1) * 3 + c] * wx;
        const bottom = src[(y1 * image.width + x0) * 3 + c] * (1 - wx) + src[(y1 * image.width + x1) * 3 + c] * wx;
        data[(y * width + x) * 3 + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { width, height, data };
}

function areaAverage(image, width, height) {
  const data = new Uint8Array(width * height * 3), src = image.data;
  const sx = image.width / width, sy = image.height / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sums = [0, 0, 0];
      let weight = 0;
      for (let v = Math.floor(y * sy); v < Math.min(Math.ceil((y + 1) * sy), image.height); v++) {
        const wy = Math.min(v + 1, (y + 1) * sy) - Math.max(v, y * sy);
        for (let u = Math.floor(x * sx); u < Math.min(Math.ceil((x + 1) * sx), image.width); u++) {
          const w = wy * (Math.min(u + 1, (x + 1) * sx) - Math.max(u, x * sx));
          for (let c = 0; c < 3; c++) sums[c] += w * src[(v * image.width + u) * 3 + c];
          weight += w;
        }
      }
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.round(sums[c] / weight);
    }
  }
  return { width, height, data };
}

/** The image at width x height (see the module). */
export function resize(image, width, height) {
  while (image.width % 2 === 0 && image.height % 2 === 0 && image.width / 2 >= width && image.height / 2 >= height) {
    image = halve(image);
  }
  if (image.width === width && image.height === height) return image;
  const shrink = Math.min(image.width / width, image.height / height);
  return shrink >= 2 ? areaAverage(image, width, height) : bilinear(image, width, height);
}

/** Python's round(): halves to even. */
export function roundHalfEven(value) {
  const floor = Math.floor(value), rest = value - floor;
  if (rest !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The image fitted into height x width keeping its aspect ratio, padded around, and the fit
 * {scale, padX, padY}: model pixel = original pixel * scale + pad. */
export function letterbox(image, height, width) {
  const scale = Math.min(height / image.height, width / image.width);
  const newW = Math.max(1, roundHalfEven(image.width * scale)), newH = Math.max(1, roundHalfEven(image.height * scale));
  const padX = Math.floor((width - newW) / 2), padY = Math.floor((height - newH) / 2);
  const resized = resize(image, newW, newH);
  const data = new Uint8Array(width * height * 3).fill(PAD_VALUE);
  for (let y = 0; y < newH; y++) {
    data.set(resized.data.subarray(y * newW * 3, (y + 1) * newW * 3), ((y + padY) * width + padX) * 3);
  }
  return { image: { width, height, data }, fit: { scale, padX, padY } };
}

/** Model-input boxes [x1, y1, x2, y2] -> original-image boxes, clipped to it when its size is given. */
export function toOriginal(box, fit, width, height) {
  const out = [(box[0] - fit.padX) / fit.scale, (box[1] - fit.padY) / fit.scale,
    (box[2] - fit.padX) / fit.scale, (box[3] - fit.padY) / fit.scale];
  if (width === undefined) return out;
  return out.map((v, i) => Math.min(Math.max(v, 0), i % 2 === 0 ? width : height));
}

/** The (1, H, W, C) float input: pixel * scale + offset (gray inputs: the mean of R, G, B). */
export function toInput(image, channels, scale, offset) {
  const pixels = image.width * image.height, out = new Float32Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    if (channels === 1) {
      out[p] = ((image.data[3 * p] + image.data[3 * p + 1] + image.data[3 * p + 2]) / 3) * scale + offset;
    } else {
      for (let c = 0; c < 3; c++) out[3 * p + c] = image.data[3 * p + c] * scale + offset;
    }
  }
  return out;
}
