-- resnet.lua: ResNet with BasicBlocks (He et al. 2015) in torchvision's layout, so its state dict
-- loads torchvision's weights as they are (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ..., fc).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

local M = {}

local function conv3x3(cin, cout, stride)
  return nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false })
end

local function conv1x1(cin, cout, stride)
  return nn.Conv2d(cin, cout, 1, { stride = stride, bias = false })
end

-- ---- BasicBlock: two 3x3 convolutions and a shortcut ----

---ResNet's basic block: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x)); the shortcut is
---downsample(x) (a 1x1 convolution and a BatchNorm2d when the stride or the width changes) or x.
---@class nn.models.BasicBlock : nn.Module
local BasicBlock = Module:extend("BasicBlock")
BasicBlock.expansion = 1
M.BasicBlock = BasicBlock

---nn.models.BasicBlock(inplanes, planes, opts)
---@param inplanes integer input channels
---@param planes integer output channels
---@param opts? {stride?: integer, downsample?: nn.Module} stride of conv1 (default 1); the shortcut module
function BasicBlock:init(inplanes, planes, opts)
  opts = opts or {}
  local stride = opts.stride or 1
  self.conv1 = conv3x3(inplanes, planes, stride)
  self.bn1 = nn.BatchNorm2d(planes)
  self.relu = nn.ReLU()
  self.conv2 = conv3x3(planes, planes, 1)
  self.bn2 = nn.BatchNorm2d(planes)
  if opts.downsample then self.downsample = opts.downsample end
  self.stride = stride
end

---Run the block.
---@param x Tensor (N, inplanes, H, W)
---@return Tensor (N, planes, H / stride, W / stride)
function BasicBlock:forward(x)
  local out = self.relu(self.bn1(self.conv1(x)))
  out = self.bn2(self.conv2(out))
  local shortcut = self.downsample
  local identity = shortcut and shortcut(x) or x
  return self.relu(out + identity)
end

-- ---- ResNet ----

---A ResNet (He et al. 2015) in torchvision's layout, so its state dict loads torchvision's weights
---as they are (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ..., fc). Made by
---nn.models.resnet18{num_classes = 2} and friends; model.fc = nn.Linear(...) replaces the head.
---@class nn.models.ResNet : nn.Module
---@field fc nn.Linear the classifier head
local ResNet = Module:extend("ResNet")
M.ResNet = ResNet

local function check_int(name, v, lo)
  if math.type(v) ~= "integer" or v < lo then
    error(string.format("ResNet: %s must be an integer >= %d, got %s", name, lo, tostring(v)), 4)
  end
  return v
end

---Options of nn.models.ResNet and its constructors.
---@class nn.models.ResNet.opts
---@field num_classes? integer outputs of fc (default 1000)
---@field in_channels? integer image channels (default 3)
---@field width? integer channels of the first stage; stage i has width * 2^(i-1) (default 64)
---@field stem? "imagenet"|"small" imagenet: 7x7 stride-2 conv + 3x3 stride-2 max pool; small: one 3x3 conv, no pool
---@field pool? integer side of the average pool's output: 1 is a global average (torchvision); 2 keeps a coarse 2x2 layout; fc takes channels * pool^2 features (default 1)

---nn.models.ResNet(block, layers, opts); stages after the first halve the resolution.
---@param block table the block class (nn.models.BasicBlock)
---@param layers integer[] blocks per stage, e.g. {2, 2, 2, 2} (ResNet-18)
---@param opts? nn.models.ResNet.opts
function ResNet:init(block, layers, opts)
  opts = opts or {}
  if type(layers) ~= "table" or #layers < 1 then
    error("ResNet: layers must be a list of block counts per stage, e.g. {2, 2, 2, 2}", 3)
  end
  local num_classes = check_int("num_classes", opts.num_classes or 1000, 1)
  local in_channels = check_int("in_channels", opts.in_channels or 3, 1)
  local width = check_int("width", opts.width or 64, 1)
  local stem = opts.stem or "imagenet"
  local pool = check_int("pool", opts.pool or 1, 1)
  if stem ~= "imagenet" and stem ~= "small" then
    error("ResNet: stem must be \"imagenet\" or \"small\", got " .. tostring(stem), 3)
  end
  self.block, self.stem, self.num_classes = block, stem, num_classes
  self.inplanes = width
  if stem == "imagenet" then
    self.conv1 = nn.Conv2d(in_channels, width, 7, { stride = 2, padding = 3, bias = false })
  else
    self.conv1 = conv3x3(in_channels, width, 1)
  end
  self.bn1 = nn.BatchNorm2d(width)
  self.relu = nn.ReLU()
  if stem == "imagenet" then self.maxpool = nn.MaxPool2d(3, { stride = 2, padding = 1 }) end
  for i, n in ipairs(layers) do
    check_int("layers[" .. i .. "]", n, 1)
    self["layer" .. i] = self:make_layer(block, width << (i - 1), n, i == 1 and 1 or 2)
  end
  self.avgpool = nn.AdaptiveAvgPool2d(pool)
  self.num_features = self.inplanes * block.expansion * pool * pool
  self.fc = nn.Linear(self.num_features, num_classes)
  self.num_stages = #layers
  -- torchvision's initialisation: He normal (fan_out) for convolutions, BN weight 1 and bias 0.
  for _, m in ipairs(self:modules()) do
    if m.__name == "Conv2d" then
      init.kaiming_normal_(m.weight, { mode = "fan_out", nonlinearity = "relu" })
    end
  end
