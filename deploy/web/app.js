// The page: pick or drop a model and an image (or turn on the webcam), see the results drawn.
// window.edgecnnPage.run is the same path for scripts (the browser test drives it).

import { openModel } from './edgecnn/engines.js';
import { drawResult } from './edgecnn/draw.js';

const $ = (id) => document.getElementById(id);
const state = { bytes: null, pipeline: null, image: null, stream: null, onResult: null };

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function summary(task, result) {
  if (task === 'classification') return result.top_k.map((p) => `${p.label}\t${p.score.toFixed(4)}`).join('\n');
  if (task === 'segmentation') {
    const counts = {};
    result.class_map.forEach((c) => { counts[c] = (counts[c] || 0) + 1; });
    return Object.entries(counts).map(([c, n]) => `${(result.labels || [])[c] ?? c}\t${n} px`).join('\n');
  }
  if (task === 'generation') return `${result.image.width}x${result.image.height} image`;
  return (result.detections || result.instances).map((d) => `${d.label}\t${d.score.toFixed(3)}\t[${d.box.map((v) => v.toFixed(1)).join(', ')}]`
    + (d.mask ? `\t${d.mask.reduce((a, b) => a + b, 0)} px` : '')).join('\n') || 'nothing found';
}

function show(pipeline, image, result) {
  drawResult($('canvas'), image, pipeline.task, result);
  $('results').textContent = summary(pipeline.task, result);
  status(`${pipeline.task} on ${pipeline.engine}, ${pipeline.delegate}` + (pipeline.note ? ` (${pipeline.note})` : '')
    + (result.proposals ? `, ${result.proposals} selective-search proposals` : '')
    + `: invoke ${result.invoke_ms.toFixed(1)} ms, whole pipeline ${result.pipeline_ms.toFixed(1)} ms`);
}

function options() {
  return { scoreThreshold: Number($('threshold').value) };
}

async function reopen() {
  if (!state.bytes) return;
  state.pipeline?.close();
  state.pipeline = null;
  status('opening the model ...');
  try {
    state.pipeline = await openModel(state.bytes, $('delegate').value, options());
    status(`${state.pipeline.task} model on ${state.pipeline.engine}, ${state.pipeline.delegate}`
      + (state.pipeline.note ? ` (${state.pipeline.note})` : '') + (state.image || state.stream ? '' : ': now an image'));
    if (state.image) await runOn(state.image);
  } catch (error) {
    status(`This model cannot run here: ${error.message || error}`, true);
  }
}

async function runOn(image) {
  if (!state.pipeline) return;
  try {
    const result = await state.pipeline.run(image);
    show(state.pipeline, image, result);
    state.onResult?.(result);
  } catch (error) {
    status(`Running the model failed: ${error.message || error}`, true);
  }
}

async function loadImage(source) {
  const image = new Image();
  image.src = typeof source === 'string' ? source : URL.createObjectURL(source);
  await image.decode();
  return image;
}

async function takeFiles(files) {
  for (const file of files) {
    if (file.name.endsWith('.tflite')) {
      state.bytes = new Uint8Array(await file.arrayBuffer());
      await reopen();
    } else if (file.type.startsWith('image/')) {
      stopCamera();
      state.image = await loadImage(file);
      await runOn(state.image);
    }
  }
}

function stopCamera() {
  state.stream?.getTracks().forEach((track) => track.stop());
  state.stream = null;
}

async function camera() {
  if (state.stream) return stopCamera();
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (error) {
    return status(`No webcam: ${error.message || error}`, true);
  }
  const video = $('video');
  video.srcObject = state.stream;
  await video.play();
  state.image = null;
  const loop = async () => {
    if (!state.stream) return;
    await runOn(video);
    requestAnimationFrame(loop);
  };
  loop();
}

$('model').addEventListener('change', (e) => takeFiles(e.target.files));
$('image').addEventListener('change', (e) => takeFiles(e.target.files));
$('camera').addEventListener('click', camera);
$('delegate').addEventListener('change', reopen);
$('threshold').addEventListener('change', reopen);
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); takeFiles(e.dataTransfer.files); });

function plain(result) {  // typed arrays -> JSON arrays
  const out = { ...result };
  if (out.class_map) out.class_map = Array.from(out.class_map);
  if (out.image) out.image = { width: out.image.width, height: out.image.height, data: Array.from(out.image.data) };
  if (out.instances) out.instances = out.instances.map((i) => ({ ...i, mask: Array.from(i.mask) }));
  return out;
}

window.edgecnnPage = {
  /** Open `model` (a URL) with `delegate` and run it on each image URL, drawing each result. */
  async run({ model, images, delegate = 'auto', options: given = {} }) {
    const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
    const pipeline = await openModel(bytes, delegate, given);
    const results = [];
    try {
      for (const url of images) {
        const image = await loadImage(url);
        const result = await pipeline.run(image);
        show(pipeline, image, result);
        results.push(plain(result));
      }
    } finally {
      pipeline.close();
    }
    return { task: pipeline.task, engine: pipeline.engine, delegate: pipeline.delegate, note: pipeline.note, results };
  },

  /** Open `model` as the page's controls do, turn on the webcam and return the results of its
   * first `frames` frames (the loop a user sees), then turn it off. */
  async camera({ model, delegate = 'auto', frames = 3, timeoutMs = 60000 }) {
    state.bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
    $('delegate').value = delegate;
    await reopen();
    if (!state.pipeline) throw new Error($('status').textContent);
    const results = [];
    state.onResult = (result) => results.push(plain(result));
    try {
      await camera();
      if (!state.stream) throw new Error($('status').textContent);
      const start = performance.now();
      while (results.length < frames) {
        if (performance.now() - start > timeoutMs) throw new Error(`${results.length} of ${frames} frames: ${$('status').textContent}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      state.onResult = null;
      stopCamera();
    }
    const video = $('video'), pipeline = state.pipeline;
    return { task: pipeline.task, engine: pipeline.engine, delegate: pipeline.delegate, note: pipeline.note,
      frame: [video.videoWidth, video.videoHeight], results: results.slice(0, frames) };
  },
};
window.edgecnnPageReady = true;
