-- SGD.lua: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
-- weight decay, as torch.optim.SGD (1.13); the update of each parameter is nn._C.sgd_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

local SGD = Optimizer:extend("SGD")

--- SGD(params, {lr =, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false});
--- lr is required.
SGD.defaults = { lr = false, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false }

function SGD:validate(g)
  Optimizer.validate(self, g)
  Optimizer.check_number("SGD", "dampening", g.dampening)
  if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
    error("SGD: nesterov momentum requires a momentum and zero dampening", 0)
  end
end

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
