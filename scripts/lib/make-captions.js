// scripts/lib/make-captions.js: build the captioning data set in data/captions from data/fashion and data/mnist:
// 64x64 canvases of real items on a 2x2 grid, each with 3-5 true captions. Run by scripts/get-data --captions.
//
// The format is described in docs/captions-format.md. Everything is drawn from one seeded
// xorshift32 stream per split, and only integers reach the output, so every machine makes
// the same bytes; scripts/get-data pins their sha256. Bump VERSION when the output changes.
//
// usage: node scripts/lib/make-captions.js [--out DIR] [--fashion DIR] [--mnist DIR]
//                                          [--seed N] [--train N] [--val N] [--quiet]
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const idx = require('./idx.js');
const { makeRng } = require('./mnist-to-idx.js');

const VERSION = 1;
const DEFAULTS = { seed: 20240704, train: 24000, val: 2400 };
const SIDE = 64;    // canvas side
const CELL = 32;    // grid cell side (2x2 grid)
const ITEM = 28;    // source image side
const JITTER = 4;   // item offset inside its cell: 0..JITTER px, both axes
const SEQ = 17;     // tokens per caption incl. <START> and <END>, padded with <NULL>
const MAX_WORDS = SEQ - 2;
const SPECIALS = ['<NULL>', '<START>', '<END>', '<UNK>']; // ids 1..4
const P_OBJECTS = [[1, 20], [2, 40], [3, 40]];            // objects per image, weights in %
const P_DIGIT = 10;   // % of items that are MNIST digits (at most one per value per image)
const P_REPEAT = 30;  // % of later fashion items that repeat an earlier item's class

const FASHION = [ // Fashion-MNIST labels 0..9 in caption words
  ['t-shirt', 't-shirts'], ['trouser', 'trousers'], ['pullover', 'pullovers'], ['dress', 'dresses'],
  ['coat', 'coats'], ['sandal', 'sandals'], ['shirt', 'shirts'], ['sneaker', 'sneakers'],
  ['bag', 'bags'], ['ankle boot', 'ankle boots'],
];
const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const COUNTS = [null, null, 'two', 'three'];
const CELLS = ['top left', 'top right', 'bottom left', 'bottom right']; // cell = 2 * row + col

// ---- random helpers over makeRng's xorshift32 (integers only) ----

const chance = (rng, pct) => rng.below(100) < pct;
const pick = (rng, arr) => arr[rng.below(arr.length)];
function weighted(rng, pairs) {
  let r = rng.below(pairs.reduce((s, p) => s + p[1], 0));
  for (const [v, w] of pairs) { if (r < w) return v; r -= w; }
  throw new Error('weighted: unreachable');
}
function shuffle(rng, arr) {
  const a = arr.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i]; a[i] = a[j]; a[j] = t;
  }
  return a;
}

// Per-class queues of source indices, each a shuffled permutation, reshuffled when
// used up, so every source image is used about equally often.
function makePools(rng, labels) {
  const byClass = Array.from({ length: 10 }, () => []);
  labels.forEach((y, i) => byClass[y].push(i));
  return byClass.map((list) => {
    if (list.length === 0) throw new Error('a class has no source images');
    let order = [];
    return () => {
      if (order.length === 0) order = shuffle(rng, list);
      return order.pop();
    };
  });
}

// ---- scenes ----

