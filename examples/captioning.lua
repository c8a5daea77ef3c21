-- examples/captioning.lua: the course's image captioner (CNN encoder + RNN/LSTM decoder) trained on
-- data/captions; loss curve, captioned sample sheets, BLEU-1..4 and objects named on validation.
local nn = rawget(_G, "nn") or require "nnlua"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local lib = dofile(here .. "/lib/classify.lua") -- json(), data_dir(), peak_rss_mb()
local Captioner = require "nnlua.models.captioning"
local bleu = require "nnlua.metrics.bleu"
local D = Captioner.data

local USAGE = [[
usage: nnlua examples/captioning.lua [options]

Image captioning as in the course: a CNN encoder (per --channels entry, --convs times conv 3x3 ->
batch norm -> ReLU, then a 2x2 max pool; then per cell of the 2 x 2 grid affine -> ReLU -> affine
to 21 class scores: empty, 10 clothes, 10 digits), its features -> the initial hidden state, word
embeddings, an LSTM or RNN, scores over the vocabulary; softmax loss over captions_out masked at <NULL>, Adam.

Two stages by default, as the course uses features of a pretrained CNN: (1) the encoder is trained
as a classifier of the grid cells (empty, 10 clothes, 10 digits) on the training images' object
labels, --pretrain-epochs passes; (2) it is frozen, its features computed once, and the captioner
trained on them. With --pretrain-epochs 0 the encoder is trained end to end with the captioner
(slow to start: the decoder first learns to ignore the image). An epoch of (2) visits every training
image once, each with one of its 3-5 captions drawn at random. After training: greedy (and with
--beam K, beam) decoding of the validation images, corpus BLEU-1..4 against all references, and the
fraction of objects named. Writes model.safetensors, loss.png, train_samples.png and
val_samples.png to --out. bench/torch_captioning.py is the PyTorch twin (same recipe and order).

  --data DIR            the captioning set (default data/captions; scripts/get-data makes it)
  --cell lstm|rnn|gru   recurrent cell (default lstm)
  --epochs E            captioning passes over the training images (default 5; 100 with --overfit)
  --batch-size B        captions per step (default 50; 25 with --overfit)
  --lr LR               Adam learning rate (default 4e-3; 5e-3 with --overfit)
  --lr-decay G          the learning rate is multiplied by G after each epoch (default 0.7; 1 with --overfit)
  --pretrain-epochs P   cell-classifier passes before captioning, then the encoder is frozen
                        (default 6; 30 with --overfit; 0 trains the encoder end to end)
  --pretrain-lr LR      (default 3e-3)        --pretrain-decay G   (default 0.7; 1 with --overfit)
  --encoder PATH        take the encoder from a checkpoint of this script (skips stage 1; frozen)
  --overfit N           the course's sanity check: train on N images (e.g. 50), each with its first
                        caption only, until the loss is near zero
  --beam K              also decode the validation set with beam search of width K (default 1: greedy)
  --length-norm         rank beam hypotheses by log-probability per token instead of the sum
  --wordvec-dim W       word vector size (default 256)   --hidden-dim H   hidden size (default 512)
  --channels LIST       encoder channels per block (default 24,48,96)
  --convs LIST          convolutions per block (default 1,2,2)
  --flip                mirror half the images (at random) while pretraining the encoder
  --cell-dim C          the encoder's fc size per grid cell (default 128)
  --encoder-output probs|hidden   features: each cell's class probabilities (default; 4 x 21) or
                        its fc features (4 x --cell-dim)
  --init-c              the LSTM's c0 from the features too (default: c0 = 0, as the course)
  --limit N             train on the first N images only  --val-limit N   score N validation images
  --threads T           threads for kernels and BLAS (default: as started)
  --seed S              initial weights, image order and caption choice (default 0)
  --out DIR             output directory (default out/captioning)
  --json                one JSON object per epoch on stdout (as the twin); no progress bar
  --no-save             neither checkpoint nor pictures
  --help                this text

The checkpoint (OUT/model.safetensors, written atomically) is also written after every epoch of
either stage. Ctrl-C stops at the end of the running step, writes it and exits with status 130 (a
second Ctrl-C stops at once). A loss that becomes NaN or Inf stops training with status 3, keeping
the last good checkpoint (it is never written while a weight is NaN or Inf).]]

