-- bench/nnlua_resnet.lua: nnlua's side of the ResNet-18 benchmark (twin: bench/torch_resnet.py): eval-mode
-- inference and one SGD training step on a batch of 224x224 images; medians as JSON lines.
local nn = rawget(_G, "nn") or require "nnlua"
local models = require "nnlua.models"

local opts = { reps = 5, warmup = 2, batch = 8, size = 224, arch = "resnet18" }
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "-h" or a == "--help" then
    print([[usage: nnlua bench/nnlua_resnet.lua [--reps 5] [--warmup 2] [--batch 8] [--size 224] [--arch resnet18|resnet34]
Prints {"bench":"resnet","impl":"nnlua","op":"infer"|"train_step","median_s":...,...} per op.
infer: model:eval() under nn.no_grad; train_step: model:train(), zero_grad, cross-entropy, backward,
SGD (lr 1e-3, momentum 0.9) step. Threads: nnlua -t N (default: all cores).]])
    return
  end
  local key = a:match("^%-%-(%w+)$")
  if not key or opts[key] == nil then io.stderr:write("unknown option " .. a .. "\n") os.exit(2) end
  opts[key] = key == "arch" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  if opts[key] == nil then io.stderr:write("option " .. a .. " needs a value\n") os.exit(2) end
  i = i + 2
end

-- Median wall time, the runs, and the median CPU time (all threads: os.clock), which a busy machine
-- disturbs less than wall time.
local function median(fn)
  for _ = 1, opts.warmup do fn() end
  local ts, cs = {}, {}
  for r = 1, opts.reps do
    local t0, c0 = nn.clock(), os.clock()
    fn()
    ts[r], cs[r] = nn.clock() - t0, os.clock() - c0
  end
  local sorted = table.move(ts, 1, #ts, 1, {})
  table.sort(sorted)
  table.sort(cs)
  return sorted[(#ts + 1) // 2], ts, cs[(#cs + 1) // 2]
end

nn.manual_seed(0)
local model = models[opts.arch]()
local x = nn.randn(opts.batch, 3, opts.size, opts.size)
local y = nn.randint(1, 1001, { opts.batch })
local opt = nn.optim.SGD(model:parameters(), { lr = 1e-3, momentum = 0.9 })

local function report(op, t, ts, cpu)
  local list = {}
  for k, v in ipairs(ts) do list[k] = ("%.5f"):format(v) end
  print(('{"bench":"resnet","impl":"nnlua","op":"%s","arch":"%s","median_s":%.5f,"runs_s":[%s],"cpu_s":%.5f,"batch":%d,'
    .. '"size":%d,"threads":%d,"openblas_coretype":"%s"}'):format(op, opts.arch, t, table.concat(list, ","), cpu,
    opts.batch, opts.size, nn.get_num_threads(), os.getenv("OPENBLAS_CORETYPE") or "unset"))
  io.stdout:flush()
end

model:eval()
report("infer", median(function() nn.no_grad(function() return model(x) end) end))
model:train()
report("train_step", median(function()
  opt:zero_grad()
  local loss = nn.F.cross_entropy(model(x), y)
  loss:backward()
  opt:step()
end))
