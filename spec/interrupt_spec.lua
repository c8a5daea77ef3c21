-- interrupt_spec.lua — Ctrl-C becomes a flag polled between steps (a training run saves and exits 130); a
-- checkpoint writer killed at any moment leaves only loadable files, and its temporary files are swept.
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local proc = require "helpers.proc"
local q, have = proc.q, proc.exists

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  return d
end

local function files_in(d)
  local p = io.popen("ls -A " .. q(d))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

local function sleep(s) os.execute("sleep " .. s) end

-- Start `cmd` in the background; returns its pid and the file that will hold its exit status.
-- (The shell that starts it waits for it, so the status is the process's own.)
local function spawn(cmd, dir)
  local pidfile, rcfile = dir .. "/pid", dir .. "/rc"
  os.remove(pidfile)
  os.remove(rcfile)
  os.execute(("sh -c %s >/dev/null 2>&1 &"):format(q(("%s & echo $! > %s; wait $!; echo $? > %s")
    :format(cmd, q(pidfile), q(rcfile)))))
  for _ = 1, 100 do
    local pid = tonumber(slurp(pidfile) or "")
    if pid then return pid, rcfile end
    sleep(0.05)
  end
  error("the background process did not start: " .. cmd)
end

-- Kill a process started by spawn unless it has ended (its status written: the pid may be reused).
local function kill_if_running(pid, rcfile)
  if pid and not slurp(rcfile) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
end

local function wait_status(rcfile, seconds)
  for _ = 1, seconds * 10 do
    local rc = tonumber(slurp(rcfile) or "")
    if rc then return rc end
    sleep(0.1)
  end
  return nil
end

-- A Lua script run by the nnlua executable; returns its path.
local function script(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("nn.interrupt", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("installs, reports and uninstalls a SIGINT handler; requested() starts false", function()
    assert.is_false(nn.interrupt.requested())
    assert.is_true(nn.interrupt.install())
    assert.is_true(nn.interrupt.installed())
    assert.is_true(nn.interrupt.install()) -- idempotent
    assert.is_false(nn.interrupt.requested())
    nn.interrupt.uninstall()
    assert.is_false(nn.interrupt.installed())
    nn.interrupt.uninstall() -- harmless twice
  end)

  it("turns the first Ctrl-C into a flag and lets the second stop the script", function()
    if not have(BIN) then return pending("no nnlua executable at " .. BIN) end
    local s = script(dir, "spin.lua", ([[
      nn.interrupt.install()
      local x = nn.randn(100, 100)
      local f = assert(io.open(%q, "w")) f:write("ready") f:close()
      while not nn.interrupt.requested() do local _ = nn.matmul(x, x) end
      f = assert(io.open(%q, "w")) f:write("flag") f:close()
      while true do local _ = nn.matmul(x, x) end -- no longer polls: only a hard stop ends this
    ]]):format(dir .. "/ready", dir .. "/flag"))
    local pid, rcfile = spawn(("%s %s 2> %s"):format(q(BIN), q(s), q(dir .. "/err")), dir)
    finally(function() kill_if_running(pid, rcfile) end) -- whatever happens below
    for _ = 1, 100 do if have(dir .. "/ready") then break end sleep(0.05) end
    os.execute("kill -INT " .. pid)
    for _ = 1, 100 do if have(dir .. "/flag") then break end sleep(0.05) end
    assert.is_true(have(dir .. "/flag"), "the first Ctrl-C set the flag")
    assert.is_nil(tonumber(slurp(rcfile) or ""), "the first Ctrl-C does not stop the script")
    os.execute("kill -INT " .. pid)
    local rc = wait_status(rcfile, 20)
    assert.equals(130, rc) -- the executable's own Ctrl-C: "interrupted!", status 128 + SIGINT
    assert.matches("interrupted!", slurp(dir .. "/err"))
  end)
end)

describe("examples/mnist_mlp.lua stopped by Ctrl-C", function()
  it("finishes the step, writes the checkpoint atomically and exits 130", function()
    if not have(BIN) then return pending("no nnlua executable at " .. BIN) end
    if not have("data/mnist/train-images-idx3-ubyte.gz") then return pending("data/mnist is absent (scripts/get-data)") end
    local dir = tmpdir()
    local ckpt = dir .. "/ckpt/model.safetensors"
    local err = dir .. "/err"
    local pid, rcfile = spawn(("%s examples/mnist_mlp.lua --epochs 1000 --limit 2000 --no-save --checkpoint %s "
      .. "--checkpoint-every 5 2> %s"):format(q(BIN), q(ckpt), q(err)), dir)
    finally(function()
      kill_if_running(pid, rcfile)
      os.execute("rm -rf " .. q(dir))
    end)
    -- the first periodic checkpoint shows the loop is running (and polling)
    for _ = 1, 300 do if have(ckpt) then break end sleep(0.05) end
    assert.is_true(have(ckpt), "training never wrote its first checkpoint: " .. (slurp(err) or ""))
    sleep(1)
    os.execute("kill -INT " .. pid)
    local rc = wait_status(rcfile, 60)
    local msg = slurp(err)
    assert.equals(130, rc, msg)
    local epoch, step, path = msg:match("interrupted at epoch (%d+) step (%d+)[^;]*; checkpoint saved to (%S+)")
    assert.is_truthy(epoch, msg)
    assert.equals(ckpt, path)
    local sd, meta = nn.load(ckpt)
    assert.equals("interrupted", meta.saved)
    assert.equals(tonumber(epoch), tonumber(meta.epoch))
    assert.equals(tonumber(step), tonumber(meta.step))
    local model = nn.Sequential{ nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10) }
    model:load_state_dict(sd)
    assert.same({ "model.safetensors" }, files_in(dir .. "/ckpt")) -- no temporary file left
  end)
end)

describe("nn.save under SIGKILL", function()
  it("leaves every file on disk loadable after 20 kills at random moments, and no temp files pile up", function()
    if not have(BIN) then return pending("no nnlua executable at " .. BIN) end
    local dir = tmpdir()
    local pid, rcfile
    finally(function()
      kill_if_running(pid, rcfile)
      os.execute("rm -rf " .. q(dir))
    end)
    -- a writer cycling over three files, each 16 MB; every tensor of a save holds the save's number,
    -- which the metadata repeats, so a file mixing two saves would show
    local s = script(dir, "writer.lua", ([[
      local dir = %q
      local w = nn.empty(2048, 2048)
      for i = 1, 1000000 do
        w:fill_(i)
        nn.save(("%%s/ckpt%%d.safetensors"):format(dir, i %% 3), { w = w, b = nn.full({ 7 }, i) }, { i = tostring(i) })
      end
    ]]):format(dir))
    math.randomseed(20)
    local saves = 0
    for round = 1, 20 do
      pid, rcfile = spawn(("%s %s"):format(q(BIN), q(s)), dir)
      sleep(("%.2f"):format(0.15 + math.random() * 0.6))
      os.execute("kill -9 " .. pid .. " 2>/dev/null") -- the writer never ends by itself
      assert.equals(137, wait_status(rcfile, 10)) -- 128 + SIGKILL: it was killed, not finished
      for _, name in ipairs(files_in(dir)) do
        if name:match("%.safetensors$") then
          local ok, sd, meta = pcall(nn.load, dir .. "/" .. name)
          assert.is_true(ok, ("round %d: %s does not load: %s"):format(round, name, tostring(sd)))
          local i = tonumber(meta.i)
          assert.equals(i, sd.w:max():item(), name .. " mixes two saves")
          assert.equals(i, sd.w:min():item(), name .. " mixes two saves")
          assert.equals(i, sd.b[7], name)
          saves = math.max(saves, i)
        end
      end
      -- a killed writer leaves its "<file>.tmp.<pid>"; the next writer of that file removes it
      local temps = 0
      for _, name in ipairs(files_in(dir)) do
        if name:match("%.tmp%.%d+$") then temps = temps + 1 end
      end
      assert.is_true(temps <= 3, ("round %d: %d temporary files"):format(round, temps))
    end
    assert.is_true(saves >= 3, "the writer never got far enough to test anything")
    -- one more save of each file sweeps what the last killed writer left
    for k = 0, 2 do nn.save(("%s/ckpt%d.safetensors"):format(dir, k), { w = nn.zeros(1) }) end
    local left = {}
    for _, name in ipairs(files_in(dir)) do
      if name:match("%.tmp%.") then left[#left + 1] = name end
    end
    assert.same({}, left)
  end)
end)

-- Run `cmd` in the background until `ready()` says the training loop is running, then Ctrl-C it;
-- returns the exit status and what it wrote on stderr.
local function interrupt_when(cmd, dir, ready, what)
  local err = dir .. "/err"
  local pid, rcfile = spawn(("%s 2> %s"):format(cmd, q(err)), dir)
  local ok, rc = pcall(function()
    for _ = 1, 600 do if ready() then break end sleep(0.05) end
    assert.is_true(ready(), what .. " never started: " .. (slurp(err) or ""))
    os.execute("kill -INT " .. pid)
    return wait_status(rcfile, 60)
  end)
  kill_if_running(pid, rcfile)
  if not ok then error(rc, 0) end
  return rc, slurp(err) or ""
end

local function run(cmd)
  local out = os.tmpname()
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>&1 </dev/null")
  local s = slurp(out)
  os.remove(out)
  return s, code
end

describe("examples/pretrain.lua under nn.utils.TrainingGuard", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)
  local function ready()
    if not have(BIN) then return false, "no nnlua executable at " .. BIN end
    if not have("data/fashion/train-images-idx3-ubyte.gz") then return false, "data/fashion is absent (scripts/get-data --fashion)" end
    return true
  end
  local base = "examples/pretrain.lua --width 4 --threads 1 --batch-size 64 --out "

  it("stops at a step on Ctrl-C, writes a checkpoint that resumes, and exits 130", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local ckpt = dir .. "/out/checkpoint.safetensors"
    local rc, msg = interrupt_when(("%s %s%s --epochs 1000 --limit 1000 --checkpoint-every 2"):format(q(BIN), base,
      q(dir .. "/out")), dir, function() return have(ckpt) end, "pretrain.lua")
    assert.equals(130, rc, msg)
    local epoch, step, path = msg:match("pretrain.lua: interrupted at epoch (%d+) step (%d+)[^;]*; checkpoint saved to (%S+)")
    assert.is_truthy(epoch, msg)
    assert.equals(ckpt, path)
    local models = require "nnlua.models"
    local model = models.resnet_small{ num_classes = 10, in_channels = 1, width = 4, pool = 7 }
    local info = nn.utils.load_checkpoint(ckpt, { model = model, rng = false })
    assert.equals("interrupted", info.extra.saved)
    assert.equals(tonumber(step), info.extra.step)
    assert.equals(tonumber(epoch) - 1, info.epoch) -- epochs completed: the interrupted one runs again
    assert.same({ "checkpoint.safetensors" }, files_in(dir .. "/out")) -- no temporary file, no weights
    -- --resume picks it up
    local out, code = run(("%s %s%s --epochs %d --limit 128 --resume"):format(q(BIN), base, q(dir .. "/out"), tonumber(epoch)))
    assert.equals(0, code, out)
    assert.matches(("resuming after epoch %d of"):format(tonumber(epoch) - 1), out, 1, true)
  end)

  it("stops with status 3 when the loss becomes NaN, keeping a loadable last good checkpoint", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local out, code = run(("%s %s%s --epochs 2 --limit 512 --lr 1e30 --checkpoint-every 1"):format(q(BIN), base,
      q(dir .. "/out")))
    assert.equals(3, code, out)
    local what, path = out:match("pretrain.lua: loss became (%a+) at epoch 1 step %d+; last good checkpoint: (%S+)")
    assert.is_truthy(what, out)
    assert.equals(dir .. "/out/checkpoint.safetensors", path)
    local sd = nn.load(path)
    assert.is_true(nn.utils.all_finite(sd))
    local model = require("nnlua.models").resnet_small{ num_classes = 10, in_channels = 1, width = 4, pool = 7 }
    nn.utils.load_checkpoint(path, { model = model, rng = false })
    assert.is_nil(out:find("resnet_small.safetensors", 1, true)) -- no final weights
  end)
end)

describe("examples/transfer.lua under nn.utils.TrainingGuard", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)
  local function ready()
    if not have(BIN) then return false, "no nnlua executable at " .. BIN end
    if not have("data/digits-2class/train/three/0001.png") then return false, "no data/digits-2class" end
    return true
  end
  local function backbone()
    nn.manual_seed(0)
    local weights = dir .. "/backbone.safetensors"
    nn.save(weights, require("nnlua.models").resnet_small():state_dict(), { arch = "resnet_small", mean = 0.286, std = 0.353 })
    return weights
  end

  it("writes the best weights so far on Ctrl-C and exits 130", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local log = dir .. "/log"
    local rc, msg = interrupt_when(("%s examples/transfer.lua --weights %s --regimes finetune --epochs 500 --threads 1 --out %s > %s")
      :format(q(BIN), q(backbone()), q(dir .. "/out"), q(log)), dir, function()
        return (slurp(log) or ""):find("finetune epoch 1/500:", 1, true) ~= nil
      end, "transfer.lua")
    assert.equals(130, rc, msg)
    local path = msg:match("transfer.lua: interrupted at finetune epoch %d+ step %d+[^;]*; checkpoint saved to (%S+)")
    assert.equals(dir .. "/out/best-finetune.safetensors", path, msg)
    local sd, meta = nn.load(path)
    assert.equals("interrupted", meta.saved)
    assert.same({ 2, 64 }, sd["fc.weight"]:size())
    assert.is_true(nn.utils.all_finite(sd))
  end)

  it("stops with status 3 and a clear message when the loss becomes NaN or Inf", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local out, code = run(("%s examples/transfer.lua --weights %s --regimes frozen --epochs 2 --lr 1e38 --threads 1 --out %s")
      :format(q(BIN), q(backbone()), q(dir .. "/out")))
    assert.equals(3, code, out)
    assert.matches("transfer.lua: loss became %a+ at frozen epoch 1 step %d+; last good checkpoint: none %(no epoch finished yet%)", out)
  end)
end)

