-- nnlua.metrics (nn.metrics): classification scores computed with tensor ops, not Lua loops.
-- Labels and predictions are int64 class numbers 1..C, as everywhere in nnlua.
local core = require "nnlua.core"

local metrics = {}

local function shape(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- Predicted classes from logits (N x C, argmax over classes) or from class numbers (N).
local function predictions(x, labels, fn)
  if not core.is_tensor(x) then error(fn .. ": logits or predictions must be a tensor, got " .. type(x), 3) end
  if not core.is_tensor(labels) then error(fn .. ": labels must be a tensor, got " .. type(labels), 3) end
  if labels:dim() ~= 1 then error(fn .. ": labels must be 1-D (N), got " .. shape(labels), 3) end
  local pred
  if x:dim() == 2 then
    pred = x:argmax(2)
  elseif x:dim() == 1 then
    pred = x:dtype() == "int64" and x or x:long()
  else
    error(fn .. ": expected logits N x C or predictions N, got " .. shape(x), 3)
  end
  if pred:size(1) ~= labels:size(1) then
    error(("%s: %d predictions for %d labels"):format(fn, pred:size(1), labels:size(1)), 3)
  end
  return pred, labels:dtype() == "int64" and labels or labels:long()
end

---The fraction of correct predictions, and their number.
---@param x Tensor logits N x C (argmax taken) or predicted classes N
---@param labels Tensor int64 class numbers 1..C, N
---@return number fraction in [0, 1] (NaN for no samples)
---@return integer correct
function metrics.accuracy(x, labels)
  local pred, y = predictions(x, labels, "accuracy")
  local n = y:numel()
  if n == 0 then return 0 / 0, 0 end
  local correct = pred:eq(y):long():sum():item()
  return correct / n, math.tointeger(correct) or correct
end

---The number of correct predictions.
---@param x Tensor logits N x C or predicted classes N
---@param labels Tensor int64 class numbers 1..C, N
---@return integer
function metrics.correct(x, labels)
  local pred, y = predictions(x, labels, "correct")
  if y:numel() == 0 then return 0 end
  local c = pred:eq(y):long():sum():item()
  return math.tointeger(c) or c
end

---The confusion matrix: entry [i][j] counts the samples of class i predicted as j.
---@param x Tensor logits N x C or predicted classes N
---@param labels Tensor int64 class numbers 1..C, N
---@param C integer the number of classes
---@return Tensor cm int64 C x C
function metrics.confusion_matrix(x, labels, C)
  local pred, y = predictions(x, labels, "confusion_matrix")
  if math.type(C) ~= "integer" or C < 1 then
    error("confusion_matrix: number of classes C must be a positive integer, got " .. tostring(C), 2)
  end
  local cm = core.zeros(C * C, "int64")
  if y:numel() == 0 then return cm:view(C, C) end
  for _, t in ipairs({ pred, y }) do
    local lo, hi = t:min():item(), t:max():item()
    if lo < 1 or hi > C then
      error(("confusion_matrix: classes must be 1..%d, found %d..%d"):format(C, lo, hi), 2)
    end
  end
  local flat = (y - 1) * C + pred -- 1-based cell of each sample
  cm = cm:scatter_add(1, flat, core.ones(flat:numel(), "int64"))
  return cm:view(C, C)
end

---The accuracy of each class from a confusion matrix: the diagonal over each row's total.
---@param cm Tensor C x C, from confusion_matrix
---@return Tensor float32 C (NaN for classes without samples)
function metrics.per_class_accuracy(cm)
  if not core.is_tensor(cm) or cm:dim() ~= 2 or cm:size(1) ~= cm:size(2) then
    error("per_class_accuracy: a square confusion matrix expected", 2)
  end
  local C = cm:size(1)
  local diag = cm:float():view(-1):index_select(1, core.arange(1, C * C + 1, C + 1):long())
  return diag / cm:float():sum(2):view(C)
end

return metrics
