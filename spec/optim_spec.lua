-- optim_spec.lua — nn.optim: the loss curves of SGD, Adam, AdamW, RMSprop and the schedulers
-- against PyTorch's (spec/fixtures/optim.safetensors, made by scripts/fixtures/optim.py), parameter
-- groups, skipped parameters, state_dict round trips, schedulers' closed forms, clip_grad_norm.
local nn = require "nnlua"
local safetensors = require "helpers.safetensors"

local fx = safetensors.load("spec/fixtures/optim.safetensors")

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

-- Largest relative difference between two float tensors (relative to max(1e-3, |ref|)).
local function max_rel(got, ref)
  local g, r = got:reshape(-1):totable(), ref:reshape(-1):totable()
  assert(#g == #r, "sizes differ")
  local worst = 0
  for i = 1, #r do
    worst = math.max(worst, math.abs(g[i] - r[i]) / math.max(1e-3, math.abs(r[i])))
  end
  return worst
end

local function model()
  local m = nn.Sequential{ nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2) }
  local init = {}
  for k, v in pairs(fx) do
    local name = k:match("^init%.(.*)")
    if name then init[name] = v end
  end
  m:load_state_dict(init)
  return m
end

local S = nn.optim
-- The same recipes as scripts/fixtures/optim.py: optimizer, scheduler, clip max_norm.
local recipes = {
  sgd = { function(m) return S.SGD(m:parameters(), { lr = 0.1 }) end },
  sgd_momentum_wd = { function(m) return S.SGD(m:parameters(), { lr = 0.1, momentum = 0.9, weight_decay = 0.01 }) end },
  sgd_nesterov_step = {
    function(m) return S.SGD(m:parameters(), { lr = 0.05, momentum = 0.9, nesterov = true }) end,
    function(o) return S.StepLR(o, { step_size = 3, gamma = 0.5 }) end },
  sgd_dampening_multistep = {
    function(m) return S.SGD(m:parameters(), { lr = 0.1, momentum = 0.8, dampening = 0.3 }) end,
    function(o) return S.MultiStepLR(o, { milestones = { 2, 5, 8 }, gamma = 0.5 }) end },
  sgd_groups = { function(m)
    return S.SGD({ { params = m[1]:parameters() }, { params = m[3]:parameters(), lr = 0.02, momentum = 0.5 } },
                 { lr = 0.2 })
  end },
  sgd_clip = { function(m) return S.SGD(m:parameters(), { lr = 0.5 }) end, nil, 0.3 },
  adam = { function(m) return S.Adam(m:parameters(), { lr = 0.05 }) end },
  adam_amsgrad_wd_exp = {
    function(m) return S.Adam(m:parameters(), { lr = 0.05, betas = { 0.8, 0.99 }, weight_decay = 0.01, amsgrad = true }) end,
    function(o) return S.ExponentialLR(o, { gamma = 0.9 }) end },
  adamw_cosine = {
    function(m) return S.AdamW(m:parameters(), { lr = 0.05, weight_decay = 0.1 }) end,
    function(o) return S.CosineAnnealingLR(o, { T_max = 4, eta_min = 0.001 }) end },
  rmsprop = { function(m) return S.RMSprop(m:parameters(), { lr = 0.01 }) end },
  rmsprop_centered_momentum_wd = {
    function(m) return S.RMSprop(m:parameters(), { lr = 0.01, momentum = 0.5, centered = true, weight_decay = 0.01 }) end },
}

-- One training step of the fixture's recipe; returns the loss before the update.
local function train_step(m, opt, max_norm)
  opt:zero_grad()
  local loss = nn.F.cross_entropy(m(fx.x), fx.y)
  loss:backward()
  if max_norm then nn.utils.clip_grad_norm(m:parameters(), max_norm) end
  opt:step()
  return loss:item()
end

