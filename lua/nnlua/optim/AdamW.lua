-- AdamW.lua: Adam with decoupled weight decay (the parameter shrinks by lr * weight_decay before
-- the Adam step), as torch.optim.AdamW (1.13); each update is nn._C.adamw_step.
local Adam = require "nnlua.optim.Adam"

---Adam with decoupled weight decay (each step shrinks the parameter by lr * weight_decay before
---the Adam update), as torch.optim.AdamW; weight_decay defaults to 1e-2.
---@class nn.optim.AdamW : nn.optim.Adam
---@overload fun(params: Tensor[]|table[], opts?: nn.optim.Adam.opts): nn.optim.AdamW
local AdamW = Adam:extend("AdamW")

AdamW.defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, amsgrad = false }
AdamW.step_fn = "adamw_step"

return AdamW
