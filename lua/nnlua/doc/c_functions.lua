-- doc/c_functions.lua: documentation of the C functions exposed to Lua (src/bind/*.c), which carry
-- no LuaLS annotations: name -> {signature, summary, params = {{name, type, text}}, returns, example}.
-- A string value names the entry that documents the same function; a namespace has a summary only.
-- This file holds nn.*; c_tensor.lua (x:method), c_functional.lua (nn.F) and c_image.lua (nn.image,
-- nn.io) are merged in below. spec/doc_spec.lua runs every example and fails on C functions missing here.
local D = {}

-- ---- namespaces ----

D["nn"] = { summary = "nnlua: tensors with autograd, layers (nn.Linear, ...), nn.F, optimizers, data, images.\n"
  .. "The C core gives tensors, autograd and kernels; the Lua files add modules and tools." }

-- ---- creation ----

D["nn.tensor"] = {
  signature = "nn.tensor(data, dtype?) -> Tensor",
  summary = "A new tensor from nested Lua tables of numbers (rectangular), from a number (a 0-d\n"
    .. "tensor), or from a tensor (a copy, converted to dtype). Booleans count as 1 and 0.",
  params = {
    { "data", "table|number|Tensor", "the values: {1, 2, 3}, {{1, 2}, {3, 4}}, 3.5 or a tensor" },
    { "dtype?", "string", '"float32" (default), "int64" or "uint8" (also "float", "long", "byte")' },
  },
  returns = "Tensor: a contiguous tensor of the nested tables' shape",
  example = 'local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}        -- 2 x 3 float32\nlocal y = nn.tensor({1, 2, 3}, "int64")',
}
D["nn.zeros"] = {
  signature = "nn.zeros(size..., dtype?) -> Tensor",
  summary = "A tensor of zeros. The size is given as integers or as one table: nn.zeros(2, 3), nn.zeros{2, 3}.",
  params = {
    { "size...", "integer...|integer[]", "the size of each dimension (none or {}: a 0-d tensor)" },
    { "dtype?", "string", '"float32" (default), "int64" or "uint8"' },
  },
  returns = "Tensor",
  example = 'local z = nn.zeros(2, 3)\nlocal counts = nn.zeros({10}, "int64")',
}
D["nn.ones"] = {
  signature = "nn.ones(size..., dtype?) -> Tensor",
  summary = "A tensor of ones; the size as in nn.zeros.",
  params = {
    { "size...", "integer...|integer[]", "the size of each dimension" },
    { "dtype?", "string", '"float32" (default), "int64" or "uint8"' },
  },
  returns = "Tensor",
  example = "local o = nn.ones(2, 3)",
}
D["nn.empty"] = {
  signature = "nn.empty(size..., dtype?) -> Tensor",
  summary = "A tensor to be overwritten (nnlua fills it with zeros; do not count on that).",
  params = {
    { "size...", "integer...|integer[]", "the size of each dimension" },
    { "dtype?", "string", '"float32" (default), "int64" or "uint8"' },
  },
  returns = "Tensor",
  example = "local w = nn.empty(4, 3):uniform_(-0.1, 0.1)",
}
D["nn.full"] = {
  signature = "nn.full(size, value, dtype?) -> Tensor",
  summary = "A tensor filled with value.",
  params = {
    { "size", "integer[]", "the size as a table, e.g. {2, 3}" },
    { "value", "number", "the fill value" },
    { "dtype?", "string", '"float32" (default), "int64" or "uint8"' },
  },
  returns = "Tensor",
  example = "local sevens = nn.full({2, 3}, 7)",
}
D["nn.zeros_like"] = {
  signature = "nn.zeros_like(x, dtype?) -> Tensor",
  summary = "Zeros of x's size (and dtype, unless another is given).",
  params = { { "x", "Tensor", "gives the size" }, { "dtype?", "string", "default: x's dtype" } },
  returns = "Tensor",
  example = "local g = nn.zeros_like(nn.randn(2, 3))",
}
D["nn.ones_like"] = {
  signature = "nn.ones_like(x, dtype?) -> Tensor",
  summary = "Ones of x's size (and dtype, unless another is given).",
  params = { { "x", "Tensor", "gives the size" }, { "dtype?", "string", "default: x's dtype" } },
  returns = "Tensor",
  example = "local m = nn.ones_like(nn.randn(2, 3))",
}
D["nn.full_like"] = {
  signature = "nn.full_like(x, value, dtype?) -> Tensor",
  summary = "A tensor of x's size (and dtype, unless another is given) filled with value.",
  params = {
    { "x", "Tensor", "gives the size" }, { "value", "number", "the fill value" },
    { "dtype?", "string", "default: x's dtype" },
  },
  returns = "Tensor",
  example = "local h = nn.full_like(nn.randn(2, 3), 0.5)",
}
D["nn.arange"] = {
  signature = "nn.arange(end) | nn.arange(start, end, step?) -> Tensor",
  summary = "start, start + step, ... up to but not including end (as PyTorch: nn.arange(3) is 0, 1, 2).\n"
    .. "int64 when every argument is an integer, else float32; a dtype string may come last.",
  params = {
    { "start?", "number", "first value (default 0)" }, { "end", "number", "the bound, excluded" },
    { "step?", "number", "default 1; may be negative" }, { "dtype?", "string", "overrides the dtype" },
  },
  returns = "Tensor: 1-D",
  example = "print(nn.arange(1, 10, 3))   -- 1, 4, 7 (int64)\nlocal t = nn.arange(0, 1, 0.25)",
}
D["nn.linspace"] = {
  signature = "nn.linspace(start, end, steps, dtype?) -> Tensor",
  summary = "steps values evenly spaced from start to end, both included.",
  params = {
    { "start", "number", "first value" }, { "end", "number", "last value" },
    { "steps", "integer", "how many values" }, { "dtype?", "string", '"float32" (default)' },
  },
  returns = "Tensor: 1-D of size steps",
  example = "local t = nn.linspace(0, 1, 5)   -- 0, 0.25, 0.5, 0.75, 1",
}
D["nn.eye"] = {
  signature = "nn.eye(n, m?, dtype?) -> Tensor",
  summary = "The n x m identity matrix (ones on the diagonal).",
  params = {
    { "n", "integer", "rows" }, { "m?", "integer", "columns (default n)" },
    { "dtype?", "string", '"float32" (default)' },
  },
  returns = "Tensor: n x m",
  example = "local I = nn.eye(3)",
}
D["nn.rand"] = {
  signature = "nn.rand(size...) -> Tensor",
  summary = "Uniform random numbers in [0, 1), float32, from the global generator (nn.manual_seed).",
  params = { { "size...", "integer...|integer[]", "the size of each dimension" } },
  returns = "Tensor: float32",
  example = "nn.manual_seed(0)\nlocal u = nn.rand(2, 3)",
}
D["nn.randn"] = {
  signature = "nn.randn(size...) -> Tensor",
  summary = "Standard normal random numbers (mean 0, variance 1), float32, from the global generator.",
  params = { { "size...", "integer...|integer[]", "the size of each dimension" } },
  returns = "Tensor: float32",
  example = "local w = nn.randn(3, 4) * 0.01",
}
D["nn.randint"] = {
  signature = "nn.randint(low?, high, size, dtype?) -> Tensor",
  summary = "Random integers drawn uniformly from [low, high) (low defaults to 0), int64 by default.",
  params = {
    { "low?", "integer", "smallest value (default 0)" }, { "high", "integer", "the bound, excluded" },
    { "size", "integer...|integer[]", "the size, as integers or a table" },
    { "dtype?", "string", '"int64" (default), "float32" or "uint8"' },
  },
  returns = "Tensor",
  example = "local labels = nn.randint(1, 11, {8})   -- 8 class numbers in 1..10",
}
D["nn.randperm"] = {
  signature = "nn.randperm(n, dtype?) -> Tensor",
  summary = "A random permutation of 1..n (1-based, like every index in nnlua), int64 by default.",
  params = { { "n", "integer", "how many" }, { "dtype?", "string", '"int64" (default)' } },
  returns = "Tensor: 1-D of size n",
  example = "local order = nn.randperm(10)",
}
D["nn.manual_seed"] = {
  signature = "nn.manual_seed(seed)",
  summary = "Seed the global random generator (rand, randn, randint, randperm, dropout, uniform_, ...).",
  params = { { "seed", "integer", "any integer" } },
  returns = "nothing",
  example = "nn.manual_seed(42)\nlocal a = nn.rand(2)\nnn.manual_seed(42)\nassert(nn.rand(2):eq(a):sum():item() == 2)",
}
D["nn.get_rng_state"] = {
  signature = "nn.get_rng_state() -> {seed =, offset =}",
  summary = "The global generator's state (a counter-based stream: a seed and how far it has been drawn).",
  params = {},
  returns = "table: {seed = integer, offset = integer}",
  example = "local s = nn.get_rng_state()\nlocal a = nn.rand(3)\nnn.set_rng_state(s)   -- the same three numbers again",
}
D["nn.set_rng_state"] = {
  signature = "nn.set_rng_state(state)",
  summary = "Restore a state from nn.get_rng_state: the draws that followed it repeat.",
  params = { { "state", "table", "{seed = integer, offset = integer}" } },
  returns = "nothing",
  example = "local s = nn.get_rng_state()\nnn.set_rng_state(s)",
}
D["nn.cat"] = {
  signature = "nn.cat(tensors, dim?) -> Tensor",
  summary = "Join tensors along an existing dimension; the other sizes must match.",
  params = {
    { "tensors", "Tensor[]", "a non-empty list of tensors of one dtype" },
    { "dim?", "integer", "1-based (negative: from the end); default 1" },
  },
  returns = "Tensor",
  example = "local ab = nn.cat({nn.ones(2, 3), nn.zeros(1, 3)}, 1)   -- 3 x 3",
}
D["nn.stack"] = {
  signature = "nn.stack(tensors, dim?) -> Tensor",
  summary = "Join same-size tensors along a new dimension.",
  params = {
    { "tensors", "Tensor[]", "a non-empty list of tensors of one size and dtype" },
    { "dim?", "integer", "where the new dimension goes, 1-based; default 1" },
  },
  returns = "Tensor: one dimension more than the inputs",
  example = "local batch = nn.stack({nn.zeros(3), nn.ones(3)})   -- 2 x 3",
}

-- ---- math (also tensor methods: x:add(y) is nn.add(x, y)) ----

local function binary(name, op, what)
  D["nn." .. name] = {
    signature = ("nn.%s(a, b) -> Tensor   (also a:%s(b)%s)"):format(name, name, op and (", a " .. op .. " b") or ""),
    summary = what .. "\nTensors broadcast by NumPy's rules; either side may be a number. Differentiable.",
    params = { { "a", "Tensor|number", "left operand" }, { "b", "Tensor|number", "right operand" } },
    returns = "Tensor",
    example = ("local a, b = nn.tensor{1, 2, 3}, nn.tensor{4, 5, 6}\nprint(nn.%s(a, b), a:%s(2))"):format(name, name),
  }
end
binary("add", "+", "Elementwise sum.")
binary("sub", "-", "Elementwise difference a - b.")
binary("mul", "*", "Elementwise product (for the matrix product see nn.matmul).")
binary("div", "/", "Elementwise quotient a / b.")
binary("pow", "^", "Elementwise power a ^ b.")
binary("maximum", nil, "Elementwise larger of a and b (the gradient goes to the larger).")
binary("minimum", nil, "Elementwise smaller of a and b.")

local function unary(name, what)
  D["nn." .. name] = {
    signature = ("nn.%s(x) -> Tensor   (also x:%s())"):format(name, name),
    summary = what .. " Differentiable.",
    params = { { "x", "Tensor", "float32 input" } },
    returns = "Tensor: x's size",
    example = ("print(nn.%s(nn.tensor{0.5, 1, 2}))"):format(name),
  }
end
unary("exp", "Elementwise e^x.")
unary("log", "Elementwise natural logarithm.")
unary("sqrt", "Elementwise square root.")
unary("abs", "Elementwise absolute value.")
unary("tanh", "Elementwise hyperbolic tangent.")
unary("sigmoid", "Elementwise logistic function 1 / (1 + e^-x).")
unary("relu", "Elementwise max(0, x) (the same as nn.F.relu).")

D["nn.clamp"] = {
  signature = "nn.clamp(x, min?, max?) | nn.clamp(x, {min =, max =}) -> Tensor   (also x:clamp(...))",
  summary = "Elementwise x limited to [min, max]; either bound may be left out (nil). Differentiable\n"
    .. "(the gradient is zero where x was clamped).",
  params = {
    { "x", "Tensor", "input" }, { "min?", "number", "lower bound" }, { "max?", "number", "upper bound" },
  },
  returns = "Tensor",
  example = "print(nn.tensor{-2, 0.5, 3}:clamp(0, 1))\nprint(nn.clamp(nn.tensor{-2, 3}, {min = 0}))",
}
D["nn.where"] = {
  signature = "nn.where(cond, a, b) -> Tensor",
  summary = "Elementwise a where cond is non-zero, else b (broadcasting). cond is usually a uint8 mask from\n"
    .. "a comparison (x:gt(0)); a and b may be numbers. Differentiable in a and b.",
  params = {
    { "cond", "Tensor", "the mask" }, { "a", "Tensor|number", "taken where cond ~= 0" },
    { "b", "Tensor|number", "taken where cond == 0" },
  },
  returns = "Tensor",
  example = "local x = nn.tensor{-1, 2, -3}\nprint(nn.where(x:gt(0), x, 0))",
}
D["nn.masked_fill"] = {
  signature = "nn.masked_fill(x, mask, value) -> Tensor   (also x:masked_fill(mask, value))",
  summary = "A copy of x with value wherever mask is non-zero (mask broadcasts to x). Differentiable in x.",
  params = {
    { "x", "Tensor", "input" }, { "mask", "Tensor", "uint8 mask, e.g. from x:eq(0)" },
    { "value", "number", "the fill value" },
  },
  returns = "Tensor",
  example = "local s = nn.tensor{1, 2, 3}\nprint(s:masked_fill(s:gt(2), -math.huge))",
}
D["nn.matmul"] = {
  signature = "nn.matmul(a, b) -> Tensor   (also a:matmul(b), a:mm(b))",
  summary = "Matrix product (sgemm): 1-D x 1-D is the dot product, 2-D x 2-D the matrix product; with more\n"
    .. "dimensions the leading ones are batch dimensions and broadcast. Differentiable.",
  params = { { "a", "Tensor", "... x n x k (or k)" }, { "b", "Tensor", "... x k x m (or k)" } },
  returns = "Tensor: ... x n x m",
  example = "local w = nn.randn(3, 4)\nlocal y = nn.matmul(nn.randn(2, 3), w)   -- 2 x 4",
}

local function reduction(name, what, extra)
  D["nn." .. name] = {
    signature = ("nn.%s(x, dim?, keepdim?) -> Tensor   (also x:%s(dim?, keepdim?))"):format(name, name),
    summary = what .. "\nWithout dim: over all elements, a 0-d tensor (:item() gives the number). With dim (1-based,\n"
      .. "negative from the end) that dimension is reduced; keepdim = true (or {keepdim = true}) keeps it\n"
      .. "with size 1." .. (extra or ""),
    params = {
      { "x", "Tensor", "input" }, { "dim?", "integer", "the dimension to reduce" },
      { "keepdim?", "boolean|{keepdim: boolean}", "keep the reduced dimension (default false)" },
    },
    returns = name:match("^arg") and "Tensor: int64 1-based positions"
      or (name == "max" or name == "min") and "Tensor, Tensor?: the values; with dim also their 1-based positions (int64)"
      or "Tensor",
    example = ("local x = nn.tensor{{1, 5}, {7, 2}}\nprint(x:%s(), x:%s(2))"):format(name, name),
  }
end
reduction("sum", "The sum of the elements. Differentiable.")
reduction("mean", "The mean of the elements. Differentiable.")
reduction("max", "The largest element; with dim, the largest along dim and where it is (1-based).",
  " Differentiable.")
reduction("min", "The smallest element; with dim, the smallest along dim and where it is (1-based).",
  " Differentiable.")
reduction("std", "The standard deviation with Bessel's correction (divides by n - 1), as PyTorch.")
reduction("var", "The variance with Bessel's correction (divides by n - 1), as PyTorch.")
reduction("argmax", "The 1-based position of the largest element (int64); without dim, in the flattened tensor.")
reduction("argmin", "The 1-based position of the smallest element (int64); without dim, in the flattened tensor.")

D["nn.index_select"] = {
  signature = "nn.index_select(x, dim, index) -> Tensor   (also x:index_select(dim, index))",
  summary = "The slices of x along dim at the 1-based positions in index (a copy). Differentiable in x.",
  params = {
    { "x", "Tensor", "input" }, { "dim", "integer", "1-based dimension" },
    { "index", "Tensor", "1-D int64, 1-based positions (may repeat)" },
  },
  returns = "Tensor: x's size with size(dim) = index:numel()",
  example = 'local x = nn.tensor{{1, 2}, {3, 4}, {5, 6}}\nprint(x:index_select(1, nn.tensor({3, 1}, "int64")))',
}
D["nn.gather"] = {
  signature = "nn.gather(x, dim, index) -> Tensor   (also x:gather(dim, index))",
  summary = "out[i][j] = x[i][index[i][j]] for dim 2 (and likewise for other dims): values picked along dim\n"
    .. "at 1-based positions. Differentiable in x.",
  params = {
    { "x", "Tensor", "input" }, { "dim", "integer", "1-based dimension" },
    { "index", "Tensor", "int64, 1-based, same number of dimensions as x" },
  },
  returns = "Tensor: index's size",
  example = 'local scores = nn.tensor{{0.1, 0.9}, {0.8, 0.2}}\nprint(scores:gather(2, nn.tensor({{2}, {1}}, "int64")))',
}
D["nn.scatter_add"] = {
  signature = "nn.scatter_add(x, dim, index, src) -> Tensor   (also x:scatter_add(dim, index, src))",
  summary = "A copy of x with each src value added at its 1-based position along dim (the reverse of gather);\n"
    .. "repeated positions add up. Differentiable in x and src.",
  params = {
    { "x", "Tensor", "the base" }, { "dim", "integer", "1-based dimension" },
    { "index", "Tensor", "int64, 1-based, src's size" }, { "src", "Tensor", "the values to add" },
  },
  returns = "Tensor: x's size",
  example = 'local counts = nn.zeros(4, "int64"):scatter_add(1, nn.tensor({2, 2, 4}, "int64"), nn.ones(3, "int64"))',
}
D["nn.one_hot"] = {
  signature = "nn.one_hot(labels, num_classes?) -> Tensor",
  summary = "int64 one-hot rows: label k (1-based) sets column k. num_classes defaults to the largest label.",
  params = {
    { "labels", "Tensor", "int64 class numbers 1..C, any shape" },
    { "num_classes?", "integer", "C (default: the largest label)" },
  },
  returns = "Tensor: int64, labels' size x C",
  example = 'print(nn.one_hot(nn.tensor({1, 3}, "int64"), 4))',
}

-- ---- autograd and runtime ----

D["nn.no_grad"] = {
  signature = "nn.no_grad(fn, ...) -> ...",
  summary = "Call fn(...) with gradient recording off (evaluation, weight updates); returns what fn returns.\n"
    .. "Recording is restored afterwards, also when fn raises an error.",
  params = { { "fn", "function", "the code to run" }, { "...", "any", "arguments for fn" } },
  returns = "whatever fn returns",
  example = "local w = nn.randn(3):requires_grad()\nlocal y = nn.no_grad(function() return w * 2 end)\nassert(not y:is_requires_grad())",
}
D["nn.set_grad_enabled"] = {
  signature = "nn.set_grad_enabled(on) -> boolean",
  summary = "Turn gradient recording on or off; returns the previous setting (to restore it).",
  params = { { "on", "boolean", "record operations for backward?" } },
  returns = "boolean: the previous setting",
  example = "local prev = nn.set_grad_enabled(false)\nnn.set_grad_enabled(prev)",
}
D["nn.is_grad_enabled"] = {
  signature = "nn.is_grad_enabled() -> boolean",
  summary = "Whether operations are recorded for backward (false inside nn.no_grad).",
  params = {},
  returns = "boolean",
  example = "print(nn.is_grad_enabled(), nn.no_grad(nn.is_grad_enabled))",
}
D["nn.set_num_threads"] = {
  signature = "nn.set_num_threads(n)",
  summary = "Threads for the kernels and OpenBLAS (the executable's -t N and OMP_NUM_THREADS set it too).",
  params = { { "n", "integer", "1..1024" } },
  returns = "nothing",
  example = "local n = nn.get_num_threads()\nnn.set_num_threads(1)\nnn.set_num_threads(n)",
}
D["nn.get_num_threads"] = {
  signature = "nn.get_num_threads() -> integer",
  summary = "How many threads the kernels use.",
  params = {},
  returns = "integer",
  example = "print(nn.get_num_threads())",
}
D["nn.is_tensor"] = {
  signature = "nn.is_tensor(v) -> boolean",
  summary = "Whether v is an nnlua tensor.",
  params = { { "v", "any", "the value to test" } },
  returns = "boolean",
  example = "print(nn.is_tensor(nn.zeros(1)), nn.is_tensor({}))",
}
D["nn.memory_allocated"] = {
  signature = "nn.memory_allocated() -> integer",
  summary = "Bytes of tensor memory alive now (all tensors, including views' shared storage once).",
  params = {},
  returns = "integer: bytes",
  example = "local before = nn.memory_allocated()\nlocal t = nn.zeros(1000)\nprint(nn.memory_allocated() - before)",
}
D["nn.clock"] = {
  signature = "nn.clock() -> number",
  summary = "Wall-clock seconds from a monotonic clock, for timing (os.clock adds up the CPU time of all\n"
    .. "threads, which misleads when kernels run in parallel).",
  params = {},
  returns = "number: seconds since an arbitrary start",
  example = "local t0 = nn.clock()\nlocal y = nn.matmul(nn.randn(64, 64), nn.randn(64, 64))\nprint(nn.clock() - t0)",
}

D["nn.detect_anomaly"] = {
  signature = "nn.detect_anomaly(on) -> boolean | nn.detect_anomaly(fn, ...) -> ...",
  summary = "Anomaly mode: the first NaN or Inf an op produces, in forward or in backward, raises an error\n"
    .. "naming the op. With a boolean, turn it on or off and get the previous setting; with a function,\n"
    .. "run fn(...) with it on (restored afterwards, also after an error). It costs a scan of each result.",
  params = { { "on", "boolean|function", "the setting, or a function to run with it on" },
    { "...", "any", "arguments for fn" } },
  returns = "boolean (the previous setting), or what fn returns",
  example = "local ok, err = pcall(nn.detect_anomaly, function() return nn.log(nn.tensor{-1}) end)\nassert(not ok)",
}
D["nn.is_anomaly_enabled"] = {
  signature = "nn.is_anomaly_enabled() -> boolean",
  summary = "Whether anomaly mode (nn.detect_anomaly) is on.",
  params = {},
  returns = "boolean",
  example = "print(nn.is_anomaly_enabled())",
}

-- ---- Ctrl-C in training loops ----

D["nn.interrupt"] = { summary = "Cooperative Ctrl-C for training loops: after nn.interrupt.install(), the first Ctrl-C only sets\n"
  .. "a flag that the loop polls between steps (to save a checkpoint and stop cleanly); a second one\n"
  .. "goes to the handler from before (the interpreter's: an \"interrupted!\" error at once)." }
D["nn.interrupt.install"] = {
  signature = "nn.interrupt.install() -> true",
  summary = "Catch Ctrl-C (SIGINT) as a request the loop polls with nn.interrupt.requested(). Idempotent;\n"
    .. "clears an earlier request.",
  params = {},
  returns = "true",
  example = "nn.interrupt.install()\nfor step = 1, 3 do\n  if nn.interrupt.requested() then break end\nend\nnn.interrupt.uninstall()",
}
D["nn.interrupt.uninstall"] = {
  signature = "nn.interrupt.uninstall()",
  summary = "Put back the SIGINT handler from before install() and clear the request.",
  params = {},
  returns = "nothing",
  example = "nn.interrupt.install()\nnn.interrupt.uninstall()\nassert(not nn.interrupt.installed())",
}
D["nn.interrupt.requested"] = {
  signature = "nn.interrupt.requested() -> boolean",
  summary = "Whether Ctrl-C came since install() (or the last clear()).",
  params = {},
  returns = "boolean",
  example = "print(nn.interrupt.requested())",
}
D["nn.interrupt.clear"] = {
  signature = "nn.interrupt.clear()",
  summary = "Forget a Ctrl-C request (the handler stays installed).",
  params = {},
  returns = "nothing",
  example = "nn.interrupt.clear()",
}
D["nn.interrupt.installed"] = {
  signature = "nn.interrupt.installed() -> boolean",
  summary = "Whether the Ctrl-C handler of nn.interrupt is in place now (the nnlua executable and lua5.4\n"
    .. "put their own back after each chunk they run).",
  params = {},
  returns = "boolean",
  example = "print(nn.interrupt.installed())",
}

-- ---- checkpoints ----

D["nn.save"] = {
  signature = "nn.save(path, tensors, metadata?)",
  summary = "Write a safetensors file (PyTorch and safetensors read it): a table of name -> tensor, such as\n"
    .. "model:state_dict(). The file is written to a temporary name and renamed: a crash never leaves\n"
    .. "a partial checkpoint.",
  params = {
    { "path", "string", "the file" }, { "tensors", "table<string, Tensor>", "the tensors by name" },
    { "metadata?", "table<string, string|number|boolean>", "stored as strings in the header" },
  },
  returns = "nothing (errors name the path and the problem)",
  example = 'local path = os.tmpname()\nnn.save(path, {weight = nn.randn(2, 3)}, {epoch = 3})\nlocal t, meta = nn.load(path)\nos.remove(path)',
}
D["nn.load"] = {
  signature = "nn.load(path) -> tensors, metadata",
  summary = "Read a safetensors file: floating types become float32, integers int64, bool and uint8 uint8.\n"
    .. "The tensors' table remembers the file (getmetatable(t).source), so model:load_state_dict(t)\n"
    .. "names it when the tensors do not fit; errors about a corrupt or truncated file name it too.",
  params = { { "path", "string", "the file" } },
  returns = "table<string, Tensor>, table<string, string>: the tensors by name and the metadata",
  example = 'local path = os.tmpname()\nnn.save(path, {b = nn.ones(2)})\nlocal t = nn.load(path)\nprint(t.b)\nos.remove(path)',
}

-- ---- the other files ----

for _, part in ipairs({ "nnlua.doc.c_tensor", "nnlua.doc.c_functional", "nnlua.doc.c_image" }) do
  for k, v in pairs(require(part)) do
    assert(D[k] == nil, "doc/c_functions: " .. k .. " documented twice")
    D[k] = v
  end
end

return D