// One image: 1-3 objects in distinct cells, sorted by cell (reading order).
function makeScene(rng, pools) {
  const n = weighted(rng, P_OBJECTS);
  const cells = shuffle(rng, [0, 1, 2, 3]).slice(0, n).sort((a, b) => a - b);
  const kinds = [];
  for (let i = 0; i < n; i++) {
    const fashionSoFar = kinds.filter((k) => k.source === 'fashion');
    const digitsSoFar = kinds.filter((k) => k.source === 'mnist').map((k) => k.cls);
    if (chance(rng, P_DIGIT) && digitsSoFar.length < DIGITS.length) {
      let d;
      do { d = rng.below(10); } while (digitsSoFar.includes(d));
      kinds.push({ source: 'mnist', cls: d });
    } else if (fashionSoFar.length > 0 && chance(rng, P_REPEAT)) {
      kinds.push({ source: 'fashion', cls: pick(rng, fashionSoFar).cls });
    } else {
      kinds.push({ source: 'fashion', cls: rng.below(10) });
    }
  }
  const placed = shuffle(rng, kinds); // which kind goes to which cell
  return cells.map((cell, i) => {
    const k = placed[i];
    const r = cell >> 1;
    const c = cell & 1;
    return {
      source: k.source, cls: k.cls, cell, r, c,
      index: pools[k.source][k.cls](),                    // 0-based in the source split
      x: c * CELL + rng.below(JITTER + 1), y: r * CELL + rng.below(JITTER + 1), // 0-based
    };
  });
}

function drawScene(canvas, off, objs, src) {
  for (const o of objs) {
    const im = src[o.source].images;
    const base = o.index * ITEM * ITEM;
    for (let i = 0; i < ITEM; i++) {
      canvas.set(im.subarray(base + i * ITEM, base + (i + 1) * ITEM), off + (o.y + i) * SIDE + o.x);
    }
  }
}

// ---- the caption grammar ----
// A unit is all the objects of one class: "a bag", "two shirts", "the digit seven".
// Every caption names every unit once, so names and counts always cover the image.

function units(objs) {
  const map = new Map();
  for (const o of objs) {
    const key = `${o.source}:${o.cls}`;
    if (!map.has(key)) map.set(key, { source: o.source, cls: o.cls, objs: [] });
    map.get(key).objs.push(o);
  }
  return [...map.values()];
}

function nounPhrase(u) {
  const k = u.objs.length;
  if (u.source === 'mnist') {
    if (k !== 1) throw new Error('two equal digits in one image');
    return ['the', 'digit', DIGITS[u.cls]];
  }
  const [sing, plur] = FASHION[u.cls];
  if (k === 1) return [/^[aeiou]/.test(sing) ? 'an' : 'a', ...sing.split(' ')];
  return [COUNTS[k], ...plur.split(' ')];
}

function cellPhrase(rng, r, c) {
  const R = r === 0 ? (chance(rng, 80) ? 'top' : 'upper') : (chance(rng, 80) ? 'bottom' : 'lower');
  const C = c === 0 ? 'left' : 'right';
  return pick(rng, [['in', 'the', R, C, 'corner'], ['in', 'the', R, C], ['on', 'the', R, C], ['at', 'the', R, C]]);
}
function rowPhrase(rng, r) {
  const R = r === 0 ? 'top' : 'bottom';
  return pick(rng, [['at', 'the', R], ['in', 'the', R, 'row'], ['in', 'the', R, 'half']]);
}
function colPhrase(rng, c) {
  const C = c === 0 ? 'left' : 'right';
  return pick(rng, [['on', 'the', C], ['on', 'the', C, 'side'], ['in', 'the', C, 'half']]);
}

// Where a group of objects is, true of each of them; null when nothing fits.
function placePhrase(rng, objs) {
  const forms = [];
  if (objs.length === 1) forms.push('cell', 'cell', 'cell');
  if (objs.every((o) => o.r === objs[0].r)) forms.push('row');
  if (objs.every((o) => o.c === objs[0].c)) forms.push('col');
  if (forms.length === 0) return null;
  const o = objs[0];
  switch (pick(rng, forms)) {
    case 'cell': return cellPhrase(rng, o.r, o.c);
    case 'row': return rowPhrase(rng, o.r);
    default: return colPhrase(rng, o.c);
  }
}

