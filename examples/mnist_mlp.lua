-- examples/mnist_mlp.lua: the course's two-layer softmax classifier, 784 -> 200 ReLU -> 10, trained
-- with Adam on MNIST (or Fashion-MNIST); the recipe of bench/torch_mlp.py, which scripts/bench compares.
local nn = rawget(_G, "nn") or require "nnlua"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local classify = dofile(here .. "/lib/classify.lua")

local ABOUT = [[A fully-connected network, affine 784 -> 200, ReLU, affine 200 -> 10, softmax cross-entropy
(PyTorch's default initialisation), trained with Adam (lr 1e-3) on batches of 100, shuffled each
epoch. Prints test accuracy per epoch, saves the weights (safetensors, PyTorch key names) and a
loss-vs-iteration chart. The course reports 97.70% on full MNIST.]]

local function build()
  return nn.Sequential{
    nn.Flatten(),
    nn.Linear(28 * 28, 200), nn.ReLU(),
    nn.Linear(200, 10), -- logits; the softmax is inside the cross-entropy
  }
end

classify.run("mnist_mlp", "mlp", ABOUT, 20, build, arg or {}, arg and arg[0])
