-- GRU.lua: gated recurrent unit (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
-- PyTorch's formulas and layout), one nn.F.gru node per layer over the whole sequence.
local RNNBase = require "nnlua.nn._RNNBase"

---A gated recurrent unit layer (gates r, z, n, PyTorch's formulas and layout), one nn.F.gru node
---per layer; forward(x, h0) -> output, h_n.
---@class nn.GRU : nn.RNNBase
local GRU = RNNBase:extend("GRU")

---nn.GRU(input_size, hidden_size, opts)
---@param input_size integer features of each x_t
---@param hidden_size integer features of each h_t
---@param opts? nn.RNN.opts
function GRU:init(input_size, hidden_size, opts)
  RNNBase.init(self, "GRU", input_size, hidden_size, opts)
end

return GRU
