-- Softmax.lua: exp(x) / sum exp(x) along dim (nn.F.softmax).
-- Softmax(dim); dim is 1-based, negative counts from the end; default -1 (the last).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---exp(x) / Σ exp(x) along dim (nn.F.softmax).
---@class nn.Softmax : nn.Module
---@field dim integer
local Softmax = Module:extend("Softmax")

---nn.Softmax(dim)
---@param dim? integer 1-based, negative from the end (default -1, the last)
function Softmax:init(dim)
  if dim ~= nil and math.type(dim) ~= "integer" then error("Softmax: dim must be an integer, got " .. tostring(dim), 3) end
  self.dim = dim or -1
end

---Apply along dim.
---@param x Tensor
---@return Tensor
function Softmax:forward(x) return nn.F.softmax(x, self.dim) end

---The sizes and options print(layer) shows.
---@return string
function Softmax:extra_repr() return "dim=" .. self.dim end

return Softmax
