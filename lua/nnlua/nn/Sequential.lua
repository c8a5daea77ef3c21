-- Sequential.lua: children run in order, each output feeding the next. Children are named
-- "0", "1", ... as in PyTorch (state-dict keys "0.weight"); seq[i] is the i-th (1-based).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---A container that runs its children in order, each output feeding the next. Children are named
---"0", "1", ... (state-dict keys "0.weight", as PyTorch); seq[i] is the i-th child (1-based), #seq
---their number. An error inside says which child failed: "in module 3 (Conv2d) of Sequential: ...".
---@class nn.Sequential : nn.Module
local Sequential = Module:extend("Sequential")

---nn.Sequential{m1, m2, ...} or nn.Sequential(m1, m2, ...); an element {"name", module} names its child.
---@param first nn.Module|table the first module, or the list of all of them
---@param ... nn.Module the others
function Sequential:init(first, ...)
  local list = { first, ... }
  if type(first) == "table" and not Module.is_module(first) and select("#", ...) == 0 then list = first end
  for i, m in ipairs(list) do
    if Module.is_module(m) then
      self:add_module(tostring(#self._child_names), m)
    elseif type(m) == "table" and type(m[1]) == "string" and Module.is_module(m[2]) then
      self:add_module(m[1], m[2])
    else
      error(string.format("Sequential: element %d is a %s, expected a Module or {name, Module}", i, type(m)), 3)
    end
  end
end

---Add m at the end (also append).
---@param m nn.Module
---@return nn.Sequential self
function Sequential:add(m)
  self:add_module(tostring(#self._child_names), m)
  return self
end
Sequential.append = Sequential.add

-- Runs child i, prefixing its error with where it happened. A position inside nnlua's own layer
-- files (where nn.F was called) tells the user nothing and is dropped.
local function run(self, i, m, ...)
  local ok, out = pcall(m, ...)
  if not ok then
    if type(out) == "string" then
      out = out:gsub("^[^\n]-nnlua/nn/[%w_]+%.lua:%d+: ", "", 1)
      out = string.format("in module %d (%s) of %s: %s", i, m.__name, self.__name, out)
    end
    error(out, 0)
  end
  return out
end

-- A Linear followed by a ReLU (the stock classes, not subclasses with their own forward) runs as
-- one nn.F.linear_relu: with no graph to record, bias and ReLU are applied while the product's
-- tiles are in registers and the Linear's output is never stored. Same result as the two calls.
-- Only instances of the classes themselves, and only while their forwards, nn.F.linear and
-- nn.F.relu are the stock ones (a script may wrap them to log or keep what they see).
local Linear, ReLU, forwards
local F_linear, F_relu = nn.F.linear, nn.F.relu
local function stock(m, cls)
  return getmetatable(m) == cls and rawget(m, "forward") == nil and cls.forward == forwards[cls]
end
local function fusable(m, nxt)
  if not Linear then
    Linear, ReLU = require "nnlua.nn.Linear", require "nnlua.nn.ReLU"
    forwards = { [Linear] = Linear.forward, [ReLU] = ReLU.forward }
  end
  return nxt ~= nil and stock(m, Linear) and stock(nxt, ReLU) and nn.F.linear == F_linear
    and nn.F.relu == F_relu
end

local function free(t) local _ <close> = t end

---Run the children in order; extra arguments go to the first child only.
---@param x any the input of the first child
---@param ... any more arguments for the first child
---@return any output of the last child
function Sequential:forward(x, ...)
  local names, children = self._child_names, self._children
  local i, n, spent = 1, #names, nil
  while i <= n do
    local m, nxt = children[names[i]], i < n and children[names[i + 1]] or nil
    local input, step, fused = x, 1, false
    if fusable(m, nxt) then
      local ok, out = pcall(nn.F.linear_relu, x, m.weight, m.bias)
      if ok then
        rawset(m, "_out_size", out:size())
        rawset(nxt, "_out_size", out:size())
        x, fused = out, true
      else -- the unfused calls raise the error, naming the module
        x = run(self, i + 1, nxt, run(self, i, m, x))
      end
      step = 2
    elseif i == 1 then
      x = run(self, i, m, x, ...)
    else
      x = run(self, i, m, x)
    end
    if spent == input then free(spent) end
    spent = nil
    -- Without a graph a stock Linear keeps nothing of its input: an activation this forward made
    -- for one is freed as soon as it has been read, and the next batch reuses its memory instead
    -- of waiting for the collector (and faulting in fresh pages meanwhile).
    local after = children[names[i + step]]
    if fused and after and stock(after, Linear) and not nn.is_grad_enabled() then spent = x end
    i = i + step
  end
  return x
end

local function position(self, i)
  local n = #self._child_names
  if i < 0 then i = i + n + 1 end
  if i >= 1 and i <= n then return self._child_names[i] end
end

Sequential.__len = function(self) return #self._child_names end
Sequential.__getitem = function(self, i)
  local name = position(self, i)
  return name and self._children[name]
end
Sequential.__setitem = function(self, i, m)
  local name = position(self, i)
  if not name then
    error(string.format("%s: index %d out of range (%d modules)", self.__name, i, #self._child_names), 3)
  end
  if not Module.is_module(m) then
    error(string.format("%s: cannot assign a %s at index %d (Module expected)", self.__name, type(m), i), 3)
  end
  self._children[name] = m
end

return Sequential
