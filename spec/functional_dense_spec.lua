-- functional_dense_spec.lua — nn.F's dense ops and the optimizer steps of nn._C: values and
-- gradients against PyTorch (spec/fixtures/dense.safetensors, made by scripts/fixtures/dense.py),
-- numeric gradient checks, error messages.
local nn = require "nnlua"

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "spec"
package.path = here .. "/?.lua;" .. package.path
local safetensors = require "helpers.safetensors"
local fx = safetensors.load(here .. "/fixtures/dense.safetensors")

local F = nn.F

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- Largest |a - b| relative to the size of the reference (with a floor of 1).
local function assert_close(got, want, tol, what)
  assert(got ~= nil, what .. ": got nil")
  assert.are.equal(shape_str(want), shape_str(got), what .. ": shape")
  if want:numel() == 0 then return end
  local diff = (got:float() - want:float()):abs():max():item()
  local scale = math.max(1, want:float():abs():max():item())
  assert(diff <= tol * scale, string.format("%s: max difference %.3g (tolerance %.3g)", what,
    diff, tol * scale))
end

local function fixture(name, key)
  local t = fx[name .. "." .. key]
  assert(t, "fixture " .. name .. "." .. key .. " is missing: run scripts/fixtures/dense.py")
  return t
end

-- Cases stored by scripts/fixtures/dense.py: inputs, the op (with the same options), and the
-- inputs whose gradients PyTorch saved. Options and dims here are Lua's (1-based).
local cases = {
  { "linear", { "x", "w", "b" }, function(c) return F.linear(c.x, c.w, c.b) end },
  { "linear3d", { "x", "w" }, function(c) return F.linear(c.x, c.w) end },
  { "linear1d", { "x", "w", "b" }, function(c) return F.linear(c.x, c.w, c.b) end },
  { "relu", { "x" }, function(c) return F.relu(c.x) end },
  { "leaky_relu", { "x" }, function(c) return F.leaky_relu(c.x, 0.2) end },
  { "sigmoid", { "x" }, function(c) return F.sigmoid(c.x) end },
  { "tanh", { "x" }, function(c) return F.tanh(c.x) end },
  { "gelu", { "x" }, function(c) return F.gelu(c.x) end },
  { "gelu_tanh", { "x" }, function(c) return F.gelu(c.x, { approximate = "tanh" }) end },
  { "softmax_last", { "x" }, function(c) return F.softmax(c.x) end },
  { "softmax_d1", { "x" }, function(c) return F.softmax(c.x, 1) end },
  { "log_softmax_last", { "x" }, function(c) return F.log_softmax(c.x, -1) end },
  { "log_softmax_d2", { "x" }, function(c) return F.log_softmax(c.x, 2) end },
  { "ce_mean", { "x" }, function(c) return F.cross_entropy(c.x, c.labels) end },
  { "ce_sum", { "x" }, function(c) return F.cross_entropy(c.x, c.labels, { reduction = "sum" }) end },
  { "ce_none", { "x" }, function(c) return F.cross_entropy(c.x, c.labels, { reduction = "none" }) end },
  { "ce_weight", { "x" }, function(c) return F.cross_entropy(c.x, c.labels, { weight = c.weight }) end },
  { "ce_ignore", { "x" }, function(c)
    return F.cross_entropy(c.x, c.labels, { ignore_index = 3, reduction = "sum" })
  end },
  { "ce_default_ignore", { "x" }, function(c) return F.cross_entropy(c.x, c.labels) end },
  { "ce_smooth", { "x" }, function(c) return F.cross_entropy(c.x, c.labels, { label_smoothing = 0.1 }) end },
  { "ce_smooth_weight_ignore", { "x" }, function(c)
    return F.cross_entropy(c.x, c.labels, { label_smoothing = 0.2, weight = c.weight, ignore_index = 3 })
  end },
  { "ce_spatial", { "x" }, function(c) return F.cross_entropy(c.x, c.labels) end },
  { "ce_spatial_none", { "x" }, function(c) return F.cross_entropy(c.x, c.labels, { reduction = "none" }) end },
  { "ce_1d", { "x" }, function(c) return F.cross_entropy(c.x, c.labels) end },
  { "nll_mean", { "x" }, function(c) return F.nll_loss(c.x, c.labels) end },
  { "nll_weight_none", { "x" }, function(c)
    return F.nll_loss(c.x, c.labels, { weight = c.weight, reduction = "none" })
  end },
  { "nll_ignore_sum", { "x" }, function(c)
    return F.nll_loss(c.x, c.labels, { ignore_index = 2, reduction = "sum" })
  end },
  { "mse_mean", { "x", "t" }, function(c) return F.mse_loss(c.x, c.t) end },
  { "mse_sum", { "x", "t" }, function(c) return F.mse_loss(c.x, c.t, { reduction = "sum" }) end },
  { "mse_none", { "x", "t" }, function(c) return F.mse_loss(c.x, c.t, { reduction = "none" }) end },
  { "bce_mean", { "x", "t" }, function(c) return F.binary_cross_entropy_with_logits(c.x, c.t) end },
  { "bce_none_weight", { "x", "t" }, function(c)
    return F.binary_cross_entropy_with_logits(c.x, c.t, { weight = c.weight, reduction = "none" })
  end },
  { "bce_pos_weight_sum", { "x", "t" }, function(c)
    return F.binary_cross_entropy_with_logits(c.x, c.t, { pos_weight = c.pos_weight, reduction = "sum" })
  end },
  { "bce_both", { "x", "t" }, function(c)
    return F.binary_cross_entropy_with_logits(c.x, c.t, { weight = c.weight, pos_weight = c.pos_weight })
  end },
  { "embedding", { "w" }, function(c) return F.embedding(c.idx, c.w) end },
  { "embedding_pad", { "w" }, function(c) return F.embedding(c.idx, c.w, { padding_idx = 2 }) end },
}

