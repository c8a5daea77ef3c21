-- anomaly_spec.lua — numerics: nn.detect_anomaly names the op whose forward or backward made the first
-- NaN or Inf; the MNIST training scripts stop on a NaN loss and keep their last good checkpoint.
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The error a call raises (fails the test when it raises none).
local function error_of(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

describe("nn.detect_anomaly", function()
  after_each(function() nn.detect_anomaly(false) end)

  it("is off by default: NaN and Inf flow through without a word", function()
    assert.is_false(nn.is_anomaly_enabled())
    local x = nn.tensor{ 1, -1 }:requires_grad()
    local y = x:log()
    assert.is_true(y[2] ~= y[2])
    local z = nn.zeros(2) / nn.zeros(2)
    assert.is_true(z[1] ~= z[1])
    assert.equals(math.huge, nn.tensor{ 1000 }:exp()[1])
    local w = nn.tensor{ 0 }:requires_grad()
    w:sqrt():sum():backward()
    assert.equals(math.huge, w.grad[1])
  end)

  it("returns the previous setting and reports the current one", function()
    assert.is_false(nn.detect_anomaly(true))
    assert.is_true(nn.is_anomaly_enabled())
    assert.is_true(nn.detect_anomaly(false))
    assert.is_false(nn.is_anomaly_enabled())
    assert.matches("bad argument #1 to 'detect_anomaly' %(boolean or function expected, got string%)",
      error_of(function() nn.detect_anomaly("yes") end))
  end)

  it("names the op whose forward made a NaN: log of a negative number", function()
    nn.detect_anomaly(true)
    local x = nn.tensor{ 1, -1, 2 }:requires_grad()
    assert.matches("detect_anomaly: NaN produced by LogBackward's forward %(log%): element %[2%] of a tensor of size %[3%]",
      error_of(function() return x:log() end))
    -- without a graph there is no node to name, only the op
    assert.matches("detect_anomaly: NaN produced by log: element %[2%]",
      error_of(function() return nn.tensor{ 1, -1, 2 }:log() end))
  end)

  it("catches 0/0 and an overflowing exp, with the position of the first bad element", function()
    nn.detect_anomaly(true)
    local z = nn.zeros(2, 3):requires_grad()
    assert.matches("NaN produced by DivBackward's forward %(div%): element %[1,1%] of a tensor of size %[2,3%]",
      error_of(function() return z / z end))
    local x = nn.tensor{ { 1, 2 }, { 3, 100 } }:requires_grad()
    assert.matches("Inf produced by ExpBackward's forward %(exp%): element %[2,2%] of a tensor of size %[2,2%]",
      error_of(function() return x:exp() end))
    assert.matches("%-Inf produced by log: the value of a 0%-d tensor",
      error_of(function() return nn.tensor(0):log() end))
  end)

  it("names layer ops called through modules", function()
    nn.detect_anomaly(true)
    local m = nn.Linear(2, 2)
    nn.no_grad(function() m.weight:fill_(1e38) end)
    assert.matches("Inf produced by LinearBackward's forward %(linear%)",
      error_of(function() return m(nn.full({ 1, 2 }, 1e38)) end))
  end)

  it("names the node whose backward made a NaN or Inf, and which input's gradient", function()
    nn.detect_anomaly(true)
    local x = nn.tensor{ 4, 0 }:requires_grad()
    local y = x:sqrt():sum() -- forward is finite; d sqrt(x)/dx = 1 / (2 sqrt(x)) is Inf at 0
    assert.matches("detect_anomaly: Inf in the gradient computed by SqrtBackward %(input 1%): element %[2%] of a tensor of size %[2%]",
      error_of(function() y:backward() end))
    -- d(a^b)/db = a^b log(a): 0 * -Inf at a = 0
    local b = nn.tensor{ 0.5 }:requires_grad()
    local p = (nn.tensor{ 0 } ^ b):sum()
    assert.matches("NaN in the gradient computed by PowBackward %(input 2%)",
      error_of(function() p:backward() end))
  end)

  it("says when the NaN was already in an argument (written in place, or made before it was on)", function()
    local x = nn.tensor{ 1, 2 }
    x:mul_(1 / 0) -- in place: no new tensor, so not checked here
    nn.detect_anomaly(true)
    assert.matches("Inf produced by add: element %[1%] of a tensor of size %[2%] %(but argument 1 already held Inf",
      error_of(function() return x + 1 end))
  end)

  it("leaves data alone: constructors, views and .grad are not ops producing values", function()
    nn.detect_anomaly(true)
    local x = nn.tensor{ 0 / 0, 1 }     -- user data coming in
    local v = x:view(2, 1):narrow(1, 1, 1) -- views show values already there
    assert.is_true(v[1][1] ~= v[1][1])
    local f = nn.full({ 2 }, math.huge)
    assert.equals(math.huge, f[1])
    assert.equals(3, (nn.tensor{ 1, 2 } + 0):sum():item()) -- finite results pass
  end)

  it("runs a function with the checks on and restores the setting, errors included", function()
    assert.matches("NaN produced by log",
      error_of(function() nn.detect_anomaly(function() return nn.tensor{ -1 }:log() end) end))
    assert.is_false(nn.is_anomaly_enabled())
    local a, b = nn.detect_anomaly(function(u, w) return u + w, "done" end, nn.ones(1), nn.ones(1))
    assert.equals(2, a[1])
    assert.equals("done", b)
    assert.is_false(nn.is_anomaly_enabled())
  end)

  it("does not change finite results, forward or backward", function()
    nn.manual_seed(1)
    local function run()
      local w = nn.randn(4, 3):requires_grad()
      local loss = nn.F.cross_entropy(nn.matmul(nn.randn(5, 4), w), nn.tensor({ 1, 2, 3, 1, 2 }, "int64"))
      loss:backward()
      return loss:item(), w.grad:totable()
    end
    nn.manual_seed(7)
    local l1, g1 = run()
    nn.detect_anomaly(true)
    nn.manual_seed(7)
    local l2, g2 = run()
    assert.equals(l1, l2)
    assert.same(g1, g2)
  end)
end)

-- ---- training scripts stop on a NaN loss ----

local run = require("helpers.proc").run

local have = require("helpers.proc").exists

describe("examples/mnist_mlp.lua on a diverging run", function()
  it("stops when the loss becomes NaN and keeps the last good checkpoint", function()
    if not have(BIN) then return pending("no nnlua executable at " .. BIN) end
    if not have("data/mnist/train-images-idx3-ubyte.gz") then return pending("data/mnist is absent (scripts/get-data)") end
    local dir = os.tmpname()
    os.remove(dir)
    local ckpt = dir .. "/run/ckpt.safetensors"
    -- SGD with lr 1e30: step 1 sends the weights to ~1e30, the next forward overflows
    local _, err, code = run(q(BIN) .. " examples/mnist_mlp.lua --epochs 3 --limit 1000 --optim sgd --lr 1e30 "
      .. "--checkpoint-every 1 --no-save --checkpoint " .. q(ckpt))
    assert.equals(3, code, err)
    local what, epoch, step, path = err:match("loss became (%a+) at epoch (%d+) step (%d+); last good checkpoint: (%S+)")
    assert.is_truthy(what, err)
    assert.is_true(what == "NaN" or what == "Inf")
    assert.equals("1", epoch)
    assert.is_true(tonumber(step) >= 2)
    assert.equals(ckpt, path)
    -- the file is the state after the last step whose loss was finite: complete, finite, loadable
    local sd, meta = nn.load(ckpt)
    assert.same({ 200, 784 }, sd["1.weight"]:size())
    assert.equals("every 1 steps", meta.saved)
    assert.equals(tonumber(step) - 1, tonumber(meta.step))
    for k, t in pairs(sd) do
      assert.equals(0, (t * 0):sum():item(), k .. " holds a NaN or Inf")
    end
    local model = nn.Sequential{ nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10) }
    model:load_state_dict(sd)
    -- no checkpoint asked for: the message says so
    _, err, code = run(q(BIN) .. " examples/mnist_mlp.lua --epochs 1 --limit 500 --optim sgd --lr 1e30 --no-save")
    assert.equals(3, code, err)
    assert.matches("loss became %a+ at epoch 1 step %d+; last good checkpoint: none %(%-%-no%-save%)", err)
    os.execute("rm -rf " .. q(dir))
  end)
end)
