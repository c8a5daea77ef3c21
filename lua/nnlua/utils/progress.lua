-- nnlua.utils.progress (nn.progress): a training progress bar. On a terminal it redraws one line
-- in place; otherwise (a log file, a pipe) it prints a plain line at most every few seconds.
local core = require "nnlua.core"

---A training progress bar: nn.progress{total = steps} then bar:update(step, {loss = l}) each step
---and bar:finish(). On a terminal it redraws one line in place (bar, rate, time left); otherwise (a
---log file, a pipe) it prints a plain line at most every interval seconds.
---@class nn.progress
---@overload fun(opts?: nn.progress.opts): nn.progress
local Progress = {}
Progress.__index = Progress
Progress.__name = "Progress"

local function is_tty(out)
  if out ~= io.stdout then return false end
  if core.io and core.io.isatty then return core.io.isatty(1) end
  local term = os.getenv("TERM")
  return term ~= nil and term ~= "" and term ~= "dumb"
end

---A duration as "1:05" or "1:02:03" ("?" when unknown).
---@param s number|nil seconds
---@return string
local function fmt_time(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, s % 3600 // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end
Progress.format_time = fmt_time

---Options of nn.progress.
---@class nn.progress.opts
---@field total? integer steps in the run (for the bar and the time left)
---@field epoch? integer shown as "epoch e/E"
---@field epochs? integer
---@field out? file* where to write (default io.stdout)
---@field tty? boolean redraw in place (default: whether out is a terminal)
---@field interval? number seconds between plain lines (default 5)
---@field width? integer bar width in characters (default 24)
---@field prefix? string text before the bar
---@field clock? fun(): number (default nn.clock)

---A new progress bar (also nn.progress(opts)); its clock starts now.
---@param opts? nn.progress.opts
---@return nn.progress
function Progress.new(opts)
  opts = opts or {}
  local total = opts.total
  if total ~= nil and (math.type(total) ~= "integer" or total < 0) then
    error("progress: total must be a non-negative integer, got " .. tostring(total), 2)
  end
  local out = opts.out or io.stdout
  local tty = opts.tty
  if tty == nil then tty = is_tty(out) end
  local clock = opts.clock or core.clock
  return setmetatable({
    total = total, epoch = opts.epoch, epochs = opts.epochs, out = out, tty = tty,
    interval = opts.interval or 5, width = opts.width or 24, prefix = opts.prefix,
    clock = clock, step = 0, samples = 0, t0 = clock(), last_print = nil,
    stats = {}, drawn = 0,
  }, Progress)
end

---The text for the current state; bar = true includes the [====>   ] bar (terminal form).
---@param bar? boolean
---@return string
function Progress:line(bar)
  local parts = {}
  if self.prefix then parts[#parts + 1] = self.prefix end
  if self.epoch then
    parts[#parts + 1] = self.epochs and ("epoch %d/%d"):format(self.epoch, self.epochs)
      or ("epoch %d"):format(self.epoch)
  end
  local total = self.total
  if bar and total and total > 0 then
    local w = self.width
    local filled = math.floor(w * math.min(self.step, total) / total)
    parts[#parts + 1] = filled >= w and "[" .. ("="):rep(w) .. "]"
      or "[" .. ("="):rep(filled) .. ">" .. (" "):rep(w - filled - 1) .. "]"
  end
  if total then
    local w = #tostring(total)
    parts[#parts + 1] = (bar and "%" .. w .. "d/%d" or "step %d/%d"):format(self.step, total)
  else
    parts[#parts + 1] = ("step %d"):format(self.step)
  end
  local s = self.stats
  if s.loss then parts[#parts + 1] = ("loss %.4f"):format(s.loss) end
  if s.acc then parts[#parts + 1] = ("acc %.2f%%"):format(100 * s.acc) end
  for _, k in ipairs(s._extra or {}) do
    local v = s[k]
    parts[#parts + 1] = type(v) == "number" and ("%s %.4g"):format(k, v) or ("%s %s"):format(k, tostring(v))
  end
  local elapsed = self.t0 and (self.clock() - self.t0) or 0
  if elapsed > 0 and self.samples > 0 then
    parts[#parts + 1] = ("%.0f samples/s"):format(self.samples / elapsed)
  end
  if self.finished then
    parts[#parts + 1] = ("%s elapsed"):format(fmt_time(elapsed))
  elseif total and self.step > 0 and elapsed > 0 then
    parts[#parts + 1] = "ETA " .. fmt_time(elapsed / self.step * (total - self.step))
  end
  return table.concat(parts, " ")
end

function Progress:_draw(final)
  local now = self.clock()
  if self.tty then
    -- no more than ~20 redraws a second: writing to a terminal is not free
    if not final and self.last_print and now - self.last_print < 0.05 then return end
    local l = self:line(true)
    local pad = self.drawn > #l and (" "):rep(self.drawn - #l) or ""
    self.out:write("\r", l, pad, final and "\n" or "")
    self.drawn = #l
  else
    if not final and self.last_print and now - self.last_print < self.interval then return end
    if not final and not self.last_print and now - self.t0 < self.interval then return end
    self.out:write(self:line(false), "\n")
  end
  self.out:flush()
  self.last_print = now
end

---Report progress: step is the number of steps done.
---@param step integer
---@param stats? table {loss =, acc =, samples =, ...}: samples adds to the count behind samples/s; other fields print as "name value"
function Progress:update(step, stats)
  self:_set(step, stats)
  self:_draw(false)
end

function Progress:_set(step, stats)
  if not self.t0 then self.t0 = self.clock() end
  self.step = step or self.step + 1
  if stats then
    for k, v in pairs(stats) do
      if k == "samples" then
        self.samples = self.samples + v
      else
        if k ~= "loss" and k ~= "acc" and self.stats[k] == nil then
          self.stats._extra = self.stats._extra or {}
          table.insert(self.stats._extra, k)
          table.sort(self.stats._extra)
        end
        self.stats[k] = v
      end
    end
  end
end

---A last update, then close the line (a newline on a terminal).
---@param stats? table as for update
function Progress:finish(stats)
  self:_set(self.step, stats)
  self.finished = true
  self:_draw(true)
end

return setmetatable(Progress, { __call = function(_, opts) return Progress.new(opts) end })
