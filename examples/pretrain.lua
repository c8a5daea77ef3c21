-- examples/pretrain.lua: the backbone of the offline transfer-learning demo: nn.models.resnet_small
-- trained on Fashion-MNIST's 60,000 training images, tested on its 10,000, saved for examples/transfer.lua.
local nn = rawget(_G, "nn") or require "nnlua"
local models = require "nnlua.models"
local ckpt = require "nnlua.utils.checkpoint"

local USAGE = [[
usage: nnlua examples/pretrain.lua [options]

Trains nn.models.resnet_small (3x3 stem, stages of 16/32/64 channels, 205k parameters) to classify
Fashion-MNIST's ten garments: SGD with momentum and weight decay, cosine learning-rate decay per
epoch, inputs normalised with Fashion-MNIST's mean and std. Reports test accuracy after each epoch
and saves the weights (safetensors, PyTorch key names; the metadata records the normalisation) as
OUT/resnet_small.safetensors, plus OUT/checkpoint.safetensors (a training checkpoint: --resume).

  --data DIR          Fashion-MNIST IDX files (default data/fashion; scripts/get-data --fashion)
  --epochs E          passes over the 60,000 training images (default 2)
  --batch-size B      images per step (default 128)
  --lr LR             initial learning rate (default 0.02)
  --momentum M        SGD momentum (default 0.9)
  --weight-decay WD   L2 weight decay (default 5e-4)
  --width W           channels of the first stage; the others have 2W and 4W (default 16)
  --pool P            the average pool's output side: fc sees 4W * P * P features (default 7: the
                      whole 7x7 map of the last stage, no pooling; 1 is ResNet's global average)
  --threads T         threads for the kernels and BLAS (default: as started)
  --seed S            initial weights and shuffling (default 0)
  --out DIR           output directory (default out/pretrain)
  --limit N           train on the first N training images only
  --checkpoint-every N  also write the checkpoint every N steps (default 0: at epoch ends only)
  --resume            continue from OUT/checkpoint.safetensors (model, optimizer, schedule, RNG); after
                      an interrupted epoch, that epoch runs again from its start
  --help              this text

The checkpoint is written atomically at the end of each epoch and on Ctrl-C, which stops at the end
of the running step and exits with status 130 (a second Ctrl-C stops at once). A loss that becomes
NaN or Inf stops training with status 3, keeping the last checkpoint written (one is only written
while every parameter is finite).]]

local M = {}

-- Fashion-MNIST's training-set pixel mean and standard deviation (of v / 255).
M.MEAN, M.STD = 0.2860, 0.3530

local function die(msg)
  io.stderr:write("pretrain.lua: ", msg, "\n(--help lists the options)\n")
  os.exit(2)
end

function M.parse(args)
  local o = { data = "data/fashion", epochs = 2, batch_size = 128, lr = 0.02, momentum = 0.9,
              weight_decay = 5e-4, seed = 0, out = "out/pretrain", width = 16, pool = 7 }
  local kinds = { ["--data"] = "data:s", ["--epochs"] = "epochs:i", ["--batch-size"] = "batch_size:i",
                  ["--lr"] = "lr:n", ["--momentum"] = "momentum:n", ["--weight-decay"] = "weight_decay:n",
                  ["--threads"] = "threads:i", ["--width"] = "width:i", ["--pool"] = "pool:i", ["--seed"] = "seed:i", ["--out"] = "out:s", ["--limit"] = "limit:i",
                  ["--checkpoint-every"] = "checkpoint_every:i" }
  local i = 1
  while args[i] do
    local a, val = args[i], nil
    local k, v = a:match("^(%-%-[%w-]+)=(.*)$")
    if k then a, val = k, v end
    if a == "--help" or a == "-h" then
      print(USAGE)
      os.exit(0)
    elseif a == "--resume" then
      o.resume = true
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
        local n = tonumber(val)
        if kind == "i" then n = n and math.tointeger(n) end
        if not n then die(("%s needs %s, got %q"):format(a, kind == "i" and "an integer" or "a number", val)) end
        o[field] = n
      end
    else
      die("unknown argument " .. a)
    end
    i = i + 1
  end
  if o.epochs < 1 or o.batch_size < 1 then die("--epochs and --batch-size must be positive") end
  if (o.checkpoint_every or 0) < 0 then die("--checkpoint-every must be 0 or more steps") end
  return o
end

--- Accuracy of model on (x, y), in batches, eval mode, no graph.
function M.evaluate(model, x, y, batch)
  model:eval()
  local correct = 0
  nn.no_grad(function()
    for first = 1, x:size(1), batch do
      local n = math.min(batch, x:size(1) - first + 1)
      correct = correct + nn.metrics.correct(model(x:narrow(1, first, n)), y:narrow(1, first, n))
    end
  end)
  return correct / x:size(1)
end