describe("nn.F dense ops against PyTorch", function()
  for _, case in ipairs(cases) do
    local name, grads, fn = case[1], case[2], case[3]
    it(name .. ": forward and backward", function()
      local c = {}
      for key, t in pairs(fx) do
        local field = key:match("^" .. name:gsub("%p", "%%%0") .. "%.([%w_]+)$")
        if field then c[field] = t:clone() end
      end
      for _, g in ipairs(grads) do c[g]:requires_grad() end
      local out = fn(c)
      assert_close(out, fixture(name, "out"), 1e-5, name .. " forward")
      assert.is_not_nil(out.grad_fn, name .. " records a node")
      ;(out * fixture(name, "gy")):sum():backward()
      for _, g in ipairs(grads) do
        assert_close(c[g].grad, fixture(name, "g" .. g), 1e-5, name .. " d/d" .. g)
      end
    end)
  end
end)

-- Random float32 input, away from 0 by at least `gap` (kinks of relu-like functions).
local function randn_away(gap, ...)
  local x = nn.randn(...)
  return (x + x:sign() * gap):requires_grad()
end

local function check(fn, inputs, opts)
  local ok, err, msg = nn.gradcheck(fn, inputs, opts)
  assert(ok, msg or ("max error " .. tostring(err)))
end