end

---One stage: a Sequential of `blocks` blocks; the first changes the stride and width (with a
---downsample shortcut: 1x1 convolution + BatchNorm2d).
---@param block table the block class
---@param planes integer output channels
---@param blocks integer how many blocks
---@param stride integer stride of the first block
---@return nn.Sequential
function ResNet:make_layer(block, planes, blocks, stride)
  local downsample
  if stride ~= 1 or self.inplanes ~= planes * block.expansion then
    downsample = nn.Sequential{
      conv1x1(self.inplanes, planes * block.expansion, stride),
      nn.BatchNorm2d(planes * block.expansion),
    }
  end
  local list = { block(self.inplanes, planes, { stride = stride, downsample = downsample }) }
  self.inplanes = planes * block.expansion
  for i = 2, blocks do list[i] = block(self.inplanes, planes) end
  return nn.Sequential(list)
end

---The backbone's output: the pooled features before fc.
---@param x Tensor (N, in_channels, H, W)
---@return Tensor (N, num_features)
function ResNet:features(x)
  x = self.relu(self.bn1(self.conv1(x)))
  if self.maxpool then x = self.maxpool(x) end
  for i = 1, self.num_stages do x = self["layer" .. i](x) end
  return self.avgpool(x):flatten(2)
end

---Class scores.
---@param x Tensor (N, in_channels, H, W) float
---@return Tensor logits (N, num_classes)
function ResNet:forward(x)
  if not nn.is_tensor(x) or x:dim() ~= 4 then
    error(string.format("ResNet: expected an N x C x H x W float tensor, got %s",
      nn.is_tensor(x) and ("a tensor of size [" .. table.concat(x:size(), ",") .. "]") or type(x)), 3)
  end
  return self.fc(self:features(x))
end

-- ---- constructors ----

local function options(name, opts)
  if opts ~= nil and type(opts) ~= "table" then error(name .. ": options must be a table, got " .. type(opts), 3) end
  local o = {}
  for k, v in pairs(opts or {}) do
    if k ~= "num_classes" and k ~= "in_channels" and k ~= "width" and k ~= "layers" and k ~= "pool" then
      error(string.format("%s: unknown option '%s'", name, tostring(k)), 3)
    end
    o[k] = v
  end
  return o
end

---torchvision's ResNet-18 (11.7 M parameters at width 64); width scales every stage (8 gives a
---0.7 MB test model).
---@param opts? {num_classes?: integer, in_channels?: integer, width?: integer} defaults 1000, 3, 64
---@return nn.models.ResNet
function M.resnet18(opts)
  return ResNet(BasicBlock, { 2, 2, 2, 2 }, options("resnet18", opts))
end

---torchvision's ResNet-34 (blocks 3, 4, 6, 3).
---@param opts? {num_classes?: integer, in_channels?: integer, width?: integer} defaults 1000, 3, 64
---@return nn.models.ResNet
function M.resnet34(opts)
  return ResNet(BasicBlock, { 3, 4, 6, 3 }, options("resnet34", opts))
end

---A ResNet for 28x28 images: 3x3 stem without pooling, stages of 16, 32, 64 channels at 28x28,
---14x14 and 7x7, global average pool, fc.
---@param opts? {num_classes?: integer, in_channels?: integer, width?: integer, layers?: integer[]} defaults 10, 1, 16, {2, 2, 2}
---@return nn.models.ResNet
function M.resnet_small(opts)
  local o = options("resnet_small", opts)
  local layers = o.layers or { 2, 2, 2 }
  o.layers = nil
  o.num_classes = o.num_classes or 10
  o.in_channels = o.in_channels or 1
  o.width = o.width or 16
  o.stem = "small"
  return ResNet(BasicBlock, layers, o)
end

return M
