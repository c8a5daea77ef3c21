#!/usr/bin/python3
# bench/torch_cnn.py: PyTorch twin of nnlua's CNN benchmark: conv 32@7x7 pad 3, ReLU, 2x2 max pool, 100, 10.
# Reads the same IDX files; prints per-epoch train time, test accuracy, inference images/s and peak RSS.
"""usage: /usr/bin/python3 bench/torch_cnn.py [--data DIR] [--epochs E] [--threads T]
       [--openblas-threads N|env] [--seed S] [--lr LR] [--batch-size B] [--infer-batch B] [--json]

Model (PyTorch layouts, as nnlua's nn.Sequential in DESIGN.md):
  Conv2d(1, 32, 7, padding=3) -> ReLU -> MaxPool2d(2) -> Flatten
  -> Linear(32*14*14, 100) -> ReLU -> Linear(100, 10)
With --json, one line per epoch with the same fields as bench/torch_mlp.py ("bench": "cnn").
"""

import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
from torch_common import run  # noqa: E402


def build_model(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 14 * 14, 100), nn.ReLU(), nn.Linear(100, 10),
    )


if __name__ == "__main__":
    run("cnn", "PyTorch twin of nnlua's CNN benchmark (conv7x7-pool-100-10, Adam).", (1, 28, 28), build_model)
