-- LogSoftmax.lua: log(softmax(x)) along dim, computed stably (nn.F.log_softmax).
-- LogSoftmax(dim); dim is 1-based, negative counts from the end; default -1 (the last).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"

---log(softmax(x)) along dim, computed stably (nn.F.log_softmax).
---@class nn.LogSoftmax : nn.Module
---@field dim integer
local LogSoftmax = Module:extend("LogSoftmax")

---nn.LogSoftmax(dim)
---@param dim? integer 1-based, negative from the end (default -1, the last)
function LogSoftmax:init(dim)
  if dim ~= nil and math.type(dim) ~= "integer" then error("LogSoftmax: dim must be an integer, got " .. tostring(dim), 3) end
  self.dim = dim or -1
end

---Apply along dim.
---@param x Tensor
---@return Tensor
function LogSoftmax:forward(x) return nn.F.log_softmax(x, self.dim) end

---The sizes and options print(layer) shows.
---@return string
function LogSoftmax:extra_repr() return "dim=" .. self.dim end

return LogSoftmax
