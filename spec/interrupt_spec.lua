-- interrupt_spec.lua — Ctrl-C becomes a flag polled between steps (a training run saves and exits 130); a
-- checkpoint writer killed at any moment leaves only loadable files, and its temporary files are swept.
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function have(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

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
