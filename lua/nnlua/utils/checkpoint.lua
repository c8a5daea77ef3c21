-- checkpoint.lua: nn.utils.save_checkpoint / load_checkpoint: a training run in one safetensors file
-- (model, optimizer and scheduler state, epoch, RNG and loader streams), written atomically by nn.save.
local nn = require "nnlua"

local M = {}

local FORMAT = "nnlua.checkpoint/1"

-- ---- a small JSON for the metadata (numbers keep their Lua subtype: 1 vs 1.0) ----

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode(v, where, out)
  local ty = type(v)
  if ty == "table" then
    if nn.is_tensor(v) then error(("save_checkpoint: %s: tensors cannot go in metadata"):format(where), 0) end
    if is_array(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, where .. "[" .. i .. "]", out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and math.type(k) ~= "integer" then
          error(("save_checkpoint: %s: keys must be strings or integers, got a %s"):format(where, type(k)), 0)
        end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        local x = v[k]
        if x == nil then x = v[math.tointeger(tonumber(k))] end
        if i > 1 then out[#out + 1] = "," end
        encode(k, where, out)
        out[#out + 1] = ":"
        encode(x, where .. "." .. k, out)
      end
      out[#out + 1] = "}"
    end
  elseif ty == "string" then
    out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c) return ESCAPES[c] or ("\\u%04x"):format(c:byte()) end) .. '"'
  elseif math.type(v) == "integer" then
    out[#out + 1] = tostring(v)
  elseif ty == "number" then
    if v ~= v then error(("save_checkpoint: %s is NaN"):format(where), 0) end
    if v == math.huge or v == -math.huge then
      out[#out + 1] = v > 0 and "1e999" or "-1e999"
    else
      local s = ("%.17g"):format(v)
      if not s:find("[.eEn]") then s = s .. ".0" end -- stays a float when read back
      out[#out + 1] = s
    end
  elseif ty == "boolean" then
    out[#out + 1] = tostring(v)
  else
    error(("save_checkpoint: %s: cannot store a %s"):format(where, ty), 0)
  end
  return out
end

local function to_json(v, where) return table.concat(encode(v, where, {})) end

local function from_json(s, where)
  local pos = 1
  local function fail(msg) error(("load_checkpoint: metadata %s: %s at byte %d"):format(where, msg, pos), 0) end
  local function skip() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = s:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        if e == "u" then
          out[#out + 1] = utf8.char(tonumber(s:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape"))
          pos = pos + 6
        else
          out[#out + 1] = ({ n = "\n", r = "\r", t = "\t", b = "\b", f = "\f" })[e] or e
          pos = pos + 2
        end
      else
        out[#out + 1] = c
        pos = pos + 1
      end
    end
    pos = pos + 1
    return table.concat(out)
  end
  function value()
    skip()
    local c = s:sub(pos, pos)
    if c == "{" or c == "[" then
      local t, close, i = {}, c == "{" and "}" or "]", 0
      pos = pos + 1
      skip()
      if s:sub(pos, pos) == close then pos = pos + 1 return t end
      while true do
        skip()
        if close == "}" then
          if s:sub(pos, pos) ~= '"' then fail("key expected") end
          local k = str()
          skip()
          if s:sub(pos, pos) ~= ":" then fail("':' expected") end
          pos = pos + 1
          t[k:match("^%-?%d+$") and math.tointeger(tonumber(k)) or k] = value()
        else
          i = i + 1
          t[i] = value()
        end
        skip()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == close then return t end
        if d ~= "," then fail("',' or '" .. close .. "' expected") end
      end
    elseif c == '"' then
      return str()
    end
    local word = s:match("^[%w.+-]+", pos)
    if not word then fail("value expected") end
    pos = pos + #word
    if word == "true" then return true elseif word == "false" then return false end
    return tonumber(word) or fail("bad value '" .. word .. "'")
  end
  local v = value()
  skip()
  if pos <= #s then fail("trailing characters") end
  return v
end

M._to_json, M._from_json = to_json, from_json

-- ---- loaders: the shuffle (and augmentation) streams that make the next epoch's batches ----

local function loader_state(loader)
  if loader._rng then return { kind = "DataLoader", seed = loader.seed, rng = loader._rng } end
  if loader.set_epoch then return { kind = "ImageLoader", seed = loader.seed, epoch = loader.epoch } end
  error("save_checkpoint: loader must be an nn.data.DataLoader or ImageLoader", 0)
end

local function set_loader_state(loader, st)
  if st.kind == "DataLoader" and loader._rng then
    loader.seed = st.seed
    loader._rng = { seed = st.rng.seed, offset = st.rng.offset }
  elseif st.kind == "ImageLoader" and loader.set_epoch then
    loader.seed = st.seed
    loader:set_epoch(st.epoch)
  else
    error(("load_checkpoint: the checkpoint holds the state of a %s, not of this loader"):format(tostring(st.kind)), 0)
  end
end

-- ---- save ----

local function class_name(obj) return obj.__name or (getmetatable(obj) or {}).__name end

---Save a training run in one safetensors file, written atomically: the model's state dict under
---"model.<key>", each optimizer state tensor under "optimizer.state.<i>.<name>" (i numbers the
---parameters as optimizer:state_dict() does), the rest as JSON metadata (optimizer groups and
---scalar state, scheduler state, epoch, the global RNG state, the loader's stream, extra).
---@param path string the file
---@param opts {model?: nn.Module, optimizer?: nn.optim.Optimizer, scheduler?: nn.optim.LRScheduler, epoch?: integer, extra?: table, loader?: table, rng?: boolean} extra: numbers, strings, booleans, tables of them, or tensors ("extra.<key>"); rng = false leaves out the RNG state
function M.save_checkpoint(path, opts)
  if type(path) ~= "string" then error("save_checkpoint: path (a string) expected, got " .. type(path), 2) end
  if type(opts) ~= "table" then error("save_checkpoint: options table expected, got " .. type(opts), 2) end
  local tensors, meta = {}, { format = FORMAT }
  local ok, err = pcall(function()
    if opts.model then
      for k, t in pairs(opts.model:state_dict()) do tensors["model." .. k] = t end
    end
    if opts.optimizer then
      local sd = opts.optimizer:state_dict()
      local scalars = {}
      for i, s in pairs(sd.state) do
        for k, v in pairs(s) do
          if nn.is_tensor(v) then
            tensors[("optimizer.state.%d.%s"):format(i, k)] = v
          else
            scalars[i] = scalars[i] or {}
            scalars[i][k] = v
          end
        end
      end
      meta.optimizer = to_json({ class = class_name(opts.optimizer), param_groups = sd.param_groups, state = scalars },
        "optimizer")
    end
    if opts.scheduler then
      meta.scheduler = to_json({ class = class_name(opts.scheduler), state = opts.scheduler:state_dict() }, "scheduler")
    end
    if opts.epoch ~= nil then
      if math.type(opts.epoch) ~= "integer" then error("save_checkpoint: epoch must be an integer", 0) end
      meta.epoch = tostring(opts.epoch)
    end
    if opts.rng ~= false then meta.rng = to_json(nn.get_rng_state(), "rng") end
    if opts.loader then meta.loader = to_json(loader_state(opts.loader), "loader") end
    if opts.extra ~= nil then
      if type(opts.extra) ~= "table" then error("save_checkpoint: extra must be a table", 0) end
      local rest = {}
      for k, v in pairs(opts.extra) do
        if nn.is_tensor(v) then tensors["extra." .. tostring(k)] = v else rest[k] = v end
      end
      meta.extra = to_json(rest, "extra")
    end
  end)
  if not ok then error(err, 2) end
  ok, err = pcall(nn.save, path, tensors, meta)
  if not ok then error("save_checkpoint: " .. tostring(err), 2) end
  return path
end

-- ---- load ----

---Restore a run saved by save_checkpoint into the objects given (and the global RNG state unless
---rng = false). A part asked for but missing from the file is an error; so are keys that do not
---match (strict).
---@param path string the file
---@param opts? {model?: nn.Module, optimizer?: nn.optim.Optimizer, scheduler?: nn.optim.LRScheduler, loader?: table, rng?: boolean, strict?: boolean}
---@return {epoch: integer|nil, extra: table|nil, model_state: table, metadata: table} info model_state: the saved state dict (keys without "model.")
function M.load_checkpoint(path, opts)
  if type(path) ~= "string" then error("load_checkpoint: path (a string) expected, got " .. type(path), 2) end
  opts = opts or {}
  local ok, res = pcall(function()
    local tensors, meta = nn.load(path)
    if meta.format ~= FORMAT then
      error(("load_checkpoint: %s is not an nnlua training checkpoint (metadata format = %s, expected %s); "
        .. "for a plain state dict use model:load_state_dict(nn.load(path))"):format(path, tostring(meta.format), FORMAT), 0)
    end
    local model_state, opt_tensors, extra = {}, {}, {}
    for k, t in pairs(tensors) do
      local mk = k:match("^model%.(.+)$")
      local i, name = k:match("^optimizer%.state%.(%d+)%.(.+)$")
      local ek = k:match("^extra%.(.+)$")
      if mk then model_state[mk] = t
      elseif i then
        i = math.tointeger(tonumber(i))
        opt_tensors[i] = opt_tensors[i] or {}
        opt_tensors[i][name] = t
      elseif ek then extra[ek] = t end
    end
    local function need(field, what)
      if not meta[field] then error(("load_checkpoint: %s holds no %s"):format(path, what), 0) end
      return from_json(meta[field], field)
    end
    if opts.model then
      if not next(model_state) then error(("load_checkpoint: %s holds no model state"):format(path), 0) end
      local ok_m, err = pcall(opts.model.load_state_dict, opts.model, model_state, { strict = opts.strict ~= false })
      if not ok_m then error(("load_checkpoint: %s: %s"):format(path, tostring(err)), 0) end
    end
    if opts.optimizer then
      local o = need("optimizer", "optimizer state")
      local cls = class_name(opts.optimizer)
      if o.class and cls and o.class ~= cls then
        error(("load_checkpoint: %s holds the state of a %s optimizer, not of a %s"):format(path, o.class, cls), 0)
      end
      local state = {}
      for i, s in pairs(o.state or {}) do state[i] = s end
      for i, s in pairs(opt_tensors) do
        state[i] = state[i] or {}
        for k, t in pairs(s) do state[i][k] = t end
      end
      opts.optimizer:load_state_dict({ state = state, param_groups = o.param_groups })
    end
    if opts.scheduler then
      local sch = need("scheduler", "scheduler state")
      opts.scheduler:load_state_dict(sch.state)
    end
    if opts.loader then set_loader_state(opts.loader, need("loader", "loader state")) end
    if opts.rng ~= false and meta.rng then nn.set_rng_state(from_json(meta.rng, "rng")) end
    if meta.extra then
      for k, v in pairs(from_json(meta.extra, "extra")) do extra[k] = v end
    end
    return { epoch = meta.epoch and math.tointeger(tonumber(meta.epoch)), extra = extra,
             model_state = model_state, metadata = meta }
  end)
  if not ok then error(res, 2) end
  return res
end

return M
