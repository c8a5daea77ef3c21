-- AdaptiveAvgPool2d.lua: average pooling to a fixed output size (integer or {h, w}),
-- e.g. AdaptiveAvgPool2d(1) before a classifier head.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---Average pooling to a fixed output size whatever the input size (nn.F.adaptive_avg_pool2d);
---AdaptiveAvgPool2d(1) is global average pooling, before a classifier head.
---@class nn.AdaptiveAvgPool2d : nn.Module
---@field output_size integer|integer[]
local AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")

---nn.AdaptiveAvgPool2d(output_size)
---@param output_size integer|integer[] n (n x n) or {h, w}
function AdaptiveAvgPool2d:init(output_size)
  local ok = (math.type(output_size) == "integer" and output_size >= 1)
      or (type(output_size) == "table" and #output_size == 2 and math.type(output_size[1]) == "integer"
          and math.type(output_size[2]) == "integer")
  if not ok then
    error("AdaptiveAvgPool2d: output_size must be a positive integer or a pair {h, w}, got " .. tostring(output_size), 3)
  end
  self.output_size = output_size
end

---Pool each channel to output_size.
---@param x Tensor (N, C, H, W) or (C, H, W)
---@return Tensor y (N, C, oh, ow)
function AdaptiveAvgPool2d:forward(x) return nn.F.adaptive_avg_pool2d(x, self.output_size) end

---The sizes and options print(layer) shows.
---@return string
function AdaptiveAvgPool2d:extra_repr()
  local o = self.output_size
  return "output_size=" .. (type(o) == "table" and ("(" .. o[1] .. ", " .. o[2] .. ")") or tostring(o))
end

return AdaptiveAvgPool2d
