-- LSTMCell.lua: one LSTM step (gates i, f, g, o, PyTorch's layout) as one nn.F.lstm_cell node:
-- the decoder of a captioner feeding its own samples back runs this once per word.
local RNNCellBase = require "nnlua.nn._RNNCellBase"

---One LSTM step (gates i, f, g, o, PyTorch's layout) as one nn.F.lstm_cell node; forward(x, {h, c})
---> h', c'. A captioner's decoder feeding its own samples back runs it once per word.
---@class nn.LSTMCell : nn.RNNCellBase
local LSTMCell = RNNCellBase:extend("LSTMCell")

---nn.LSTMCell(input_size, hidden_size, opts)
---@param input_size integer features of x
---@param hidden_size integer features of h
---@param opts? {bias?: boolean} bias default true
function LSTMCell:init(input_size, hidden_size, opts)
  RNNCellBase.init(self, "LSTM", input_size, hidden_size, opts)
end

return LSTMCell
