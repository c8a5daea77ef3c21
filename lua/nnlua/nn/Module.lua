-- Module.lua: the base class of every layer and model: a small class system (`extend`), children,
-- parameters and buffers registered in definition order, train/eval, state_dict, printing.
local nn = require "nnlua"

local Module = {}

-- Registries live in raw fields of the instance, so `self.weight` (not a raw field) always goes
-- through __index/__newindex: assigning a Module registers a child, nn.Parameter(t) a parameter.
local REGISTRIES = { "_params", "_buffers", "_children" }
local NAMES = { _params = "_param_names", _buffers = "_buffer_names", _children = "_child_names" }

local function instance_index(self, k)
  local v = self._params[k]
  if v ~= nil then return v end
  v = self._buffers[k]
  if v ~= nil then return v end
  v = self._children[k]
  if v ~= nil then return v end
  local cls = getmetatable(self)
  v = cls[k]
  if v ~= nil then return v end
  if math.type(k) == "integer" and cls.__getitem then return cls.__getitem(self, k) end
  return nil
end

---Whether v is a module instance (made by a Module class).
---@param v any
---@return boolean
local function is_module(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__index") == instance_index
end
Module.is_module = is_module

-- nn.Parameter(t): marks a tensor so that assigning it to a module field registers a parameter.
local ParamMarker = { __name = "Parameter" }

---Mark a tensor as a parameter: `self.weight = nn.Parameter(t)` in a module's init registers it
---(it then appears in parameters() and state_dict()). A float32 t gets requires_grad.
---@param t Tensor the initial value (kept, not copied)
---@param requires_grad? boolean false: a parameter that is not trained (default true)
---@return table marker to assign to a module field
function Module.Parameter(t, requires_grad)
  if not nn.is_tensor(t) then
    error("Parameter: tensor expected, got " .. type(t), 2)
  end
  if t:dtype() == "float32" then t:requires_grad(requires_grad ~= false) end
  return setmetatable({ tensor = t }, ParamMarker)
end

local function unregister(self, k)
  for _, reg in ipairs(REGISTRIES) do
    if self[reg][k] ~= nil then
      self[reg][k] = nil
      local names = self[NAMES[reg]]
      for i, n in ipairs(names) do
        if n == k then
          table.remove(names, i)
          break
        end
      end
    end
  end
end

-- Put v under name k in registry reg: keeps its position when k is already there.
local function register(self, reg, k, v)
  if type(k) ~= "string" or k == "" or k:find(".", 1, true) then
    error(string.format("%s: invalid name %q (a non-empty string without '.')", self.__name, tostring(k)), 3)
  end
  local cls = getmetatable(self)
  if type(cls[k]) == "function" or rawget(self, k) ~= nil then
    error(string.format("%s: cannot register %q: it is already a method or field of the module",
                        self.__name, k), 3)
  end
  if self[reg][k] == nil then
    unregister(self, k)
    local names = self[NAMES[reg]]
    names[#names + 1] = k
  end
  self[reg][k] = v
end

local function instance_newindex(self, k, v)
  if math.type(k) == "integer" and getmetatable(self).__setitem then
    return getmetatable(self).__setitem(self, k, v)
  elseif is_module(v) then
    return register(self, "_children", k, v)
  elseif getmetatable(v) == ParamMarker then
    return register(self, "_params", k, v.tensor)
  elseif v == nil then
    return unregister(self, k)
  elseif self._params[k] ~= nil or self._buffers[k] ~= nil then
    if not nn.is_tensor(v) then
      error(string.format("%s: cannot assign a %s to parameter or buffer %q (tensor or nil expected)",
                          self.__name, type(v), k), 2)
    end
    if self._params[k] ~= nil then self._params[k] = v else self._buffers[k] = v end
    return
  elseif self._children[k] ~= nil then
    error(string.format("%s: cannot assign a %s to child module %q (Module or nil expected)",
                        self.__name, type(v), k), 2)
  end
  rawset(self, k, v)
end

local function record(self, out, ...)
  if nn.is_tensor(out) then rawset(self, "_out_size", out:size()) end
  return out, ...
end

-- Metamethods are looked up raw, so every class carries its own copy.
local METAMETHODS = { "__index", "__newindex", "__call", "__tostring", "__len" }

---The base class of every layer and model. A subclass (Module:extend) defines init(...) and
---forward(...); calling an instance runs forward. Assigning a tensor wrapped in nn.Parameter to a
---field registers a parameter, assigning a module registers a child; parameters(), state_dict(),
---train()/eval(), freeze() and printing then work on the whole tree, as in PyTorch.
---
---```lua
---local Net = nn.Module:extend("Net")
---function Net:init(n) self.fc = nn.Linear(n, 2) end
---function Net:forward(x) return self.fc(x):relu() end
---local net = Net(4); print(net(nn.randn(3, 4)))
---```
---@class nn.Module
---@field training boolean true in training mode (train()), false after eval()
---@field __name string the class name
Module.__name = "Module"
Module.__index = instance_index
Module.__newindex = instance_newindex
Module.__call = function(self, ...) return record(self, self:forward(...)) end

local function construct(cls, ...)
  local self = {
    training = true,
    _params = {}, _param_names = {},
    _buffers = {}, _buffer_names = {}, _nonpersistent = {},
    _children = {}, _child_names = {},
  }
  setmetatable(self, cls)
  self:init(...)
  return self
end

local function class_tostring(cls) return "class " .. cls.__name end

---Make a subclass: `local Net = nn.Module:extend("Net")`, then define `function Net:init(...)` and
---`function Net:forward(x)`; `Net(...)` makes an instance and `net(x)` runs forward.
---@param name? string the class name (shown by print and in errors)
---@return table class the new class, callable to make instances
function Module:extend(name)
  if name ~= nil and type(name) ~= "string" then error("extend: class name must be a string", 2) end
  local cls = {}
  for _, k in ipairs(METAMETHODS) do cls[k] = rawget(self, k) end
  cls.__name = name or (self.__name .. "Subclass")
  cls.super = self
  return setmetatable(cls, { __index = self, __call = construct, __tostring = class_tostring })
end
setmetatable(Module, { __call = construct, __tostring = class_tostring })

---Set up a new instance (a subclass's constructor: called by Class(...) with its arguments).
function Module:init() end

---The computation of the module, called by module(...). Subclasses must define it.
---@return any output
function Module:forward()
  error(self.__name .. ": forward is not implemented", 2)
end

-- ---- registration ----

---Register t as parameter `name` (nil removes it); a float32 t gets requires_grad.
---@param name string a name without "."
---@param t Tensor|nil the parameter
---@return Tensor|nil t
function Module:register_parameter(name, t)
  if t ~= nil and not nn.is_tensor(t) then
    error("register_parameter: tensor or nil expected for " .. tostring(name) .. ", got " .. type(t), 2)
  end
  if t == nil then return unregister(self, name) end
  if t:dtype() == "float32" and not t:is_requires_grad() and not self._params[name] then
    t:requires_grad(true)
  end
  register(self, "_params", name, t)
  return t
end

---Register t as buffer `name`: state saved in state_dict but not trained (running means,
---counters); nil removes it.
---@param name string a name without "."
---@param t Tensor|nil the buffer
---@param opts? {persistent?: boolean} persistent = false keeps the buffer out of state_dict
---@return Tensor|nil t
function Module:register_buffer(name, t, opts)
  if t ~= nil and not nn.is_tensor(t) then
    error("register_buffer: tensor or nil expected for " .. tostring(name) .. ", got " .. type(t), 2)
  end
  if t == nil then return unregister(self, name) end
  register(self, "_buffers", name, t)
  self._nonpersistent[name] = (opts and opts.persistent == false) or nil
  return t
end

---Register m as child module `name` (as `self.name = m` does). Also register_module.
---@param name string a name without "."
---@param m nn.Module the child
---@return nn.Module m
function Module:add_module(name, m)
  if not is_module(m) then error("add_module: Module expected for " .. tostring(name) .. ", got " .. type(m), 2) end
  register(self, "_children", name, m)
  return m
end

Module.register_module = Module.add_module

---The module at a dotted path as in state-dict keys: get_submodule("layer1.0.conv1") ("" is self).
---@param target string the path
---@return nn.Module module
function Module:get_submodule(target)
  local m = self
  if target == "" then return m end
  for part in tostring(target):gmatch("[^.]+") do
    local child = m._children[part]
    if not child then error(string.format("%s has no attribute `%s`", m.__name, part), 2) end
    m = child
  end
  return m
end

-- ---- traversal ----

-- Calls fn(name, module) for self and every descendant once, depth first, in definition order.
local function walk_modules(self, fn, prefix, seen)
  if seen[self] then return end
  seen[self] = true
  fn(prefix, self)
  for _, n in ipairs(self._child_names) do
    walk_modules(self._children[n], fn, prefix == "" and n or prefix .. "." .. n, seen)
  end
end

local function named_of(self, reg, opts)
  local recurse = not (opts and opts.recurse == false)
  local out, seen = {}, {}
  local function add(prefix, m)
    for _, n in ipairs(m[NAMES[reg]]) do
      local t = m[reg][n]
      if not seen[t] then
        seen[t] = true
        out[#out + 1] = { prefix == "" and n or prefix .. "." .. n, t }
      end
    end
  end
  if recurse then walk_modules(self, add, "", {}) else add("", self) end
  return out
end

local function iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

local function values(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

---The parameters of this module and its descendants, each once, in definition order (give them
---to an optimizer).
---@param opts? {recurse?: boolean} recurse = false: this module's own parameters only
---@return Tensor[] params
function Module:parameters(opts) return values(named_of(self, "_params", opts)) end
---Iterate over (name, parameter) pairs, names as in state_dict: `for name, p in m:named_parameters() do`.
---@param opts? {recurse?: boolean} recurse = false: own parameters only
---@return fun(): string, Tensor iterator
function Module:named_parameters(opts) return iter(named_of(self, "_params", opts)) end
---The buffers (running statistics, ...) of this module and its descendants.
---@param opts? {recurse?: boolean} recurse = false: own buffers only
---@return Tensor[] buffers
function Module:buffers(opts) return values(named_of(self, "_buffers", opts)) end
---Iterate over (name, buffer) pairs.
---@param opts? {recurse?: boolean} recurse = false: own buffers only
---@return fun(): string, Tensor iterator
function Module:named_buffers(opts) return iter(named_of(self, "_buffers", opts)) end

---The direct children, in definition order.
---@return nn.Module[] children
function Module:children()
  local out = {}
  for i, n in ipairs(self._child_names) do out[i] = self._children[n] end
  return out
end

---Iterate over (name, child) pairs of the direct children.
---@return fun(): string, nn.Module iterator
function Module:named_children()
  local i = 0
  return function()
    i = i + 1
    local n = self._child_names[i]
    if n then return n, self._children[n] end
  end
end

---This module and every descendant once, self first, depth first.
---@return nn.Module[] modules
function Module:modules()
  local out = {}
  walk_modules(self, function(_, m) out[#out + 1] = m end, "", {})
  return out
end

---Iterate over (name, module) for self (named "") and every descendant ("layer1.0", ...).
---@return fun(): string, nn.Module iterator
function Module:named_modules()
  local out = {}
  walk_modules(self, function(n, m) out[#out + 1] = { n, m } end, "", {})
  return iter(out)
end

---Call fn(m) on every descendant (children first, recursively) and then on self, as PyTorch.
---@param fn fun(m: nn.Module) e.g. a weight initialiser
---@return nn.Module self
function Module:apply(fn)
  for _, n in ipairs(self._child_names) do self._children[n]:apply(fn) end
  fn(self)
  return self
end

-- ---- modes and gradients ----

---Set training mode (dropout active, batch norm uses batch statistics) on self and descendants.
---@param mode? boolean false is eval() (default true)
---@return nn.Module self
function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m, "training", mode and true or false) end
  return self
end

---Set evaluation mode (dropout off, batch norm uses running statistics): train(false).
---@return nn.Module self
function Module:eval() return self:train(false) end

---Set requires_grad on every parameter.
---@param flag? boolean default true
---@return nn.Module self
function Module:requires_grad_(flag)
  if flag == nil then flag = true end
  for _, p in ipairs(self:parameters()) do p:requires_grad(flag) end
  return self
end

---Stop training every parameter (requires_grad false): a frozen backbone costs forward time only.
---@return nn.Module self
function Module:freeze() return self:requires_grad_(false) end
---Train every parameter again (requires_grad true).
---@return nn.Module self
function Module:unfreeze() return self:requires_grad_(true) end

---Clear the gradients of every parameter: they become nil (PyTorch 2's set_to_none = true).
---@param opts? {set_to_none?: boolean} set_to_none = false zeroes existing gradients in place instead
---@return nn.Module self
function Module:zero_grad(opts)
  local to_none = not (opts and opts.set_to_none == false)
  for _, p in ipairs(self:parameters()) do
    if to_none then
      p.grad = nil
    else
      local g = p.grad
      if g then g:zero_() end
    end
  end
  return self
end

---The number of parameter elements (weights), all or only the trainable ones.
---@param opts? {trainable?: boolean} trainable = true counts parameters that require grad only
---@return integer count
function Module:num_parameters(opts)
  local n = 0
  local trainable = opts and opts.trainable
  for _, p in ipairs(self:parameters()) do
    if not trainable or p:is_requires_grad() then n = n + p:numel() end
  end
  return n
end

-- ---- state_dict ----

---A tensor's size as text: "[2,3]".
---@param t Tensor
---@return string
local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end
Module.shape_str = shape_str

-- Ordered pairs over a state dict: its recorded key order, then keys added later (sorted).
local function ordered_pairs(t)
  local mt = getmetatable(t)
  local order, seen = {}, {}
  for _, k in ipairs(mt.keys) do
    if rawget(t, k) ~= nil and not seen[k] then
      order[#order + 1] = k
      seen[k] = true
    end
  end
  local extra = {}
  for k in next, t do
    if not seen[k] then extra[#extra + 1] = k end
  end
  table.sort(extra, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(extra) do order[#order + 1] = k end
  local i = 0
  return function()
    i = i + 1
    local k = order[i]
    if k ~= nil then return k, rawget(t, k) end
  end, t, nil
end

-- Every (key, tensor) of the state, in PyTorch's order: own parameters, own buffers, children.
local function state_entries(self, prefix, out)
  for _, n in ipairs(self._param_names) do out[#out + 1] = { prefix .. n, self._params[n] } end
  for _, n in ipairs(self._buffer_names) do
    if not self._nonpersistent[n] then out[#out + 1] = { prefix .. n, self._buffers[n] } end
  end
  for _, n in ipairs(self._child_names) do state_entries(self._children[n], prefix .. n .. ".", out) end
  return out
end

---The parameters and persistent buffers as a flat table key -> tensor with PyTorch's keys
---("0.weight", "layer1.0.bn1.running_mean"). The tensors are detached views of the model's own;
---pairs() walks them in definition order (the key list is getmetatable(sd).keys). nn.save(path, sd)
---writes it as a safetensors checkpoint.
---@return table<string, Tensor> sd
function Module:state_dict()
  local sd, keys = {}, {}
  for _, e in ipairs(state_entries(self, "", {})) do
    keys[#keys + 1] = e[1]
    sd[e[1]] = e[2]:detach()
  end
  return setmetatable(sd, { __pairs = ordered_pairs, __name = "StateDict", keys = keys })
end

local function quote_list(list)
  local q = {}
  for i, k in ipairs(list) do q[i] = '"' .. k .. '"' end
  return table.concat(q, ", ")
end

---Copy the tensors of sd (e.g. nn.load(path)) into the model's parameters and buffers. Size
---mismatches always fail; missing and unexpected keys fail in strict mode. All problems are
---reported in one error, and then nothing is copied.
---@param sd table<string, Tensor> key -> tensor, as state_dict() gives
---@param opts? {strict?: boolean} strict = false tolerates missing and unexpected keys
---@return {missing_keys: string[], unexpected_keys: string[]} result
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" then error("load_state_dict: table expected, got " .. type(sd), 2) end
  local strict = not (opts and opts.strict == false)
  local own, own_set = state_entries(self, "", {}), {}
  local missing, unexpected, problems, copies = {}, {}, {}, {}
  for _, e in ipairs(own) do
    local key, dst = e[1], e[2]
    own_set[key] = true
    local src = sd[key]
    if src == nil then
      missing[#missing + 1] = key
    elseif not nn.is_tensor(src) then
      problems[#problems + 1] = string.format("value for %s is a %s, not a tensor.", key, type(src))
    elseif shape_str(src) ~= shape_str(dst) then
      problems[#problems + 1] = string.format(
        "size mismatch for %s: copying a tensor of size %s from the state dict, the size in the current model is %s.",
        key, shape_str(src), shape_str(dst))
    else
      copies[#copies + 1] = { dst, src }
    end
  end
  for k in pairs(sd) do
    if not own_set[k] then unexpected[#unexpected + 1] = tostring(k) end
  end
  table.sort(unexpected)
  local msgs = {}
  if strict and #missing > 0 then msgs[#msgs + 1] = "Missing key(s) in state_dict: " .. quote_list(missing) .. "." end
  if strict and #unexpected > 0 then
    msgs[#msgs + 1] = "Unexpected key(s) in state_dict: " .. quote_list(unexpected) .. "."
  end
  for _, p in ipairs(problems) do msgs[#msgs + 1] = p end
  if #msgs > 0 then
    local mt = getmetatable(sd) -- nn.load(path) records the file
    local from = type(mt) == "table" and type(mt.source) == "string" and (" from " .. mt.source) or ""
    error("Error(s) in loading state_dict for " .. self.__name .. from .. ":\n\t" .. table.concat(msgs, "\n\t"), 2)
  end
  nn.no_grad(function()
    for _, c in ipairs(copies) do c[1]:copy_(c[2]) end
  end)
  return { missing_keys = missing, unexpected_keys = unexpected }
end

-- ---- printing ----

---The text printed inside the parentheses after the class name (subclasses show their sizes).
---@return string
function Module:extra_repr() return "" end

---An integer with thousands separators: 1234567 -> "1,234,567".
---@param n number
---@return string
local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  local r
  repeat
    s, r = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
  until r == 0
  return s
end
Module.thousands = thousands

local function annotation(m)
  local parts = {}
  if m._out_size then parts[#parts + 1] = "out [" .. table.concat(m._out_size, ",") .. "]" end
  local ps = m:parameters()
  local n, trainable = 0, 0
  for _, p in ipairs(ps) do
    n = n + p:numel()
    if p:is_requires_grad() then trainable = trainable + p:numel() end
  end
  if n > 0 then
    local s = thousands(n) .. (n == 1 and " param" or " params")
    if trainable == 0 then s = s .. ", frozen"
    elseif trainable < n then s = s .. " (" .. thousands(trainable) .. " trainable)" end
    parts[#parts + 1] = s
  end
  return #parts > 0 and ("  -- " .. table.concat(parts, ", ")) or ""
end

local function repr(m, indent)
  local extra = m:extra_repr()
  if #m._child_names == 0 then
    return m.__name .. "(" .. extra .. ")" .. annotation(m)
  end
  local pad = indent .. "  "
  local lines = { m.__name .. "(" .. annotation(m) }
  if extra ~= "" then lines[#lines + 1] = pad .. extra end
  for _, n in ipairs(m._child_names) do
    lines[#lines + 1] = pad .. "(" .. n .. "): " .. repr(m._children[n], pad)
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

--- tostring(model): PyTorch's tree, each line annotated with the last output size (after a
--- forward) and the parameter count.
Module.__tostring = function(self) return repr(self, "") end

return Module
