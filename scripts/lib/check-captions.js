// scripts/lib/check-captions.js: verify data/captions (made by make-captions.js) against its sources and itself:
// pixels, objects, splits, vocabulary, tokens, and that every caption is true of its image. Run by scripts/get-data.
//
// The captions are checked by parsing them again with a grammar written here from
// docs/captions-format.md, independently of the generator's code. A caption passes when
// it parses, and EVERY parse is true of the image: the names and counts cover the
// objects exactly (every object named once, nothing named that is not there), and every
// position and relation holds. Requiring all parses, not one, catches ambiguous wording
// such as "a bag and a coat at the top" with only the coat at the top.
//
// usage: node scripts/lib/check-captions.js [DIR] [--fashion DIR] [--mnist DIR] [--min-train N] [--min-val N]
//        node scripts/lib/check-captions.js [DIR] --show train|val I...   (ASCII art of images I, 1-based)
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const idx = require('./idx.js');

const SIDE = 64;
const CELL = 32;
const ITEM = 28;
const JITTER = 4;
const SEQ = 17;
const FASHION_SING = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];
const FASHION_PLUR = ['t-shirts', 'trousers', 'pullovers', 'dresses', 'coats', 'sandals', 'shirts', 'sneakers', 'bags', 'ankle boots'];
const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const CELL_NAMES = ['top left', 'top right', 'bottom left', 'bottom right'];

// ---- the grammar: each parser maps (tokens, i) to a list of {i: next index, ...value} ----

function matchWords(t, i, words) {
  for (let k = 0; k < words.length; k++) if (t[i + k] !== words[k]) return -1;
  return i + words.length;
}

// "a bag", "an ankle boot", "two shirts", "three bags", "the digit seven"
function nounPhrase(t, i) {
  const out = [];
  if (t[i] === 'a' || t[i] === 'an') {
    FASHION_SING.forEach((name, cls) => {
      const j = matchWords(t, i + 1, name.split(' '));
      if (j >= 0 && (t[i] === 'an') === /^[aeiou]/.test(name)) out.push({ i: j, np: { source: 'fashion', cls, count: 1 } });
    });
  } else if (t[i] === 'two' || t[i] === 'three') {
    FASHION_PLUR.forEach((name, cls) => {
      const j = matchWords(t, i + 1, name.split(' '));
      if (j >= 0) out.push({ i: j, np: { source: 'fashion', cls, count: t[i] === 'two' ? 2 : 3 } });
    });
  } else if (t[i] === 'the' && t[i + 1] === 'digit' && DIGITS.includes(t[i + 2])) {
    out.push({ i: i + 3, np: { source: 'mnist', cls: DIGITS.indexOf(t[i + 2]), count: 1 } });
  }
  return out;
}

const ROW = { top: 0, upper: 0, bottom: 1, lower: 1 };
const COL = { left: 0, right: 1 };

// Where one object is: a predicate on {r, c}.
function place(t, i) {
  const out = [];
  if (['in', 'on', 'at'].includes(t[i]) && t[i + 1] === 'the' && t[i + 2] in ROW && t[i + 3] in COL) {
    const r = ROW[t[i + 2]];
    const c = COL[t[i + 3]];
    const pred = (o) => o.r === r && o.c === c;
    out.push({ i: i + 4, pred });
    if (t[i] === 'in' && t[i + 4] === 'corner') out.push({ i: i + 5, pred });
  }
  if (t[i + 1] === 'the' && (t[i + 2] === 'top' || t[i + 2] === 'bottom')) {
    const r = ROW[t[i + 2]];
    if (t[i] === 'at') out.push({ i: i + 3, pred: (o) => o.r === r });
    if (t[i] === 'in' && (t[i + 3] === 'row' || t[i + 3] === 'half')) out.push({ i: i + 4, pred: (o) => o.r === r });
  }
  if (t[i + 1] === 'the' && t[i + 2] in COL) {
    const c = COL[t[i + 2]];
    if (t[i] === 'on') out.push({ i: i + 3, pred: (o) => o.c === c });
    if (t[i] === 'on' && t[i + 3] === 'side') out.push({ i: i + 4, pred: (o) => o.c === c });
    if (t[i] === 'in' && t[i + 3] === 'half') out.push({ i: i + 4, pred: (o) => o.c === c });
  }
  return out;
}

const adjacent = (a, b) => Math.abs(a.r - b.r) + Math.abs(a.c - b.c) === 1;

