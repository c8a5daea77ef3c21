-- nnlua.utils: training utilities gathered under nn.utils: gradient clipping, checkpoints and the
-- training guard (Ctrl-C and NaN handling).
local clip_grad = require "nnlua.utils.clip_grad"
local checkpoint = require "nnlua.utils.checkpoint"
local guard = require "nnlua.utils.guard"

local utils = {}
for k, v in pairs(clip_grad) do utils[k] = v end
for k, v in pairs(checkpoint) do utils[k] = v end
for k, v in pairs(guard) do utils[k] = v end
return utils
