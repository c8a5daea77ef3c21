#!/usr/bin/python3
# bench/torch_micro.py: PyTorch twin of nnlua's micro-benchmarks: 1024x1024 sgemm, a+b and relu on 10^7 floats.
# Prints the median time of repeated runs, GFLOP/s for matmul and GB/s (bytes read + written) for the rest.
"""usage: /usr/bin/python3 bench/torch_micro.py [--threads T] [--openblas-threads N|env]
       [--reps R] [--n 1024] [--numel 10000000] [--json]

Ops (float32, contiguous):
  matmul    torch.mm(a, b, out=c), n x n            GFLOP/s = 2 n^3 / t
  add       c = a + b   (allocates c, as users write it)   GB/s = 12 numel / t
  add_out   torch.add(a, b, out=c)  (preallocated)         GB/s = 12 numel / t
  relu      c = torch.relu(a)  (allocates c)               GB/s =  8 numel / t
  relu_     torch.relu_(c)     (in place)                  GB/s =  8 numel / t
With --json, one JSON object per op:
{"bench": "micro", "impl": "pytorch", "op": "add", "numel": ..., "median_s": ..., "gbps": ..., ...}
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse():
    p = argparse.ArgumentParser(description="PyTorch twin of nnlua's micro-benchmarks.")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--openblas-threads", default="1",
                   help="OPENBLAS_NUM_THREADS set before importing torch (default 1; 'env' keeps the environment's)")
    p.add_argument("--reps", type=int, default=20, help="timed repetitions per op (after 3 warm-up runs)")
    p.add_argument("--n", type=int, default=1024, help="matmul size")
    p.add_argument("--numel", type=int, default=10_000_000, help="elements for add and relu")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def median_time(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    args = parse()
    if "torch" in sys.modules:
        raise RuntimeError("torch imported before OPENBLAS_NUM_THREADS was set")
    if args.openblas_threads != "env":
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads)
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    common = {
        "bench": "micro", "impl": "pytorch", "threads": torch.get_num_threads(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "torch": torch.__version__,
    }
    results = []

    n = args.n
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    t = median_time(lambda: torch.mm(a, b, out=c), args.reps)
    results.append({"op": "matmul", "n": n, "median_s": t, "gflops": 2.0 * n ** 3 / t / 1e9})

    m = args.numel
    x, y, z = torch.randn(m), torch.randn(m), torch.empty(m)
    ops = [
        ("add", 12, lambda: x + y),
        ("add_out", 12, lambda: torch.add(x, y, out=z)),
        ("relu", 8, lambda: torch.relu(x)),
        ("relu_", 8, lambda: torch.relu_(z)),
    ]
    for name, bytes_per, fn in ops:
        t = median_time(fn, args.reps)
        results.append({"op": name, "numel": m, "median_s": t, "gbps": bytes_per * m / t / 1e9})

    for r in results:
        r["median_s"] = round(r["median_s"], 6)
        for k in ("gflops", "gbps"):
            if k in r:
                r[k] = round(r[k], 2)
        if args.json:
            print(json.dumps({**common, **r}), flush=True)
        else:
            rate = f"{r['gflops']:.1f} GFLOP/s" if "gflops" in r else f"{r['gbps']:.2f} GB/s"
            size = f"{r['n']}x{r['n']}" if "n" in r else f"{r['numel']} floats"
            print(f"{r['op']:<8} {size:<16} median {1e3 * r['median_s']:.3f} ms  {rate}", flush=True)


if __name__ == "__main__":
    main()
