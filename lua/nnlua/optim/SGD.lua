-- SGD.lua: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
-- weight decay, as torch.optim.SGD (1.13); the update of each parameter is nn._C.sgd_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

---Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
---as torch.optim.SGD: nn.optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9}).
---@class nn.optim.SGD : nn.optim.Optimizer
---@overload fun(params: Tensor[]|table[], opts: nn.optim.SGD.opts): nn.optim.SGD
local SGD = Optimizer:extend("SGD")

---Options of nn.optim.SGD.
---@class nn.optim.SGD.opts
---@field lr number the learning rate (required)
---@field momentum? number (default 0)
---@field dampening? number (default 0)
---@field weight_decay? number L2 penalty added to the gradient (default 0)
---@field nesterov? boolean Nesterov momentum (default false)
SGD.defaults = { lr = false, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false }

---Check the options of a parameter group (raises an error naming the bad option).
---@param g table the group
function SGD:validate(g)
  Optimizer.validate(self, g)
  Optimizer.check_number("SGD", "dampening", g.dampening)
  if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
    error("SGD: nesterov momentum requires a momentum and zero dampening", 0)
  end
end

---Update one parameter in place from its gradient (called by step()).
---@param p Tensor the parameter
---@param grad Tensor its gradient
---@param state table the parameter's state (moments, step count), kept between steps
---@param g table the parameter's group (its options)
function SGD:update(p, grad, state, g)
  local buf, first = state.momentum_buffer, false
  if g.momentum ~= 0 and not buf then
    buf = nn.zeros_like(p)
    state.momentum_buffer = buf
    first = true
  end
  nn._C.sgd_step(p, grad, buf, { lr = g.lr, momentum = g.momentum, dampening = g.dampening,
                                 weight_decay = g.weight_decay, nesterov = g.nesterov, first_step = first })
end

return SGD
