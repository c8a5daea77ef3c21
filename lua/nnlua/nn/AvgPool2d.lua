-- AvgPool2d.lua: 2-d average pooling over (N, C, H, W); AvgPool2d(kernel_size, {stride =
-- kernel_size, padding = 0, ...}), further options passed to nn.F.avg_pool2d.
local nn = require "nnlua"
local Pool2d = require "nnlua.nn._Pool2d"

---2-d average pooling over (N, C, H, W): the mean of each kernel window (nn.F.avg_pool2d).
---@class nn.AvgPool2d : nn._Pool2d
---@overload fun(kernel_size: integer|integer[], opts?: nn.Pool2d.opts): nn.AvgPool2d
local AvgPool2d = Pool2d:extend("AvgPool2d")

---Pool.
---@param x Tensor (N, C, H, W)
---@return Tensor y (N, C, H_out, W_out)
function AvgPool2d:forward(x) return self:forward_with(nn.F.avg_pool2d, x) end

return AvgPool2d
