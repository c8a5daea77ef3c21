-- gradcheck_spec.lua — numeric gradient checks (central differences) for every differentiable
-- float op of the core, with inputs away from kinks, and proof that a wrong gradient is caught.
local nn = require "nnlua"

nn.manual_seed(2024)
local I = function(t) return nn.tensor(t, "int64") end
local function R(...) return nn.randn(...):requires_grad() end
local function P(...) return (nn.rand(...) + 0.5):requires_grad() end -- positive: log, sqrt, pow base
-- |x| in [0.5, 1.5) with random signs: away from the kinks of abs, relu, maximum...
local function away(...)
  local sign = nn.rand(...):gt(0.5):float() * 2 - 1
  return ((nn.rand(...) + 0.5) * sign):requires_grad()
end
-- distinct values spaced >= 0.3 apart, so max/min/maximum never meet a tie under eps
local function spread(shape, shift)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local v = (nn.randperm(n):float() * 0.3 - 0.15 * n + (shift or 0)):view(shape)
  return v:requires_grad()
end

local function check(fn, inputs)
  local ok, worst, msg = nn.gradcheck(fn, inputs)
  assert(ok, msg or "gradcheck failed")
  assert.is_true(worst <= 1)
  for k, x in ipairs(inputs) do
    if x:is_requires_grad() then assert.is_not_nil(x.grad, "input " .. k .. " got no gradient") end
  end
end