describe("nn.F dense ops: numeric gradient checks", function()
  before_each(function() nn.manual_seed(3) end)

  it("linear (2-D, 3-D and without bias)", function()
    check(F.linear, { nn.randn(4, 3):requires_grad(), nn.randn(2, 3):requires_grad(), nn.randn(2):requires_grad() })
    check(F.linear, { nn.randn(2, 3, 4):requires_grad(), nn.randn(5, 4):requires_grad() })
  end)

  it("activations", function()
    for _, f in ipairs { F.relu, F.sigmoid, F.tanh, F.gelu } do check(f, { randn_away(0.05, 3, 4) }) end
    check(function(x) return F.leaky_relu(x, 0.1) end, { randn_away(0.05, 3, 4) })
    check(function(x) return F.gelu(x, "tanh") end, { randn_away(0.05, 3, 4) })
  end)

  it("softmax and log_softmax along each dim", function()
    for d = 1, 3 do
      check(function(x) return F.softmax(x, d) end, { nn.randn(2, 3, 4):requires_grad() })
      check(function(x) return F.log_softmax(x, d) end, { nn.randn(2, 3, 4):requires_grad() })
    end
  end)

  it("cross_entropy and nll_loss with options", function()
    local labels = nn.tensor({ 1, 3, -100, 2, 3 }, "int64")
    local w = nn.rand(4) + 0.5
    check(function(x) return F.cross_entropy(x, labels) end, { nn.randn(5, 4):requires_grad() })
    check(function(x)
      return F.cross_entropy(x, labels, { weight = w, label_smoothing = 0.15, reduction = "none" })
    end, { nn.randn(5, 4):requires_grad() })
    local sp = nn.tensor({ { 1, 2, 3 }, { 3, 1, 2 } }, "int64")
    check(function(x) return F.cross_entropy(x, sp, { reduction = "sum" }) end, { nn.randn(2, 3, 3):requires_grad() })
    check(function(x) return F.nll_loss(x, labels, { weight = w }) end, { nn.randn(5, 4):requires_grad() })
  end)

  it("mse_loss and binary_cross_entropy_with_logits (both arguments)", function()
    check(F.mse_loss, { nn.randn(3, 4):requires_grad(), nn.randn(3, 4):requires_grad() })
    local pw, w = nn.rand(4) * 2, nn.rand(3, 1) + 0.5
    check(function(x, t)
      return F.binary_cross_entropy_with_logits(x, t, { weight = w, pos_weight = pw })
    end, { nn.randn(3, 4):requires_grad(), nn.rand(3, 4):requires_grad() })
  end)

  it("dropout and dropout2d with a fixed seed", function()
    check(function(x) nn.manual_seed(11) return F.dropout(x, 0.4) end, { nn.randn(5, 6):requires_grad() })
    check(function(x) nn.manual_seed(11) return F.dropout2d(x, 0.5) end, { nn.randn(2, 3, 2, 2):requires_grad() })
  end)

  it("embedding (into the weight) and flatten", function()
    local idx = nn.tensor({ { 1, 4, 4 }, { 2, 1, 5 } }, "int64")
    -- (no padding_idx here: the padding row gets no gradient by design, unlike the numeric one)
    check(function(w) return F.embedding(idx, w) end, { nn.randn(5, 3):requires_grad() })
    check(function(x) return F.flatten(x) end, { nn.randn(2, 3, 2):requires_grad() })
  end)

  it("catches a wrong backward", function()
    -- x * x:detach() has analytic gradient x, but the function is x^2 (gradient 2x)
    local ok, err, msg = nn.gradcheck(function(x) return x * x:detach() end, { randn_away(0.5, 4) })
    assert.is_false(ok)
    assert.is_true(err > 1)
    assert.matches("analytic .* vs numeric", msg)
    -- a weight cut out of the graph: its analytic gradient is missing
    ok = nn.gradcheck(function(x, w) return F.linear(x, w:detach()) end,
      { nn.randn(3, 2):requires_grad(), nn.randn(2, 2):requires_grad() })
    assert.is_false(ok)
  end)
end)

