-- safetensors.lua (spec helper): a small pure-Lua reader of safetensors files (F32 and I64), so
-- the specs read PyTorch fixtures without depending on nn.load. Returns name -> nn.tensor.
local nn = require "nnlua"

-- Minimal JSON: objects, arrays, strings (simple escapes), numbers, true/false/null.
local function json_decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out, i = {}, pos + 1
    while true do
      local c = s:sub(i, i)
      if c == '"' then break end
      if c == "" then error("json: unterminated string") end
      if c == "\\" then
        local e = s:sub(i + 1, i + 1)
        local map = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f" }
        if e == "u" then
          out[#out + 1] = utf8.char(tonumber(s:sub(i + 2, i + 5), 16))
          i = i + 6
        else
          out[#out + 1] = map[e] or e
          i = i + 2
        end
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
    pos = i + 1
    return table.concat(out)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return t end
      while true do
        ws()
        local k = str()
        ws()
        assert(s:sub(pos, pos) == ":", "json: ':' expected")
        pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        assert(d == ",", "json: ',' or '}' expected")
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        assert(d == ",", "json: ',' or ']' expected")
      end
    elseif c == '"' then
      return str()
    else
      local lit = s:match("^[%w%.%+%-]+", pos)
      assert(lit, "json: unexpected character at " .. pos)
      pos = pos + #lit
      if lit == "true" then return true elseif lit == "false" then return false
      elseif lit == "null" then return nil end
      return math.tointeger(tonumber(lit)) or tonumber(lit)
    end
  end
  return value()
end

local formats = { F32 = { "<f", 4, "float32" }, I64 = { "<i8", 8, "int64" } }

--- Read every tensor of a safetensors file.
---@param path string
---@return table<string, any> tensors, table metadata
local function load(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  local n = string.unpack("<I8", data)
  local header = json_decode(data:sub(9, 8 + n))
  local base = 8 + n
  local out = {}
  for name, info in pairs(header) do
    if name ~= "__metadata__" then
      local fmt = formats[info.dtype] or error("safetensors: unsupported dtype " .. info.dtype)
      local first, last = info.data_offsets[1], info.data_offsets[2]
      local vals = {}
      for p = base + first + 1, base + last, fmt[2] do
        vals[#vals + 1] = string.unpack(fmt[1], data, p)
      end
      local t = nn.tensor(vals, fmt[3])
      if #info.shape == 0 then
        t = t:view({})
      elseif #vals > 0 then
        t = t:view(info.shape)
      else
        t = nn.zeros(info.shape, fmt[3])
      end
      out[name] = t
    end
  end
  return out, header.__metadata__ or {}
end

return { load = load, json_decode = json_decode }
