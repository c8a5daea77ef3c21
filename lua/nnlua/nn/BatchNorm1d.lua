-- BatchNorm1d.lua: batch normalisation over (N, C) or (N, C, L) inputs, per channel C.
-- Options and buffers as in _BatchNorm.lua (PyTorch's defaults).
local BatchNorm = require "nnlua.nn._BatchNorm"

---Batch normalisation of (N, C) or (N, C, L) inputs per channel C, as torch.nn.BatchNorm1d.
---@class nn.BatchNorm1d : nn._BatchNorm
---@overload fun(num_features: integer, opts?: nn.BatchNorm.opts): nn.BatchNorm1d
local BatchNorm1d = BatchNorm:extend("BatchNorm1d")
BatchNorm1d.input_dims = { 2, 3 }
BatchNorm1d.input_dims_text = "2D or 3D"

return BatchNorm1d
