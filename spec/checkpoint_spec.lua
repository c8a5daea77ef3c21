-- checkpoint_spec.lua — nn.utils.save_checkpoint / load_checkpoint: round trip of model, optimizer,
-- scheduler, epoch and RNG; resuming mid-run gives the losses of an uninterrupted run; atomic writes.
local nn = require "nnlua"
local ckpt = require "nnlua.utils.checkpoint"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function files_in(d)
  local p = io.popen("ls -A '" .. d .. "'")
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- A small network with every kind of state: conv + BatchNorm (running statistics), dropout (the
-- global RNG), a shuffling DataLoader (its own stream).
local function build()
  return nn.Sequential{
    nn.Conv2d(1, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, 3),
  }
end

local function dataset()
  nn.manual_seed(99)
  local x = nn.randn(48, 1, 8, 8)
  local y = nn.randint(1, 4, { 48 })
  return nn.data.TensorDataset(x, y)
end

-- A run of `epochs` epochs from scratch (seed), or from a checkpoint; returns the per-step losses.
-- save_after: write a checkpoint to `path` after that epoch. resume: load `path` first.
local function run(o)
  nn.manual_seed(o.seed or 1)
  local model = build()
  local opt = o.adam and nn.optim.Adam(model:parameters(), { lr = 1e-2 })
    or nn.optim.SGD(model:parameters(), { lr = 0.1, momentum = 0.9, weight_decay = 1e-4 })
  local sched = nn.optim.StepLR(opt, { step_size = 2, gamma = 0.5 })
  local loader = nn.data.DataLoader(o.data, { batch_size = 16, shuffle = true, seed = o.seed or 1 })
  local first = 1
  if o.resume then
    local info = ckpt.load_checkpoint(o.path, { model = model, optimizer = opt, scheduler = sched, loader = loader })
    first = info.epoch + 1
  end
  local losses = {}
  for epoch = first, o.epochs do
    model:train()
    for xb, yb in loader:iter() do
      opt:zero_grad()
      local loss = nn.F.cross_entropy(model(xb), yb)
      loss:backward()
      opt:step()
      losses[#losses + 1] = loss:item()
    end
    sched:step()
    if o.save_after == epoch then
      ckpt.save_checkpoint(o.path, { model = model, optimizer = opt, scheduler = sched, epoch = epoch, loader = loader,
                                     extra = { best_acc = 0.5, note = "mid-run" } })
    end
  end
  return losses, model, opt, sched
end

local function max_diff(a, b)
  assert.equals(#a, #b)
  local d = 0
  for i = 1, #a do d = math.max(d, math.abs(a[i] - b[i])) end
  return d
end

describe("training checkpoints", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("round-trips model, optimizer, scheduler, epoch, RNG state and extra values", function()
    local path = dir .. "/ck.safetensors"
    local _, model, opt, sched = run{ data = dataset(), epochs = 3 }
    nn.manual_seed(1234)
    nn.rand(5) -- move the stream somewhere particular
    local rng = nn.get_rng_state()
    ckpt.save_checkpoint(path, { model = model, optimizer = opt, scheduler = sched, epoch = 3,
                                 extra = { best_acc = 0.875, tag = "x\"y\n", hist = { 1, 2.5, true }, mask = nn.ones(2) } })
    local expected = nn.rand(3):totable()

    nn.manual_seed(5)
    local m2 = build()
    local o2 = nn.optim.SGD(m2:parameters(), { lr = 0.7, momentum = 0.9, weight_decay = 1e-4 })
    local s2 = nn.optim.StepLR(o2, { step_size = 2, gamma = 0.5 })
    local info = ckpt.load_checkpoint(path, { model = m2, optimizer = o2, scheduler = s2 })
    assert.equals(3, info.epoch)
    assert.same(rng, nn.get_rng_state())
    assert.same(expected, nn.rand(3):totable())
    assert.equals(0.875, info.extra.best_acc)
    assert.equals("x\"y\n", info.extra.tag)
    assert.same({ 1, 2.5, true }, info.extra.hist)
    assert.equals("integer", math.type(info.extra.hist[1]))
    assert.same({ 1, 1 }, info.extra.mask:totable())
    local a, b = model:state_dict(), m2:state_dict()
    for k, t in pairs(a) do assert.same(t:totable(), b[k]:totable(), k) end
    assert.same(opt.param_groups[1].lr, o2.param_groups[1].lr)
    assert.equals(0.05, o2.param_groups[1].lr) -- 0.1 * 0.5 after epochs 2 (StepLR every 2)
    assert.same(sched:state_dict(), s2:state_dict())
    for i, p in ipairs(model:parameters()) do
      local q = m2:parameters()[i]
      assert.same(opt.state[p].momentum_buffer:totable(), o2.state[q].momentum_buffer:totable())
    end
    -- the model part is a plain state dict under "model."
    local t = nn.load(path)
    assert.is_not_nil(t["model.1.running_mean"])
    assert.is_not_nil(t["optimizer.state.1.momentum_buffer"])
  end)

  for _, case in ipairs({ { name = "SGD with momentum", adam = false }, { name = "Adam", adam = true } }) do
    it("resuming mid-run gives the losses of an uninterrupted run (" .. case.name .. ")", function()
      local data = dataset()
      local path = dir .. "/mid.safetensors"
      local full = run{ data = data, epochs = 5, adam = case.adam }
      local before = run{ data = data, epochs = 2, save_after = 2, path = path, adam = case.adam }
      nn.manual_seed(777) -- whatever happened in between: the checkpoint brings the state back
      nn.randn(100)
      local after = run{ data = data, epochs = 5, resume = true, path = path, seed = 42, adam = case.adam }
      local joined = {}
      for _, l in ipairs(before) do joined[#joined + 1] = l end
      for _, l in ipairs(after) do joined[#joined + 1] = l end
      local d = max_diff(full, joined)
      assert.is_true(d <= 1e-6, ("resumed losses differ from the uninterrupted run by %.3g"):format(d))
      assert.equals(15, #joined) -- 5 epochs of 3 batches
    end)
  end

  it("a failed save leaves the previous checkpoint as it was and no temporary files", function()
    local path = dir .. "/keep.safetensors"
    local model = build()
    ckpt.save_checkpoint(path, { model = model, epoch = 1 })
    local f = io.open(path, "rb")
    local before = f:read("a")
    f:close()
    assert.has_error(function() ckpt.save_checkpoint(path, { model = model, extra = { bad = function() end } }) end,
      "save_checkpoint: extra.bad: cannot store a function")
    assert.has_error(function() ckpt.save_checkpoint(path, { model = model, extra = { x = 0 / 0 } }) end)
    f = io.open(path, "rb")
    assert.equals(before, f:read("a"))
    f:close()
    assert.same({ "keep.safetensors" }, files_in(dir))
    assert.equals(1, ckpt.load_checkpoint(path, { model = build() }).epoch)
  end)

  it("a process killed while writing never leaves a broken checkpoint", function()
    local f = io.open(BIN)
    if not f then return pending("no nnlua executable at " .. BIN) end
    f:close()
    local path = dir .. "/big.safetensors"
    -- a writer that rewrites an 8 MB checkpoint in a loop, each time with a different epoch
    local script = dir .. "/writer.lua"
    f = assert(io.open(script, "w"))
    f:write(([[
      local ckpt = require "nnlua.utils.checkpoint"
      local m = nn.Linear(2048, 1024)
      for i = 1, 1000000 do ckpt.save_checkpoint(%q, { model = m, epoch = i }) end
    ]]):format(path))
    f:close()
    local lua_path = os.getenv("LUA_PATH") or "lua/?.lua;lua/?/init.lua;;"
    for round = 1, 3 do
      local pidfile = dir .. "/pid"
      os.execute(("LUA_PATH='%s' '%s' '%s' >/dev/null 2>&1 & echo $! > '%s'"):format(lua_path, BIN, script, pidfile))
      local pf = assert(io.open(pidfile))
      local pid = pf:read("n")
      pf:close()
      os.execute(("sleep 0.%d"):format(4 + round * 2))
      os.execute("kill -9 " .. pid .. " 2>/dev/null; sleep 0.1")
      local ok, info = pcall(ckpt.load_checkpoint, path, { model = nn.Linear(2048, 1024) })
      local exists = io.open(path)
      if exists then -- the first write may not have finished before the kill
        exists:close()
        assert.is_true(ok, tostring(info))
        assert.is_true(info.epoch >= 1)
      end
    end
  end)

  it("names what is wrong with the file or the request", function()
    local path = dir .. "/plain.safetensors"
    nn.save(path, build():state_dict())
    assert.has_error(function() ckpt.load_checkpoint(path, { model = build() }) end)
    local ok, err = pcall(ckpt.load_checkpoint, path, { model = build() })
    assert.is_false(ok)
    assert.matches("is not an nnlua training checkpoint", err)
    local p2 = dir .. "/model-only.safetensors"
    ckpt.save_checkpoint(p2, { model = build(), epoch = 0 })
    local m = build()
    ok, err = pcall(ckpt.load_checkpoint, p2, { model = m, optimizer = nn.optim.SGD(m:parameters(), { lr = 1 }) })
    assert.is_false(ok)
    assert.matches("holds no optimizer state", err)
    ok, err = pcall(ckpt.load_checkpoint, p2, { model = nn.Linear(3, 3) })
    assert.is_false(ok)
    assert.matches("Missing key%(s%)", err)
    assert.is_truthy(err:find("load_checkpoint: " .. p2 .. ": Error(s) in loading state_dict", 1, true), err)
    ok, err = pcall(ckpt.load_checkpoint, dir .. "/nope.safetensors", {})
    assert.is_false(ok)
    assert.matches("nope.safetensors", err)
  end)
end)
