-- lua_api.lua: the program fuzz_lua_api.c runs. It reads the fuzz input as a sequence of API calls
-- (a public nn.* function, a tensor or object method, an operator) with generated arguments, each
-- under pcall: a call may return or raise a string, and anything else fails the run.
local nn = nn -- set by the harness (fuzz_lua.c)
local fuzz_check = fuzz_check

local MAX_OPS = 48        -- calls per input
local POOL = 24           -- values kept for later calls
local MAX_NUMEL = 512     -- generated tensors
local KEEP_NUMEL = 65536  -- results larger than this are dropped, not kept in the pool
local STEP_BUDGET = 2000  -- x 1000 Lua instructions per call, then the call is stopped

-- ---- what may be called ----

-- Functions that would change the process rather than compute (threads, terminal output).
local DENY = {
  ["nn.set_num_threads"] = true, ["nn.progress"] = true,
  ["nn.interrupt.install"] = true, ["nn.interrupt.uninstall"] = true, -- signal handlers
  ["nn.models.resnet18"] = true, ["nn.models.resnet34"] = true, -- 11M+ parameters each: slow, not new
}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do if type(k) == "string" then ks[#ks + 1] = k end end
  table.sort(ks)
  return ks
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Every function reachable from nn (two levels of tables, lazy submodules loaded), sorted by name.
local FUNCS = {}
local function collect(prefix, t, depth, seen)
  if seen[t] then return end
  seen[t] = true
  for _, k in ipairs(sorted_keys(t)) do
    local name, v = prefix .. "." .. k, t[k]
    if not DENY[name] and not k:match("^__") then
      if callable(v) then FUNCS[#FUNCS + 1] = { name = name, fn = v } end
      -- namespaces only: a class's methods are reached through its instances
      if type(v) == "table" and depth < 2 and k ~= "Tensor" and not callable(v) then
        collect(name, v, depth + 1, seen)
      end
    end
  end
end

local function build_funcs()
  -- touch the lazily loaded parts so they are in the table
  for _, k in ipairs { "init", "optim", "utils", "metrics", "data", "models", "plot", "gradcheck" } do
    local _ = nn[k]
  end
  for _, k in ipairs(require("nnlua.nn").names) do local _ = nn[k] end
  collect("nn", nn, 0, {})
  if os.getenv("NNL_FUZZ_LIST") then
    for i, f in ipairs(FUNCS) do io.stderr:write(i, " ", f.name, "\n") end
  end
end
build_funcs()

-- Methods of a value: the function fields along its metatable's __index chain (and the
-- metamethods of a tensor), sorted; cached per metatable.
local method_cache = setmetatable({}, { __mode = "k" })
local TENSOR_MT = getmetatable(nn.zeros(1))
local function methods_of(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then
    if type(v) == "table" then mt = v else return nil end
  end
  local cached = method_cache[mt]
  if cached then return cached end
  local list, seen, names = {}, {}, {}
  local function add(t, depth)
    if type(t) ~= "table" or seen[t] or depth > 6 then return end
    seen[t] = true
    for _, k in ipairs(sorted_keys(t)) do
      local f = rawget(t, k)
      if callable(f) and not names[k] then names[k] = true; list[#list + 1] = { name = k, fn = f } end
    end
    local m = getmetatable(t)
    if type(m) == "table" then add(rawget(m, "__index"), depth + 1) end
  end
  if mt == TENSOR_MT then
    add(nn.Tensor, 0)
    for _, k in ipairs(sorted_keys(mt)) do
      if type(mt[k]) == "function" then list[#list + 1] = { name = k, fn = mt[k] } end
    end
  else
    add(rawget(mt, "__index"), 0)
    if mt ~= v then add(v, 0) end
  end
  method_cache[mt] = list
  return list
end

-- ---- the input ----

local data, pos, done = "", 1, false
local function u8()
  if pos > #data then done = true; return 0 end
  pos = pos + 1
  return data:byte(pos - 1)
end
local function u16() return u8() * 256 + u8() end
local function pick(list) return list[u8() % #list + 1] end

local nan, inf = 0 / 0, math.huge
local INTS = { 0, 1, 2, 3, 4, 5, 7, 8, 16, -1, -2, -3, 255, 256, 1000, 65535, 65536, 1000000,
  2147483647, 2147483648, -2147483648, 4294967296, 9007199254740993, 1 << 62, math.maxinteger,
  math.mininteger }
local FLOATS = { 0.0, -0.0, 0.5, -0.5, 1.0, 2.0, 3.0, 0.1, 0.9, 0.999, 1e-3, 1e-8, 3.5, -7.25, 1e38,
  3.5e38, 1e300, -1e300, 5e-324, 1e-40, inf, -inf, nan, math.pi, 2.0 ^ 63, -2.0 ^ 63, 1e15, 0.3 }
local STRINGS = { "float32", "int64", "uint8", "float", "long", "byte", "bool", "float64",
  "torch.float32", "mean", "sum", "none", "relu", "tanh", "sigmoid", "linear", "leaky_relu", "conv2d",
  "fan_in", "fan_out", "lstm", "gru", "rnn", "nearest", "bilinear", "constant", "reflect", "train",
  "val", "weight", "bias", "", " ", "x", "t.safetensors", "a.idx", "a.idx.gz", "i.png", "i.jpg",
  "i.bmp", "i.gif", "v.json", "nothere", ".", "..", "{}", "[1,2,3]", '{"idx_to_word":["a","b"]}',
  "\0", "%s%s%n", "\255\254", "1e999", "-0", string.rep("ab", 40) }
local KEYS = { "dim", "keepdim", "stride", "padding", "dilation", "groups", "bias", "eps", "momentum",
  "training", "p", "inplace", "reduction", "ignore_index", "weight", "gz", "batch_first",
  "num_layers", "bidirectional", "dropout", "lr", "betas", "weight_decay", "nesterov", "dampening",
  "alpha", "centered", "amsgrad", "maximize", "size", "mode", "dtype", "requires_grad", "seed",
  "mean", "std", "min", "max", "channels", "quality", "h", "w", "hidden_size", "input_size",
  "num_classes", "kernel_size", "in_channels", "out_channels", "affine", "track_running_stats",
  "negative_slope", "approximate", "label_smoothing", "padding_idx", "max_norm", "nonlinearity",
  "batch_size", "shuffle", "drop_last", "epoch", "threads", "indices", "gain", "a", "start_dim",
  "end_dim", "step_size", "gamma", "milestones", "T_max", "eta_min", "last_epoch", "vocab_size",
  "wordvec_dim", "hidden_dim", "cell", "encoder", "beam", "max_length", "title", "width",
  "height", "series", "path", "x", "y", "values", "label", "scale", "ratio", "output_size",
  "count_include_pad", "ceil_mode", "return_indices", "norm_type", "error_if_nonfinite",
  "atol", "rtol", "foreach", 1, 2, 3 }
local DTYPES = { "float32", "int64", "uint8" }
local DIMS = { 0, 1, 1, 2, 2, 3, 3, 4, 5, 7 }

-- Strings reach functions that take paths: keep them inside the working directory (the
-- harness's temp dir), with no way up or out.
local function safe_string(s)
  s = s:gsub("/", "_")
  if s == ".." then s = "_.." end
  return s
end

local pool, npool = {}, 0
local gen_value

local function store(v)
  if v == nil then return end
  if nn.is_tensor(v) then
    local ok, n = pcall(v.numel, v)
    if not ok or n > KEEP_NUMEL then return end
  elseif type(v) == "table" then
    local n = 0
    for _ in next, v do
      n = n + 1
      if n > 64 then return end
    end
  elseif type(v) == "string" and #v > 512 then
    return
  end
  npool = npool + 1
  pool[(npool - 1) % POOL + 1] = v
end

local function from_pool()
  if npool == 0 then return nil end
  return pool[u8() % math.min(npool, POOL) + 1]
end

local function pcall_quiet(f, ...) -- generator steps: errors are fine, the result may be nil
  local ok, r = pcall(f, ...)
  if ok then return r end
  fuzz_check(type(r) == "string", "error object is not a string")
  return nil
end

local function gen_shape()
  local nd, shape, numel = u8() % 5, {}, 1
  for i = 1, nd do
    local d = pick(DIMS)
    if numel * d > MAX_NUMEL then d = 1 end
    shape[i] = d
    numel = numel * d
  end
  return shape, numel
end

local function gen_tensor()
  local shape, numel = gen_shape()
  local mode, dt = u8() % 4, pick(DTYPES)
  local t
  if mode == 0 then
    t = pcall_quiet(nn.randn, shape)
  elseif mode == 1 then
    t = pcall_quiet(nn.zeros, shape)
  elseif mode == 2 then
    t = pcall_quiet(function() return nn.arange(0, numel):reshape(shape) end)
  else
    local flat = {}
    for i = 1, numel do flat[i] = (u8() % 3 == 0) and pick(FLOATS) or (u8() % 16 - 4) end
    t = pcall_quiet(function()
      if #shape == 0 then return nn.tensor(flat[1] or 0) end
      return nn.tensor(flat):reshape(shape)
    end)
  end
  if not t then return nil end
  if dt ~= "float32" then t = pcall_quiet(t.to, t, dt) or t end
  local v = u8() % 8
  if v == 1 and t:dim() >= 2 then
    t = pcall_quiet(t.transpose, t, 1, t:dim()) or t
  elseif v == 2 and t:dim() >= 1 and t:size(1) >= 2 then
    t = pcall_quiet(t.narrow, t, 1, 2, t:size(1) - 1) or t
  elseif v == 3 then
    t = pcall_quiet(function() return t:unsqueeze(1):expand(3, table.unpack(t:size())) end) or t
  elseif v == 4 and t:dim() >= 1 then
    t = pcall_quiet(t.select, t, 1, 1) or t
  elseif v == 5 and t:dim() >= 2 then
    t = pcall_quiet(function()
      local p = {}
      for i = 1, t:dim() do p[i] = t:dim() - i + 1 end
      return t:permute(p)
    end) or t
  end
  if u8() % 4 == 0 and t:dtype() == "float32" then t = pcall_quiet(t.requires_grad_, t) or t end
  return t
end

local CALLBACKS = {
  function(...) return ... end,
  function() error("callback error") end,
  function(x) if nn.is_tensor(x) then return x:sum() end return x end,
  function(...) return gen_value(1) end,
  function() return nil end,
}

local function gen_table(depth)
  local t, n = {}, u8() % 5
  if u8() % 2 == 0 then
    for i = 1, n do t[i] = gen_value(depth + 1) end
  else
    for _ = 1, n do
      local k = pick(KEYS)
      t[k] = gen_value(depth + 1)
    end
  end
  return t
end

function gen_value(depth)
  depth = depth or 0
  local k = u8() % 20
  if k == 0 then return nil
  elseif k == 1 then return u8() % 2 == 0
  elseif k <= 3 then return u8() % 16 - 4
  elseif k == 4 then return pick(INTS)
  elseif k == 5 then return pick(FLOATS)
  elseif k == 6 then return pick(STRINGS)
  elseif k == 7 then
    local n = u8() % 24
    local s = data:sub(pos, pos + n - 1)
    pos = pos + n
    return safe_string(s)
  elseif k <= 11 then return from_pool()
  elseif k <= 13 then return gen_tensor()
  elseif k == 14 then
    if depth > 1 then return from_pool() end
    local t, n = {}, u8() % 4 + 1 -- a list of tensors
    for i = 1, n do t[i] = gen_tensor() end
    return t
  elseif k <= 16 then
    if depth > 1 then return pick(INTS) end
    return gen_table(depth)
  elseif k == 17 then -- a shape list
    local shape = gen_shape()
    return shape
  elseif k == 18 then return pick(CALLBACKS)
  else return from_pool() end
end

local function gen_args()
  local args, n = {}, u8() % 6
  for i = 1, n do args[i] = gen_value(0) end
  -- paths stay in the working directory (strings inside option tables included)
  for i = 1, n do
    local a = args[i]
    if type(a) == "string" then
      args[i] = safe_string(a)
    elseif type(a) == "table" and not nn.is_tensor(a) and getmetatable(a) == nil then
      for key, v in pairs(a) do if type(v) == "string" then a[key] = safe_string(v) end end
    end
  end
  return args, n
end

-- ---- running a call ----

local steps = 0
local function hook()
  steps = steps + 1
  if steps > STEP_BUDGET then error("fuzz: step budget exceeded", 2) end
end

local verbose = os.getenv("NNL_FUZZ_VERBOSE")
local function call(name, f, ...)
  steps = 0
  local t0 = verbose and nn.clock()
  debug.sethook(hook, "", 1000)
  local r = table.pack(pcall(f, ...))
  debug.sethook()
  if verbose then
    local a = table.pack(...)
    for i = 1, a.n do a[i] = nn.is_tensor(a[i]) and "tensor" or select(2, pcall(tostring, a[i])) end
    io.stderr:write(("%.3fs (%s) "):format(nn.clock() - t0, table.concat(a, ", ", 1, a.n)))
  end
  if not r[1] then
    fuzz_check(type(r[2]) == "string", name .. " raised a " .. type(r[2]) .. " instead of a message")
    if verbose then io.stderr:write(name, ": ", r[2], "\n") end
    return
  end
  if verbose then io.stderr:write(name, ": ok\n") end
  for i = 2, math.min(r.n, 5) do
    local v = r[i]
    if nn.is_tensor(v) then
      local ok, n = pcall(v.numel, v)
      if ok and n <= 4096 then pcall(tostring, v) end
    end
    store(v)
  end
end

local BINOPS = {
  function(a, b) return a + b end, function(a, b) return a - b end, function(a, b) return a * b end,
  function(a, b) return a / b end, function(a, b) return a ^ b end, function(a, b) return a == b end,
  function(a, b) return a < b end, function(a, b) return a <= b end, function(a, b) return a .. b end,
  function(a, b) return a % b end, function(a, b) return a // b end,
  function(a) return -a end, function(a) return #a end, function(a) return tostring(a) end,
  function(a, b) return a[b] end, function(a, b, c) a[b] = c end,
  function(a) local t <close> = a; return nil end,
  function(a, b) return a(b) end,
}
local BINOP_NAMES = { "+", "-", "*", "/", "^", "==", "<", "<=", "..", "%", "//", "unm", "#",
  "tostring", "index", "newindex", "close", "call" }

local function reset()
  nn.set_grad_enabled(true)
  nn.manual_seed(0)
  math.randomseed(0)
  if nn.detect_anomaly then pcall(nn.detect_anomaly, false) end
end

-- run(input): one fuzz input.
return function(input)
  data, pos, done = input, 1, false
  pool, npool = {}, 0
  reset()
  for _ = 1, MAX_OPS do
    local op = u8() % 10
    if done then break end
    if op <= 3 then -- a function
      local f = FUNCS[u16() % #FUNCS + 1]
      local args, n = gen_args()
      call(f.name, f.fn, table.unpack(args, 1, n))
    elseif op <= 6 then -- a method of a pool value
      local self = from_pool()
      local ms = self ~= nil and methods_of(self)
      if ms and #ms > 0 then
        local m = ms[u16() % #ms + 1]
        local args, n = gen_args()
        call(m.name, m.fn, self, table.unpack(args, 1, n))
      end
    elseif op == 7 then -- an operator
      local i = u8() % #BINOPS + 1
      local a = from_pool()
      if a == nil then a = gen_tensor() end
      local b, c = gen_value(1), gen_value(1)
      if i == 16 and type(a) == "table" and not nn.is_tensor(a) then
        -- assigning into a table the library shares (a class) would leak into later inputs
        b = "fuzz_field"
      end
      call(BINOP_NAMES[i], BINOPS[i], a, b, c)
    else
      store(gen_value(0))
    end
  end
  pool = {}
  debug.sethook()
end