// How one object stands to another: a predicate on (a, b), by grid coordinates.
const RELATIONS = [
  [['to', 'the', 'left', 'of'], (a, b) => a.c < b.c], [['left', 'of'], (a, b) => a.c < b.c],
  [['to', 'the', 'right', 'of'], (a, b) => a.c > b.c], [['right', 'of'], (a, b) => a.c > b.c],
  [['above'], (a, b) => a.r < b.r], [['below'], (a, b) => a.r > b.r], [['under'], (a, b) => a.r > b.r],
  [['directly', 'above'], (a, b) => a.r < b.r && a.c === b.c],
  [['directly', 'below'], (a, b) => a.r > b.r && a.c === b.c],
  [['next', 'to'], adjacent], [['beside'], adjacent],
];
function relation(t, i) {
  const out = [];
  for (const [words, rel] of RELATIONS) {
    const j = matchWords(t, i, words);
    if (j >= 0) out.push({ i: j, rel });
  }
  return out;
}

// How a group of objects stands: a predicate on an array of objects.
const ARRANGEMENTS = [
  [['side', 'by', 'side'], (os) => os.length === 2 && os[0].r === os[1].r],
  [['next', 'to', 'each', 'other'], (os) => os.length === 2 && adjacent(os[0], os[1])],
  [['one', 'above', 'the', 'other'], (os) => os.length === 2 && os[0].c === os[1].c],
  [['in', 'opposite', 'corners'], (os) => os.length === 2 && os[0].r !== os[1].r && os[0].c !== os[1].c],
];
function arrangement(t, i) {
  const out = [];
  for (const [words, pred] of ARRANGEMENTS) {
    const j = matchWords(t, i, words);
    if (j >= 0) out.push({ i: j, pred });
  }
  for (const p of place(t, i)) out.push({ i: p.i, pred: (os) => os.every(p.pred) });
  return out;
}

// A clause names NPs (numbered from `base`) and says something checkable about
// the objects bound to them: test(groups) gets one array of objects per NP.
function clause(t, i, first) {
  const out = [];
  for (const a of nounPhrase(t, i)) {
    // NP, NP PLACE, NP-plural ARRANGEMENT
    out.push({ i: a.i, nps: [a.np], test: () => true });
    for (const p of arrangement(t, a.i)) {
      const single = place(t, a.i).some((q) => q.i === p.i);
      if (a.np.count > 1 || single) out.push({ i: p.i, nps: [a.np], test: (g) => p.pred(g[0]) });
    }
    if (a.np.count !== 1) continue;
    // NP [is] REL NP; "is" only as the verb of the whole caption
    const starts = [a.i];
    if (first && t[a.i] === 'is') starts.push(a.i + 1);
    for (const s of starts) {
      for (const r of relation(t, s)) {
        for (const b of nounPhrase(t, r.i)) {
          if (b.np.count === 1) out.push({ i: b.i, nps: [a.np, b.np], test: (g) => r.rel(g[0][0], g[1][0]) });
        }
      }
    }
    // NP and NP ARRANGEMENT
    if (t[a.i] === 'and') {
      for (const b of nounPhrase(t, a.i + 1)) {
        if (b.np.count !== 1) continue;
        for (const p of arrangement(t, b.i)) {
          out.push({ i: p.i, nps: [a.np, b.np], test: (g) => p.pred([g[0][0], g[1][0]]) });
        }
      }
    }
  }
  return out;
}

const PREFIXES = [['there', 'is'], ['there', 'are'], ['a', 'picture', 'of'], ['an', 'image', 'of'], ['an', 'image', 'with']];

// Every full parse of a caption: { prefix, clauses: [{nps, test}] }. Clauses follow
// each other without a word, except the last, which comes after "and" or "with".
function parses(t) {
  const results = [];
  const starts = [{ i: 0, prefix: null }];
  for (const p of PREFIXES) {
    const j = matchWords(t, 0, p);
    if (j >= 0) starts.push({ i: j, prefix: p.join(' ') });
  }
  const walk = (i, prefix, clauses) => {
    for (const c of clause(t, i, clauses.length === 0 && prefix === null)) {
      const cl = [...clauses, c];
      if (c.i === t.length) {
        if (cl.length === 1) results.push({ prefix, clauses: cl });
        continue;
      }
      walk(c.i, prefix, cl);
      if (t[c.i] === 'and' || t[c.i] === 'with') {
        for (const d of clause(t, c.i + 1, false)) {
          if (d.i === t.length) results.push({ prefix, clauses: [...cl, d] });
        }
      }
    }
  };
  for (const s of starts) walk(s.i, s.prefix, []);
  return results.filter((p) => agrees(p));
}

