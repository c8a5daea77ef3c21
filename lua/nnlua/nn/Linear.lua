-- Linear.lua: y = x Wᵀ + b with W of size [out_features, in_features] (PyTorch's layout).
-- Weights kaiming_uniform_(a = sqrt 5), bias U(-1/sqrt(in), 1/sqrt(in)), as in PyTorch.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---A fully-connected layer: y = x Wᵀ + b over the last dimension of x (nn.F.linear). Weights in
---PyTorch's layout and initialisation: W kaiming_uniform_(a = √5), b U(-1/√in, 1/√in).
---@class nn.Linear : nn.Module
---@field weight Tensor (out_features, in_features)
---@field bias Tensor|nil (out_features); nil with bias = false
---@field in_features integer
---@field out_features integer
local Linear = Module:extend("Linear")

---nn.Linear(in_features, out_features, opts): a new layer with PyTorch's initialisation.
---@param in_features integer size of each input sample (the last dimension of x)
---@param out_features integer size of each output sample
---@param opts? {bias?: boolean} bias = false: no additive bias (default true)
function Linear:init(in_features, out_features, opts)
  if math.type(in_features) ~= "integer" or math.type(out_features) ~= "integer"
      or in_features < 0 or out_features < 0 then
    error(string.format("Linear: in_features and out_features must be non-negative integers, got %s and %s",
                        tostring(in_features), tostring(out_features)), 3)
  end
  self.in_features, self.out_features = in_features, out_features
  self.weight = nn.Parameter(nn.empty(out_features, in_features))
  if not opts or opts.bias ~= false then self.bias = nn.Parameter(nn.empty(out_features)) end
  self:reset_parameters()
end

---Draw new weights and bias (PyTorch's initialisation).
function Linear:reset_parameters()
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias then
    local bound = self.in_features > 0 and 1 / math.sqrt(self.in_features) or 0
    init.uniform_(self.bias, -bound, bound)
  end
end

---Apply the layer.
---@param x Tensor (..., in_features)
---@return Tensor y (..., out_features)
function Linear:forward(x)
  return nn.F.linear(x, self.weight, self.bias)
end

---The sizes and options print(layer) shows.
---@return string
function Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features,
                       tostring(self.bias ~= nil))
end

return Linear
