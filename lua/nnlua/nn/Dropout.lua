-- Dropout.lua: inverted dropout (zero with probability p, scale the rest by 1/(1-p)) while
-- training; the identity in eval mode. Dropout(p = 0.5).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---Inverted dropout while training: zero each element with probability p and scale the others by
---1 / (1 - p); the identity in eval mode.
---@class nn.Dropout : nn.Module
---@field p number
local Dropout = Module:extend("Dropout")

---nn.Dropout(p) or nn.Dropout{p = 0.5}
---@param p? number|{p: number} the drop probability (default 0.5)
function Dropout:init(p)
  if type(p) == "table" then p = p.p end
  if p == nil then p = 0.5 end
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("Dropout: probability has to be between 0 and 1, but got " .. tostring(p), 3)
  end
  self.p = p
end

---Drop (training) or pass x through (eval).
---@param x Tensor
---@return Tensor y x's size
function Dropout:forward(x) return nn.F.dropout(x, self.p, self.training) end

---The sizes and options print(layer) shows.
---@return string
function Dropout:extra_repr() return string.format("p=%g", self.p) end

return Dropout
