-- models/init.lua: nn.models, ready-made networks: resnet18, resnet34 and resnet_small
-- (models/resnet.lua); each constructor takes an option table ({num_classes = 2}).
local resnet = require "nnlua.models.resnet"

local models = {
  ResNet = resnet.ResNet,
  BasicBlock = resnet.BasicBlock,
  resnet18 = resnet.resnet18,
  resnet34 = resnet.resnet34,
  resnet_small = resnet.resnet_small,
  Captioner = require "nnlua.models.captioning", -- image captioning (models/captioning.lua)
}

return models
