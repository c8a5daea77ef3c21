-- _BatchNorm.lua: the shared part of BatchNorm1d and BatchNorm2d: affine weight and bias, the
-- running_mean / running_var / num_batches_tracked buffers, PyTorch's momentum rule.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---The shared part of nn.BatchNorm1d and nn.BatchNorm2d: affine weight and bias, the running
---statistics buffers and PyTorch's momentum rule (nn.F.batch_norm).
---@class nn._BatchNorm : nn.Module
---@field weight Tensor|nil (C) scale γ, with affine
---@field bias Tensor|nil (C) shift β, with affine
---@field running_mean Tensor|nil (C) buffer, with track_running_stats
---@field running_var Tensor|nil (C) buffer
---@field num_batches_tracked Tensor|nil int64 0-d buffer
---@field num_features integer
---@field eps number
---@field momentum number|false
local BatchNorm = Module:extend("_BatchNorm")

---Options of the batch-norm layers (PyTorch's defaults).
---@class nn.BatchNorm.opts
---@field eps? number added to the variance (default 1e-5)
---@field momentum? number|false weight of the new batch in the running statistics (default 0.1); false: a cumulative average
---@field affine? boolean learn weight and bias (default true)
---@field track_running_stats? boolean keep running statistics for eval mode (default true)

---nn.BatchNorm1d(num_features, opts) / nn.BatchNorm2d(num_features, opts)
---@param num_features integer C, the channels (dimension 2 of the input)
---@param opts? nn.BatchNorm.opts
function BatchNorm:init(num_features, opts)
  opts = opts or {}
  if math.type(num_features) ~= "integer" or num_features < 1 then
    error(string.format("%s: num_features must be a positive integer, got %s", self.__name, tostring(num_features)), 3)
  end
  self.num_features = num_features
  self.eps = opts.eps or 1e-5
  if opts.momentum == nil then self.momentum = 0.1 else self.momentum = opts.momentum end
  self.affine = opts.affine ~= false
  self.track_running_stats = opts.track_running_stats ~= false
  if self.affine then
    self.weight = nn.Parameter(nn.empty(num_features))
    self.bias = nn.Parameter(nn.empty(num_features))
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", nn.zeros(num_features))
    self:register_buffer("running_var", nn.ones(num_features))
    self:register_buffer("num_batches_tracked", nn.zeros({}, "int64"))
  end
  self:reset_parameters()
end

---Reset the running statistics (mean 0, variance 1, count 0).
function BatchNorm:reset_running_stats()
  if self.track_running_stats then
    self.running_mean:zero_()
    self.running_var:fill_(1)
    self.num_batches_tracked:zero_()
  end
end

---Reset the running statistics, and weight to 1 and bias to 0.
function BatchNorm:reset_parameters()
  self:reset_running_stats()
  if self.affine then
    init.ones_(self.weight)
    init.zeros_(self.bias)
  end
end

---Raise an error unless x has a dimension count this layer takes.
---@param x Tensor
function BatchNorm:check_input(x)
  local d = nn.is_tensor(x) and x:dim()
  if not d then error(self.__name .. ": tensor expected, got " .. type(x), 3) end
  local ok = false
  for _, n in ipairs(self.input_dims) do ok = ok or d == n end
  if not ok then error(string.format("%s: expected %s input (got %dD input)", self.__name, self.input_dims_text, d), 3) end
end

---Normalise: batch statistics in training mode (updating the running ones), running statistics in
---eval mode.
---@param x Tensor (N, C, ...)
---@return Tensor y x's size
function BatchNorm:forward(x)
  self:check_input(x)
  local factor = self.momentum or 0.0
  if self.training and self.track_running_stats then
    local n = self.num_batches_tracked
    n:fill_(n:item() + 1)
    if not self.momentum then factor = 1.0 / n:item() end
  end
  local use_batch_stats = self.training or not self.track_running_stats
  local rm, rv
  if not self.training or self.track_running_stats then rm, rv = self.running_mean, self.running_var end
  return nn.F.batch_norm(x, rm, rv, self.weight, self.bias, use_batch_stats, factor, self.eps)
end

---The sizes and options print(layer) shows.
---@return string
function BatchNorm:extra_repr()
  return string.format("%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s", self.num_features, self.eps,
                       self.momentum and string.format("%g", self.momentum) or "false", tostring(self.affine),
                       tostring(self.track_running_stats))
end

return BatchNorm
