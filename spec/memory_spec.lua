-- memory_spec.lua — no leaks: a 10,000-step training loop keeps its resident memory flat,
-- graphs are freed when their tensors are collected, and impossible allocations are errors.
local nn = require "nnlua"

-- ASan keeps freed memory in quarantine, so resident size means little in that build.
local SANITIZE = os.getenv("NNLUA_SANITIZE") ~= nil

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
  error("no VmRSS in /proc/self/status")
end

local function settle()
  collectgarbage()
  collectgarbage()
end

describe("memory", function()
  it("stays bounded over a 10,000-step autograd loop", function()
    nn.manual_seed(3)
    local x = nn.randn(32, 16)
    local target = nn.randn(32, 1)
    local w1 = (nn.randn(16, 64) * 0.1):requires_grad()
    local b1 = nn.zeros(64):requires_grad()
    local w2 = (nn.randn(64, 1) * 0.1):requires_grad()
    local params = {w1, b1, w2}
    local function step()
      local h = (nn.matmul(x, w1) + b1):relu()
      local d = nn.matmul(h, w2) - target
      local loss = (d * d):sum() / 32
      loss:backward()
      nn.no_grad(function()
        for _, p in ipairs(params) do
          p:copy_(p - p.grad * 0.01)
          p.grad:zero_()
        end
      end)
      return loss:item()
    end
    local first = step() -- creates the .grad buffers
    settle()
    local base_bytes = nn.memory_allocated()
    local rss1, last
    for i = 2, 10000 do
      last = step()
      if i == 1000 then
        settle()
        rss1 = rss_kb()
      end
    end
    settle()
    local rss2 = rss_kb()
    assert.is_true(last < first, "the loop should learn: loss " .. first .. " -> " .. last)
    -- storage is counted exactly: every tensor of every step was released
    assert.are.equal(base_bytes, nn.memory_allocated())
    if not SANITIZE then
      -- one leaked 32x64 activation per step would be 70 MB; allow for allocator noise
      local growth = (rss2 - rss1) / 1024
      assert.is_true(growth < 8, ("resident memory grew %.1f MB from step 1,000 to 10,000"):format(growth))
    end
  end)

  it("returns memory_allocated to its baseline once tensors are collected", function()
    settle()
    local base = nn.memory_allocated()
    do
      local a = nn.randn(300, 300)
      local b = a:t():contiguous()
      local c = nn.cat({a, b})
      assert.is_true(nn.memory_allocated() >= base + 3 * 300 * 300 * 4)
      local _ = c:sum()
    end
    settle()
    assert.are.equal(base, nn.memory_allocated())
  end)

  it("frees a graph and everything it saved when its tensors are collected", function()
    settle()
    local base = nn.memory_allocated()
    local y, z
    do
      local w = nn.randn(500, 500):requires_grad() -- 1 MB, kept alive only by the graph below
      y = (w + 1):exp():sum()                        -- AddBackward holds w; ExpBackward saves 1 MB
      z = nn.matmul(w, w):mean()
      z:backward({retain_graph = true})            -- retained: saved tensors stay
    end
    settle()
    assert.is_true(nn.memory_allocated() > base + 3 * 1000000, "the graphs keep w and saved tensors alive")
    y, z = nil, nil
    settle()
    assert.are.equal(base, nn.memory_allocated())
  end)

  it("releases saved tensors after backward, keeping only the leaf and its grad", function()
    settle()
    local base = nn.memory_allocated()
    local w = nn.randn(500, 500):requires_grad()
    local loss = (w * w):exp():tanh():sum()
    local during = nn.memory_allocated()
    loss:backward()
    settle()
    local after = nn.memory_allocated()
    assert.is_true(after < during, "backward frees the saved intermediates")
    assert.is_true(after <= base + 2 * 500 * 500 * 4 + 4096) -- w and w.grad
    w, loss = nil, nil
    settle()
    assert.are.equal(base, nn.memory_allocated())
  end)

  it("exits cleanly after parallel work (the module outlives its OpenMP threads)", function()
    -- lua_close() unloads C modules; unloading libgomp under live worker threads crashed
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(("package.path = %q\npackage.cpath = %q\n"):format(package.path, package.cpath),
      "local nn = require 'nnlua'\nnn.set_num_threads(2)\n",
      "for _ = 1, 3 do local _ = nn.rand(1000000):sum() end\n")
    f:close()
    -- spinning workers widen the window in which an unloaded libgomp would crash them
    local env = "OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=infinite "
    for _ = 1, 10 do
      local ok, how, status = os.execute(env .. "lua5.4 " .. script .. " >/dev/null 2>&1")
      assert.is_true(ok == true and how == "exit" and status == 0,
        ("the process ended by %s %s"):format(tostring(how), tostring(status)))
    end
    os.remove(script)
  end)

  it("keeps resident memory bounded when a loop drops 2,000 tensors of 4 MB (8 GB in all)", function()
    settle()
    local rss0 = rss_kb()
    local base = nn.memory_allocated()
    local peak = rss0
    for i = 1, 2000 do
      local t = nn.ones(1024, 1024) -- 4 MB, every page touched; dropped at once
      if i % 100 == 0 then peak = math.max(peak, rss_kb()) end
      t = nil
    end
    settle()
    peak = math.max(peak, rss_kb())
    assert.are.equal(base, nn.memory_allocated()) -- all 2,000 storages were freed
    if not SANITIZE then
      local growth = (peak - rss0) / 1024
      -- without the collector being told about tensor memory this would be 8,000 MB
      assert.is_true(growth < 1024, ("resident memory grew %.0f MB"):format(growth))
    end
  end)

  it("raises a Lua error for an allocation that cannot succeed", function()
    settle()
    local base = nn.memory_allocated()
    for _, make in ipairs{
      function() return nn.zeros(1e6, 1e6) end,
      function() return nn.ones(1e6, 1e6) end,
      function() return nn.randn(1e6, 1e6) end,
      function() return nn.empty({1e6, 1e6}, "int64") end,
      function() return nn.zeros(1, 1):expand(1e6, 1e6):contiguous() end,
      function() return nn.matmul(nn.zeros(1e6, 1):expand(1e6, 1), nn.zeros(1, 1e6)) end,
    } do
      local ok, e = pcall(make)
      assert.is_false(ok)
      assert.matches("out of memory: cannot allocate", e)
    end
    assert.matches("size %[1000000,1000000,1000000,1000000,1000000%] is too large",
      select(2, pcall(nn.zeros, 1e6, 1e6, 1e6, 1e6, 1e6)))
    settle()
    assert.are.equal(base, nn.memory_allocated()) -- failures left nothing behind
    assert.are.equal(6, (nn.ones(2, 3)):sum():item()) -- and the runtime still works
  end)
end)
