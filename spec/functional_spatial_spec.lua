-- functional_spatial_spec.lua — nn.F's spatial ops (conv2d, max/avg/adaptive pooling, batch_norm):
-- values and gradients against PyTorch (spec/fixtures/spatial.safetensors, made by
-- scripts/fixtures/spatial.py), numeric gradient checks, skipped gradients, error messages.
local nn = require "nnlua"

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "spec"
package.path = here .. "/?.lua;" .. package.path
local safetensors = require "helpers.safetensors"
local fx = safetensors.load(here .. "/fixtures/spatial.safetensors")

local F = nn.F

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- Largest |got - want| relative to the largest |want| (floored at 1e-3, for all-zero references).
local function assert_close(got, want, tol, what)
  assert(got ~= nil, what .. ": got nil")
  assert.are.equal(shape_str(want), shape_str(got), what .. ": shape")
  if want:numel() == 0 then return end
  local diff = (got:float() - want:float()):abs():max():item()
  local scale = math.max(1e-3, want:float():abs():max():item())
  assert(diff <= tol * scale, string.format("%s: max difference %.3g, relative %.3g (tolerance %.3g)",
    what, diff, diff / scale, tol))
end

local function fixture(name, key)
  local t = fx[name .. "." .. key]
  assert(t, "fixture " .. name .. "." .. key .. " is missing: run scripts/fixtures/spatial.py")
  return t
end

-- The tensors stored for one case, as fresh copies: c.x, c.w, ...
local function inputs_of(name)
  local c = {}
  for key, t in pairs(fx) do
    local field = key:match("^" .. name:gsub("%p", "%%%0") .. "%.([%w_]+)$")
    if field then c[field] = t:clone() end
  end
  return c
end

local function bn(c, training, momentum, eps)
  return F.batch_norm(c.x, c.rm, c.rv, c.w, c.b, training, momentum, eps)
end

-- Cases stored by scripts/fixtures/spatial.py: the inputs with gradients, and the op with the
-- same options (Lua's spelling).
local cases = {
  { "conv_basic", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b) end },
  { "conv_stride_pad", { "x", "w", "b" }, function(c)
    return F.conv2d(c.x, c.w, c.b, { stride = { 2, 1 }, padding = { 1, 0 } })
  end },
  { "conv_dilation", { "x", "w", "b" }, function(c)
    return F.conv2d(c.x, c.w, c.b, { dilation = 2, padding = 2 })
  end },
  { "conv_mixed", { "x", "w", "b" }, function(c)
    return F.conv2d(c.x, c.w, c.b, { stride = { 1, 2 }, padding = { 1, 2 }, dilation = { 2, 1 } })
  end },
  { "conv_groups", { "x", "w", "b" }, function(c)
    return F.conv2d(c.x, c.w, c.b, { stride = 2, padding = 1, groups = 2 })
  end },
  { "conv_depthwise", { "x", "w" }, function(c) return F.conv2d(c.x, c.w, nil, { padding = 1, groups = 3 }) end },
  { "conv_1x1", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b) end },
  { "conv_1x1_stride2", { "x", "w" }, function(c) return F.conv2d(c.x, c.w, { stride = 2 }) end },
  { "conv_1x1_groups", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b, { groups = 2 }) end },
  { "conv_course", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b, { padding = 3 }) end },
  { "conv_unbatched", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b, { padding = 1 }) end },
  { "conv_same", { "x", "w", "b" }, function(c) return F.conv2d(c.x, c.w, c.b, { padding = "same" }) end },
  { "conv_valid_big_kernel", { "x", "w", "b" }, function(c)
    return F.conv2d(c.x, c.w, c.b, { padding = "valid" })
  end },
  { "maxpool_2x2", { "x" }, function(c) return F.max_pool2d(c.x, 2) end },
  { "maxpool_odd", { "x" }, function(c) return F.max_pool2d(c.x, 2) end },
  { "maxpool_3s2p1", { "x" }, function(c) return F.max_pool2d(c.x, 3, { stride = 2, padding = 1 }) end },
  { "maxpool_dilation", { "x" }, function(c)
    return F.max_pool2d(c.x, { 3, 2 }, { stride = { 1, 2 }, padding = { 1, 1 }, dilation = { 2, 1 } })
  end },
  { "maxpool_unbatched", { "x" }, function(c) return F.max_pool2d(c.x, 3, { stride = 1 }) end },
  { "avgpool_2", { "x" }, function(c) return F.avg_pool2d(c.x, 2) end },
  { "avgpool_pad_include", { "x" }, function(c) return F.avg_pool2d(c.x, 3, { stride = 2, padding = 1 }) end },
  { "avgpool_pad_exclude", { "x" }, function(c)
    return F.avg_pool2d(c.x, 3, { stride = 2, padding = 1, count_include_pad = false })
  end },
  { "avgpool_divisor", { "x" }, function(c)
    return F.avg_pool2d(c.x, { 3, 2 }, { stride = { 2, 1 }, padding = { 1, 1 }, divisor_override = 5 })
  end },
  { "avgpool_unbatched", { "x" }, function(c) return F.avg_pool2d(c.x, { 2, 3 }) end },
  { "adaptive_1", { "x" }, function(c) return F.adaptive_avg_pool2d(c.x, 1) end },
  { "adaptive_3x2", { "x" }, function(c) return F.adaptive_avg_pool2d(c.x, { 3, 2 }) end },
  { "adaptive_up", { "x" }, function(c) return F.adaptive_avg_pool2d(c.x, { 5, 4 }) end },
  { "adaptive_unbatched", { "x" }, function(c) return F.adaptive_avg_pool2d(c.x, 2) end },
  { "bn_train_2d", { "x", "w", "b" }, function(c) return bn(c, true) end },
  { "bn_train_1d", { "x", "w", "b" }, function(c) return bn(c, true, 0.3, 1e-3) end },
  { "bn_train_3d_nostats", { "x" }, function(c) return bn(c, true) end },
  { "bn_train_noaffine", { "x" }, function(c) return bn(c, true) end },
  { "bn_eval_2d", { "x", "w", "b" }, function(c) return bn(c, false) end },
  { "bn_eval_noaffine", { "x" }, function(c) return bn(c, false) end },
}

