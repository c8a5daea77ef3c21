-- AdamW.lua: Adam with decoupled weight decay (the parameter shrinks by lr * weight_decay before
-- the Adam step), as torch.optim.AdamW (1.13); each update is nn._C.adamw_step.
local Adam = require "nnlua.optim.Adam"

local AdamW = Adam:extend("AdamW")

--- AdamW(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2, amsgrad = false})
AdamW.defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, amsgrad = false }
AdamW.step_fn = "adamw_step"

return AdamW
