-- RNNCell.lua: one step of the Elman RNN, h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu),
-- as one nn.F.rnn_cell node. Parameters and init as in PyTorch.
local RNNCellBase = require "nnlua.nn._RNNCellBase"

---One step of an Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu), as one
---nn.F.rnn_cell node; forward(x, h) -> h'.
---@class nn.RNNCell : nn.RNNCellBase
local RNNCell = RNNCellBase:extend("RNNCell")

---nn.RNNCell(input_size, hidden_size, opts)
---@param input_size integer features of x
---@param hidden_size integer features of h
---@param opts? {bias?: boolean, nonlinearity?: "tanh"|"relu"} bias default true
function RNNCell:init(input_size, hidden_size, opts)
  local nl = type(opts) == "table" and opts.nonlinearity or "tanh"
  if nl ~= "tanh" and nl ~= "relu" then
    error("RNNCell: nonlinearity must be 'tanh' or 'relu', got " .. tostring(nl), 3)
  end
  self.nonlinearity = nl
  RNNCellBase.init(self, nl == "relu" and "RNN_RELU" or "RNN_TANH", input_size, hidden_size, opts)
end

return RNNCell
