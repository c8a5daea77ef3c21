-- GRU.lua: gated recurrent unit (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
-- PyTorch's formulas and layout), one nn.F.gru node per layer over the whole sequence.
local RNNBase = require "nnlua.nn._RNNBase"

local GRU = RNNBase:extend("GRU")

--- GRU(input_size, hidden_size, {num_layers = 1, bias = true, batch_first = false, dropout = 0});
--- forward(x, h0) -> output, h_n (num_layers, N, H)
function GRU:init(input_size, hidden_size, opts)
  RNNBase.init(self, "GRU", input_size, hidden_size, opts)
end

return GRU
