-- nn/init.lua: the module classes (nn.Linear, nn.Sequential, ...). `names` lists them so that
-- nnlua/init.lua can load each on first use; indexing this table loads a class too.
local names = {
  "Module", "Parameter", "Sequential", "ModuleList",
  "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d",
  "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Dropout", "Flatten",
  "Identity", "CrossEntropyLoss", "MSELoss",
  "Embedding", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
}

local classes = { names = names }
local known = {}
for _, n in ipairs(names) do known[n] = true end

return setmetatable(classes, {
  __index = function(t, k)
    if not known[k] then return nil end
    local c = require("nnlua.nn." .. k)
    rawset(t, k, c)
    return c
  end,
})