describe("nn.F dense ops: behaviour", function()
  it("linear is one node and only computes the gradients that are needed", function()
    local x, w, b = nn.randn(4, 3), nn.randn(2, 3):requires_grad(), nn.randn(2)
    local y = F.linear(x, w, b)
    assert.are.equal("LinearBackward", y.grad_fn)
    y:sum():backward()
    assert.is_nil(x.grad)
    assert.is_nil(b.grad)
    assert_close(w.grad, x:sum(1):view(1, 3):expand(2, 3), 1e-5, "dW of a sum")
    local x2 = nn.randn(4, 3):requires_grad()
    F.linear(x2, nn.randn(2, 3)):sum():backward()
    assert.are.equal("[4,3]", shape_str(x2.grad))
    assert.is_nil(F.linear(nn.randn(4, 3), nn.randn(2, 3)).grad_fn)
    nn.no_grad(function() assert.is_nil(F.linear(x2, w).grad_fn) end)
  end)

  it("linear with no outputs or no inputs has zero gradients (not leftover memory)", function()
    for _ = 1, 10 do local _ <close> = nn.full({ 2, 3 }, 777) end -- dirty the storage cache
    local x, w = nn.full({ 2, 3 }, 1):requires_grad(), nn.randn(0, 3):requires_grad()
    F.linear(x, w):sum():backward()
    assert.are.equal(0, x.grad:abs():sum():item())
    local x0, w0, b0 = nn.ones(4, 0):requires_grad(), nn.ones(2, 0):requires_grad(), nn.zeros(2):requires_grad()
    F.linear(x0, w0, b0):sum():backward()
    assert.are.same({ 4, 4 }, b0.grad:totable())
    assert.are.same({ 2, 0 }, w0.grad:size())
  end)

  it("relu's gradient passes through NaN as PyTorch's threshold_backward", function()
    for _, relu in ipairs{ F.relu, function(t) return t:relu() end } do
      local x = nn.tensor{ 0 / 0, -1, 2, 0 }:requires_grad()
      relu(x):sum():backward()
      assert.are.same({ 1, 0, 1, 0 }, x.grad:totable())
    end
  end)

  it("relu keeps NaN and -0 as torch.relu", function()
    local y = F.relu(nn.tensor{ 0 / 0, -0.0, -1, 2 })
    assert.is_true(y[1] ~= y[1])
    assert.are.equal(-math.huge, 1 / y[2]) -- -0 stays -0
    assert.are.same({ 0, 2 }, { y[3], y[4] })
  end)

  it("linear_relu: relu(linear) fused without a graph, the two nodes with one", function()
    -- 300 x 300 -> 200: our kernel's path (two K blocks, a 16-column tail); 3 x 5 -> 4: cblas
    for _, sz in ipairs{ { 300, 300, 200 }, { 3, 5, 4 }, { 2, 3, 7 } } do
      local x, w, b = nn.randn(sz[1], sz[2]), nn.randn(sz[3], sz[2]), nn.randn(sz[3])
      x[1][1] = 0 / 0 -- a NaN row stays NaN
      local xw = nn.matmul(x, w:t()) -- the reference adds bias and ReLU separately
      for _, bias in ipairs{ b, false } do
        local got = nn.no_grad(function() return F.linear_relu(x, w, bias or nil) end)
        local ref = F.relu(bias and xw + b or xw)
        assert.is_true(got[1][1] ~= got[1][1], "NaN row")
        assert_close(got:narrow(1, 2, sz[1] - 1), ref:narrow(1, 2, sz[1] - 1), 1e-5, "linear_relu")
        assert.are.equal(0, got:narrow(1, 2, sz[1] - 1):lt(0):long():sum():item())
      end
    end
    local x, w, b = nn.randn(6, 5), nn.randn(4, 5):requires_grad(), nn.randn(4):requires_grad()
    local y = F.linear_relu(x, w, b)
    assert.are.equal("ReluBackward", y.grad_fn)
    y:sum():backward()
    local w2, b2 = w:detach():requires_grad(), b:detach():requires_grad()
    F.relu(F.linear(x, w2, b2)):sum():backward()
    assert_close(w.grad, w2.grad, 1e-6, "dW through linear_relu")
    assert_close(b.grad, b2.grad, 1e-6, "db through linear_relu")
    assert.has_error(function() F.linear_relu(nn.randn(2, 3), nn.randn(4, 5)) end,
      "linear: input [2,3] has 3 features but weight is [4,5] (expects 5)")
  end)

  it("linear takes non-contiguous inputs", function()
    local x, w = nn.randn(3, 4), nn.randn(5, 3)
    assert_close(F.linear(x:t(), w), nn.matmul(x:t(), w:t()), 1e-5, "linear(x^T)")
    assert_close(F.linear(x:t(), w:t():contiguous():t()), nn.matmul(x:t(), w:t()), 1e-5, "strided w")
  end)

  it("cross_entropy ignores labels equal to ignore_index", function()
    local x = nn.randn(3, 4)
    local a = F.cross_entropy(x, nn.tensor({ 2, 0, 4 }, "int64"), { ignore_index = 0, reduction = "none" })
    assert.are.equal(0, a[2])
    local all = F.cross_entropy(x, nn.tensor({ -100, -100, -100 }, "int64"))
    assert.is_true(all:item() ~= all:item()) -- 0 / 0, as PyTorch
  end)

  it("dropout: identity in eval or with p = 0, inverted scaling in training", function()
    local x = nn.rand(100, 100) + 1
    assert.are.equal(x:data_ptr(), F.dropout(x, 0.5, false):data_ptr())
    assert.are.equal(x:data_ptr(), F.dropout(x, 0):data_ptr())
    nn.manual_seed(5)
    local y = F.dropout(x, 0.3)
    local kept = y:ne(0):float()
    local frac = kept:mean():item()
    assert.is_true(math.abs(frac - 0.7) < 0.03, "kept fraction " .. frac)
    assert_close(y, x * kept / 0.7, 1e-6, "kept values scaled by 1/(1-p)")
    nn.manual_seed(5)
    assert_close(F.dropout(x, 0.3), y, 0, "same seed, same mask")
    assert.are.equal(0, F.dropout(x, 1):abs():sum():item())
    local z = F.dropout2d(nn.ones(4, 8, 3, 3), 0.5)
    local per_channel = z:view(32, 9)
    for i = 1, 32 do
      local s = per_channel[i]:sum():item()
      assert.is_true(s == 0 or math.abs(s - 18) < 1e-4, "whole channels dropped")
    end
  end)

  it("flatten: torch.flatten semantics with 1-based dims, a view when contiguous", function()
    local x = nn.randn(2, 3, 4)
    assert.are.equal("[2,12]", shape_str(F.flatten(x)))
    assert.are.equal("[24]", shape_str(F.flatten(x, 1)))
    assert.are.equal("[6,4]", shape_str(F.flatten(x, 1, 2)))
    assert.are.equal("[2,3,4]", shape_str(F.flatten(x, -1)))
    assert.are.equal(x:data_ptr(), F.flatten(x):data_ptr())
    assert.are.equal("[1]", shape_str(F.flatten(nn.tensor(3))))
    assert.are.equal("[6]", shape_str(F.flatten(nn.randn(6))))
  end)

  it("embedding: output shape and padding row without gradient", function()
    local w = nn.randn(5, 3):requires_grad()
    local idx = nn.tensor({ { 1, 2 }, { 2, 5 }, { 5, 5 } }, "int64")
    local y = F.embedding(idx, w, { padding_idx = -1 })
    assert.are.equal("[3,2,3]", shape_str(y))
    assert_close(y[2][2], w:detach()[5], 0, "row 5")
    y:sum():backward()
    assert.are.same({ 1, 1, 1 }, w.grad[1]:totable())
    assert.are.same({ 2, 2, 2 }, w.grad[2]:totable())
    assert.are.same({ 0, 0, 0 }, w.grad[5]:totable())
  end)
end)

