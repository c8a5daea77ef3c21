-- GRUCell.lua: one GRU step (gates r, z, n, PyTorch's formulas and layout) as one nn.F.gru_cell
-- node.
local RNNCellBase = require "nnlua.nn._RNNCellBase"

local GRUCell = RNNCellBase:extend("GRUCell")

--- GRUCell(input_size, hidden_size, {bias = true}); forward(x, h) -> h'
function GRUCell:init(input_size, hidden_size, opts)
  RNNCellBase.init(self, "GRU", input_size, hidden_size, opts)
end

return GRUCell
