// The page's selective search and region warp in Node, for the test that compares them with
// edgecnn's runtime: node proposals.mjs IN.json OUT.json
// IN.json: {images: [{width, height, rgb: base64}], warps: [{image, box, height, width, context}]}
// OUT.json: {proposals: [[[x1, y1, x2, y2], ...] per image], warps: [base64 RGB per warp], ms: [per image]}

import { readFileSync, writeFileSync } from 'node:fs';
import { selectiveSearch, warpRegion } from '../edgecnn/proposals.js';

const [inFile, outFile] = process.argv.slice(2);
const given = JSON.parse(readFileSync(inFile, 'utf8'));
const images = given.images.map((i) => ({ width: i.width, height: i.height, data: new Uint8Array(Buffer.from(i.rgb, 'base64')) }));
const out = { proposals: [], warps: [], ms: [] };
for (const image of images) {
  const start = performance.now();
  out.proposals.push(selectiveSearch(image));
  out.ms.push(performance.now() - start);
}
for (const warp of given.warps || []) {
  const crop = warpRegion(images[warp.image], warp.box, warp.height, warp.width, warp.context);
  out.warps.push(Buffer.from(crop.data).toString('base64'));
}
writeFileSync(outFile, JSON.stringify(out));
