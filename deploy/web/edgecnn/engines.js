// An edgecnn .tflite file -> a pipeline that takes an image and gives results, on the engine its
// metadata calls for: MediaPipe Tasks for Web for classifiers, one-stage detectors and segmenters
// (they open through the standard metadata edgecnn writes), LiteRT.js for what MediaPipe has no
// task for (R-CNN, Fast R-CNN, Faster R-CNN, Mask R-CNN, generators), with the pre- and
// post-processing of images.js, proposals.js and decode.js. Results have the fields of
// edgecnn.runtime's to_json.

import { FileError, hasStandardMetadata, readMetadata } from './flatbuffer.js';
import { letterbox, resize, rgbOf, toInput, toOriginal } from './images.js';
import { maskOf, outputPixels, pasteMask, regionPostprocess, svmPostprocess } from './decode.js';
import { selectiveSearch, warpRegion } from './proposals.js';

const ENGINE_FILES = new URL('../node_modules/', import.meta.url);
const REGION_KIND = 'faster_rcnn', WARP_KIND = 'rcnn', PROPOSAL_KIND = 'fast_rcnn';
const REGION_KINDS = [REGION_KIND, WARP_KIND, PROPOSAL_KIND];
const NMS_IOU = { [WARP_KIND]: 0.3 };  // R-CNN's paper (runtime.regions.NMS_IOU)
const MAX_WARPED_REGIONS = 200;  // R-CNN classifies the best-ranked proposals only
const GENERATOR_NORMALIZATION = { scale: 2 / 255, offset: -1 };

let visionFileset = null;
let liteRt = null;

async function mediapipe() {
  const vision = await import(new URL('@mediapipe/tasks-vision/vision_bundle.mjs', ENGINE_FILES).href);
  visionFileset ??= await vision.FilesetResolver.forVisionTasks(new URL('@mediapipe/tasks-vision/wasm', ENGINE_FILES).href);
  return vision;
}

async function litert() {
  if (!liteRt) {
    liteRt = await import(new URL('@litertjs/core/dist/index.js', ENGINE_FILES).href);
    // threads need a cross-origin isolated page (serve.py sends the headers)
    await liteRt.loadLiteRt(new URL('@litertjs/core/wasm/', ENGINE_FILES).href, { threads: self.crossOriginIsolated === true });
  }
  return liteRt;
}

/** Which engine runs a file, from its metadata: {engine, task, reason}. */
export function engineFor(metadata) {
  const task = metadata.task, kind = (metadata.decoding || {}).kind;
  if (task === 'instance_segmentation' || task === 'generation' || REGION_KINDS.includes(kind)) {
    if (metadata.target === 'int8-io') {  // LiteRT.js has no int8 tensors to feed
      return { engine: null, task, reason: 'this page feeds float inputs and this is an int8-io file (integer input '
        + 'and output, for NPUs): use its int8 file, which has float inputs and outputs.' };
    }
    return { engine: 'litert', task };
  }
  if (['classification', 'detection', 'segmentation'].includes(task)) return { engine: 'mediapipe', task };
  return { engine: null, task, reason: `edgecnn's page has no pipeline for the task '${task}'.` };
}

function labelOf(labels, index) {
  return labels && index < labels.length ? labels[index] : String(index);
}

function timed(run) {
  return async (image) => {
    const start = performance.now();
    const result = await run(image);
    return { ...result, pipeline_ms: performance.now() - start };
  };
}

async function openMediapipe(bytes, metadata, task, delegate, options) {
  const vision = await mediapipe();
  const base = { modelAssetBuffer: bytes, delegate };
  const common = { baseOptions: base, runningMode: 'IMAGE' };
  if (task === 'classification') {
    const classifier = await vision.ImageClassifier.createFromOptions(visionFileset, { ...common, maxResults: options.topK ?? 5 });
    return {
      close: () => classifier.close(),
      run: timed((image) => {
        const start = performance.now();
        const categories = classifier.classify(image).classifications[0].categories;
        return { invoke_ms: performance.now() - start,
          top_k: categories.map((c) => ({ index: c.index, label: c.categoryName || labelOf(metadata.labels, c.index), score: c.score })) };
      }),
    };
  }
  if (task === 'detection') {
    const detector = await vision.ObjectDetector.createFromOptions(visionFileset,
      { ...common, scoreThreshold: options.scoreThreshold ?? 0.25, maxResults: options.maxDetections ?? -1 });
    return {
      close: () => detector.close(),
      run: timed((image) => {
        const start = performance.now();
        const detections = detector.detect(image).detections.map((d) => {
          const box = d.boundingBox, best = d.categories[0];
          // MediaPipe's detector names the class but gives index -1: the index comes from the labels
          const index = best.index >= 0 ? best.index : (metadata.labels || []).indexOf(best.categoryName);
          return { box: [box.originX, box.originY, box.originX + box.width, box.originY + box.height],
            score: best.score, class: index, label: best.categoryName || labelOf(metadata.labels, index) };
        });
        return { invoke_ms: performance.now() - start, detections };
      }),
    };
  }
  const segmenter = await vision.ImageSegmenter.createFromOptions(visionFileset,
    { ...common, outputCategoryMask: true, outputConfidenceMasks: false });
  return {
    close: () => segmenter.close(),
    run: timed((image) => {
      const start = performance.now();
      const result = segmenter.segment(image);
      const mask = result.categoryMask;
      const out = { invoke_ms: performance.now() - start, width: mask.width, height: mask.height,
        class_map: mask.getAsUint8Array().slice(), labels: metadata.labels };
      result.close();
      return out;
    }),
  };
}

