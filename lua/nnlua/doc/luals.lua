-- doc/luals.lua: reads the LuaLS `---` annotation blocks of a Lua source file (description,
-- @param, @return, @field, @class, @overload) and finds the block that documents a function.
local M = {}

local cache = {} -- path -> parsed file (false when unreadable)

-- A doc line starts with exactly three dashes ("----" rulers and "-- ---- x ----" are not docs).
local function doc_text(line)
  local rest = line:match("^%s*%-%-%-(.*)$")
  if not rest or rest:sub(1, 1) == "-" then return nil end
  return rest:sub(1, 1) == " " and rest:sub(2) or rest
end

-- The type at the start of s, brackets and quotes balanced: "fun(x: integer): Tensor",
-- "{stride?: integer, padding?: integer}", "integer | integer[]". Returns type, rest.
local function take_type(s)
  local i, n, depth, quote = 1, #s, 0, nil
  while i <= n do
    local c = s:sub(i, i)
    if quote then
      if c == quote then quote = nil end
    elseif c == '"' or c == "'" or c == "`" then
      quote = c
    elseif c == "(" or c == "[" or c == "{" or c == "<" then
      depth = depth + 1
    elseif c == ")" or c == "]" or c == "}" or (c == ">" and s:sub(i - 1, i - 1) ~= "-") then
      depth = depth - 1
    elseif c:match("%s") and depth <= 0 then
      local before, after = s:sub(1, i - 1), s:match("^%s*(.?)", i)
      if not (before:match("[|:,]$") or after == "|") then break end
    end
    i = i + 1
  end
  local t = s:sub(1, i - 1):gsub("%s+$", "")
  local rest = s:sub(i):gsub("^%s+", ""):gsub("^#%s*", "")
  return t, rest
end
M.take_type = take_type

local function parse_tag(block, text)
  local tag, body = text:match("^@(%w+)%s*(.*)$")
  if not tag then return false end
  if tag == "param" then
    local name, opt, rest = body:match("^([%w_%.]+)(%??)%s*(.*)$")
    if name then
      local ty, desc = take_type(rest)
      block.params[#block.params + 1] = { name = name, type = ty, desc = desc, optional = opt == "?" }
    end
  elseif tag == "return" then
    local ty, desc = take_type(body)
    block.returns[#block.returns + 1] = { type = ty, desc = desc }
  elseif tag == "field" then
    body = body:gsub("^public%s+", ""):gsub("^private%s+", ""):gsub("^protected%s+", "")
    local name, opt, rest = body:match("^([%w_]+)(%??)%s*(.*)$")
    if name then
      local ty, desc = take_type(rest)
      block.fields[#block.fields + 1] = { name = name, type = ty, desc = desc, optional = opt == "?" }
    end
  elseif tag == "class" then
    local name, parent = body:gsub("^%(%w+%)%s*", ""):match("^([%w_%.]+)%s*:?%s*([%w_%.]*)")
    block.class, block.parent = name, parent ~= "" and parent or nil
  elseif tag == "overload" then
    block.overloads[#block.overloads + 1] = body
  else
    block.tags[#block.tags + 1] = { tag = tag, text = body }
  end
  return true
end

local function new_block(first)
  return { first = first, desc = {}, params = {}, returns = {}, fields = {}, overloads = {}, tags = {} }
end

local function finish(block)
  while block.desc[1] == "" do table.remove(block.desc, 1) end
  while block.desc[#block.desc] == "" do table.remove(block.desc) end
  block.text = table.concat(block.desc, "\n")
  return block
end

--- Parse a Lua source file's annotation blocks (cached per path).
---@param path string the file
---@return table|nil file {path, lines, blocks (list), by_end = {[last line] = block}, classes = {[name] = block}}
function M.file(path)
  if cache[path] ~= nil then return cache[path] or nil end
  local f = io.open(path, "r")
  if not f then
    cache[path] = false
    return nil
  end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  local file = { path = path, lines = lines, blocks = {}, by_end = {}, classes = {} }
  local block
  for i = 1, #lines + 1 do
    local text = lines[i] and doc_text(lines[i])
    if text then
      block = block or new_block(i)
      if not parse_tag(block, text) then block.desc[#block.desc + 1] = text end
      block.last = i
    elseif block then
      finish(block)
      file.blocks[#file.blocks + 1] = block
      file.by_end[block.last] = block
      if block.class then file.classes[block.class] = block end
      block = nil
    end
  end
  cache[path] = file
  return file
end

--- The annotation block right above a Lua function's definition, with the file it is in.
---@param fn function a Lua function (C functions have no source)
---@return table|nil block parsed block (nil when the line above the definition is no doc comment)
---@return string|nil path the source file, when the function has one
---@return integer|nil line the line of the definition
function M.function_block(fn)
  local info = debug.getinfo(fn, "S")
  if info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then return nil end
  local path = info.source:sub(2)
  local file = M.file(path)
  local block = file and file.by_end[info.linedefined - 1]
  if block and block.class then block = nil end -- a class header, not this function's doc
  return block, path, info.linedefined
end

--- The names of a Lua function's parameters ("..." last for a vararg function).
---@param fn function
---@return string[] names
function M.param_names(fn)
  local info, names = debug.getinfo(fn, "u"), {}
  if debug.getinfo(fn, "S").what ~= "Lua" then return names end
  for i = 1, info.nparams do names[i] = debug.getlocal(fn, i) end
  if info.isvararg then names[#names + 1] = "..." end
  return names
end

--- What is missing from the documentation of a Lua function: nil when it has a description and
--- an @param for every parameter (self excepted), else a sentence saying what is missing.
---@param fn function
---@return string|nil problem
function M.check_function(fn)
  local block = M.function_block(fn)
  if not block then return "no ---@ annotation block above the definition" end
  if block.text == "" then return "the annotation block has no description" end
  local documented = {}
  for _, p in ipairs(block.params) do documented[p.name] = true end
  local missing = {}
  for _, name in ipairs(M.param_names(fn)) do
    if name ~= "self" and not documented[name] then missing[#missing + 1] = name end
  end
  if #missing > 0 then return "no @param for " .. table.concat(missing, ", ") end
  return nil
end

return M