// How two objects stand to each other ("side by side"), or where both are.
function pairPhrase(rng, a, b) {
  const forms = [];
  if (a.r === b.r) forms.push(['side', 'by', 'side'], ['next', 'to', 'each', 'other'], rowPhrase(rng, a.r));
  else if (a.c === b.c) forms.push(['one', 'above', 'the', 'other'], ['next', 'to', 'each', 'other'], colPhrase(rng, a.c));
  else forms.push(['in', 'opposite', 'corners']);
  return pick(rng, forms);
}

// "a REL b", true by grid coordinates: left of = smaller column, above = smaller row.
function relation(rng, a, b) {
  const forms = [];
  if (a.c < b.c) forms.push(['to', 'the', 'left', 'of'], ['to', 'the', 'left', 'of'], ['left', 'of']);
  if (a.c > b.c) forms.push(['to', 'the', 'right', 'of'], ['to', 'the', 'right', 'of'], ['right', 'of']);
  if (a.r < b.r) forms.push(['above'], ['above']);
  if (a.r > b.r) forms.push(['below'], ['below'], ['under']);
  if (a.c === b.c && a.r < b.r) forms.push(['directly', 'above']);
  if (a.c === b.c && a.r > b.r) forms.push(['directly', 'below']);
  if (a.r === b.r || a.c === b.c) forms.push(['next', 'to'], ['beside']);
  return pick(rng, forms);
}

// A unit alone, with (sometimes) where it is or how its objects stand.
function unitClause(rng, u, pctPlace) {
  const words = nounPhrase(u);
  if (!chance(rng, pctPlace)) return { words, placed: false };
  let where = null;
  if (u.objs.length === 2 && chance(rng, 70)) where = pairPhrase(rng, u.objs[0], u.objs[1]);
  else where = placePhrase(rng, u.objs);
  if (!where && u.objs.length === 2) where = pairPhrase(rng, u.objs[0], u.objs[1]);
  return where ? { words: [...words, ...where], placed: true } : { words, placed: false };
}

// One candidate caption (an array of words) for the units of a scene.
function caption(rng, us) {
  const order = chance(rng, 50) ? us : shuffle(rng, us);
  const singles = order.filter((u) => u.objs.length === 1);
  const forms = [['list', 40]];
  if (singles.length >= 2) forms.push(['relation', 35], ['pair', 25]);
  const form = order.length === 1 ? 'list' : weighted(rng, forms);
  let clauses;
  if (form === 'list') {
    const pct = order.length === 1 ? 75 : 45;
    clauses = order.map((u) => unitClause(rng, u, pct));
    // "a bag and a coat at the top" reads as both at the top: place the last
    // unit only when the one before it is placed too.
    const n = clauses.length;
    if (n >= 2 && clauses[n - 1].placed && !clauses[n - 2].placed) {
      const c = unitClause(rng, order[n - 2], 100);
      if (c.placed) clauses[n - 2] = c; else clauses[n - 1] = unitClause(rng, order[n - 1], 0);
    }
  } else {
    const [a, b] = shuffle(rng, singles).slice(0, 2).sort((x, y) => order.indexOf(x) - order.indexOf(y));
    const na = nounPhrase(a);
    const first = form === 'relation'
      ? { words: [...na, ...relation(rng, a.objs[0], b.objs[0]), ...nounPhrase(b)], placed: true, verbAt: na.length }
      : { words: [...na, 'and', ...nounPhrase(b), ...pairPhrase(rng, a.objs[0], b.objs[0])], placed: true };
    clauses = [first];
    const rest = order.filter((u) => u !== a && u !== b);
    if (rest.length === 1) {
      // Placed and before a relation, so that neither "a bag and a coat above a dress" nor
      // "a bag above a coat and a dress at the top" reads as one thing related to two.
      const c = unitClause(rng, rest[0], 100);
      if (form === 'relation' || chance(rng, 50)) clauses.unshift(c); else clauses.push(c);
    }
  }
  let prefix = [];
  if (chance(rng, 30)) {
    const head = clauses[0].words[0];
    const forms = [['a', 'picture', 'of'], ['an', 'image', 'of'], ['an', 'image', 'with']];
    if (head !== 'the') { // not "there is the digit seven"
      const verb = head === 'two' || head === 'three' ? 'are' : 'is'; // agrees with the first noun
      forms.push(['there', verb], ['there', verb]);
    }
    prefix = pick(rng, forms);
  }
  // "a bag is above a coat", only as the whole sentence's verb.
  if (prefix.length === 0 && clauses[0].verbAt !== undefined && chance(rng, 20)) {
    const w = clauses[0].words;
    clauses[0] = { ...clauses[0], words: [...w.slice(0, clauses[0].verbAt), 'is', ...w.slice(clauses[0].verbAt)] };
  }
  const words = [...prefix];
  clauses.forEach((cl, i) => {
    if (i > 0 && i === clauses.length - 1) {
      const withOk = clauses.length === 2 && cl.placed && cl.verbAt === undefined && !cl.words.includes('and') &&
        prefix[2] !== 'with';
      words.push(withOk && chance(rng, 25) ? 'with' : 'and');
    }
    words.push(...cl.words);
  });
  return words;
}

