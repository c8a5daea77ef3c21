-- doc/text.lua: the text help() prints: a function's signature, parameters, returns and example; a
-- class with its constructor, options and methods; a namespace's members; a search by name.
local doc = require "nnlua.doc"
local luals = require "nnlua.doc.luals"

local M = {}

local WIDTH = 100

-- The first sentence of a description (or its first line, when that is shorter).
local function first_line(s)
  s = (s or ""):match("^%s*([^\n]*)") or ""
  return s:match("^(.-%.)%s") or s
end

-- Display width (UTF-8 aware: σ, Φ, ᵀ count one).
local function width(s) return utf8.len(s) or #s end

-- s cut to at most n display characters, "..." marking the cut.
local function cut(s, n)
  if width(s) <= n then return s end
  local stop = utf8.offset(s, n - 2) or (n - 2)
  return s:sub(1, stop - 1) .. "..."
end

-- Words of s in lines of at most width characters.
local function wrap(s, width)
  local lines, line = {}, ""
  for word in s:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = line == "" and word or line .. " " .. word
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function indent(s, pad)
  return pad .. s:gsub("\n", "\n" .. pad)
end

-- Rows of cells, each column as wide as its widest cell; the last cell wraps at WIDTH, or is cut
-- to one line when truncate is set (listings of members).
local function columns(rows, pad, truncate)
  local widths = {}
  for _, r in ipairs(rows) do
    for i = 1, #r - 1 do widths[i] = math.max(widths[i] or 0, width(r[i])) end
  end
  local out = {}
  for _, r in ipairs(rows) do
    local line = pad
    for i = 1, #r - 1 do line = line .. r[i] .. string.rep(" ", widths[i] - width(r[i]) + 2) end
    local last = r[#r] or ""
    local lead = string.rep(" ", width(line))
    local room = math.max(30, WIDTH - width(line))
    if truncate then
      last = cut(last:match("^[^\n]*"), room)
    elseif width(line) + width(last) > WIDTH and not last:find("\n") then
      last = wrap(last, room)
    end
    local first = true
    for para in (last .. "\n"):gmatch("([^\n]*)\n") do
      out[#out + 1] = (first and line or lead) .. para
      first = false
    end
  end
  return table.concat(out, "\n")
end

-- "lua/nnlua/nn/Linear.lua:12" from an absolute path
local function where(path, line)
  if not path then return nil end
  local short = path:match("(lua/nnlua/.*)$") or path:match("(nnlua/.*)$") or path
  return line and (short .. ":" .. line) or short
end

-- ---- functions ----

local function lua_function_doc(e, fn)
  local block, path, line = luals.function_block(fn)
  local params, args = {}, {}
  local is_method = false
  local names = luals.param_names(fn)
  if names[1] == "self" then is_method = true end
  if block and #block.params > 0 then
    for _, p in ipairs(block.params) do
      params[#params + 1] = { p.name .. (p.optional and "?" or ""), p.type, p.desc }
      args[#args + 1] = p.name .. (p.optional and "?" or "")
    end
  else
    for _, n in ipairs(names) do
      if n ~= "self" then args[#args + 1] = n end
    end
  end
  local rets = {}
  for _, r in ipairs(block and block.returns or {}) do rets[#rets + 1] = { r.type, r.desc } end
  local name = e and e.name or "function"
  if is_method and e and e.owner then name = e.owner.name .. ":" .. e.key end
  local sig = name .. "(" .. table.concat(args, ", ") .. ")"
  if #rets > 0 then
    local types = {}
    for i, r in ipairs(rets) do types[i] = r[1] end
    sig = sig .. " -> " .. table.concat(types, ", ")
  end
  return {
    signature = sig, text = block and block.text or "(no documentation)", params = params, returns = rets,
    overloads = block and block.overloads or {}, where = where(path, line),
  }
end

local function c_function_doc(e)
  local d = doc.entry_c_doc(e)
  if not d then
    return { signature = e.name .. "(...)", text = "(a C function without documentation)", params = {}, returns = {} }
  end
  local rets = {}
  if d.returns and d.returns ~= "" and d.returns ~= "nothing" then rets[1] = { "", d.returns } end
  return { signature = d.signature, text = d.summary, params = d.params or {}, returns = rets,
           example = d.example, c = true }
end

local function render_function(e, fn)
  local d = (debug.getinfo(fn, "S").what == "C") and c_function_doc(e) or lua_function_doc(e, fn)
  local out = { d.signature, indent(d.text, "  ") }
  for _, o in ipairs(d.overloads or {}) do out[#out + 1] = "  overload: " .. o end
  if #d.params > 0 then
    local rows = {}
    for _, p in ipairs(d.params) do rows[#rows + 1] = { p[1], p[2] or "", p[3] or "" } end
    out[#out + 1] = "\nParameters:\n" .. columns(rows, "  ")
  end
  if #d.returns > 0 then
    local rows = {}
    for _, r in ipairs(d.returns) do rows[#rows + 1] = r[1] == "" and { r[2] } or { r[1], r[2] or "" } end
    out[#out + 1] = "\nReturns:\n" .. columns(rows, "  ")
  end
  if d.example and d.example ~= "" then out[#out + 1] = "\nExample:\n" .. indent(d.example, "  ") end
  if e and #e.names > 1 then out[#out + 1] = "\nAlso: " .. table.concat(e.names, ", ", 2) end
  if d.where then out[#out + 1] = "\nDefined in " .. d.where end
  return table.concat(out, "\n")
end

-- ---- summaries (one line per member) ----

local function summary(e)
  if e.kind == "function" then
    if debug.getinfo(e.value, "S").what == "C" then
      local d = doc.entry_c_doc(e)
      return first_line(d and d.summary)
    end
    local b = luals.function_block(e.value)
    return first_line(b and b.text)
  elseif e.kind == "class" then
    local b = doc.class_block(e)
    return first_line(b and b.text)
  end
  local d = doc.c_docs()[e.name]
  if type(d) == "table" then return first_line(d.summary) end
  return first_line(M.namespace_text(e))
end

-- The header comment of the file a namespace comes from (or its entry in c_functions.lua).
function M.namespace_text(e)
  local d = doc.c_docs()[e.name]
  if type(d) == "table" and d.summary then return d.summary end
  for name, v in pairs(package.loaded) do
    if v == e.value and type(name) == "string" then
      local path = package.searchpath(name, package.path)
      local f = path and luals.file(path)
      if f then
        local lines = {}
        for _, l in ipairs(f.lines) do
          local c = l:match("^%-%-%s?(.*)$")
          if not c or l:match("^%-%-%-") then break end
          lines[#lines + 1] = c
        end
        local text = table.concat(lines, "\n")
        text = text:gsub("^[%w_/%.]+%.lua:%s*", ""):gsub("^nnlua[%w_%.]* %(nn[%w_%.]*%):%s*", "")
        return text
      end
    end
  end
  return ""
end

local function members(e)
  local idx, rows = doc.index(), {}
  local prefix = e.name .. "."
  for _, m in ipairs(idx.entries) do
    if m.name:sub(1, #prefix) == prefix and not m.name:find(".", #prefix + 1, true) then
      rows[#rows + 1] = { m.key or m.name:sub(#prefix + 1), m.kind == "function" and "" or m.kind, summary(m) }
    end
  end
  for name, m in pairs(idx.by_name) do -- second names (nn.optim.StepLR is lr_scheduler's)
    if name ~= m.name and name:sub(1, #prefix) == prefix and not name:find(".", #prefix + 1, true) then
      rows[#rows + 1] = { name:sub(#prefix + 1), m.kind == "function" and "" or m.kind, "= " .. m.name }
    end
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  return rows
end

local function render_namespace(e)
  local out = { e.name .. " (namespace)" }
  local text = M.namespace_text(e)
  if text ~= "" then out[#out + 1] = indent(text, "  ") end
  out[#out + 1] = "\n" .. columns(members(e), "  ", true)
  out[#out + 1] = "\nhelp(" .. e.name .. ".<name>) for one of them."
  return table.concat(out, "\n")
end

-- ---- classes ----

local function class_chain(cls)
  local chain, seen = {}, {}
  local c = cls
  while type(c) == "table" and not seen[c] do
    seen[c] = true
    chain[#chain + 1] = c
    local super = rawget(c, "super")
    if super == nil then
      local mt = getmetatable(c)
      super = type(mt) == "table" and type(rawget(mt, "__index")) == "table" and rawget(mt, "__index") or nil
    end
    c = super
  end
  return chain
end

-- The option classes (---@class X.opts with fields) named in the constructor's types; classes of
-- real objects (nn.optim.Optimizer) are not options.
local function option_tables(types, self_name)
  local blocks, out, seen, idx = doc.class_blocks(), {}, {}, doc.index()
  for _, t in ipairs(types) do
    for token in t:gmatch("[%w_%.]+") do
      local b = blocks[token]
      local real = idx.by_name[token] and idx.by_name[token].kind == "class"
      if b and token ~= self_name and not real and #b.fields > 0 and not seen[token] then
        seen[token] = true
        local rows = {}
        for _, f in ipairs(b.fields) do rows[#rows + 1] = { f.name .. (f.optional and "?" or ""), f.type, f.desc } end
        out[#out + 1] = "\nOptions (" .. token .. "):" .. (b.text ~= "" and "\n" .. indent(b.text, "  ") or "")
            .. "\n" .. columns(rows, "  ")
      end
    end
  end
  return out
end

local function render_class(e)
  local idx = doc.index()
  local cls = e.value
  local block = doc.class_block(e)
  local head = e.name .. " (class"
  if block and block.parent then head = head .. ", extends " .. block.parent end
  local out = { head .. ")" }
  out[#out + 1] = indent(block and block.text ~= "" and block.text or "(no documentation)", "  ")
  local types = {}
  local init = cls.init
  local ctor
  if block and #block.overloads > 0 then
    local sigs = {}
    for _, o in ipairs(block.overloads) do
      types[#types + 1] = o
      sigs[#sigs + 1] = "  " .. e.name .. o:gsub("^fun", ""):gsub("%): ([^)]*)$", ") -> %1")
    end
    ctor = table.concat(sigs, "\n")
  end
  local own_init = rawget(cls, "init") ~= nil or not ctor -- an overload describes an inherited init better
  if own_init and type(init) == "function" and debug.getinfo(init, "S").what == "Lua" then
    local b = luals.function_block(init)
    local args, rows = {}, {}
    for _, p in ipairs(b and b.params or {}) do
      args[#args + 1] = p.name .. (p.optional and "?" or "")
      rows[#rows + 1] = { p.name .. (p.optional and "?" or ""), p.type, p.desc }
      types[#types + 1] = p.type
    end
    if not b then
      for _, n in ipairs(luals.param_names(init)) do
        if n ~= "self" then args[#args + 1] = n end
      end
    end
    local s = ctor or ("  " .. e.name .. "(" .. table.concat(args, ", ") .. ")")
    if #rows > 0 then s = s .. "\n" .. columns(rows, "    ") end
    ctor = s
  end
  if ctor then out[#out + 1] = "\nConstructor:\n" .. ctor end
  for _, s in ipairs(option_tables(types, block and block.class)) do out[#out + 1] = s end
  if block and #block.fields > 0 then
    local rows = {}
    for _, f in ipairs(block.fields) do rows[#rows + 1] = { f.name, f.type, f.desc } end
    out[#out + 1] = "\nFields:\n" .. columns(rows, "  ")
  end
  local own = {}
  for _, m in ipairs(idx.entries) do
    if m.owner == e and m.kind == "function" then own[#own + 1] = { m.key, summary(m) } end
  end
  if not idx.by_value[cls] then -- a class of the user's: its methods straight from the table
    for k, v in pairs(cls) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" and type(v) == "function" then
        local b = debug.getinfo(v, "S").what == "Lua" and luals.function_block(v)
        own[#own + 1] = { k, first_line(b and b.text) }
      end
    end
  end
  table.sort(own, function(a, b) return a[1] < b[1] end)
  if #own > 0 then out[#out + 1] = "\nMethods:\n" .. columns(own, "  ", true) end
  local chain, shown = class_chain(cls), {}
  for k in pairs(cls) do shown[k] = true end
  for i = 2, #chain do
    local c = chain[i]
    local name = idx.by_value[c] or rawget(c, "__name") or "base class"
    local ms = {}
    for k, v in pairs(c) do
      if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_" and not shown[k] then
        ms[#ms + 1] = k
      end
    end
    for _, k in ipairs(ms) do shown[k] = true end
    table.sort(ms)
    if #ms > 0 then
      out[#out + 1] = "\nInherited from " .. name .. ":\n" .. columns({ { table.concat(ms, ", ") } }, "  ")
    end
  end
  if block and block.path then out[#out + 1] = "\nDefined in " .. where(block.path) end
  return table.concat(out, "\n")
end

-- ---- values and names ----

local function render(e)
  if e.kind == "function" then return render_function(e, e.value) end
  if e.kind == "class" then return render_class(e) end
  return render_namespace(e)
end

local function topics()
  local idx = doc.index()
  local spaces, classes = {}, {}
  for _, e in ipairs(idx.entries) do
    if e.kind == "namespace" and (e.name == "nn" or e.name:match("^nn%.")) then
      spaces[#spaces + 1] = { e.name, summary(e) }
    elseif e.kind == "class" and e.name:match("^nn%.[%w]+$") then
      classes[#classes + 1] = e.name:sub(4)
    end
  end
  table.sort(classes)
  local wrapped, line = {}, "  "
  for _, c in ipairs(classes) do
    if #line + #c > WIDTH - 4 then
      wrapped[#wrapped + 1] = line
      line = "  "
    end
    line = line .. c .. " "
  end
  wrapped[#wrapped + 1] = line
  return table.concat({
    "nnlua help: help(x) explains a function, class, namespace or value; help(\"name\") searches by",
    "name; in the nnlua REPL, ?x does the same as help(x).",
    "",
    "Namespaces:",
    columns(spaces, "  ", true),
    "",
    "Layers and other classes in nn (help(nn.Linear), ...):",
    table.concat(wrapped, "\n"),
    "",
    "Examples: help(nn.Conv2d)  help(nn.F.conv2d)  help(\"matmul\")  help(x.matmul)  help(nn.optim)",
  }, "\n")
end

local function search(s)
  local idx = doc.index()
  local q = s:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%(%)$", "")
  if q == "" then return topics() end
  local e = idx.by_name[q] or idx.by_name["nn." .. q]
  if e then return render(e) end
  local key = q:gsub(":", ".")
  local found, seen = {}, {}
  local function try(match)
    for name, m in pairs(idx.by_name) do
      if not seen[m] and match(name) then
        seen[m] = true
        found[#found + 1] = m
      end
    end
  end
  local function suffix(name, k) return name == k or name:sub(-#k - 1) == "." .. k end
  try(function(name) return suffix(name, key) end)
  if #found == 0 then
    local last = key:match("([^.]+)$")
    try(function(name) return suffix(name, last) end)
    if #found == 0 then try(function(name) return suffix(name:lower(), last:lower()) end) end
  end
  table.sort(found, function(a, b) return a.name < b.name end)
  if #found >= 1 and #found <= 3 then
    local parts = {}
    for i, m in ipairs(found) do parts[i] = render(m) end
    return table.concat(parts, "\n\n" .. string.rep("-", 40) .. "\n\n")
  end
  if #found == 0 then
    local low = key:lower()
    try(function(name) return name:lower():find(low, 1, true) ~= nil end)
    table.sort(found, function(a, b) return a.name < b.name end)
    if #found == 0 then return ("no help for %q: help() lists the topics"):format(s) end
  end
  local rows = {}
  for i, m in ipairs(found) do
    if i > 40 then break end
    rows[#rows + 1] = { m.name, summary(m) }
  end
  return ("%d matches for %q:\n"):format(#found, s) .. columns(rows, "  ", true)
end

--- The help text for x (what help(x) prints).
---@param x any a function, class, namespace, module instance, tensor, or a name to search for
---@param given boolean false when help was called with no argument at all (the topics)
---@return string text
function M.describe(x, given)
  if not given then return topics() end
  local idx = doc.index()
  if type(x) == "string" then return search(x) end
  local name = idx.by_value[x]
  if name then return render(idx.by_name[name]) end
  local core = require "nnlua.core"
  if core.is_tensor(x) then
    local t = ("a tensor: %s [%s]"):format(x:dtype(), table.concat(x:size(), ", "))
    return t .. "\n\n" .. render(idx.by_name["nn.Tensor"])
  end
  if type(x) == "function" then
    if debug.getinfo(x, "S").what == "C" then return "a C function that is not part of nnlua (see the Lua manual)" end
    return render_function(nil, x)
  end
  if type(x) == "table" and type(rawget(x, "__name")) == "string" then -- a class nnlua does not know
    return render_class(doc.class_entry(x))
  end
  local mt = getmetatable(x)
  if type(x) == "table" and type(mt) == "table" and not idx.by_value[mt] and type(rawget(mt, "__name")) == "string" then
    return "an instance of " .. rawget(mt, "__name") .. "\n\n" .. render_class(doc.class_entry(mt))
  end
  if mt ~= nil then
    if idx.by_value[mt] then return "an instance of " .. idx.by_value[mt] .. "\n\n" .. render(idx.by_name[idx.by_value[mt]]) end
    local index = type(mt) == "table" and rawget(mt, "__index")
    if index and idx.by_value[index] then
      return ("a %s\n\n"):format(rawget(mt, "__name") or type(x)) .. render(idx.by_name[idx.by_value[index]])
    end
  end
  if x == nil then
    return "help(nil): nothing to explain (a misspelt name gives nil); help(\"name\") searches by name, help() lists the topics"
  end
  return ("a %s: %s (help() lists the topics)"):format(type(x), tostring(x))
end

return M
