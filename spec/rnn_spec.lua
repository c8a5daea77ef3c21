-- rnn_spec.lua — the recurrent layers: nn.F.rnn/lstm/gru and their cells, nn.RNN/LSTM/GRU, the
-- cell modules and nn.Embedding. Values and gradients against PyTorch (spec/fixtures/rnn.safetensors,
-- made by scripts/fixtures/rnn.py), numeric gradient checks, the captioning loss, error messages.
local nn = require "nnlua"

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "spec"
package.path = here .. "/?.lua;" .. package.path
local safetensors = require "helpers.safetensors"
local fx = safetensors.load(here .. "/fixtures/rnn.safetensors")

local F = nn.F
local TOL = 1e-4 -- relative to the reference's largest magnitude (at least 1)

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

local function assert_close(got, want, what)
  assert(got ~= nil, what .. ": got nil")
  assert.are.equal(shape_str(want), shape_str(got), what .. ": shape")
  local diff = (got - want):abs():max():item()
  local scale = math.max(1, want:abs():max():item())
  assert(diff <= TOL * scale, string.format("%s: max difference %.3g (tolerance %.3g)", what, diff,
    TOL * scale))
end

local function fixture(name, key, optional)
  local t = fx[name .. "." .. key]
  assert(t or optional, "fixture " .. name .. "." .. key .. " is missing: run scripts/fixtures/rnn.py")
  return t
end

local function leaf(name, key)
  local t = fixture(name, key, true)
  return t and t:clone():requires_grad()
end

-- Run case `name` through run(c) -> out, h_n, c_n, params (name -> tensor whose .grad to check),
-- with c = {x, h0, c0} leaves from the fixture; compare the outputs, backpropagate the stored
-- upstream gradients and compare every gradient.
local function check_case(name, run)
  local c = { x = leaf(name, "x"), h0 = leaf(name, "h0"), c0 = leaf(name, "c0") }
  local out, h_n, c_n, params = run(c)
  assert_close(out, fixture(name, "out"), name .. " output")
  local hn_only = name:match("_hn_only$")
  local loss = hn_only and 0 or (out * fixture(name, "gy")):sum()
  if h_n then
    assert_close(h_n, fixture(name, "h_n"), name .. " h_n")
    loss = loss + (h_n * fixture(name, "ghn")):sum()
  end
  if c_n then
    assert_close(c_n, fixture(name, "c_n"), name .. " c_n")
    if not hn_only then loss = loss + (c_n * fixture(name, "gcn")):sum() end
  end
  loss:backward()
  assert_close(c.x.grad, fixture(name, "gx"), name .. " d/dx")
  if c.h0 then assert_close(c.h0.grad, fixture(name, "gh0"), name .. " d/dh0") end
  if c.c0 then assert_close(c.c0.grad, fixture(name, "gc0"), name .. " d/dc0") end
  local n = 0
  for pname, p in pairs(params) do
    assert_close(p.grad, fixture(name, "g." .. pname), name .. " d/d" .. pname)
    n = n + 1
  end
  assert(n > 0, name .. ": no parameters checked")
end

-- Load module m's parameters from fixture keys name.p.<prefix.>parameter.
local function load_module(m, name, prefix)
  local sd = {}
  prefix = prefix and prefix .. "." or ""
  for pname in m:named_parameters() do sd[pname] = fixture(name, "p." .. prefix .. pname) end
  m:load_state_dict(sd)
  local params = {}
  for pname, p in m:named_parameters() do params[pname] = p end
  return params
end

local kinds = {
  { "rnn_tanh", nn.RNN, {} }, { "rnn_relu", nn.RNN, { nonlinearity = "relu" } },
  { "lstm", nn.LSTM, {} }, { "gru", nn.GRU, {} },
}
-- suffix, input_size, hidden_size, module options: as in scripts/fixtures/rnn.py
local variants = {
  { "_tm_l1", 5, 6, {} }, { "_bf_l1", 5, 6, { batch_first = true } },
  { "_tm_l2", 5, 6, { num_layers = 2 } }, { "_bf_l2", 5, 6, { num_layers = 2, batch_first = true } },
  { "_long", 3, 4, { batch_first = true } }, { "_nobias_unbatched", 4, 3, { bias = false } },
  { "_hn_only", 4, 3, {} },
}

