-- _RNNCellBase.lua: what nn.RNNCell, nn.LSTMCell and nn.GRUCell share: one step of the layer as
-- one nn.F node, parameters weight_ih, weight_hh, bias_ih, bias_hh with PyTorch's layout and init.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---What nn.RNNCell, nn.LSTMCell and nn.GRUCell share: one step as one nn.F node, parameters
---weight_ih, weight_hh, bias_ih, bias_hh with PyTorch's layout and initialisation.
---@class nn.RNNCellBase : nn.Module
---@field mode string "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
---@field input_size integer
---@field hidden_size integer
local RNNCellBase = Module:extend("RNNCellBase")

local GATES = { RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3 }

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

---Set up the cell (subclasses pick the mode).
---@param mode string "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
---@param input_size integer features of x
---@param hidden_size integer features of h
---@param opts? {bias?: boolean, nonlinearity?: "tanh"|"relu"} bias default true; nonlinearity: RNNCell only
function RNNCellBase:init(mode, input_size, hidden_size, opts)
  local name = self.__name
  opts = opts or {}
  if type(opts) ~= "table" then error(name .. ": options must be a table, got " .. type(opts), 4) end
  for k in pairs(opts) do
    if k ~= "bias" and not (k == "nonlinearity" and name == "RNNCell") then
      error(string.format("%s: unknown option '%s'", name, tostring(k)), 4)
    end
  end
  if math.type(input_size) ~= "integer" or math.type(hidden_size) ~= "integer"
      or input_size < 1 or hidden_size < 1 then
    error(string.format("%s: input_size and hidden_size must be positive integers, got %s and %s",
                        name, tostring(input_size), tostring(hidden_size)), 4)
  end
  self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
  self.bias = opts.bias ~= false
  local gh = GATES[mode] * hidden_size
  self.weight_ih = nn.Parameter(nn.empty(gh, input_size))
  self.weight_hh = nn.Parameter(nn.empty(gh, hidden_size))
  if self.bias then
    self.bias_ih = nn.Parameter(nn.empty(gh))
    self.bias_hh = nn.Parameter(nn.empty(gh))
  end
  self:reset_parameters()
end

---Draw every weight and bias from U(-1/√hidden_size, 1/√hidden_size), as PyTorch.
function RNNCellBase:reset_parameters()
  local stdv = 1 / math.sqrt(self.hidden_size)
  for _, p in ipairs(self:parameters({ recurse = false })) do init.uniform_(p, -stdv, stdv) end
end

---One step.
---@param x Tensor (N, input_size) or (input_size)
---@param hx? Tensor|Tensor[] h (N, H), {h, c} for the LSTM cell, or nil for zeros
---@return Tensor h the new hidden state
---@return Tensor|nil c the new cell state (LSTMCell)
function RNNCellBase:forward(x, hx)
  local name = self.__name
  if not nn.is_tensor(x) then error(name .. ": input must be a tensor, got " .. type(x), 3) end
  if (x:dim() ~= 1 and x:dim() ~= 2) or x:size(x:dim()) ~= self.input_size then
    error(string.format("%s: input must be (batch, %d) or (%d), got %s", name, self.input_size,
                        self.input_size, shape_str(x)), 3)
  end
  local F = nn.F
  if self.mode == "LSTM" then
    local h, c
    if hx ~= nil then
      if type(hx) ~= "table" or nn.is_tensor(hx) then
        error(name .. ": the state must be a table {h, c}, got " .. type(hx), 3)
      end
      h, c = hx[1], hx[2]
    end
    return F.lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
  elseif self.mode == "GRU" then
    return F.gru_cell(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
  end
  return F.rnn_cell(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                    { nonlinearity = self.nonlinearity })
end

---The sizes and options print(layer) shows.
---@return string
function RNNCellBase:extra_repr()
  local s = string.format("%d, %d", self.input_size, self.hidden_size)
  if not self.bias then s = s .. ", bias=false" end
  if self.nonlinearity == "relu" then s = s .. ", nonlinearity=relu" end
  return s
end

return RNNCellBase