describe("nn.F dense ops: a small training loop", function()
  it("learns and leaves no tensor memory behind", function()
    nn.manual_seed(1)
    local w1, b1 = (nn.randn(16, 8) * 0.3):requires_grad(), nn.zeros(16):requires_grad()
    local w2, b2 = (nn.randn(4, 16) * 0.3):requires_grad(), nn.zeros(4):requires_grad()
    local emb = nn.randn(10, 8):requires_grad()
    local params = { w1, b1, w2, b2, emb }
    local bufs = {}
    for i, p in ipairs(params) do bufs[i] = nn.zeros_like(p) end
    local ids, labels = {}, {}
    for i = 1, 32 do ids[i], labels[i] = (i * 7) % 10 + 1, (i * 7) % 10 % 4 + 1 end
    local idx, y = nn.tensor(ids, "int64"), nn.tensor(labels, "int64") -- learnable: y = f(idx)
    local function step(k)
      local h = F.dropout(F.gelu(F.linear(F.embedding(idx, emb), w1, b1)), 0.1)
      local loss = F.cross_entropy(F.linear(h, w2, b2), y)
      loss:backward()
      for i, p in ipairs(params) do
        nn._C.sgd_step(p, p.grad, bufs[i], { lr = 0.5, momentum = 0.9, first_step = k == 1 })
        p.grad:mul_(0)
      end
      return loss:item()
    end
    local first = step(1)
    collectgarbage()
    collectgarbage()
    local before = nn.memory_allocated()
    local last
    for k = 2, 200 do last = step(k) end
    collectgarbage()
    collectgarbage()
    assert.is_true(last < first * 0.2, string.format("loss %.4f -> %.4f", first, last))
    assert.are.equal(before, nn.memory_allocated())
  end)
end)

