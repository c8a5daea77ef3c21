-- LeakyReLU.lua: x for x > 0, negative_slope * x otherwise (nn.F.leaky_relu).
-- LeakyReLU(negative_slope) or LeakyReLU{negative_slope = 0.01}.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

local LeakyReLU = Module:extend("LeakyReLU")

function LeakyReLU:init(slope)
  if type(slope) == "table" then slope = slope.negative_slope end
  if slope == nil then slope = 0.01 end
  if type(slope) ~= "number" then error("LeakyReLU: negative_slope must be a number, got " .. type(slope), 3) end
  self.negative_slope = slope
end

function LeakyReLU:forward(x) return nn.F.leaky_relu(x, self.negative_slope) end

function LeakyReLU:extra_repr() return "negative_slope=" .. string.format("%g", self.negative_slope) end

return LeakyReLU
