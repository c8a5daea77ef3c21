-- captioning_spec.lua — nn.models.Captioner: shapes, the masked loss, loss and gradients against
-- PyTorch (spec/fixtures/captioner.safetensors, made by scripts/fixtures/captioner.py), overfitting,
-- greedy and beam decoding, decoding to text, the objects-named score and the shared shuffle.
local nn = require "nnlua"
local Captioner = require "nnlua.models.captioning"
local D = Captioner.data

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "spec"
package.path = here .. "/?.lua;" .. package.path
local safetensors = require "helpers.safetensors"

local function shape(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- a small model and a batch of 4 made-up captions (<START> words <END> <NULL>...), T + 1 = 8
local V = 20
local function small(cell, seed)
  nn.manual_seed(seed or 1)
  return Captioner{ vocab_size = V, wordvec_dim = 8, hidden_dim = 12, cell = cell, channels = { 2, 4 },
                    cell_dim = 6, image_size = 16, max_len = 7 }
end
local CAPS = {
  { 2, 5, 6, 7, 3, 1, 1, 1 },
  { 2, 8, 9, 3, 1, 1, 1, 1 },
  { 2, 10, 11, 12, 13, 14, 3, 1 },
  { 2, 15, 3, 1, 1, 1, 1, 1 },
}
local function batch()
  nn.manual_seed(7)
  return (nn.rand(4, 1, 16, 16) * 255):byte(), nn.tensor(CAPS, "int64")
end

-- after the first <END>, only <NULL>; true when the row has an <END>
local function check_row(row, what)
  local ended = false
  for t, id in ipairs(row) do
    if ended then assert(id == D.NULL, ("%s: token %d after <END> is %d, not <NULL>"):format(what, t, id)) end
    if id == D.END then ended = true end
  end
  return ended
end

describe("Captioner", function()
  it("has the course's children, PyTorch names and output shapes", function()
    local m = small()
    local names = {}
    for name in m:named_parameters() do names[#names + 1] = name end
    local s = table.concat(names, " ")
    for _, want in ipairs({ "encoder.conv.0.weight", "encoder.fc.weight", "init_h.weight", "embed.weight",
                            "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "vocab.weight",
                            "vocab.bias", "encoder.head.weight" }) do
      assert(s:find(want, 1, true), "missing parameter " .. want .. " in " .. s)
    end
    local x, caps = batch()
    assert.are.equal("[4,84]", shape(m:features(x)))  -- 4 cells x 21 class probabilities
    local scores, out = m:scores(x, caps)
    assert.are.equal("[4,7,20]", shape(scores))
    assert.are.equal("[4,7]", shape(out))
    local loss = m(x, caps)
    assert.are.equal(0, loss:dim())
    assert.are.equal("[4,7]", shape(m:sample(x)))
  end)

  it("sums the loss over positions where captions_out is not <NULL> and averages over captions", function()
    local m = small()
    m:eval() -- batch norm on running statistics: the same images give the same features
    local x, caps = batch()
    local scores, out = m:scores(x, caps)
    local lp, o = nn.F.log_softmax(scores, 3):totable(), out:totable()
    local want = 0
    for n = 1, 4 do
      for t = 1, 7 do
        if o[n][t] ~= D.NULL then want = want - lp[n][t][o[n][t]] end
      end
    end
    want = want / 4
    local got = m(x, caps):item()
    assert(math.abs(got - want) < 1e-4 * want, ("loss %.6f, by hand %.6f"):format(got, want))
    -- more <NULL> padding at the end (T + 1 = 8 -> 12) adds only masked positions
    local padded = {}
    for n, row in ipairs(CAPS) do
      padded[n] = { table.unpack(row) }
      for t = 9, 12 do padded[n][t] = D.NULL end
    end
    local got2 = m(x, nn.tensor(padded, "int64")):item()
    assert(math.abs(got2 - got) < 1e-5, ("loss changed from %.6f to %.6f with more padding"):format(got, got2))
    -- a caption of nothing but padding after <START> adds nothing
    local empty = { 2, 1, 1, 1, 1, 1, 1, 1 }
    local x5 = nn.cat({ x, x:narrow(1, 1, 1) }, 1)
    local caps5 = nn.tensor({ CAPS[1], CAPS[2], CAPS[3], CAPS[4], empty }, "int64")
    local got5 = m(x5, caps5):item()
    assert(math.abs(got5 - got * 4 / 5) < 1e-5, ("loss %.6f, want %.6f (sum over 4 captions / 5)"):format(got5, got * 4 / 5))
  end)

  it("matches PyTorch's loss, gradients and batch-norm statistics on real images", function()
    local fx = safetensors.load(here .. "/fixtures/captioner.safetensors")
    local m = Captioner{ vocab_size = 72, wordvec_dim = 16, hidden_dim = 24, channels = { 4, 4, 8, 8 }, cell_dim = 8 }
    local sd = {}
    for k, v in pairs(fx) do
      local name = k:match("^p%.(.*)$")
      if name then sd[name] = v end
    end
    m:load_state_dict(sd, { strict = false })
    local loss = m(fx.images:byte(), fx.captions)
    loss:backward()
    local want = fx.loss[1]
    assert(math.abs(loss:item() - want) < 1e-4 * want, ("loss %.6f, PyTorch %.6f"):format(loss:item(), want))
    local worst, where = 0, nil
    for name, p in m:named_parameters() do
      local g = fx["g." .. name]
      assert(g, "no reference gradient for " .. name)
      local d = (p.grad - g):abs():max():item() / math.max(1e-3, g:abs():max():item())
      if d > worst then worst, where = d, name end
    end
    assert(worst < 1e-3, ("largest relative gradient difference %.3g in %s"):format(worst, where))
    for name, b in m:named_buffers() do
      local bn, kind = name:match("^(.*)%.running_(%a+)$")
      local ref = bn and fx[(kind == "mean" and "rm." or "rv.") .. bn]
      if ref then
        local d = (b - ref):abs():max():item()
        assert(d < 1e-4, ("%s differs from PyTorch by %.3g"):format(name, d))
      end
    end
  end)

  it("pretrains the encoder as a cell classifier, then freezes it and takes its features", function()
    local m = small()
    local x, caps = batch()
    assert.are.equal("[16,21]", shape(m:cell_logits(x)))
    local cells = nn.tensor({ { 1, 2, 3, 4 }, { 5, 1, 1, 2 }, { 3, 3, 1, 1 }, { 1, 1, 1, 4 } }, "int64")
    local loss = m:cell_loss(x, cells)
    assert.are.equal(0, loss:dim())
    loss:backward()
    assert(m.encoder.fc.weight.grad and m.encoder.head.weight.grad, "no gradient reached the encoder's layers")
    assert.is_nil(m.init_h.weight.grad)
    m:freeze_encoder()
    m:train()
    assert.is_false(m.encoder.training)
    assert.is_true(m.rnn.training)
    for _, p in ipairs(m.encoder:parameters()) do assert.is_false(p:is_requires_grad()) end
    local f = m:encode(x)
    assert.are.equal("[4,84]", shape(f))
    local a, b = m(x, caps):item(), m(f, caps):item()
    assert(math.abs(a - b) < 1e-5, ("loss from images %.6f, from their features %.6f"):format(a, b))
    assert.are.same(m:sample(x):totable(), m:sample(f):totable())
    assert.has_error(function() m(nn.zeros(4, 7), caps) end, "Captioner: features must be N x 84, got [4,7]")
  end)

  it("overfits four examples: a few dozen Adam steps lower the loss a lot", function()
    local m = small("lstm", 3)
    local x, caps = batch()
    local opt = nn.optim.Adam(m:parameters(), { lr = 2e-2 })
    local first, last
    for step = 1, 60 do
      opt:zero_grad()
      local loss = m(x, caps)
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert(last < 0.15 * first, ("loss went from %.3f to %.3f"):format(first, last))
    -- the memorised captions come back, greedily and with a beam, and stop at <END>
    local g, b = m:sample(x):totable(), m:beam_search(x, { beam = 3 }):totable()
    local hits = 0
    for n = 1, 4 do
      assert(check_row(g[n], "greedy row " .. n), "greedy row " .. n .. " has no <END>")
      assert(check_row(b[n], "beam row " .. n), "beam row " .. n .. " has no <END>")
      local want = D.decode(CAPS[n], { })
      if D.decode(g[n], {}) == want then hits = hits + 1 end
    end
    assert(hits >= 3, "greedy decoding reproduced " .. hits .. " of 4 training captions")
  end)

  it("greedy and beam decoding stop at <END> and pad with <NULL>", function()
    for _, cell in ipairs({ "lstm", "rnn", "gru" }) do
      local m = small(cell)
      local x = batch()
      nn.no_grad(function()
        m.vocab.weight:zero_()
        m.vocab.bias:zero_()
        m.vocab.bias[D.END] = 5 -- <END> always wins
      end)
      local want = "[[3,1,1,1,1,1,1],[3,1,1,1,1,1,1],[3,1,1,1,1,1,1],[3,1,1,1,1,1,1]]"
      local function str(t)
        local rows = {}
        for i, r in ipairs(t:totable()) do rows[i] = "[" .. table.concat(r, ",") .. "]" end
        return "[" .. table.concat(rows, ",") .. "]"
      end
      assert.are.equal(want, str(m:sample(x)))
      assert.are.equal(want, str((m:beam_search(x, { beam = 2 }))))
      nn.no_grad(function() m.vocab.bias[D.END] = 0; m.vocab.bias[9] = 5 end) -- never ends
      local rows = m:sample(x, { max_len = 5 }):totable()
      assert.are.same({ 9, 9, 9, 9, 9 }, rows[1])
      assert.are.equal(5, #m:beam_search(x, { beam = 3, max_len = 5 }):totable()[2])
    end
  end)

  it("beam search of width 1 is greedy decoding; its scores are the captions' log-probabilities", function()
    local m = small("lstm", 5)
    local x = batch()
    local g = m:sample(x):totable()
    local b1 = m:beam_search(x, { beam = 1 })
    assert.are.same(g, b1:totable())
    -- the score beam search reports for each caption is the caption's log-probability under
    -- teacher forcing: the states were reordered with their hypotheses correctly
    for _, opts in ipairs({ { beam = 3 }, { beam = 4, length_norm = true } }) do
      local ids, scores = m:beam_search(x, opts)
      local rows = ids:totable()
      local caps = {}
      for n, row in ipairs(rows) do
        check_row(row, "beam row " .. n)
        caps[n] = { D.START, table.unpack(row) }
      end
      m:eval()
      local lp = nn.no_grad(function() return nn.F.log_softmax((m:scores(x, nn.tensor(caps, "int64"))), 3):totable() end)
      for n, row in ipairs(rows) do
        local want = 0
        for t, id in ipairs(row) do
          if id == D.NULL then break end
          want = want + lp[n][t][id]
        end
        assert(math.abs(want - scores[n]) < 1e-4, ("beam %d row %d: score %.5f, teacher forcing %.5f")
          :format(opts.beam, n, scores[n], want))
      end
    end
    assert.has_error(function() m:beam_search(x, { beam = 0 }) end, "beam_search: beam must be a positive integer")
  end)

  it("leaves the model in the mode it was in", function()
    local m = small()
    local x = batch()
    m:train()
    m:sample(x)
    assert.is_true(m.training)
    m:eval()
    m:beam_search(x, { beam = 2 })
    assert.is_false(m.training)
  end)

  it("reports bad options", function()
    assert.has_error(function() Captioner{ vocab_size = 2 } end,
      "Captioner: vocab_size must be an integer >= 4 (with <NULL>, <START>, <END>, <UNK>), got 2")
    assert.has_error(function() Captioner{ vocab_size = 10, cell = "tcn" } end,
      "Captioner: cell must be \"lstm\", \"rnn\" or \"gru\", got tcn")
    assert.has_error(function() Captioner{ vocab_size = 10, encoder = nn.Identity() } end,
      "Captioner: with an encoder, give its output size as feature_dim")
    assert.has_error(function() Captioner{ vocab_size = 10, hidden = 3 } end, "Captioner: unknown option 'hidden'")
  end)
end)

describe("captioning data helpers", function()
  local words = { "<NULL>", "<START>", "<END>", "<UNK>", "a", "sneaker", "two", "shirts" }

  it("decode skips <START> and <NULL> and stops at <END>", function()
    assert.are.equal("a sneaker", D.decode({ 2, 5, 6, 3, 7, 8 }, words))
    assert.are.equal("two shirts", D.decode(nn.tensor({ 2, 7, 8, 3, 1, 1 }, "int64"), words))
    assert.are.equal("", D.decode({ 3, 5 }, words))
    assert.are.equal("a <UNK>", D.decode({ 5, 99 }, words))
    assert.are.same({ "a", "two shirts" }, D.decode_batch(nn.tensor({ { 2, 5, 3 }, { 7, 8, 3 } }, "int64"), words))
  end)

  it("reads the names and counts of objects in a caption", function()
    assert.are.same({ shirt = 2, ["ankle boot"] = 1, ["digit seven"] = 1, bag = 3 },
      D.named("two shirts one above the other and an ankle boot with the digit seven and three bags"))
    assert.are.same({ ["t-shirt"] = 1, dress = 1 }, D.named("a t-shirt above a dress"))
    assert.are.same({}, D.named("a boot in the corner"))
  end)

  it("scores objects named against the cells", function()
    -- cell codes: fashion class + 1 (shirt 7, bag 9, coat 5), digit + 11 (seven 18)
    local s = D.score_objects({ { 7, 0, 7, 0 }, { 18, 9, 0, 0 }, { 9, 0, 0, 0 }, { 7, 7, 0, 5 } },
      { "two shirts one above the other", "the digit seven and a bag", "a bag and a coat", "a shirt" })
    -- image 1: 2/2; image 2: 2/2; image 3: 1/1, the coat extra; image 4: 1 shirt of 2 (a count
    -- error), the coat missing
    assert.are.equal(6, s.correct)
    assert.are.equal(8, s.total)
    assert.are.equal(1, s.extra)
    assert.are.equal(1, s.count_errors)
    assert.are.equal(2, s.missing)
    assert.are.equal(2, s.images_exact)
  end)

  it("shuffles with the xorshift32 stream of the PyTorch twin", function()
    local r = D.rng(7)
    -- bench/torch_captioning.py: XorShift(7).perm(10) (+1), then next() % 5 + 1, then next()
    assert.are.same({ 7, 4, 9, 5, 6, 10, 2, 3, 8, 1 }, r.perm(10))
    assert.are.equal(5, r.below(5))
    assert.are.equal(2480962272, r.next())
    local d = { n_images = 3, first = { 1, 4, 9 }, count = { 3, 5, 4 } }
    local rows = D.epoch_rows(d, D.rng(1))
    assert.are.equal(3, #rows)
    for _, row in ipairs(rows) do assert(row >= 1 and row <= 12) end
  end)
end)

describe("examples/captioning.lua", function()
  local proc = require "helpers.proc"
  local BIN, q, run, exists = proc.BIN, proc.q, proc.run, proc.exists
  local ready = exists(BIN) and exists("data/captions/SOURCE")

  it("trains a tiny captioner end to end and writes the checkpoint and the pictures", function()
    if not ready then pending("needs " .. BIN .. " and data/captions (scripts/get-data --captions)") return end
    local dir = os.tmpname()
    os.remove(dir)
    local out, err, code = run(q(BIN) .. " -t 1 examples/captioning.lua --limit 100 --val-limit 40 --pretrain-epochs 1"
      .. " --epochs 1 --channels 4,4,8 --convs 1,1,1 --cell-dim 8 --wordvec-dim 8 --hidden-dim 16 --beam 2"
      .. " --out " .. q(dir))
    assert(code == 0, "exit code " .. tostring(code) .. "\n" .. err)
    assert(out:find("objects correctly named: %d+ / %d+"), out)
    assert(out:find("validation %(40 images, greedy%): BLEU%-1"), out)
    assert(out:find("validation %(beam 2"), out)
    for _, f in ipairs({ "model.safetensors", "loss.png", "train_samples.png", "val_samples.png" }) do
      assert(exists(dir .. "/" .. f), "missing " .. f)
    end
    local sd = nn.load(dir .. "/model.safetensors")
    assert(sd["rnn.weight_ih_l0"] and sd["encoder.head.weight"], "checkpoint lacks the model's weights")
    os.execute("rm -rf " .. q(dir))
  end)

  it("prints its help and rejects unknown arguments", function()
    if not exists(BIN) then pending("needs " .. BIN) return end
    local out, _, code = run(q(BIN) .. " examples/captioning.lua --help")
    assert.are.equal(0, code)
    assert(out:find("--overfit N", 1, true) and out:find("--beam K", 1, true), out)
    local _, err
    _, err, code = run(q(BIN) .. " examples/captioning.lua --bogus")
    assert.are.equal(2, code)
    assert(err:find("unknown argument --bogus", 1, true), err)
    _, err, code = run(q(BIN) .. " examples/captioning.lua --cell tcn")
    assert.are.equal(2, code)
    assert(err:find("--cell must be lstm, rnn or gru", 1, true), err)
  end)
end)
