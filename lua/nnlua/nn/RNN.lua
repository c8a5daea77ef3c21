-- RNN.lua: Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), one
-- nn.F.rnn node per layer over the whole sequence. Parameters and init as in PyTorch.
local RNNBase = require "nnlua.nn._RNNBase"

---An Elman RNN over whole sequences, h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh) (or relu),
---one nn.F.rnn node per layer; forward(x, h0) -> output, h_n.
---@class nn.RNN : nn.RNNBase
local RNN = RNNBase:extend("RNN")

---nn.RNN(input_size, hidden_size, opts)
---@param input_size integer features of each x_t
---@param hidden_size integer features of each h_t
---@param opts? nn.RNN.opts
function RNN:init(input_size, hidden_size, opts)
  local nl = type(opts) == "table" and opts.nonlinearity or "tanh"
  if nl ~= "tanh" and nl ~= "relu" then
    error("RNN: nonlinearity must be 'tanh' or 'relu', got " .. tostring(nl), 3)
  end
  self.nonlinearity = nl
  RNNBase.init(self, nl == "relu" and "RNN_RELU" or "RNN_TANH", input_size, hidden_size, opts)
end

return RNN
