-- GRUCell.lua: one GRU step (gates r, z, n, PyTorch's formulas and layout) as one nn.F.gru_cell
-- node.
local RNNCellBase = require "nnlua.nn._RNNCellBase"

---One GRU step (gates r, z, n, PyTorch's formulas and layout) as one nn.F.gru_cell node;
---forward(x, h) -> h'.
---@class nn.GRUCell : nn.RNNCellBase
local GRUCell = RNNCellBase:extend("GRUCell")

---nn.GRUCell(input_size, hidden_size, opts)
---@param input_size integer features of x
---@param hidden_size integer features of h
---@param opts? {bias?: boolean} bias default true
function GRUCell:init(input_size, hidden_size, opts)
  RNNCellBase.init(self, "GRU", input_size, hidden_size, opts)
end

return GRUCell
