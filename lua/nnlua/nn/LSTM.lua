-- LSTM.lua: long short-term memory (gates i, f, g, o in PyTorch's order and layout), one
-- nn.F.lstm node per layer over the whole sequence, backpropagation through time in C.
local RNNBase = require "nnlua.nn._RNNBase"

---A long short-term memory layer (gates i, f, g, o in PyTorch's order and layout), one nn.F.lstm
---node per layer; forward(x, {h0, c0}) -> output, {h_n, c_n}.
---@class nn.LSTM : nn.RNNBase
local LSTM = RNNBase:extend("LSTM")

---nn.LSTM(input_size, hidden_size, opts)
---@param input_size integer features of each x_t
---@param hidden_size integer features of each h_t
---@param opts? nn.RNN.opts
function LSTM:init(input_size, hidden_size, opts)
  RNNBase.init(self, "LSTM", input_size, hidden_size, opts)
end

return LSTM
