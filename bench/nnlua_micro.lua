-- bench/nnlua_micro.lua: nnlua's side of the micro-benchmarks (twin: bench/torch_micro.py).
-- 1024x1024 matmul from Lua, allocating a + b and relu on 10^7 floats; medians as JSON lines.
local nn = require "nnlua"

local function usage()
  print([[usage: nnlua bench/nnlua_micro.lua [--reps R] [--n 1024] [--numel 10000000]
Prints one JSON object per op: {"impl":"nnlua","op":...,"median_s":...,"gflops"|"gbps":...}]])
end

local opts = {reps = 20, n = 1024, numel = 10000000}
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "-h" or a == "--help" then usage() return end
  local key = a:match("^%-%-(%w+)$")
  if not key or opts[key] == nil then io.stderr:write("unknown option " .. a .. "\n") os.exit(2) end
  opts[key] = tonumber(arg[i + 1]) or error("option " .. a .. " needs a number")
  i = i + 2
end

local clock = nn.clock

local function median_time(fn)
  for _ = 1, 3 do fn() end
  local ts = {}
  for r = 1, opts.reps do
    local t0 = clock()
    fn()
    ts[r] = clock() - t0
  end
  table.sort(ts)
  return ts[(#ts + 1) // 2]
end

nn.manual_seed(0)
local n, m = opts.n, opts.numel
local a, b = nn.randn(n, n), nn.randn(n, n)
local t = median_time(function() local c = nn.matmul(a, b) end)
print(string.format('{"bench":"micro","impl":"nnlua","op":"matmul","n":%d,"median_s":%.6f,"gflops":%.2f,"threads":%d}',
  n, t, 2 * n ^ 3 / t / 1e9, nn.get_num_threads()))
local x, y = nn.randn(m), nn.randn(m)
t = median_time(function() local c = x + y end)
print(string.format('{"bench":"micro","impl":"nnlua","op":"add","numel":%d,"median_s":%.6f,"gbps":%.2f}', m, t, 12 * m / t / 1e9))
t = median_time(function() local c = x:relu() end)
print(string.format('{"bench":"micro","impl":"nnlua","op":"relu","numel":%d,"median_s":%.6f,"gbps":%.2f}', m, t, 8 * m / t / 1e9))