describe("nn.F spatial ops against PyTorch", function()
  for _, case in ipairs(cases) do
    local name, grads, fn = case[1], case[2], case[3]
    it(name .. ": forward and backward", function()
      local c = inputs_of(name)
      for _, g in ipairs(grads) do c[g]:requires_grad() end
      local out = fn(c)
      assert_close(out, fixture(name, "out"), 1e-4, name .. " forward")
      assert.is_not_nil(out.grad_fn, name .. " records a node")
      ;(out * fixture(name, "gy")):sum():backward()
      for _, g in ipairs(grads) do
        assert_close(c[g].grad, fixture(name, "g" .. g), 1e-4, name .. " d/d" .. g)
      end
      if c.rm_after then -- training updated the running statistics in place
        assert_close(c.rm, c.rm_after, 1e-4, name .. " running_mean")
        assert_close(c.rv, c.rv_after, 1e-4, name .. " running_var")
      end
    end)
  end

  it("max_pool2d returns PyTorch's indices, 1-based", function()
    for _, name in ipairs { "maxpool_2x2", "maxpool_3s2p1", "maxpool_dilation" } do
      local c = inputs_of(name)
      local opts = ({
        maxpool_2x2 = { 2, {} },
        maxpool_3s2p1 = { 3, { stride = 2, padding = 1 } },
        maxpool_dilation = { { 3, 2 }, { stride = { 1, 2 }, padding = { 1, 1 }, dilation = { 2, 1 } } },
      })[name]
      opts[2].return_indices = true
      local y, ind = F.max_pool2d(c.x, opts[1], opts[2])
      assert_close(y, c.out, 1e-6, name .. " values")
      assert.are.equal("int64", ind:dtype())
      assert.are.same(c.indices:totable(), ind:totable())
    end
  end)
end)

local function check(fn, inputs, opts)
  local ok, err, msg = nn.gradcheck(fn, inputs, opts)
  assert(ok, msg or ("max error " .. tostring(err)))