// "there is" before a singular first noun, "there are" before a plural one.
function agrees(p) {
  if (p.prefix !== 'there is' && p.prefix !== 'there are') return true;
  const plural = p.clauses[0].nps[0].count > 1;
  return (p.prefix === 'there are') === plural;
}

// True when some binding of the parse's NPs to the objects covers every object
// exactly once, with the right classes and counts, and makes every clause true.
function holds(p, objs) {
  const nps = p.clauses.flatMap((c) => c.nps);
  if (nps.reduce((s, np) => s + np.count, 0) !== objs.length) return false;
  const groups = [];
  const used = new Array(objs.length).fill(false);
  const test = () => {
    let k = 0;
    for (const c of p.clauses) {
      if (!c.test(groups.slice(k, k + c.nps.length))) return false;
      k += c.nps.length;
    }
    return true;
  };
  const bind = (n) => {
    if (n === nps.length) return test();
    const np = nps[n];
    const pickFrom = (start, chosen) => {
      if (chosen.length === np.count) {
        groups[n] = chosen;
        return bind(n + 1);
      }
      for (let j = start; j < objs.length; j++) {
        const o = objs[j];
        if (used[j] || o.source !== np.source || o.class !== np.cls) continue;
        used[j] = true;
        const ok = pickFrom(j + 1, [...chosen, o]);
        used[j] = false;
        if (ok) return true;
      }
      return false;
    };
    return pickFrom(0, []);
  };
  return bind(0);
}

// ---- files ----

function readIdxInt32(file) {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x0c) throw new Error(`${file}: not an int32 IDX file`);
  const dims = [];
  for (let k = 0; k < buf[3]; k++) dims.push(buf.readUInt32BE(4 + 4 * k));
  const off = 4 + 4 * dims.length;
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== off + 4 * n) throw new Error(`${file}: size does not match dims [${dims}]`);
  const data = new Int32Array(n);
  for (let k = 0; k < n; k++) data[k] = buf.readInt32BE(off + 4 * k);
  return { dims, data };
}

function loadSource(dir, split) {
  const f = idx.FILES[split];
  const im = idx.read(idx.locate(dir, f.images));
  const lb = idx.read(idx.locate(dir, f.labels));
  return { images: im.data, labels: lb.data, n: im.dims[0] };
}

function wordCounts(caps) {
  const counts = new Map();
  for (const c of caps) for (const w of c.text.split(' ')) counts.set(w, (counts.get(w) || 0) + 1);
  return counts;
}

// ---- checks ----

function checkVocab(vocab, trainCaps, fail) {
  const itw = vocab.idx_to_word;
  const wti = vocab.word_to_idx;
  const special = ['<NULL>', '<START>', '<END>', '<UNK>'];
  special.forEach((w, k) => { if (itw[k] !== w || wti[w] !== k + 1) fail(`vocab: ${w} is not id ${k + 1}`); });
  if (Object.keys(wti).length !== itw.length) fail('vocab: word_to_idx and idx_to_word differ in size');
  itw.forEach((w, k) => { if (wti[w] !== k + 1) fail(`vocab: word_to_idx[${w}] = ${wti[w]}, idx_to_word says ${k + 1}`); });
  const counts = wordCounts(trainCaps);
  const want = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || (a < b ? -1 : 1));
  if (JSON.stringify(itw.slice(4)) !== JSON.stringify(want)) {
    fail('vocab: words are not the training words by falling count, ties alphabetical');
  }
}

