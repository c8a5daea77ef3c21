-- nnlua.models.captioning_data: the captioning data set of data/captions/ (docs/captions-format.md):
-- IDX images, token rows and cell contents, the vocabulary, and the "objects correctly named" score.
local nn = require "nnlua"

local M = {}

M.NULL, M.START, M.END, M.UNK = 1, 2, 3, 4

-- Fashion-MNIST classes 0..9 as caption words, singular and plural; digits 0..9 as words.
M.FASHION = { "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
              "ankle boot" }
M.FASHION_PLURAL = { "t-shirts", "trousers", "pullovers", "dresses", "coats", "sandals", "shirts",
                     "sneakers", "bags", "ankle boots" }
M.DIGITS = { "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine" }

---The caption phrase of a cell code of *-cells-idx2-ubyte, e.g. "ankle boot", "digit seven".
---@param code integer 1..10 fashion class + 1, 11..20 digit + 11, 0 empty
---@return string|nil phrase nil for an empty cell
function M.label(code)
  if code >= 1 and code <= 10 then return M.FASHION[code] end
  if code >= 11 and code <= 20 then return "digit " .. M.DIGITS[code - 10] end
  return nil
end

---Read the vocabulary file (ids 1-based).
---@param path string
---@return {idx_to_word: string[], word_to_idx: table<string, integer>} vocab
function M.load_vocab(path)
  local v = nn.io.read_json(path)
  if type(v) ~= "table" or type(v.idx_to_word) ~= "table" then
    error("load_vocab: " .. path .. " has no idx_to_word list", 2)
  end
  local w2i = {}
  for i, w in ipairs(v.idx_to_word) do w2i[w] = i end
  return { idx_to_word = v.idx_to_word, word_to_idx = w2i }
end

local function shape(t) return "[" .. table.concat(t:size(), ",") .. "]" end

---Load a split: images uint8 N x 64 x 64, captions int64 M x 17 (token ids), image_of int64 M
---(1-based image), cells uint8 N x 4 (cell codes, see label); the caption rows of image i are
---first[i] .. first[i] + count[i] - 1; cell_codes[i] lists image i's 4 codes.
---@param dir string data/captions
---@param split "train"|"val"
---@return table d {images, captions, image_of, cells, first, count, cell_codes}
function M.load_split(dir, split)
  local p = dir .. "/" .. split
  local d = {
    images = nn.io.read_idx(p .. "-images-idx3-ubyte.gz", "uint8"),
    captions = nn.io.read_idx(p .. "-captions-idx2-int.gz", "int64"),
    image_of = nn.io.read_idx(p .. "-caption-images-idx1-int.gz", "int64"),
    cells = nn.io.read_idx(p .. "-cells-idx2-ubyte.gz", "uint8"),
    split = split,
  }
  local n, m = d.images:size(1), d.captions:size(1)
  if d.image_of:dim() ~= 1 or d.image_of:size(1) ~= m or d.cells:size(1) ~= n then
    error(("load_split: %s: sizes disagree: images %s, captions %s, caption images %s, cells %s")
      :format(p, shape(d.images), shape(d.captions), shape(d.image_of), shape(d.cells)), 2)
  end
  d.n_images, d.n_captions, d.seq_length = n, m, d.captions:size(2)
  local first, count = {}, {}
  for r, i in ipairs(d.image_of:totable()) do
    if i < 1 or i > n then error(("load_split: %s: caption %d names image %d of %d"):format(p, r, i, n), 2) end
    if not first[i] then first[i], count[i] = r, 0 end
    if first[i] + count[i] ~= r then error(("load_split: %s: captions are not sorted by image"):format(p), 2) end
    count[i] = count[i] + 1
  end
  for i = 1, n do
    if not first[i] then error(("load_split: %s: image %d has no caption"):format(p, i), 2) end
  end
  d.first, d.count = first, count
  d.cell_codes = d.cells:long():totable()
  return d
end

