-- nn_init.lua: nn.init, in-place weight initialisers with PyTorch's fan computation and gains.
-- Every function fills its tensor under no_grad (so parameters can be filled) and returns it.
local nn = require "nnlua"

local init = {}

local function check(fn, t)
  if not nn.is_tensor(t) then error(string.format("init.%s: tensor expected, got %s", fn, type(t)), 3) end
end

local function fill(t, f)
  nn.no_grad(f)
  return t
end

---fan_in and fan_out of a weight laid out [out, in, k...] as in PyTorch (receptive field = Π k).
---@param t Tensor at least 2-D
---@return integer fan_in in * Π k
---@return integer fan_out out * Π k
function init.calculate_fan_in_and_fan_out(t)
  check("calculate_fan_in_and_fan_out", t)
  local size = t:size()
  if #size < 2 then
    error(string.format("init: fan in and fan out can not be computed for a tensor with fewer than 2 "
                        .. "dimensions (got size [%s])", table.concat(size, ",")), 3)
  end
  local receptive = 1
  for i = 3, #size do receptive = receptive * size[i] end
  return size[2] * receptive, size[1] * receptive
end

local function fan(t, mode)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  mode = mode or "fan_in"
  if mode == "fan_in" then return fan_in end
  if mode == "fan_out" then return fan_out end
  error(string.format("init: mode %q not supported, please use one of fan_in, fan_out", tostring(mode)), 3)
end

local LINEAR = {
  linear = true, conv1d = true, conv2d = true, conv3d = true, conv_transpose1d = true,
  conv_transpose2d = true, conv_transpose3d = true, sigmoid = true,
}

---The recommended gain for a nonlinearity (PyTorch's table: relu √2, tanh 5/3, linear 1, ...).
---@param nonlinearity string "linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu", ...
---@param param? number leaky_relu's negative slope (default 0.01)
---@return number gain
function init.calculate_gain(nonlinearity, param)
  if LINEAR[nonlinearity] then return 1 end
  if nonlinearity == "tanh" then return 5 / 3 end
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "selu" then return 3 / 4 end
  if nonlinearity == "leaky_relu" then
    local slope = 0.01
    if param ~= nil then
      if type(param) ~= "number" then error("calculate_gain: negative_slope " .. tostring(param) .. " is not a number", 2) end
      slope = param
    end
    return math.sqrt(2 / (1 + slope * slope))
  end
  error("calculate_gain: unsupported nonlinearity " .. tostring(nonlinearity), 2)
end

-- Optional arguments come as an option table, or positionally as in PyTorch.
local function opts_of(arg, names, ...)
  if type(arg) == "table" then return arg end
  local o, pos = {}, { arg, ... }
  for i, n in ipairs(names) do o[n] = pos[i] end
  return o
end

---Fill t with draws from U(a, b): uniform_(t, {a = 0, b = 1}) or uniform_(t, a, b).
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... number|{a?: number, b?: number} a and b, or an option table
---@return Tensor t
function init.uniform_(t, ...)
  check("uniform_", t)
  local o = opts_of(..., { "a", "b" }, select(2, ...))
  return fill(t, function() t:uniform_(o.a or 0, o.b or 1) end)
end

---Fill t with draws from N(mean, std²): normal_(t, {mean = 0, std = 1}) or normal_(t, mean, std).
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... number|{mean?: number, std?: number} mean and std, or an option table
---@return Tensor t
function init.normal_(t, ...)
  check("normal_", t)
  local o = opts_of(..., { "mean", "std" }, select(2, ...))
  return fill(t, function() t:normal_(o.mean or 0, o.std or 1) end)
end

---Fill t with val.
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param val number
---@return Tensor t
function init.constant_(t, val)
  check("constant_", t)
  if type(val) ~= "number" then error("init.constant_: number expected for val, got " .. type(val), 2) end
  return fill(t, function() t:fill_(val) end)
end

---Fill t with zeros.
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@return Tensor t
function init.zeros_(t)
  check("zeros_", t)
  return fill(t, function() t:zero_() end)
end

---Fill t with ones.
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@return Tensor t
function init.ones_(t)
  check("ones_", t)
  return fill(t, function() t:fill_(1) end)
end

---Glorot uniform: U(-a, a) with a = gain * √(6 / (fan_in + fan_out)); (t, {gain = 1}) or (t, gain).
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... number|{gain?: number} the gain (default 1)
---@return Tensor t
function init.xavier_uniform_(t, ...)
  check("xavier_uniform_", t)
  local o = opts_of(..., { "gain" })
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local a = math.sqrt(3) * (o.gain or 1) * math.sqrt(2 / (fan_in + fan_out))
  return fill(t, function() t:uniform_(-a, a) end)
end

---Glorot normal: N(0, std²) with std = gain * √(2 / (fan_in + fan_out)); (t, {gain = 1}) or (t, gain).
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... number|{gain?: number} the gain (default 1)
---@return Tensor t
function init.xavier_normal_(t, ...)
  check("xavier_normal_", t)
  local o = opts_of(..., { "gain" })
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local std = (o.gain or 1) * math.sqrt(2 / (fan_in + fan_out))
  return fill(t, function() t:normal_(0, std) end)
end

local function kaiming_std(t, o)
  local gain = init.calculate_gain(o.nonlinearity or "leaky_relu", o.a or 0)
  return gain / math.sqrt(fan(t, o.mode))
end

---He uniform: U(-b, b) with b = gain * √(3 / fan); (t, {a = 0, mode = "fan_in", nonlinearity =
---"leaky_relu"}) or positionally. Linear and Conv2d use a = √5, giving b = 1/√fan_in.
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... any a, mode, nonlinearity, or {a?: number, mode?: "fan_in"|"fan_out", nonlinearity?: string}
---@return Tensor t
function init.kaiming_uniform_(t, ...)
  check("kaiming_uniform_", t)
  local o = opts_of(..., { "a", "mode", "nonlinearity" }, select(2, ...))
  local bound = math.sqrt(3) * kaiming_std(t, o)
  return fill(t, function() t:uniform_(-bound, bound) end)
end

---He normal: N(0, std²) with std = gain / √fan; options as kaiming_uniform_.
---@param t Tensor the tensor to fill (a parameter is fine: filled under no_grad)
---@param ... any a, mode, nonlinearity, or {a?: number, mode?: "fan_in"|"fan_out", nonlinearity?: string}
---@return Tensor t
function init.kaiming_normal_(t, ...)
  check("kaiming_normal_", t)
  local o = opts_of(..., { "a", "mode", "nonlinearity" }, select(2, ...))
  local std = kaiming_std(t, o)
  return fill(t, function() t:normal_(0, std) end)
end

return init