local function die(msg)
  io.stderr:write("captioning.lua: ", msg, "\n(--help lists the options)\n")
  os.exit(2)
end

local function parse(args)
  local o = { data = "data/captions", cell = "lstm", seed = 0, out = "out/captioning", beam = 1,
              wordvec_dim = 256, hidden_dim = 512, channels = "24,48,96", convs = "1,2,2", cell_dim = 128, encoder_output = "probs", pretrain_lr = 3e-3,
              pretrain_decay = 0.7 }
  local kinds = { ["--data"] = "data:s", ["--cell"] = "cell:s", ["--epochs"] = "epochs:i",
                  ["--batch-size"] = "batch_size:i", ["--lr"] = "lr:n", ["--lr-decay"] = "lr_decay:n",
                  ["--pretrain-epochs"] = "pretrain_epochs:i", ["--pretrain-lr"] = "pretrain_lr:n",
                  ["--pretrain-decay"] = "pretrain_decay:n", ["--encoder"] = "encoder:s",
                  ["--overfit"] = "overfit:i", ["--beam"] = "beam:i", ["--threads"] = "threads:i",
                  ["--seed"] = "seed:i", ["--out"] = "out:s", ["--limit"] = "limit:i",
                  ["--val-limit"] = "val_limit:i", ["--wordvec-dim"] = "wordvec_dim:i",
                  ["--hidden-dim"] = "hidden_dim:i", ["--channels"] = "channels:s",
                  ["--cell-dim"] = "cell_dim:i", ["--encoder-output"] = "encoder_output:s",
                  ["--convs"] = "convs:s" }
  local i = 1
  while args[i] do
    local a = args[i]
    local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
    if key then a = key end
    if a == "--help" or a == "-h" then
      print(USAGE)
      os.exit(0)
    elseif a == "--json" or a == "--no-save" or a == "--length-norm" or a == "--init-c" or a == "--flip" then
      o[a:sub(3):gsub("-", "_")] = true
    elseif kinds[a] then
      local field, kind = kinds[a]:match("^(.*):(.)$")
      if not val then
        i = i + 1
        val = args[i]
      end
      if val == nil then die(a .. " needs a value") end
      if kind == "s" then
        o[field] = val
      else
        local v = tonumber(val)
        if kind == "i" then v = v and math.tointeger(v) end
        if not v then die(("%s needs %s, got %q"):format(a, kind == "i" and "an integer" or "a number", val)) end
        o[field] = v
      end
      if field == "pretrain_decay" then o.pretrain_decay_given = true end
    else
      die("unknown argument " .. a)
    end
    i = i + 1
  end
  if o.cell ~= "lstm" and o.cell ~= "rnn" and o.cell ~= "gru" then die("--cell must be lstm, rnn or gru") end
  local ov = o.overfit ~= nil
  o.epochs = o.epochs or (ov and 100 or 5)
  o.batch_size = o.batch_size or (ov and 25 or 50)
  o.lr = o.lr or (ov and 5e-3 or 4e-3)
  o.lr_decay = o.lr_decay or (ov and 1 or 0.7)
  o.pretrain_epochs = o.pretrain_epochs or (o.encoder and 0 or ov and 30 or 6)
  if ov and not o.pretrain_decay_given then o.pretrain_decay = 1 end
  local ch = {}
  for c in o.channels:gmatch("[^,]+") do ch[#ch + 1] = math.tointeger(tonumber(c)) or die("bad --channels") end
  o.channel_list = ch
  local cv = {}
  for c in o.convs:gmatch("[^,]+") do cv[#cv + 1] = math.tointeger(tonumber(c)) or die("bad --convs") end
  o.conv_list = cv
  if o.epochs < 0 or o.pretrain_epochs < 0 or o.batch_size < 1 or o.beam < 1 or (ov and o.overfit < 1) then
    die("epochs, batch size, beam and overfit must be positive")
  end
  return o
end

-- Greedy wrap of text into lines of at most n characters.
local function wrap(text, n)
  local lines, cur = {}, ""
  for w in text:gmatch("%S+") do
    if cur == "" then cur = w
    elseif #cur + 1 + #w <= n then cur = cur .. " " .. w
    else
      lines[#lines + 1] = cur
      cur = w
    end
  end
  if cur ~= "" or #lines == 0 then lines[#lines + 1] = cur end
  return lines
end

--- A sheet of images, each with its generated caption (blue) and a reference caption (grey) drawn
--- under it, wrapped to the cell width (nn.image.grid cuts labels at one line; captions need three).
local function sample_sheet(path, title, images, gens, refs, cols)
  local n, zoom, cw, lines = images:size(1), 3, 264, 3
  local side = images:size(2) * zoom
  local lh, chars = 9, (264 - 8) // 6
  local chh = side + 6 + 2 * lines * lh + 8
  local rows = (n + cols - 1) // cols
  local W, H = cols * cw + (cols + 1) * 8, 28 + rows * chh + (rows + 1) * 8
  local cv = nn.image.canvas(W, H, 0xFFFFFF)
  cv:text(8, 8, title, 0x111111, 2)
  for k = 1, n do
    local x, y = 8 + ((k - 1) % cols) * (cw + 8), 28 + 8 + ((k - 1) // cols) * (chh + 8)
    cv:blit(images[k], x + (cw - side) // 2, y, zoom)
    local ty = y + side + 6
    local g, r = wrap("gen: " .. gens[k], chars), wrap("ref: " .. refs[k], chars)
    for j = 1, math.min(lines, #g) do cv:text(x + 4, ty + (j - 1) * lh, g[j], 0x1F4E9A) end
    for j = 1, math.min(lines, #r) do cv:text(x + 4, ty + (lines + j - 1) * lh, r[j], 0x555555) end
  end
  cv:save(path)
end

-- Generated captions (texts) for the first n rows of x (images or features), greedy or beam.
local function caption(model, x, n, vocab, beam, length_norm)
  local ids = model:generate(x:narrow(1, 1, n), { beam = beam, length_norm = length_norm })
  return D.decode_batch(ids, vocab.idx_to_word)
end

-- BLEU-1..4 and the objects score of generated texts against split s's first #texts images.
local function score(s, texts, vocab)
  local refs = {}
  for i = 1, #texts do refs[i] = D.references(s, i, vocab.idx_to_word) end
  local b = bleu.corpus(refs, texts)
  local cells = {}
  for i = 1, #texts do cells[i] = s.cell_codes[i] end
  return b, D.score_objects(cells, texts)
end

-- Accuracy of the cell classifier on the objects (non-empty cells) of split s's first n images.
local function cell_accuracy(model, s, n)
  local right, total = 0, 0
  nn.no_grad(function()
    local was = model.training
    model:eval()
    for first = 1, n, 500 do
      local count = math.min(500, n - first + 1)
      local pred = model:cell_logits(s.images:narrow(1, first, count)):argmax(2):view(count * 4)
      local want = s.cells:narrow(1, first, count):long():view(count * 4) + 1
      local obj = want:gt(1):long()
      right = right + (pred:eq(want):long() * obj):sum():item()
      total = total + obj:sum():item()
    end
    model:train(was)
  end)
  return right / total
end

local function round(x, d)
  local m = 10 ^ d
  return math.floor(x * m + 0.5) / m
end

local function main(args)
  local o = parse(args)
  local log = o.json and io.stderr or io.stdout
  if o.threads then nn.set_num_threads(o.threads) end
  local dir = lib.data_dir(o.data, arg and arg[0])
  local ok, vocab, train, val = pcall(function()
    return D.load_vocab(dir .. "/vocab.json"), D.load_split(dir, "train"), D.load_split(dir, "val")
  end)
  if not ok then
    io.stderr:write("captioning.lua: ", tostring(vocab), "\n(scripts/get-data --captions makes the data set)\n")
    os.exit(1)
  end
  local n_train = math.min(o.overfit or o.limit or train.n_images, train.n_images)
  local n_val = math.min(o.val_limit or val.n_images, val.n_images)
  local function emit(fields)
    if o.json then
      io.stdout:write(lib.json(fields), "\n")
      io.stdout:flush()
    end
  end

  nn.manual_seed(o.seed)
  local model = Captioner{ vocab_size = #vocab.idx_to_word, wordvec_dim = o.wordvec_dim,
                           hidden_dim = o.hidden_dim, cell = o.cell, channels = o.channel_list,
                           convs = o.conv_list, cell_dim = o.cell_dim, encoder_output = o.encoder_output,
                           init_c = o.init_c }
  local rng = D.rng(o.seed)
  local ckpt = o.out .. "/model.safetensors"
  local made_out = false
  local function save_model(extra) -- atomic (nn.save): a crash mid-write leaves the old file
    -- mkdir once: system() ignores SIGINT while its child runs, so a Ctrl-C then would be lost
    if not made_out then os.execute("mkdir -p '" .. o.out:gsub("'", "'\\''") .. "'") made_out = true end
    local meta = {
      example = "captioning", cell = o.cell, vocab_size = tostring(#vocab.idx_to_word),
      wordvec_dim = tostring(o.wordvec_dim), hidden_dim = tostring(o.hidden_dim), channels = o.channels,
      convs = o.convs, cell_dim = tostring(o.cell_dim), encoder_output = o.encoder_output,
      init_c = tostring(o.init_c == true), epochs = tostring(o.epochs), pretrain_epochs = tostring(o.pretrain_epochs),
      lr = tostring(o.lr), batch_size = tostring(o.batch_size), seed = tostring(o.seed),
      overfit = tostring(o.overfit or 0),
    }
    for k, v in pairs(extra) do meta[k] = tostring(v) end
    nn.save(ckpt, model:state_dict(), meta)
    return ckpt
  end
  -- Ctrl-C: checkpoint at the step's end, exit 130; a NaN/Inf loss: exit 3, the last good file kept
  local guard
  guard = nn.utils.TrainingGuard{
    name = "captioning.lua", model = model, no_save = "--no-save",
    save = not o.no_save and function(at)
      return save_model{ saved = at.why, stage = guard.stage or "", epoch = at.epoch or 0, step = at.step or 0 }
    end or nil,
  }
  if not o.json then
    log:write(("captioning on %s: %d training images%s, %d validation images, vocabulary %d, %d threads\n%s\n")
      :format(dir, n_train, o.overfit and " (overfit: first caption of each)" or "", n_val,
              #vocab.idx_to_word, nn.get_num_threads(), tostring(model)))
  end

  -- stage 1: the encoder as a classifier of the grid cells, trained on the objects' labels
  local pretrain_s, cell_acc = 0, nil
  if o.encoder then
    local sd, enc = nn.load(o.encoder), {}
    for k, v in pairs(sd) do
      if k:match("^encoder%.") then enc[k] = v end
    end
    model:load_state_dict(enc, { strict = false })
    log:write(("encoder from %s\n"):format(o.encoder))
  end
  if o.pretrain_epochs > 0 then
    local popt = nn.optim.Adam(model.encoder:parameters(), { lr = o.pretrain_lr })
    local psched = nn.optim.ExponentialLR(popt, { gamma = o.pretrain_decay })
    for epoch = 1, o.pretrain_epochs do
      local order, t0 = rng.perm(n_train), nn.clock()
      local steps = (n_train + o.batch_size - 1) // o.batch_size
      local bar = not o.json and nn.progress{ total = steps, epoch = epoch, epochs = o.pretrain_epochs,
                                              prefix = "encoder" } or nil
      guard.bar = bar
      local loss_sum = 0
      model:train()
      for st = 1, steps do
        local first = (st - 1) * o.batch_size + 1
        local x, cells = D.cell_batch(train, order, first, math.min(o.batch_size, n_train - first + 1),
                                      o.flip and rng or nil)
        popt:zero_grad()
        local loss = model:cell_loss(x, cells)
        local l = guard:at(epoch, st, "encoder"):check_loss(loss)
        loss:backward()
        popt:step()
        loss_sum = loss_sum + l
        if bar then bar:update(st, { loss = l, samples = x:size(1) }) end
        guard:poll()
      end
      psched:step()
      guard:checkpoint("end of epoch")
      local ts = nn.clock() - t0
      pretrain_s = pretrain_s + ts
      if bar then bar:finish({ loss = loss_sum / steps }) end
      if o.json or epoch == o.pretrain_epochs then
        cell_acc = cell_accuracy(model, val, n_val)
        log:write(("encoder epoch %d: %.1f s, loss %.4f, validation objects classified %.2f%%\n")
          :format(epoch, ts, loss_sum / steps, 100 * cell_acc))
      elseif not o.overfit then
        log:write(("encoder epoch %d: %.1f s, loss %.4f\n"):format(epoch, ts, loss_sum / steps))
      end
      emit{ { "bench", "captioning" }, { "impl", "nnlua" }, { "stage", "pretrain" }, { "epoch", epoch },
            { "train_s", round(ts, 3) }, { "train_loss", round(loss_sum / steps, 5) },
            { "cell_acc", cell_acc and round(cell_acc, 5) }, { "seed", o.seed }, { "threads", nn.get_num_threads() } }
    end
  end

  -- stage 2: captioning; with a pretrained encoder, on its features computed once
  local xtrain, xval = train.images, val.images
  local feat_s = 0
  if o.pretrain_epochs > 0 or o.encoder then
    model:freeze_encoder()
    local t0 = nn.clock()
    xtrain = model:encode(train.images:narrow(1, 1, n_train))
    xval = model:encode(val.images:narrow(1, 1, n_val))
    feat_s = nn.clock() - t0
    log:write(("encoder frozen; features of %d + %d images in %.1f s\n"):format(n_train, n_val, feat_s))
  end
  local params = {}
  for name, p in model:named_parameters() do
    if p:is_requires_grad() then params[#params + 1] = p end
  end
  local opt = nn.optim.Adam(params, { lr = o.lr })
  local sched = nn.optim.ExponentialLR(opt, { gamma = o.lr_decay })
  local sub = { n_images = n_train, first = train.first, count = train.count }
  local feats = xtrain ~= train.images and xtrain or nil
  local losses, last_loss, train_total = {}, 0 / 0, 0
  local b, obj, gen_s
  for epoch = 1, o.epochs do
    local rows
    if o.overfit then -- a fixed set of pairs: each image with its first caption, shuffled
      rows = {}
      for k, i in ipairs(rng.perm(n_train)) do rows[k] = train.first[i] end
    else
      rows = D.epoch_rows(sub, rng)
    end
    local steps = (#rows + o.batch_size - 1) // o.batch_size
    local bar = not o.json and nn.progress{ total = steps, epoch = epoch, epochs = o.epochs } or nil
    guard.bar = bar
    local t0, loss_sum, step_ts = nn.clock(), 0, {}
    model:train()
    for st = 1, steps do
      local first = (st - 1) * o.batch_size + 1
      local count = math.min(o.batch_size, #rows - first + 1)
      local ts = nn.clock()
      local x, caps = D.batch(train, rows, first, count, feats)
      opt:zero_grad()
      local loss = model(x, caps)
      local l = guard:at(epoch, st, "captioner"):check_loss(loss)
      loss:backward()
      opt:step()
      step_ts[st] = nn.clock() - ts
      losses[#losses + 1], loss_sum = l, loss_sum + l
      if bar then bar:update(st, { loss = l, samples = count }) end
      guard:poll()
    end
    local train_s = nn.clock() - t0
    train_total = train_total + train_s
    if bar then bar:finish({ loss = loss_sum / steps }) end
    last_loss = loss_sum / steps
    sched:step()
    guard:checkpoint("end of epoch")
    table.sort(step_ts)
    local step_med = step_ts[(#step_ts + 1) // 2]
    -- validation after every epoch with --json (the twin does the same), else at the end only
    if o.json or epoch == o.epochs then
      local tg = nn.clock()
      local texts = caption(model, xval, n_val, vocab, 1)
      gen_s = nn.clock() - tg
      b, obj = score(val, texts, vocab)
      emit{
        { "bench", "captioning" }, { "impl", "nnlua" }, { "stage", "caption" }, { "cell", o.cell },
        { "epoch", epoch }, { "train_s", round(train_s, 3) }, { "step_s", round(step_med, 5) },
        { "train_loss", round(last_loss, 5) },
        { "bleu1", round(b[1], 5) }, { "bleu2", round(b[2], 5) }, { "bleu3", round(b[3], 5) },
        { "bleu4", round(b[4], 5) }, { "objects_named", round(obj.correct / obj.total, 5) },
        { "objects_correct", obj.correct }, { "objects_total", obj.total }, { "extra_objects", obj.extra },
        { "count_errors", obj.count_errors }, { "images_exact", obj.images_exact },
        { "generate_s", round(gen_s, 3) }, { "pretrain_s", round(pretrain_s, 3) },
        { "features_s", round(feat_s, 3) }, { "cell_acc", cell_acc and round(cell_acc, 5) },
        { "n_train", n_train }, { "n_val", n_val }, { "batch_size", o.batch_size }, { "lr", o.lr },
        { "lr_decay", o.lr_decay }, { "seed", o.seed }, { "threads", nn.get_num_threads() },
        { "peak_rss_mb", round(lib.peak_rss_mb() or 0, 1) }, { "sample", texts[1] },
      }
    end
    if not o.json then
      log:write(("epoch %d: train %.1f s (%.0f ms/step, loss %.4f)\n"):format(epoch, train_s, 1e3 * step_med, last_loss))
    end
  end
  guard:close()
  if b then
    log:write(("validation (%d images, greedy): BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f\n")
      :format(n_val, b[1], b[2], b[3], b[4]))
    log:write(("objects correctly named: %d / %d = %.2f%%; extra objects named %d, wrong counts %d, "
      .. "captions naming exactly the image's objects %d / %d (%.1f%%); decoding %.1f s\n")
      :format(obj.correct, obj.total, 100 * obj.correct / obj.total, obj.extra, obj.count_errors,
              obj.images_exact, n_val, 100 * obj.images_exact / n_val, gen_s))
    log:write(("time: encoder %.1f s, features %.1f s, captioner %.1f s\n"):format(pretrain_s, feat_s, train_total))
    if o.beam > 1 then
      local tg = nn.clock()
      local bt = caption(model, xval, n_val, vocab, o.beam, o.length_norm)
      local bb, bo = score(val, bt, vocab)
      log:write(("validation (beam %d%s, %.1f s): BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f; "
        .. "objects named %.2f%%, extra %d\n"):format(o.beam, o.length_norm and ", length-normalised" or "",
        nn.clock() - tg, bb[1], bb[2], bb[3], bb[4], 100 * bo.correct / bo.total, bo.extra))
      emit{ { "bench", "captioning" }, { "impl", "nnlua" }, { "stage", "beam" }, { "beam", o.beam },
            { "length_norm", o.length_norm == true }, { "bleu1", round(bb[1], 5) }, { "bleu2", round(bb[2], 5) },
            { "bleu3", round(bb[3], 5) }, { "bleu4", round(bb[4], 5) },
            { "objects_named", round(bo.correct / bo.total, 5) }, { "extra_objects", bo.extra } }
    end
  end

  if not o.no_save and o.epochs > 0 then
    save_model{ saved = "end of training", final_loss = ("%.5f"):format(last_loss) }
    local png = o.out .. "/loss.png"
    nn.plot.lines{
      path = png, title = ("captioning (%s%s): training loss"):format(o.cell:upper(),
        o.overfit and (", overfit " .. o.overfit .. " images") or ""),
      xlabel = "iteration", ylabel = "loss per caption",
      series = { { name = "per step", y = losses, color = 0xA6C8E6, width = 1 },
                 { name = "moving average", y = nn.plot.smooth(losses, math.max(5, #losses // 40)),
                   color = 0x1F4E9A, width = 2 } },
    }
    -- sample sheets: training images the model has seen, validation images it has not
    local function sheet(s, x, n, name, what)
      n = math.min(12, n)
      local gens = caption(model, x, n, vocab, o.beam, o.length_norm)
      local refs = {}
      for i = 1, n do refs[i] = D.references(s, i, vocab.idx_to_word)[1] end
      local p = o.out .. "/" .. name
      sample_sheet(p, what .. (o.beam > 1 and (" (beam " .. o.beam .. ")") or " (greedy)"),
                   s.images:narrow(1, 1, n), gens, refs, 4)
      return p
    end
    local p1 = sheet(train, xtrain, n_train, "train_samples.png", "training images")
    local p2 = sheet(val, xval, n_val, "val_samples.png", "validation images")
    log:write(("saved %s, %s, %s and %s\n"):format(ckpt, png, p1, p2))
  end
  return last_loss
end

main(arg or {})
