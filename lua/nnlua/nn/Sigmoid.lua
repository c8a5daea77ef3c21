-- Sigmoid.lua: 1 / (1 + exp(-x)) elementwise, nn.F.sigmoid as a module (no parameters).
-- Use it as a layer of a Sequential; the gradient is computed in C.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---1 / (1 + e^-x) elementwise (nn.F.sigmoid) as a layer, without parameters: nn.Sigmoid().
---@class nn.Sigmoid : nn.Module
local Sigmoid = Module:extend("Sigmoid")

---Apply elementwise.
---@param x Tensor
---@return Tensor
function Sigmoid:forward(x) return nn.F.sigmoid(x) end

return Sigmoid
