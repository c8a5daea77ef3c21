-- autograd_spec.lua — reverse-mode autograd from Lua: requires_grad, .grad, grad_fn,
-- backward (scalar and explicit gradient), accumulation, detach, no_grad, retain_graph,
-- broadcasting, and the errors that keep a graph honest.
local nn = require "nnlua"

local function same(t, want, tol)
  local got = t:totable()
  local function rec(g, w)
    if type(w) == "table" then
      assert(#g == #w, "length mismatch")
      for i = 1, #w do rec(g[i], w[i]) end
    else
      assert(math.abs(g - w) <= (tol or 1e-5) * math.max(1, math.abs(w)),
        ("got %s, want %s"):format(tostring(g), tostring(w)))
    end
  end
  rec(got, want)
  return true
end

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

describe("requires_grad and grad_fn", function()
  it("marks leaves; ops on them record named nodes", function()
    local x = nn.tensor{1, 2, 3}
    assert.is_false(x:is_requires_grad())
    assert.are.equal(x, x:requires_grad()) -- returns self
    assert.is_true(x:is_requires_grad())
    assert.is_true(x.is_leaf)
    assert.is_nil(x.grad_fn)
    local names = {
      AddBackward = x + 1, SubBackward = x - x, MulBackward = x * x, DivBackward = x / 2,
      PowBackward = x ^ 2, NegBackward = -x, ExpBackward = x:exp(), LogBackward = x:log(),
      TanhBackward = x:tanh(), SigmoidBackward = x:sigmoid(), ReluBackward = x:relu(),
      ClampBackward = x:clamp(0, 1), SumBackward = x:sum(), MeanBackward = x:mean(),
      MaxBackward = x:max(), ViewBackward = x:view(3, 1), TransposeBackward = x:view(1, 3):t(),
      SelectBackward = x:select(1, 2), NarrowBackward = x:narrow(1, 1, 2),
      ExpandBackward = x:expand(2, 3), CatBackward = nn.cat({x, x}),
      StackBackward = nn.stack({x, x}), MmBackward = nn.matmul(x, x),
      IndexSelectBackward = x:index_select(1, nn.tensor({1}, "int64")),
    }
    for name, t in pairs(names) do
      assert.are.equal(name, t.grad_fn)
      assert.is_true(t:is_requires_grad())
      assert.is_false(t.is_leaf)
    end
  end)

  it("results of ops on tensors that do not require grad record nothing", function()
    local a, b = nn.randn(2, 2), nn.randn(2, 2)
    local c = nn.matmul(a, b):relu():sum()
    assert.is_nil(c.grad_fn)
    assert.is_false(c:is_requires_grad())
    assert.matches("backward: tensor does not require grad and has no grad_fn", errmsg(function() c:backward() end))
  end)

  it("only float32 tensors can require grad", function()
    assert.matches("requires_grad: only float32 tensors can require gradients, got int64",
      errmsg(function() nn.tensor({1, 2}, "int64"):requires_grad() end))
    assert.matches("requires_grad: only float32 tensors can require gradients, got uint8",
      errmsg(function() nn.ones(2, "uint8"):requires_grad() end))
    assert.matches("requires_grad: can only change the flag of leaf tensors",
      errmsg(function() (nn.ones(2):requires_grad() * 2):requires_grad(false) end))
  end)
end)

describe("backward", function()
  it("fills .grad of leaves with the gradient of a scalar", function()
    local x = nn.tensor{1, 2, 3}:requires_grad()
    local w = nn.tensor{{1, 0}, {0, 2}, {1, 1}}:requires_grad()
    local y = nn.matmul(x, w):sum() -- x·(w 1)
    assert.is_nil(x.grad)
    y:backward()
    assert.is_true(same(x.grad, {1, 2, 2}))
    assert.is_true(same(w.grad, {{1, 1}, {2, 2}, {3, 3}}))
    assert.is_nil(y.grad) -- non-leaves keep no .grad
  end)

  it("needs an explicit gradient for a non-scalar, of the same size", function()
    local x = nn.tensor{1, 2, 3}:requires_grad()
    local y = x * x
    assert.matches("backward: grad can be implicitly created only for scalar outputs, got size %[3%]",
      errmsg(function() y:backward() end))
    assert.matches("backward: gradient has size %[2%] but the tensor has size %[3%]",
      errmsg(function() y:backward(nn.ones(2)) end))
    y:backward(nn.tensor{1, 0.5, 0})
    assert.is_true(same(x.grad, {2, 2, 0}))
  end)

  it("accumulates into .grad across backward calls until reset", function()
    local x = nn.tensor{1, 2}:requires_grad()
    ;(x * 3):sum():backward()
    local g = x.grad
    ;(x * x):sum():backward()
    assert.is_true(same(x.grad, {5, 7}))
    assert.is_true(same(g, {5, 7})) -- accumulated in place: optimizers hold the buffer
    x.grad = nil
    ;(x * 3):sum():backward()
    assert.is_true(same(x.grad, {3, 3}))
    x.grad:zero_()
    assert.is_true(same(x.grad, {0, 0}))
  end)

  it("sums the gradients of a tensor used twice", function()
    local x = nn.tensor{1, 2, 3}:requires_grad()
    local y = x * x + x:exp() - x
    y:sum():backward()
    assert.is_true(same(x.grad, {2 + math.exp(1) - 1, 4 + math.exp(2) - 1, 6 + math.exp(3) - 1}))
  end)

  it("sums broadcast gradients back to each operand's shape", function()
    local a = nn.ones(2, 3):requires_grad()
    local b = nn.tensor{1, 2, 3}:requires_grad()
    local c = nn.tensor{{10}, {20}}:requires_grad()
    local s = nn.tensor(2):requires_grad()
    ;((a * b + c) * s):sum():backward()
    assert.are.same({2, 3}, a.grad:size())
    assert.is_true(same(a.grad, {{2, 4, 6}, {2, 4, 6}}))
    assert.are.same({3}, b.grad:size())
    assert.is_true(same(b.grad, {4, 4, 4}))
    assert.are.same({2, 1}, c.grad:size())
    assert.is_true(same(c.grad, {{6}, {6}}))
    assert.are.same({}, s.grad:size())
    assert.is_true(math.abs(s.grad:item() - (6 + 6 + 90)) < 1e-4)
  end)

  it("max and min: a full reduction shares the gradient among ties, as PyTorch", function()
    local x = nn.tensor{{1, 3, 3}, {0, 3, 2}}:requires_grad()
    x:max():backward()
    assert.is_true(same(x.grad, {{0, 1 / 3, 1 / 3}, {0, 1 / 3, 0}}))
    local y = nn.tensor{{1, 3, 3}, {0, 0, 2}}:requires_grad()
    local v, i = y:min(2)
    assert.is_true(same(i:float(), {1, 1}))
    ;(v * nn.tensor{10, 20}):sum():backward() -- along a dim: to the returned index
    assert.is_true(same(y.grad, {{10, 0, 0}, {20, 0, 0}}))
  end)

  it("handles a long chain without recursion limits", function()
    local x = nn.tensor{1, 2}:requires_grad()
    local y = x
    for _ = 1, 20000 do y = y * 1 + 0 end
    y:sum():backward()
    assert.is_true(same(x.grad, {1, 1}))
  end)

  it("sends no gradient to frozen tensors", function()
    local frozen = nn.randn(3, 3)
    local w = nn.randn(3, 3):requires_grad()
    nn.matmul(nn.matmul(nn.randn(2, 3), frozen), w):sum():backward()
    assert.is_nil(frozen.grad)
    assert.are.same({3, 3}, w.grad:size())
  end)
end)

describe("retain_graph", function()
  it("a second backward without it fails clearly", function()
    local x = nn.tensor{1, 2}:requires_grad()
    local y = (x * x):sum()
    y:backward()
    assert.matches("backward: trying to backward through the graph a second time.*retain_graph",
      errmsg(function() y:backward() end))
    assert.is_true(same(x.grad, {2, 4})) -- the failed call added nothing
  end)

  it("with it, backward runs again and the gradients double", function()
    local x = nn.tensor{1, 2}:requires_grad()
    local y = (x * x):exp():sum()
    y:backward({retain_graph = true})
    local once = x.grad:clone()
    y:backward()
    assert.is_true(same(x.grad, (once * 2):totable()))
    local z = (x * 3):sum()
    z:backward(nn.tensor(1), {retain_graph = true})
    z:backward(nn.tensor(1))
  end)
end)

describe("detach and no_grad", function()
  it("detach shares storage but cuts the graph", function()
    local x = nn.tensor{1, 2}:requires_grad()
    local d = x:detach()
    assert.is_false(d:is_requires_grad())
    assert.is_nil(d.grad_fn)
    d[1] = 10 -- allowed on the detached alias; x sees it
    assert.are.equal(10, x[1])
    local y = (x * d):sum() -- d is a constant here
    y:backward()
    assert.is_true(same(x.grad, {10, 2}))
  end)

  it("no_grad runs a function without recording and returns its results", function()
    local x = nn.ones(2):requires_grad()
    local y, extra = nn.no_grad(function(a) return a * 2, "ok" end, x)
    assert.are.equal("ok", extra)
    assert.is_nil(y.grad_fn)
    assert.is_false(y:is_requires_grad())
    assert.is_true(nn.is_grad_enabled())
    assert.is_not_nil((x * 2).grad_fn)
  end)

  it("restores grad mode after an error inside", function()
    local x = nn.ones(2):requires_grad()
    local ok, e = pcall(nn.no_grad, function()
      assert.is_false(nn.is_grad_enabled())
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", e)
    assert.is_true(nn.is_grad_enabled())
    assert.is_not_nil((x * 2).grad_fn)
    nn.set_grad_enabled(false)
    nn.no_grad(function() end)
    assert.is_false(nn.is_grad_enabled()) -- restores the previous mode, not "on"
    nn.set_grad_enabled(true)
  end)

  it("lets an optimizer step update leaves in place", function()
    local w = nn.tensor{1, 2}:requires_grad()
    ;(w * w):sum():backward()
    nn.no_grad(function()
      w:copy_(w - w.grad * 0.5)
      w[1] = w[1] + 0 -- element writes too
    end)
    assert.is_true(same(w, {0, 0}))
    assert.is_true(w:is_requires_grad())
  end)
end)

describe("in-place modification", function()
  it("of a tensor that requires grad is an error while grad mode is on", function()
    local x = nn.tensor{1, 2}:requires_grad()
    local y = x * 2
    local pat = "cannot modify a tensor that requires grad in place"
    assert.matches("index assignment: " .. pat, errmsg(function() x[1] = 5 end))
    assert.matches("set: " .. pat, errmsg(function() x:set(5, 1) end))
    assert.matches("fill_: " .. pat, errmsg(function() x:fill_(0) end))
    assert.matches("zero_: " .. pat, errmsg(function() x:zero_() end))
    assert.matches("copy_: " .. pat, errmsg(function() x:copy_(nn.zeros(2)) end))
    assert.matches("uniform_: " .. pat, errmsg(function() x:uniform_() end))
    assert.matches("normal_: " .. pat, errmsg(function() x:normal_() end))
    assert.matches("index assignment: " .. pat, errmsg(function() y[2] = 0 end))
    assert.matches(pat, errmsg(function() x:view(2, 1)[1][1] = 0 end)) -- views of it too
    assert.is_true(same(x, {1, 2}))
  end)
end)
