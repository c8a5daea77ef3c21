#!/usr/bin/python3
# bench/torch_captioning.py: the PyTorch twin of examples/captioning.lua (same model, recipe, data
# order and scoring) and, with --step-bench, of bench/nnlua_captioning_step.lua. JSON lines out.
"""usage: /usr/bin/python3 bench/torch_captioning.py [options]

Training (default): the captioner of lua/nnlua/models/captioning.lua, with examples/captioning.lua's
recipe. Encoder: per entry of --channels, --convs times conv 3x3 (no bias) -> BatchNorm -> ReLU, then
a 2x2 max pool; then Linear + ReLU on each cell of the 2 x 2 grid (4 x --cell-dim features). Stage 1 (--pretrain-
epochs): the encoder and a cell head (21 classes: empty, 10 clothes, 10 digits) trained on the
training images' cells; then the encoder is frozen and its features computed once. Stage 2: affine
to h0 (c0 = 0), embedding, LSTM or RNN (batch_first), temporal affine, softmax loss masked at <NULL>
(summed over time, averaged over captions), Adam with exponential decay per epoch. An epoch visits
every training image once in an order drawn from the xorshift32 stream of nnlua's captioning_data
(the same draws in the same order), each image with one of its captions drawn from the same
stream. After each epoch: greedy decoding of the validation images, corpus BLEU-1..4 and the
objects-named score. One JSON object per epoch on stdout.

--step-bench: the course's LSTM training step at N=25, T=16, D=512, W=256, H=512, V=1004 on random
data (features, captions with random lengths); prints the median step time.
"""

import argparse
import gzip
import json
import math
import os
import resource
import struct
import sys
import time
from collections import Counter

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NULL, START, END = 0, 1, 2  # 0-based ids of <NULL>, <START>, <END> (1, 2, 3 in nnlua)

FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot"]
FASHION_PLURAL = ["t-shirts", "trousers", "pullovers", "dresses", "coats", "sandals", "shirts",
                  "sneakers", "bags", "ankle boots"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def parse():
    p = argparse.ArgumentParser(description="PyTorch twin of examples/captioning.lua")
    p.add_argument("--data", default=os.path.join(REPO, "data", "captions"))
    p.add_argument("--cell", default="lstm", choices=["lstm", "rnn", "gru"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--lr-decay", type=float, default=0.7, help="lr multiplier after each epoch")
    p.add_argument("--pretrain-epochs", type=int, default=6, help="cell-classifier epochs (0: end to end)")
    p.add_argument("--pretrain-lr", type=float, default=3e-3)
    p.add_argument("--pretrain-decay", type=float, default=0.7)
    p.add_argument("--wordvec-dim", type=int, default=256)
    p.add_argument("--hidden-dim", type=int, default=512)
    p.add_argument("--channels", default="24,48,96")
    p.add_argument("--convs", default="1,2,2", help="convolutions per block")
    p.add_argument("--flip", action="store_true", help="mirror half the images while pretraining")
    p.add_argument("--cell-dim", type=int, default=128)
    p.add_argument("--encoder-output", default="probs", choices=["probs", "hidden"])
    p.add_argument("--init-c", action="store_true", help="the LSTM's c0 from the features too")
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    p.add_argument("--val-limit", type=int, default=0, help="score the first N validation images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--openblas-threads", default="1",
                   help="OPENBLAS_NUM_THREADS set before importing torch (default 1; 'env' keeps it)")
    p.add_argument("--step-bench", action="store_true")
    p.add_argument("--reps", type=int, default=30, help="--step-bench: timed steps")
    p.add_argument("--warmup", type=int, default=5, help="--step-bench: untimed steps first")
    for k, v in (("N", 25), ("T", 16), ("D", 512), ("W", 256), ("H", 512), ("V", 1004)):
        p.add_argument("--" + k, type=int, default=v, help="--step-bench shape")
    return p.parse_args()


# ---- data (docs/captions-format.md) ----

def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    dims = struct.unpack(">" + "I" * ndim, buf[4:4 + 4 * ndim])
    dtype = {0x08: np.uint8, 0x0C: ">i4"}[code]
    return np.frombuffer(buf, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def load_split(d, split):
    s = {
        "images": read_idx(f"{d}/{split}-images-idx3-ubyte.gz"),
        "captions": read_idx(f"{d}/{split}-captions-idx2-int.gz").astype(np.int64) - 1,  # 0-based ids
        "image_of": read_idx(f"{d}/{split}-caption-images-idx1-int.gz").astype(np.int64) - 1,
        "cells": read_idx(f"{d}/{split}-cells-idx2-ubyte.gz"),
    }
    n = s["images"].shape[0]
    first, count = [None] * n, [0] * n
    for r, i in enumerate(s["image_of"].tolist()):
        if first[i] is None:
            first[i] = r
        count[i] += 1
    s["first"], s["count"], s["n"] = first, count, n
    return s


class XorShift:
    """The xorshift32 stream of nnlua.models.captioning_data.rng, bit for bit."""

    def __init__(self, seed):
        x = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
        self.x = x or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def perm(self, n):  # 0-based Fisher-Yates, the same draws as the Lua 1-based one
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next() % (i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def epoch_rows(s, rng):
    order = rng.perm(s["n"])
    return [s["first"][i] + rng.next() % s["count"][i] for i in order]


def decode(ids, vocab):
    words = []
    for t in ids:
        if t == END:
            break
        if t not in (START, NULL):
            words.append(vocab[t])
    return words


# ---- scores: corpus BLEU (NLTK corpus_bleu, no smoothing) and objects named ----

def ngrams(toks, n):
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def corpus_bleu(refs_list, hyps, max_n=4):
    match, total, c, r = [0] * max_n, [0] * max_n, 0, 0
    for refs, hyp in zip(refs_list, hyps):
        for n in range(1, max_n + 1):
            hc = ngrams(hyp, n)
            mx = Counter()
            for ref in refs:
                for g, k in ngrams(ref, n).items():
                    mx[g] = max(mx[g], k)
            match[n - 1] += sum(min(k, mx[g]) for g, k in hc.items())
            total[n - 1] += max(0, len(hyp) - n + 1)
        c += len(hyp)
        r += min((abs(len(x) - len(hyp)), len(x)) for x in refs)[1]
    bp = 1.0 if c > r else (math.exp(1 - r / c) if c > 0 else 0.0)
    out = []
    for k in range(1, max_n + 1):
        if match[0] == 0 or any(match[n] == 0 or total[n] == 0 for n in range(k)):
            out.append(0.0)
        else:
            out.append(bp * math.exp(sum(math.log(match[n] / total[n]) for n in range(k)) / k))
    return out


def label(code):
    if 1 <= code <= 10:
        return FASHION[code - 1]
    if 11 <= code <= 20:
        return "digit " + DIGITS[code - 11]
    return None


NOUNS = {}
for _c in range(10):
    NOUNS[FASHION[_c]] = (FASHION[_c], False)
    NOUNS[FASHION_PLURAL[_c]] = (FASHION[_c], True)


def named(words):
    counts, i = Counter(), 0
    while i < len(words):
        w, nxt = words[i], words[i + 1] if i + 1 < len(words) else None
        key = None
        if w == "digit" and nxt in DIGITS:
            key, plural, ln = "digit " + nxt, False, 2
        elif w == "ankle" and nxt in ("boot", "boots"):
            key, plural, ln = "ankle boot", nxt == "boots", 2
        elif w in NOUNS and w != "boot":
            (key, plural), ln = NOUNS[w], 1
        if key:
            counts[key] += (3 if i > 0 and words[i - 1] == "three" else 2) if plural else 1
            i += ln
        else:
            i += 1
    return counts


def score_objects(cells, hyps):
    s = dict(correct=0, total=0, extra=0, count_errors=0, images_exact=0)
    for codes, words in zip(cells, hyps):
        truth = Counter(l for l in map(label, codes) if l)
        said, exact = named(words), True
        for l, n in truth.items():
            g = said.get(l, 0)
            s["correct"] += min(n, g)
            s["total"] += n
            s["count_errors"] += int(0 < g != n)
            exact &= g == n
        for l, g in said.items():
            if g > truth.get(l, 0):
                s["extra"] += g - truth.get(l, 0)
                exact = False
        s["images_exact"] += int(exact)
    return s


# ---- the model ----

def build(torch, V, W, H, cell, channels=None, feature_dim=None, cell_dim=128, output="probs", init_c=False,
          convs=None):
    nn = torch.nn

    class CellEncoder(nn.Module):
        """nnlua.models.captioning's CellEncoder: conv blocks, then per grid cell Linear + ReLU + Linear
        to 21 class scores; features: the class probabilities (or the hidden layer) of the 4 cells."""

        def __init__(self):
            super().__init__()
            layers, cin, side = [], 1, 64
            for b, c in enumerate(channels):
                for _ in range(convs[b] if convs else 1):
                    layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
                    cin = c
                layers.append(nn.MaxPool2d(2))
                side //= 2
            self.conv = nn.Sequential(*layers)
            self.fc = nn.Linear(cin * (side // 2) ** 2, cell_dim)
            self.head = nn.Linear(cell_dim, 21)
            self.c, self.s = cin, side // 2
            self.dim = 4 * (21 if output == "probs" else cell_dim)

        def cells(self, x):
            f = self.conv(x)
            n, c, s = f.shape[0], self.c, self.s
            f = f.view(n, c, 2, s, 2, s).permute(0, 2, 4, 1, 3, 5).reshape(n * 4, c * s * s)
            return torch.relu(self.fc(f))

        def logits(self, x):
            return self.head(self.cells(x))

        def forward(self, x):
            if output == "hidden":
                return self.cells(x).view(x.shape[0], self.dim)
            return torch.softmax(self.logits(x), 1).view(x.shape[0], self.dim)

    class Captioner(nn.Module):
        def __init__(self):
            super().__init__()
            if channels is None:
                self.encoder, fdim = nn.Identity(), feature_dim
            else:
                self.encoder = CellEncoder()
                fdim = self.encoder.dim
            self.fdim = fdim
            self.init_h = nn.Linear(fdim, H)
            if init_c:
                self.init_c = nn.Linear(fdim, H)
            self.embed = nn.Embedding(V, W)
            self.rnn = {"lstm": nn.LSTM, "rnn": nn.RNN, "gru": nn.GRU}[cell](W, H, batch_first=True)
            self.vocab = nn.Linear(H, V)
            self.cell = cell

        def features(self, x):  # 2-D input: precomputed features
            return x if x.dim() == 2 else self.encoder(x)

        def cell_loss(self, images, cells):  # cells: N x 4 classes 0..20 (0 empty)
            logits = self.encoder.logits(images)
            return nn.functional.cross_entropy(logits, cells.reshape(-1)), logits

        def state(self, images):
            f = self.features(images)
            h0 = self.init_h(f).unsqueeze(0)
            if init_c:
                return (h0, self.init_c(f).unsqueeze(0))
            return (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0

        def forward(self, images, captions):
            cin, cout = captions[:, :-1], captions[:, 1:]
            h, _ = self.rnn(self.embed(cin), self.state(images))
            scores = self.vocab(h)
            loss = nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), cout.reshape(-1),
                                               ignore_index=NULL, reduction="sum")
            return loss / captions.shape[0]

        @torch.no_grad()
        def sample(self, images, max_len=16):
            st = self.state(images)
            word = torch.full((images.shape[0], 1), START, dtype=torch.long)
            out, done = [], torch.zeros(images.shape[0], dtype=torch.bool)
            for _ in range(max_len):
                h, st = self.rnn(self.embed(word), st)
                word = self.vocab(h).argmax(2)
                out.append(word)
                done |= word[:, 0] == END
                if bool(done.all()):
                    break
            return torch.cat(out, 1)

    return Captioner()


def images_tensor(torch, imgs):
    return torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32)).unsqueeze(1) / 255.0


def step_bench(torch, a):
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = build(torch, a.V, a.W, a.H, a.cell, feature_dim=a.D)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    feats = torch.randn(a.N, a.D)
    caps = np.full((a.N, a.T + 1), NULL, dtype=np.int64)
    for n in range(a.N):
        L = int(rng.integers(a.T // 4, a.T))
        caps[n, 0], caps[n, L + 1] = START, END
        caps[n, 1:L + 1] = rng.integers(4, a.V, size=L)
    caps = torch.from_numpy(caps)

    def step():
        opt.zero_grad()
        loss = model(feats, caps)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    med = ts[len(ts) // 2] if len(ts) % 2 else (ts[len(ts) // 2 - 1] + ts[len(ts) // 2]) / 2
    print(json.dumps({"bench": "captioning_step", "impl": "pytorch", "cell": a.cell, "median_s": round(med, 6),
                      "min_s": round(ts[0], 6), "reps": a.reps, "N": a.N, "T": a.T, "D": a.D, "W": a.W,
                      "H": a.H, "V": a.V, "threads": torch.get_num_threads(),
                      "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "torch": torch.__version__}),
          flush=True)


def evaluate(torch, model, val, vocab, xval, limit=0):
    model.eval()
    n = limit or val["n"]
    hyps = []
    t0 = time.perf_counter()
    for f in range(0, n, 500):
        ids = model.sample(xval[f:min(n, f + 500)])
        hyps += [decode(row, vocab) for row in ids.tolist()]
    gen_s = time.perf_counter() - t0
    refs = [[decode(val["captions"][r].tolist(), vocab)
             for r in range(val["first"][i], val["first"][i] + val["count"][i])] for i in range(n)]
    model.train()
    return corpus_bleu(refs, hyps), score_objects(val["cells"][:n].tolist(), hyps), gen_s, hyps


def encode(torch, model, images):
    model.eval()
    with torch.no_grad():
        return torch.cat([model.encoder(images_tensor(torch, images[f:f + 500])) for f in range(0, len(images), 500)])


def cell_accuracy(torch, model, val, n):
    model.eval()
    right = total = 0
    with torch.no_grad():
        for f in range(0, n, 500):
            cells = torch.from_numpy(val["cells"][f:min(n, f + 500)].astype(np.int64))
            _, logits = model.cell_loss(images_tensor(torch, val["images"][f:min(n, f + 500)]), cells)
            want = cells.reshape(-1)
            obj = want > 0
            right += int(((logits.argmax(1) == want) & obj).sum())
            total += int(obj.sum())
    model.train()
    return right / total


def train(torch, a):
    vocab = json.load(open(os.path.join(a.data, "vocab.json")))["idx_to_word"]
    tr, val = load_split(a.data, "train"), load_split(a.data, "val")
    if a.limit:
        tr["n"] = min(a.limit, tr["n"])
    n_val = a.val_limit or val["n"]
    torch.manual_seed(a.seed)
    model = build(torch, len(vocab), a.wordvec_dim, a.hidden_dim, a.cell,
                  channels=[int(c) for c in a.channels.split(",")], cell_dim=a.cell_dim,
                  output=a.encoder_output, init_c=a.init_c, convs=[int(c) for c in a.convs.split(",")])
    rng = XorShift(a.seed)
    common = {"bench": "captioning", "impl": "pytorch", "seed": a.seed, "threads": torch.get_num_threads()}

    # stage 1: the encoder as a classifier of the grid cells (examples/captioning.lua's recipe)
    pretrain_s, cell_acc = 0.0, None
    if a.pretrain_epochs > 0:
        popt = torch.optim.Adam(model.encoder.parameters(), lr=a.pretrain_lr)
        psched = torch.optim.lr_scheduler.ExponentialLR(popt, gamma=a.pretrain_decay)
        for epoch in range(1, a.pretrain_epochs + 1):
            order = [i for i in rng.perm(tr["n"])]
            model.train()
            t0, loss_sum, steps = time.perf_counter(), 0.0, 0
            for f in range(0, len(order), a.batch_size):
                idx = np.array(order[f:f + a.batch_size])
                cells = torch.from_numpy(tr["cells"][idx].astype(np.int64))
                x = images_tensor(torch, tr["images"][idx])
                if a.flip:  # as nnlua's cell_batch: one draw per image, mirror on odd
                    fl = torch.from_numpy(np.array([rng.next() % 2 for _ in idx], dtype=bool))
                    x[fl] = x[fl].flip(3)
                    cells[fl] = cells[fl][:, [1, 0, 3, 2]]
                popt.zero_grad()
                loss, _ = model.cell_loss(x, cells)
                loss.backward()
                popt.step()
                loss_sum += loss.item()
                steps += 1
            psched.step()
            ts = time.perf_counter() - t0
            pretrain_s += ts
            cell_acc = cell_accuracy(torch, model, val, n_val)
            print(json.dumps({**common, "stage": "pretrain", "epoch": epoch, "train_s": round(ts, 3),
                              "train_loss": round(loss_sum / steps, 5), "cell_acc": round(cell_acc, 5)}),
                  flush=True)

    # stage 2: captioning, on the frozen encoder's features computed once
    feat_s = 0.0
    xtrain = None
    if a.pretrain_epochs > 0:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        t0 = time.perf_counter()
        xtrain, xval = encode(torch, model, tr["images"][:tr["n"]]), encode(torch, model, val["images"][:n_val])
        feat_s = time.perf_counter() - t0
    else:
        xval = images_tensor(torch, val["images"][:n_val])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=a.lr_decay)
    for epoch in range(1, a.epochs + 1):
        rows = epoch_rows(tr, rng)
        model.train()
        if xtrain is not None:
            model.encoder.eval()  # frozen: batch norm on running statistics
        t0, loss_sum, steps, step_ts = time.perf_counter(), 0.0, 0, []
        for f in range(0, len(rows), a.batch_size):
            r = np.array(rows[f:f + a.batch_size])
            ts = time.perf_counter()
            which = tr["image_of"][r]
            x = xtrain[torch.from_numpy(which)] if xtrain is not None else images_tensor(torch, tr["images"][which])
            caps = torch.from_numpy(tr["captions"][r])
            opt.zero_grad()
            loss = model(x, caps)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
            step_ts.append(time.perf_counter() - ts)
        train_s = time.perf_counter() - t0
        sched.step()
        bleu, obj, gen_s, hyps = evaluate(torch, model, val, vocab, xval, n_val)
        step_ts.sort()
        print(json.dumps({
            **common, "stage": "caption", "cell": a.cell, "epoch": epoch,
            "train_s": round(train_s, 3), "step_s": round(step_ts[len(step_ts) // 2], 5),
            "train_loss": round(loss_sum / steps, 5),
            "bleu1": round(bleu[0], 5), "bleu2": round(bleu[1], 5), "bleu3": round(bleu[2], 5),
            "bleu4": round(bleu[3], 5), "objects_named": round(obj["correct"] / obj["total"], 5),
            "objects_correct": obj["correct"], "objects_total": obj["total"], "extra_objects": obj["extra"],
            "count_errors": obj["count_errors"], "images_exact": obj["images_exact"],
            "generate_s": round(gen_s, 3), "pretrain_s": round(pretrain_s, 3), "features_s": round(feat_s, 3),
            "cell_acc": cell_acc and round(cell_acc, 5), "n_train": tr["n"], "n_val": n_val,
            "batch_size": a.batch_size, "lr": a.lr, "lr_decay": a.lr_decay,
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "sample": " ".join(hyps[0]),
        }), flush=True)


def main():
    a = parse()
    if "torch" in sys.modules:
        raise RuntimeError("torch imported before OPENBLAS_NUM_THREADS was set")
    if a.openblas_threads != "env":
        os.environ["OPENBLAS_NUM_THREADS"] = str(a.openblas_threads)
    import torch
    torch.set_num_threads(a.threads)
    if a.step_bench:
        step_bench(torch, a)
    else:
        train(torch, a)


if __name__ == "__main__":
    main()
