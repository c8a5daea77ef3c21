-- Adam.lua: Adam with bias correction, L2 weight decay added to the gradient, and AMSGrad,
-- as torch.optim.Adam (1.13); the update of each parameter is nn._C.adam_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

local Adam = Optimizer:extend("Adam")

--- Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false})
Adam.defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, amsgrad = false }
Adam.step_fn = "adam_step"

function Adam:validate(g)
  Optimizer.validate(self, g)
  local b = g.betas
  if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number" then
    error(self.__name .. ": betas must be a table of two numbers", 0)
  end
  for i = 1, 2 do
    if not (b[i] >= 0 and b[i] < 1) then
      error(string.format("%s: invalid beta parameter at index %d: %g (must be in [0, 1))", self.__name, i, b[i]), 0)
    end
  end
end

function Adam:update(p, grad, state, g)
  if not state.step then
    state.step = 0
    state.exp_avg = nn.zeros_like(p)
    state.exp_avg_sq = nn.zeros_like(p)
    if g.amsgrad then state.max_exp_avg_sq = nn.zeros_like(p) end
  end
  if g.amsgrad and not state.max_exp_avg_sq then state.max_exp_avg_sq = nn.zeros_like(p) end
  state.step = state.step + 1
  nn._C[self.step_fn](p, grad, state.exp_avg, state.exp_avg_sq, g.amsgrad and state.max_exp_avg_sq or nil,
                      { lr = g.lr, betas = g.betas, eps = g.eps, weight_decay = g.weight_decay, step = state.step })
end

return Adam
