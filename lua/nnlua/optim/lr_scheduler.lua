-- lr_scheduler.lua: learning-rate schedules that set opt.param_groups[i].lr once per epoch,
-- with PyTorch's closed forms: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR.
local M = {}

---The base of the learning-rate schedules: each step() (once per epoch) sets every group's lr of
---its optimizer from the schedule's closed form, as torch.optim.lr_scheduler.
---@class nn.optim.LRScheduler
---@field optimizer nn.optim.Optimizer
---@field base_lrs number[] the initial rate of each group
---@field last_epoch integer the epoch of the rates now set (0 after construction)
local LRScheduler = {}
LRScheduler.__index = LRScheduler
LRScheduler.__name = "LRScheduler"

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  self:init(...)
  return self
end

---Make a schedule class: define init (calling LRScheduler.init) and closed_form(base, epoch).
---@param name string the class name
---@return table class
function LRScheduler:extend(name)
  local cls = { __name = name, super = self }
  cls.__index = cls
  return setmetatable(cls, { __index = self, __call = construct })
end
M.LRScheduler = LRScheduler

local function check_options(name, opts, known, required)
  if opts ~= nil and type(opts) ~= "table" then error(name .. ": options must be a table", 4) end
  opts = opts or {}
  for k in pairs(opts) do
    if not known[k] then error(string.format("%s: unknown option '%s'", name, tostring(k)), 4) end
  end
  for _, k in ipairs(required or {}) do
    if opts[k] == nil then error(string.format("%s: option %s is required", name, k), 4) end
  end
  return opts
end

