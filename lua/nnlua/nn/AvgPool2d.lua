-- AvgPool2d.lua: 2-d average pooling over (N, C, H, W); AvgPool2d(kernel_size, {stride =
-- kernel_size, padding = 0, ...}), further options passed to nn.F.avg_pool2d.
local nn = require "nnlua"
local Pool2d = require "nnlua.nn._Pool2d"

local AvgPool2d = Pool2d:extend("AvgPool2d")

function AvgPool2d:forward(x) return self:forward_with(nn.F.avg_pool2d, x) end

return AvgPool2d
