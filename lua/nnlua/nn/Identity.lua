-- Identity.lua: returns its input unchanged; a placeholder when replacing a layer
-- (model.fc = nn.Identity() turns a classifier into a feature extractor).
local Module = require "nnlua.nn.Module"

local Identity = Module:extend("Identity")

function Identity:init() end

function Identity:forward(x) return x end

return Identity
