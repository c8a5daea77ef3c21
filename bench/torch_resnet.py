#!/usr/bin/python3
# bench/torch_resnet.py: PyTorch's side of the ResNet-18 benchmark (twin: bench/nnlua_resnet.lua): eval-mode
# inference and one SGD training step on a batch of 224x224 images; medians as JSON lines.
"""torchvision's ResNet-18 layout (scripts/export-torch-resnet builds it without torchvision).

Threads: OPENBLAS_NUM_THREADS is set (default 1) before torch is imported and torch.set_num_threads
(default 2): Debian's build oversubscribes with both pools at 2 threads (bench/torch_common.py).
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--openblas-threads", default="1", help="'env' keeps the environment's")
    args = p.parse_args()
    if "torch" in sys.modules:
        raise RuntimeError("torch imported before OPENBLAS_NUM_THREADS was set")
    if args.openblas_threads != "env":
        os.environ["OPENBLAS_NUM_THREADS"] = args.openblas_threads
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    path = os.path.join(REPO, "scripts", "export-torch-resnet")
    loader = importlib.machinery.SourceFileLoader("export_torch_resnet", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    exp = importlib.util.module_from_spec(spec)
    loader.exec_module(exp)

    torch.manual_seed(0)
    model = exp.resnet18()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def median(fn):
        for _ in range(args.warmup):
            fn()
        ts, cs = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)  # CPU time of all threads: less disturbed by a busy machine
        return statistics.median(ts), ts, statistics.median(cs)

    def report(op, res):
        t, ts, cpu = res
        print(json.dumps({"bench": "resnet", "impl": "pytorch", "op": op, "arch": "resnet18", "median_s": round(t, 5),
                          "runs_s": [round(v, 5) for v in ts], "cpu_s": round(cpu, 5), "batch": args.batch, "size": args.size,
                          "threads": torch.get_num_threads(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                          "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset"), "torch": torch.__version__}),
              flush=True)

    def infer():
        with torch.no_grad():
            model(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.eval()
    report("infer", median(infer))
    model.train()
    report("train_step", median(train_step))


if __name__ == "__main__":
    main()
