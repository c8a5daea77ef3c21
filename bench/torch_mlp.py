#!/usr/bin/python3
# bench/torch_mlp.py: PyTorch twin of nnlua's MLP benchmark: 784 -> 200 ReLU -> 10, Adam, batch 100.
# Reads the same IDX files; prints per-epoch train time, test accuracy, inference images/s and peak RSS.
"""usage: /usr/bin/python3 bench/torch_mlp.py [--data DIR] [--epochs E] [--threads T]
       [--openblas-threads N|env] [--seed S] [--lr LR] [--batch-size B] [--infer-batch B] [--json]

With --json, one line per epoch:
{"bench": "mlp", "impl": "pytorch", "epoch": 1, "train_s": ..., "train_loss": ..., "test_acc": ...,
 "infer_s": ..., "infer_ips": ..., "peak_rss_mb": ..., "threads": ..., "openblas_threads": ..., ...}
"""

import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
from torch_common import run  # noqa: E402


def build_model(torch):
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))


if __name__ == "__main__":
    run("mlp", "PyTorch twin of nnlua's MLP benchmark (784-200-10, Adam).", (784,), build_model)
