// Results drawn over the image on a canvas: boxes with labels and scores, a class overlay, instance
// masks, a classifier's top 5, a generator's output beside its input.

const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c',
  '#fabebe', '#008080', '#e6beff', '#9a6324', '#800000', '#aaffc3', '#808000', '#000075'];

function rgbOfColor(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function label(context, text, x, y, color) {
  context.font = '13px sans-serif';
  const width = context.measureText(text).width + 6;
  context.fillStyle = color;
  context.fillRect(x, Math.max(y - 16, 0), width, 16);
  context.fillStyle = '#fff';
  context.fillText(text, x + 3, Math.max(y - 4, 12));
}

// colorAt(p) for image pixel p (row-major, `width` wide), over a canvas `scale` times larger
function overlay(context, width, height, scale, colorAt) {
  const pixels = context.getImageData(0, 0, width * scale, height * scale);
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      const color = colorAt(Math.floor(y / scale) * width + Math.floor(x / scale));
      if (!color) continue;
      const q = 4 * (y * width * scale + x);
      for (let c = 0; c < 3; c++) pixels.data[q + c] = 0.5 * pixels.data[q + c] + 0.5 * color[c];
    }
  }
  context.putImageData(pixels, 0, 0);
}

function canvasOf(rgb) {
  const canvas = new OffscreenCanvas(rgb.width, rgb.height);
  const out = new ImageData(rgb.width, rgb.height);
  for (let p = 0; p < rgb.width * rgb.height; p++) {
    out.data.set([rgb.data[3 * p], rgb.data[3 * p + 1], rgb.data[3 * p + 2], 255], 4 * p);
  }
  canvas.getContext('2d').putImageData(out, 0, 0);
  return canvas;
}

/** Draw `image` and the pipeline's `result` (task `task`) on `canvas`; small images enlarged
 * (whole pixels) to about 480 pixels. */
export function drawResult(canvas, image, task, result) {
  const width = image.naturalWidth || image.videoWidth || image.width;
  const height = image.naturalHeight || image.videoHeight || image.height;
  const scale = Math.max(1, Math.floor(480 / Math.max(width, height)));
  canvas.width = (task === 'generation' ? 2 * width : width) * scale;
  canvas.height = height * scale;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingEnabled = false;
  context.drawImage(image, 0, 0, width * scale, height * scale);
  if (task === 'generation') {
    context.drawImage(canvasOf(result.image), width * scale, 0, width * scale, height * scale);
  } else if (task === 'segmentation') {
    const colors = COLORS.map(rgbOfColor);
    overlay(context, width, height, scale,
      (p) => (result.class_map[p] > 0 ? colors[result.class_map[p] % colors.length] : null));
  } else if (task === 'instance_segmentation') {
    const colors = COLORS.map(rgbOfColor);
    overlay(context, width, height, scale, (p) => {
      const hit = result.instances.findIndex((instance) => instance.mask[p]);
      return hit < 0 ? null : colors[hit % colors.length];
    });
  }
  for (const [i, item] of (result.detections || result.instances || []).entries()) {
    const color = COLORS[(task === 'instance_segmentation' ? i : item.class) % COLORS.length];
    const [x1, y1, x2, y2] = item.box.map((v) => v * scale);
    context.strokeStyle = color;
    context.lineWidth = 2;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    label(context, `${item.label} ${item.score.toFixed(2)}`, x1, y1, color);
  }
  if (task === 'classification') {
    result.top_k.forEach((p, i) => label(context, `${p.label} ${p.score.toFixed(3)}`, 2, 18 + 18 * i, COLORS[i]));
  }
}
