-- MSELoss.lua: mean squared error between input and target of the same size (nn.F.mse_loss).
-- MSELoss{reduction = "mean" | "sum" | "none"}.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---Mean squared error between input and target of the same size (nn.F.mse_loss).
---@class nn.MSELoss : nn.Module
---@field reduction string
local MSELoss = Module:extend("MSELoss")

---nn.MSELoss{reduction = "mean"}
---@param opts? {reduction?: "mean"|"sum"|"none"}
function MSELoss:init(opts)
  local r = opts and opts.reduction or "mean"
  if r ~= "mean" and r ~= "sum" and r ~= "none" then
    error("MSELoss: reduction must be \"mean\", \"sum\" or \"none\", got " .. tostring(r), 3)
  end
  self.reduction = r
end

---The loss.
---@param input Tensor
---@param target Tensor input's size
---@return Tensor loss 0-d (input's size with reduction "none")
function MSELoss:forward(input, target) return nn.F.mse_loss(input, target, { reduction = self.reduction }) end

---The sizes and options print(layer) shows.
---@return string
function MSELoss:extra_repr() return "reduction=" .. self.reduction end

return MSELoss
