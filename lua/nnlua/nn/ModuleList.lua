-- ModuleList.lua: a list of registered modules ("0", "1", ... in state-dict keys), indexed 1-based
-- in Lua: list[i], #list, ipairs(list). It has no forward: iterate it in the parent's forward.
local Module = require "nnlua.nn.Module"

---A list of registered modules (state-dict keys "0.", "1.", ...) indexed 1-based in Lua: list[i],
---#list, ipairs(list). It has no forward: iterate over it in the parent's forward.
---@class nn.ModuleList : nn.Module
local ModuleList = Module:extend("ModuleList")

---nn.ModuleList{m1, m2, ...}: a new list.
---@param list? nn.Module[] the modules (default none)
function ModuleList:init(list)
  if list ~= nil and type(list) ~= "table" then error("ModuleList: list of modules expected, got " .. type(list), 3) end
  if Module.is_module(list) then error("ModuleList: expected a list of modules, got a single module", 3) end
  for _, m in ipairs(list or {}) do self:append(m) end
end

---Add m at the end.
---@param m nn.Module
---@return nn.ModuleList self
function ModuleList:append(m)
  if not Module.is_module(m) then error("ModuleList.append: Module expected, got " .. type(m), 2) end
  self:add_module(tostring(#self._child_names), m)
  return self
end

---Add every module of list at the end.
---@param list nn.Module[]
---@return nn.ModuleList self
function ModuleList:extend(list)
  for _, m in ipairs(list) do self:append(m) end
  return self
end

---Insert m so that it becomes list[i]; later ones shift (and are renamed, as in PyTorch).
---@param i integer 1-based position (negative from the end)
---@param m nn.Module
---@return nn.ModuleList self
function ModuleList:insert(i, m)
  local n = #self._child_names
  if i < 0 then i = i + n + 2 end
  if math.type(i) ~= "integer" or i < 1 or i > n + 1 then
    error(string.format("ModuleList.insert: index %s out of range (1 to %d)", tostring(i), n + 1), 2)
  end
  if not Module.is_module(m) then error("ModuleList.insert: Module expected, got " .. type(m), 2) end
  local mods = self:children()
  table.insert(mods, i, m)
  for k = 1, n do self._children[tostring(k - 1)] = nil end
  self._child_names = {}
  for k, c in ipairs(mods) do
    self._child_names[k] = tostring(k - 1)
    self._children[tostring(k - 1)] = c
  end
  return self
end

---Raises an error: a ModuleList is iterated over, not called.
function ModuleList:forward()
  error("ModuleList has no forward: iterate over it (for i, m in ipairs(list)) in your module's forward", 2)
end

local function position(self, i)
  local n = #self._child_names
  if i < 0 then i = i + n + 1 end
  if i >= 1 and i <= n then return self._child_names[i] end
end

ModuleList.__len = function(self) return #self._child_names end
ModuleList.__getitem = function(self, i)
  local name = position(self, i)
  return name and self._children[name]
end
ModuleList.__setitem = function(self, i, m)
  local name = position(self, i)
  if not name then error(string.format("ModuleList: index %d out of range (%d modules)", i, #self._child_names), 3) end
  if not Module.is_module(m) then error(string.format("ModuleList: cannot assign a %s (Module expected)", type(m)), 3) end
  self._children[name] = m
end

return ModuleList
