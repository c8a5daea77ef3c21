-- Linear.lua: y = x Wᵀ + b with W of size [out_features, in_features] (PyTorch's layout).
-- Weights kaiming_uniform_(a = sqrt 5), bias U(-1/sqrt(in), 1/sqrt(in)), as in PyTorch.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

local Linear = Module:extend("Linear")

--- Linear(in_features, out_features, {bias = true})
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

function Linear:reset_parameters()
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias then
    local bound = self.in_features > 0 and 1 / math.sqrt(self.in_features) or 0
    init.uniform_(self.bias, -bound, bound)
  end
end

function Linear:forward(x)
  return nn.F.linear(x, self.weight, self.bias)
end

function Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features,
                       tostring(self.bias ~= nil))
end

return Linear
