-- resnet_spec.lua — nn.models: torchvision's state-dict names, and ResNet-18 with weights exported from
-- PyTorch (scripts/export-torch-resnet) reproducing PyTorch's logits and one training step's gradients.
local nn = require "nnlua"
local models = require "nnlua.models"

local FIXTURE = "spec/fixtures/resnet18_w8" -- width 8, 10 classes, batch 4 x 3 x 64 x 64 (committed)
local FULL = "data/resnet18-export/resnet18" -- width 64, 1000 classes, 2 x 3 x 224 x 224 (optional)

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function max_abs(a, b) return (a - b):abs():max():item() end

local function norm(t) return t:float():square():sum():item() ^ 0.5 end

local function rel(a, b) return norm(a - b) / math.max(norm(b), 1e-12) end

-- Every parameter's gradient against PyTorch's: relative error (‖a - b‖ / ‖b‖) within tol. Where the
-- export holds float64 gradients (grad64.*) and PyTorch's own float32 gradient is further than tol
-- from them (a ReLU or max-pool decision flipped by rounding), nnlua's must be as close to float64 as
-- PyTorch's (within 2x). Returns the worst ratio to its bound (<= 1 passes) and a description.
local function worst_grad(model, ref, tol)
  local worst, where, missing = 0, "", {}
  for name, p in model:named_parameters() do
    local g, g64 = ref["grad." .. name], ref["grad64." .. name]
    if not g then
      missing[#missing + 1] = name
    elseif not p.grad then
      return math.huge, name .. " has no gradient"
    else
      local r, ratio, text = rel(p.grad, g), nil, nil
      ratio, text = r / tol, ("%s: relative error %.3g against PyTorch (bound %g)"):format(name, r, tol)
      if ratio > 1 and g64 then
        local ours, theirs = rel(p.grad, g64), rel(g, g64)
        local bound = math.max(tol, 2 * theirs)
        ratio = ours / bound
        text = ("%s: relative error %.3g against PyTorch float32, %.3g against float64 where PyTorch's "
          .. "float32 has %.3g (bound %.3g)"):format(name, r, ours, theirs, bound)
      end
      if ratio > worst then worst, where = ratio, text end
    end
  end
  assert.same({}, missing)
  return worst, where
end

-- Parity with the PyTorch export at `prefix`: eval logits, train-mode logits and loss, gradients, and
-- the BatchNorm running statistics after the train-mode forward.
local function check_parity(prefix, opts)
  local sd, meta = nn.load(prefix .. ".safetensors")
  local ref = nn.load(prefix .. "_ref.safetensors")
  local model = models.resnet18{ num_classes = tonumber(meta.num_classes), width = tonumber(meta.width) }
  model:load_state_dict(sd)

  model:eval()
  local logits = nn.no_grad(function() return model(ref.x) end)
  local d = max_abs(logits, ref["eval.logits"])
  assert.is_true(d <= 1e-4, ("eval logits differ from PyTorch's by %.3g (> 1e-4)"):format(d))

  model:train()
  logits = model(ref.x)
  local loss = nn.F.cross_entropy(logits, ref.y)
  d = max_abs(logits:detach(), ref["train.logits"])
  assert.is_true(d <= 1e-4, ("train-mode logits differ by %.3g (> 1e-4)"):format(d))
  d = math.abs(loss:item() - ref["train.loss"]:item())
  assert.is_true(d <= 1e-5, ("loss differs by %.3g"):format(d))
  loss:backward()
  local ratio, where = worst_grad(model, ref, opts.grad_tol or 1e-4)
  assert.is_true(ratio <= 1, "gradient of " .. where)

  for name, b in model:named_buffers() do
    local a = ref["after." .. name]
    assert.is_not_nil(a, name)
    d = max_abs(b:float(), a:float())
    assert.is_true(d <= 1e-5, ("buffer %s after the train-mode forward differs by %.3g"):format(name, d))
  end
end

describe("nn.models", function()
  it("resnet18 and resnet34 have torchvision's keys, shapes and parameter counts", function()
    local m = models.resnet18()
    local keys = getmetatable(m:state_dict()).keys
    assert.equals(122, #keys) -- 62 parameters + 60 BatchNorm buffers, as torchvision
    assert.same({ "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                  "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight" },
                { table.unpack(keys, 1, 8) })
    assert.same({ "fc.weight", "fc.bias" }, { keys[121], keys[122] })
    local sd = m:state_dict()
    assert.same({ 128, 64, 1, 1 }, sd["layer2.0.downsample.0.weight"]:size())
    assert.same({ 128 }, sd["layer2.0.downsample.1.running_var"]:size())
    assert.same({ 512, 512, 3, 3 }, sd["layer4.1.conv2.weight"]:size())
    assert.same({ 1000, 512 }, sd["fc.weight"]:size())
    assert.is_nil(sd["layer1.0.downsample.0.weight"])
    assert.equals(11689512, m:num_parameters())
    local m34 = models.resnet34{ num_classes = 2 }
    assert.equals(21285698, m34:num_parameters())
    assert.is_not_nil(m34:state_dict()["layer3.5.bn2.running_mean"])
  end)

  it("takes the state dict of the PyTorch export with exactly the same keys", function()
    local sd = nn.load(FIXTURE .. ".safetensors")
    local ours = models.resnet18{ num_classes = 10, width = 8 }:state_dict()
    local a, b = {}, {}
    for k in pairs(sd) do a[#a + 1] = k end
    for k in pairs(ours) do b[#b + 1] = k end
    table.sort(a)
    table.sort(b)
    assert.same(a, b)
    for k, t in pairs(sd) do assert.same(ours[k]:size(), t:size(), k) end
  end)

  it("resnet_small maps 28x28 images to class scores, and its fc can be replaced", function()
    nn.manual_seed(3)
    local m = models.resnet_small{ num_classes = 10 }
    m:eval()
    local y = nn.no_grad(function() return m(nn.randn(2, 1, 28, 28)) end)
    assert.same({ 2, 10 }, y:size())
    m.fc = nn.Linear(64, 2)
    assert.same({ 3, 2 }, nn.no_grad(function() return m(nn.randn(3, 1, 28, 28)) end):size())
    assert.has_error(function() models.resnet18{ classes = 3 } end, "resnet18: unknown option 'classes'")
    assert.has_error(function() m(nn.randn(28, 28)) end)
  end)

  it("a frozen backbone gets no gradients, the new head does", function()
    local m = models.resnet_small{ num_classes = 10 }
    m:freeze()
    m.fc = nn.Linear(64, 3)
    local x = nn.randn(4, 1, 28, 28)
    -- no node is recorded in the backbone: its output does not require grad (a frozen backbone costs
    -- forward time only; conv2d and batch_norm record nothing when no input needs a gradient)
    assert.is_false(m:features(x):is_requires_grad())
    local loss = nn.F.cross_entropy(m(x), nn.tensor({ 1, 2, 3, 1 }, "int64"))
    loss:backward()
    for name, p in m:named_parameters() do
      if name:sub(1, 3) == "fc." then assert.is_not_nil(p.grad, name) else assert.is_nil(p.grad, name) end
    end
    assert.equals(64 * 3 + 3, m:num_parameters{ trainable = true })
  end)
end)

describe("ResNet-18 against PyTorch", function()
  it("reproduces logits and gradients of the committed width-8 export", function()
    check_parity(FIXTURE, {})
  end)

  it("reproduces torchvision-size ResNet-18 at 224x224 (data/resnet18-export)", function()
    if not exists(FULL .. "_ref.safetensors") then
      return pending("no " .. FULL .. "_ref.safetensors: run scripts/export-torch-resnet (needs python3-torch)")
    end
    check_parity(FULL, {})
  end)
end)
