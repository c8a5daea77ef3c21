-- examples_spec.lua — the course examples run as a user runs them: gradients.lua must show the three
-- gradients agreeing; mnist_mlp.lua trains one short epoch on data/mnist (when present).
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local run = require("helpers.proc").run -- stdout, stderr, exit code

local function have_bin()
  local f = io.open(BIN)
  if f then f:close() end
  return f ~= nil
end

local function have_mnist()
  local f = io.open("data/mnist/train-images-idx3-ubyte.gz")
  if f then f:close() end
  return f ~= nil
end

describe("examples/gradients.lua", function()
  it("shows analytic, autograd and numeric gradients agreeing", function()
    if not have_bin() then return pending("no nnlua executable at " .. BIN) end
    local out, err, code = run(q(BIN) .. " examples/gradients.lua")
    assert.equals(0, code, err)
    assert.matches("dL/dW = dY^T X", out)
    assert.matches("dL/db = sum_n dY", out)
    assert.matches("dL/dX = dY W", out)
    assert.matches("ReLU rule dX = dY %* %[X > 0%]", out)
    assert.matches("all three agree", out)
    for d in out:gmatch("|analytic %- numeric| = (%S+)") do assert.is_true(tonumber(d) < 1e-4, d) end
  end)

  it("agrees on random inputs too, and explains its flags", function()
    if not have_bin() then return pending("no nnlua executable at " .. BIN) end
    local out, _, code = run(q(BIN) .. " examples/gradients.lua --seed 5 --quiet")
    assert.equals(0, code)
    assert.matches("all three agree", out)
    out, _, code = run(q(BIN) .. " examples/gradients.lua --help")
    assert.equals(0, code)
    assert.matches("usage:", out)
    _, _, code = run(q(BIN) .. " examples/gradients.lua --bogus")
    assert.equals(2, code)
  end)
end)

describe("examples/mnist_mlp.lua", function()
  it("explains its flags", function()
    if not have_bin() then return pending("no nnlua executable at " .. BIN) end
    local out, _, code = run(q(BIN) .. " examples/mnist_mlp.lua --help")
    assert.equals(0, code)
    for _, flag in ipairs({ "--data", "--epochs", "--batch-size", "--lr", "--optim", "--threads", "--seed", "--out", "--json" }) do
      assert.is_truthy(out:find(flag, 1, true), flag)
    end
    local _, err
    _, err, code = run(q(BIN) .. " examples/mnist_mlp.lua --optim rmsprop")
    assert.equals(2, code)
    assert.matches("%-%-optim must be adam or sgd", err)
  end)

  it("trains one epoch on a subset, prints bench JSON, saves weights and a loss plot", function()
    if not have_bin() then return pending("no nnlua executable at " .. BIN) end
    if not have_mnist() then return pending("data/mnist is absent (scripts/get-data)") end
    local out_dir = os.tmpname()
    os.remove(out_dir)
    local out, err, code = run(q(BIN) .. " examples/mnist_mlp.lua --data mnist --epochs 1 --limit 3000 --json --seed 1 --out " .. q(out_dir))
    assert.equals(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equals(1, #lines, "stdout holds only JSON: " .. out)
    local rec = lines[1]
    for _, k in ipairs({ "bench", "impl", "epoch", "train_s", "train_loss", "test_acc", "infer_s", "infer_ips",
                         "peak_rss_mb", "seed" }) do
      assert.matches('"' .. k .. '": ', rec)
    end
    assert.matches('"bench": "mlp", "impl": "nnlua", "epoch": 1,', rec)
    local acc = tonumber(rec:match('"test_acc": ([%d.]+)'))
    assert.is_true(acc > 0.80 and acc <= 1, "test accuracy " .. tostring(acc))
    assert.matches("final test accuracy", err)
    local sd, meta = nn.load(out_dir .. "/model.safetensors")
    assert.same({ 200, 784 }, sd["1.weight"]:size())
    assert.same({ 10 }, sd["3.bias"]:size())
    assert.equals("mnist_mlp", meta.example)
    assert.same({ 3, 500, 800 }, nn.image.load(out_dir .. "/loss.png"):size())
    os.execute("rm -rf " .. q(out_dir))
  end)
end)
