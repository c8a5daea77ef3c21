// scripts/lib/idx.js: read and write IDX files (the MNIST format), plain or gzip, for scripts/get-data.
// As a command, `node scripts/lib/idx.js check DIR...` verifies a data set directory and prints a summary.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const UBYTE = 0x08;

// The four files of a data set, named as on Yann LeCun's MNIST page.
const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

// Encode an unsigned-byte IDX file: a zero word, type code 0x08, the number of
// dimensions, each dimension as a big-endian uint32, then the bytes in C order.
function encode(dims, data) {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new Error(`idx.encode: ${data.length} bytes for dims [${dims}] (want ${n})`);
  }
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt8(UBYTE, 2);
  head.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data.buffer, data.byteOffset, data.length)]);
}

function decode(buf, name) {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${name}: not an IDX file`);
  if (buf[2] !== UBYTE) throw new Error(`${name}: type code 0x${buf[2].toString(16)}, want 0x08 (ubyte)`);
  const ndim = buf[3];
  if (buf.length < 4 + 4 * ndim) throw new Error(`${name}: truncated header`);
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const off = 4 + 4 * ndim;
  if (buf.length !== off + n) {
    throw new Error(`${name}: ${buf.length - off} data bytes for dims [${dims}] (want ${n})`);
  }
  return { dims, data: buf.subarray(off) };
}

// Write dims/data to file; gzip when the name ends in .gz. The gzip header
// carries no timestamp (zlib's default), so equal inputs give equal files.
// Writes to a temporary name and renames, so a crash never leaves half a file.
function write(file, dims, data) {
  let buf = encode(dims, data);
  if (file.endsWith('.gz')) buf = zlib.gzipSync(buf, { level: 9 });
  const tmp = `${file}.tmp${process.pid}`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

function read(file) {
  let buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  return decode(buf, file);
}

// Find a set's file in dir, gzip or plain.
function locate(dir, base) {
  for (const name of [`${base}.gz`, base]) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

// Check one data set directory: both splits present, N×28×28 images, N labels
// in 0..9, every class present. Returns a summary object; throws on a problem.
function check(dir, opts = {}) {
  const out = { dir, splits: {} };
  for (const split of ['train', 'test']) {
    const ip = locate(dir, FILES[split].images);
    const lp = locate(dir, FILES[split].labels);
    if (!ip || !lp) throw new Error(`${dir}: missing ${split} images or labels`);
    const im = read(ip);
    const lb = read(lp);
    if (im.dims.length !== 3 || im.dims[1] !== 28 || im.dims[2] !== 28) {
      throw new Error(`${ip}: dims [${im.dims}], want [N, 28, 28]`);
    }
    if (lb.dims.length !== 1 || lb.dims[0] !== im.dims[0]) {
      throw new Error(`${lp}: dims [${lb.dims}], want [${im.dims[0]}] to match the images`);
    }
    const counts = new Array(10).fill(0);
    let lo = 255;
    let hi = 0;
    for (const y of lb.data) {
      if (y > 9) throw new Error(`${lp}: label ${y} outside 0..9`);
      counts[y]++;
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
    if (counts.some((c) => c === 0)) throw new Error(`${lp}: some class has no sample: ${counts}`);
    const want = opts[split];
    if (want !== undefined && im.dims[0] !== want) {
      throw new Error(`${ip}: ${im.dims[0]} images, want ${want}`);
    }
    let pmax = 0;
    for (const v of im.data) if (v > pmax) pmax = v;
    out.splits[split] = { n: im.dims[0], labels: [lo, hi], counts, pixelMax: pmax };
  }
  return out;
}

function formatCheck(s) {
  const lines = [];
  for (const [split, r] of Object.entries(s.splits)) {
    lines.push(`  ${split.padEnd(5)} ${String(r.n).padStart(6)} images 28x28, labels ${r.labels[0]}..${r.labels[1]},` +
      ` max pixel ${r.pixelMax}, per class [${r.counts.join(' ')}]`);
  }
  return `${s.dir}\n${lines.join('\n')}`;
}

module.exports = { FILES, encode, decode, write, read, locate, check, formatCheck };

// node scripts/lib/idx.js check DIR[:NTRAIN:NTEST]...
if (require.main === module) {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd !== 'check' || args.length === 0) {
    process.stderr.write('usage: node scripts/lib/idx.js check DIR[:NTRAIN:NTEST]...\n');
    process.exit(2);
  }
  let ok = true;
  for (const arg of args) {
    const [dir, ntr, nte] = arg.split(':');
    const opts = {};
    if (ntr) opts.train = Number(ntr);
    if (nte) opts.test = Number(nte);
    try {
      console.log(formatCheck(check(dir, opts)));
    } catch (e) {
      console.error(`check failed: ${e.message}`);
      ok = false;
    }
  }
  process.exit(ok ? 0 : 1);
}
