-- examples/lib/classify.lua: the shared driver of mnist_mlp.lua and mnist_cnn.lua -- flags, data,
-- the training loop, test-set evaluation, checkpoint, loss plot, and the JSON lines scripts/bench reads.
-- The recipe is bench/torch_common.py's, step for step, so the two can be compared.
local nn = rawget(_G, "nn") or require "nnlua"

local M = {}

local USAGE = [[
usage: nnlua examples/%s.lua [options]

%s

  --data mnist|fashion|DIR  the IDX(.gz) files: data/mnist (8k/2k real digits), data/fashion
                            (Fashion-MNIST 60k/10k) or a directory (default mnist)
  --epochs E                passes over the training set (default %d)
  --batch-size B            examples per step (default 100)
  --lr LR                   learning rate (default 1e-3 for adam, 0.1 for sgd)
  --optim adam|sgd          Adam, or SGD with --momentum (default 0.9) (default adam)
  --threads T               threads for the kernels and BLAS (default: as started)
  --seed S                  initial weights and shuffling (default 0)
  --out DIR                 where model.safetensors and loss.png go (default out/%s)
  --limit N                 train on the first N training examples only
  --infer-batch B           batch size of the timed test pass (default 1000)
  --json                    print one JSON object per epoch on stdout (as bench/torch_%s.py);
                            everything else goes to stderr and there is no progress bar
  --checkpoint PATH         where the checkpoint goes: written atomically at the end of each epoch,
                            every --checkpoint-every steps, and on Ctrl-C (default DIR/model.safetensors
                            with DIR from --out; none with --no-save)
  --checkpoint-every N      also write it every N steps (default 0: at epoch ends only)
  --no-save                 neither checkpoint nor plot
  --help                    this text

Ctrl-C stops at the end of the running step, writes the checkpoint and exits with status 130 (a
second Ctrl-C stops at once). A loss that becomes NaN or Inf stops training with status 3, keeping
the last checkpoint written (a checkpoint is only written while every parameter is finite).]]

local function die(name, msg)
  io.stderr:write(name, ".lua: ", msg, "\n(--help lists the options)\n")
  os.exit(2)
end

--- Flags of the example `name` (default epochs `epochs`).
function M.parse(name, about, epochs, args)
  local o = { data = "mnist", epochs = epochs, batch_size = 100, optim = "adam", seed = 0,
              out = "out/" .. name, infer_batch = 1000, momentum = 0.9 }
  local kinds = { ["--data"] = "data:s", ["--epochs"] = "epochs:i", ["--batch-size"] = "batch_size:i",
                  ["--lr"] = "lr:n", ["--optim"] = "optim:s", ["--threads"] = "threads:i",
                  ["--seed"] = "seed:i", ["--out"] = "out:s", ["--limit"] = "limit:i",
                  ["--infer-batch"] = "infer_batch:i", ["--momentum"] = "momentum:n",
                  ["--checkpoint"] = "checkpoint:s", ["--checkpoint-every"] = "checkpoint_every:i" }
  local i = 1
  while args[i] do
    local a = args[i]
    local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
    if key then a = key end
    if a == "--help" or a == "-h" then
      print(USAGE:format(name, about, epochs, name, name:match("_(%w+)$")))
      os.exit(0)
    elseif a == "--json" then
      o.json = true
    elseif a == "--no-save" then
      o.no_save = true
    elseif kinds[a] then
      local field, kind = kinds[a]:match("^(.*):(.)$")
      if not val then
        i = i + 1
        val = args[i]
      end
      if val == nil then die(name, a .. " needs a value") end
      if kind == "s" then
        o[field] = val
      else
        local v = tonumber(val)
        if kind == "i" then v = v and math.tointeger(v) end
        if not v then die(name, ("%s needs %s, got %q"):format(a, kind == "i" and "an integer" or "a number", val)) end
        o[field] = v
      end
    else
      die(name, "unknown argument " .. a)
    end
    i = i + 1
  end
  if o.optim ~= "adam" and o.optim ~= "sgd" then die(name, "--optim must be adam or sgd, got " .. o.optim) end
  o.lr = o.lr or (o.optim == "adam" and 1e-3 or 0.1)
  if o.epochs < 0 or o.batch_size < 1 or o.infer_batch < 1 then die(name, "epochs, batch sizes must be positive") end
  if (o.checkpoint_every or 0) < 0 then die(name, "--checkpoint-every must be 0 or more steps") end
  if not o.checkpoint and not o.no_save then o.checkpoint = o.out .. "/model.safetensors" end
  return o
