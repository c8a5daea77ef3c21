-- Optimizer.lua: the base of nn.optim's optimizers: parameter groups with their own options,
-- per-parameter state, zero_grad, step(closure), state_dict / load_state_dict as in torch.optim.
local nn = require "nnlua"

---The base class of the optimizers (nn.optim.SGD, Adam, ...): parameter groups with their own
---options, per-parameter state, zero_grad, step(closure) and state_dict, as torch.optim.
---Typical loop: opt:zero_grad(); loss = criterion(model(x), y); loss:backward(); opt:step().
---@class nn.optim.Optimizer
---@field param_groups table[] each {params = Tensor[], lr = ..., ...}
---@field state table<Tensor, table> per-parameter state
---@field defaults table the options groups take when they leave them out
local Optimizer = {}
Optimizer.__index = Optimizer
Optimizer.__name = "Optimizer"

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  self:init(...)
  return self
end

---Make a subclass: `local SGD = Optimizer:extend("SGD")` with `defaults`, `validate(group)` and
---`update(p, grad, state, group)` (one parameter, usually through a C step function).
---@param name string the class name
---@return table class
function Optimizer:extend(name)
  local cls = { __name = name, super = self }
  cls.__index = cls
  cls.__tostring = self.__tostring
  return setmetatable(cls, { __index = self, __call = construct })
end
setmetatable(Optimizer, { __call = construct })

local function shape(t) return "[" .. table.concat(t:size(), ",") .. "]" end

local function is_module(v)
  return type(v) == "table" and getmetatable(v) and type(v.parameters) == "function" and v._params ~= nil
end