function checkSplit(dir, name, srcSplit, src, vocab, stats, fail) {
  const im = idx.read(path.join(dir, `${name}-images-idx3-ubyte.gz`));
  const doc = JSON.parse(fs.readFileSync(path.join(dir, `${name}-captions.json`), 'utf8'));
  const n = im.dims[0];
  const where = (i) => `${name} image ${i + 1}`;
  if (im.dims.length !== 3 || im.dims[1] !== SIDE || im.dims[2] !== SIDE) fail(`${name}: images [${im.dims}], want [N, 64, 64]`);
  if (doc.num_images !== n || doc.objects.length !== n) fail(`${name}: ${n} images but ${doc.objects.length} object lists`);
  if (doc.seq_length !== SEQ || doc.num_captions !== doc.captions.length) fail(`${name}: bad seq_length or num_captions`);

  // Objects against the pixels and the source files: label, split, index, cell, position.
  const cells = idx.read(path.join(dir, `${name}-cells-idx2-ubyte.gz`));
  if (cells.dims[0] !== n || cells.dims[1] !== 4) fail(`${name}-cells: dims [${cells.dims}], want [${n}, 4]`);
  const mask = new Uint8Array(SIDE * SIDE);
  doc.objects.forEach((objs, i) => {
    if (objs.length < 1 || objs.length > 3) fail(`${where(i)}: ${objs.length} objects`);
    mask.fill(0);
    const code = [0, 0, 0, 0];
    for (const o of objs) {
      const s = src[o.source];
      const names = o.source === 'fashion' ? FASHION_SING : DIGITS;
      if (!s || names[o.class] !== o.label) { fail(`${where(i)}: bad object ${JSON.stringify(o)}`); continue; }
      if (o.split !== srcSplit) fail(`${where(i)}: object from the ${o.split} split (leak)`);
      const cell = CELL_NAMES.indexOf(o.cell);
      o.r = cell >> 1; // for the captions' checks below
      o.c = cell & 1;
      if (!(o.index >= 1 && o.index <= s.n) || s.labels[o.index - 1] !== o.class) {
        fail(`${where(i)}: ${o.source} ${srcSplit} image ${o.index} is not a ${o.label}`);
        continue;
      }
      const x = o.x - 1;
      const y = o.y - 1;
      if (cell < 0 || o.cell_index !== cell + 1 || code[cell] !== 0 ||
          x < o.c * CELL || x > o.c * CELL + JITTER || y < o.r * CELL || y > o.r * CELL + JITTER) {
        fail(`${where(i)}: bad cell or position ${JSON.stringify(o)}`);
        continue;
      }
      code[cell] = o.class + (o.source === 'fashion' ? 1 : 11);
      const base = (o.index - 1) * ITEM * ITEM;
      for (let yy = 0; yy < ITEM; yy++) {
        for (let xx = 0; xx < ITEM; xx++) {
          const p = (y + yy) * SIDE + x + xx;
          if (im.data[i * SIDE * SIDE + p] !== s.images[base + yy * ITEM + xx]) {
            fail(`${where(i)}: pixels at (${x + xx}, ${y + yy}) differ from ${o.source} ${srcSplit} image ${o.index}`);
            yy = ITEM;
            break;
          }
          mask[p] = 1;
        }
      }
    }
    for (let p = 0; p < SIDE * SIDE; p++) {
      if (!mask[p] && im.data[i * SIDE * SIDE + p] !== 0) { fail(`${where(i)}: background pixel ${p} is not 0`); break; }
    }
    for (let k = 0; k < 4; k++) if (cells.data[i * 4 + k] !== code[k]) fail(`${where(i)}: cells file disagrees`);
    stats.objects += objs.length;
  });

  // Captions: order, counts, text, tokens, and truth.
  const tok = readIdxInt32(path.join(dir, `${name}-captions-idx2-int.gz`));
  const own = readIdxInt32(path.join(dir, `${name}-caption-images-idx1-int.gz`));
  const m = doc.captions.length;
  if (tok.dims[0] !== m || tok.dims[1] !== SEQ || own.dims[0] !== m) fail(`${name}: token IDX files do not match the JSON`);
  const per = new Array(n).fill(0);
  const seen = new Set();
  let prev = 1;
  doc.captions.forEach((c, k) => {
    const i = c.image - 1;
    if (!(c.image >= prev && c.image <= n)) fail(`${name} caption ${k + 1}: image ${c.image} out of order`);
    prev = c.image;
    per[i]++;
    if (!/^[a-z-]+( [a-z-]+)*$/.test(c.text)) fail(`${where(i)}: bad text "${c.text}"`);
    if (seen.has(`${c.image}:${c.text}`)) fail(`${where(i)}: caption "${c.text}" twice`);
    seen.add(`${c.image}:${c.text}`);
    const words = c.text.split(' ');
    if (words.length > SEQ - 2) fail(`${where(i)}: ${words.length} words in "${c.text}"`);
    const ids = [2, ...words.map((w) => vocab.word_to_idx[w] || 4), 3];
    while (ids.length < SEQ) ids.push(1);
    const inIdx = Array.from(tok.data.subarray(k * SEQ, (k + 1) * SEQ));
    if (JSON.stringify(ids) !== JSON.stringify(c.tokens) || JSON.stringify(ids) !== JSON.stringify(inIdx) ||
        own.data[k] !== c.image) {
      fail(`${where(i)}: tokens of "${c.text}" do not encode it`);
    }
    stats.unk += words.filter((w) => !vocab.word_to_idx[w]).length;
    const ps = parses(words);
    if (ps.length === 0) { fail(`${where(i)}: "${c.text}" does not parse`); return; }
    const objs = doc.objects[i];
    const wrong = ps.filter((p) => !holds(p, objs));
    if (wrong.length > 0) {
      fail(`${where(i)}: "${c.text}" is false of [${objs.map((o) => `${o.label} @ ${o.cell}`).join('; ')}]` +
        ` (${wrong.length} of ${ps.length} readings)`);
    }
    stats.captions++;
    if (ps.length > 1) stats.ambiguous++;
    if (ps.some((p) => p.clauses.some((cl) => cl.nps.length === 2))) stats.relational++;
  });
  per.forEach((k, i) => { if (k < 3 || k > 5) fail(`${where(i)}: ${k} captions, want 3..5`); });
  return n;
}

