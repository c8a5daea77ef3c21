-- errors_spec.lua — bad calls raise Lua errors that name the function and say what was expected
-- and what came: wrong argument types, bad dims, bad dtypes, shape mismatches.
local nn = require "nnlua"

local x = nn.zeros(2, 3)
local I = function(t) return nn.tensor(t, "int64") end

-- The message of the error f raises (f must raise).
local function err(f)
  local ok, e = pcall(f)
  assert(not ok, "expected an error")
  return tostring(e)
end

-- Each row: a call that must fail, and a Lua pattern its message must match.
local function check_all(rows)
  for _, row in ipairs(rows) do
    local msg = err(row[1])
    assert(msg:find(row[2]), ("expected %q in %q"):format(row[2], msg))
  end
end

describe("errors", function()
  it("wrong argument types name the function and the types", function()
    check_all{
      {function() return nn.exp("a") end, "bad argument #1 to 'exp' %(tensor expected, got string%)"},
      {function() return nn.matmul(x, "a") end, "bad argument #2 to 'matmul' %(tensor expected, got string%)"},
      {function() return nn.matmul(nil, x) end, "bad argument #1 to 'matmul' %(tensor expected, got nil%)"},
      {function() return nn.sum({}) end, "bad argument #1 to 'sum' %(tensor expected, got table%)"},
      {function() return x + "a" end, "add: expected tensors or numbers, got tensor and string"},
      {function() return {} - x end, "sub: expected tensors or numbers, got table and tensor"},
      {function() return x * true end, "mul: expected tensors or numbers, got tensor and boolean"},
      {function() return x / nil end, "div: expected tensors or numbers, got tensor and nil"},
      {function() return x ^ "2" end, "pow: expected tensors or numbers, got tensor and string"},
      {function() return nn.maximum(x, "a") end, "maximum: expected tensors or numbers"},
      {function() return x:view("a") end, "bad argument #1 to 'view' %(number expected, got string%)"},
      {function() return x:clamp("a") end, "bad argument #1 to 'clamp' %(number expected, got string%)"},
      {function() return x:gt("a") end, "bad argument #1 to 'gt' %(number expected, got string%)"},
      {function() return x:masked_fill(1, 2) end, "bad argument #1 to 'masked_fill' %(tensor expected, got number%)"},
      {function() return nn.where(1, x, x) end, "bad argument #1 to 'where' %(tensor expected, got number%)"},
      {function() return nn.where(x:gt(0), x, "a") end, "bad argument #3 to 'where' %(tensor or number expected%)"},
      {function() return nn.cat(x) end, "bad argument #1 to 'cat' %(table of tensors expected, got nnlua.Tensor%)"},
      {function() return nn.stack({x, 1}) end, "stack: expected a list of tensors, element 2 is a number"},
      {function() return x:set("a", 1, 1) end, "bad argument #1 to 'set' %(number expected, got string%)"},
      {function() x[1] = "a" end, "index assignment: expected a number or a tensor, got string"},
      {function() x.grad = 5 end, "grad: expected a tensor or nil, got number"},
      {function() x.foo = 1 end, "cannot set field 'foo' of a tensor"},
      {function() return x:backward("a") end, "bad argument #1 to 'backward' %(gradient tensor or options table expected%)"},
      {function() return nn.no_grad(5) end, "bad argument #1 to 'no_grad' %(function expected, got number%)"},
      {function() return nn.zeros("a") end, "bad argument #1 to 'zeros' %(invalid option 'a'%)"},
      {function() return nn.full(2, 3) end, "bad argument #1 to 'full' %(table expected, got number%)"},
      {function() return nn.manual_seed("x") end, "bad argument #1 to 'manual_seed' %(number expected, got string%)"},
      {function() return nn.gradcheck(1, {}) end, "gradcheck: fn must be a function, got number"},
    }
  end)

  it("bad sizes and values", function()
    check_all{
      {function() return nn.zeros(-1) end, "bad argument #1 to 'zeros' %(sizes must be non%-negative integers, got %-1"},
      {function() return nn.ones(1.5) end, "bad argument #1 to 'ones' %(sizes must be non%-negative integers, got 1.5"},
      {function() return nn.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1) end, "too many dimensions %(at most 8%)"},
      {function() return nn.eye(-1) end, "bad argument #1 to 'eye' %(sizes must be non%-negative%)"},
      {function() return nn.randperm(-1) end, "randperm: n must be non%-negative, got %-1"},
      {function() return nn.set_num_threads(0) end, "bad argument #1 to 'set_num_threads' %(thread count must be between 1 and 1024%)"},
      {function() return x:view(-2, 3) end, "view: invalid size %[%-2,3%]"},
      {function() return x:view(-1, -1) end, "view: only one dimension can be inferred %(%-1%)"},
      {function() return x:reshape(4) end, "reshape: shape %[4%] is invalid for input of size 6 %(%[2,3%]%)"},
      {function() return x:narrow(2, 0, 1) end, "narrow: start 0 and length 1 exceed dimension 2 of size 3"},
      {function() return x:select(1, 3) end, "select: index 3 is out of range for dimension 1 of size 2"},
      {function() return x:item() end, "item: only a tensor with one element can be converted to a number, got size %[2,3%]"},
      {function() return x:clamp(1, 0) end, "clamp: min 1 is greater than max 0"},
      {function() return nn.one_hot(I{1}, 0) end, "one_hot: num_classes must be positive, got 0"},
      {function() return nn.zeros(1e6, 1e6) end, "zeros: out of memory: cannot allocate 3814697.3 MB for a float32 tensor of size %[1000000,1000000%]"},
      {function() return nn.ones(1e6, 1e6, 1e6, 1e6, 1e6) end, "ones: size %[1000000,1000000,1000000,1000000,1000000%] is too large"},
      {function() return nn.zeros(1, 1):expand(1e15, 1e15) end, "expand: size %[1000000000000000,1000000000000000%] is too large"},
      {function() return x:reshape(1e18, 2e18) end, "reshape: shape %[1000000000000000000,2000000000000000000%] is invalid for input of size 6"},
    }
  end)

  it("bad dims name the function and the valid range", function()
    check_all{
      {function() return x:sum(3) end, "sum: dimension 3 out of range %(expected 1 to 2, or %-2 to %-1%)"},
      {function() return nn.sum(x, 3) end, "sum: dimension 3 out of range"},
      {function() return x:mean(0) end, "mean: dimension 0 out of range"},
      {function() return x:max(-3) end, "max: dimension %-3 out of range"},
      {function() return x:min(5, true) end, "min: dimension 5 out of range"},
      {function() return x:argmax(3) end, "argmax: dimension 3 out of range"},
      {function() return x:std(3) end, "std: dimension 3 out of range"},
      {function() return x:transpose(1, 3) end, "transpose: dimension 3 out of range"},
      {function() return x:narrow(3, 1, 1) end, "narrow: dimension 3 out of range"},
      {function() return x:select(0, 1) end, "select: dimension 0 out of range"},
      {function() return x:squeeze(4) end, "squeeze: dimension 4 out of range"},
      {function() return x:unsqueeze(4) end, "unsqueeze: dimension 4 out of range %(expected 1 to 3, or %-3 to %-1%)"},
      {function() return x:size(3) end, "size: dimension 3 out of range"},
      {function() return x:index_select(3, I{1}) end, "index_select: dimension 3 out of range"},
      {function() return x:gather(3, I{{1}}) end, "gather: dimension 3 out of range"},
      {function() return x:scatter_add(0, I{{1}}, x) end, "scatter_add: dimension 0 out of range"},
      {function() return x:permute(1) end, "permute: expected 2 dims, got 1"},
      {function() return x:permute(1, 1) end, "permute: dims must be a permutation of 1..2"},
      {function() return x:flatten(2, 1) end, "flatten: end dim 1 is before start dim 2"},
      {function() return nn.cat({x, x}, 3) end, "cat: dimension 3 out of range %(expected 1 to 2%)"},
      {function() return nn.stack({x, x}, 4) end, "stack: dimension 4 out of range %(expected 1 to 3%)"},
      {function() return nn.tensor(1):sum(1) end, "sum: dimension 1 out of range: the tensor is 0%-d"},
      {function() error(select(2, pcall(nn.sum, x, 3)), 0) end, "^sum: dimension 3"}, -- called from C
    }
  end)

  it("bad dtypes", function()
    check_all{
      {function() return nn.zeros(2, "float64") end, "bad argument #2 to 'zeros' %(invalid option 'float64'%)"},
      {function() return nn.tensor({1}, "f16") end, "bad argument #2 to 'tensor' %(invalid option 'f16'%)"},
      {function() return x:to("double") end, "bad argument #1 to 'to' %(invalid option 'double'%)"},
      {function() return nn.rand(2, "int64") end, "rand: dtype must be float32, got int64"},
      {function() return nn.randn(2, "uint8") end, "randn: dtype must be float32, got uint8"},
      {function() return x:index_select(1, nn.tensor{1}) end, "index_select: index must be an int64 tensor, got float32"},
      {function() return x:gather(1, nn.tensor{{1}}) end, "gather: index must be an int64 tensor, got float32"},
      {function() return nn.one_hot(nn.tensor{1}) end, "one_hot: index must be an int64 tensor, got float32"},
      {function() return x:scatter_add(1, I{{1, 1, 1}}, nn.ones(1, 3, "int64")) end,
        "scatter_add: src must be float32 with 2 dimensions, got int64 %[1,3%]"},
      {function() return nn.where(x, x, x) end, "where: mask must be uint8 %(or int64%), got float32"},
      {function() return x:masked_fill(nn.ones(3), 1) end, "masked_fill: mask must be uint8 %(or int64%), got float32"},
      {function() return nn.matmul(I{1, 2}, I{1, 2}) end, "matmul: expected float32 tensors, got int64 @ int64"},
      {function() return nn.zeros(2, "int64"):uniform_() end, "uniform_: needs a float32 tensor, got int64"},
      {function() return nn.zeros(2, "int64"):normal_() end, "normal_: needs a float32 tensor, got int64"},
      {function() return I{1}:requires_grad() end, "requires_grad: only float32 tensors can require gradients, got int64"},
      {function() return nn.cat({x, nn.zeros(2, 3, "int64")}) end, "cat: tensor 2 has size %[2,3%] %(int64%) but tensor 1 has size %[2,3%] %(float32%)"},
    }
  end)

  it("shape mismatches show both shapes", function()
    check_all{
      {function() return x + nn.zeros(4) end, "add: shapes %[2,3%] and %[4%] cannot be broadcast %(dimension 2: 3 vs 4%)"},
      {function() return x - nn.zeros(3, 3) end, "sub: shapes %[2,3%] and %[3,3%] cannot be broadcast %(dimension 1: 2 vs 3%)"},
      {function() return x * nn.zeros(2, 2) end, "mul: shapes %[2,3%] and %[2,2%] cannot be broadcast"},
      {function() return x / nn.zeros(5) end, "div: shapes %[2,3%] and %[5%] cannot be broadcast"},
      {function() return x ^ nn.zeros(4) end, "pow: shapes %[2,3%] and %[4%] cannot be broadcast"},
      {function() return nn.maximum(x, nn.zeros(5)) end, "maximum: shapes %[2,3%] and %[5%] cannot be broadcast"},
      {function() return nn.minimum(x, nn.zeros(3, 1, 2)) end, "minimum: shapes %[2,3%] and %[3,1,2%] cannot be broadcast"},
      {function() return x:gt(nn.zeros(4)) end, "compare: shapes %[2,3%] and %[4%] cannot be broadcast"},
      {function() return nn.where(nn.ones(2, "uint8"), x, x) end, "where: shapes %[2%] and %[2,3%] cannot be broadcast"},
      {function() return nn.where(x:gt(0), x, nn.zeros(2)) end, "where: shapes %[2,3%] and %[2%] cannot be broadcast"},
      {function() return x:masked_fill(nn.ones(4, "uint8"), 1) end, "masked_fill: cannot broadcast size %[4%] to %[2,3%]"},
      {function() return x:copy_(nn.zeros(4)) end, "copy_: cannot broadcast size %[4%] to %[2,3%]"},
      {function() x[1] = nn.zeros(2) end, "copy_: cannot broadcast size %[2%] to %[3%]"},
      {function() return x:expand(3, 3) end, "expand: cannot broadcast size %[2,3%] to %[3,3%]"},
      {function() return nn.matmul(x, nn.zeros(4, 5)) end, "matmul: size mismatch, %[2,3%] @ %[4,5%]"},
      {function() return nn.matmul(nn.zeros(3), nn.zeros(4)) end, "matmul: size mismatch, %[3%] @ %[4%]"},
      {function() return nn.matmul(nn.zeros(2, 2, 3), nn.zeros(3, 3, 2)) end, "matmul: size mismatch, %[2,2,3%] @ %[3,3,2%]"},
      {function() return nn.matmul(nn.tensor(1), x) end, "matmul: expected 1%-D, 2%-D or 3%-D tensors, got %[%] @ %[2,3%]"},
      {function() return x:gather(1, I{1}) end, "gather: index must have as many dimensions as the input, got %[1%] for %[2,3%]"},
      {function() return x:gather(2, I{{1}, {1}, {1}}) end, "gather: index size %[3,1%] exceeds input size %[2,3%] in dimension 1"},
      {function() return x:index_select(1, I{{1}}) end, "index_select: index must be 1%-D"},
      {function() return nn.stack({x, nn.zeros(3, 2)}) end, "stack: tensor 2 has size %[3,2%]"},
      {function() return (nn.zeros(2, 3):requires_grad() * 2):backward(nn.ones(3)) end, "backward: gradient has size %[3%] but the tensor has size %[2,3%]"},
      {function() x.grad = nn.ones(3) end, "grad: assigned gradient has size %[3%] %(float32%) but the tensor has size %[2,3%]"},
    }
  end)

  it("bad indices say which index and which dim, 1-based", function()
    check_all{
      {function() return x[0] end, "index: index 0 is out of range for dimension 1 of size 2"},
      {function() return x:get(1, 4) end, "get: index 4 is out of range for dimension 2 of size 3"},
      {function() return x:index_select(2, I{4}) end, "index_select: index 4 is out of range for dimension 2 of size 3"},
      {function() return x:gather(1, I{{3}}) end, "gather: index 3 is out of range for dimension 1 of size 2"},
      {function() return x:scatter_add(2, I{{0}}, x) end, "scatter_add: index 0 is out of range for dimension 2 of size 3"},
      {function() return nn.one_hot(I{2, 5}, 4) end, "one_hot: class 5 is out of range for 4 classes"},
    }
  end)

  it("closed tensors are reported, not dereferenced", function()
    local msg = err(function()
      local t <close> = nn.ones(2)
      local alias = t
      do local _ <close> = alias end -- closes t early
      return t:sum()
    end)
    assert.matches("tensor was closed", msg)
  end)

  it("argument errors name the function when called through pcall or from C", function()
    local function perr(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    local t = nn.zeros(2, 3)
    assert.equals("bad argument #1 to 'nn.zeros' (invalid option 'x')", perr(nn.zeros, "x"))
    assert.equals("bad argument #2 to 'nn.Tensor.view' (number expected, got string)", perr(t.view, t, "a"))
    assert.equals("bad argument #1 to 'nn.Tensor.view' (tensor expected, got number)", perr(t.view, 3, 4))
    assert.equals("bad argument #2 to 'nn.Tensor.get' (number expected, got string)", perr(t.get, t, "a", 1))
    assert.equals("bad argument #2 to 'nn.matmul' (tensor expected, got string)", perr(nn.matmul, t, "x"))
    assert.equals("bad argument #1 to 'nn.F.relu' (tensor expected, got number)", perr(nn.F.relu, 3))
    assert.equals("bad argument #1 to 'nn.load' (string expected, got table)", perr(nn.load, {}))
    assert.equals("bad argument #1 to 'nn.ones' (sizes must be non-negative integers, got -2.0)", perr(nn.ones, -2))
    assert.equals("bad argument #2 to 'nn.Tensor.narrow' (number has no integer representation)", perr(t.narrow, t, 1.5, 1, 1))
    -- a function in both nn and nn.Tensor goes by its nn name, whichever table it was taken from
    assert.equals("bad argument #1 to 'nn.sum' (tensor expected, got number)", perr(t.sum, 3))
    -- methods of other types: by the type's name
    local c = nn.image.canvas(4, 4)
    assert.matches("^bad argument #%d to 'nnlua%.Canvas%.%w+'", perr(c.line, c, "a"))
    -- called from Lua: the name at the call site, with self not counted in a method call, as Lua does
    assert.matches("bad argument #1 to 'view' %(number expected, got string%)", err(function() return t:view("a") end))
    local fake = setmetatable({}, { __index = { view = nn.Tensor.view } })
    assert.matches("calling 'view' on bad self %(tensor expected, got table%)", err(function() return fake:view(2) end))
  end)

  it("int64 elements keep all 64 bits; floats written into int64 truncate toward zero", function()
    local big = (1 << 53) + 1 -- not a double
    local t = nn.tensor({ big, -big, math.maxinteger, math.mininteger }, "int64")
    assert.equals(big, t[1])
    assert.equals(-big, t[2])
    assert.equals(math.maxinteger, t[3])
    assert.equals(math.mininteger, t[4])
    assert.equals("integer", math.type(t[1]))
    assert.equals(big, nn.tensor(big, "int64"):item())
    assert.equals(big, nn.tensor({ big }, "int64"):item())
    assert.equals(big, nn.full({ 2 }, big, "int64")[2])
    assert.equals(big, nn.full_like(t, big)[4])
    local z = nn.zeros(3, "int64")
    z[2] = big
    assert.equals(big, z[2])
    z:set(big + 2, 3)
    assert.equals(big + 2, z:get(3))
    assert.same({ 0, big, big + 2 }, z:totable())
    z:fill_(big)
    assert.same({ big, big, big }, z:totable())
    local m = nn.zeros(2, 3, "int64")
    m:t():fill_(big) -- through a non-contiguous view
    assert.equals(big, m:max():item())
    assert.equals(big, m:min():item())
    m[2] = -big
    assert.same({ { big, big, big }, { -big, -big, -big } }, m:totable())
    -- float values: truncated toward zero (as PyTorch's conversion)
    assert.same({ 2, -2, 0, 3 }, nn.tensor({ 2.7, -2.7, 0.5, 3.0 }, "int64"):totable())
    z[1] = -3.9
    z:set(7.99, 2)
    assert.same({ -3, 7 }, { z[1], z[2] })
    assert.same({ 1, 1 }, nn.full({ 2 }, 1.9, "int64"):totable())
    assert.equals(-1, nn.tensor(-1.5, "int64"):item())
  end)

  it("nn.load names the file when its tensors do not fit or it is damaged", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    nn.save(path, nn.Linear(3, 2):state_dict())
    local sd = nn.load(path)
    assert.equals(path, getmetatable(sd).source)
    local msg = err(function() nn.Linear(4, 2):load_state_dict(sd) end)
    assert.matches("Error%(s%) in loading state_dict for Linear from " .. path:gsub("%p", "%%%0") .. ":", msg)
    assert.matches("size mismatch for weight", msg)
    msg = err(function() nn.Linear(3, 2, { bias = false }):load_state_dict(nn.load(path)) end)
    assert.matches("for Linear from " .. path:gsub("%p", "%%%0") .. ":\n\tUnexpected key%(s%) in state_dict: \"bias\"", msg)
    -- a table not from nn.load: PyTorch's message
    assert.matches("for Linear:\n", err(function() nn.Linear(4, 2):load_state_dict({ weight = nn.zeros(1) }) end))
    -- truncated files: every prefix fails with the path in the message, none crashes
    local f = assert(io.open(path, "rb"))
    local bytes = f:read("a")
    f:close()
    for _, n in ipairs({ 0, 7, 8, 9, 40, #bytes // 2, #bytes - 1 }) do
      local g = assert(io.open(path, "wb"))
      g:write(bytes:sub(1, n))
      g:close()
      local ok, e = pcall(nn.load, path)
      assert.is_false(ok, "prefix of " .. n .. " bytes loaded")
      assert.is_truthy(tostring(e):find("nn.load: " .. path .. ":", 1, true), e)
    end
    -- a corrupt header
    local g = assert(io.open(path, "wb"))
    g:write(bytes:sub(1, 8), ("x"):rep(#bytes - 8))
    g:close()
    assert.matches("^nn%.load: " .. path:gsub("%p", "%%%0") .. ": ", select(2, pcall(nn.load, path)))
  end)

  it("survives the crashes found by hand: 3-input broadcast shapes, narrow overflow", function()
    -- where() with an 8-d operand used to overrun the autograd node and crash at collection
    local m = nn.tensor({ 1, 0, 1 }, "uint8")
    local a = nn.tensor(3):requires_grad()
    local b = nn.randn(1, 1, 1, 1, 1, 1, 1, 1):requires_grad()
    local y = nn.where(m, a, b)
    assert.same({ 1, 1, 1, 1, 1, 1, 1, 3 }, y:size())
    y:sum():backward()
    assert.equals(2, a.grad:item())
    assert.equals(1, b.grad:sum():item())
    y, a, b = nil, nil, nil
    collectgarbage()
    -- narrow() with start + length past the largest integer used to read outside the tensor
    local x = nn.randn(3, 4)
    assert.matches("narrow: start 9223372036854775807 and length 2 exceed dimension 1 of size 3",
      err(function() return x:narrow(1, math.maxinteger, 2) end))
    assert.matches("narrow: start 2 and length 9223372036854775807 exceed dimension 1 of size 3",
      err(function() return x:narrow(1, 2, math.maxinteger) end))
    assert.matches("narrow: start 2 and length %-9223372036854775808 exceed",
      err(function() return x:narrow(1, 2, math.mininteger) end))
  end)
end)