---Optimizer(params, opts): params is a list of tensors or a list of groups {params = {...}, lr = ...};
---opts (the class's defaults, e.g. lr) fill in what a group leaves out. Unknown options are errors.
---@param params Tensor[]|table[] model:parameters(), or parameter groups {params = {...}, lr = ...}
---@param opts? table options, see help() of the optimizer class
function Optimizer:init(params, opts)
  local name = self.__name
  opts = opts or {}
  if type(opts) ~= "table" then error(name .. ": options must be a table, got " .. type(opts), 3) end
  local defaults = {}
  for k, v in pairs(self.defaults) do defaults[k] = v end
  for k, v in pairs(opts) do
    if self.defaults[k] == nil then error(string.format("%s: unknown option '%s'", name, tostring(k)), 3) end
    defaults[k] = v
  end
  self.defaults = defaults
  self.param_groups = {}
  self.state = {}
  if nn.is_tensor(params) then params = { params } end
  if is_module(params) then
    error(name .. ": expected a list of tensors or parameter groups; pass model:parameters()", 3)
  end
  if type(params) ~= "table" then
    error(name .. ": params must be a list of tensors or of parameter groups, got " .. type(params), 3)
  end
  if #params == 0 then error(name .. ": optimizer got an empty parameter list", 3) end
  if nn.is_tensor(params[1]) then params = { { params = params } } end
  for _, g in ipairs(params) do self:add_param_group(g, 4) end
end

---Raise an error unless option k of optimizer name is a number.
---@param name string the optimizer's name
---@param k string the option
---@param v any its value
local function check_number(name, k, v)
  if type(v) ~= "number" then error(string.format("%s: option %s must be a number, got %s", name, k, type(v)), 0) end
end
Optimizer.check_number = check_number

---Add a group {params = {...}, lr = ...} (e.g. a newly unfrozen layer with its own rate); options
---missing from the group come from the optimizer's defaults. A parameter may be in one group only.
---@param group table {params = Tensor[], ...options}
---@param level? integer the error level for bad input (internal; default 2)
---@return table group the group as stored
function Optimizer:add_param_group(group, level)
  level = level or 2
  local name = self.__name
  if type(group) ~= "table" or nn.is_tensor(group) or type(group.params) ~= "table" then
    error(name .. ": a parameter group must be a table with a list `params`", level)
  end
  local g = {}
  for k, v in pairs(group) do
    if k ~= "params" and self.defaults[k] == nil and k ~= "initial_lr" then
      error(string.format("%s: unknown option '%s' in parameter group", name, tostring(k)), level)
    end
    g[k] = v
  end
  for k, v in pairs(self.defaults) do
    if g[k] == nil then g[k] = v end
  end
  if g.lr == false then error(name .. ": option lr is required", level) end
  local ps = nn.is_tensor(group.params) and { group.params } or group.params
  g.params = {}
  local seen = {}
  for _, other in ipairs(self.param_groups) do
    for _, p in ipairs(other.params) do seen[p] = true end
  end
  for i, p in ipairs(ps) do
    if not nn.is_tensor(p) then
      error(string.format("%s: parameter %d is a %s, not a tensor", name, i, type(p)), level)
    end
    if p:dtype() ~= "float32" then error(string.format("%s: parameter %d is %s, expected float32", name, i, p:dtype()), level) end
    if not p.is_leaf then error(string.format("%s: can't optimize a non-leaf tensor (parameter %d)", name, i), level) end
    if seen[p] then error(name .. ": some parameters appear in more than one parameter group", level) end
    seen[p] = true
    g.params[i] = p
  end
  local ok, err = pcall(self.validate, self, g)
  if not ok then error(err, level) end
  self.param_groups[#self.param_groups + 1] = g
  return g
end

---Check the options of a parameter group (raises an error naming the bad option).
---@param g table the group
function Optimizer:validate(g)
  for _, k in ipairs({ "lr", "eps", "weight_decay", "momentum" }) do
    if g[k] ~= nil then
      check_number(self.__name, k, g[k])
      if not (g[k] >= 0) then error(string.format("%s: invalid %s: %g (must be >= 0)", self.__name, k, g[k]), 0) end
    end
  end
end

---Clear the gradients of the optimizer's parameters: they become nil (PyTorch 2's set_to_none).
---@param opts? {set_to_none?: boolean} set_to_none = false zeroes them in place instead
function Optimizer:zero_grad(opts)
  local to_none = not (opts and opts.set_to_none == false)
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      if to_none then
        p.grad = nil
      else
        local gr = p.grad
        if gr then gr:zero_() end
      end
    end
  end
end

---One update of every parameter that has a gradient and requires grad.
---@param closure? fun(): any recomputes the loss (with grad enabled); its value is returned
---@return any loss the closure's result, if given
function Optimizer:step(closure)
  local loss
  if closure then
    local prev = nn.set_grad_enabled(true)
    local ok, res = pcall(closure)
    nn.set_grad_enabled(prev)
    if not ok then error(res, 0) end
    loss = res
  end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local grad = p.grad
      if grad and p:is_requires_grad() then
        local state = self.state[p]
        if not state then
          state = {}
          self.state[p] = state
        end
        self:update(p, grad, state, group)
      end
    end
  end
  return loss
end

-- ---- state_dict ----

---The optimizer's state as PyTorch packs it: {state = {[i] = {...}}, param_groups = {{lr =, ...,
---params = {i, ...}}}} where i numbers the parameters 1.. across groups in order. State tensors
---are the optimizer's own (load_state_dict copies them).
---@return {state: table, param_groups: table[]} sd
function Optimizer:state_dict()
  local groups, state, index = {}, {}, 0
  for gi, g in ipairs(self.param_groups) do
    local packed = {}
    for k, v in pairs(g) do
      if k ~= "params" then packed[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v end
    end
    packed.params = {}
    for _, p in ipairs(g.params) do
      index = index + 1
      packed.params[#packed.params + 1] = index
      local s = self.state[p]
      if s then
        local copy = {}
        for k, v in pairs(s) do copy[k] = v end
        state[index] = copy
      end
    end
    groups[gi] = packed
  end
  return { state = state, param_groups = groups }
end

---Take the options of each group and the state of each parameter (cloned) from sd, e.g. to
---resume training; the groups must match this optimizer's in number and size.
---@param sd table from state_dict()
function Optimizer:load_state_dict(sd)
  local name = self.__name
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    error(name .. ".load_state_dict: expected a table with state and param_groups", 2)
  end
  if #sd.param_groups ~= #self.param_groups then
    error(string.format("%s.load_state_dict: loaded state dict has %d parameter groups, the optimizer has %d",
                        name, #sd.param_groups, #self.param_groups), 2)
  end
  local by_index = {}
  for gi, g in ipairs(self.param_groups) do
    local saved = sd.param_groups[gi]
    if type(saved.params) ~= "table" or #saved.params ~= #g.params then
      error(string.format("%s.load_state_dict: loaded state dict contains a parameter group (%d) that doesn't "
                          .. "match the size of optimizer's group (%d parameters, not %d)", name, gi,
                          #g.params, type(saved.params) == "table" and #saved.params or 0), 2)
    end
    for i, idx in ipairs(saved.params) do by_index[idx] = g.params[i] end
  end
  for idx, s in pairs(sd.state) do
    local p = by_index[idx]
    if not p then error(string.format("%s.load_state_dict: state for unknown parameter %s", name, tostring(idx)), 2) end
    for _, v in pairs(s) do
      if nn.is_tensor(v) and shape(v) ~= shape(p) then
        error(string.format("%s.load_state_dict: state of parameter %s has size %s, the parameter %s", name,
                            tostring(idx), shape(v), shape(p)), 2)
      end
    end
  end
  self.state = {}
  for idx, s in pairs(sd.state) do
    local copy = {}
    for k, v in pairs(s) do copy[k] = nn.is_tensor(v) and v:clone():contiguous() or v end
    self.state[by_index[idx]] = copy
  end
  for gi, g in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi]) do
      if k ~= "params" then g[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v end
    end
  end
end

function Optimizer:__tostring()
  local lines = { self.__name .. " (" }
  for gi, g in ipairs(self.param_groups) do
    lines[#lines + 1] = "Parameter Group " .. gi
    local keys = {}
    for k in pairs(g) do
      if k ~= "params" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = g[k]
      if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
      lines[#lines + 1] = string.format("    %s: %s", k, tostring(v))
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

return Optimizer
