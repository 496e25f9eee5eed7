// An edgecnn .tflite file -> a pipeline that takes an image and gives results, on the engine its
// metadata calls for: MediaPipe Tasks for Web for classifiers, one-stage detectors and segmenters
// (they open through the standard metadata edgecnn writes), LiteRT.js for what MediaPipe has no
// task for (Faster R-CNN, Mask R-CNN, generators), with the pre- and post-processing of
// images.js and decode.js. Results have the fields of edgecnn.runtime's to_json.

import { FileError, hasStandardMetadata, readMetadata } from './flatbuffer.js';
import { letterbox, resize, rgbOf, toInput, toOriginal } from './images.js';
import { maskOf, outputPixels, pasteMask, regionPostprocess } from './decode.js';

const ENGINE_FILES = new URL('../node_modules/', import.meta.url);
const REGION_KIND = 'faster_rcnn', MASK_KIND = 'mask_rcnn';
const NEEDS_PROPOSALS = { rcnn: 'R-CNN', fast_rcnn: 'Fast R-CNN' };
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
  if (kind in NEEDS_PROPOSALS) {
    return { engine: null, task, reason: `${NEEDS_PROPOSALS[kind]} classifies selective-search proposals, which `
      + 'this page does not compute: run it with `edgecnn predict`, or use a Faster R-CNN or YOLO file here.' };
  }
  if (task === 'instance_segmentation' || task === 'generation' || kind === REGION_KIND) return { engine: 'litert', task };
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
  const [input] = model.getInputDetails();
  if (input.dtype !== 'float32') {
    model.delete();
    throw new FileError(`this page feeds float inputs; the file's input is ${input.dtype} (an int8-io file): `
      + 'use its int8 file, which has float inputs and outputs.');
  }
  const [, height, width, channels] = Array.from(input.shape);
  // the Keras model's output order: signature outputs output_0, output_1, ... (runtime.engine.output_order)
  const suffix = (name) => Number((/(\d+)$/.exec(name) || [0, 0])[1]);
  const order = model.getOutputDetails().map((d, i) => [suffix(d.name), i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  const normalization = (metadata.input || {}).normalization
    || (task === 'generation' ? GENERATOR_NORMALIZATION : { scale: 1 / 255, offset: 0 });

  async function invoke(pixels) {
    let tensor = new lrt.Tensor(toInput(pixels, channels, normalization.scale, normalization.offset), [1, height, width, channels]);
    if (accelerator === 'webgpu') tensor = await tensor.moveTo('webgpu');  // moveTo frees the CPU copy
    const start = performance.now();
    const outputs = await model.run([tensor]);
    const arrays = [];
    for (const index of order) arrays.push(await outputs[index].data());
    const invokeMs = performance.now() - start;
    tensor.delete();
    outputs.forEach((o) => o.delete());
    return { arrays, invokeMs };
  }

  const decoding = metadata.decoding || {};
  const region = {
    deltaWeights: decoding.delta_weights || undefined, scoreThreshold: options.scoreThreshold ?? 0.25,
    iouThreshold: options.iouThreshold ?? 0.5, maxDetections: options.maxDetections ?? 100,
  };
  let run;
  if (task === 'generation') {
    const range = ((metadata.outputs || [])[0] || {}).range || [-1, 1];
    run = async (image) => {
      const rgb = rgbOf(image);
      const { arrays, invokeMs } = await invoke(resize(rgb, width, height));
      const out = outputPixels(arrays[0], height, width, channels === 1 ? 1 : 3, range[0], range[1]);
      return { invoke_ms: invokeMs, image: resize(out, rgb.width, rgb.height) };
    };
  } else {
    run = async (image) => {
      const rgb = rgbOf(image);
      const { image: boxed, fit } = letterbox(rgb, height, width);
      const { arrays, invokeMs } = await invoke(boxed);
      const [proposals, scores, deltas, masks] = arrays;
      const found = regionPostprocess(proposals, scores, deltas, [height, width], region);
      const items = found.map((d) => ({ box: toOriginal(d.box, fit, rgb.width, rgb.height), score: d.score,
        class: d.class, label: labelOf(metadata.labels, d.class) }));
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