--- Train and save; returns the test accuracy and the path of the weights.
function M.main(args)
  local o = M.parse(args or {})
  if o.threads then nn.set_num_threads(o.threads) end
  nn.manual_seed(o.seed)
  local ok, train, test = pcall(function()
    return nn.data.fashion_mnist(o.data, "train"), nn.data.fashion_mnist(o.data, "test")
  end)
  if not ok then
    io.stderr:write("pretrain.lua: ", tostring(train), "\n")
    os.exit(1)
  end
  if o.limit then train = train:narrow(1, math.min(o.limit, #train)) end
  local norm = function(x) return (x - M.MEAN) / M.STD end
  local xtr, ytr = norm(train.tensors[1]), train.tensors[2]
  local xte, yte = norm(test.tensors[1]), test.tensors[2]
  local loader = nn.data.DataLoader(nn.data.TensorDataset(xtr, ytr),
                                    { batch_size = o.batch_size, shuffle = true, seed = o.seed })

  local model = models.resnet_small{ num_classes = 10, in_channels = 1, width = o.width, pool = o.pool }
  local opt = nn.optim.SGD(model:parameters(), { lr = o.lr, momentum = o.momentum, weight_decay = o.weight_decay })
  local sched = nn.optim.CosineAnnealingLR(opt, { T_max = o.epochs })
  os.execute("mkdir -p '" .. o.out:gsub("'", "'\\''") .. "'")
  local ckpt_path, weights_path = o.out .. "/checkpoint.safetensors", o.out .. "/resnet_small.safetensors"
  local first, acc = 1, nil
  if o.resume then
    local ok_r, info = pcall(ckpt.load_checkpoint, ckpt_path,
                             { model = model, optimizer = opt, scheduler = sched, loader = loader })
    if not ok_r then
      io.stderr:write("pretrain.lua: --resume: ", tostring(info), "\n")
      os.exit(1)
    end
    first, acc = info.epoch + 1, info.extra.test_acc
    print(("resuming after epoch %d of %s (test accuracy %.2f%%)"):format(info.epoch, ckpt_path, 100 * (acc or 0)))
  end
  -- Ctrl-C and a NaN loss (nn.utils.TrainingGuard): the checkpoint records the epochs completed, so
  -- one written mid-epoch (Ctrl-C) resumes by running that epoch again with the weights it holds
  local epoch_done = false -- its steps, the scheduler step and the test pass
  local guard = nn.utils.TrainingGuard{
    name = "pretrain.lua", model = model,
    save = function(at)
      local done = epoch_done and at.epoch or at.epoch - 1
      ckpt.save_checkpoint(ckpt_path, { model = model, optimizer = opt, scheduler = sched, loader = loader, epoch = done,
                                        extra = { test_acc = acc, saved = at.why, step = at.step } })
      return ckpt_path
    end,
  }
  print(("resnet_small on Fashion-MNIST (%s): %d training, %d test images, %d parameters, %d threads")
    :format(o.data, #train, #test, model:num_parameters(), nn.get_num_threads()))

  for epoch = first, o.epochs do
    model:train()
    epoch_done = false
    local bar = nn.progress{ total = #loader, epoch = epoch, epochs = o.epochs }
    guard.bar = bar
    local loss_sum, correct, seen, step = 0, 0, 0, 0
    local t0 = nn.clock()
    for xb, yb in loader:iter() do
      opt:zero_grad()
      local logits = model(xb)
      local loss = nn.F.cross_entropy(logits, yb)
      step = step + 1
      local l = guard:at(epoch, step):check_loss(loss) -- before backward: the weights stay good
      loss:backward()
      opt:step()
      local n = yb:size(1)
      seen = seen + n
      loss_sum = loss_sum + l * n
      correct = correct + nn.metrics.correct(logits:detach(), yb)
      bar:update(step, { loss = loss_sum / seen, acc = correct / seen, samples = n })
      local every = o.checkpoint_every or 0
      if every > 0 and step % every == 0 then guard:checkpoint("every " .. every .. " steps") end
      guard:poll()
    end
    bar:finish()
    guard.bar = nil
    local train_s = nn.clock() - t0
    sched:step()
    acc = M.evaluate(model, xte, yte, 200)
    print(("epoch %d: %.1f s, train loss %.4f, train acc %.2f%%, test acc %.2f%%, next lr %.4g")
      :format(epoch, train_s, loss_sum / seen, 100 * correct / seen, 100 * acc, opt.param_groups[1].lr))
    epoch_done = true
    guard:poll(" (its end)") -- Ctrl-C during the test pass
    guard:checkpoint("end of epoch")
  end
  guard:close()
  nn.save(weights_path, model:state_dict(), {
    arch = "resnet_small", num_classes = 10, in_channels = 1, width = o.width, pool = o.pool, mean = M.MEAN, std = M.STD,
    dataset = "Fashion-MNIST", epochs = o.epochs, test_acc = ("%.4f"):format(acc or 0), seed = o.seed,
  })
  print(("test accuracy %.2f%% (10,000 Fashion-MNIST test images); saved %s"):format(100 * (acc or 0), weights_path))
  return acc, weights_path
end

-- `loadfile("examples/pretrain.lua")("--as-library")` gives this table (examples/transfer.lua uses it).
if ... == "--as-library" then return M end
M.main(arg or {})
