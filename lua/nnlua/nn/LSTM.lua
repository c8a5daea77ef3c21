-- LSTM.lua: long short-term memory (gates i, f, g, o in PyTorch's order and layout), one
-- nn.F.lstm node per layer over the whole sequence, backpropagation through time in C.
local RNNBase = require "nnlua.nn._RNNBase"

local LSTM = RNNBase:extend("LSTM")

--- LSTM(input_size, hidden_size, {num_layers = 1, bias = true, batch_first = false, dropout = 0});
--- forward(x, {h0, c0}) -> output, {h_n, c_n}, the states of size (num_layers, N, H)
function LSTM:init(input_size, hidden_size, opts)
  RNNBase.init(self, "LSTM", input_size, hidden_size, opts)
end

return LSTM