end

-- Distinct values 0.1 apart in random order: a perturbation of 1e-2 never changes a maximum.
local function spread(...)
  local shape = { ... }
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return (nn.randperm(n):float() * 0.1 - n * 0.05):view(shape):contiguous():requires_grad()
end

describe("nn.F spatial ops: numeric gradient checks", function()
  before_each(function() nn.manual_seed(7) end)

  local function rg(...) return nn.randn(...):requires_grad() end

  it("conv2d: plain, strided and padded, dilated, grouped, 1x1, without bias", function()
    check(F.conv2d, { rg(2, 2, 5, 4), rg(3, 2, 3, 2), rg(3) })
    check(function(x, w, b) return F.conv2d(x, w, b, { stride = { 2, 1 }, padding = { 1, 2 } }) end,
      { rg(2, 2, 5, 5), rg(2, 2, 3, 3), rg(2) })
    check(function(x, w) return F.conv2d(x, w, nil, { dilation = { 2, 1 }, padding = 1 }) end,
      { rg(1, 2, 6, 5), rg(2, 2, 2, 3) })
    check(function(x, w, b) return F.conv2d(x, w, b, { groups = 2, stride = 2 }) end,
      { rg(2, 4, 5, 5), rg(4, 2, 2, 2), rg(4) })
    check(function(x, w) return F.conv2d(x, w) end, { rg(2, 3, 3, 3), rg(2, 3, 1, 1) })
    check(function(x, w, b) return F.conv2d(x, w, b, { padding = 1 }) end, { rg(2, 4, 4), rg(2, 2, 3, 3), rg(2) })
  end)

  it("max_pool2d: 2x2, padded and strided, dilated", function()
    check(function(x) return F.max_pool2d(x, 2) end, { spread(2, 2, 4, 4) })
    check(function(x) return F.max_pool2d(x, 3, { stride = 2, padding = 1 }) end, { spread(1, 2, 5, 6) })
    check(function(x) return F.max_pool2d(x, 2, { stride = 1, dilation = 2 }) end, { spread(1, 1, 5, 5) })
  end)

  it("avg_pool2d (padding counted or not, divisor_override) and adaptive_avg_pool2d", function()
    check(function(x) return F.avg_pool2d(x, 2) end, { rg(2, 2, 4, 5) })
    check(function(x) return F.avg_pool2d(x, 3, { stride = 2, padding = 1 }) end, { rg(1, 2, 5, 5) })
    check(function(x) return F.avg_pool2d(x, 3, { stride = 2, padding = 1, count_include_pad = false }) end,
      { rg(1, 2, 5, 5) })
    check(function(x) return F.avg_pool2d(x, { 2, 3 }, { divisor_override = 4 }) end, { rg(1, 2, 4, 6) })
    check(function(x) return F.adaptive_avg_pool2d(x, { 2, 3 }) end, { rg(2, 2, 5, 7) })
    check(function(x) return F.adaptive_avg_pool2d(x, 4) end, { rg(1, 2, 3, 3) })
  end)

  it("batch_norm: training (x, weight, bias; 2-D and 4-D) and evaluation", function()
    check(function(x, w, b) return F.batch_norm(x, nil, nil, w, b, true) end, { rg(3, 2, 2, 2), rg(2), rg(2) })
    check(function(x, w, b) return F.batch_norm(x, nil, nil, w, b, true, 0.1, 1e-3) end,
      { rg(5, 3), rg(3), rg(3) })
    check(function(x) return F.batch_norm(x, nil, nil, nil, nil, true) end, { rg(4, 3) })
    local rm, rv = nn.randn(2), nn.rand(2) + 0.5
    check(function(x, w, b) return F.batch_norm(x, rm, rv, w, b, false) end, { rg(3, 2, 2, 2), rg(2), rg(2) })
  end)

  it("catches a conv2d whose weight is cut out of the graph", function()
    local ok = nn.gradcheck(function(x, w) return F.conv2d(x, w:detach()) end, { rg(1, 1, 3, 3), rg(1, 1, 2, 2) })
    assert.is_false(ok)
  end)
end)

