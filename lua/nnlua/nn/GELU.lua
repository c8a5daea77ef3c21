-- GELU.lua: x * Φ(x) (nn.F.gelu); GELU{approximate = "tanh"} uses the tanh approximation.
-- The default ("none") is the exact erf form, as in PyTorch.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

local GELU = Module:extend("GELU")

function GELU:init(opts)
  local a = opts and opts.approximate or "none"
  if a ~= "none" and a ~= "tanh" then error("GELU: approximate must be \"none\" or \"tanh\", got " .. tostring(a), 3) end
  self.approximate = a
end

function GELU:forward(x)
  if self.approximate == "none" then return nn.F.gelu(x) end
  return nn.F.gelu(x, { approximate = self.approximate })
end

function GELU:extra_repr() return self.approximate == "none" and "" or ("approximate=" .. self.approximate) end

return GELU
