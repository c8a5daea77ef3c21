-- Conv2d.lua: 2-d convolution, weight [out_channels, in_channels / groups, kh, kw] (PyTorch's
-- layout), PyTorch's default initialisation. The work is nn.F.conv2d (im2col + sgemm in C).
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---A 2-d convolution layer over (N, C_in, H, W) inputs (nn.F.conv2d: im2col + sgemm in C), with
---PyTorch's weight layout and initialisation.
---@class nn.Conv2d : nn.Module
---@field weight Tensor (out_channels, in_channels / groups, kh, kw)
---@field bias Tensor|nil (out_channels); nil with bias = false
---@field in_channels integer
---@field out_channels integer
---@field kernel_size integer[] {kh, kw}
---@field stride integer[] {sh, sw}
---@field padding integer[]|string {ph, pw}, or "same" / "valid"
---@field dilation integer[] {dh, dw}
---@field groups integer
local Conv2d = Module:extend("Conv2d")

local function pair(name, v, default)
  if v == nil then v = default end
  if math.type(v) == "integer" then return { v, v } end
  if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return { v[1], v[2] }
  end
  error(string.format("Conv2d: %s must be an integer or a pair {h, w} of integers, got %s", name, tostring(v)), 4)
end

---Options of nn.Conv2d; sizes are an integer n (n x n) or a pair {h, w}.
---@class nn.Conv2d.opts
---@field stride? integer|integer[] step of the window (default 1)
---@field padding? integer|integer[]|"same"|"valid" zeros added on each side (default 0); "same" keeps H x W (stride 1)
---@field dilation? integer|integer[] spacing of the kernel taps (default 1)
---@field groups? integer split channels into groups convolved separately (default 1)
---@field bias? boolean false: no bias (default true)

---nn.Conv2d(in_channels, out_channels, kernel_size, opts): a new layer.
---@param in_channels integer channels of the input
---@param out_channels integer channels of the output (number of filters)
---@param kernel_size integer|integer[] n or {kh, kw}
---@param opts? nn.Conv2d.opts
function Conv2d:init(in_channels, out_channels, kernel_size, opts)
  opts = opts or {}
  if math.type(in_channels) ~= "integer" or math.type(out_channels) ~= "integer"
      or in_channels < 1 or out_channels < 1 then
    error(string.format("Conv2d: in_channels and out_channels must be positive integers, got %s and %s",
                        tostring(in_channels), tostring(out_channels)), 3)
  end
  local groups = opts.groups or 1
  if math.type(groups) ~= "integer" or groups < 1 then
    error("Conv2d: groups must be a positive integer, got " .. tostring(groups), 3)
  end
  if in_channels % groups ~= 0 or out_channels % groups ~= 0 then
    error(string.format("Conv2d: in_channels (%d) and out_channels (%d) must both be divisible by groups (%d)",
                        in_channels, out_channels, groups), 3)
  end
  self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
  self.kernel_size = pair("kernel_size", kernel_size)
  self.stride = pair("stride", opts.stride, 1)
  if opts.padding == "same" or opts.padding == "valid" then
    self.padding = opts.padding -- nn.F.conv2d works out the amounts
  else
    self.padding = pair("padding", opts.padding, 0)
  end
  self.dilation = pair("dilation", opts.dilation, 1)
  local k = self.kernel_size
  self.weight = nn.Parameter(nn.empty(out_channels, in_channels // groups, k[1], k[2]))
  if opts.bias ~= false then self.bias = nn.Parameter(nn.empty(out_channels)) end
  self:reset_parameters()
end

---Draw new weights and bias (PyTorch's initialisation: kaiming_uniform_(a = √5)).
function Conv2d:reset_parameters()
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias then
    local fan_in = init.calculate_fan_in_and_fan_out(self.weight)
    local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
    init.uniform_(self.bias, -bound, bound)
  end
end

---Apply the convolution.
---@param x Tensor (N, in_channels, H, W)
---@return Tensor y (N, out_channels, H_out, W_out)
function Conv2d:forward(x)
  return nn.F.conv2d(x, self.weight, self.bias,
                     { stride = self.stride, padding = self.padding, dilation = self.dilation, groups = self.groups })
end

local function tuple(p) return "(" .. p[1] .. ", " .. p[2] .. ")" end

---The sizes and options print(layer) shows.
---@return string
function Conv2d:extra_repr()
  local s = string.format("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
                          tuple(self.kernel_size), tuple(self.stride))
  local p = self.padding
  if type(p) == "string" then s = s .. ", padding=" .. p
  elseif p[1] ~= 0 or p[2] ~= 0 then s = s .. ", padding=" .. tuple(p) end
  if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then s = s .. ", dilation=" .. tuple(self.dilation) end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if not self.bias then s = s .. ", bias=false" end
  return s
end

return Conv2d
