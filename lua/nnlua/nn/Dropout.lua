-- Dropout.lua: inverted dropout (zero with probability p, scale the rest by 1/(1-p)) while
-- training; the identity in eval mode. Dropout(p = 0.5).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

local Dropout = Module:extend("Dropout")

function Dropout:init(p)
  if type(p) == "table" then p = p.p end
  if p == nil then p = 0.5 end
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("Dropout: probability has to be between 0 and 1, but got " .. tostring(p), 3)
  end
  self.p = p
end

function Dropout:forward(x) return nn.F.dropout(x, self.p, self.training) end

function Dropout:extra_repr() return string.format("p=%g", self.p) end

return Dropout
