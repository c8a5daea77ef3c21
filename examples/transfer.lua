-- examples/transfer.lua: PyTorch's transfer-learning tutorial in nnlua: a pretrained ResNet trained on a
-- small ImageFolder two ways, fine-tuning every layer or a frozen backbone with a new final layer.
local nn = rawget(_G, "nn") or require "nnlua"
local models = require "nnlua.models"
local resnet = require "nnlua.models.resnet"

local T = nn.data.transforms
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here:match("^(.*)/examples$") or (here == "examples" and ".") or here .. "/.."

local USAGE = [[
usage: nnlua examples/transfer.lua [options]

The tutorial's recipe, run in both regimes on the same data:
  finetune  the pretrained network with a new final layer, every layer trained
  frozen    the backbone frozen (no gradients, no backward work), only the new final layer trained
SGD lr 1e-3 momentum 0.9, StepLR(step 7, gamma 0.1), 25 epochs, batches of 4, the weights of the
epoch with the best validation accuracy kept. Prints one table (best validation accuracy, epoch
times, trainable parameters) and saves, per regime, the best weights and a PNG grid of validation
images with predicted and true labels.

Offline (the default): the backbone is nn.models.resnet_small pretrained on Fashion-MNIST by
examples/pretrain.lua (run first when OUT/../pretrain/resnet_small.safetensors is missing); the
target is an ImageFolder of real MNIST digits the backbone never saw (scripts/get-data
--digits-folder): "three" vs "eight", 120 training and 75 validation images per class.

With ImageNet weights (a 7x7-stem ResNet, e.g. torchvision's resnet18 converted by
scripts/export-torch-resnet --state-dict resnet18-f37072fd.pth):
  nnlua examples/transfer.lua --data hymenoptera_data --weights data/resnet18-export/resnet18.safetensors
runs the tutorial itself: RandomResizedCrop(224) + RandomHorizontalFlip + Normalize(ImageNet) for
training, Resize(256) + CenterCrop(224) + Normalize for validation; DIR holds train/ and val/.

  --data DIR         ImageFolder root with train/ and val/ (default data/digits-2class)
  --digits 2|10      the offline set: data/digits-2class or data/digits-10class (default 2)
  --weights FILE     pretrained ResNet state dict (safetensors, torchvision key names)
                     (default out/pretrain/resnet_small.safetensors)
  --regimes LIST     finetune,frozen (default both, in that order)
  --epochs E         default 25
  --batch-size B     default 4
  --lr LR            default 1e-3
  --momentum M       default 0.9
  --step-size S      StepLR step in epochs (default 7)
  --gamma G          StepLR factor (default 0.1)
  --threads T        threads for the kernels, BLAS and image decoding (default: as started)
  --seed S           new layer's weights, shuffling and augmentation (default 0)
  --out DIR          where results go (default out/transfer/<data set name>)
  --pretrain-epochs E  epochs of examples/pretrain.lua when the backbone must be trained (default 2)
  --help             this text

Ctrl-C stops at the end of the running step, writes the best weights so far (OUT/best-<regime>
.safetensors, atomically) and exits with status 130 (a second Ctrl-C stops at once). A loss that
becomes NaN or Inf stops training with status 3, after writing the best weights so far.]]

local function die(msg, code)
  io.stderr:write("transfer.lua: ", msg, "\n", code == 2 and "(--help lists the options)\n" or "")
  os.exit(code or 1)
end