async function openLitert(bytes, metadata, task, accelerator, options) {
  const lrt = await litert();
  const model = await lrt.loadAndCompile(bytes, { accelerator });
  const inputs = model.getInputDetails();
  // the image is the 4-d input; a Fast R-CNN file also takes (1, P, 4) proposals
  const imageInput = inputs.findIndex((d) => d.shape.length === 4);
  const [, height, width, channels] = Array.from(inputs[imageInput].shape);
  // the Keras model's output order: signature outputs output_0, output_1, ... (runtime.engine.output_order)
  const suffix = (name) => Number((/(\d+)$/.exec(name) || [0, 0])[1]);
  const order = model.getOutputDetails().map((d, i) => [suffix(d.name), i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  const normalization = (metadata.input || {}).normalization
    || (task === 'generation' ? GENERATOR_NORMALIZATION : { scale: 1 / 255, offset: 0 });

  async function invoke(pixels, proposals = null) {
    const tensors = [];
    for (const [i, details] of inputs.entries()) {
      let tensor = i === imageInput
        ? new lrt.Tensor(toInput(pixels, channels, normalization.scale, normalization.offset), [1, height, width, channels])
        : new lrt.Tensor(proposals, Array.from(details.shape));
      if (accelerator === 'webgpu') tensor = await tensor.moveTo('webgpu');  // moveTo frees the CPU copy
      tensors.push(tensor);
    }
    const start = performance.now();
    const outputs = await model.run(tensors);
    const arrays = [];
    for (const index of order) arrays.push(await outputs[index].data());
    const invokeMs = performance.now() - start;
    tensors.forEach((t) => t.delete());
    outputs.forEach((o) => o.delete());
    return { arrays, invokeMs };
  }

  const decoding = metadata.decoding || {};
  const region = {
    deltaWeights: decoding.delta_weights || undefined, scoreThreshold: options.scoreThreshold ?? 0.25,
    iouThreshold: options.iouThreshold ?? NMS_IOU[decoding.kind] ?? 0.5, maxDetections: options.maxDetections ?? 100,
  };
  const labelled = (found, box) => found.map((d) => ({ box: box(d.box), score: d.score, class: d.class,
    label: labelOf(metadata.labels, d.class) }));
  let run;
  if (task === 'generation') {
    const range = ((metadata.outputs || [])[0] || {}).range || [-1, 1];
    run = async (image) => {
      const rgb = rgbOf(image);
      const { arrays, invokeMs } = await invoke(resize(rgb, width, height));
      const out = outputPixels(arrays[0], height, width, channels === 1 ? 1 : 3, range[0], range[1]);
      return { invoke_ms: invokeMs, image: resize(out, rgb.width, rgb.height) };
    };
  } else if (decoding.kind === WARP_KIND || decoding.kind === PROPOSAL_KIND) {
    run = async (image) => {
      const rgb = rgbOf(image);
      const proposals = selectiveSearch(rgb);
      if (!proposals.length) {
        throw new Error(`selective search found no regions in this ${rgb.width}x${rgb.height} image: give it a larger one`);
      }
      if (decoding.kind === WARP_KIND) {  // R-CNN: each region warped with its context, one invoke each
        const regions = proposals.slice(0, MAX_WARPED_REGIONS), scores = [], deltas = [];
        let invokeMs = 0;
        for (const box of regions) {
          const { arrays, invokeMs: ms } = await invoke(warpRegion(rgb, box, height, width, decoding.context || 0));
          invokeMs += ms;
          scores.push(...arrays[0]);
          deltas.push(...arrays[1]);
        }
        const found = svmPostprocess(regions, scores, deltas, [rgb.height, rgb.width], region);
        return { invoke_ms: invokeMs, proposals: proposals.length, detections: labelled(found, (box) => box) };
      }
      // Fast R-CNN: the best P proposals, in model pixels, beside the letterboxed image
      const { image: boxed, fit } = letterbox(rgb, height, width);
      const count = decoding.proposals, real = Math.min(proposals.length, count);
      const scale = Math.fround(fit.scale), padded = new Float32Array(4 * count);
      for (let i = 0; i < count; i++) {
        const [x1, y1, x2, y2] = proposals[i < real ? i : 0];
        padded.set([x1, y1, x2, y2].map((v, j) => Math.fround(Math.fround(v * scale) + (j % 2 === 0 ? fit.padX : fit.padY))), 4 * i);
      }
      const { arrays, invokeMs } = await invoke(boxed, padded);
      const classes = decoding.num_classes;
      const found = regionPostprocess(padded.subarray(0, 4 * real), arrays[0].subarray(0, real * (classes + 1)),
        arrays[1].subarray(0, real * 4 * classes), [height, width], region);
      return { invoke_ms: invokeMs, proposals: proposals.length,
        detections: labelled(found, (box) => toOriginal(box, fit, rgb.width, rgb.height)) };
    };
  } else {
    run = async (image) => {
      const rgb = rgbOf(image);
      const { image: boxed, fit } = letterbox(rgb, height, width);
      const { arrays, invokeMs } = await invoke(boxed);
      const [proposals, scores, deltas, masks] = arrays;
      const found = regionPostprocess(proposals, scores, deltas, [height, width], region);
      const items = labelled(found, (box) => toOriginal(box, fit, rgb.width, rgb.height));
      if (task !== 'instance_segmentation') return { invoke_ms: invokeMs, detections: items };
      const size = decoding.mask_size, classes = decoding.num_classes;
      items.forEach((item, i) => {
        const box = toOriginal(Array.from(proposals.subarray(4 * found[i].proposal, 4 * found[i].proposal + 4)), fit);
        item.mask = pasteMask(maskOf(masks, size, classes, found[i].proposal, found[i].class), size, box, rgb.height, rgb.width);
      });
      return { invoke_ms: invokeMs, width: rgb.width, height: rgb.height, instances: items };
    };
  }
  return { close: () => model.delete(), run: timed(run) };
}

/**
 * Open an edgecnn file (its bytes) for `delegate` 'auto' (GPU where the browser has it, else the
 * CPU), 'gpu' or 'cpu'. Returns {task, engine, delegate, note, metadata, run(image), close()}.
 * `options`: scoreThreshold, iouThreshold, maxDetections, topK.
 */
export async function openModel(bytes, delegate = 'auto', options = {}) {
  const metadata = readMetadata(bytes);
  if (metadata === null) {
    throw new FileError('this file has no edgecnn metadata (task, labels, input): convert the model with `edgecnn convert`.');
  }
  const { engine, task, reason } = engineFor(metadata);
  if (engine === null) throw new FileError(reason);
  if (engine === 'mediapipe' && !hasStandardMetadata(bytes)) {
    throw new FileError('this file has no standard TFLite metadata, which MediaPipe needs: convert it again with `edgecnn convert`.');
  }
  const wantGpu = delegate !== 'cpu';
  const attempts = engine === 'mediapipe'
    ? [wantGpu && ['GPU', 'GPU (WebGL)'], ['CPU', 'CPU (WebAssembly)']].filter(Boolean)
    : [wantGpu && navigator.gpu && ['webgpu', 'GPU (WebGPU)'], ['wasm', 'CPU (WebAssembly, XNNPACK)']].filter(Boolean);
  let note = wantGpu && attempts.length === 1 ? 'this browser has no WebGPU: running on the CPU' : '';
  if ((metadata.input || {}).content === 'edges') {  // edgecnn predict draws them; the page does not
    note = [note, 'this generator takes edge drawings: give it a black-on-white line drawing'].filter(Boolean).join('; ');
  }
  for (const [name, label] of attempts) {
    try {
      const pipeline = engine === 'mediapipe'
        ? await openMediapipe(bytes, metadata, task, name, options)
        : await openLitert(bytes, metadata, task, name, options);
      return { task, engine: engine === 'mediapipe' ? 'MediaPipe Tasks' : 'LiteRT.js', delegate: label, note, metadata, ...pipeline };
    } catch (error) {
      if (error instanceof FileError || name === attempts[attempts.length - 1][0]) throw error;
      note = `${label} failed (${error.message || error}): running on the CPU`;
    }
  }
  throw new FileError('no engine could open the file');
}