// 3-5 distinct captions of at most MAX_WORDS words.
function captionsFor(rng, objs) {
  const us = units(objs);
  const want = 3 + rng.below(3);
  const out = [];
  for (let tries = 0; out.length < want && tries < 500; tries++) {
    const words = caption(rng, us);
    const text = words.join(' ');
    if (text.split(' ').length <= MAX_WORDS && !out.includes(text)) out.push(text);
  }
  if (out.length < 3) throw new Error(`only ${out.length} captions for ${JSON.stringify(objs)}`);
  return out;
}

// ---- splits, vocabulary, files ----

function loadSource(dir, split) {
  const f = idx.FILES[split];
  const im = idx.read(idx.locate(dir, f.images) || path.join(dir, `${f.images}.gz`));
  const lb = idx.read(idx.locate(dir, f.labels) || path.join(dir, `${f.labels}.gz`));
  if (im.dims.length !== 3 || im.dims[1] !== ITEM || im.dims[2] !== ITEM || lb.dims[0] !== im.dims[0]) {
    throw new Error(`${dir} ${split}: images [${im.dims}] / labels [${lb.dims}], want [N, 28, 28] / [N]`);
  }
  return { images: im.data, labels: lb.data, n: im.dims[0] };
}

function makeSplit(name, n, seed, src) {
  const rng = makeRng(seed);
  const pools = { fashion: makePools(rng, src.fashion.labels), mnist: makePools(rng, src.mnist.labels) };
  const pixels = new Uint8Array(n * SIDE * SIDE);
  const scenes = [];
  const texts = [];
  for (let i = 0; i < n; i++) {
    const objs = makeScene(rng, pools);
    drawScene(pixels, i * SIDE * SIDE, objs, src);
    scenes.push(objs);
    texts.push(captionsFor(rng, objs));
  }
  return { name, n, pixels, scenes, texts };
}

// <NULL> <START> <END> <UNK>, then the words of the training captions by falling
// count, ties in alphabetical (code point) order. Ids are 1-based.
function buildVocab(texts) {
  const counts = new Map();
  for (const caps of texts) for (const t of caps) for (const w of t.split(' ')) counts.set(w, (counts.get(w) || 0) + 1);
  const words = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || (a < b ? -1 : a > b ? 1 : 0));
  const idxToWord = [...SPECIALS, ...words];
  const wordToIdx = {};
  idxToWord.forEach((w, i) => { wordToIdx[w] = i + 1; });
  return { idxToWord, wordToIdx, counts };
}

function encodeCaption(text, vocab) {
  const ids = [2];
  for (const w of text.split(' ')) ids.push(vocab.wordToIdx[w] || 4);
  ids.push(3);
  while (ids.length < SEQ) ids.push(1);
  return ids;
}

