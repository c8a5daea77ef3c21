-- _Pool2d.lua: the shared part of MaxPool2d and AvgPool2d: kernel, stride (default: the
-- kernel), padding, as integers or {h, w} pairs, handed to nn.F.<fn>(x, kernel, opts).
local Module = require "nnlua.nn.Module"

---The shared part of nn.MaxPool2d and nn.AvgPool2d: kernel size, stride and padding.
---@class nn._Pool2d : nn.Module
---@field kernel_size integer|integer[]
---@field stride integer|integer[]
---@field padding integer|integer[]
---@field options table the other options, handed to nn.F as given
local Pool2d = Module:extend("_Pool2d")

local function size_arg(cls, name, v)
  if math.type(v) == "integer" and v >= 0 then return v end
  if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return { v[1], v[2] }
  end
  error(string.format("%s: %s must be a non-negative integer or a pair {h, w}, got %s", cls, name, tostring(v)), 4)
end

---Options of the pooling layers (further ones go to nn.F.max_pool2d / avg_pool2d as given).
---@class nn.Pool2d.opts
---@field stride? integer|integer[] step of the window (default: kernel_size)
---@field padding? integer|integer[] padding on each side (default 0)
---@field dilation? integer|integer[] MaxPool2d only (default 1)
---@field count_include_pad? boolean AvgPool2d only: count padding in the mean (default true)
---@field divisor_override? integer AvgPool2d only: divide by this instead

---nn.MaxPool2d(kernel_size, opts) / nn.AvgPool2d(kernel_size, opts)
---@param kernel_size integer|integer[] window size n or {h, w}
---@param opts? nn.Pool2d.opts
function Pool2d:init(kernel_size, opts)
  opts = opts or {}
  self.kernel_size = size_arg(self.__name, "kernel_size", kernel_size)
  self.stride = size_arg(self.__name, "stride", opts.stride or kernel_size)
  self.padding = size_arg(self.__name, "padding", opts.padding or 0)
  local extra = {}
  for k, v in pairs(opts) do
    if k ~= "stride" and k ~= "padding" then extra[k] = v end
  end
  self.options = extra
end

---Call the pooling function fn(x, kernel_size, options) with this layer's settings.
---@param fn function nn.F.max_pool2d or nn.F.avg_pool2d
---@param x Tensor (N, C, H, W)
---@return Tensor
function Pool2d:forward_with(fn, x)
  local o = { stride = self.stride, padding = self.padding }
  for k, v in pairs(self.options) do o[k] = v end
  return fn(x, self.kernel_size, o)
end

local function show(v)
  return type(v) == "table" and ("(" .. v[1] .. ", " .. v[2] .. ")") or tostring(v)
end

---The sizes and options print(layer) shows.
---@return string
function Pool2d:extra_repr()
  local s = string.format("kernel_size=%s, stride=%s, padding=%s", show(self.kernel_size), show(self.stride),
                          show(self.padding))
  local keys = {}
  for k in pairs(self.options) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do s = s .. ", " .. k .. "=" .. tostring(self.options[k]) end
  return s
end

return Pool2d
