-- Adam.lua: Adam with bias correction, L2 weight decay added to the gradient, and AMSGrad,
-- as torch.optim.Adam (1.13); the update of each parameter is nn._C.adam_step.
local nn = require "nnlua"
local Optimizer = require "nnlua.optim.Optimizer"

---Adam with bias correction, L2 weight decay added to the gradient, and AMSGrad, as
---torch.optim.Adam: nn.optim.Adam(model:parameters(), {lr = 1e-3}).
---@class nn.optim.Adam : nn.optim.Optimizer
---@overload fun(params: Tensor[]|table[], opts?: nn.optim.Adam.opts): nn.optim.Adam
local Adam = Optimizer:extend("Adam")

---Options of nn.optim.Adam (and AdamW, whose weight_decay defaults to 1e-2 and is decoupled).
---@class nn.optim.Adam.opts
---@field lr? number learning rate (default 1e-3)
---@field betas? number[] {β1, β2}, decay of the moment averages (default {0.9, 0.999})
---@field eps? number added to the denominator (default 1e-8)
---@field weight_decay? number L2 penalty (default 0)
---@field amsgrad? boolean use the maximum of the second moments (default false)
Adam.defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, amsgrad = false }
Adam.step_fn = "adam_step"

---Check the options of a parameter group (raises an error naming the bad option).
---@param g table the group
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

---Update one parameter in place from its gradient (called by step()).
---@param p Tensor the parameter
---@param grad Tensor its gradient
---@param state table the parameter's state (moments, step count), kept between steps
---@param g table the parameter's group (its options)
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
