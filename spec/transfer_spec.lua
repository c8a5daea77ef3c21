-- transfer_spec.lua — examples/transfer.lua and examples/pretrain.lua run as a user runs them (one short
-- epoch each): both regimes, the table, the best checkpoints and the prediction grids.
local nn = require "nnlua"
local models = require "nnlua.models"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function run(cmd)
  local out = os.tmpname()
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>&1 </dev/null")
  local f = assert(io.open(out))
  local s = f:read("a")
  f:close()
  os.remove(out)
  return s, code
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  return d
end

local function ready()
  if not exists(BIN) then return false, "no nnlua executable at " .. BIN end
  if not exists("data/digits-2class/train/three/0001.png") then
    return false, "no data/digits-2class (scripts/get-data --digits-folder)"
  end
  return true
end

describe("examples/transfer.lua", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("runs both regimes on the digit folder and reports the table, checkpoints and grids", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    -- a stand-in for examples/pretrain.lua's output: an untrained resnet_small with its metadata
    nn.manual_seed(0)
    local weights = dir .. "/backbone.safetensors"
    nn.save(weights, models.resnet_small():state_dict(), { arch = "resnet_small", mean = 0.286, std = 0.353 })
    local out, code = run(("%s examples/transfer.lua --weights %s --epochs 1 --out %s"):format(q(BIN), q(weights), q(dir .. "/out")))
    assert.equals(0, code, out)
    assert.matches("| regime   | best val acc", out, 1, true)
    assert.matches("| finetune |", out, 1, true)
    assert.matches("| frozen   |", out, 1, true)
    assert.matches("130 trainable of 174,450 parameters", out, 1, true) -- frozen: only the new 64 -> 2 layer
    assert.matches("fine-tune / frozen time per training epoch", out, 1, true)
    for _, r in ipairs({ "finetune", "frozen" }) do
      assert.is_true(exists(dir .. "/out/best-" .. r .. ".safetensors"), r)
      assert.is_true(exists(dir .. "/out/predictions-" .. r .. ".png"), r)
      local sd, meta = nn.load(dir .. "/out/best-" .. r .. ".safetensors")
      assert.same({ 2, 64 }, sd["fc.weight"]:size())
      assert.equals("eight,three", meta.classes)
      local img = nn.image.load(dir .. "/out/predictions-" .. r .. ".png")
      assert.equals(3, img:size(1))
    end
    -- the frozen regime leaves the backbone exactly as loaded (BatchNorm statistics aside)
    local frozen = nn.load(dir .. "/out/best-frozen.safetensors")
    local base = nn.load(weights)
    assert.equals(0, (frozen["layer2.0.conv1.weight"] - base["layer2.0.conv1.weight"]):abs():max():item())
    assert.is_true((frozen["layer2.0.bn1.running_mean"] - base["layer2.0.bn1.running_mean"]):abs():max():item() > 0)
  end)

  it("takes a 7x7-stem ResNet-18 with the tutorial's ImageNet transforms", function()
    local ok, why = ready()
    if not ok then return pending(why) end
    local out, code = run(("%s examples/transfer.lua --data data/digits-2class --weights spec/fixtures/resnet18_w8.safetensors "
      .. "--regimes frozen --epochs 1 --out %s"):format(q(BIN), q(dir .. "/out")))
    assert.equals(0, code, out)
    assert.matches("imagenet stem, 64 features", out, 1, true)
    assert.matches("| frozen   |", out, 1, true)
    local img = nn.image.load(dir .. "/out/predictions-frozen.png")
    assert.is_true(img:size(3) > 4 * 224, "a grid of 224x224 validation images")
  end)

  it("explains its flags and rejects bad ones", function()
    if not exists(BIN) then return pending("no nnlua executable at " .. BIN) end
    local out, code = run(q(BIN) .. " examples/transfer.lua --help")
    assert.equals(0, code)
    assert.matches("--weights FILE", out, 1, true)
    out, code = run(q(BIN) .. " examples/transfer.lua --regimes everything")
    assert.equals(2, code, out)
    assert.matches("--regimes", out, 1, true)
    out, code = run(q(BIN) .. " examples/pretrain.lua --help")
    assert.equals(0, code)
    assert.matches("--epochs E", out, 1, true)
  end)
end)
