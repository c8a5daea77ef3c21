-- examples/gradients.lua: the course's gradient derivation for a fully-connected layer and a ReLU,
-- on a tiny batch: the analytic formulas (matmuls), autograd and central differences must agree.
local nn = rawget(_G, "nn") or require "nnlua"

local USAGE = [[
usage: nnlua examples/gradients.lua [--seed N] [--eps E] [--quiet] [--help]

A fully-connected layer and a ReLU on a batch of N = 2 inputs with Din = 3 features and Dout = 4
outputs, followed by L = sum(Z * G) for a fixed upstream gradient G = dL/dZ:

  Y = X W^T + b        (W is [Dout, Din], PyTorch's layout)
  Z = relu(Y)

Backward, derived by hand:
  ReLU:  dL/dY = dL/dZ * [Y > 0]         (elementwise)
  FC:    dL/dW = dY^T X                  (the course's X^T dY, transposed for W's layout)
         dL/db = sum over the batch of dY
         dL/dX = dY W

Each gradient is printed three ways -- analytic (matmuls), autograd (loss:backward()) and numeric
(central differences of L) -- with the largest absolute difference between them.

  --seed N   random inputs (nn.randn with seed N) instead of the built-in example values
  --eps E    step of the central differences (default 1e-2; L is piecewise linear, so any step
             that does not cross a ReLU kink gives the exact slope up to float rounding)
  --quiet    print only the differences
Exit status 0 when all three agree to 1e-4, 1 otherwise.]]

local opts = { eps = 1e-2 }
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "--help" or a == "-h" then
    print(USAGE)
    os.exit(0)
  elseif a == "--seed" then
    opts.seed = math.tointeger(tonumber(arg[i + 1]))
    if not opts.seed then io.stderr:write("gradients.lua: --seed needs an integer\n") os.exit(2) end
    i = i + 1
  elseif a == "--eps" then
    opts.eps = tonumber(arg[i + 1])
    if not opts.eps or opts.eps <= 0 then io.stderr:write("gradients.lua: --eps needs a positive number\n") os.exit(2) end
    i = i + 1
  elseif a == "--quiet" then
    opts.quiet = true
  else
    io.stderr:write("gradients.lua: unknown argument " .. a .. "\n" .. USAGE .. "\n")
    os.exit(2)
  end
  i = i + 1
end

-- ---- the batch ----

local X, W, b, G
if opts.seed then
  nn.manual_seed(opts.seed)
  X, W, b, G = nn.randn(2, 3), nn.randn(4, 3) * 0.5, nn.randn(4) * 0.1, nn.randn(2, 4)
else
  X = nn.tensor{{1.0, -2.0, 0.5}, {0.3, 0.8, -1.5}}
  W = nn.tensor{{0.2, -0.1, 0.4}, {-0.5, 0.3, 0.1}, {0.1, 0.2, -0.3}, {0.6, -0.4, 0.2}}
  b = nn.tensor{0.1, -0.2, 0.05, 0.0}
  G = nn.tensor{{1.0, -0.5, 2.0, 0.3}, {-1.2, 0.7, 0.4, 1.5}}
end

local function linear(x, w, bias)
  if nn.F and nn.F.linear then return nn.F.linear(x, w, bias) end
  return nn.matmul(x, w:t()) + bias
end

local function loss_of(x, w, bias) return (linear(x, w, bias):relu() * G):sum() end

local function show(name, t)
  if opts.quiet then return end
  local rows = t:dim() == 1 and { t:totable() } or t:totable()
  io.write(("  %-9s"):format(name))
  for r, row in ipairs(rows) do
    if r > 1 then io.write(("\n  %-9s"):format("")) end
    for _, v in ipairs(row) do io.write(("%9.4f"):format(v == 0 and 0.0 or v)) end -- no "-0.0000"
  end
  io.write("\n")
end

local function maxdiff(a, c) return (a - c):abs():max():item() end

-- ---- 1. analytic: the formulas as matmuls ----

local Y = nn.matmul(X, W:t()) + b
local mask = Y:gt(0):float()          -- [Y > 0]
local dY = G * mask                   -- ReLU backward
local analytic = {
  W = nn.matmul(dY:t(), X),           -- dW = dY^T X   (Dout x Din)
  b = dY:sum(1),                      -- db = sum_n dY (Dout)
  X = nn.matmul(dY, W),               -- dX = dY W     (N x Din)
}

-- ---- 2. autograd ----

local Xg, Wg, bg = X:clone():requires_grad(), W:clone():requires_grad(), b:clone():requires_grad()
local L = loss_of(Xg, Wg, bg)
L:backward()
local auto = { W = Wg.grad, b = bg.grad, X = Xg.grad }

-- ---- 3. numeric: central differences of L in each input element ----

local function numeric_grad(t)
  local grad = nn.zeros(t:size())
  local flat, gflat = t:view(-1), grad:view(-1)
  nn.no_grad(function()
    for k = 1, flat:numel() do
      local orig = flat[k]
      flat[k] = orig + opts.eps
      local up = loss_of(X, W, b):item()
      flat[k] = orig - opts.eps
      local down = loss_of(X, W, b):item()
      flat[k] = orig
      gflat[k] = (up - down) / (2 * opts.eps)
    end
  end)
  return grad
end
local numeric = { W = numeric_grad(W), b = numeric_grad(b), X = numeric_grad(X) }

-- ---- report ----

if not opts.quiet then
  print(("FC layer + ReLU on N = 2, Din = 3, Dout = 4;  L = sum(relu(X W^T + b) * G) = %.6f\n"):format(L:item()))
  show("X", X)
  show("W", W)
  show("b", b)
  show("Y", Y)
  show("G=dL/dZ", G)
  show("[Y>0]", mask)
  show("dL/dY", dY)
  print()
end

local worst = 0
local formulas = { W = "dL/dW = dY^T X", b = "dL/db = sum_n dY", X = "dL/dX = dY W" }
for _, k in ipairs({ "W", "b", "X" }) do
  local d1, d2, d3 = maxdiff(analytic[k], auto[k]), maxdiff(analytic[k], numeric[k]), maxdiff(auto[k], numeric[k])
  worst = math.max(worst, d1, d2, d3)
  if not opts.quiet then
    print(formulas[k])
    show("analytic", analytic[k])
    show("autograd", auto[k])
    show("numeric", numeric[k])
  end
  print(("  max |analytic - autograd| = %.2e   |analytic - numeric| = %.2e   |autograd - numeric| = %.2e")
    :format(d1, d2, d3))
  if not opts.quiet then print() end
end

-- The ReLU rule on its own: dX = dY * [X > 0], checked on Y with upstream G.
local Yg = Y:clone():requires_grad()
local Z = Yg:relu()
Z:backward(G)
local relu_diff = maxdiff(Yg.grad, dY)
worst = math.max(worst, relu_diff)
print(("ReLU rule dX = dY * [X > 0]: max |autograd - analytic| = %.2e"):format(relu_diff))

local ok = worst <= 1e-4
print(ok and ("all three agree (largest difference %.2e)"):format(worst)
  or ("MISMATCH: largest difference %.2e"):format(worst))
os.exit(ok and 0 or 1)
