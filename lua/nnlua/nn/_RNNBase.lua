-- _RNNBase.lua: what nn.RNN, nn.LSTM and nn.GRU share: PyTorch's parameters (weight_ih_l0,
-- weight_hh_l0, bias_ih_l0, bias_hh_l0, then _l1 ...) and init, one nn.F op per layer, stacked.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---What nn.RNN, nn.LSTM and nn.GRU share: PyTorch's parameters weight_ih_l<k>, weight_hh_l<k>,
---bias_ih_l<k>, bias_hh_l<k> per layer k = 0.. and their initialisation, one nn.F op per layer.
---@class nn.RNNBase : nn.Module
---@field mode string "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
---@field input_size integer
---@field hidden_size integer
---@field num_layers integer
---@field batch_first boolean
---@field dropout number
local RNNBase = Module:extend("RNNBase")

local GATES = { RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3 }
local OPTIONS = { num_layers = true, bias = true, batch_first = true, dropout = true,
                  bidirectional = true, nonlinearity = true }

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

---Options of nn.RNN, nn.LSTM and nn.GRU (PyTorch's defaults).
---@class nn.RNN.opts
---@field num_layers? integer stacked layers (default 1)
---@field bias? boolean (default true)
---@field batch_first? boolean input and output are (N, T, ...) (default false: (T, N, ...))
---@field dropout? number dropout between layers while training (default 0)
---@field nonlinearity? "tanh"|"relu" nn.RNN only (default "tanh")

---Set up the layer (subclasses pick the mode).
---@param mode string "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
---@param input_size integer features of each x_t
---@param hidden_size integer features of each h_t
---@param opts? nn.RNN.opts
function RNNBase:init(mode, input_size, hidden_size, opts)
  local name = self.__name
  opts = opts or {}
  if type(opts) ~= "table" then error(name .. ": options must be a table, got " .. type(opts), 4) end
  for k in pairs(opts) do
    if not OPTIONS[k] or (k == "nonlinearity" and name ~= "RNN") then
      error(string.format("%s: unknown option '%s'", name, tostring(k)), 4)
    end
  end
  if math.type(input_size) ~= "integer" or math.type(hidden_size) ~= "integer"
      or input_size < 1 or hidden_size < 1 then
    error(string.format("%s: input_size and hidden_size must be positive integers, got %s and %s",
                        name, tostring(input_size), tostring(hidden_size)), 4)
  end
  local num_layers = opts.num_layers or 1
  if math.type(num_layers) ~= "integer" or num_layers < 1 then
    error(name .. ": num_layers must be a positive integer, got " .. tostring(num_layers), 4)
  end
  local dropout = opts.dropout or 0
  if type(dropout) ~= "number" or dropout < 0 or dropout > 1 then
    error(name .. ": dropout must be a number between 0 and 1, got " .. tostring(dropout), 4)
  end
  if opts.bidirectional then error(name .. ": bidirectional layers are not supported", 4) end
  self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
  self.num_layers, self.dropout = num_layers, dropout
  self.bias, self.batch_first = opts.bias ~= false, opts.batch_first == true
  local gh = GATES[mode] * hidden_size
  for l = 0, num_layers - 1 do
    local d = l == 0 and input_size or hidden_size
    self["weight_ih_l" .. l] = nn.Parameter(nn.empty(gh, d))
    self["weight_hh_l" .. l] = nn.Parameter(nn.empty(gh, hidden_size))
    if self.bias then
      self["bias_ih_l" .. l] = nn.Parameter(nn.empty(gh))
      self["bias_hh_l" .. l] = nn.Parameter(nn.empty(gh))
    end
  end
  self:reset_parameters()
end

---Draw every weight and bias from U(-1/√hidden_size, 1/√hidden_size), as PyTorch.
function RNNBase:reset_parameters()
  local stdv = 1 / math.sqrt(self.hidden_size)
  for _, p in ipairs(self:parameters({ recurse = false })) do init.uniform_(p, -stdv, stdv) end
end

-- A state argument must be (num_layers, N, H), or (num_layers, H) for an unbatched input.
local function check_state(self, s, what, x)
  if s == nil then return end
  if not nn.is_tensor(s) then
    error(string.format("%s: %s must be a tensor, got %s", self.__name, what, type(s)), 4)
  end
  local want = { self.num_layers, self.hidden_size }
  if x:dim() == 3 then table.insert(want, 2, x:size(self.batch_first and 1 or 2)) end
  if shape_str(s) ~= "[" .. table.concat(want, ",") .. "]" then
    error(string.format("%s: expected %s of size [%s] (num_layers, %shidden_size), got %s", self.__name,
                        what, table.concat(want, ","), x:dim() == 3 and "batch, " or "", shape_str(s)), 4)
  end
end

---Run the layers over a whole sequence.
---@param x Tensor (T, N, input_size); (N, T, input_size) with batch_first; unbatched (T, input_size)
---@param hx? Tensor|Tensor[] h0 (num_layers, N, H), {h0, c0} for the LSTM, or nil for zeros
---@return Tensor output every h_t of the last layer, laid out as x with H features
---@return Tensor|Tensor[] h_n the last states (num_layers, N, H); {h_n, c_n} for the LSTM
function RNNBase:forward(x, hx)
  local name, lstm = self.__name, self.mode == "LSTM"
  if not nn.is_tensor(x) then error(name .. ": input must be a tensor, got " .. type(x), 3) end
  if x:dim() ~= 2 and x:dim() ~= 3 then
    error(string.format("%s: input must be 3-D %s or 2-D (seq_len, input_size), got %s", name,
                        self.batch_first and "(batch, seq_len, input_size)" or "(seq_len, batch, input_size)",
                        shape_str(x)), 3)
  end
  if x:size(-1) ~= self.input_size then
    error(string.format("%s: input %s has %d features, expected input_size = %d", name, shape_str(x),
                        x:size(-1), self.input_size), 3)
  end
  local h0, c0 = hx, nil
  if lstm and hx ~= nil then
    if type(hx) ~= "table" or nn.is_tensor(hx) then
      error(name .. ": the initial state must be a table {h0, c0}, got " .. type(hx), 3)
    end
    h0, c0 = hx[1], hx[2]
  end
  check_state(self, h0, "h0", x)
  check_state(self, c0, "c0", x)
  local F, out, hs, cs = nn.F, x, {}, {}
  local fopts = { batch_first = self.batch_first }
  for l = 1, self.num_layers do
    local i = l - 1
    local wih, whh = self["weight_ih_l" .. i], self["weight_hh_l" .. i]
    local bih, bhh = self["bias_ih_l" .. i], self["bias_hh_l" .. i]
    local h, c = h0 and h0[l], c0 and c0[l]
    if lstm then
      out, hs[l], cs[l] = F.lstm(out, h, c, wih, whh, bih, bhh, fopts)
    elseif self.mode == "GRU" then
      out, hs[l] = F.gru(out, h, wih, whh, bih, bhh, fopts)
    else
      out, hs[l] = F.rnn(out, h, wih, whh, bih, bhh,
                         { batch_first = self.batch_first, nonlinearity = self.nonlinearity })
    end
    if self.dropout > 0 and self.training and l < self.num_layers then
      out = F.dropout(out, self.dropout, true)
    end
  end
  local h_n = nn.stack(hs, 1)
  if lstm then return out, { h_n, nn.stack(cs, 1) } end
  return out, h_n
end

---The sizes and options print(layer) shows.
---@return string
function RNNBase:extra_repr()
  local s = string.format("%d, %d", self.input_size, self.hidden_size)
  if self.nonlinearity == "relu" then s = s .. ", nonlinearity=relu" end
  if self.num_layers ~= 1 then s = s .. ", num_layers=" .. self.num_layers end
  if not self.bias then s = s .. ", bias=false" end
  if self.batch_first then s = s .. ", batch_first=true" end
  if self.dropout ~= 0 then s = s .. string.format(", dropout=%g", self.dropout) end
  return s
end

return RNNBase