end

local function is_dir(path)
  local f = io.open(path .. "/.")
  if f then f:close() end
  return f ~= nil
end

--- The data directory for --data: mnist, fashion, or a path; tried as given, then from the repository.
function M.data_dir(spec, script)
  local rel = spec == "mnist" and "data/mnist" or spec == "fashion" and "data/fashion" or spec
  if is_dir(rel) or rel:sub(1, 1) == "/" then return rel end
  local root = (script or ""):match("^(.*)/examples/[^/]*$")
  if root and is_dir(root .. "/" .. rel) then return root .. "/" .. rel end
  return rel
end

--- Peak resident memory (VmHWM) in MB, as PyTorch's twin reports ru_maxrss.
function M.peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or nil
end

local function round(x, d)
  local m = 10 ^ d
  return math.floor(x * m + 0.5) / m
end

local function json_value(v)
  if v == nil then return "null" end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and tostring(v) or ("%.10g"):format(v)
  end
  return '"' .. tostring(v):gsub('[%c"\\]', function(c)
    return ({ ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" })[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

--- One JSON object with keys in the given order: {{"key", value}, ...}.
function M.json(fields)
  local parts = {}
  for i, kv in ipairs(fields) do parts[i] = json_value(kv[1]) .. ": " .. json_value(kv[2]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- Correct predictions of model on (x, y) in batches, without recording a graph.
function M.evaluate(model, x, y, batch)
  model:eval()
  local correct, n = 0, x:size(1)
  nn.no_grad(function()
    for first = 1, n, batch do
      local count = math.min(batch, n - first + 1)
      local logits = model(x:narrow(1, first, count))
      correct = correct + nn.metrics.correct(logits, y:narrow(1, first, count))
    end
  end)
  return correct
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Train model (built after nn.manual_seed(seed) by build()) as bench/torch_common.py does:
--- Adam, cross-entropy, a fresh shuffle each epoch; report each epoch; save and plot at the end.
function M.run(name, bench, about, default_epochs, build, args, script)
  local o = M.parse(name, about, default_epochs, args)
  local log = o.json and io.stderr or io.stdout
  if o.threads then nn.set_num_threads(o.threads) end
  nn.manual_seed(o.seed)
  local dir = M.data_dir(o.data, script)
  local is_fashion = o.data == "fashion" or dir:find("fashion") ~= nil
  local load = is_fashion and nn.data.fashion_mnist or nn.data.mnist
  local ok, train, test = pcall(function() return load(dir, "train"), load(dir, "test") end)
  if not ok then
    io.stderr:write(name, ".lua: ", tostring(train), "\n")
    os.exit(1)
  end
  if o.limit then train = train:narrow(1, math.min(o.limit, #train)) end
  local model = build()
  local opt = o.optim == "adam" and nn.optim.Adam(model:parameters(), { lr = o.lr })
    or nn.optim.SGD(model:parameters(), { lr = o.lr, momentum = o.momentum })
  local loader = nn.data.DataLoader(train, { batch_size = o.batch_size, shuffle = true, seed = o.seed })
  local ntr, nte = #train, #test
  if not o.json then
    log:write(("%s on %s: %d training and %d test images, %d threads\n%s\n")
      :format(name, dir, ntr, nte, nn.get_num_threads(), tostring(model)))
  end

  -- checkpoints: each epoch, every --checkpoint-every steps, on Ctrl-C; never with NaN weights.
  -- The guard turns Ctrl-C into a flag polled between steps and a NaN loss into status 3.
  if o.checkpoint then
    local parent = o.checkpoint:match("^(.*)/[^/]*$")
    if parent and parent ~= "" then os.execute("mkdir -p " .. shell_quote(parent)) end
  end
  local guard = nn.utils.TrainingGuard{
    name = name .. ".lua", model = model, no_save = "--no-save",
    save = o.checkpoint and function(at)
      nn.save(o.checkpoint, model:state_dict(), {
        example = name, data = o.data, optim = o.optim, lr = o.lr, batch_size = o.batch_size, seed = o.seed,
        epoch = at.epoch, step = at.step, saved = at.why,
      })
      return o.checkpoint
    end,
  }

  local losses, acc = {}, 0
  for epoch = 1, o.epochs do
    model:train()
    guard.bar = not o.json and nn.progress{ total = #loader, epoch = epoch, epochs = o.epochs } or nil
    local bar = guard.bar
    local loss_sum, seen, correct, step = 0, 0, 0, 0
    local t0 = nn.clock()
    for xb, yb in loader:iter() do
      opt:zero_grad()
      local logits = model(xb)
      local loss = nn.F.cross_entropy(logits, yb)
      step = step + 1
      local l, n = guard:at(epoch, step):check_loss(loss), yb:size(1)
      loss:backward()
      opt:step()
      loss_sum, seen = loss_sum + l * n, seen + n
      losses[#losses + 1] = l
      if bar then
        correct = correct + nn.metrics.correct(logits:detach(), yb)
        bar:update(step, { loss = loss_sum / seen, acc = correct / seen, samples = n })
      end
      local every = o.checkpoint_every or 0
      if every > 0 and step % every == 0 then guard:checkpoint("every " .. every .. " steps") end
      guard:poll()
    end
    local train_s = nn.clock() - t0
    if bar then bar:finish() end
    guard.bar = nil

    t0 = nn.clock()
    local right = M.evaluate(model, test.images, test.labels, o.infer_batch)
    local infer_s = nn.clock() - t0
    acc = right / nte
    guard:poll(" (its end)") -- Ctrl-C during the test pass
    guard:checkpoint("end of epoch")
    if o.json then
      io.stdout:write(M.json{
        { "bench", bench }, { "impl", "nnlua" }, { "epoch", epoch },
        { "train_s", round(train_s, 4) }, { "train_loss", round(loss_sum / ntr, 5) },
        { "test_acc", round(acc, 5) }, { "infer_s", round(infer_s, 4) },
        { "infer_ips", round(nte / infer_s, 1) }, { "peak_rss_mb", round(M.peak_rss_mb() or 0, 1) },
        { "n_train", ntr }, { "n_test", nte }, { "batch_size", o.batch_size }, { "lr", o.lr },
        { "seed", o.seed }, { "threads", nn.get_num_threads() },
        { "openblas_threads", os.getenv("OPENBLAS_NUM_THREADS") },
        { "openblas_coretype", os.getenv("OPENBLAS_CORETYPE") },
        { "nnlua", nn.version }, { "data", dir },
      }, "\n")
      io.stdout:flush()
    else
      log:write(("epoch %d: train %.2f s (loss %.4f), test acc %.2f%%, inference %.0f images/s, peak RSS %.0f MB\n")
        :format(epoch, train_s, loss_sum / ntr, 100 * acc, nte / infer_s, M.peak_rss_mb() or 0))
    end
  end
  guard:close()
  log:write(("%s: final test accuracy %.2f%% (%d test images)\n"):format(name, 100 * acc, nte))

  if not o.no_save and o.epochs > 0 then
    os.execute("mkdir -p '" .. o.out:gsub("'", "'\\''") .. "'")
    local ckpt, png = o.out .. "/model.safetensors", o.out .. "/loss.png"
    nn.save(ckpt, model:state_dict(), {
      example = name, data = o.data, epochs = o.epochs, optim = o.optim, lr = o.lr,
      batch_size = o.batch_size, seed = o.seed, test_acc = ("%.5f"):format(acc),
    })
    nn.plot.lines{
      path = png, title = ("%s on %s: training loss"):format(name, is_fashion and "Fashion-MNIST" or "MNIST"),
      xlabel = "iteration", ylabel = "cross-entropy loss",
      series = { { name = "per step", y = losses, color = 0xA6C8E6, width = 1 },
                 { name = "moving average", y = nn.plot.smooth(losses, math.max(5, #losses // 40)),
                   color = 0x1F4E9A, width = 2 } },
    }
    log:write(("saved %s and %s\n"):format(ckpt, png))
  end
  return acc
end

return M