describe("nn.utils.TrainingGuard", function()
  local function guard(opts)
    local exits, err = {}, {}
    opts.exit = function(code) exits[#exits + 1] = code end
    opts.err = { write = function(_, ...) for _, s in ipairs({ ... }) do err[#err + 1] = s end end, flush = function() end }
    return nn.utils.TrainingGuard(opts), exits, err
  end
  after_each(function() nn.interrupt.uninstall() end)

  it("passes finite losses through and stops with 3 on NaN, Inf and -Inf", function()
    for _, case in ipairs({ { 0 / 0, "NaN" }, { math.huge, "Inf" }, { -math.huge, "-Inf" } }) do
      local g, exits, err = guard{ name = "t.lua" }
      assert.equals(1.5, g:at(1, 1):check_loss(nn.tensor(1.5)))
      assert.same({}, exits)
      g:at(2, 7):check_loss(case[1])
      assert.same({ 3 }, exits)
      assert.equals(("t.lua: loss became %s at epoch 2 step 7; last good checkpoint: none (this run keeps none)\n")
        :format(case[2]), table.concat(err))
      assert.is_false(nn.interrupt.installed()) -- stop() uninstalls
    end
  end)

  it("skips the checkpoint while a parameter is NaN and reports the last good one", function()
    local lin = nn.Linear(2, 2)
    local saves = 0
    local g, exits, err = guard{ name = "t.lua", model = lin, save = function(at)
      saves = saves + 1
      assert.equals("end of epoch", at.why)
      return "/x/ckpt"
    end }
    assert.equals("/x/ckpt", g:at(1, 10):checkpoint("end of epoch"))
    nn.no_grad(function() lin.weight[1][1] = 0 / 0 end)
    assert.is_nil(g:at(2, 3):checkpoint("end of epoch"))
    assert.equals(1, saves)
    g:check_loss(0 / 0)
    assert.same({ 3 }, exits)
    assert.matches("last good checkpoint: /x/ckpt\n", table.concat(err), 1, true)
  end)

  it("turns a raised interrupt flag into a checkpoint and status 130 at poll()", function()
    local g, exits, err = guard{ name = "t.lua", stage = "encoder", save = function() return "/x/c" end }
    assert.is_true(nn.interrupt.installed())
    assert.is_false(g:at(3, 4):poll())
    -- from a background shell: system() ignores SIGINT in its caller while the command runs
    local me = assert(io.open("/proc/self/stat")):read("n")
    os.execute(("(sleep 0.1; kill -INT %d) >/dev/null 2>&1 &"):format(me))
    local t0 = nn.clock()
    while not nn.interrupt.requested() and nn.clock() - t0 < 5 do end
    assert.is_true(nn.interrupt.requested())
    assert.is_true(g:poll(" (its end)"))
    assert.same({ 130 }, exits)
    assert.equals("t.lua: interrupted at encoder epoch 3 step 4 (its end); checkpoint saved to /x/c\n", table.concat(err))
  end)

  it("says whole modules and state dicts are finite or not", function()
    assert.is_true(nn.utils.all_finite(nn.Linear(3, 2)))
    assert.is_true(nn.utils.all_finite({ a = nn.ones(2), b = nn.tensor({ 1 }, "int64") }))
    assert.is_false(nn.utils.all_finite({ nn.tensor({ 1, math.huge }) }))
    assert.has_error(function() nn.utils.all_finite(3) end, "all_finite: a module or a table of tensors expected, got number")
  end)
end)

describe("examples/captioning.lua under nn.utils.TrainingGuard", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)
  local function ready()
    if not have(BIN) then return false, "no nnlua executable at " .. BIN end
    if not have("data/captions/SOURCE") then return false, "no data/captions (scripts/get-data --captions)" end
    return true
  end
  local tiny = " examples/captioning.lua --threads 1 --limit 100 --val-limit 20 --channels 4,4,8 --convs 1,1,1"
    .. " --cell-dim 8 --wordvec-dim 8 --hidden-dim 16 --pretrain-epochs 1 --out "

  it("stops at a step on Ctrl-C, writes a loadable checkpoint and exits 130", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local ckpt = dir .. "/out/model.safetensors"
    local rc, msg = interrupt_when(q(BIN) .. tiny .. q(dir .. "/out") .. " --epochs 100000", dir,
      function() return have(ckpt) end, "captioning.lua")
    assert.equals(130, rc, msg)
    local where, path = msg:match("captioning.lua: interrupted at (%a+ epoch %d+ step %d+); checkpoint saved to (%S+)")
    assert.is_truthy(where, msg)
    assert.equals(ckpt, path)
    local sd = nn.load(ckpt)
    assert.is_truthy(sd["rnn.weight_ih_l0"] and sd["encoder.head.weight"])
    assert.same({ "model.safetensors" }, files_in(dir .. "/out")) -- no temporary file, no pictures
  end)

  it("stops with status 3 when the loss becomes NaN, keeping the last good checkpoint", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    -- the encoder trains normally (its epoch's checkpoint is written), then the captioner blows up
    local out, code = run(q(BIN) .. tiny .. q(dir .. "/out") .. " --epochs 3 --lr 1e30")
    assert.equals(3, code, out)
    local what, path = out:match("captioning.lua: loss became (%a+) at captioner epoch %d+ step %d+; last good checkpoint: (%S+)")
    assert.is_truthy(what, out)
    assert.equals(dir .. "/out/model.safetensors", path)
    assert.is_true(nn.utils.all_finite(nn.load(path)))
    assert.is_nil(out:find("loss.png", 1, true)) -- nothing after the stop
  end)
end)