describe("optimizers match PyTorch 1.13 for 10 steps", function()
  local names = {}
  for name in pairs(recipes) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it(name, function()
      local r = recipes[name]
      local m = model()
      local opt = r[1](m)
      local sched = r[2] and r[2](opt)
      local losses, lrs = {}, {}
      for i = 1, 10 do
        lrs[i] = opt.param_groups[1].lr
        losses[i] = train_step(m, opt, r[3])
        if sched then sched:step() end
      end
      local worst = max_rel(nn.tensor(losses), fx[name .. ".losses"])
      assert(worst <= 1e-4, string.format("%s: loss curve differs from PyTorch's by %.3g (relative)", name, worst))
      worst = max_rel(nn.tensor(lrs), fx[name .. ".lrs"])
      assert(worst <= 1e-6, string.format("%s: learning rates differ by %.3g", name, worst))
      for key, p in pairs(m:state_dict()) do
        worst = max_rel(p, fx[name .. ".final." .. key])
        assert(worst <= 1e-4, string.format("%s: final %s differs by %.3g", name, key, worst))
      end
    end)
  end
end)

describe("Optimizer", function()
  it("fills each group's options from the defaults", function()
    local a, b = nn.zeros(2):requires_grad(), nn.zeros(3):requires_grad()
    local opt = S.SGD({ { params = { a } }, { params = { b }, lr = 0.5, momentum = 0.9 } }, { lr = 0.1 })
    assert.are.equal(2, #opt.param_groups)
    assert.are.equal(0.1, opt.param_groups[1].lr)
    assert.are.equal(0, opt.param_groups[1].momentum)
    assert.are.equal(0.5, opt.param_groups[2].lr)
    assert.are.equal(0.9, opt.param_groups[2].momentum)
    assert.are.equal(a, opt.param_groups[1].params[1])
    local c = nn.zeros(1):requires_grad()
    opt:add_param_group({ params = { c }, lr = 1 })
    assert.are.equal(3, #opt.param_groups)
    assert.are.equal(0, opt.param_groups[3].weight_decay)
  end)

  it("checks its arguments", function()
    local p = nn.zeros(2):requires_grad()
    assert.matches("SGD: option lr is required", errmsg(S.SGD, { p }))
    assert.matches("Adam: unknown option 'momentum'", errmsg(S.Adam, { p }, { momentum = 0.9 }))
    assert.matches("optimizer got an empty parameter list", errmsg(S.Adam, {}))
    assert.matches("pass model:parameters%(%)", errmsg(S.Adam, nn.Linear(2, 2)))
    assert.matches("invalid lr: %-1", errmsg(S.SGD, { p }, { lr = -1 }))
    assert.matches("nesterov momentum requires a momentum and zero dampening",
                   errmsg(S.SGD, { p }, { lr = 0.1, nesterov = true }))
    assert.matches("invalid beta parameter at index 2", errmsg(S.Adam, { p }, { betas = { 0.9, 1.5 } }))
    assert.matches("more than one parameter group",
                   errmsg(S.SGD, { { params = { p } }, { params = { p } } }, { lr = 1 }))
    assert.matches("non%-leaf", errmsg(S.SGD, { p * 2 }, { lr = 1 }))
    assert.matches("parameter 2 is a string", errmsg(S.SGD, { p, "w" }, { lr = 1 }))
  end)

  it("skips parameters without a gradient or that don't require grad", function()
    local a, b = nn.ones(2):requires_grad(), nn.ones(2):requires_grad()
    local c = nn.ones(2):requires_grad()
    local opt = S.Adam({ a, b, c }, { lr = 0.1 })
    a:sum():backward()
    c:sum():backward()
    c:requires_grad(false)
    opt:step()
    assert.are_not.equal(1, a[1])
    assert.are.same({ 1, 1 }, b:totable())
    assert.are.same({ 1, 1 }, c:totable())
    assert.is_nil(opt.state[b])
    assert.is_nil(opt.state[c])
    assert.are.equal(1, opt.state[a].step)
  end)

  it("zero_grad sets gradients to nil, or zeroes them with set_to_none = false", function()
    local a = nn.ones(2):requires_grad()
    local opt = S.SGD({ a }, { lr = 0.1 })
    a:sum():backward()
    opt:zero_grad({ set_to_none = false })
    assert.are.same({ 0, 0 }, a.grad:totable())
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it("step(closure) returns the closure's loss", function()
    local a = nn.ones(2):requires_grad()
    local opt = S.SGD({ a }, { lr = 0.5 })
    local loss = opt:step(function()
      opt:zero_grad()
      local l = (a * a):sum()
      l:backward()
      return l
    end)
    assert.are.equal(2, loss:item())
    assert.are.same({ 0, 0 }, a:totable())
  end)

  for _, kind in ipairs({ "SGD", "Adam", "AdamW", "RMSprop" }) do
    it(kind .. " state_dict / load_state_dict resumes training exactly", function()
      local opts = { lr = 0.05 }
      if kind == "SGD" then opts.momentum = 0.9 end
      if kind == "RMSprop" then opts.centered, opts.momentum = true, 0.3 end
      local m1 = model()
      local o1 = S[kind](m1:parameters(), opts)
      for _ = 1, 3 do train_step(m1, o1) end
      local sd = o1:state_dict()
      assert.are.same({ 1, 2, 3, 4 }, sd.param_groups[1].params)
      assert.are.equal(0.05, sd.param_groups[1].lr)
      if kind ~= "SGD" then assert.are.equal(3, sd.state[1].step) end
      -- a second model and optimizer, loaded from the first's state
      local m2 = model()
      m2:load_state_dict(m1:state_dict())
      local o2 = S[kind](m2:parameters(), { lr = 1 })
      o2:load_state_dict(sd)
      assert.are.equal(0.05, o2.param_groups[1].lr)
      for _ = 1, 3 do
        local l1, l2 = train_step(m1, o1), train_step(m2, o2)
        assert.are.equal(l1, l2)
      end
      -- the loaded state is a copy: the two optimizers don't share buffers
      local s1, s2 = o1.state[m1:parameters()[1]], o2.state[m2:parameters()[1]]
      for k, v in pairs(s1) do
        if nn.is_tensor(v) then assert.are_not.equal(v:data_ptr(), s2[k]:data_ptr()) end
      end
    end)
  end

  it("load_state_dict rejects a state of another shape", function()
    local o = S.SGD({ nn.zeros(2):requires_grad() }, { lr = 1 })
    local o2 = S.SGD({ nn.zeros(2):requires_grad(), nn.zeros(1):requires_grad() }, { lr = 1 })
    assert.matches("doesn't match the size of optimizer's group", errmsg(o.load_state_dict, o, o2:state_dict()))
    local o3 = S.SGD({ { params = { nn.zeros(2):requires_grad() } }, { params = { nn.zeros(2):requires_grad() } } },
                     { lr = 1 })
    assert.matches("has 2 parameter groups, the optimizer has 1", errmsg(o.load_state_dict, o, o3:state_dict()))
  end)

  it("prints its groups", function()
    local s = tostring(S.Adam({ nn.zeros(1):requires_grad() }, { lr = 0.01 }))
    assert.matches("^Adam %(", s)
    assert.matches("lr: 0.01", s)
    assert.matches("betas: {0.9, 0.999}", s)
  end)
end)

describe("learning-rate schedulers", function()
  local function opt(lr) return S.SGD({ nn.zeros(1):requires_grad() }, { lr = lr or 1 }) end

  local function lrs(o, s, n)
    local out = {}
    for i = 1, n do
      out[i] = o.param_groups[1].lr
      s:step()
    end
    return out
  end

  local function near(want, got)
    for i = 1, #want do
      assert(math.abs(want[i] - got[i]) <= 1e-12, string.format("epoch %d: got %.17g, want %.17g", i - 1, got[i], want[i]))
    end
  end

  it("StepLR", function()
    local o = opt(1)
    near({ 1, 1, 0.1, 0.1, 0.01 }, lrs(o, S.StepLR(o, { step_size = 2 }), 5))
  end)

  it("MultiStepLR", function()
    local o = opt(2)
    near({ 2, 2, 1, 1, 0.5, 0.5 }, lrs(o, S.MultiStepLR(o, { milestones = { 4, 2 }, gamma = 0.5 }), 6))
  end)

  it("ExponentialLR", function()
    local o = opt(1)
    near({ 1, 0.5, 0.25, 0.125 }, lrs(o, S.ExponentialLR(o, { gamma = 0.5 }), 4))
  end)

  it("CosineAnnealingLR", function()
    local o = opt(1)
    local s = S.CosineAnnealingLR(o, { T_max = 2, eta_min = 0.5 })
    near({ 1, 0.75, 0.5, 0.75, 1 }, lrs(o, s, 5))
    near({ 0.5 + 0.25 * (1 + math.cos(math.pi * 5 / 2)) }, s:get_last_lr())
  end)

  it("set every group's lr from its own base", function()
    local o = S.SGD({ { params = { nn.zeros(1):requires_grad() } }, { params = { nn.zeros(1):requires_grad() }, lr = 10 } },
                    { lr = 1 })
    local s = S.lr_scheduler.StepLR(o, { step_size = 1, gamma = 0.5 })
    s:step()
    near({ 0.5, 5 }, s:get_last_lr())
    near({ 0.5, 5 }, { o.param_groups[1].lr, o.param_groups[2].lr })
  end)

  it("state_dict / load_state_dict resume the schedule", function()
    local o1 = opt(1)
    local s1 = S.StepLR(o1, { step_size = 2, gamma = 0.1 })
    for _ = 1, 3 do s1:step() end
    local sd = s1:state_dict()
    assert.are.equal(3, sd.last_epoch)
    assert.is_nil(sd.optimizer)
    local o2 = opt(1)
    local s2 = S.StepLR(o2, { step_size = 5 })
    s2:load_state_dict(sd)
    s1:step()
    s2:step()
    assert.are.same(s1:get_last_lr(), s2:get_last_lr())
    assert.are.equal(o1.param_groups[1].lr, o2.param_groups[1].lr)
  end)

  it("check their options", function()
    assert.matches("StepLR: option step_size is required", errmsg(S.StepLR, opt()))
    assert.matches("StepLR: unknown option 'gama'", errmsg(S.StepLR, opt(), { step_size = 1, gama = 1 }))
    assert.matches("an optimizer", errmsg(S.StepLR, {}, { step_size = 1 }))
    assert.matches("T_max must be a positive integer", errmsg(S.CosineAnnealingLR, opt(), { T_max = 0 }))
  end)
end)

describe("clip_grad_norm", function()
  it("returns the total norm and scales gradients to max_norm", function()
    local a, b = nn.zeros(2):requires_grad(), nn.zeros(1):requires_grad()
    a.grad = nn.tensor({ 3, 0 })
    b.grad = nn.tensor({ 4 })
    local total = nn.utils.clip_grad_norm({ a, b }, 1)
    assert(math.abs(total - 5) < 1e-9)
    local s = 1 / (5 + 1e-6)
    assert(math.abs(a.grad[1] - 3 * s) < 1e-6 and math.abs(b.grad[1] - 4 * s) < 1e-6)
  end)

  it("leaves small gradients alone and skips parameters without one", function()
    local a, b = nn.zeros(2):requires_grad(), nn.zeros(1):requires_grad()
    a.grad = nn.tensor({ 0.3, 0.4 })
    assert(math.abs(nn.utils.clip_grad_norm({ a, b }, 1) - 0.5) < 1e-7)
    assert(math.abs(a.grad[1] - 0.3) < 1e-7)
    assert.is_nil(b.grad)
    a.grad = nn.tensor({ -7, 2 })
    assert.are.equal(7, nn.utils.clip_grad_norm({ a }, 10, { norm_type = math.huge }))
  end)
end)