local function merge(a, b)
  local o = {}
  for k, v in pairs(a) do o[k] = v end
  for k, v in pairs(b) do o[k] = v end
  return o
end

describe("nn.RNN, nn.LSTM, nn.GRU against PyTorch", function()
  for _, kind in ipairs(kinds) do
    for _, v in ipairs(variants) do
      local name, cls, opts = kind[1] .. v[1], kind[2], merge(kind[3], v[4])
      it(name, function()
        check_case(name, function(c)
          local m = cls(v[2], v[3], opts)
          local params = load_module(m, name)
          local lstm = kind[1] == "lstm"
          local hx = c.h0 and (lstm and { c.h0, c.c0 } or c.h0)
          local out, st = m(c.x, hx)
          if lstm then return out, st[1], st[2], params end
          return out, st, nil, params
        end)
      end)
    end
  end
end)

describe("nn.F.rnn, lstm, gru against PyTorch (one layer)", function()
  for _, kind in ipairs(kinds) do
    for _, v in ipairs(variants) do
      local name, opts = kind[1] .. v[1], v[4]
      if not opts.num_layers then
        it(name, function()
          check_case(name, function(c)
            local p = {}
            for _, k in ipairs { "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0" } do
              p[k] = leaf(name, "p." .. k)
            end
            local w = { p.weight_ih_l0, p.weight_hh_l0, p.bias_ih_l0, p.bias_hh_l0 }
            local fo = { batch_first = opts.batch_first }
            local h0 = c.h0 and c.h0[1] -- (num_layers = 1, ...) -> the layer's state
            local c0 = c.c0 and c.c0[1]
            if kind[1] == "lstm" then
              local out, h_n, c_n = F.lstm(c.x, h0, c0, w[1], w[2], w[3], w[4], fo)
              return out, h_n:unsqueeze(1), c_n:unsqueeze(1), p
            elseif kind[1] == "gru" then
              local out, h_n = F.gru(c.x, h0, w[1], w[2], w[3], w[4], fo)
              return out, h_n:unsqueeze(1), nil, p
            end
            fo.nonlinearity = kind[3].nonlinearity
            local out, h_n = F.rnn(c.x, h0, w[1], w[2], w[3], w[4], fo)
            return out, h_n:unsqueeze(1), nil, p
          end)
        end)
      end
    end
  end
end)

describe("cells against PyTorch", function()
  local cells = {
    { "rnn_cell_tanh", nn.RNNCell, {} }, { "rnn_cell_relu", nn.RNNCell, { nonlinearity = "relu" } },
    { "rnn_cell_nostate", nn.RNNCell, {} }, { "lstm_cell", nn.LSTMCell, {} },
    { "lstm_cell_nostate_unbatched", nn.LSTMCell, {} }, { "gru_cell", nn.GRUCell, {} },
    { "gru_cell_nobias_unbatched", nn.GRUCell, { bias = false } },
  }
  for _, cell in ipairs(cells) do
    local name, cls, opts = cell[1], cell[2], cell[3]
    it(name, function()
      check_case(name, function(c)
        local m = cls(5, 6, opts)
        local params = load_module(m, name)
        if cls == nn.LSTMCell then
          local h, cc = m(c.x, c.h0 and { c.h0, c.c0 })
          assert.are.equal("LstmCellBackward", h.grad_fn)
          return h, nil, cc, params
        end
        return m(c.x, c.h0), nil, nil, params
      end)
    end)
  end
end)

