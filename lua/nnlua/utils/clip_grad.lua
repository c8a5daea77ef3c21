-- clip_grad.lua: nn.utils.clip_grad_norm(params, max_norm, {norm_type = 2}): scales the gradients
-- in place so that their joint norm is at most max_norm; returns the norm before clipping.
local nn = require "nnlua"

local M = {}

local function grads_of(params)
  if nn.is_tensor(params) then params = { params } end
  if type(params) ~= "table" then error("clip_grad_norm: params must be a list of tensors, got " .. type(params), 3) end
  local gs = {}
  for i, p in ipairs(params) do
    if not nn.is_tensor(p) then error(string.format("clip_grad_norm: parameter %d is a %s, not a tensor", i, type(p)), 3) end
    local g = p.grad
    if g then gs[#gs + 1] = g end
  end
  return gs
end

---Scale the gradients in place so that their joint norm is at most max_norm (as PyTorch: each is
---multiplied by min(1, max_norm / (total + 1e-6))). Also nn.utils.clip_grad_norm_.
---@param params Tensor|Tensor[] the parameters (model:parameters())
---@param max_norm number the largest norm allowed
---@param opts? {norm_type?: number} the p of the p-norm (default 2; math.huge: the largest |g|)
---@return number total the norm before clipping
function M.clip_grad_norm(params, max_norm, opts)
  if type(max_norm) ~= "number" then error("clip_grad_norm: max_norm must be a number, got " .. type(max_norm), 2) end
  local norm_type = opts and opts.norm_type or 2
  if type(norm_type) ~= "number" or norm_type <= 0 then
    error("clip_grad_norm: norm_type must be a positive number or math.huge", 2)
  end
  local gs = grads_of(params)
  if #gs == 0 then return 0 end
  local total
  if norm_type == math.huge then
    total = 0
    for _, g in ipairs(gs) do total = math.max(total, g:abs():max():item()) end
  elseif norm_type == 2 then
    local s = 0
    for _, g in ipairs(gs) do s = s + nn._C.sum_squares(g) end
    total = math.sqrt(s)
  else
    local s = 0
    for _, g in ipairs(gs) do s = s + (g:abs() ^ norm_type):sum():item() end
    total = s ^ (1 / norm_type)
  end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for _, g in ipairs(gs) do g:mul_(coef) end
  end
  return total
end

M.clip_grad_norm_ = M.clip_grad_norm

---Clamp every gradient element to [-clip_value, clip_value] in place. Also clip_grad_value_.
---@param params Tensor|Tensor[] the parameters
---@param clip_value number the bound
function M.clip_grad_value(params, clip_value)
  if type(clip_value) ~= "number" then error("clip_grad_value: clip_value must be a number", 2) end
  for _, p in ipairs(type(params) == "table" and params or { params }) do
    local g = p.grad
    if g then g:copy_(g:clamp(-clip_value, clip_value)) end
  end
end
M.clip_grad_value_ = M.clip_grad_value

return M