local function parse(args)
  local o = { digits = 2, regimes = "finetune,frozen", epochs = 25, batch_size = 4, lr = 1e-3, momentum = 0.9,
              step_size = 7, gamma = 0.1, seed = 0, pretrain_epochs = 2 }
  local kinds = { ["--data"] = "data:s", ["--digits"] = "digits:i", ["--weights"] = "weights:s",
                  ["--regimes"] = "regimes:s", ["--epochs"] = "epochs:i", ["--batch-size"] = "batch_size:i",
                  ["--lr"] = "lr:n", ["--momentum"] = "momentum:n", ["--step-size"] = "step_size:i",
                  ["--gamma"] = "gamma:n", ["--threads"] = "threads:i", ["--seed"] = "seed:i", ["--out"] = "out:s",
                  ["--pretrain-epochs"] = "pretrain_epochs:i" }
  local i = 1
  while args[i] do
    local a, val = args[i], nil
    local k, v = a:match("^(%-%-[%w-]+)=(.*)$")
    if k then a, val = k, v end
    if a == "--help" or a == "-h" then
      print(USAGE)
      os.exit(0)
    elseif kinds[a] then
      local field, kind = kinds[a]:match("^(.*):(.)$")
      if not val then
        i = i + 1
        val = args[i]
      end
      if val == nil then die(a .. " needs a value", 2) end
      if kind == "s" then
        o[field] = val
      else
        local n = tonumber(val)
        if kind == "i" then n = n and math.tointeger(n) end
        if not n then die(("%s needs %s, got %q"):format(a, kind == "i" and "an integer" or "a number", val), 2) end
        o[field] = n
      end
    else
      die("unknown argument " .. a, 2)
    end
    i = i + 1
  end
  o.regime_list = {}
  for r in o.regimes:gmatch("[^,]+") do
    if r ~= "finetune" and r ~= "frozen" then die("--regimes: finetune and/or frozen, got " .. r, 2) end
    o.regime_list[#o.regime_list + 1] = r
  end
  if o.digits ~= 2 and o.digits ~= 10 then die("--digits must be 2 or 10", 2) end
  if o.epochs < 1 or o.batch_size < 1 or o.step_size < 1 then die("--epochs, --batch-size, --step-size must be positive", 2) end
  return o
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- ---- the backbone: a ResNet rebuilt from the shape of its state dict ----

-- The BasicBlock ResNet that `sd` (torchvision's key names) fits: stem, width, stages, classes.
local function resnet_for(sd)
  local w = sd["conv1.weight"]
  if not w or not sd["fc.weight"] then error("not a ResNet state dict (no conv1.weight or fc.weight)", 0) end
  local layers = {}
  for k in pairs(sd) do
    local s, b = k:match("^layer(%d+)%.(%d+)%.")
    if s then
      s, b = tonumber(s), tonumber(b) + 1
      layers[s] = math.max(layers[s] or 0, b)
    end
  end
  local stem = w:size(3) == 7 and "imagenet" or "small"
  local last = w:size(1) << (#layers - 1) -- channels of the last stage
  local pool = math.floor(math.sqrt(sd["fc.weight"]:size(2) / last) + 0.5)
  local model = resnet.ResNet(resnet.BasicBlock, layers, { num_classes = sd["fc.weight"]:size(1),
    in_channels = w:size(2), width = w:size(1), stem = stem, pool = pool })
  model:load_state_dict(sd)
  return model, stem
end

-- ---- data ----

local IMAGENET_MEAN, IMAGENET_STD = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }

-- The tutorial's transforms for a 7x7-stem (ImageNet) network; for the small network, its own
-- resolution and normalisation (from the weights' metadata) with a mild random crop for training.
local function recipe(stem, meta, channels)
  if stem == "imagenet" then
    return {
      channels = 3, zoom = 1, show = 8, nrow = 4,
      train = T.Compose{ T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                         T.Normalize(IMAGENET_MEAN, IMAGENET_STD) },
      val = T.Compose{ T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD) },
      view = T.Compose{ T.Resize(256), T.CenterCrop(224), T.ToTensor() },
    }
  end
  local mean, std = tonumber(meta.mean) or 0.5, tonumber(meta.std) or 0.5
  local m, s = {}, {}
  for c = 1, channels do m[c], s[c] = mean, std end
  return {
    channels = channels, zoom = 5, show = 16, nrow = 8,
    train = T.Compose{ T.RandomResizedCrop(28, { scale = { 0.8, 1 }, ratio = { 0.9, 1.1 } }), T.ToTensor(),
                       T.Normalize(m, s) },
    val = T.Compose{ T.Resize({ 28, 28 }), T.ToTensor(), T.Normalize(m, s) },
    view = T.Compose{ T.Resize({ 28, 28 }), T.ToTensor() },
  }
end

-- ---- training: the tutorial's train_model ----

-- run: the best weights so far (best_acc, best_epoch, best_state), kept up to date so that the guard
-- can save them when Ctrl-C stops the run; only weights that are all finite become the best.
local function train_model(model, opt, sched, loaders, o, name, guard, run)
  run.best_acc, run.best_epoch = -1, 0
  local hist = { train_s = {}, epoch_s = {}, val_acc = {}, train_acc = {} }
  for epoch = 1, o.epochs do
    local t_epoch = nn.clock()
    -- train phase
    model:train()
    local bar = nn.progress{ total = #loaders.train, epoch = epoch, epochs = o.epochs, prefix = name }
    guard.bar = bar
    local loss_sum, correct, seen, step = 0, 0, 0, 0
    local t0 = nn.clock()
    for xb, yb in loaders.train:iter() do
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
      guard:poll()
    end
    bar:finish()
    guard.bar = nil
    local train_s = nn.clock() - t0
    sched:step()
    -- val phase
    model:eval()
    local vcorrect, vseen, vloss = 0, 0, 0
    nn.no_grad(function()
      for xb, yb in loaders.val:iter() do
        local logits = model(xb)
        vloss = vloss + nn.F.cross_entropy(logits, yb):item() * yb:size(1)
        vcorrect = vcorrect + nn.metrics.correct(logits, yb)
        vseen = vseen + yb:size(1)
      end
    end)
    local acc = vcorrect / vseen
    hist.train_s[epoch], hist.epoch_s[epoch] = train_s, nn.clock() - t_epoch
    hist.val_acc[epoch], hist.train_acc[epoch] = acc, correct / seen
    print(("%s epoch %d/%d: train loss %.4f acc %.2f%% (%.2f s) | val loss %.4f acc %.2f%%%s"):format(name, epoch,
      o.epochs, loss_sum / seen, 100 * correct / seen, train_s, vloss / vseen, 100 * acc, acc > run.best_acc and "  *best" or ""))
    if acc > run.best_acc and nn.utils.all_finite(model) then
      local best = {}
      for k, t in pairs(model:state_dict()) do best[k] = t:clone() end
      run.best_acc, run.best_epoch, run.best_state = acc, epoch, best
    end
    guard:poll(" (its end)") -- Ctrl-C during the validation pass
  end
  if run.best_state then model:load_state_dict(run.best_state) end
  run.hist = hist
  return run
end

local function mean(list, from)
  local s, n = 0, 0
  for i = from or 1, #list do s, n = s + list[i], n + 1 end
  return n > 0 and s / n or 0 / 0
end

-- The tutorial's visualize_model: validation images with the predicted and the true class.
local function prediction_grid(model, valset, loader, rec, path)
  local n = math.min(rec.show, #valset.samples)
  local idx, views, labels = {}, {}, {}
  for i = 1, n do idx[i] = 1 + (i - 1) * #valset.samples // n end -- spread over the classes
  local xb, yb = loader:batch(idx, 0)
  model:eval()
  local pred = nn.no_grad(function() return model(xb):argmax(2) end):totable()
  local truth = yb:totable()
  local wrong = 0
  for i, k in ipairs(idx) do
    views[i] = rec.view(nn.image.load(valset.samples[k][1], rec.channels))
    local p, t = valset.classes[pred[i]], valset.classes[truth[i]]
    if p ~= t then wrong = wrong + 1 end
    labels[i] = (rec.zoom > 1 and "pred:%s true:%s" or "pred %s / true %s"):format(p, t)
  end
  local sheet = nn.image.grid(nn.stack(views, 1), { nrow = rec.nrow, zoom = rec.zoom, labels = labels, padding = 4 })
  nn.image.save(sheet, path)
  return n, wrong
end

-- ---- main ----

local function main(args)
  local o = parse(args)
  if o.threads then nn.set_num_threads(o.threads) end
  local offline = o.data == nil
  o.data = o.data or ("%s/data/digits-%dclass"):format(root, o.digits)
  o.weights = o.weights or (root .. "/out/pretrain/resnet_small.safetensors")
  local set_name = o.data:gsub("/+$", ""):match("([^/]+)$")
  o.out = o.out or (root .. "/out/transfer/" .. set_name)

  if offline and not exists(o.data .. "/train") then
    print("transfer.lua: " .. o.data .. " is missing; making it with scripts/get-data --digits-folder")
    if not os.execute(q(root .. "/scripts/get-data") .. " --digits-folder") then die("scripts/get-data --digits-folder failed") end
  end
  if not exists(o.weights) then
    if o.weights ~= root .. "/out/pretrain/resnet_small.safetensors" then die("no weights file " .. o.weights) end
    print("transfer.lua: no pretrained backbone at " .. o.weights .. "; training it first (examples/pretrain.lua)")
    local pretrain = assert(loadfile(here .. "/pretrain.lua"))("--as-library")
    pretrain.main{ "--epochs", tostring(o.pretrain_epochs), "--out", root .. "/out/pretrain", "--seed", tostring(o.seed) }
  end

  local ok, sd, meta = pcall(nn.load, o.weights)
  if not ok then die(tostring(sd)) end
  local ok2, probe, stem = pcall(resnet_for, sd)
  if not ok2 then die(o.weights .. ": " .. tostring(probe)) end
  local in_ch = sd["conv1.weight"]:size(2)
  local rec = recipe(stem, meta, in_ch)
  local tr_ok, trainset, valset = pcall(function()
    return nn.data.ImageFolder(o.data .. "/train", { transform = rec.train, channels = rec.channels }),
           nn.data.ImageFolder(o.data .. "/val", { transform = rec.val, channels = rec.channels })
  end)
  if not tr_ok then die(tostring(trainset)) end
  local C = #trainset.classes
  local feat = sd["fc.weight"]:size(2)
  os.execute("mkdir -p " .. q(o.out))
  print(("transfer learning on %s: %d classes (%s), %d training and %d validation images"):format(o.data, C,
    table.concat(trainset.classes, ", "), #trainset.samples, #valset.samples))
  print(("backbone %s: %s stem, %d features, pretrained on %s%s; %d threads"):format(o.weights, stem, feat,
    meta.dataset or "?", meta.test_acc and (" (test accuracy " .. meta.test_acc .. ")") or "", nn.get_num_threads()))

  local results = {}
  for _, regime in ipairs(o.regime_list) do
    nn.manual_seed(o.seed)
    local model = resnet_for(sd)
    if regime == "frozen" then model:freeze() end
    model.fc = nn.Linear(feat, C) -- a new final layer: trainable in both regimes
    local params = regime == "frozen" and model.fc:parameters() or model:parameters()
    local opt = nn.optim.SGD(params, { lr = o.lr, momentum = o.momentum })
    local sched = nn.optim.StepLR(opt, { step_size = o.step_size, gamma = o.gamma })
    local loaders = {
      train = nn.data.DataLoader(trainset, { batch_size = o.batch_size, shuffle = true, seed = o.seed }),
      val = nn.data.DataLoader(valset, { batch_size = 25 }),
    }
    print(("\n== %s: %s trainable of %s parameters =="):format(regime, resnet.ResNet.thousands(model:num_parameters{ trainable = true }),
      resnet.ResNet.thousands(model:num_parameters())))
    -- the best weights so far are this regime's checkpoint: written at its end, and on Ctrl-C
    local r = { ckpt = ("%s/best-%s.safetensors"):format(o.out, regime) }
    local function save_best(why)
      nn.save(r.ckpt, r.best_state, { regime = regime, best_val_acc = ("%.4f"):format(r.best_acc), epoch = r.best_epoch,
        classes = table.concat(trainset.classes, ","), data = o.data, backbone = o.weights, saved = why })
      return r.ckpt
    end
    local guard = nn.utils.TrainingGuard{
      name = "transfer.lua", stage = regime, save_on_nan = true, -- what it saves is good by construction
      save = function(at)
        if not r.best_state then return nil, "no epoch finished yet" end
        return save_best(at.why)
      end,
    }
    train_model(model, opt, sched, loaders, o, regime, guard, r)
    guard:close()
    if not r.best_state then die(regime .. ": no epoch gave weights without NaN or Inf", 3) end
    r.regime, r.trainable = regime, model:num_parameters{ trainable = true }
    save_best("best epoch")
    r.grid = ("%s/predictions-%s.png"):format(o.out, regime)
    r.shown, r.wrong = prediction_grid(model, valset, loaders.val, rec, r.grid)
    results[#results + 1] = r
  end

  -- the table
  print(("\n%s, %d epochs, batch %d, SGD lr %g momentum %g, StepLR(%d, %g), %d threads")
    :format(set_name, o.epochs, o.batch_size, o.lr, o.momentum, o.step_size, o.gamma, nn.get_num_threads()))
  print("| regime   | best val acc | best epoch | train s/epoch | epoch s (train+val) | trainable params |")
  print("|----------|--------------|------------|---------------|---------------------|------------------|")
  for _, r in ipairs(results) do
    print(("| %-8s | %11.2f%% | %10d | %13.3f | %19.3f | %16s |"):format(r.regime, 100 * r.best_acc, r.best_epoch,
      mean(r.hist.train_s), mean(r.hist.epoch_s), resnet.ResNet.thousands(r.trainable)))
  end
  if #results == 2 then
    print(("fine-tune / frozen time per training epoch: %.2fx (per whole epoch: %.2fx)")
      :format(mean(results[1].hist.train_s) / mean(results[2].hist.train_s),
              mean(results[1].hist.epoch_s) / mean(results[2].hist.epoch_s)))
  end
  for _, r in ipairs(results) do
    print(("%s: best weights %s; %d validation images with predictions (%d wrong) in %s"):format(r.regime, r.ckpt,
      r.shown, r.wrong, r.grid))
  end
  local series, colors = {}, { finetune = 0x1F4E9A, frozen = 0xD9541E }
  for _, r in ipairs(results) do
    series[#series + 1] = { name = r.regime .. " (val)", y = r.hist.val_acc, color = colors[r.regime], width = 2 }
  end
  nn.plot.lines{ path = o.out .. "/val-accuracy.png", title = set_name .. ": validation accuracy per epoch",
                 xlabel = "epoch", ylabel = "accuracy", series = series, legend = "lower right" }
  print("validation accuracy per epoch: " .. o.out .. "/val-accuracy.png")
  return results
end

main(arg or {})