describe("the captioning loss against PyTorch", function()
  -- embedding -> LSTM from projected features -> scores over N x T -> cross entropy skipping
  -- <NULL> (1): averaged over the words that count, or summed and divided by N (the course's)
  for _, case in ipairs { { "caption", "mean" }, { "caption_course", "sum" } } do
    it(case[1] .. " (reduction " .. case[2] .. ")", function()
      local name, N, T, V, W, H = case[1], 4, 7, 11, 5, 6
      local mods = { embed = nn.Embedding(V, W), lstm = nn.LSTM(W, H, { batch_first = true }),
                     proj = nn.Linear(8, H), out = nn.Linear(H, V) }
      local params = {}
      for prefix, m in pairs(mods) do
        for pname, p in pairs(load_module(m, "caption", prefix)) do params[prefix .. "." .. pname] = p end
      end
      local caps = fixture("caption", "captions")
      local cin, cout = caps:narrow(2, 1, T), caps:narrow(2, 2, T)
      local h0 = mods.proj(fixture("caption", "features")):unsqueeze(1)
      local y = mods.lstm(mods.embed(cin), { h0, nn.zeros_like(h0) })
      local scores = mods.out(y)
      local loss = F.cross_entropy(scores:view(N * T, V), cout:reshape(N * T),
        { ignore_index = 1, reduction = case[2] })
      if case[2] == "sum" then loss = loss / N end
      assert_close(loss, fixture(name, "loss"), "loss")
      loss:backward()
      for pname, p in pairs(params) do assert_close(p.grad, fixture(name, "g." .. pname), "d/d" .. pname) end
    end)
  end
end)

local function check(fn, inputs, opts)
  local ok, err, msg = nn.gradcheck(fn, inputs, opts)
  assert(ok, msg or ("max error " .. tostring(err)))
end

-- Moderate values keep tanh and sigmoid away from saturation, where the central differences
-- (eps = 1e-2 in float32) lose accuracy.
local function rg(...) return (nn.randn(...) * 0.5):requires_grad() end

describe("recurrent ops: numeric gradient checks", function()
  before_each(function() nn.manual_seed(7) end)
  local T, N, D, H = 3, 2, 3, 2

  -- inputs: x (T, N, D) or (N, T, D), h0, [c0], w_ih, w_hh, b_ih, b_hh
  local function inputs(G, lstm, bf)
    local list = { bf and rg(N, T, D) or rg(T, N, D), rg(N, H) }
    if lstm then list[#list + 1] = rg(N, H) end
    for _, s in ipairs { { G * H, D }, { G * H, H }, { G * H }, { G * H } } do list[#list + 1] = rg(s) end
    return list
  end

  for _, nl in ipairs { "tanh", "relu" } do
    it("rnn (" .. nl .. "): output, and h_n alone with batch_first", function()
      -- a smaller step for relu: a pre-activation within eps of 0 breaks central differences
      local opts = { eps = nl == "relu" and 1e-3 or 1e-2 }
      check(function(x, h, a, b, c, d) return (F.rnn(x, h, a, b, c, d, { nonlinearity = nl })) end, inputs(1), opts)
      check(function(x, h, a, b, c, d)
        return select(2, F.rnn(x, h, a, b, c, d, { nonlinearity = nl, batch_first = true }))
      end, inputs(1, false, true), opts)
    end)
  end

  it("lstm: output, h_n alone, c_n alone (batch_first)", function()
    check(function(...) return (F.lstm(...)) end, inputs(4, true))
    check(function(...) return select(2, F.lstm(...)) end, inputs(4, true))
    local function cn(x, h, c, a, b, bi, bh)
      return select(3, F.lstm(x, h, c, a, b, bi, bh, { batch_first = true }))
    end
    check(cn, inputs(4, true, true))
  end)

  it("gru: output and h_n alone", function()
    check(function(...) return (F.gru(...)) end, inputs(3))
    check(function(...) return select(2, F.gru(...)) end, inputs(3))
  end)

  it("without initial states or biases, and unbatched", function()
    check(function(x, a, b) return (F.lstm(x, nil, nil, a, b)) end, { rg(T, N, D), rg(4 * H, D), rg(4 * H, H) })
    check(function(x, a, b) return select(2, F.gru(x, nil, a, b)) end, { rg(T, D), rg(3 * H, D), rg(3 * H, H) })
    check(function(x, a, b) return (F.rnn(x, nil, a, b)) end, { rg(T, D), rg(H, D), rg(H, H) })
  end)

  it("cells: rnn_cell, lstm_cell (h' and c'), gru_cell", function()
    local function cell_inputs(G, lstm)
      local list = { rg(N, D), rg(N, H) }
      if lstm then list[#list + 1] = rg(N, H) end
      for _, s in ipairs { { G * H, D }, { G * H, H }, { G * H }, { G * H } } do list[#list + 1] = rg(s) end
      return list
    end
    check(F.rnn_cell, cell_inputs(1))
    check(function(...) return (F.lstm_cell(...)) end, cell_inputs(4, true))
    check(function(...) return select(2, F.lstm_cell(...)) end, cell_inputs(4, true))
    check(F.gru_cell, cell_inputs(3))
  end)

  it("a two-layer LSTM module, through h_n and c_n", function()
    local m = nn.LSTM(D, H, { num_layers = 2 })
    -- the parameters are checked in place: gradcheck perturbs the module's own tensors
    check(function(x, h0, c0)
      local _, st = m(x, { h0, c0 })
      return st[1] * 2 + st[2]
    end, { rg(T, N, D), rg(2, N, H), rg(2, N, H), table.unpack(m:parameters()) })
  end)
end)

describe("recurrent ops: behaviour", function()
  before_each(function() nn.manual_seed(5) end)

  it("one node per layer, outputs share it; no node under no_grad", function()
    local x, wih, whh = nn.randn(4, 2, 3):requires_grad(), nn.randn(8, 3), nn.randn(8, 2)
    local out, h_n, c_n = F.lstm(x, nil, nil, wih, whh)
    assert.are.equal("LstmBackward", out.grad_fn)
    assert.are.equal("LstmBackward", h_n.grad_fn)
    assert.are.equal("LstmBackward", c_n.grad_fn)
    assert.are.equal("GruBackward", F.gru(x, nil, nn.randn(6, 3), nn.randn(6, 2)).grad_fn)
    assert.are.equal("RnnReluBackward", F.rnn(x, nil, nn.randn(2, 3), nn.randn(2, 2), nil, nil,
      { nonlinearity = "relu" }).grad_fn)
    nn.no_grad(function() assert.is_nil(F.lstm(x, nil, nil, wih, whh).grad_fn) end)
  end)

  it("h_n and c_n are the last step; batch_first only transposes", function()
    local x, wih, whh = nn.randn(5, 2, 3), nn.randn(8, 3), nn.randn(8, 2)
    local out, h_n = F.lstm(x, nil, nil, wih, whh)
    assert_close(h_n, out[5], "h_n")
    local out_bf, h_bf = F.lstm(x:transpose(1, 2):contiguous(), nil, nil, wih, whh, nil, nil, { batch_first = true })
    assert_close(out_bf:transpose(1, 2), out, "batch_first output")
    assert_close(h_bf, h_n, "batch_first h_n")
  end)

  it("frozen weights get no gradient and do not change the others", function()
    local x = nn.randn(4, 2, 3)
    local w = { nn.randn(8, 3), nn.randn(8, 2), nn.randn(8), nn.randn(8) }
    local function run(x_grad, w_grad)
      local xi = x:clone()
      if x_grad then xi:requires_grad() end
      local ws = {}
      for i, t in ipairs(w) do ws[i] = t:clone() if w_grad[i] then ws[i]:requires_grad() end end
      local out, h_n = F.lstm(xi, nil, nil, ws[1], ws[2], ws[3], ws[4])
      ;(out:sum() + h_n:sum()):backward()
      return xi, ws
    end
    local xa, wa = run(true, { true, true, true, true })
    local xb, wb = run(true, { false, false, false, false })
    assert_close(xb.grad, xa.grad, "dx with frozen weights")
    for i = 1, 4 do assert.is_nil(wb[i].grad) end
    local xc, wc = run(false, { false, true, false, true })
    assert.is_nil(xc.grad)
    assert_close(wc[2].grad, wa[2].grad, "dW_hh alone")
    assert_close(wc[4].grad, wa[4].grad, "db_hh alone")
  end)

  it("a team of threads (large enough shapes) computes what one thread does", function()
    -- the fixtures and gradient checks are too small to start a team: compare with one thread
    local T, N, D, H = 3, 16, 24, 256
    local function run(kind, threads)
      nn.manual_seed(1)
      local G = ({ rnn = 1, lstm = 4, gru = 3 })[kind]
      local x, h0, c0 = nn.randn(T, N, D):requires_grad(), nn.randn(N, H):requires_grad(), nn.randn(N, H):requires_grad()
      local w = { (nn.randn(G * H, D) * 0.1):requires_grad(), (nn.randn(G * H, H) * 0.1):requires_grad(),
                  nn.randn(G * H):requires_grad(), nn.randn(G * H):requires_grad() }
      local prev = nn.get_num_threads()
      nn.set_num_threads(threads)
      local out, h_n, c_n
      if kind == "lstm" then out, h_n, c_n = F.lstm(x, h0, c0, w[1], w[2], w[3], w[4])
      elseif kind == "gru" then out, h_n = F.gru(x, h0, w[1], w[2], w[3], w[4])
      else out, h_n = F.rnn(x, h0, w[1], w[2], w[3], w[4]) end
      ;((out * out):sum() + h_n:sum() + (c_n and c_n:sum() or 0)):backward()
      nn.set_num_threads(prev)
      return { out, h_n, x.grad, h0.grad, w[1].grad, w[2].grad, w[3].grad, w[4].grad }
    end
    for _, kind in ipairs { "rnn", "lstm", "gru" } do
      local one, two = run(kind, 1), run(kind, 2)
      for i = 1, #one do assert_close(two[i], one[i], kind .. " result " .. i) end
    end
  end)

  it("dropout between layers only while training", function()
    local m = nn.GRU(3, 4, { num_layers = 2, dropout = 0.5 })
    local ref = nn.GRU(3, 4, { num_layers = 2 })
    ref:load_state_dict(m:state_dict())
    local x = nn.randn(5, 2, 3)
    m:eval()
    assert_close(m(x), ref(x), "eval output")
    m:train()
    assert.is_true((m(x) - ref(x)):abs():max():item() > 1e-3)
  end)
end)

describe("recurrent ops: error messages", function()
  local x, wih, whh = nn.randn(4, 3, 5), nn.randn(24, 5), nn.randn(24, 6)

  local function errors_with(fn, text)
    local ok, err = pcall(fn)
    assert.is_false(ok, "expected an error containing: " .. text)
    assert(tostring(err):find(text, 1, true), "error '" .. tostring(err) .. "' does not contain '" .. text .. "'")
  end

  it("nn.F ops name the op, the argument and the shapes", function()
    errors_with(function() F.lstm(x, nil, nil, wih, nn.randn(24, 5)) end,
      "lstm: weight_hh must be 2-D [4*hidden_size, hidden_size], got [24,5]")
    errors_with(function() F.lstm(x, nil, nil, nn.randn(20, 5), whh) end,
      "lstm: weight_ih must be 2-D [4*hidden_size, input_size] = [24, input_size] to match weight_hh [24,6], got [20,5]")
    errors_with(function() F.lstm(nn.randn(4, 3, 7), nil, nil, wih, whh) end,
      "lstm: input [4,3,7] has 7 features but weight_ih [24,5] expects input_size = 5")
    errors_with(function() F.lstm(nn.randn(4, 3, 5, 1), nil, nil, wih, whh) end,
      "lstm: input must be (seq_len, batch, input_size) or (seq_len, input_size), got [4,3,5,1]")
    errors_with(function() F.lstm(x, nn.randn(2, 6), nil, wih, whh) end,
      "lstm: h0 must have size [3,6] (batch, hidden_size), got [2,6]")
    errors_with(function() F.lstm(x:transpose(1, 2), nil, nn.randn(4, 6), wih, whh, nil, nil, { batch_first = true }) end,
      "lstm: c0 must have size [3,6] (batch, hidden_size), got [4,6]")
    errors_with(function() F.lstm(x, nil, nil, wih, whh, nn.randn(6)) end,
      "lstm: bias_ih must have size [24] (gates * hidden_size), got [6]")
    errors_with(function() F.gru(nn.randn(0, 3, 5), nil, nn.randn(18, 5), nn.randn(18, 6)) end,
      "gru: sequence length must be at least 1, got input [0,3,5]")
    errors_with(function() F.rnn(x:long(), nil, nn.randn(6, 5), nn.randn(6, 6)) end,
      "rnn: input must be a float32 tensor, got int64")
    errors_with(function() F.rnn(x, nil, nn.randn(6, 5), nn.randn(6, 6), nil, nil, { nonlinearity = "sigmoid" }) end,
      "rnn: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'")
    errors_with(function() F.gru(x, nil, nn.randn(18, 5), nn.randn(18, 6), nil, nil, { batchfirst = true }) end,
      "gru: unknown option 'batchfirst' (expected batch_first)")
    errors_with(function() F.gru_cell(nn.randn(3, 5), nn.randn(3, 5), nn.randn(18, 5), nn.randn(18, 6)) end,
      "gru_cell: hx must have size [3,6] (batch, hidden_size), got [3,5]")
    errors_with(function() F.lstm_cell(x, nil, nil, wih, whh) end,
      "lstm_cell: input must be (batch, input_size) or (input_size), got [4,3,5]")
  end)

  it("modules name themselves and the expected sizes", function()
    local m = nn.LSTM(5, 6, { num_layers = 2 })
    errors_with(function() m(nn.randn(4, 3, 7)) end, "LSTM: input [4,3,7] has 7 features, expected input_size = 5")
    errors_with(function() m(x, { nn.zeros(1, 3, 6), nn.zeros(2, 3, 6) }) end,
      "LSTM: expected h0 of size [2,3,6] (num_layers, batch, hidden_size), got [1,3,6]")
    errors_with(function() m(x, nn.zeros(2, 3, 6)) end, "LSTM: the initial state must be a table {h0, c0}")
    errors_with(function() nn.GRU(5, 6, { batch_frist = true }) end, "GRU: unknown option 'batch_frist'")
    errors_with(function() nn.RNN(5, 0) end, "RNN: input_size and hidden_size must be positive integers, got 5 and 0")
    errors_with(function() nn.RNN(5, 6, { nonlinearity = "gelu" }) end, "RNN: nonlinearity must be 'tanh' or 'relu'")
    errors_with(function() nn.LSTMCell(5, 6)(nn.randn(2, 4)) end, "LSTMCell: input must be (batch, 5) or (5), got [2,4]")
    errors_with(function() nn.Embedding(10, 3, { padding_idx = 11 }) end,
      "Embedding: padding_idx must be within 1 to 10 or -10 to -1, got 11")
  end)
end)

describe("nn.Embedding", function()
  before_each(function() nn.manual_seed(9) end)

  it("looks up 1-based ids, N(0, 1) init, the padding row zero and without gradient", function()
    local e = nn.Embedding(200, 50, { padding_idx = -1 })
    assert.are.equal(200, e.padding_idx)
    assert.are.equal(0, e.weight[200]:abs():sum():item())
    local w = e.weight:narrow(1, 1, 199)
    assert.is_true(math.abs(w:mean():item()) < 0.02)
    assert.is_true(math.abs(w:std():item() - 1) < 0.02)
    local ids = nn.tensor({ { 3, 200, 3 }, { 1, 7, 200 } }, "int64")
    local y = e(ids)
    assert.are.equal("[2,3,50]", shape_str(y))
    assert_close(y[1][1], e.weight[3], "row 3")
    y:sum():backward()
    assert.are.equal(2, e.weight.grad[3][1])
    assert.are.equal(0, e.weight.grad[200]:abs():sum():item())
    assert.are.equal("200, 50, padding_idx=200", e:extra_repr())
  end)

  it("from_pretrained copies the rows, frozen unless asked", function()
    local w = nn.randn(4, 2)
    local e = nn.Embedding.from_pretrained(w)
    assert_close(e.weight, w, "weights")
    assert.is_false(e.weight:is_requires_grad())
    assert.is_true(nn.Embedding.from_pretrained(w, { freeze = false }).weight:is_requires_grad())
  end)
end)