function objectJson(o, split) {
  const label = o.source === 'fashion' ? FASHION[o.cls][0] : DIGITS[o.cls];
  return `{"label": ${JSON.stringify(label)}, "source": "${o.source}", "class": ${o.cls}, ` +
    `"split": "${split}", "index": ${o.index + 1}, "cell": "${CELLS[o.cell]}", "cell_index": ${o.cell + 1}, ` +
    `"x": ${o.x + 1}, "y": ${o.y + 1}}`;
}

// One caption or one image's objects per line: greppable, and the same bytes everywhere.
function captionsJson(s, vocab, srcSplit) {
  const caps = [];
  s.texts.forEach((list, i) => {
    for (const t of list) {
      caps.push(`  {"image": ${i + 1}, "text": ${JSON.stringify(t)}, "tokens": [${encodeCaption(t, vocab).join(', ')}]}`);
    }
  });
  const objs = s.scenes.map((objs) => `  [${objs.map((o) => objectJson(o, srcSplit)).join(', ')}]`);
  return `{"split": "${s.name}", "num_images": ${s.n}, "num_captions": ${caps.length}, "seq_length": ${SEQ},\n` +
    `"captions": [\n${caps.join(',\n')}\n],\n"objects": [\n${objs.join(',\n')}\n]}\n`;
}

function writeAtomic(file, buf) {
  const tmp = `${file}.tmp${process.pid}`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

// IDX with big-endian int32 elements (type 0x0C); idx.js writes only unsigned bytes.
function writeIdxInt32(file, dims, values) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt8(0x0c, 2);
  head.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  const body = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => body.writeInt32BE(v, 4 * i));
  writeAtomic(file, zlib.gzipSync(Buffer.concat([head, body])));
}

function writeSplit(out, s, vocab, srcSplit) {
  // zlib's default level 6 (idx.write uses 9, ten times slower on these canvases for 2% less).
  writeAtomic(path.join(out, `${s.name}-images-idx3-ubyte.gz`), zlib.gzipSync(idx.encode([s.n, SIDE, SIDE], s.pixels)));
  writeAtomic(path.join(out, `${s.name}-captions.json`), captionsJson(s, vocab, srcSplit));
  const tokens = [];
  const owner = [];
  s.texts.forEach((list, i) => list.forEach((t) => { tokens.push(...encodeCaption(t, vocab)); owner.push(i + 1); }));
  writeIdxInt32(path.join(out, `${s.name}-captions-idx2-int.gz`), [owner.length, SEQ], tokens);
  writeIdxInt32(path.join(out, `${s.name}-caption-images-idx1-int.gz`), [owner.length], owner);
  // Grid contents per cell in reading order: 0 empty, 1..10 Fashion-MNIST class + 1, 11..20 digit + 11.
  const cells = new Uint8Array(s.n * 4);
  s.scenes.forEach((objs, i) => objs.forEach((o) => { cells[i * 4 + o.cell] = o.cls + (o.source === 'fashion' ? 1 : 11); }));
  writeAtomic(path.join(out, `${s.name}-cells-idx2-ubyte.gz`), zlib.gzipSync(idx.encode([s.n, 4], cells)));
  return owner.length;
}

function vocabJson(vocab) {
  const pairs = vocab.idxToWord.map((w, i) => `    ${JSON.stringify(w)}: ${i + 1}`);
  return `{\n  "idx_to_word": [${vocab.idxToWord.map((w) => JSON.stringify(w)).join(', ')}],\n` +
    `  "word_to_idx": {\n${pairs.join(',\n')}\n  }\n}\n`;
}

