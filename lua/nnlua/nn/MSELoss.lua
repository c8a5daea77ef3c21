-- MSELoss.lua: mean squared error between input and target of the same size (nn.F.mse_loss).
-- MSELoss{reduction = "mean" | "sum" | "none"}.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

local MSELoss = Module:extend("MSELoss")

function MSELoss:init(opts)
  local r = opts and opts.reduction or "mean"
  if r ~= "mean" and r ~= "sum" and r ~= "none" then
    error("MSELoss: reduction must be \"mean\", \"sum\" or \"none\", got " .. tostring(r), 3)
  end
  self.reduction = r
end

function MSELoss:forward(input, target) return nn.F.mse_loss(input, target, { reduction = self.reduction }) end

function MSELoss:extra_repr() return "reduction=" .. self.reduction end

return MSELoss
