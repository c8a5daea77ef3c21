-- GELU.lua: x * Φ(x) (nn.F.gelu); GELU{approximate = "tanh"} uses the tanh approximation.
-- The default ("none") is the exact erf form, as in PyTorch.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---The GELU activation x Φ(x) (nn.F.gelu): exact (erf) by default, or its tanh approximation.
---@class nn.GELU : nn.Module
---@field approximate string "none" or "tanh"
local GELU = Module:extend("GELU")

---nn.GELU() or nn.GELU{approximate = "tanh"}
---@param opts? {approximate?: "none"|"tanh"}
function GELU:init(opts)
  local a = opts and opts.approximate or "none"
  if a ~= "none" and a ~= "tanh" then error("GELU: approximate must be \"none\" or \"tanh\", got " .. tostring(a), 3) end
  self.approximate = a
end

---Apply GELU elementwise.
---@param x Tensor
---@return Tensor
function GELU:forward(x)
  if self.approximate == "none" then return nn.F.gelu(x) end
  return nn.F.gelu(x, { approximate = self.approximate })
end

---The sizes and options print(layer) shows.
---@return string
function GELU:extra_repr() return self.approximate == "none" and "" or ("approximate=" .. self.approximate) end

return GELU
