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

-- Nothing reached from nn may end the fuzzing process: os.exit raises an error instead.
os.exit = function(code) error("os.exit(" .. tostring(code) .. ") reached from the API", 2) end

-- Functions that would change the process rather than compute (threads, terminal output).
local DENY = {
  ["nn.set_num_threads"] = true, ["nn.progress"] = true,
  ["nn.interrupt.install"] = true, ["nn.interrupt.uninstall"] = true, -- signal handlers
  ["nn.utils.TrainingGuard"] = true, -- installs the Ctrl-C flag; its stop() ends the process
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

local verbose = os.getenv("NNL_FUZZ_VERBOSE")
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

-- ---- recipes: layer ops with shapes that fit, so the kernels (and their backward) run ----

local function small(lo, hi) return lo + u8() % (hi - lo + 1) end
-- A valid-looking option value most of the time, anything at all sometimes.
local function opt(lo, hi)
  if u8() % 8 == 0 then return gen_value(1) end
  return small(lo, hi)
end
local function rnd(...)
  local t = nn.randn(...)
  if u8() % 4 ~= 0 then t:requires_grad_() end
  return t
end
-- 1-based labels in 1..n, sometimes out of range.
local function labels(n, ...)
  local t = nn.randint(1, n + 1, { ... })
  if u8() % 8 == 0 and t:numel() > 0 then
    local flat = t:reshape(-1):totable()
    flat[1] = pick { 0, -1, n + 1, -100, math.maxinteger, math.mininteger }
    t = nn.tensor(flat, "int64"):reshape(t:size()) -- exact: t[1] = v goes through a double
  end
  return t
end
local function maybe_view(t) -- a non-contiguous copy of the same values now and then
  if u8() % 4 == 0 and t:dim() >= 2 then return t:transpose(1, 2):contiguous():transpose(1, 2) end
  return t
end

local RECIPES = {
  conv2d = function()
    local g = small(1, 2)
    local N, C, O, H, W, k = small(1, 2), g * small(1, 2), g * small(1, 2), small(1, 6), small(1, 6), small(1, 3)
    local x, w = maybe_view(rnd(N, C, H, W)), rnd(O, C // g, k, small(1, 3))
    local b = u8() % 2 == 0 and rnd(O) or nil
    local pad = u8() % 8 == 0 and pick { "same", "valid" } or opt(0, 2)
    local o = { stride = opt(1, 3), padding = pad, dilation = opt(1, 2), groups = g }
    if verbose then
      io.stderr:write(("conv2d x %s w %s b %s stride %s padding %s dilation %s groups %s\n"):format(
        table.concat(x:size(), "x"), table.concat(w:size(), "x"), tostring(b ~= nil), tostring(o.stride),
        tostring(o.padding), tostring(o.dilation), g))
    end
    return nn.F.conv2d(x, w, b, o)
  end,
  max_pool2d = function()
    local x = maybe_view(rnd(small(1, 2), small(1, 3), small(1, 7), small(1, 7)))
    return nn.F.max_pool2d(x, opt(1, 3), { stride = opt(1, 3), padding = opt(0, 1), dilation = opt(1, 2),
      return_indices = u8() % 2 == 0 })
  end,
  avg_pool2d = function()
    local x = maybe_view(rnd(small(1, 2), small(1, 3), small(1, 7), small(1, 7)))
    return nn.F.avg_pool2d(x, opt(1, 3), { stride = opt(1, 3), padding = opt(0, 1),
      count_include_pad = u8() % 2 == 0 })
  end,
  adaptive_avg_pool2d = function()
    return nn.F.adaptive_avg_pool2d(rnd(small(1, 2), small(1, 3), small(1, 7), small(1, 7)),
      u8() % 2 == 0 and opt(1, 5) or { opt(1, 5), opt(1, 5) })
  end,
  batch_norm = function()
    local C = small(1, 3)
    local x = rnd(small(1, 3), C, small(1, 3), small(1, 3))
    if u8() % 2 == 0 then x = rnd(small(1, 4), C) end
    local rm, rv = nn.zeros(C), nn.ones(C)
    return nn.F.batch_norm(x, u8() % 4 ~= 0 and rm or nil, u8() % 4 ~= 0 and rv or nil, rnd(C), rnd(C),
      { training = u8() % 2 == 0, momentum = u8() % 4 == 0 and gen_value(1) or 0.1, eps = pick(FLOATS) })
  end,
  linear = function()
    local N, I, O = small(0, 3), small(1, 4), small(1, 4)
    local x = u8() % 3 == 0 and rnd(small(1, 2), N, I) or rnd(N, I)
    return nn.F.linear(maybe_view(x), rnd(O, I), u8() % 2 == 0 and rnd(O) or nil)
  end,
  recurrent = function()
    local kind = pick { "rnn", "lstm", "gru" }
    local G = kind == "lstm" and 4 or kind == "gru" and 3 or 1
    local T, N, D, H, bf = small(1, 4), small(1, 3), small(1, 3), small(1, 3), u8() % 2 == 0
    local x = u8() % 4 == 0 and rnd(T, D) or (bf and rnd(N, T, D) or rnd(T, N, D))
    local batched = x:dim() == 3
    local h0 = u8() % 3 ~= 0 and (batched and rnd(N, H) or rnd(H)) or nil
    local w = { rnd(G * H, D), rnd(G * H, H), rnd(G * H), rnd(G * H) }
    if u8() % 4 == 0 then w[3], w[4] = nil, nil end
    if kind == "lstm" then
      local c0 = h0 and (batched and rnd(N, H) or rnd(H)) or nil
      return nn.F.lstm(x, h0, c0, w[1], w[2], w[3], w[4], { batch_first = bf })
    end
    local o = { batch_first = bf }
    if kind == "rnn" and u8() % 2 == 0 then o.nonlinearity = pick { "relu", "tanh", "sigmoid" } end
    return nn.F[kind](x, h0, w[1], w[2], w[3], w[4], o)
  end,
  cell = function()
    local kind = pick { "rnn_cell", "lstm_cell", "gru_cell" }
    local G = kind == "lstm_cell" and 4 or kind == "gru_cell" and 3 or 1
    local N, D, H = small(1, 3), small(1, 3), small(1, 3)
    local x = u8() % 4 == 0 and rnd(D) or rnd(N, D)
    local h = x:dim() == 2 and rnd(N, H) or rnd(H)
    if kind == "lstm_cell" then
      return nn.F.lstm_cell(x, h, h:clone(), rnd(G * H, D), rnd(G * H, H), rnd(G * H), rnd(G * H))
    end
    return nn.F[kind](x, h, rnd(G * H, D), rnd(G * H, H), rnd(G * H), rnd(G * H))
  end,
  embedding = function()
    local V, D = small(1, 5), small(1, 3)
    local o = u8() % 2 == 0 and { padding_idx = opt(-V, V) } or nil
    return nn.F.embedding(labels(V, small(1, 3), small(1, 3)), rnd(V, D), o)
  end,
  class_loss = function()
    local N, C = small(1, 4), small(1, 4)
    local x = u8() % 4 == 0 and rnd(C) or rnd(N, C)
    local y = x:dim() == 1 and labels(C) :select(1, 1) or labels(C, N)
    if u8() % 4 == 0 and x:dim() == 2 then x, y = rnd(N, C, 2), labels(C, N, 2) end
    local o = { reduction = pick { "mean", "sum", "none", "bad" } }
    if u8() % 2 == 0 then o.ignore_index = opt(-1, C) end
    if u8() % 3 == 0 then o.weight = nn.rand(C) end
    local f = u8() % 2 == 0 and "cross_entropy" or "nll_loss"
    if f == "cross_entropy" and u8() % 2 == 0 then o.label_smoothing = pick(FLOATS) end
    return nn.F[f](x, y, o)
  end,
  regression_loss = function()
    local shape = gen_shape()
    local x, y = rnd(shape), nn.rand(shape)
    if u8() % 2 == 0 then
      return nn.F.mse_loss(x, y, { reduction = pick { "mean", "sum", "none" } })
    end
    local o = { reduction = pick { "mean", "sum", "none" } }
    if u8() % 2 == 0 then o.pos_weight = nn.rand(x:dim() > 0 and x:size(x:dim()) or 1) end
    return nn.F.binary_cross_entropy_with_logits(x, y, o)
  end,
  softmax = function()
    local x = maybe_view(rnd(small(1, 3), small(1, 4)))
    local f = pick { "softmax", "log_softmax" }
    return nn.F[f](x, opt(-2, 2))
  end,
  dropout = function()
    local x = rnd(small(1, 2), small(1, 3), small(1, 3), small(1, 3))
    return nn.F[pick { "dropout", "dropout2d" }](x, { p = pick { 0, 0.5, 1, 1.5, -0.1, nan }, training = u8() % 2 == 0 })
  end,
  image = function()
    local img = nn.randint(0, 256, { small(1, 4), small(1, 6), small(1, 6) }):byte()
    if u8() % 2 == 0 then img = img:float():div(255) end
    local f = pick { "resize", "crop", "hflip", "normalize", "to_float" }
    if f == "resize" then return nn.image.resize(img, opt(1, 8), opt(1, 8)) end
    if f == "crop" then return nn.image.crop(img, opt(-2, 6), opt(-2, 6), opt(1, 6), opt(1, 6)) end
    if f == "normalize" then
      local c = img:size(1)
      local m, sd = {}, {}
      for i = 1, c do m[i], sd[i] = pick(FLOATS), pick(FLOATS) end
      return nn.image.normalize(img:float(), m, sd)
    end
    return nn.image[f](img)
  end,
  index = function()
    local x = rnd(small(1, 3), small(1, 4))
    local d = small(1, 2)
    local f = pick { "gather", "index_select", "scatter_add", "one_hot" }
    if f == "index_select" then return nn.index_select(x, d, labels(x:size(d), small(0, 4))) end
    if f == "one_hot" then return nn.one_hot(labels(small(1, 4), small(0, 4)), opt(0, 5)) end
    local idx = labels(x:size(d), x:size(1), x:size(2))
    if f == "gather" then return nn.gather(x, d, idx) end
    return nn.scatter_add(x, d, idx, rnd(x:size(1), x:size(2)))
  end,
  matmul = function()
    local a, b, c = small(0, 3), small(1, 3), small(1, 3)
    local x = u8() % 3 == 0 and rnd(small(1, 2), a, b) or rnd(a, b)
    local y = u8() % 3 == 0 and rnd(b) or rnd(b, c)
    return nn.matmul(maybe_view(x), maybe_view(y))
  end,
  optim_step = function()
    local p = nn.randn(small(1, 3), small(1, 3))
    local g, s1, s2 = nn.randn(p:size()), nn.zeros(p:size()), nn.zeros(p:size())
    local f = pick { "sgd_step", "adam_step", "adamw_step", "rmsprop_step" }
    local o = { lr = pick(FLOATS) }
    if f == "sgd_step" then
      o.momentum, o.nesterov = opt(0, 1), u8() % 2 == 0
      return nn._C.sgd_step(p, g, s1, o)
    elseif f == "rmsprop_step" then
      o.centered, o.momentum = u8() % 2 == 0, opt(0, 1)
      return nn._C.rmsprop_step(p, g, s1, s2, nn.zeros(p:size()), o)
    end
    o.step, o.betas = opt(0, 3), u8() % 4 == 0 and { pick(FLOATS), pick(FLOATS) } or nil
    return nn._C[f](p, g, s1, s2, u8() % 2 == 0 and nn.zeros(p:size()) or nil, o)
  end,
}
local RECIPE_NAMES = sorted_keys(RECIPES)

-- Backward through a result, with a gradient of the right size or something else.
local function backward(t)
  if not nn.is_tensor(t) or not t:is_requires_grad() then return end
  if u8() % 2 == 0 then t:sum():backward() else t:backward(u8() % 4 == 0 and gen_value(1) or nn.ones(t:size())) end
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
    local op = u8() % 12
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
    elseif op <= 10 then -- a recipe, then maybe backward through its result
      local name = RECIPE_NAMES[u8() % #RECIPE_NAMES + 1]
      call("recipe " .. name, function()
        local r = table.pack(RECIPES[name]())
        if u8() % 2 == 0 then backward(r[1]) end
        return table.unpack(r, 1, r.n)
      end)
    else
      store(gen_value(0))
    end
  end
  pool = {}
  debug.sethook()
end
