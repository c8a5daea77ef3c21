-- BatchNorm2d.lua: batch normalisation over (N, C, H, W) inputs, per channel C.
-- Options and buffers as in _BatchNorm.lua (PyTorch's defaults).
local BatchNorm = require "nnlua.nn._BatchNorm"

---Batch normalisation of (N, C, H, W) inputs per channel C, as torch.nn.BatchNorm2d.
---@class nn.BatchNorm2d : nn._BatchNorm
---@overload fun(num_features: integer, opts?: nn.BatchNorm.opts): nn.BatchNorm2d
local BatchNorm2d = BatchNorm:extend("BatchNorm2d")
BatchNorm2d.input_dims = { 4 }
BatchNorm2d.input_dims_text = "4D"

return BatchNorm2d
