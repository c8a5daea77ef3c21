-- examples/mnist_cnn.lua: the course's convolutional network -- conv 32@7x7 pad 3, ReLU, 2x2 max
-- pool, affine 100, ReLU, affine 10 -- trained with Adam; the recipe of bench/torch_cnn.py.
local nn = rawget(_G, "nn") or require "nnlua"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local classify = dofile(here .. "/lib/classify.lua")

local ABOUT = [[A convolutional network: conv 32 filters 7x7 (padding 3) -> ReLU -> 2x2 max pool -> flatten
-> affine 32*14*14 -> 100 -> ReLU -> affine 100 -> 10, softmax cross-entropy (PyTorch's default
initialisation), trained with Adam (lr 1e-3) on batches of 100, shuffled each epoch. Prints test
accuracy per epoch, saves the weights (safetensors, PyTorch key names) and a loss-vs-iteration
chart. The course reports 97.61%.]]

local function build()
  return nn.Sequential{
    nn.Conv2d(1, 32, 7, { padding = 3 }), nn.ReLU(), nn.MaxPool2d(2), -- 32 x 14 x 14
    nn.Flatten(),
    nn.Linear(32 * 14 * 14, 100), nn.ReLU(),
    nn.Linear(100, 10),
  }
end

classify.run("mnist_cnn", "cnn", ABOUT, 10, build, arg or {}, arg and arg[0])
