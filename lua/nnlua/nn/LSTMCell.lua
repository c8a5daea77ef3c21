-- LSTMCell.lua: one LSTM step (gates i, f, g, o, PyTorch's layout) as one nn.F.lstm_cell node:
-- the decoder of a captioner feeding its own samples back runs this once per word.
local RNNCellBase = require "nnlua.nn._RNNCellBase"

local LSTMCell = RNNCellBase:extend("LSTMCell")

--- LSTMCell(input_size, hidden_size, {bias = true}); forward(x, {h, c}) -> h', c'
function LSTMCell:init(input_size, hidden_size, opts)
  RNNCellBase.init(self, "LSTM", input_size, hidden_size, opts)
end

return LSTMCell
