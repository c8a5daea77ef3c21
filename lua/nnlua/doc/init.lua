-- doc/init.lua: the index of nnlua's public API: every function, class and namespace reachable from
-- nn (lazy members loaded), each with its documentation (LuaLS annotations or doc/c_functions.lua).
local luals = require "nnlua.doc.luals"

local M = {}

local METHOD_TABLES = { ["nn.Tensor"] = "x", ["nnlua.Canvas"] = "canvas", ["nnlua.ImagePipeline"] = "pipe" }

--- The C function documentation: name -> {signature, summary, params, returns, example}, or
--- name -> another name (the same function under a second name).
---@return table<string, table|string> docs
function M.c_docs()
  return require "nnlua.doc.c_functions"
end

--- Keys a table loads on first use: its __index function keeps them in a table of module paths
--- (or of `true`) among its upvalues, as nnlua/init.lua and data/init.lua do.
---@param t table
---@return string[] keys sorted
function M.lazy_keys(t)
  local mt, keys = getmetatable(t), {}
  local index = type(mt) == "table" and rawget(mt, "__index")
  if type(index) ~= "function" then return keys end
  for i = 1, math.huge do
    local name, v = debug.getupvalue(index, i)
    if not name then break end
    if type(v) == "table" and next(v) ~= nil then
      local ok = true
      for k, path in pairs(v) do
        if type(k) ~= "string" or not (type(path) == "string" or path == true) then ok = false break end
      end
      if ok then
        for k in pairs(v) do keys[#keys + 1] = k end
      end
    end
  end
  table.sort(keys)
  return keys
end

local function is_class(v)
  return type(v) == "table" and type(rawget(v, "__name")) == "string"
end

-- A table worth walking: it holds functions or classes (data tables such as palettes do not).
local function is_namespace(v)
  if type(v) ~= "table" or is_class(v) then return false end
  if #M.lazy_keys(v) > 0 then return true end
  for k, x in pairs(v) do
    if type(k) == "string" and (type(x) == "function" or is_class(x)) then return true end
  end
  return false
end

local function public_key(k)
  return type(k) == "string" and k:sub(1, 1) ~= "_" and k ~= "super"
end

local function sorted_keys(t)
  local keys, seen = {}, {}
  for k in pairs(t) do
    if public_key(k) then keys[#keys + 1] = k; seen[k] = true end
  end
  if not is_class(t) then
    for _, k in ipairs(M.lazy_keys(t)) do
      if public_key(k) and not seen[k] then keys[#keys + 1] = k end
    end
  end
  table.sort(keys)
  return keys
end

--- Lua module names of every file under lua/nnlua (from the directory nnlua/init.lua is in).
---@return string[] modules e.g. "nnlua.optim.SGD", sorted
function M.module_names()
  local init = package.searchpath("nnlua", package.path)
  local core = require "nnlua.core"
  local out = {}
  if not init or not (core.image and core.image._listdir) then return out end
  local root = init:match("^(.*)/init%.lua$")
  local function walk(dir, prefix)
    local ok, names, dirs = pcall(core.image._listdir, dir)
    if not ok then return end
    for i, n in ipairs(names) do
      if dirs[i] then
        walk(dir .. "/" .. n, prefix .. "." .. n)
      elseif n:match("%.lua$") then
        local mod = n == "init.lua" and prefix or prefix .. "." .. n:sub(1, -5)
        out[#out + 1] = mod
      end
    end
  end
  walk(root, "nnlua")
  table.sort(out)
  return out
end

--- The source file of a class: where its own Lua methods are defined, or the module it is.
local function class_file(cls)
  for name, v in pairs(package.loaded) do
    if v == cls and type(name) == "string" then return package.searchpath(name, package.path) end
  end
  for k, v in pairs(cls) do -- metamethods may be copied from the base class: skip them
    if type(v) == "function" and public_key(k) then
      local info = debug.getinfo(v, "S")
      if info.what == "Lua" and info.source:sub(1, 1) == "@" then return info.source:sub(2) end
    end
  end
  return nil
end

local index_cache

--- Walk the public API: nn and its members (lazy ones loaded), the C metatables named
--- "nnlua.*", then every module under lua/nnlua. Keys starting with "_" are private.
---@param opts? {modules?: boolean} modules = false skips the modules not reachable from nn
---@return table index {entries = {entry...}, by_name = {}, by_value = {value -> first name}, errors = {}}
--- An entry is {name, kind = "function"|"class"|"namespace", value, key, owner, method}.
function M.index(opts)
  local with_modules = not (opts and opts.modules == false)
  if index_cache and (index_cache.with_modules or not with_modules) then return index_cache end
  local nn = require "nnlua"
  local idx = { entries = {}, by_name = {}, by_value = {}, errors = {}, with_modules = with_modules }
  local queue, head, walked = {}, 1, {}
  local function add(name, v, key, owner)
    local kind = type(v) == "function" and "function" or is_class(v) and "class"
        or is_namespace(v) and "namespace" or nil
    if not kind or idx.by_name[name] then return end
    local known = idx.by_value[v]
    if known then -- a second name of the same value: documented once, found by either name
      local first = idx.by_name[known]
      first.names[#first.names + 1] = name
      idx.by_name[name] = first
      return
    end
    local e = { name = name, names = { name }, kind = kind, value = v, key = key, owner = owner }
    if kind == "function" and owner then
      e.method = owner.kind == "class" or METHOD_TABLES[owner.name] ~= nil
    end
    idx.entries[#idx.entries + 1] = e
    idx.by_name[name] = e
    idx.by_value[v] = name
    if kind ~= "function" and not walked[v] then
      walked[v] = true
      queue[#queue + 1] = e
    end
  end
  local function drain()
    while queue[head] do
      local e = queue[head]
      head = head + 1
      local t = e.value
      for _, k in ipairs(sorted_keys(t)) do
        local ok, v = pcall(function() return t[k] end)
        if not ok then
          idx.errors[#idx.errors + 1] = e.name .. "." .. k .. ": " .. tostring(v)
        elseif e.kind == "namespace" or type(v) == "function" then
          add(e.name .. "." .. k, v, k, e)
        end
      end
      if e.kind == "class" then
        local super = rawget(t, "super")
        if is_class(super) and not idx.by_value[super] and e.name:find(".", 1, true) then
          add(e.name:match("^(.*)%.[^.]*$") .. "." .. super.__name, super, super.__name, e)
        end
      end
    end
  end
  add("nn", nn)
  drain()
  local reg = {}
  for k, mt in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^nnlua%.") and type(mt) == "table"
        and type(rawget(mt, "__index")) == "table" then
      reg[#reg + 1] = k
    end
  end
  table.sort(reg)
  for _, k in ipairs(reg) do add(k, debug.getregistry()[k].__index) end
  drain()
  if with_modules then
    for _, mod in ipairs(M.module_names()) do
      if not mod:match("^nnlua%.doc") then
        local ok, v = pcall(require, mod)
        if not ok then
          idx.errors[#idx.errors + 1] = mod .. ": " .. tostring(v)
        elseif idx.by_value[v] == nil then
          add(mod, v)
          drain()
        end
      end
    end
  end
  for _, e in ipairs(idx.entries) do
    if e.kind == "class" then e.file = class_file(e.value) end
  end
  index_cache = idx
  return idx
end

--- An index-like entry for a class the index does not know (a user's Module subclass), so that
--- help can show it from its own annotations.
---@param cls table a class table (with __name)
---@return table entry
function M.class_entry(cls)
  return { name = rawget(cls, "__name"), names = { rawget(cls, "__name") }, kind = "class", value = cls,
           key = rawget(cls, "__name"), file = class_file(cls) }
end

--- Every parsed @class block, from the files of all indexed classes and functions.
---@return table<string, table> classes name -> block (with .path)
function M.class_blocks()
  local idx = M.index()
  if idx.class_blocks then return idx.class_blocks end
  local out, files = {}, {}
  local function visit(path)
    if not path or files[path] then return end
    files[path] = true
    local f = luals.file(path)
    if not f then return end
    for name, block in pairs(f.classes) do
      block.path = path
      out[name] = out[name] or block
    end
  end
  for _, e in ipairs(idx.entries) do
    if e.kind == "class" then visit(e.file)
    elseif e.kind == "function" then
      local info = debug.getinfo(e.value, "S")
      if info.what == "Lua" and info.source:sub(1, 1) == "@" then visit(info.source:sub(2)) end
    end
  end
  for _, mod in ipairs(M.module_names()) do visit(package.searchpath(mod, package.path)) end
  idx.class_blocks = out
  return out
end

--- The @class block documenting a class entry: in its file, named like its key or __name.
---@param e table an index entry of kind "class"
---@return table|nil block
function M.class_block(e)
  local f = e.file and luals.file(e.file)
  if not f then return nil end
  local wanted = { [e.key or ""] = true, [rawget(e.value, "__name")] = true, [e.name] = true }
  for name, block in pairs(f.classes) do
    if wanted[name] or wanted[name:match("([^.]+)$")] then
      block.path = e.file
      return block
    end
  end
  return nil
end

--- The C documentation of a name, following aliases (a string value names another entry).
---@param name string
---@return table|nil doc
---@return string|nil name the entry's own name after aliases
function M.c_doc(name)
  local docs, seen = M.c_docs(), {}
  local d = docs[name]
  while type(d) == "string" and not seen[d] do
    seen[d] = true
    name = d
    d = docs[d]
  end
  if type(d) ~= "table" then return nil end
  return d, name
end

--- The C documentation of an index entry: the first of its names that has one.
---@param e table an index entry
---@return table|nil doc
---@return string|nil name the name the doc is filed under
function M.entry_c_doc(e)
  for _, name in ipairs(e.names) do
    local d, own = M.c_doc(name)
    if d then return d, own end
  end
  return nil
end

--- Names in doc/c_functions.lua that name no C function of the index (renamed or removed).
---@return string[] names sorted
function M.stale_c_docs()
  local idx, out = M.index(), {}
  for name in pairs(M.c_docs()) do
    local e = idx.by_name[name]
    local ok = e and (e.kind == "namespace" or (e.kind == "function" and debug.getinfo(e.value, "S").what == "C"))
    if not ok then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local C_FIELDS = { "signature", "summary", "params", "returns", "example" }

--- What is missing from an entry's documentation, or nil when it is documented.
---@param e table an index entry
---@return string|nil problem
function M.check(e)
  if e.kind == "namespace" then return nil end
  if e.kind == "class" then
    local b = M.class_block(e)
    if not b then return "no ---@class block for it in " .. tostring(e.file) end
    if b.text == "" then return "its ---@class block has no description" end
    return nil
  end
  if debug.getinfo(e.value, "S").what == "C" then
    local raw
    for _, name in ipairs(e.names) do raw = raw or M.c_docs()[name] end
    local d = M.entry_c_doc(e)
    if raw == nil then return "C function without an entry in nnlua/doc/c_functions.lua" end
    if not d then return "its c_functions entry is an alias of a missing entry (" .. tostring(raw) .. ")" end
    for _, f in ipairs(C_FIELDS) do
      if d[f] == nil then return "its c_functions entry has no " .. f end
    end
    if type(d.params) ~= "table" then return "its c_functions params must be a list of {name, type, description}" end
    return nil
  end
  return luals.check_function(e.value)
end

--- The undocumented public API: a list of {name, problem}, sorted by name.
---@param opts? table as for index
---@return table[] missing
function M.undocumented(opts)
  local out = {}
  for _, e in ipairs(M.index(opts).entries) do
    local p = M.check(e)
    if p then out[#out + 1] = { name = e.name, problem = p } end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

return M
