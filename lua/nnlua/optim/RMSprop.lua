-- RMSprop.lua: RMSprop with optional momentum, centering and L2 weight decay, as
-- torch.optim.RMSprop (1.13); the update of each parameter is nn._C.rmsprop_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

local RMSprop = Optimizer:extend("RMSprop")

--- RMSprop(params, {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
---                  centered = false})
RMSprop.defaults = { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false }

function RMSprop:validate(g)
  Optimizer.validate(self, g)
  Optimizer.check_number("RMSprop", "alpha", g.alpha)
  if not (g.alpha >= 0) then error(string.format("RMSprop: invalid alpha value: %g (must be >= 0)", g.alpha), 0) end
end

function RMSprop:update(p, grad, state, g)
  if not state.step then
    state.step = 0
    state.square_avg = nn.zeros_like(p)
  end
  if g.momentum > 0 and not state.momentum_buffer then state.momentum_buffer = nn.zeros_like(p) end
  if g.centered and not state.grad_avg then state.grad_avg = nn.zeros_like(p) end
  state.step = state.step + 1
  nn._C.rmsprop_step(p, grad, state.square_avg, g.centered and state.grad_avg or nil,
                     g.momentum > 0 and state.momentum_buffer or nil,
                     { lr = g.lr, alpha = g.alpha, eps = g.eps, weight_decay = g.weight_decay,
                       momentum = g.momentum, centered = g.centered })
end

return RMSprop
