# bench/torch_common.py: shared part of the PyTorch twins of nnlua's benchmarks (torch_mlp.py, torch_cnn.py).
# Argument parsing, thread setup (before torch is imported), IDX(.gz) loading and the timed train/eval loop.
"""Shared driver for the PyTorch benchmark twins.

The twins must train on exactly the bytes nnlua trains on, so they read the
IDX(.gz) files made by scripts/get-data directly (numpy + gzip; no
torchvision) and scale pixels to [0, 1] by /255, with no other normalisation.

Thread setup: Debian's python3-torch has an OpenMP pool (torch.set_num_threads)
and calls OpenBLAS, which has its own pool. With both at 2 threads on 2 cores
they oversubscribe and run slower, so OPENBLAS_NUM_THREADS is set (default 1)
before torch is first imported. That is why this module imports torch only
inside functions called after setup_threads().
"""

import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=os.path.join(REPO, "data", "mnist"),
                   help="directory with the four IDX(.gz) files (default: data/mnist)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch.set_num_threads (default: CPUs available)")
    p.add_argument("--openblas-threads", default="1",
                   help="OPENBLAS_NUM_THREADS set before importing torch (default 1; 'env' keeps the environment's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--infer-batch", type=int, default=1000, help="batch size of the timed inference pass")
    p.add_argument("--json", action="store_true", help="print one JSON object per epoch")
    return p


def setup_threads(args):
    """Set OpenBLAS's thread count, then import torch and size its pool. Returns torch."""
    if "torch" in sys.modules:
        raise RuntimeError("torch was imported before setup_threads: OPENBLAS_NUM_THREADS would be ignored")
    if args.openblas_threads != "env":
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads)
    import torch
    torch.set_num_threads(args.threads)
    return torch


def read_idx(path):
    """Read an unsigned-byte IDX file, gzip or plain, as a numpy array of its dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, buf[4:4 + 4 * ndim])
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes for dims {dims}")
    return data.reshape(dims)


def find(data_dir, base):
    for name in (base + ".gz", base):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}: no {base}[.gz] (run scripts/get-data)")


def load_split(torch, data_dir, split, shape):
    """Images as float32 in [0, 1] reshaped to (N, *shape); labels as int64 in 0..9."""
    img_name, lbl_name = FILES[split]
    x = read_idx(find(data_dir, img_name)).astype(np.float32) / 255.0
    y = read_idx(find(data_dir, lbl_name)).astype(np.int64)
    return torch.from_numpy(x.reshape((-1,) + tuple(shape))), torch.from_numpy(y)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def run(name, description, input_shape, build_model):
    """Parse flags, train build_model(torch) with Adam for --epochs, report each epoch."""
    args = parser(description).parse_args()
    torch = setup_threads(args)
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    xtr, ytr = load_split(torch, args.data, "train", input_shape)
    xte, yte = load_split(torch, args.data, "test", input_shape)
    model = build_model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    ntr, nte, bs = xtr.shape[0], xte.shape[0], args.batch_size

    for epoch in range(1, args.epochs + 1):
        model.train()
        loss_sum = 0.0
        t0 = time.perf_counter()
        perm = torch.randperm(ntr, generator=gen)
        for i in range(0, ntr, bs):
            idx = perm[i:i + bs]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * idx.shape[0]
        train_s = time.perf_counter() - t0

        model.eval()
        correct = 0
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, nte, args.infer_batch):
                pred = model(xte[i:i + args.infer_batch]).argmax(1)
                correct += int((pred == yte[i:i + args.infer_batch]).sum())
        infer_s = time.perf_counter() - t0

        rec = {
            "bench": name, "impl": "pytorch", "epoch": epoch,
            "train_s": round(train_s, 4), "train_loss": round(loss_sum / ntr, 5),
            "test_acc": round(correct / nte, 5),
            "infer_s": round(infer_s, 4), "infer_ips": round(nte / infer_s, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "n_train": ntr, "n_test": nte, "batch_size": bs, "lr": args.lr, "seed": args.seed,
            "threads": torch.get_num_threads(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "torch": torch.__version__, "data": args.data,
        }
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"{name} epoch {epoch}: train {train_s:.2f} s (loss {rec['train_loss']:.4f}), "
                  f"test acc {100 * rec['test_acc']:.2f}%, inference {rec['infer_ips']:.0f} images/s, "
                  f"peak RSS {rec['peak_rss_mb']:.0f} MB", flush=True)
