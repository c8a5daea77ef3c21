-- Embedding.lua: a lookup table, weight [num_embeddings, embedding_dim] ~ N(0, 1) as in PyTorch;
-- token ids are 1-based. The padding row starts at zero and never gets a gradient.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local init = require "nnlua.nn_init"

---A lookup table of embeddings (nn.F.embedding): row i of weight for token id i (1-based). Weight
---N(0, 1) as PyTorch; the padding row starts at zero and never gets a gradient.
---@class nn.Embedding : nn.Module
---@field weight Tensor (num_embeddings, embedding_dim)
---@field num_embeddings integer
---@field embedding_dim integer
---@field padding_idx integer|nil
local Embedding = Module:extend("Embedding")

---nn.Embedding(num_embeddings, embedding_dim, opts)
---@param num_embeddings integer the vocabulary size
---@param embedding_dim integer features per token
---@param opts? {padding_idx?: integer} a row without gradient: 1-based, or negative from the end
function Embedding:init(num_embeddings, embedding_dim, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "padding_idx" then error(string.format("Embedding: unknown option '%s'", tostring(k)), 3) end
  end
  if math.type(num_embeddings) ~= "integer" or math.type(embedding_dim) ~= "integer"
      or num_embeddings < 1 or embedding_dim < 0 then
    error(string.format("Embedding: num_embeddings must be a positive and embedding_dim a non-negative " ..
                        "integer, got %s and %s", tostring(num_embeddings), tostring(embedding_dim)), 3)
  end
  local pad = opts.padding_idx
  if pad ~= nil then
    if math.type(pad) ~= "integer" or pad == 0 or pad > num_embeddings or pad < -num_embeddings then
      error(string.format("Embedding: padding_idx must be within 1 to %d or -%d to -1, got %s",
                          num_embeddings, num_embeddings, tostring(pad)), 3)
    end
    if pad < 0 then pad = pad + num_embeddings + 1 end
  end
  self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, pad
  self.weight = nn.Parameter(nn.empty(num_embeddings, embedding_dim))
  self:reset_parameters()
end

---Draw new weights from N(0, 1) (the padding row: zeros).
function Embedding:reset_parameters()
  init.normal_(self.weight)
  if self.padding_idx then nn.no_grad(function() self.weight[self.padding_idx]:zero_() end) end
end

---A layer holding a copy of weight's rows (its padding row kept as given, as PyTorch does).
---@param weight Tensor (num_embeddings, embedding_dim)
---@param opts? {freeze?: boolean, padding_idx?: integer} freeze (default true): no gradient for the weights
---@return nn.Embedding
function Embedding.from_pretrained(weight, opts)
  if not nn.is_tensor(weight) or weight:dim() ~= 2 then
    error("Embedding.from_pretrained: weight must be a 2-D tensor", 2)
  end
  opts = opts or {}
  local e = Embedding(weight:size(1), weight:size(2), { padding_idx = opts.padding_idx })
  nn.no_grad(function() e.weight:copy_(weight) end)
  e.weight:requires_grad(opts.freeze == false)
  return e
end

---Look the ids up.
---@param ids Tensor int64 token ids 1..num_embeddings, any shape
---@return Tensor ids' size x embedding_dim
function Embedding:forward(ids)
  return nn.F.embedding(ids, self.weight, { padding_idx = self.padding_idx })
end

---The sizes and options print(layer) shows.
---@return string
function Embedding:extra_repr()
  local s = string.format("%d, %d", self.num_embeddings, self.embedding_dim)
  if self.padding_idx then s = s .. ", padding_idx=" .. self.padding_idx end
  return s
end

return Embedding
