-- nnlua: the module users require. The C core (nnlua.core) gives tensors, autograd and
-- kernels; the Lua files add the nn modules, optimizers, data loading and tools.
local core = require "nnlua.core"

local nn = {}
for k, v in pairs(core) do nn[k] = v end

-- Submodules load on first use, so `require "nnlua"` stays fast.
local lazy = {
  gradcheck = "nnlua.utils.gradcheck",
  help = "nnlua.help",
  data = "nnlua.data",
  metrics = "nnlua.metrics",
  models = "nnlua.models",
  plot = "nnlua.plot",
  progress = "nnlua.utils.progress",
}
-- nn.Linear, nn.Sequential, ... (one class per file in nnlua/nn/), nn.init and nn.optim.
for _, name in ipairs(require("nnlua.nn").names) do lazy[name] = "nnlua.nn." .. name end
lazy.init = "nnlua.nn_init"
lazy.optim = "nnlua.optim"
lazy.utils = lazy.utils or "nnlua.utils" -- nn.utils: clip_grad_norm, save/load_checkpoint
setmetatable(nn, {
  __index = function(t, k)
    local path = lazy[k]
    if not path then return nil end
    local m = require(path)
    rawset(t, k, m)
    return m
  end,
})

return nn
