-- tensor_spec.lua — tensors from Lua: creation, shape queries, 1-based indexing, views that
-- share storage, copies, dtypes, printing, arithmetic, math, masks, reductions, matmul,
-- indexing ops and the RNG.
local nn = require "nnlua"

local function close(a, b, tol)
  return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b))
end

-- Every element of t (any shape) equals the nested table want (within tol for floats).
local function same(t, want, tol)
  local got = nn.is_tensor(t) and t:totable() or t
  local function rec(g, w, path)
    if type(w) == "table" then
      assert(type(g) == "table", "expected a table at " .. path .. ", got " .. tostring(g))
      assert(#g == #w, ("length %d vs %d at %s"):format(#g, #w, path))
      for i = 1, #w do rec(g[i], w[i], path .. "[" .. i .. "]") end
    else
      assert(close(g, w, tol), ("%s: got %s, want %s"):format(path, tostring(g), tostring(w)))
    end
  end
  rec(got, want, "t")
  return true
end

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

describe("creation", function()
  it("builds tensors from nested tables, float32 by default", function()
    local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({2, 3}, x:size())
    assert.are.equal("float32", x:dtype())
    assert.is_true(same(x, {{1, 2, 3}, {4, 5, 6}}))
    local y = nn.tensor({1, 2, 3}, "int64")
    assert.are.equal("int64", y:dtype())
    assert.are.equal(3, y[3])
    assert.are.equal(math.type(y[1]), "integer")
    assert.are.equal("uint8", nn.tensor({1, 255}, "uint8"):dtype())
    assert.are.same({0}, nn.tensor{}:size())
    assert.are.same({}, nn.tensor(5):size())
    assert.are.equal(5, nn.tensor(5):item())
  end)

  it("keeps int64 values exact beyond 2^53", function()
    local big = math.maxinteger - 7
    assert.are.equal(big, nn.tensor({big}, "int64")[1])
  end)

  it("rejects ragged and non-numeric nested tables", function()
    assert.matches("ragged nested table: expected 2 elements at depth 2", errmsg(nn.tensor, {{1, 2}, {3}}))
    assert.matches("ragged nested table", errmsg(nn.tensor, {{1, 2}, 3}))
    assert.matches("tensor: element 2 has type string, expected a number", errmsg(nn.tensor, {1, "x"}))
    assert.matches("tensor: element 2 has type table", errmsg(nn.tensor, {1, {2}}))
    assert.matches("bad argument #1 to '[%w.]*tensor' %(table or number expected, got string%)",
      errmsg(nn.tensor, "abc"))
  end)

  it("zeros, ones, full, empty take varargs or a size table and a dtype", function()
    assert.is_true(same(nn.zeros(2, 3), {{0, 0, 0}, {0, 0, 0}}))
    assert.is_true(same(nn.ones({2}), {1, 1}))
    assert.are.equal("int64", nn.zeros(2, "int64"):dtype())
    assert.are.equal("uint8", nn.ones({2, 2}, "uint8"):dtype())
    assert.is_true(same(nn.full({2, 2}, 7), {{7, 7}, {7, 7}}))
    assert.are.equal("float32", nn.full({2}, 7):dtype())
    assert.are.equal("int64", nn.full({2}, 7, "int64"):dtype())
    assert.are.same({3, 0}, nn.empty(3, 0):size())
  end)

  it("arange excludes the end, as PyTorch; integers give int64", function()
    assert.is_true(same(nn.arange(1, 5), {1, 2, 3, 4}))
    assert.are.equal("int64", nn.arange(1, 5):dtype())
    assert.is_true(same(nn.arange(5), {0, 1, 2, 3, 4}))
    assert.is_true(same(nn.arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75}))
    assert.are.equal("float32", nn.arange(0, 1, 0.25):dtype())
    assert.are.equal("float32", nn.arange(1, 5, "float32"):dtype())
    assert.is_true(same(nn.arange(5, 1, -2), {5, 3}))
    assert.matches("arange: step must be non%-zero", errmsg(nn.arange, 1, 5, 0))
  end)

  it("linspace and eye", function()
    assert.is_true(same(nn.linspace(0, 1, 5), {0, 0.25, 0.5, 0.75, 1}))
    assert.are.equal(1, nn.linspace(0, 1, 3)[3]) -- the end point exactly
    assert.is_true(same(nn.linspace(2, 5, 1), {2})) -- one step: the start, as PyTorch
    assert.are.same({0}, nn.linspace(0, 1, 0):size())
    assert.are.equal("int64", nn.linspace(0, 4, 5, "int64"):dtype())
    assert.is_true(same(nn.eye(2, 3), {{1, 0, 0}, {0, 1, 0}}))
    assert.is_true(same(nn.eye(2), {{1, 0}, {0, 1}}))
    assert.are.equal("int64", nn.eye(2, "int64"):dtype())
    assert.matches("linspace: number of steps must be non%-negative", errmsg(nn.linspace, 0, 1, -1))
  end)

  it("rand, randn, randint, randperm: shapes, dtypes and ranges", function()
    nn.manual_seed(1)
    local r = nn.rand(1000)
    assert.are.equal("float32", r:dtype())
    assert.is_true(r:min():item() >= 0 and r:max():item() < 1)
    assert.is_true(close(r:mean():item(), 0.5, 0.1))
    local n = nn.randn({100, 100})
    assert.are.same({100, 100}, n:size())
    assert.is_true(math.abs(n:mean():item()) < 0.05 and close(n:std():item(), 1, 0.05))
    local i = nn.randint(1, 4, {1000})
    assert.are.equal("int64", i:dtype())
    assert.are.equal(1, i:min():item())
    assert.are.equal(3, i:max():item())
    assert.are.equal("float32", nn.randint(0, 5, {3}, "float32"):dtype())
    local j = nn.randint(10, {500})
    assert.is_true(j:min():item() >= 0 and j:max():item() <= 9)
    local p = nn.randperm(10)
    assert.are.equal("int64", p:dtype())
    local seen = {}
    for k = 1, 10 do seen[p[k]] = true end
    for k = 1, 10 do assert.is_true(seen[k], "randperm misses " .. k) end -- 1-based
    assert.are.equal("float32", nn.randperm(3, "float32"):dtype())
    local wide = nn.randint(math.mininteger, math.maxinteger, {1000}) -- range beyond int64
    assert.is_true(wide:min():item() < -2 ^ 61 and wide:max():item() > 2 ^ 61)
    assert.are.equal(wide[wide:argmin():item()], wide:min():item()) -- exact, not via a double
    assert.are.equal(wide[wide:argmax():item()], wide:max():item())
    assert.matches("rand: dtype must be float32, got int64", errmsg(nn.rand, 2, "int64"))
    assert.matches("randint: empty range %[5, 5%)", errmsg(nn.randint, 5, 5, {2}))
  end)

  it("zeros_like, ones_like, full_like", function()
    local x = nn.zeros(2, 3, "int64")
    assert.are.equal("int64", nn.ones_like(x):dtype())
    assert.is_true(same(nn.full_like(x, 4), {{4, 4, 4}, {4, 4, 4}}))
    assert.are.same({2, 3}, nn.zeros_like(x):size())
  end)
end)

