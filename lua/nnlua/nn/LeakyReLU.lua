-- LeakyReLU.lua: x for x > 0, negative_slope * x otherwise (nn.F.leaky_relu).
-- LeakyReLU(negative_slope) or LeakyReLU{negative_slope = 0.01}.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---x for x > 0, negative_slope * x otherwise (nn.F.leaky_relu).
---@class nn.LeakyReLU : nn.Module
---@field negative_slope number
local LeakyReLU = Module:extend("LeakyReLU")

---nn.LeakyReLU(negative_slope) or nn.LeakyReLU{negative_slope = 0.01}
---@param slope? number|{negative_slope: number} the slope for x < 0 (default 0.01)
function LeakyReLU:init(slope)
  if type(slope) == "table" then slope = slope.negative_slope end
  if slope == nil then slope = 0.01 end
  if type(slope) ~= "number" then error("LeakyReLU: negative_slope must be a number, got " .. type(slope), 3) end
  self.negative_slope = slope
end

---Apply elementwise.
---@param x Tensor
---@return Tensor
function LeakyReLU:forward(x) return nn.F.leaky_relu(x, self.negative_slope) end

---The sizes and options print(layer) shows.
---@return string
function LeakyReLU:extra_repr() return "negative_slope=" .. string.format("%g", self.negative_slope) end

return LeakyReLU