describe("nn.F dense ops: error messages", function()
  local function err_of(f, ...)
    local ok, e = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return tostring(e)
  end
  local x = nn.randn(4, 5)

  it("linear names the shapes", function()
    assert.matches("linear: input %[32,784%] has 784 features but weight is %[200,100%]",
      err_of(F.linear, nn.randn(32, 784), nn.randn(200, 100)))
    assert.matches("linear: bias has size %[3%] but weight is %[2,5%]",
      err_of(F.linear, x, nn.randn(2, 5), nn.randn(3)))
    assert.matches("linear: input must be a float32 tensor, got int64",
      err_of(F.linear, nn.tensor({ { 1, 2 } }, "int64"), nn.randn(2, 2)))
  end)

  it("cross_entropy checks labels before computing", function()
    assert.matches("cross_entropy: labels must be an int64 tensor %(1%-based%), got float32",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 2, 3, 4 })))
    assert.matches("cross_entropy: label 6 %(element 2%) is out of range for 5 classes %(expected 1 to 5%)",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 6, 3, 4 }, "int64")))
    assert.matches("label 0 %(element 1%) is out of range for 5 classes",
      err_of(F.cross_entropy, x, nn.tensor({ 0, 1, 3, 4 }, "int64")))
    assert.matches("cross_entropy: labels have size %[3%] but input %[4,5%] needs labels of size %[4%]",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 2, 3 }, "int64")))
    assert.matches("cross_entropy: weight must have size %[5%]",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 2, 3, 4 }, "int64"), { weight = nn.ones(3) }))
    assert.matches("cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 2, 3, 4 }, "int64"), { reduction = "avg" }))
    assert.matches("cross_entropy: unknown option 'ignore_idx'",
      err_of(F.cross_entropy, x, nn.tensor({ 1, 2, 3, 4 }, "int64"), { ignore_idx = 1 }))
    assert.matches("nll_loss: label 9", err_of(F.nll_loss, x, nn.tensor({ 9, 2, 3, 4 }, "int64")))
  end)

  it("other ops", function()
    assert.matches("mse_loss: input %[4,5%] and target %[5%] must have the same size",
      err_of(F.mse_loss, x, nn.randn(5)))
    assert.matches("binary_cross_entropy_with_logits: pos_weight must have size %[5%]",
      err_of(F.binary_cross_entropy_with_logits, x, nn.rand(4, 5), { pos_weight = nn.ones(4) }))
    assert.matches("embedding: index 7 %(element 2%) is out of range for 6 embeddings",
      err_of(F.embedding, nn.tensor({ 1, 7 }, "int64"), nn.randn(6, 2)))
    assert.matches("embedding: indices must be an int64 tensor",
      err_of(F.embedding, nn.tensor({ 1, 2 }), nn.randn(6, 2)))
    assert.matches("dropout: probability must be between 0 and 1, got 1.5", err_of(F.dropout, x, 1.5))
    assert.matches("dimension 3 out of range", err_of(F.softmax, x, 3))
    assert.matches("gelu: approximate must be 'none' or 'tanh', got 'fast'", err_of(F.gelu, x, "fast"))
    assert.matches("flatten: end_dim 1 comes before start_dim 2", err_of(F.flatten, nn.randn(2, 3, 4), 2, 1))
  end)
end)

