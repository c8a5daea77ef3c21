-- Softmax.lua: exp(x) / sum exp(x) along dim (nn.F.softmax).
-- Softmax(dim); dim is 1-based, negative counts from the end; default -1 (the last).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

local Softmax = Module:extend("Softmax")

function Softmax:init(dim)
  if dim ~= nil and math.type(dim) ~= "integer" then error("Softmax: dim must be an integer, got " .. tostring(dim), 3) end
  self.dim = dim or -1
end

function Softmax:forward(x) return nn.F.softmax(x, self.dim) end

function Softmax:extra_repr() return "dim=" .. self.dim end

return Softmax
