-- Flatten.lua: merges dims start_dim..end_dim into one (a view when possible).
-- Flatten(start_dim = 2, end_dim = -1) or Flatten{start_dim =, end_dim =}: keeps the batch dim.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---Merge dimensions start_dim..end_dim into one (a view when possible); by default everything but
---the batch dimension: (N, C, H, W) -> (N, C*H*W).
---@class nn.Flatten : nn.Module
---@field start_dim integer
---@field end_dim integer
local Flatten = Module:extend("Flatten")

---nn.Flatten(start_dim, end_dim) or nn.Flatten{start_dim =, end_dim =}
---@param start_dim? integer|{start_dim?: integer, end_dim?: integer} first dimension merged (default 2)
---@param end_dim? integer last dimension merged (default -1, the last)
function Flatten:init(start_dim, end_dim)
  if type(start_dim) == "table" then start_dim, end_dim = start_dim.start_dim, start_dim.end_dim end
  start_dim, end_dim = start_dim or 2, end_dim or -1
  if math.type(start_dim) ~= "integer" or math.type(end_dim) ~= "integer" then
    error("Flatten: start_dim and end_dim must be integers", 3)
  end
  self.start_dim, self.end_dim = start_dim, end_dim
end

---Flatten x.
---@param x Tensor
---@return Tensor
function Flatten:forward(x)
  local F = nn.F
  if F and F.flatten then return F.flatten(x, self.start_dim, self.end_dim) end
  return x:flatten(self.start_dim, self.end_dim)
end

---The sizes and options print(layer) shows.
---@return string
function Flatten:extra_repr() return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim) end

return Flatten