describe("nn.F spatial ops: behaviour", function()
  it("conv2d is one node and skips dX for an input without requires_grad (first layer)", function()
    local c = inputs_of("conv_course")
    c.w:requires_grad()
    c.b:requires_grad()
    local y = F.conv2d(c.x, c.w, c.b, { padding = 3 })
    assert.are.equal("ConvolutionBackward", y.grad_fn)
    ;(y * c.gy):sum():backward()
    assert.is_nil(c.x.grad)
    assert_close(c.w.grad, c.gw, 1e-4, "dW without dX")
    assert_close(c.b.grad, c.gb, 1e-4, "db without dX")
  end)

  it("conv2d with a frozen weight gives dX only, and nothing at all without grad", function()
    local c = inputs_of("conv_basic")
    c.x:requires_grad()
    F.conv2d(c.x, c.w, c.b):mul(c.gy):sum():backward()
    assert.is_nil(c.w.grad)
    assert.is_nil(c.b.grad)
    assert_close(c.x.grad, c.gx, 1e-4, "dX with a frozen weight")
    assert.is_nil(F.conv2d(c.x:detach(), c.w, c.b).grad_fn)
    nn.no_grad(function() assert.is_nil(F.conv2d(c.x, c.w, c.b).grad_fn) end)
  end)

  it("grad_fn names", function()
    local x = nn.randn(2, 3, 4, 4):requires_grad()
    assert.are.equal("MaxPool2DWithIndicesBackward", F.max_pool2d(x, 2).grad_fn)
    assert.are.equal("AvgPool2DBackward", F.avg_pool2d(x, 2).grad_fn)
    assert.are.equal("AdaptiveAvgPool2DBackward", F.adaptive_avg_pool2d(x, 1).grad_fn)
    assert.are.equal("NativeBatchNormBackward", F.batch_norm(x, nil, nil, nil, nil, true).grad_fn)
  end)

  it("takes non-contiguous inputs and weights", function()
    local x, w = nn.randn(2, 3, 5, 6), nn.randn(4, 3, 3, 3)
    local xt = x:transpose(3, 4):contiguous():transpose(3, 4) -- same values, other strides
    local wt = w:transpose(1, 2):contiguous():transpose(1, 2)
    assert.is_false(xt:is_contiguous())
    assert_close(F.conv2d(xt, wt, nil, { padding = 1 }), F.conv2d(x, w, nil, { padding = 1 }), 1e-6, "strided")
    assert_close(F.max_pool2d(xt, 2), F.max_pool2d(x, 2), 0, "strided max_pool2d")
    assert_close(F.batch_norm(xt, nil, nil, nil, nil, true), F.batch_norm(x, nil, nil, nil, nil, true), 1e-6,
      "strided batch_norm")
  end)

  it("padding = 'same' keeps the size; a 3-D input is a batch of one", function()
    local x, w = nn.randn(2, 3, 7, 8), nn.randn(5, 3, 3, 5)
    assert.are.equal("[2,5,7,8]", shape_str(F.conv2d(x, w, nil, { padding = "same" })))
    assert.are.equal("[2,5,7,8]", shape_str(F.conv2d(x, w, nil, { padding = "same", dilation = 2 })))
    local y3 = F.conv2d(x[1], w, nil, { padding = 1 })
    assert_close(y3, F.conv2d(x, w, nil, { padding = 1 })[1], 1e-6, "unbatched = first image")
  end)

  it("batch_norm: running statistics move only in training, also under no_grad", function()
    local x = nn.randn(8, 3, 2, 2) * 2 + 1
    local rm, rv = nn.zeros(3), nn.ones(3)
    nn.no_grad(function() F.batch_norm(x, rm, rv, nil, nil, true, 0.5) end)
    local mean = x:transpose(1, 2):contiguous():view(3, -1):mean(2)
    assert_close(rm, mean * 0.5, 1e-5, "running_mean after one step")
    local before_m, before_v = rm:clone(), rv:clone()
    local y = F.batch_norm(x, rm, rv, nil, nil, false)
    assert_close(rm, before_m, 0, "eval leaves running_mean")
    assert_close(rv, before_v, 0, "eval leaves running_var")
    local want = (x - rm:view(1, 3, 1, 1)) / (rv:view(1, 3, 1, 1) + 1e-5):sqrt()
    assert_close(y, want, 1e-5, "eval output")
    -- a strided running statistic is updated through a copy
    local stats = nn.zeros(3, 2)
    F.batch_norm(x, stats:select(2, 1), stats:select(2, 2), nil, nil, true, 1.0)
    assert_close(stats:select(2, 1), mean, 1e-5, "strided running_mean")
  end)

  it("the course CNN trains a step through nn modules", function()
    nn.manual_seed(1)
    local model = nn.Sequential {
      nn.Conv2d(1, 8, 7, { padding = 3 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(8 * 14 * 14, 10),
    }
    local x, labels = nn.randn(4, 1, 28, 28), nn.tensor({ 1, 2, 3, 4 }, "int64")
    local loss = F.cross_entropy(model(x), labels)
    loss:backward()
    assert.are.equal("[8,1,7,7]", shape_str(model:parameters()[1].grad))
    assert.is_nil(x.grad)
  end)
end)

describe("nn.F spatial ops: errors", function()
  local function fails(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, tostring(err), 1, true)
  end

  it("conv2d names the arguments and the shapes", function()
    fails("conv2d: input has 3 channels but weight expects 1 (weight [32,1,7,7], groups 1, input [100,3,28,28])",
      F.conv2d, nn.randn(100, 3, 28, 28), nn.randn(32, 1, 7, 7))
    fails("conv2d: kernel 7x7 is larger than the padded input 5x5 (input [1,1,3,3], padding 1x1)",
      F.conv2d, nn.randn(1, 1, 3, 3), nn.randn(2, 1, 7, 7), nil, { padding = 1 })
    fails("conv2d: kernel 3x3 with dilation 3x3 (spanning 7x7) is larger than the padded input 6x6",
      F.conv2d, nn.randn(1, 1, 6, 6), nn.randn(2, 1, 3, 3), nil, { dilation = 3 })
    fails("conv2d: groups (3) must divide both the input channels (4, input [1,4,6,6]) and the output channels (6",
      F.conv2d, nn.randn(1, 4, 6, 6), nn.randn(6, 2, 3, 3), nil, { groups = 3 })
    fails("conv2d: groups (2) must divide both the input channels (4, input [1,4,6,6]) and the output channels (3",
      F.conv2d, nn.randn(1, 4, 6, 6), nn.randn(3, 2, 3, 3), nil, { groups = 2 })
    fails("conv2d: input must be a float32 tensor, got int64", F.conv2d, nn.zeros({ 1, 1, 3, 3 }, "int64"),
      nn.randn(1, 1, 2, 2))
    fails("conv2d: weight must be a float32 tensor, got int64", F.conv2d, nn.randn(1, 1, 3, 3),
      nn.zeros({ 1, 1, 2, 2 }, "int64"))
    fails("conv2d: bias has size [3] but weight [2,1,2,2] needs [2]", F.conv2d, nn.randn(1, 1, 3, 3),
      nn.randn(2, 1, 2, 2), nn.randn(3))
    fails("conv2d: weight must be 4-D [out_channels, in_channels/groups, kh, kw], got [2,4]",
      F.conv2d, nn.randn(1, 1, 3, 3), nn.randn(2, 4))
    fails("conv2d: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got [3,3]", F.conv2d, nn.randn(3, 3),
      nn.randn(1, 1, 2, 2))
    fails("conv2d: stride must be at least 1, got 0x1", F.conv2d, nn.randn(1, 1, 3, 3), nn.randn(1, 1, 2, 2),
      nil, { stride = { 0, 1 } })
    fails("conv2d: padding must be an integer or a pair {h, w} of integers", F.conv2d, nn.randn(1, 1, 3, 3),
      nn.randn(1, 1, 2, 2), nil, { padding = { 1, 2, 3 } })
    fails("conv2d: unknown option 'strides'", F.conv2d, nn.randn(1, 1, 3, 3), nn.randn(1, 1, 2, 2), nil,
      { strides = 2 })
    fails("conv2d: padding = 'same' needs stride 1", F.conv2d, nn.randn(1, 1, 3, 3), nn.randn(1, 1, 3, 3), nil,
      { padding = "same", stride = 2 })
    fails("tensor expected, got no value", F.conv2d, nn.randn(1, 1, 3, 3))
  end)

  it("pools check kernel, padding and dtype", function()
    fails("max_pool2d: padding 2x2 should be at most half the kernel size 3x3", F.max_pool2d,
      nn.randn(1, 1, 6, 6), 3, { padding = 2 })
    fails("avg_pool2d: padding 0x2 should be at most half the kernel size 2x3", F.avg_pool2d,
      nn.randn(1, 1, 6, 6), { 2, 3 }, { padding = { 0, 2 } })
    fails("max_pool2d: kernel 3x3 is larger than the padded input 2x2 (input [1,1,2,2], padding 0x0)",
      F.max_pool2d, nn.randn(1, 1, 2, 2), 3)
    fails("max_pool2d: input must be a float32 tensor, got uint8", F.max_pool2d,
      nn.zeros({ 1, 1, 4, 4 }, "uint8"), 2)
    fails("avg_pool2d: input must be a float32 tensor, got int64", F.avg_pool2d,
      nn.zeros({ 1, 1, 4, 4 }, "int64"), 2)
    fails("adaptive_avg_pool2d: input must be a float32 tensor, got int64", F.adaptive_avg_pool2d,
      nn.zeros({ 1, 1, 4, 4 }, "int64"), 2)
    fails("max_pool2d: ceil_mode = true is not supported", F.max_pool2d, nn.randn(1, 1, 5, 5), 2,
      { ceil_mode = true })
    fails("max_pool2d: kernel size (argument 2) must be an integer or a pair {h, w}, got no value", F.max_pool2d,
      nn.randn(1, 1, 4, 4))
    fails("avg_pool2d: divisor_override must be a positive integer, got 0", F.avg_pool2d,
      nn.randn(1, 1, 4, 4), 2, { divisor_override = 0 })
    fails("adaptive_avg_pool2d: output size must be at least 1x1, got 0x2", F.adaptive_avg_pool2d,
      nn.randn(1, 1, 4, 4), { 0, 2 })
    fails("max_pool2d: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got [4,4]", F.max_pool2d,
      nn.randn(4, 4), 2)
  end)

  it("batch_norm checks training batches, statistics and sizes", function()
    fails("batch_norm: Expected more than 1 value per channel when training, got input size [1,4]",
      F.batch_norm, nn.randn(1, 4), nil, nil, nil, nil, true)
    fails("batch_norm: Expected more than 1 value per channel when training, got input size [1,2,1,1]",
      F.batch_norm, nn.randn(1, 2, 1, 1), nn.zeros(2), nn.ones(2), nil, nil, true)
    fails("batch_norm: running_mean and running_var are needed when not training", F.batch_norm,
      nn.randn(3, 4), nil, nil, nil, nil, false)
    fails("batch_norm: weight has size [3] but input [2,4] has 4 channels (expected [4])", F.batch_norm,
      nn.randn(2, 4), nil, nil, nn.ones(3), nil, true)
    fails("batch_norm: running_var has size [2,2] but input [2,4] has 4 channels", F.batch_norm,
      nn.randn(2, 4), nn.zeros(4), nn.ones(2, 2), nil, nil, true)
    fails("batch_norm: running_mean and running_var must be given together", F.batch_norm,
      nn.randn(2, 4), nn.zeros(4), nil, nil, nil, true)
    fails("batch_norm: input must be a float32 tensor, got int64", F.batch_norm,
      nn.zeros({ 2, 4 }, "int64"), nil, nil, nil, nil, true)
    fails("batch_norm: input must be (N, C, ...) with at least 2 dimensions, got [4]", F.batch_norm,
      nn.randn(4), nil, nil, nil, nil, true)
    fails("batch_norm: training (argument 6) must be a boolean, got number", F.batch_norm,
      nn.randn(2, 4), nil, nil, nil, nil, 1)
  end)
end)
