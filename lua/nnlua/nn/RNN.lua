-- RNN.lua: Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), one
-- nn.F.rnn node per layer over the whole sequence. Parameters and init as in PyTorch.
local RNNBase = require "nnlua.nn._RNNBase"

local RNN = RNNBase:extend("RNN")

--- RNN(input_size, hidden_size, {num_layers = 1, nonlinearity = "tanh", bias = true,
---     batch_first = false, dropout = 0}); forward(x, h0) -> output, h_n (num_layers, N, H)
function RNN:init(input_size, hidden_size, opts)
  local nl = type(opts) == "table" and opts.nonlinearity or "tanh"
  if nl ~= "tanh" and nl ~= "relu" then
    error("RNN: nonlinearity must be 'tanh' or 'relu', got " .. tostring(nl), 3)
  end
  self.nonlinearity = nl
  RNNBase.init(self, nl == "relu" and "RNN_RELU" or "RNN_TANH", input_size, hidden_size, opts)
end

return RNN
