-- _Pool2d.lua: the shared part of MaxPool2d and AvgPool2d: kernel, stride (default: the
-- kernel), padding, as integers or {h, w} pairs, handed to nn.F.<fn>(x, kernel, opts).
local Module = require "nnlua.nn.Module"

local Pool2d = Module:extend("_Pool2d")

local function size_arg(cls, name, v)
  if math.type(v) == "integer" and v >= 0 then return v end
  if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return { v[1], v[2] }
  end
  error(string.format("%s: %s must be a non-negative integer or a pair {h, w}, got %s", cls, name, tostring(v)), 4)
end

--- Pool(kernel_size, {stride = kernel_size, padding = 0, ...}); other options go to nn.F as given.
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

function Pool2d:forward_with(fn, x)
  local o = { stride = self.stride, padding = self.padding }
  for k, v in pairs(self.options) do o[k] = v end
  return fn(x, self.kernel_size, o)
end

local function show(v)
  return type(v) == "table" and ("(" .. v[1] .. ", " .. v[2] .. ")") or tostring(v)
end

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
