-- guard.lua: nn.utils.TrainingGuard: what a training script does about Ctrl-C and a NaN loss: stop at a
-- step boundary, keep (or write) the last good checkpoint, say so on stderr, exit 130 or 3.
local nn = require "nnlua"

local M = {}

---Exit statuses of a guarded run: 130 after Ctrl-C (128 + SIGINT, as a shell reports it), 3 when
---the loss became NaN or Inf.
M.EXIT_INTERRUPTED, M.EXIT_NONFINITE = 130, 3

---True when every tensor is finite: the parameters of a module, or the values of a table of tensors
---(a state dict). NaN or Inf times 0 is NaN, so one product per tensor tells, without anomaly mode
---raising on the NaN it makes.
---@param what nn.Module|table<any, Tensor> a module, or a list or map of tensors
---@return boolean finite
function M.all_finite(what)
  local tensors = what
  if type(what) == "table" and type(what.parameters) == "function" then tensors = what:parameters() end
  if type(tensors) ~= "table" then error("all_finite: a module or a table of tensors expected, got " .. type(what), 2) end
  local was = nn.detect_anomaly(false)
  local ok = nn.no_grad(function()
    for _, t in pairs(tensors) do
      if nn.is_tensor(t) and t:dtype() == "float32" and (t * 0):sum():item() ~= 0 then return false end
    end
    return true
  end)
  nn.detect_anomaly(was)
  return ok
end

---Ctrl-C and NaN handling for a training loop. Create it before the loop (it installs nn.interrupt),
---call guard:at(epoch, step) and guard:check_loss(l) each step before backward, guard:poll() after
---the step, and guard:checkpoint(why) where the script saves; guard:close() after the loop.
---A checkpoint is only written while the model's parameters are finite, so the file on disk is
---always the last good state; write it atomically (nn.save and nn.utils.save_checkpoint do).
---@class nn.utils.TrainingGuard
---@field name string prefix of the messages ("pretrain.lua")
---@field last_good string|nil the path of the checkpoint written last by this run
---@field bar nn.progress|nil the running progress bar: stop() ends its line first
---@field epoch integer|nil where the loop is (guard:at)
---@field step integer|nil
---@overload fun(opts: nn.utils.TrainingGuard.opts): nn.utils.TrainingGuard
local Guard = {}
Guard.__index = Guard
Guard.__name = "TrainingGuard"

---Options of nn.utils.TrainingGuard.
---@class nn.utils.TrainingGuard.opts
---@field name? string prefix of the messages on stderr (default "train")
---@field save? function save(at) writes the checkpoint, at = {epoch, step, why}; returns its path, or nil and why nothing was written (no save: the run keeps no checkpoint)
---@field model? nn.Module when given, save is skipped while a parameter is NaN or Inf
---@field stage? string shown before "epoch" in messages ("encoder epoch 2 step 5")
---@field save_on_nan? boolean write the checkpoint when the loss becomes NaN too (when what save writes is good whatever the model holds, e.g. the best weights so far)
---@field no_save? string why the run keeps no checkpoint, for messages when save is nil ("--no-save")
---@field exit? fun(code: integer) how stop() ends the process (default os.exit; specs replace it)
---@field err? file* where messages go (default io.stderr)

---A guard for one training run; installs the Ctrl-C flag (nn.interrupt).
---@param opts? nn.utils.TrainingGuard.opts
---@return nn.utils.TrainingGuard
function Guard.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("TrainingGuard: options table expected, got " .. type(opts), 2) end
  if opts.save ~= nil and type(opts.save) ~= "function" then
    error("TrainingGuard: save must be a function, got " .. type(opts.save), 2)
  end
  nn.interrupt.install()
  return setmetatable({ name = opts.name or "train", save = opts.save, model = opts.model, stage = opts.stage,
                        no_save = opts.no_save or "this run keeps none", save_on_nan = opts.save_on_nan,
                        exit = opts.exit or os.exit, err = opts.err or io.stderr }, Guard)
end

---Record where the loop is, for messages and checkpoints (stage optional: "encoder").
---@param epoch integer|nil
---@param step integer|nil
---@param stage? string
---@return nn.utils.TrainingGuard self
function Guard:at(epoch, step, stage)
  self.epoch, self.step = epoch, step
  if stage ~= nil then self.stage = stage end
  return self
end

---"epoch 2 step 17" (with the stage: "encoder epoch 2 step 17").
---@return string
function Guard:where()
  local parts = {}
  if self.stage then parts[#parts + 1] = self.stage end
  if self.epoch then parts[#parts + 1] = "epoch " .. self.epoch end
  if self.step then parts[#parts + 1] = "step " .. self.step end
  return #parts > 0 and table.concat(parts, " ") or "the start"
end

---Write the checkpoint through opts.save unless a parameter of opts.model is NaN or Inf.
---@param why string recorded as at.why ("end of epoch", "interrupted", ...)
---@return string|nil path the file written, or nil
function Guard:checkpoint(why)
  if not self.save then return nil end
  if self.model and not M.all_finite(self.model) then
    self.unsaved = "a parameter is NaN or Inf"
    return nil
  end
  local path, reason = self.save({ epoch = self.epoch, step = self.step, why = why })
  if path then self.last_good = path else self.unsaved = reason end
  return path
end

---What became of the checkpoint, for the last message.
---@return string
function Guard:saved_where()
  if self.last_good then return "checkpoint saved to " .. self.last_good end
  if self.save then return "no checkpoint written (" .. (self.unsaved or "none due yet") .. ")" end
  return "no checkpoint (" .. self.no_save .. ")"
end

---End the run: close the progress line, print "<name>: msg" on stderr, uninstall, exit with code.
---@param code integer
---@param msg string
function Guard:stop(code, msg)
  local bar = self.bar
  if bar and bar.tty and not bar.finished then io.stdout:write("\n") end
  io.stdout:flush()
  self.err:write(self.name, ": ", msg, "\n")
  self.err:flush()
  self:close()
  self.exit(code)
end

---Stop with status 3 when the loss l (a number or a one-element tensor) is NaN or Inf. Call it
---before backward, so the parameters stay as they were; no checkpoint is written (unless
---opts.save_on_nan), so the last one written stays on disk.
---@param l number|Tensor
---@return number l the loss as a number
function Guard:check_loss(l)
  if nn.is_tensor(l) then l = l:item() end
  if l ~= l or l == math.huge or l == -math.huge then
    if self.save_on_nan then self:checkpoint("loss became NaN or Inf") end
    local last = self.last_good or ("none (" .. (self.unsaved or (self.save and "none written yet" or self.no_save)) .. ")")
    self:stop(M.EXIT_NONFINITE, ("loss became %s at %s; last good checkpoint: %s")
      :format(l ~= l and "NaN" or (l > 0 and "Inf" or "-Inf"), self:where(), last))
  end
  return l
end

---After a step: when Ctrl-C came, write the checkpoint ("interrupted") and stop with status 130.
---@param note? string appended to the position in the message (" (its end)")
---@return boolean false (it returns only when there was no Ctrl-C)
function Guard:poll(note)
  if not nn.interrupt.requested() then return false end
  self:checkpoint("interrupted")
  self:stop(M.EXIT_INTERRUPTED, ("interrupted at %s%s; %s"):format(self:where(), note or "", self:saved_where()))
  return true
end

---Uninstall the Ctrl-C flag (a later Ctrl-C stops the script at once, as before the guard).
function Guard:close()
  nn.interrupt.uninstall()
end

M.TrainingGuard = setmetatable(Guard, { __call = function(_, opts) return Guard.new(opts) end })

return M