function summary(splits, vocab, seed, ms) {
  const lines = [];
  for (const s of splits) {
    const ncap = s.texts.reduce((a, l) => a + l.length, 0);
    const nobj = [0, 0, 0, 0];
    let digits = 0;
    let len = 0;
    let unk = 0;
    for (const objs of s.scenes) { nobj[objs.length]++; digits += objs.filter((o) => o.source === 'mnist').length; }
    for (const l of s.texts) for (const t of l) for (const w of t.split(' ')) { len++; if (!vocab.wordToIdx[w]) unk++; }
    lines.push(`  ${s.name.padEnd(5)} ${s.n} images, ${ncap} captions (${(ncap / s.n).toFixed(2)} per image, ` +
      `${(len / ncap).toFixed(1)} words on average, ${unk} <UNK>), objects per image 1/2/3: ` +
      `${nobj.slice(1).join('/')}, ${digits} digits`);
  }
  lines.push(`  vocabulary: ${vocab.idxToWord.length} tokens (4 special + ${vocab.idxToWord.length - 4} words)`);
  const rng = makeRng(seed ^ 0x5eed);
  const tr = splits[0];
  for (let k = 0; k < 5; k++) {
    const i = rng.below(tr.n);
    const objs = tr.scenes[i].map((o) => `${o.source === 'fashion' ? FASHION[o.cls][0] : `digit ${DIGITS[o.cls]}`} @ ${CELLS[o.cell]}`);
    lines.push(`  train image ${i + 1}: [${objs.join('; ')}]`);
    lines.push(`    "${pick(rng, tr.texts[i])}"`);
  }
  lines.push(`  made in ${(ms / 1000).toFixed(1)} s`);
  return lines.join('\n');
}

function parseArgs(argv) {
  const root = path.join(__dirname, '..', '..');
  const o = { ...DEFAULTS, out: path.join(root, 'data', 'captions'), fashion: path.join(root, 'data', 'fashion'),
    mnist: path.join(root, 'data', 'mnist'), quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => { const v = Number(argv[++i]); if (!Number.isInteger(v) || v <= 0) throw new Error(`${a}: want a positive integer`); return v; };
    if (a === '--out' || a === '--fashion' || a === '--mnist') o[a.slice(2)] = argv[++i];
    else if (a === '--seed' || a === '--train' || a === '--val') o[a.slice(2)] = num();
    else if (a === '--quiet') o.quiet = true;
    else throw new Error(`unknown argument '${a}'`);
  }
  return o;
}

function main(argv) {
  const t0 = Date.now();
  const o = parseArgs(argv);
  const train = { fashion: loadSource(o.fashion, 'train'), mnist: loadSource(o.mnist, 'train') };
  const test = { fashion: loadSource(o.fashion, 'test'), mnist: loadSource(o.mnist, 'test') };
  // Separate streams: the validation set does not depend on the training set's size.
  const tr = makeSplit('train', o.train, o.seed, train);
  const va = makeSplit('val', o.val, o.seed + 1, test);
  const vocab = buildVocab(tr.texts);

  fs.mkdirSync(o.out, { recursive: true });
  const stamp = path.join(o.out, 'SOURCE');
  fs.rmSync(stamp, { force: true }); // written last: its presence means a complete set
  writeAtomic(path.join(o.out, 'vocab.json'), vocabJson(vocab));
  const ntr = writeSplit(o.out, tr, vocab, 'train');
  const nva = writeSplit(o.out, va, vocab, 'test');
  writeAtomic(stamp, `make-captions v${VERSION} seed=${o.seed} train=${o.train} val=${o.val}\n` +
    `train: ${o.fashion} + ${o.mnist} train splits (${train.fashion.n} + ${train.mnist.n} items), ${ntr} captions\n` +
    `val: ${o.fashion} + ${o.mnist} test splits (${test.fashion.n} + ${test.mnist.n} items), ${nva} captions\n`);
  if (!o.quiet) {
    console.log(`make-captions: wrote ${o.out}`);
    console.log(summary([tr, va], vocab, o.seed, Date.now() - t0));
  }
}

module.exports = { VERSION, caption, units };

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`make-captions: ${e.stack || e.message}\n`);
    process.exit(1);
  }
}
