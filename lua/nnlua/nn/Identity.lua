-- Identity.lua: returns its input unchanged; a placeholder when replacing a layer
-- (model.fc = nn.Identity() turns a classifier into a feature extractor).
local Module = require "nnlua.nn.Module"

---Returns its input unchanged: a placeholder when replacing a layer (model.fc = nn.Identity()
---turns a classifier into a feature extractor).
---@class nn.Identity : nn.Module
local Identity = Module:extend("Identity")

---nn.Identity(): no arguments.
function Identity:init() end

---Return x.
---@param x any
---@return any x
function Identity:forward(x) return x end

return Identity