describe("shape queries", function()
  local x = nn.zeros(2, 3, 4)
  it("size, dim, numel, dtype, stride", function()
    assert.are.same({2, 3, 4}, x:size())
    assert.are.equal(3, x:size(2))
    assert.are.equal(4, x:size(-1))
    assert.are.equal(3, x:dim())
    assert.are.equal(24, x:numel())
    assert.are.equal("float32", x:dtype())
    assert.are.same({12, 4, 1}, x:stride())
    assert.are.equal(2, #x)
    assert.are.same({2, 3, 4}, x.shape)
    assert.are.equal(0, nn.tensor(1):dim())
  end)
end)

describe("indexing", function()
  it("x[i] is a row view, x[i][j] a number, both 1-based", function()
    local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.is_true(same(x[2], {4, 5, 6}))
    assert.are.equal(2, x[1][2])
    assert.are.equal(6, x[-1][-1])
    x[1][2] = 50
    assert.are.equal(50, x:get(1, 2))
    x[2] = 9 -- fills the row
    assert.is_true(same(x, {{1, 50, 3}, {9, 9, 9}}))
    x[1] = nn.tensor{7, 8, 9} -- copies a tensor into the row
    assert.is_true(same(x[1], {7, 8, 9}))
  end)

  it("get and set with negative indices", function()
    local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.equal(6, x:get(-1, -1))
    assert.are.equal(4, x:get(2, 1))
    x:set(10, -2, -3)
    assert.are.equal(10, x:get(1, 1))
    assert.are.equal(x, x:set(1, 1, 1)) -- returns self for chaining
  end)

  it("out-of-range indices are errors that say where", function()
    local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.matches("get: index 3 is out of range for dimension 1 of size 2", errmsg(function() return x:get(3, 1) end))
    assert.matches("get: index %-4 is out of range for dimension 2 of size 3", errmsg(function() return x:get(1, -4) end))
    assert.matches("get: index 0 is out of range", errmsg(function() return x:get(0, 1) end))
    assert.matches("set: index 4 is out of range for dimension 2 of size 3", errmsg(function() x:set(0, 1, 4) end))
    assert.matches("get: expected 2 indices for a 2%-d tensor, got 1", errmsg(function() return x:get(1) end))
    assert.matches("index: index 3 is out of range for dimension 1 of size 2", errmsg(function() return x[3] end))
    assert.matches("index: index 0 is out of range", errmsg(function() return x[1][0] end))
    assert.matches("index assignment: index 5 is out of range", errmsg(function() x[5] = 1 end))
    assert.matches("cannot index a 0%-d tensor", errmsg(function() return nn.tensor(1)[1] end))
  end)
end)

describe("views share storage", function()
  local function check_shared(make)
    local x = nn.arange(1, 7):float():view(2, 3)
    local v = make(x)
    v:fill_(0)
    return x
  end

  it("view and reshape", function()
    local x = nn.arange(1, 7):float()
    local v = x:view(2, 3)
    v[2][3] = 60
    assert.are.equal(60, x[6])
    assert.are.same({3, 2}, x:view(3, -1):size())
    local r = x:reshape(3, 2)
    r[1][1] = 10
    assert.are.equal(10, x[1])
    -- reshape of a non-contiguous view copies; view refuses
    local t = x:view(2, 3):t()
    assert.matches("view: cannot view a tensor of size %[3,2%] %(not contiguous%) as size %[6%]", errmsg(function() return t:view(6) end))
    local c = t:reshape(6)
    assert.is_true(same(c, {10, 4, 2, 5, 3, 60}))
    assert.matches("view: shape %[4,2%] is invalid for input of size 6", errmsg(function() return x:view(4, 2) end))
  end)

  it("view works on strided tensors whenever strides allow, as PyTorch", function()
    local x = nn.arange(24):view(2, 3, 4)
    local t = x:transpose(1, 2) -- [3,2,4], strides 4,12,1
    local v = t:view(3, 2, 2, 2)
    assert.are.same({4, 12, 2, 1}, v:stride())
    v:set(-5, 2, 2, 1, 2)
    assert.are.equal(-5, x:get(2, 2, 2))
    assert.matches("view: cannot view a tensor of size %[3,2,4%] %(not contiguous%) as size %[6,4%]",
      errmsg(function() return t:view(6, 4) end))
    local n = x:narrow(3, 1, 2) -- [2,3,2], strides 12,4,1
    assert.are.same({6, 2}, n:view(6, 2):size())
    assert.matches("cannot view", errmsg(function() return n:view(2, 6) end))
    local r = n:reshape(2, 6) -- copies where a view is impossible
    r:fill_(0)
    assert.are.equal(1, x:get(1, 1, 2))
    local s = x:narrow(1, 2, 1):reshape(12) -- a view when possible: shares storage
    s[1] = 100
    assert.are.equal(100, x:get(2, 1, 1))
  end)

  it("transpose, permute, t", function()
    local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    local t = x:transpose(1, 2)
    assert.are.same({3, 2}, t:size())
    assert.is_false(t:is_contiguous())
    t[3][1] = 30
    assert.are.equal(30, x:get(1, 3))
    assert.is_true(same(x:t(), {{1, 4}, {2, 5}, {30, 6}}))
    local y = nn.zeros(2, 3, 4)
    local p = y:permute(3, 1, 2)
    assert.are.same({4, 2, 3}, p:size())
    p:set(5, 4, 2, 3)
    assert.are.equal(5, y:get(2, 3, 4))
    assert.matches("permute: dims must be a permutation", errmsg(function() return y:permute(1, 1, 2) end))
  end)

  it("narrow and select", function()
    local x = check_shared(function(x) return x:narrow(2, 2, 2) end)
    assert.is_true(same(x, {{1, 0, 0}, {4, 0, 0}}))
    x = check_shared(function(x) return x:select(1, 2) end)
    assert.is_true(same(x, {{1, 2, 3}, {0, 0, 0}}))
    x = check_shared(function(x) return x:select(2, -1) end)
    assert.is_true(same(x, {{1, 2, 0}, {4, 5, 0}}))
    assert.matches("narrow: start 3 and length 2 exceed dimension 2 of size 3",
      errmsg(function() return nn.zeros(2, 3):narrow(2, 3, 2) end))
  end)

  it("squeeze, unsqueeze, expand, flatten", function()
    local x = nn.zeros(2, 1, 3)
    assert.are.same({2, 3}, x:squeeze():size())
    assert.are.same({2, 3}, x:squeeze(2):size())
    assert.are.same({2, 1, 3}, x:squeeze(1):size()) -- not of size 1: unchanged
    assert.are.same({2, 1, 1, 3}, x:unsqueeze(2):size())
    assert.are.same({2, 1, 3, 1}, x:unsqueeze(-1):size())
    local s = x:squeeze()
    s[1][1] = 4
    assert.are.equal(4, x:get(1, 1, 1))
    local r = nn.tensor{1, 2, 3}
    local e = r:expand(2, 3)
    assert.are.same({2, 3}, e:size())
    assert.are.same({0, 1}, e:stride())
    r[2] = 20
    assert.is_true(same(e, {{1, 20, 3}, {1, 20, 3}}))
    assert.are.same({4, 3}, nn.zeros(4, 1):expand(-1, 3):size())
    assert.matches("expand: cannot broadcast size %[3%] to %[2,4%]", errmsg(function() return r:expand(2, 4) end))
    assert.matches("expand: cannot broadcast", errmsg(function() return nn.zeros(1):expand(-2) end))
    local f = nn.zeros(2, 3, 4):flatten()
    assert.are.same({24}, f:size())
    assert.are.same({2, 12}, nn.zeros(2, 3, 4):flatten(2):size())
    assert.are.same({6, 4}, nn.zeros(2, 3, 4):flatten(1, 2):size())
  end)

  it("contiguous copies only when needed; clone always copies", function()
    local x = nn.tensor{{1, 2}, {3, 4}}
    local c = x:contiguous()
    c[1][1] = 100
    assert.are.equal(100, x:get(1, 1)) -- already contiguous: the same tensor
    local t = x:t():contiguous()
    assert.is_true(t:is_contiguous())
    assert.is_true(same(t, {{100, 3}, {2, 4}}))
    t[1][1] = -1
    assert.are.equal(100, x:get(1, 1))
    local k = x:clone()
    k:fill_(0)
    assert.are.equal(100, x:get(1, 1))
  end)
end)

describe("copy_", function()
  it("copies with broadcasting and dtype conversion into any view", function()
    local d = nn.zeros(3, 4):narrow(2, 2, 2)
    d:copy_(nn.tensor({{1, 2}, {3, 4}, {5, 6}}, "int64"))
    assert.is_true(same(d, {{1, 2}, {3, 4}, {5, 6}}))
    local e = nn.zeros(2, 3):t()
    e:copy_(nn.tensor{7, 8})
    assert.is_true(same(e, {{7, 8}, {7, 8}, {7, 8}}))
  end)

  it("reads all of an overlapping source before writing", function()
    local x = nn.arange(9):float():view(3, 3)
    x:copy_(x:t())
    assert.is_true(same(x, {{0, 3, 6}, {1, 4, 7}, {2, 5, 8}}))
    local y = nn.arange(5):float()
    y:narrow(1, 2, 4):copy_(y:narrow(1, 1, 4))
    assert.is_true(same(y, {0, 0, 1, 2, 3}))
    local z = nn.arange(5):float()
    z:narrow(1, 1, 4):copy_(z:narrow(1, 2, 4))
    assert.is_true(same(z, {1, 2, 3, 4, 4}))
  end)
end)

describe("cat and stack", function()
  it("cat joins along an existing dim", function()
    local a, b = nn.tensor{{1, 2, 3}, {4, 5, 6}}, nn.tensor{{7, 8}, {9, 10}}
    assert.is_true(same(nn.cat({a, b}, 2), {{1, 2, 3, 7, 8}, {4, 5, 6, 9, 10}}))
    assert.is_true(same(nn.cat({a, nn.ones(1, 3)}), {{1, 2, 3}, {4, 5, 6}, {1, 1, 1}}))
    assert.is_true(same(nn.cat({a, b}, -1), {{1, 2, 3, 7, 8}, {4, 5, 6, 9, 10}}))
    assert.matches("cat: tensor 2 has size %[2,2%] %(float32%) but tensor 1 has size %[2,3%]",
      errmsg(nn.cat, {a, b}, 1))
    assert.matches("cat: expected a non%-empty list of tensors", errmsg(nn.cat, {}))
    assert.matches("cat: expected a list of tensors, element 2 is a number", errmsg(nn.cat, {a, 3}))
    assert.matches("cat: dimension 3 out of range %(expected 1 to 2%)", errmsg(nn.cat, {a, a}, 3))
  end)

  it("stack adds a dim", function()
    local a, b = nn.tensor{1, 2}, nn.tensor{3, 4}
    assert.is_true(same(nn.stack({a, b}), {{1, 2}, {3, 4}}))
    assert.is_true(same(nn.stack({a, b}, 2), {{1, 3}, {2, 4}}))
    assert.matches("stack: tensor 2 has size %[3%]", errmsg(nn.stack, {a, nn.zeros(3)}))
  end)
end)

describe("dtypes and conversion", function()
  it("float, long, byte, to", function()
    local x = nn.tensor{-1.5, 2.7, 300}
    assert.is_true(same(x:long(), {-1, 2, 300}))
    assert.are.equal("int64", x:long():dtype())
    assert.are.equal(44, x:byte()[3]) -- wraps like a C cast, as PyTorch
    assert.are.equal("float32", nn.tensor({1}, "int64"):float():dtype())
    assert.are.equal("int64", x:to("int64"):dtype())
    assert.are.equal("uint8", x:type("uint8"):dtype())
    assert.matches("invalid option 'float64'", errmsg(function() return x:to("float64") end))
  end)

  it("totable gives nested Lua tables (integers for integer dtypes)", function()
    local t = nn.tensor({{1, 2}, {3, 4}}, "int64"):totable()
    assert.are.same({{1, 2}, {3, 4}}, t)
    assert.are.equal("integer", math.type(t[1][1]))
    assert.are.same({1.5, 2}, nn.tensor{1.5, 2}:totable())
    assert.are.same({{1, 3}, {2, 4}}, nn.tensor({{1, 2}, {3, 4}}, "int64"):t():totable())
  end)
end)

describe("printing", function()
  it("looks like PyTorch, with dtype and size shown", function()
    local s = tostring(nn.tensor{{1, 2.5}, {-3, 4}})
    assert.are.equal("tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])\n[float32 tensor of size 2x2]", s)
    local i = tostring(nn.tensor({1, 20, 300}, "int64"))
    assert.are.equal("tensor([  1,  20, 300], dtype=int64)\n[int64 tensor of size 3]", i)
    assert.matches("dtype=uint8", tostring(nn.ones(2, "uint8")))
    assert.are.equal("tensor(5.)", tostring(nn.tensor(5)))
    assert.are.equal("tensor([1., 2.])\n[float32 tensor of size 2]", tostring(nn.tensor{1, 2}))
    assert.matches("tensor%(%[%], size=%(0, 3%)%)", tostring(nn.zeros(0, 3)))
    assert.matches("nan,%s+inf,%s+%-inf", tostring(nn.tensor{0 / 0, 1 / 0, -1 / 0}))
  end)

  it("elides the middle of large tensors", function()
    local s = tostring(nn.arange(0, 10000):view(100, 100))
    assert.matches("^tensor%(%[%[   0,    1,    2,  ...,   97,   98,   99%],", s)
    assert.matches("\n        %.%.%.,\n", s)
    assert.matches("%[9900, 9901, 9902,  ..., 9997, 9998, 9999%]%]", s)
    assert.matches("%[int64 tensor of size 100x100%]$", s)
    local lines = select(2, s:gsub("\n", "\n"))
    assert.is_true(lines < 12, "an elided print is short, got " .. lines .. " lines")
    assert.is_nil(tostring(nn.zeros(30, 30)):find("...", 1, true)) -- 900 elements: all shown
  end)

  it("shows grad_fn and requires_grad", function()
    local w = nn.ones(2):requires_grad()
    assert.matches("requires_grad=True", tostring(w))
    assert.matches("grad_fn=<MulBackward>", tostring(w * 2))
  end)
end)

describe("arithmetic", function()
  local a = nn.tensor{{1, 2, 3}, {4, 5, 6}}
  local b = nn.tensor{10, 20, 30}
  it("broadcasts by NumPy rules through Lua operators", function()
    assert.is_true(same(a + b, {{11, 22, 33}, {14, 25, 36}}))
    assert.is_true(same(a - b, {{-9, -18, -27}, {-6, -15, -24}}))
    assert.is_true(same(a * nn.tensor{{2}, {3}}, {{2, 4, 6}, {12, 15, 18}}))
    assert.is_true(same(b / a, {{10, 10, 10}, {2.5, 4, 5}}))
    assert.is_true(same(a ^ 2, {{1, 4, 9}, {16, 25, 36}}))
    assert.is_true(same(-a, {{-1, -2, -3}, {-4, -5, -6}}))
    assert.are.same({2, 3, 3}, (nn.zeros(2, 1, 3) + nn.zeros(3, 1)):size())
  end)

  it("takes a number on either side", function()
    assert.is_true(same(a + 1, {{2, 3, 4}, {5, 6, 7}}))
    assert.is_true(same(1 + a, {{2, 3, 4}, {5, 6, 7}}))
    assert.is_true(same(10 - b, {0, -10, -20}))
    assert.is_true(same(b - 10, {0, 10, 20}))
    assert.is_true(same(60 / b, {6, 3, 2}))
    assert.is_true(same(b / 10, {1, 2, 3}))
    assert.is_true(same(2 * b, {20, 40, 60}))
    assert.is_true(same(2 ^ nn.tensor{1, 2, 3}, {2, 4, 8}))
    assert.is_true(same(nn.tensor{4, 9} ^ 0.5, {2, 3}))
    assert.is_true(same(nn.tensor{2, 3} ^ nn.tensor{3, 2}, {8, 9}))
  end)

  it("keeps integer tensors integer where it can", function()
    local i = nn.tensor({1, 2, 3}, "int64")
    assert.are.equal("int64", (i + 1):dtype())
    assert.are.equal("int64", (i * i):dtype())
    assert.are.equal("float32", (i / 2):dtype())
    assert.is_true(same(i / 2, {0.5, 1, 1.5}))
    assert.are.equal("float32", (i * 1.5):dtype())
    assert.are.equal("float32", (i + nn.ones(3)):dtype())
  end)

  it("methods and module functions", function()
    assert.is_true(same(a:add(b), (a + b):totable()))
    assert.is_true(same(nn.mul(a, 2), (a * 2):totable()))
    assert.is_true(same(nn.maximum(a, nn.tensor{3, 3, 3}), {{3, 3, 3}, {4, 5, 6}}))
    assert.is_true(same(nn.minimum(a, 2), {{1, 2, 2}, {2, 2, 2}}))
  end)
end)

describe("math", function()
  local x = nn.tensor{0.5, 1, 2}
  it("exp log sqrt abs tanh sigmoid relu", function()
    assert.is_true(same(x:exp(), {math.exp(0.5), math.exp(1), math.exp(2)}))
    assert.is_true(same(x:log(), {math.log(0.5), 0, math.log(2)}))
    assert.is_true(same(nn.sqrt(x), {math.sqrt(0.5), 1, math.sqrt(2)}))
    assert.is_true(same(nn.tensor{-2, 3}:abs(), {2, 3}))
    local th = function(v) return (math.exp(v) - math.exp(-v)) / (math.exp(v) + math.exp(-v)) end
    assert.is_true(same(x:tanh(), {th(0.5), th(1), th(2)}))
    assert.is_true(same(nn.tensor{0}:sigmoid(), {0.5}))
    assert.is_true(same(nn.tensor{-1, 0, 2}:relu(), {0, 0, 2}))
  end)

  it("clamp and pow", function()
    local y = nn.tensor{-2, 0.5, 3}
    assert.is_true(same(y:clamp(-1, 1), {-1, 0.5, 1}))
    assert.is_true(same(y:clamp{min = 0}, {0, 0.5, 3}))
    assert.is_true(same(y:clamp{max = 0}, {-2, 0, 0}))
    assert.is_true(same(nn.clamp(y, 0, 1), {0, 0.5, 1}))
    assert.is_true(same(y:pow(2), {4, 0.25, 9}))
    assert.is_true(same(nn.pow(2, y), {0.25, math.sqrt(2), 8}))
    assert.matches("clamp: min 2 is greater than max 1", errmsg(function() return y:clamp(2, 1) end))
  end)
end)

describe("comparisons and masks", function()
  local a = nn.tensor{1, 2, 3}
  it("return uint8 masks, against tensors or numbers", function()
    local m = a:gt(1)
    assert.are.equal("uint8", m:dtype())
    assert.is_true(same(m, {0, 1, 1}))
    assert.is_true(same(a:lt(2), {1, 0, 0}))
    assert.is_true(same(a:le(2), {1, 1, 0}))
    assert.is_true(same(a:ge(nn.tensor{3, 2, 1}), {0, 1, 1}))
    assert.is_true(same(a:eq(nn.tensor{1, 0, 3}), {1, 0, 1}))
    assert.is_true(same(a:ne(2), {1, 0, 1}))
    assert.is_true(same(nn.tensor{{1}, {2}}:eq(nn.tensor{1, 2}), {{1, 0}, {0, 1}}))
  end)

  it("where and masked_fill", function()
    local m = a:gt(1)
    assert.is_true(same(nn.where(m, a, nn.tensor{-1, -2, -3}), {-1, 2, 3}))
    assert.is_true(same(nn.where(m, a, 0), {0, 2, 3}))
    assert.is_true(same(nn.where(m, 9, a), {1, 9, 9}))
    assert.is_true(same(nn.where(nn.tensor{{1}, {0}}:byte(), a, 0), {{1, 2, 3}, {0, 0, 0}}))
    assert.is_true(same(a:masked_fill(m, -7), {1, -7, -7}))
    assert.is_true(same(nn.zeros(2, 3):masked_fill(nn.tensor{1, 0, 1}:byte(), 5), {{5, 0, 5}, {5, 0, 5}}))
    assert.is_true(same(a, {1, 2, 3})) -- masked_fill is not in place
    assert.matches("where: mask must be uint8 %(or int64%), got float32", errmsg(nn.where, a, a, a))
  end)
end)

describe("reductions", function()
  local y = nn.tensor{{1, 5, 3}, {7, 2, 9}}
  it("over everything give 0-d tensors", function()
    assert.are.equal(0, y:sum():dim())
    assert.are.equal(27, y:sum():item())
    assert.are.equal(4.5, y:mean():item())
    assert.are.equal(9, y:max():item())
    assert.are.equal(1, y:min():item())
    assert.are.equal(6, y:argmax():item()) -- 1-based flat position
    assert.are.equal(1, y:argmin():item())
    assert.is_true(close(y:std():item(), math.sqrt(9.5)))
    assert.is_true(close(y:var():item(), 9.5))
    assert.are.equal(1890, y:prod():item())
    assert.are.equal(27, nn.sum(y):item())
  end)

  it("over one dim, with keepdim", function()
    assert.is_true(same(y:sum(1), {8, 7, 12}))
    assert.is_true(same(y:sum(2), {9, 18}))
    assert.are.same({2, 1}, y:sum(2, true):size())
    assert.are.same({1, 3}, y:mean(1, true):size())
    assert.are.same({2, 1}, y:sum(-1, {keepdim = true}):size())
    assert.is_true(same(y:mean(2), {3, 6}))
    assert.is_true(same(y:var(2), {4, 13}))
    assert.is_true(same(y:std(1), {math.sqrt(18), math.sqrt(4.5), math.sqrt(18)}))
    assert.is_true(same(y:argmax(2), {2, 3}))
    assert.is_true(same(y:argmin(1), {1, 2, 1}))
    assert.are.equal("int64", y:argmax(2):dtype())
    assert.is_true(same(y:prod(2), {15, 126}))
  end)

  it("argmax/argmin/max along a dim: first of ties, NaN wins as in PyTorch", function()
    local nan, inf = 0 / 0, math.huge
    local t = nn.tensor{ { 1, 3, 3, 2 }, { nan, 5, nan, 9 }, { 4, nan, 7, 1 }, { -inf, -inf, -inf, -inf },
                         { 2, 2, 1, 1 } }
    assert.is_true(same(t:argmax(2), { 2, 1, 2, 1, 1 }))
    assert.is_true(same(t:argmin(2), { 1, 1, 2, 1, 3 }))
    local v = t:max(2)
    assert.is_true(v[2] ~= v[2] and v[3] ~= v[3])
    assert.are.same({ 3, -inf }, { v[1], v[4] })
  end)

  it("max and min with a dim return values and 1-based indices", function()
    local v, i = y:max(2)
    assert.is_true(same(v, {5, 9}))
    assert.is_true(same(i, {2, 3}))
    assert.are.equal("int64", i:dtype())
    local v2, i2 = y:min(1, true)
    assert.is_true(same(v2, {{1, 2, 3}}))
    assert.is_true(same(i2, {{1, 2, 1}}))
  end)

  it("integer tensors sum to int64", function()
    local i = nn.tensor({{1, 2}, {3, 4}}, "int64")
    assert.are.equal("int64", i:sum():dtype())
    assert.are.equal(10, i:sum():item())
    assert.is_true(same(i:sum(1), {4, 6}))
    assert.are.equal(2.5, i:mean():item())
  end)

  it("bad dims and empty tensors are errors", function()
    assert.matches("sum: dimension 3 out of range %(expected 1 to 2, or %-2 to %-1%)", errmsg(function() return y:sum(3) end))
    assert.matches("max: cannot reduce an empty tensor", errmsg(function() return nn.zeros(0):max() end))
    assert.matches("argmin: cannot reduce dimension 2 of size 0", errmsg(function() return nn.zeros(2, 0):argmin(2) end))
    assert.are.same({0}, nn.zeros(2, 0):max(1):size()) -- an empty result is fine
    assert.are.equal(0, nn.zeros(0):sum():item())
    assert.is_true(nn.zeros(0):mean():item() ~= nn.zeros(0):mean():item()) -- NaN, as PyTorch
  end)
end)

describe("matmul", function()
  local a = nn.tensor{{1, 2, 3}, {4, 5, 6}}
  local b = nn.tensor{{1, 0}, {0, 1}, {1, 1}}
  it("2-D @ 2-D, 1-D cases", function()
    assert.is_true(same(nn.matmul(a, b), {{4, 5}, {10, 11}}))
    assert.is_true(same(a:matmul(nn.tensor{1, 1, 1}), {6, 15}))
    assert.is_true(same(nn.matmul(nn.tensor{1, 1}, a), {5, 7, 9}))
    local d = nn.matmul(nn.tensor{1, 2, 3}, nn.tensor{4, 5, 6})
    assert.are.equal(0, d:dim())
    assert.are.equal(32, d:item())
  end)

  it("uses transposed views directly", function()
    assert.is_true(same(nn.matmul(a:t(), a), {{17, 22, 27}, {22, 29, 36}, {27, 36, 45}}))
    assert.is_true(same(nn.matmul(a, a:t()), {{14, 32}, {32, 77}}))
    assert.is_true(same(nn.matmul(b:t(), a:t()), {{4, 10}, {5, 11}}))
    local n = nn.zeros(3, 4):narrow(2, 2, 2) -- a strided operand
    n:copy_(b)
    assert.is_true(same(nn.matmul(a, n), {{4, 5}, {10, 11}}))
  end)

  it("batched 3-D, with a broadcast operand", function()
    local x = nn.stack({a, a * 2})
    local r = nn.matmul(x, b)
    assert.are.same({2, 2, 2}, r:size())
    assert.is_true(same(r, {{{4, 5}, {10, 11}}, {{8, 10}, {20, 22}}}))
    local r2 = nn.matmul(x, nn.stack({b, b * 0}))
    assert.is_true(same(r2, {{{4, 5}, {10, 11}}, {{0, 0}, {0, 0}}}))
    local r3 = nn.matmul(a, nn.stack({b, b}))
    assert.are.same({2, 2, 2}, r3:size())
    assert.is_true(same(nn.matmul(a:unsqueeze(1), nn.stack({b, b})), r3:totable()))
  end)

  it("agrees with a plain loop on random sizes", function()
    nn.manual_seed(5)
    local p, q = nn.randn(7, 13), nn.randn(13, 5)
    local r = nn.matmul(p, q)
    local worst = 0
    for i = 1, 7 do
      for j = 1, 5 do
        local s = 0
        for k = 1, 13 do s = s + p:get(i, k) * q:get(k, j) end
        worst = math.max(worst, math.abs(s - r:get(i, j)))
      end
    end
    assert.is_true(worst < 1e-4, "largest difference " .. worst)
  end)

  it("reports mismatched sizes", function()
    assert.matches("matmul: size mismatch, %[2,3%] @ %[4,5%]", errmsg(nn.matmul, nn.zeros(2, 3), nn.zeros(4, 5)))
    assert.matches("matmul: size mismatch, %[2,2,3%] @ %[3,3,2%]", errmsg(nn.matmul, nn.zeros(2, 2, 3), nn.zeros(3, 3, 2)))
    assert.matches("matmul: expected float32 tensors, got int64 @ float32",
      errmsg(nn.matmul, nn.zeros(2, 2, "int64"), nn.zeros(2, 2)))
    assert.matches("matmul: expected 1%-D, 2%-D or 3%-D tensors", errmsg(nn.matmul, nn.zeros(1, 1, 1, 1), nn.zeros(1)))
  end)
end)

describe("indexing ops (1-based indices)", function()
  local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
  local I = function(t) return nn.tensor(t, "int64") end
  it("index_select", function()
    assert.is_true(same(x:index_select(2, I{3, 1}), {{3, 1}, {6, 4}}))
    assert.is_true(same(nn.index_select(x, 1, I{2, 2}), {{4, 5, 6}, {4, 5, 6}}))
    assert.matches("index_select: index 4 is out of range for dimension 2 of size 3",
      errmsg(function() return x:index_select(2, I{1, 4}) end))
    assert.matches("index_select: index 0 is out of range for dimension 1 of size 2",
      errmsg(function() return x:index_select(1, I{0}) end))
    assert.matches("index_select: index must be an int64 tensor, got float32",
      errmsg(function() return x:index_select(1, nn.tensor{1}) end))
  end)

  it("gather", function()
    assert.is_true(same(x:gather(2, I{{3, 1}, {2, 2}}), {{3, 1}, {5, 5}}))
    assert.is_true(same(x:gather(1, I{{2, 1, 2}}), {{4, 2, 6}}))
    assert.matches("gather: index 4 is out of range for dimension 2 of size 3",
      errmsg(function() return x:gather(2, I{{1}, {4}}) end))
  end)

  it("scatter_add", function()
    local r = nn.zeros(2, 3):scatter_add(2, I{{1, 1}, {3, 2}}, nn.tensor{{1, 2}, {3, 4}})
    assert.is_true(same(r, {{3, 0, 0}, {0, 4, 3}}))
    local r2 = nn.ones(3):scatter_add(1, I{1, 1, 3, 3}, nn.ones(4))
    assert.is_true(same(r2, {3, 1, 3}))
    assert.matches("scatter_add: index 9 is out of range for dimension 2 of size 3",
      errmsg(function() return nn.zeros(2, 3):scatter_add(2, I{{9}, {1}}, nn.ones(2, 1)) end))
  end)

  it("one_hot", function()
    local o = nn.one_hot(I{1, 3, 2})
    assert.are.equal("int64", o:dtype())
    assert.is_true(same(o, {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}}))
    assert.are.same({2, 2, 5}, nn.one_hot(I{{1, 2}, {3, 4}}, 5):size())
    assert.matches("one_hot: class 4 is out of range for 3 classes %(expected 1 to 3%)",
      errmsg(nn.one_hot, I{1, 4}, 3))
    assert.matches("one_hot: class 0 is out of range", errmsg(nn.one_hot, I{0}, 3))
  end)
end)

