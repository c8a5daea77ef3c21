-- Tanh.lua: tanh(x) elementwise, nn.F.tanh as a module (no parameters).
-- Use it as a layer of a Sequential; the gradient is computed in C.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---tanh(x) elementwise (nn.F.tanh) as a layer, without parameters: nn.Tanh().
---@class nn.Tanh : nn.Module
local Tanh = Module:extend("Tanh")

---Apply elementwise.
---@param x Tensor
---@return Tensor
function Tanh:forward(x) return nn.F.tanh(x) end

return Tanh
