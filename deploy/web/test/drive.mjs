// Drive the page in headless Chromium: node drive.mjs JOBS.json OUT.json
// JOBS.json: {url, chromium, screenshots, jobs: [{name, model, images, delegate, options}]}; each
// job runs through window.edgecnnPage.run (a job with "camera": true through .camera, on
// Chromium's fake webcam), its last drawing is saved as screenshots/<name>.png,
// and OUT.json gets {browser, webgpu, webgl, outside (requests that left the page's server),
// console (errors), jobs: {name: result or {error}}}.

import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [jobsFile, outFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(jobsFile, 'utf8'));
// SwiftShader: WebGL (MediaPipe's GPU delegate) and WebGPU (LiteRT.js) without a GPU
const browser = await chromium.launch({
  executablePath: config.chromium, headless: true,
  args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--enable-unsafe-swiftshader', '--use-angle=swiftshader', '--enable-unsafe-webgpu',
    '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'],
});
const out = { browser: browser.version(), jobs: {}, console: [], outside: [] };
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 }, permissions: ['camera'] });
  page.on('pageerror', (error) => out.console.push(`pageerror: ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'error') out.console.push(message.text()); });
  // everything the page needs is served from its folder: record any request that leaves it
  const origin = new URL(config.url).origin;
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith('data:') && !url.startsWith('blob:')) out.outside.push(url);
  });
  await page.goto(config.url);
  await page.waitForFunction(() => window.edgecnnPageReady === true, null, { timeout: 60000 });
  Object.assign(out, await page.evaluate(async () => ({
    webgpu: Boolean(navigator.gpu && await navigator.gpu.requestAdapter()),
    webgl: Boolean(document.createElement('canvas').getContext('webgl2')),
  })));
  for (const job of config.jobs) {
    try {
      out.jobs[job.name] = await page.evaluate((given) => (given.camera
        ? window.edgecnnPage.camera(given) : window.edgecnnPage.run(given)), job);
    } catch (error) {
      out.jobs[job.name] = { error: String(error.message || error).split('\n')[0] };
    }
    await page.screenshot({ path: `${config.screenshots}/${job.name}.png`, fullPage: true });
  }
} finally {
  await browser.close();
}
writeFileSync(outFile, JSON.stringify(out));
