-- RMSprop.lua: RMSprop with optional momentum, centering and L2 weight decay, as
-- torch.optim.RMSprop (1.13); the update of each parameter is nn._C.rmsprop_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

---RMSprop with optional momentum, centering and L2 weight decay, as torch.optim.RMSprop.
---@class nn.optim.RMSprop : nn.optim.Optimizer
---@overload fun(params: Tensor[]|table[], opts?: nn.optim.RMSprop.opts): nn.optim.RMSprop
local RMSprop = Optimizer:extend("RMSprop")

---Options of nn.optim.RMSprop.
---@class nn.optim.RMSprop.opts
---@field lr? number learning rate (default 1e-2)
---@field alpha? number decay of the squared-gradient average (default 0.99)
---@field eps? number added to the denominator (default 1e-8)
---@field weight_decay? number L2 penalty (default 0)
---@field momentum? number (default 0)
---@field centered? boolean divide by the variance estimate instead (default false)
RMSprop.defaults = { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false }

---Check the options of a parameter group (raises an error naming the bad option).
---@param g table the group
function RMSprop:validate(g)
  Optimizer.validate(self, g)
  Optimizer.check_number("RMSprop", "alpha", g.alpha)
  if not (g.alpha >= 0) then error(string.format("RMSprop: invalid alpha value: %g (must be >= 0)", g.alpha), 0) end
end

---Update one parameter in place from its gradient (called by step()).
---@param p Tensor the parameter
---@param grad Tensor its gradient
---@param state table the parameter's state (moments, step count), kept between steps
---@param g table the parameter's group (its options)
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