---The text of a row of token ids: <START> and <NULL> are skipped, and it stops at the first <END>.
---@param ids Tensor|integer[] a 1-D tensor or a Lua list of ids
---@param idx_to_word string[]
---@return string text
function M.decode(ids, idx_to_word)
  if nn.is_tensor(ids) then ids = ids:totable() end
  local words = {}
  for _, id in ipairs(ids) do
    if id == M.END then break end
    if id ~= M.START and id ~= M.NULL then words[#words + 1] = idx_to_word[id] or "<UNK>" end
  end
  return table.concat(words, " ")
end

---The texts of the rows of an N x T id tensor or list.
---@param ids Tensor|table
---@param idx_to_word string[]
---@return string[] texts
function M.decode_batch(ids, idx_to_word)
  if nn.is_tensor(ids) then ids = ids:totable() end
  local out = {}
  for i, row in ipairs(ids) do out[i] = M.decode(row, idx_to_word) end
  return out
end

---The texts of image i's reference captions.
---@param d table a split from load_split
---@param i integer 1-based image
---@param idx_to_word string[]
---@return string[] texts
function M.references(d, i, idx_to_word)
  local refs = {}
  for r = d.first[i], d.first[i] + d.count[i] - 1 do
    refs[#refs + 1] = M.decode(d.captions[r], idx_to_word)
  end
  return refs
end

-- word -> {class key, plural}: keys are the labels ("ankle boot", "digit seven").
local NOUNS = {}
for c = 1, 10 do
  NOUNS[M.FASHION[c]] = { M.FASHION[c], false }
  NOUNS[M.FASHION_PLURAL[c]] = { M.FASHION[c], true }
end

---The objects a caption names, with the grammar's counts: "a bag" 1, "two shirts" 2 (a plural
---without a count word counts 2), "the digit seven" 1. Each mention adds.
---@param text string
---@return table<string, integer> counts label -> count
function M.named(text)
  local w = {}
  for t in text:gmatch("%S+") do w[#w + 1] = t end
  local counts, i = {}, 1
  while i <= #w do
    local key, plural, len
    if w[i] == "digit" and w[i + 1] then
      for d = 1, 10 do
        if w[i + 1] == M.DIGITS[d] then key, plural, len = "digit " .. M.DIGITS[d], false, 2 end
      end
    elseif w[i] == "ankle" and (w[i + 1] == "boot" or w[i + 1] == "boots") then
      key, plural, len = "ankle boot", w[i + 1] == "boots", 2
    elseif NOUNS[w[i]] and w[i] ~= "boot" then
      key, plural, len = NOUNS[w[i]][1], NOUNS[w[i]][2], 1
    end
    if key then
      local n = 1
      if plural then n = (w[i - 1] == "three") and 3 or 2 end
      counts[key] = (counts[key] or 0) + n
      i = i + len
    else
      i = i + 1
    end
  end
  return counts
end

---The "objects correctly named" score: an object is correct when the caption names its class at
---least as many times as there are such objects (min(true, named) per class); extra counts named
---objects beyond the image's; count_errors classes named with a wrong count; images_exact captions
---naming exactly the image's objects.
---@param cell_codes integer[][] image i's 4 cell codes
---@param texts string[] image i's generated caption
---@return {correct: integer, total: integer, extra: integer, count_errors: integer, missing: integer, images_exact: integer, images: integer} score
function M.score_objects(cell_codes, texts)
  local s = { correct = 0, total = 0, extra = 0, count_errors = 0, missing = 0, images_exact = 0,
              images = #texts }
  for i, text in ipairs(texts) do
    local truth = {}
    for _, code in ipairs(cell_codes[i]) do
      local l = M.label(code)
      if l then truth[l] = (truth[l] or 0) + 1 end
    end
    local said, exact = M.named(text), true
    for l, n in pairs(truth) do
      local g = said[l] or 0
      s.correct, s.total = s.correct + math.min(n, g), s.total + n
      s.missing = s.missing + math.max(0, n - g)
      if g > 0 and g ~= n then s.count_errors = s.count_errors + 1 end
      if g ~= n then exact = false end
    end
    for l, g in pairs(said) do
      local n = truth[l] or 0
      if g > n then
        s.extra = s.extra + (g - n)
        exact = false
      end
    end
    if exact then s.images_exact = s.images_exact + 1 end
  end
  return s
end

---A xorshift32 stream (the data generator's PRNG, also in bench/torch_captioning.py), so nnlua and
---PyTorch runs see the same order of images and captions for the same seed.
---@param seed integer
---@return table rng next() -> integer in 0 .. 2^32 - 1, below(n) -> 1 .. n, perm(n) -> a shuffle of 1 .. n
function M.rng(seed)
  local x = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
  if x == 0 then x = 1 end
  local r = {}
  --- next() -> an integer in 0 .. 2^32 - 1
  function r.next()
    x = x ~ ((x << 13) & 0xFFFFFFFF)
    x = x ~ (x >> 17)
    x = x ~ ((x << 5) & 0xFFFFFFFF)
    return x
  end
  --- below(n) -> an integer in 1 .. n
  function r.below(n) return r.next() % n + 1 end
  --- perm(n) -> a Fisher-Yates shuffle of 1 .. n
  function r.perm(n)
    local p = {}
    for i = 1, n do p[i] = i end
    for i = n, 2, -1 do
      local j = r.next() % i + 1
      p[i], p[j] = p[j], p[i]
    end
    return p
  end
  return r
end

---An epoch: one caption row per image, images in a shuffled order, each a random caption of its image.
---@param d table a split from load_split
---@param rng table from M.rng
---@return integer[] rows
function M.epoch_rows(d, rng)
  local order, rows = rng.perm(d.n_images), {}
  for k, i in ipairs(order) do rows[k] = d.first[i] + rng.below(d.count[i]) - 1 end
  return rows
end

---The batch of caption rows rows[first .. first + count - 1]: their images (or, given features of
---the split's images, their feature rows) and their token rows.
---@param d table a split from load_split
---@param rows integer[] caption rows (from epoch_rows)
---@param first integer
---@param count integer
---@param features? Tensor float n_images x feature_dim, precomputed (Captioner:encode)
---@return Tensor images uint8 B x 1 x 64 x 64, or features B x feature_dim
---@return Tensor captions int64 B x 17
function M.batch(d, rows, first, count, features)
  local r = {}
  for k = 1, count do r[k] = rows[first + k - 1] end
  local ridx = nn.tensor(r, "int64")
  local caps = d.captions:index_select(1, ridx)
  local which = d.image_of:index_select(1, ridx)
  if features then return features:index_select(1, which), caps end
  local imgs = d.images:index_select(1, which)
  return imgs:view(count, 1, imgs:size(2), imgs:size(3)), caps
end

local FLIP_CELLS = nn.tensor({ 2, 1, 4, 3 }, "int64") -- a mirror swaps the grid's columns

---The batch of images order[first .. first + count - 1] with their cell classes (for pretraining
---the encoder as a cell classifier). Given rng, each image is mirrored left-right with probability
---1/2 (one rng.next() per image, in order), its cells' classes swapped to match.
---@param d table a split from load_split
---@param order integer[] image numbers (e.g. a shuffle from rng.perm)
---@param first integer
---@param count integer
---@param rng? table an M.rng stream: mirror at random
---@return Tensor images uint8 B x 1 x 64 x 64
---@return Tensor classes int64 B x 4: cell code + 1 (1 empty, 2..11 fashion, 12..21 digits)
function M.cell_batch(d, order, first, count, rng)
  local r = {}
  for k = 1, count do r[k] = order[first + k - 1] end
  local idx = nn.tensor(r, "int64")
  local imgs = d.images:index_select(1, idx)
  local cells = d.cells:index_select(1, idx):long() + 1
  if rng then
    local flip = {}
    for k = 1, count do flip[k] = rng.next() % 2 end
    local W = imgs:size(3)
    local rev = {}
    for j = 1, W do rev[j] = W + 1 - j end
    local m = nn.tensor(flip, "uint8")
    imgs = nn.where(m:view(count, 1, 1), imgs:index_select(3, nn.tensor(rev, "int64")), imgs)
    cells = nn.where(m:view(count, 1), cells:index_select(2, FLIP_CELLS), cells)
  end
  return imgs:view(count, 1, imgs:size(2), imgs:size(3)), cells
end

return M
