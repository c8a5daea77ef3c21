-- ReLU.lua: max(0, x) elementwise, nn.F.relu as a module (no parameters).
-- Use it as a layer of a Sequential; the gradient is computed in C.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---max(0, x) elementwise (nn.F.relu) as a layer, without parameters: nn.ReLU().
---@class nn.ReLU : nn.Module
local ReLU = Module:extend("ReLU")

---Apply elementwise.
---@param x Tensor
---@return Tensor
function ReLU:forward(x) return nn.F.relu(x) end

return ReLU
