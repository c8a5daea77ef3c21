-- nnlua: the module users require. The C core (nnlua.core) gives tensors, autograd and
-- kernels; the Lua files add the nn modules, optimizers, data loading and tools.
local core = require "nnlua.core"

local nn = {}
for k, v in pairs(core) do nn[k] = v end

-- Submodules load on first use, so `require "nnlua"` stays fast.
local lazy = {
  gradcheck = "nnlua.utils.gradcheck",
}
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