describe("nn._C optimizer steps against torch.optim", function()
  -- three steps, state created and carried as the Lua optimizer classes will
  local steppers = {
    sgd_plain = { {}, function(p, g, s, k)
      nn._C.sgd_step(p, g, nil, { lr = 0.1 })
    end },
    sgd_momentum = { { "buf" }, function(p, g, s, k)
      nn._C.sgd_step(p, g, s.buf,
        { lr = 0.1, momentum = 0.9, dampening = 0.1, weight_decay = 0.01, first_step = k == 1 })
    end },
    sgd_nesterov = { { "buf" }, function(p, g, s, k)
      nn._C.sgd_step(p, g, s.buf, { lr = 0.05, momentum = 0.8, nesterov = true, first_step = k == 1 })
    end },
    adam = { { "m", "v" }, function(p, g, s, k)
      nn._C.adam_step(p, g, s.m, s.v, nil, { lr = 0.01, weight_decay = 0.1, step = k })
    end },
    adam_amsgrad = { { "m", "v", "vmax" }, function(p, g, s, k)
      nn._C.adam_step(p, g, s.m, s.v, s.vmax, { lr = 0.01, betas = { 0.8, 0.99 }, step = k })
    end },
    adamw = { { "m", "v" }, function(p, g, s, k)
      nn._C.adamw_step(p, g, s.m, s.v, nil, { lr = 0.01, weight_decay = 0.05, step = k })
    end },
    rmsprop = { { "sq" }, function(p, g, s, k)
      nn._C.rmsprop_step(p, g, s.sq, nil, nil, { lr = 0.01 })
    end },
    rmsprop_centered = { { "sq", "ga", "mb" }, function(p, g, s, k)
      nn._C.rmsprop_step(p, g, s.sq, s.ga, s.mb,
        { lr = 0.01, alpha = 0.9, centered = true, momentum = 0.5, weight_decay = 0.01 })
    end },
  }
  for name, def in pairs(steppers) do
    it(name, function()
      local p = fixture(name, "p0"):clone():requires_grad()
      local state = {}
      for _, k in ipairs(def[1]) do state[k] = nn.zeros_like(p) end
      for k = 1, 3 do
        p.grad = fixture(name, "g" .. k)
        def[2](p, p.grad, state, k)
      end
      assert_close(p:detach(), fixture(name, "out"), 1e-5, name)
    end)
  end

  it("sum_squares and mul_ (clip_grad_norm)", function()
    local x = fixture("sum_squares", "x")
    local s = nn._C.sum_squares(x)
    assert.is_true(math.abs(s - fixture("sum_squares", "out"):item()) < 1e-5 * s)
    assert.are.equal(0, nn._C.sum_squares(nn.zeros(0)))
    local p = nn.randn(3, 2):requires_grad()
    p.grad = nn.ones(3, 2)
    local g = p.grad
    assert.are.equal(g, g:mul_(0.5))
    assert.are.same({ 0.5, 0.5 }, p.grad[1]:totable())
    g:mul_(nn.tensor({ 2, 4 }))
    assert.are.same({ 1, 2 }, p.grad[3]:totable())
    local t = nn.tensor({ 1, 2, 3 })
    t:narrow(1, 2, 2):mul_(10)
    assert.are.same({ 1, 20, 30 }, t:totable())
  end)

  it("checks its arguments", function()
    local p = nn.randn(3, 2):requires_grad()
    local g = nn.randn(3, 2)
    local function err_of(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok, "expected an error")
      return tostring(e)
    end
    assert.matches("sgd_step: option lr is required", err_of(nn._C.sgd_step, p, g, nil, {}))
    assert.matches("sgd_step: buf %(argument 3%) is required when momentum is not 0",
      err_of(nn._C.sgd_step, p, g, nil, { lr = 0.1, momentum = 0.9 }))
    assert.matches("sgd_step: grad has size %[2,3%] but param has size %[3,2%]",
      err_of(nn._C.sgd_step, p, nn.randn(2, 3), nil, { lr = 0.1 }))
    assert.matches("adam_step: exp_avg_sq must be float32, got int64",
      err_of(nn._C.adam_step, p, g, nn.zeros(3, 2), nn.zeros({ 3, 2 }, "int64"), nil, { step = 1 }))
    assert.matches("adam_step: exp_avg must be contiguous",
      err_of(nn._C.adam_step, p, g, nn.zeros(2, 3):t(), nn.zeros(3, 2), nil, { step = 1 }))
    assert.matches("adam_step: step must be an integer >= 1",
      err_of(nn._C.adam_step, p, g, nn.zeros(3, 2), nn.zeros(3, 2), nil, { step = 0 }))
    assert.matches("rmsprop_step: unknown option 'lr_'",
      err_of(nn._C.rmsprop_step, p, g, nn.zeros(3, 2), nil, nil, { lr_ = 1 }))
    assert.matches("mul_: cannot modify a tensor that requires grad in place", err_of(p.mul_, p, 2))
  end)
end)
