-- optim/init.lua: nn.optim: the optimizers (SGD, Adam, AdamW, RMSprop) and the learning-rate
-- schedulers, also under nn.optim.lr_scheduler as in PyTorch.
local lr_scheduler = require "nnlua.optim.lr_scheduler"

return {
  Optimizer = require "nnlua.optim.Optimizer",
  SGD = require "nnlua.optim.SGD",
  Adam = require "nnlua.optim.Adam",
  AdamW = require "nnlua.optim.AdamW",
  RMSprop = require "nnlua.optim.RMSprop",
  lr_scheduler = lr_scheduler,
  StepLR = lr_scheduler.StepLR,
  MultiStepLR = lr_scheduler.MultiStepLR,
  ExponentialLR = lr_scheduler.ExponentialLR,
  CosineAnnealingLR = lr_scheduler.CosineAnnealingLR,
}