// A canvas as text, two pixel rows per line, with its objects and captions.
function show(dir, split, images) {
  const im = idx.read(path.join(dir, `${split}-images-idx3-ubyte.gz`));
  const doc = JSON.parse(fs.readFileSync(path.join(dir, `${split}-captions.json`), 'utf8'));
  const ramp = ' .:-=+*#%@';
  for (const i of images) {
    if (!(i >= 1 && i <= im.dims[0])) throw new Error(`${split} has no image ${i}`);
    const px = (x, y) => im.data[((i - 1) * SIDE + y) * SIDE + x];
    console.log(`${split} image ${i}: ${doc.objects[i - 1].map((o) => `${o.label} @ ${o.cell}`).join('; ')}`);
    console.log(`+${'-'.repeat(SIDE)}+`);
    for (let y = 0; y < SIDE; y += 2) {
      let line = '';
      for (let x = 0; x < SIDE; x++) line += ramp[Math.floor(Math.max(px(x, y), px(x, y + 1)) * 10 / 256)];
      console.log(`|${line}|`);
    }
    console.log(`+${'-'.repeat(SIDE)}+`);
    for (const c of doc.captions) if (c.image === i) console.log(`  "${c.text}"`);
  }
}

function main(argv) {
  const root = path.join(__dirname, '..', '..');
  let dir = path.join(root, 'data', 'captions');
  let fashion = path.join(root, 'data', 'fashion');
  let mnist = path.join(root, 'data', 'mnist');
  const min = { train: 20000, val: 2000 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--fashion') fashion = argv[++i];
    else if (argv[i] === '--mnist') mnist = argv[++i];
    else if (argv[i] === '--min-train') min.train = Number(argv[++i]);
    else if (argv[i] === '--min-val') min.val = Number(argv[++i]);
    else if (argv[i] === '--show') { show(dir, argv[i + 1], argv.slice(i + 2).map(Number)); return 0; }
    else dir = argv[i];
  }
  const t0 = Date.now();
  const errors = [];
  const fail = (msg) => { if (errors.push(msg) <= 20) console.error(`check-captions: ${msg}`); };
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  const trainDoc = JSON.parse(fs.readFileSync(path.join(dir, 'train-captions.json'), 'utf8'));
  checkVocab(vocab, trainDoc.captions, fail);
  const lines = [];
  for (const [name, srcSplit] of [['train', 'train'], ['val', 'test']]) {
    const src = { fashion: loadSource(fashion, srcSplit), mnist: loadSource(mnist, srcSplit) };
    const stats = { objects: 0, captions: 0, ambiguous: 0, relational: 0, unk: 0 };
    const n = checkSplit(dir, name, srcSplit, src, vocab, stats, fail);
    if (n < min[name]) fail(`${name}: ${n} images, want at least ${min[name]}`);
    lines.push(`  ${name.padEnd(5)} ${n} images (sources: ${srcSplit} splits only), ${stats.objects} objects, ` +
      `${stats.captions} captions true of their images (${stats.relational} relate two objects, ` +
      `${stats.ambiguous} parse more than one way, all readings true), ${stats.unk} <UNK>`);
  }
  if (errors.length > 0) {
    console.error(`check-captions: ${errors.length} problem(s) in ${dir}`);
    return 1;
  }
  console.log(`check-captions: ${dir} ok (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${lines.join('\n')}`);
  return 0;
}

module.exports = { parses, holds };

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (e) {
    process.stderr.write(`check-captions: ${e.stack || e.message}\n`);
    process.exit(1);
  }
}