describe("random numbers", function()
  local function draw()
    nn.manual_seed(1234)
    local u = nn.rand(1000000)
    local g = nn.randn(1000, 1000)
    local i = nn.randint(0, 1000, {1000000})
    local p = nn.randperm(100000)
    local z = nn.zeros(1000, 1000):t()
    z:normal_(1, 2) -- a strided destination
    return {u = u, g = g, i = i, p = p, z = z}
  end
  local function equal(a, b) return (a - b):abs():max():item() == 0 end

  it("repeat from the same seed whatever the thread count", function()
    local saved = nn.get_num_threads()
    nn.set_num_threads(1)
    local one = draw()
    nn.set_num_threads(2)
    assert.are.equal(2, nn.get_num_threads())
    local two = draw()
    nn.set_num_threads(saved)
    for k, v in pairs(one) do assert.is_true(equal(v, two[k]), k .. " differs between 1 and 2 threads") end
    assert.is_true(close(one.z:mean():item(), 1, 0.01) and close(one.z:std():item(), 2, 0.01))
    nn.manual_seed(1235)
    assert.is_false(equal(nn.rand(1000000), one.u))
  end)

  it("get_rng_state and set_rng_state replay a stream", function()
    nn.manual_seed(9)
    nn.rand(10)
    local st = nn.get_rng_state()
    assert.are.equal("number", type(st.seed))
    local a = nn.randn(7)
    nn.rand(3)
    nn.set_rng_state(st)
    local b = nn.randn(7)
    assert.is_true(equal(a, b))
    assert.matches("expected {seed = integer, offset = integer}", errmsg(nn.set_rng_state, {seed = 1}))
  end)
end)
