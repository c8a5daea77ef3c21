-- gradcheck.lua: compare autograd gradients with central differences.
-- The numeric side perturbs each input element and evaluates fn in double-checked steps.
local core = require "nnlua.core"

---Check the gradients autograd computes for fn at inputs against central differences: each
---element of each input that requires grad is nudged by ±eps. nn.gradcheck(fn, inputs).
---@param fn fun(...): Tensor returns a tensor; a fixed random weighting of it is the scalar checked
---@param inputs table list of float32 tensors (those with requires_grad are checked; contiguous)
---@param opts? {eps?: number, atol?: number, rtol?: number, raise?: boolean} eps, atol, rtol 1e-2; raise: error when not ok
---@return boolean ok
---@return number worst the largest |analytic - numeric| / tolerance (at most 1 when ok)
---@return string|nil message names the worst element when not ok
local function gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-2, opts.atol or 1e-2, opts.rtol or 1e-2
  if type(fn) ~= "function" then error("gradcheck: fn must be a function, got " .. type(fn), 2) end
  if type(inputs) ~= "table" then error("gradcheck: inputs must be a list of tensors", 2) end
  -- A fixed random projection makes the output scalar without hiding any element.
  local out0 = fn(table.unpack(inputs))
  if not core.is_tensor(out0) then error("gradcheck: fn must return a tensor", 2) end
  local w = core.rand(out0:size()) + 0.5
  local function scalar()
    local s = 0
    core.no_grad(function()
      s = (fn(table.unpack(inputs)) * w):sum():item()
    end)
    return s
  end
  for _, x in ipairs(inputs) do
    if core.is_tensor(x) and x:is_requires_grad() then x.grad = nil end
  end
  local loss = (out0 * w):sum()
  loss:backward()
  local worst, msg = 0, nil
  for k, x in ipairs(inputs) do
    if core.is_tensor(x) and x:is_requires_grad() then
      local g = x.grad
      if not x:is_contiguous() then error("gradcheck: input " .. k .. " must be contiguous", 2) end
      local flat = x:detach():view(-1) -- shares memory with x
      for i = 1, flat:numel() do
        local orig = flat[i]
        flat[i] = orig + eps
        local fp = scalar()
        flat[i] = orig - eps
        local fm = scalar()
        flat[i] = orig
        local num = (fp - fm) / (2 * eps)
        local ana = g and g:view(-1)[i] or 0
        local err = math.abs(num - ana)
        local tol = atol + rtol * math.abs(num)
        if err > tol and err / tol > worst then -- report the worst element
          msg = string.format("gradcheck: input %d element %d: analytic %.6g vs numeric %.6g (diff %.3g)",
            k, i, ana, num, err)
        end
        if err / tol > worst then worst = err / tol end
      end
    end
  end
  if msg and opts.raise then error(msg, 2) end
  return msg == nil, worst, msg
end

return gradcheck