local cases = {
  -- arithmetic, with broadcasting on either side
  {"add", function(a, b) return a + b end, function() return {R(2, 3), R(3)} end},
  {"add number", function(a) return 2 + a end, function() return {R(2, 3)} end},
  {"sub", function(a, b) return a - b end, function() return {R(2, 1), R(1, 3)} end},
  {"sub number first", function(a) return 1 - a end, function() return {R(3)} end},
  {"mul", function(a, b) return a * b end, function() return {R(2, 3), R(2, 3)} end},
  {"mul number", function(a) return a * -3 end, function() return {R(4)} end},
  {"div", function(a, b) return a / b end, function() return {R(2, 3), P(3)} end},
  {"div number", function(a) return a / 4 end, function() return {R(3)} end},
  {"number div", function(a) return 2 / a end, function() return {P(2, 2)} end},
  {"pow tensor^tensor", function(a, b) return a ^ b end, function() return {P(2, 3), R(2, 3)} end},
  {"pow tensor^tensor broadcast", function(a, b) return a:pow(b) end, function() return {P(2, 3), R(1)} end},
  {"pow tensor^number", function(a) return a ^ 3 end, function() return {R(2, 3)} end},
  {"pow tensor^2", function(a) return a ^ 2 end, function() return {R(5)} end},
  {"pow tensor^0.5", function(a) return a ^ 0.5 end, function() return {P(5)} end},
  {"pow number^tensor", function(a) return 2 ^ a end, function() return {R(2, 3)} end},
  {"maximum", function(a, b) return nn.maximum(a, b) end, function() return {spread({2, 3}), spread({2, 3}, 0.1)} end},
  {"maximum number", function(a) return nn.maximum(a, 0.05) end, function() return {spread({2, 3})} end},
  {"minimum", function(a, b) return nn.minimum(a, b) end, function() return {spread({2, 3}), spread({3}, 0.1)} end},
  -- unary math
  {"neg", function(a) return -a end, function() return {R(2, 3)} end},
  {"exp", function(a) return a:exp() end, function() return {R(2, 3)} end},
  {"log", function(a) return a:log() end, function() return {P(2, 3)} end},
  {"sqrt", function(a) return a:sqrt() end, function() return {P(2, 3)} end},
  {"abs", function(a) return a:abs() end, function() return {away(2, 3)} end},
  {"tanh", function(a) return a:tanh() end, function() return {R(2, 3)} end},
  {"sigmoid", function(a) return a:sigmoid() end, function() return {R(2, 3)} end},
  {"relu", function(a) return a:relu() end, function() return {away(2, 3)} end},
  {"clamp", function(a) return a:clamp(-0.3, 0.3) end,
    function() return {nn.tensor{{-1.2, -0.1, 0.2}, {0.9, 0.05, -0.8}}:requires_grad()} end},
  {"clamp min only", function(a) return a:clamp{min = 0} end, function() return {away(6)} end},
  -- selection
  {"where", function(a, b) return nn.where(nn.tensor{{1, 0, 1}, {0, 1, 0}}:byte(), a, b) end,
    function() return {R(2, 3), R(3)} end},
  {"masked_fill", function(a) return a:masked_fill(nn.tensor{1, 0, 1}:byte(), 2) end, function() return {R(2, 3)} end},
  -- reductions: all, dim, dim + keepdim
  {"sum", function(a) return a:sum() end, function() return {R(2, 3)} end},
  {"sum dim", function(a) return a:sum(2) end, function() return {R(2, 3)} end},
  {"sum dim keepdim", function(a) return a:sum(1, true) end, function() return {R(2, 3)} end},
  {"mean", function(a) return a:mean() end, function() return {R(2, 3)} end},
  {"mean dim", function(a) return a:mean(-1) end, function() return {R(2, 3, 2)} end},
  {"mean dim keepdim", function(a) return a:mean(2, true) end, function() return {R(2, 3, 2)} end},
  {"max", function(a) return a:max() end, function() return {spread({2, 3})} end},
  {"max dim", function(a) return (a:max(2)) end, function() return {spread({2, 3})} end},
  {"max dim keepdim", function(a) return (a:max(1, true)) end, function() return {spread({2, 3})} end},
  {"min", function(a) return a:min() end, function() return {spread({2, 3})} end},
  {"min dim", function(a) return (a:min(3)) end, function() return {spread({2, 3, 4})} end},
  {"min dim keepdim", function(a) return (a:min(2, true)) end, function() return {spread({2, 3, 4})} end},
  {"prod", function(a) return a:prod() end, function() return {P(2, 3)} end},
  {"prod dim", function(a) return a:prod(2) end, function() return {P(2, 3)} end},
  {"prod dim keepdim", function(a) return a:prod(1, true) end, function() return {P(2, 3)} end},
  {"std", function(a) return a:std() end, function() return {R(2, 3)} end},
  {"std dim", function(a) return a:std(2) end, function() return {R(2, 4)} end},
  {"std dim keepdim", function(a) return a:std(1, true) end, function() return {R(3, 2)} end},
  {"var", function(a) return a:var() end, function() return {R(2, 3)} end},
  {"var dim", function(a) return a:var(1) end, function() return {R(3, 2)} end},
  {"var dim keepdim", function(a) return a:var(2, true) end, function() return {R(2, 3)} end},
  -- matmul in every rank combination, transposed views, broadcast batches
  {"matmul 2-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 3), R(3, 4)} end},
  {"matmul 1-D @ 1-D", function(a, b) return nn.matmul(a, b) end, function() return {R(3), R(3)} end},
  {"matmul 1-D @ 2-D", function(a, b) return nn.matmul(a, b) end, function() return {R(3), R(3, 2)} end},
  {"matmul 2-D @ 1-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 3), R(3)} end},
  {"matmul 3-D @ 3-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 2, 3), R(2, 3, 2)} end},
  {"matmul 3-D @ 2-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 2, 3), R(3, 2)} end},
  {"matmul 2-D @ 3-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 3), R(2, 3, 2)} end},
  {"matmul 3-D @ 1-D", function(a, b) return nn.matmul(a, b) end, function() return {R(2, 2, 3), R(3)} end},
  {"matmul 1-D @ 3-D", function(a, b) return nn.matmul(a, b) end, function() return {R(3), R(2, 3, 2)} end},
  {"matmul batch 1 @ batch 3", function(a, b) return nn.matmul(a, b) end, function() return {R(1, 2, 3), R(3, 3, 2)} end},
  {"matmul batch 3 @ batch 1", function(a, b) return nn.matmul(a, b) end, function() return {R(3, 2, 3), R(1, 3, 2)} end},
  {"matmul transposed", function(a, b) return nn.matmul(a:t(), b:t()) end, function() return {R(3, 2), R(4, 3)} end},
  {"matmul 3-D permuted", function(a, b) return nn.matmul(a:permute(1, 3, 2), b:permute(2, 1, 3)) end,
    function() return {R(3, 4, 2), R(4, 3, 5)} end},
  {"matmul 3-D strided @ 2-D", function(a, w) return nn.matmul(a:transpose(1, 2), w) end,
    function() return {R(2, 3, 4), R(4, 5)} end},
  -- indexing
  {"index_select", function(a) return a:index_select(1, I{2, 1, 2}) end, function() return {R(2, 3)} end},
  {"index_select dim 2", function(a) return a:index_select(2, I{3, 3}) end, function() return {R(2, 3)} end},
  {"gather", function(a) return a:gather(2, I{{1, 1}, {3, 2}}) end, function() return {R(2, 3)} end},
  {"scatter_add", function(a, s) return a:scatter_add(2, I{{1, 1}, {3, 2}}, s) end, function() return {R(2, 3), R(2, 2)} end},
  {"scatter_add larger src", function(a, s) return a:scatter_add(1, I{{2, 1}}, s) end, function() return {R(2, 3), R(2, 3)} end},
  -- views and copies
  {"view", function(a) return a:view(3, 2) end, function() return {R(2, 3)} end},
  {"view of a strided tensor", function(a) return a:transpose(1, 2):view(3, 2, 2, 2) end, function() return {R(2, 3, 4)} end},
  {"reshape", function(a) return a:t():reshape(6) end, function() return {R(2, 3)} end},
  {"reshape as a view", function(a) return a:narrow(3, 1, 2):reshape(6, 2) end, function() return {R(2, 3, 4)} end},
  {"transpose", function(a) return a:transpose(1, 3) end, function() return {R(2, 3, 2)} end},
  {"permute", function(a) return a:permute(3, 1, 2) end, function() return {R(2, 3, 4)} end},
  {"narrow", function(a) return a:narrow(2, 2, 2) end, function() return {R(2, 3)} end},
  {"select", function(a) return a:select(2, 3) end, function() return {R(2, 3)} end},
  {"index x[i]", function(a) return a[2] end, function() return {R(2, 3)} end},
  {"squeeze", function(a) return a:squeeze() end, function() return {R(2, 1, 3)} end},
  {"squeeze dim", function(a) return a:squeeze(2) end, function() return {R(2, 1, 3)} end},
  {"unsqueeze", function(a) return a:unsqueeze(2) end, function() return {R(2, 3)} end},
  {"expand", function(a) return a:expand(2, 4, 3) end, function() return {R(4, 1)} end},
  {"cat", function(a, b) return nn.cat({a, b}, 2) end, function() return {R(2, 3), R(2, 2)} end},
  {"cat dim 1", function(a, b) return nn.cat({a, b, a}) end, function() return {R(1, 3), R(2, 3)} end},
  {"stack", function(a, b) return nn.stack({a, b}, 2) end, function() return {R(2, 3), R(2, 3)} end},
  {"contiguous", function(a) return a:t():contiguous() end, function() return {R(2, 3)} end},
  {"clone", function(a) return a:clone() end, function() return {R(2, 3)} end},
  {"flatten", function(a) return a:flatten() end, function() return {R(2, 3, 2)} end},
  -- a small network: everything composed
  {"composed", function(x, w, b) return (nn.matmul(x, w) + b):tanh():mean(1) end,
    function() return {R(4, 3), R(3, 2), R(2)} end},
}

describe("gradcheck", function()
  for _, c in ipairs(cases) do
    it(c[1], function() check(c[2], c[3]()) end)
  end

  it("catches a wrong gradient", function()
    -- x * x:detach() has analytic gradient x, but the function's true derivative is 2x
    local x = nn.tensor{0.5, -1, 2}:requires_grad()
    local ok, worst, msg = nn.gradcheck(function(v) return v * v:detach() end, {x})
    assert.is_false(ok)
    assert.is_true(worst > 1)
    assert.matches("gradcheck: input 1 element %d: analytic .* vs numeric .* %(diff", msg)
    -- and with raise = true it is an error
    local ok2, e = pcall(nn.gradcheck, function(v) return v * v:detach() end, {x}, {raise = true})
    assert.is_false(ok2)
    assert.matches("gradcheck: input 1 element", e)
  end)

  it("reports bad arguments", function()
    assert.matches("gradcheck: fn must be a function, got nil", select(2, pcall(nn.gradcheck, nil, {})))
    assert.matches("gradcheck: fn must return a tensor",
      select(2, pcall(nn.gradcheck, function() return 1 end, {R(2)})))
    assert.matches("gradcheck: input 1 must be contiguous",
      select(2, pcall(nn.gradcheck, function(a) return a end, {R(2, 3):t()})))
  end)
end)
