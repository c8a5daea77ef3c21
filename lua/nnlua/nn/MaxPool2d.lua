-- MaxPool2d.lua: 2-d max pooling over (N, C, H, W); MaxPool2d(kernel_size, {stride =
-- kernel_size, padding = 0}). The argmax is saved in C for the backward.
local nn = require "nnlua"
local Pool2d = require "nnlua.nn._Pool2d"

---2-d max pooling over (N, C, H, W): the maximum of each kernel window (nn.F.max_pool2d).
---@class nn.MaxPool2d : nn._Pool2d
---@overload fun(kernel_size: integer|integer[], opts?: nn.Pool2d.opts): nn.MaxPool2d
local MaxPool2d = Pool2d:extend("MaxPool2d")

---Pool.
---@param x Tensor (N, C, H, W)
---@return Tensor y (N, C, H_out, W_out)
function MaxPool2d:forward(x) return self:forward_with(nn.F.max_pool2d, x) end

return MaxPool2d
