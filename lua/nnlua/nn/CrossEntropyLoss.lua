-- CrossEntropyLoss.lua: fused log-softmax + negative log-likelihood over class logits (N, C)
-- and int64 labels 1..C; options as nn.F.cross_entropy (weight, ignore_index, reduction, label_smoothing).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---Softmax cross-entropy between class scores (N, C) and int64 labels 1..C, fused in one C op
---(nn.F.cross_entropy): loss = criterion(logits, labels).
---@class nn.CrossEntropyLoss : nn.Module
---@field reduction string
---@field ignore_index integer|nil
---@field label_smoothing number
local CrossEntropyLoss = Module:extend("CrossEntropyLoss")

local KNOWN = { weight = true, ignore_index = true, reduction = true, label_smoothing = true }

---Options of nn.CrossEntropyLoss.
---@class nn.CrossEntropyLoss.opts
---@field weight? Tensor (C) a weight per class
---@field ignore_index? integer labels equal to it are skipped (default -100)
---@field reduction? "mean"|"sum"|"none" (default "mean")
---@field label_smoothing? number in [0, 1] (default 0)

---nn.CrossEntropyLoss(opts)
---@param opts? nn.CrossEntropyLoss.opts
function CrossEntropyLoss:init(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN[k] then error("CrossEntropyLoss: unknown option " .. tostring(k), 3) end
  end
  local r = opts.reduction or "mean"
  if r ~= "mean" and r ~= "sum" and r ~= "none" then
    error("CrossEntropyLoss: reduction must be \"mean\", \"sum\" or \"none\", got " .. tostring(r), 3)
  end
  if opts.weight ~= nil then self:register_buffer("weight", opts.weight) end
  self.reduction = r
  self.ignore_index = opts.ignore_index
  self.label_smoothing = opts.label_smoothing or 0
end

---The loss.
---@param input Tensor logits (N, C) (or (N, C, d...))
---@param target Tensor int64 labels 1..C, (N) (or (N, d...))
---@return Tensor loss 0-d (per sample with reduction "none")
function CrossEntropyLoss:forward(input, target)
  local o = { reduction = self.reduction, weight = self.weight, ignore_index = self.ignore_index }
  if self.label_smoothing ~= 0 then o.label_smoothing = self.label_smoothing end
  return nn.F.cross_entropy(input, target, o)
end

---The sizes and options print(layer) shows.
---@return string
function CrossEntropyLoss:extra_repr()
  local s = "reduction=" .. self.reduction
  if self.ignore_index then s = s .. ", ignore_index=" .. self.ignore_index end
  if self.label_smoothing ~= 0 then s = s .. string.format(", label_smoothing=%g", self.label_smoothing) end
  return s
end

return CrossEntropyLoss