---Common setup of the schedules: base_lrs from each group's initial_lr (set from lr when starting
---fresh); a subclass then calls step() once, putting the epoch-0 rate in place as PyTorch does.
---@param optimizer nn.optim.Optimizer the optimizer whose rates to set
---@param opts? table the schedule's options (last_epoch = -1 by default: start fresh)
---@param known? table<string, boolean> the option names the subclass accepts
---@param required? string[] the options it requires
---@return table opts the options, checked
function LRScheduler:init(optimizer, opts, known, required)
  local name = self.__name
  if type(optimizer) ~= "table" or type(optimizer.param_groups) ~= "table" then
    error(name .. ": an optimizer (with param_groups) is expected as the first argument", 3)
  end
  known = known or {}
  known.last_epoch = true
  opts = check_options(name, opts, known, required)
  self.optimizer = optimizer
  local last_epoch = opts.last_epoch or -1
  for i, g in ipairs(optimizer.param_groups) do
    if last_epoch == -1 then
      if g.initial_lr == nil then g.initial_lr = g.lr end
    elseif g.initial_lr == nil then
      error(string.format("%s: param 'initial_lr' is not specified in param_groups[%d] when resuming an optimizer",
                          name, i), 3)
    end
  end
  self.base_lrs = {}
  for i, g in ipairs(optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  return opts
end

---Advance one epoch and set every group's lr to the schedule's value (call it once per epoch).
function LRScheduler:step()
  self.last_epoch = self.last_epoch + 1
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    lrs[i] = self:closed_form(self.base_lrs[i], self.last_epoch)
    g.lr = lrs[i]
  end
  self._last_lr = lrs
end

---The rates last set, one per parameter group.
---@return number[] lrs
function LRScheduler:get_last_lr()
  return table.move(self._last_lr, 1, #self._last_lr, 1, {})
end

---The schedule's state: every field but the optimizer (numbers and lists of numbers).
---@return table sd
function LRScheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" then sd[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v end
  end
  return sd
end

---Restore the state from state_dict() (when resuming).
---@param sd table
function LRScheduler:load_state_dict(sd)
  if type(sd) ~= "table" then error(self.__name .. ".load_state_dict: table expected", 2) end
  for k, v in pairs(sd) do
    if k ~= "optimizer" then self[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v end
  end
end

local function positive_int(name, k, v)
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("%s: %s must be a positive integer, got %s", name, k, tostring(v)), 4)
  end
end

local function number(name, k, v)
  if type(v) ~= "number" then error(string.format("%s: %s must be a number, got %s", name, k, tostring(v)), 4) end
end

---Decay the rate by gamma every step_size epochs: lr = base * gamma ^ floor(epoch / step_size).
---@class nn.optim.StepLR : nn.optim.LRScheduler
local StepLR = LRScheduler:extend("StepLR")
---nn.optim.StepLR(optimizer, {step_size = 7, gamma = 0.1})
---@param optimizer nn.optim.Optimizer
---@param opts {step_size: integer, gamma?: number, last_epoch?: integer} step_size required; gamma default 0.1
function StepLR:init(optimizer, opts)
  opts = LRScheduler.init(self, optimizer, opts, { step_size = true, gamma = true }, { "step_size" })
  positive_int("StepLR", "step_size", opts.step_size)
  self.step_size, self.gamma = opts.step_size, opts.gamma or 0.1
  number("StepLR", "gamma", self.gamma)
  self:step()
end
---The learning rate of a group at an epoch (the schedule's closed form).
---@param base number the group's initial learning rate
---@param epoch integer the epoch (0 first)
---@return number lr
function StepLR:closed_form(base, epoch)
  return base * self.gamma ^ (epoch // self.step_size)
end
M.StepLR = StepLR

---Decay the rate by gamma at each milestone epoch: lr = base * gamma ^ (milestones <= epoch).
---@class nn.optim.MultiStepLR : nn.optim.LRScheduler
local MultiStepLR = LRScheduler:extend("MultiStepLR")
---nn.optim.MultiStepLR(optimizer, {milestones = {30, 80}, gamma = 0.1})
---@param optimizer nn.optim.Optimizer
---@param opts {milestones: integer[], gamma?: number, last_epoch?: integer} gamma default 0.1
function MultiStepLR:init(optimizer, opts)
  opts = LRScheduler.init(self, optimizer, opts, { milestones = true, gamma = true }, { "milestones" })
  if type(opts.milestones) ~= "table" then error("MultiStepLR: milestones must be a list of epochs", 3) end
  local ms = {}
  for i, m in ipairs(opts.milestones) do
    if math.type(m) ~= "integer" then error("MultiStepLR: milestones must be integers, got " .. tostring(m), 3) end
    ms[i] = m
  end
  table.sort(ms)
  self.milestones, self.gamma = ms, opts.gamma or 0.1
  number("MultiStepLR", "gamma", self.gamma)
  self:step()
end
---The learning rate of a group at an epoch (the schedule's closed form).
---@param base number the group's initial learning rate
---@param epoch integer the epoch (0 first)
---@return number lr
function MultiStepLR:closed_form(base, epoch)
  local n = 0
  for _, m in ipairs(self.milestones) do
    if m <= epoch then n = n + 1 end
  end
  return base * self.gamma ^ n
end
M.MultiStepLR = MultiStepLR

---Decay the rate by gamma every epoch: lr = base * gamma ^ epoch.
---@class nn.optim.ExponentialLR : nn.optim.LRScheduler
local ExponentialLR = LRScheduler:extend("ExponentialLR")
---nn.optim.ExponentialLR(optimizer, {gamma = 0.95})
---@param optimizer nn.optim.Optimizer
---@param opts {gamma: number, last_epoch?: integer}
function ExponentialLR:init(optimizer, opts)
  opts = LRScheduler.init(self, optimizer, opts, { gamma = true }, { "gamma" })
  number("ExponentialLR", "gamma", opts.gamma)
  self.gamma = opts.gamma
  self:step()
end
---The learning rate of a group at an epoch (the schedule's closed form).
---@param base number the group's initial learning rate
---@param epoch integer the epoch (0 first)
---@return number lr
function ExponentialLR:closed_form(base, epoch)
  return base * self.gamma ^ epoch
end
M.ExponentialLR = ExponentialLR

---Cosine decay from the base rate to eta_min over T_max epochs:
---lr = eta_min + (base - eta_min) * (1 + cos(π epoch / T_max)) / 2.
---@class nn.optim.CosineAnnealingLR : nn.optim.LRScheduler
local CosineAnnealingLR = LRScheduler:extend("CosineAnnealingLR")
---nn.optim.CosineAnnealingLR(optimizer, {T_max = 20, eta_min = 0})
---@param optimizer nn.optim.Optimizer
---@param opts {T_max: integer, eta_min?: number, last_epoch?: integer}
function CosineAnnealingLR:init(optimizer, opts)
  opts = LRScheduler.init(self, optimizer, opts, { T_max = true, eta_min = true }, { "T_max" })
  positive_int("CosineAnnealingLR", "T_max", opts.T_max)
  self.T_max, self.eta_min = opts.T_max, opts.eta_min or 0
  number("CosineAnnealingLR", "eta_min", self.eta_min)
  self:step()
end
---The learning rate of a group at an epoch (the schedule's closed form).
---@param base number the group's initial learning rate
---@param epoch integer the epoch (0 first)
---@return number lr
function CosineAnnealingLR:closed_form(base, epoch)
  return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
end
M.CosineAnnealingLR = CosineAnnealingLR

return M
