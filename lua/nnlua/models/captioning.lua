-- nnlua.models.captioning: the course's image captioner -- a CNN encoder (a grid-cell classifier), its
-- features -> initial hidden state, word embedding, RNN/LSTM/GRU, vocabulary scores; greedy and beam search.
local nn = require "nnlua"
local Module = require "nnlua.nn.Module"
local data = require "nnlua.models.captioning_data"

local NULL, START, END = data.NULL, data.START, data.END

---The course's image captioner: a CNN encoder, features -> initial hidden state, word embedding, an
---RNN/LSTM/GRU, vocabulary projection; greedy and beam decoding. The encoder trains with the
---captioner end to end, or first as a classifier of the grid cells (cell_loss) and then frozen.
---Children: encoder, init_h (Linear feature_dim -> H, the course's W_proj), embed (Embedding V x W),
---rnn (nn.LSTM / nn.RNN / nn.GRU, batch_first), vocab (Linear H -> V over N x T x H), and with
---init_c = true, init_c (Linear feature_dim -> H: c0 from the features too, not only h0).
---Wherever a method takes images (uint8 or float, N x S x S or N x 1 x S x S) it also takes the
---encoder's output, float N x feature_dim (2-D): precomputed features, as the course uses.
---@class nn.models.Captioner : nn.Module
local Captioner = Module:extend("Captioner")

local CELLS = { lstm = "LSTM", rnn = "RNN", gru = "GRU" }
local KNOWN = { vocab_size = true, wordvec_dim = true, hidden_dim = true, cell = true, encoder = true,
                feature_dim = true, channels = true, convs = true, image_size = true, max_len = true,
                cell_dim = true, encoder_output = true, init_c = true }

---The default image encoder, a classifier of the data's 2 x 2 grid cells: a conv stack (child conv:
---per entry of channels, convs[i] times conv 3x3 with padding 1 and no bias, BatchNorm2d, ReLU, then
---a 2x2 max pool), then for each cell its patch of the last map -> Linear -> ReLU (child fc,
---cell_dim features) -> Linear (child head, class scores: empty, 10 clothes, 10 digits). The same
---weights serve every cell. Its
---output, cells in reading order: the class probabilities (output = "probs", 4 x classes
---features) or the fc features (output = "hidden", 4 x cell_dim). Pretrained as a classifier
---(Captioner:cell_loss) and frozen, it plays the part of the course's pretrained CNN; measured here,
---the decoder learns from "probs" several times faster than from "hidden".
---@class nn.models.CellEncoder : nn.Module
local CellEncoder = Module:extend("CellEncoder")
Captioner.CellEncoder = CellEncoder

---CellEncoder{channels = {24, 48, 96}, convs = {1, 2, 2}, image_size = 64, cell_dim = 128, classes = 21,
---output = "probs"}
---@param opts? {channels?: integer[], convs?: integer[], image_size?: integer, cell_dim?: integer, classes?: integer, output?: "probs"|"hidden"}
function CellEncoder:init(opts)
  opts = opts or {}
  local channels, size = opts.channels or { 24, 48, 96 }, opts.image_size or 64
  local convs = opts.convs or (opts.channels and {} or { 1, 2, 2 })
  local cell_dim, classes, output = opts.cell_dim or 128, opts.classes or 21, opts.output or "probs"
  if output ~= "probs" and output ~= "hidden" then
    error("CellEncoder: output must be \"probs\" or \"hidden\", got " .. tostring(output), 3)
  end
  local layers, cin, side = {}, 1, size
  for b, c in ipairs(channels) do
    for _ = 1, convs[b] or 1 do
      layers[#layers + 1] = nn.Conv2d(cin, c, 3, { padding = 1, bias = false })
      layers[#layers + 1] = nn.BatchNorm2d(c)
      layers[#layers + 1] = nn.ReLU()
      cin = c
    end
    layers[#layers + 1] = nn.MaxPool2d(2)
    side = side // 2
  end
  if side < 2 or side % 2 ~= 0 then
    error(("CellEncoder: %d blocks leave %d x %d of a %d x %d image; the 2 x 2 grid needs an even size >= 2")
      :format(#channels, side, side, size, size), 3)
  end
  self.conv = nn.Sequential(layers)
  self.fc = nn.Linear(cin * (side // 2) * (side // 2), cell_dim)
  self.head = nn.Linear(cell_dim, classes)
  self.channels, self.side, self.cell_dim, self.classes, self.output = cin, side, cell_dim, classes, output
  self.feature_dim = 4 * (output == "probs" and classes or cell_dim)
end

---The fc features of each grid cell, the cells of an image in reading order.
---@param x Tensor float N x 1 x S x S
---@return Tensor (N * 4, cell_dim)
function CellEncoder:cells(x)
  local f = self.conv(x)
  local N, C, s = f:size(1), self.channels, self.side // 2
  -- (N, C, 2, s, 2, s) -> (N, row, col, C, s, s): one patch per cell
  local patches = f:view(N, C, 2, s, 2, s):permute(1, 3, 5, 2, 4, 6):reshape(N * 4, C * s * s)
  return nn.F.relu(self.fc(patches))
end

---Class scores of each grid cell.
---@param x Tensor float N x 1 x S x S
---@return Tensor (N * 4, classes)
function CellEncoder:logits(x)
  return self.head(self:cells(x))
end

---@param x Tensor float N x 1 x S x S
---@return Tensor (N, feature_dim)
function CellEncoder:forward(x)
  local N = x:size(1)
  if self.output == "hidden" then return self:cells(x):view(N, self.feature_dim) end
  return nn.F.softmax(self:logits(x), 2):view(N, self.feature_dim)
end

function CellEncoder:extra_repr()
  return ("cells=2x2, cell_dim=%d, classes=%d, output=%s, feature_dim=%d")
    :format(self.cell_dim, self.classes, self.output, self.feature_dim)
end

---The default encoder and its output size.
---@param opts? table CellEncoder's options
---@return nn.models.CellEncoder encoder
---@return integer feature_dim
function Captioner.default_encoder(opts)
  local e = CellEncoder(opts)
  return e, e.feature_dim
end

---Options of nn.models.Captioner.
---@class nn.models.Captioner.opts
---@field vocab_size integer V, the vocabulary size (required)
---@field wordvec_dim? integer W, the word embedding size (default 256)
---@field hidden_dim? integer H, the recurrent state size (default 512)
---@field cell? "lstm"|"rnn"|"gru" (default "lstm")
---@field encoder? nn.Module an image encoder (default: a CellEncoder from the options below)
---@field feature_dim? integer the encoder's output size (required with encoder)
---@field channels? integer[] the default encoder's conv blocks (default {24, 48, 96})
---@field convs? integer[] convolutions per block (default {1, 2, 2}; 1 each with channels given)
---@field cell_dim? integer the default encoder's fc size per grid cell (default 128)
---@field encoder_output? "probs"|"hidden" the default encoder's features (default "probs")
---@field init_c? boolean the LSTM's c0 from the features as well (default false: c0 = 0, the course)
---@field image_size? integer (default 64)
---@field max_len? integer longest generated caption (default 16)

---nn.models.Captioner{vocab_size = V, ...}
---@param opts nn.models.Captioner.opts
function Captioner:init(opts)
  if type(opts) ~= "table" then error("Captioner: expected an options table {vocab_size = ...}", 3) end
  for k in pairs(opts) do
    if not KNOWN[k] then error("Captioner: unknown option '" .. tostring(k) .. "'", 3) end
  end
  local V = opts.vocab_size
  if math.type(V) ~= "integer" or V < 4 then
    error("Captioner: vocab_size must be an integer >= 4 (with <NULL>, <START>, <END>, <UNK>), got "
          .. tostring(V), 3)
  end
  local cell = opts.cell or "lstm"
  if not CELLS[cell] then error("Captioner: cell must be \"lstm\", \"rnn\" or \"gru\", got " .. tostring(cell), 3) end
  local W, H = opts.wordvec_dim or 256, opts.hidden_dim or 512
  local encoder, fdim = opts.encoder, opts.feature_dim
  if encoder then
    if math.type(fdim) ~= "integer" or fdim < 1 then
      error("Captioner: with an encoder, give its output size as feature_dim", 3)
    end
  else
    encoder, fdim = Captioner.default_encoder{ channels = opts.channels, convs = opts.convs,
                                               image_size = opts.image_size, cell_dim = opts.cell_dim,
                                               output = opts.encoder_output }
  end
  self.cell, self.vocab_size, self.wordvec_dim, self.hidden_dim = cell, V, W, H
  self.feature_dim, self.max_len = fdim, opts.max_len or 16
  self.encoder = encoder
  self.init_h = nn.Linear(fdim, H)
  self.embed = nn.Embedding(V, W)
  self.rnn = nn[CELLS[cell]](W, H, { batch_first = true })
  self.vocab = nn.Linear(H, V)
  if opts.init_c then
    if cell ~= "lstm" then error("Captioner: init_c needs the lstm cell", 3) end
    self.init_c = nn.Linear(fdim, H)
  end
end

-- Images as the encoder wants them: float N x 1 x S x S in [0, 1] from uint8 0..255 (or as given
-- when already float); N x S x S gets its channel dimension.
local function prepare(images)
  local x = images
  if x:dim() ~= 3 and x:dim() ~= 4 then
    error("Captioner: images must be N x S x S or N x 1 x S x S, got [" .. table.concat(x:size(), ",") .. "]", 4)
  end
  if x:dim() == 3 then x = x:view(x:size(1), 1, x:size(2), x:size(3)) end
  if x:dtype() == "uint8" then x = x:float() * (1 / 255) end
  return x
end

---The encoder's output; a 2-D input is taken as features already.
---@param images Tensor uint8 or float N x 1 x S x S (or N x S x S), or features N x feature_dim
---@return Tensor (N, feature_dim)
function Captioner:features(images)
  if images:dim() == 2 then
    if images:size(2) ~= self.feature_dim then
      error(("Captioner: features must be N x %d, got [%s]"):format(self.feature_dim,
            table.concat(images:size(), ",")), 3)
    end
    return images
  end
  return self.encoder(prepare(images))
end

---Scores of each grid cell's classes, in reading order (top left, top right, bottom left, bottom
---right): the encoder's logits (the default CellEncoder has them).
---@param images Tensor N x 1 x S x S
---@return Tensor logits (N * 4, classes)
function Captioner:cell_logits(images)
  if type(self.encoder.logits) ~= "function" then
    error("Captioner: cell_logits needs an encoder with a logits method (the default CellEncoder)", 2)
  end
  return self.encoder:logits(prepare(images))
end

---The cell classifier's mean cross-entropy: pretrains the encoder with direct labels.
---@param images Tensor N x 1 x S x S
---@param cells Tensor int64 N x 4 class numbers 1..K, reading order
---@return Tensor loss 0-d
function Captioner:cell_loss(images, cells)
  local logits = self:cell_logits(images)
  return nn.F.cross_entropy(logits, cells:reshape(logits:size(1)))
end

---Freeze the encoder: no gradients, and batch norm stays on its running statistics (train() no
---longer changes it), so its features can be computed once (encode) and reused.
---@return nn.models.Captioner self
function Captioner:freeze_encoder()
  self.encoder:freeze()
  rawset(self, "encoder_frozen", true)
  self.encoder:eval()
  return self
end

---Training mode for everything but a frozen encoder.
---@param mode? boolean default true
---@return nn.models.Captioner self
function Captioner:train(mode)
  Module.train(self, mode)
  if rawget(self, "encoder_frozen") then self.encoder:eval() end
  return self
end

---Features of many images without a graph, the encoder in eval mode, in batches.
---@param images Tensor N x 1 x S x S (or N x S x S)
---@param opts? {batch_size?: integer} default 500
---@return Tensor features (N, feature_dim)
function Captioner:encode(images, opts)
  local bs, N = opts and opts.batch_size or 500, images:size(1)
  local was = self.training
  self:eval()
  local parts = {}
  local ok, err = pcall(nn.no_grad, function()
    for first = 1, N, bs do
      parts[#parts + 1] = self:features(images:narrow(1, first, math.min(bs, N - first + 1)))
    end
  end)
  self:train(was)
  if not ok then error(err, 0) end
  return #parts == 1 and parts[1] or nn.cat(parts, 1)
end

---The initial state of the recurrent layer: h0 = features W_projᵀ + b; for the LSTM c0 = 0, or with
---init_c an affine map of the features too.
---@param feats Tensor (N, feature_dim)
---@return Tensor h0 (N, H)
---@return Tensor|nil c0 (N, H) for the LSTM
function Captioner:initial_state(feats)
  local h0 = self.init_h(feats)
  if self.init_c then return h0, self.init_c(feats) end
  if self.cell == "lstm" then return h0, nn.zeros(h0:size(1), self.hidden_dim) end
  return h0
end

---The course's temporal softmax loss: captions_in = all but the last token, captions_out = all but
---the first; positions where captions_out is <NULL> are ignored; summed over time and averaged
---over the batch (per caption, not per token).
---@param images Tensor N x 1 x S x S
---@param captions Tensor int64 N x (T + 1) token ids
---@return Tensor loss 0-d
function Captioner:forward(images, captions)
  local scores, out = self:scores(images, captions)
  local N, T, V = scores:size(1), scores:size(2), scores:size(3)
  local loss = nn.F.cross_entropy(scores:reshape(N * T, V), out:reshape(N * T),
                                  { ignore_index = NULL, reduction = "sum" })
  return loss / N
end

---Vocabulary scores for captions_in (teacher forcing).
---@param images Tensor N x 1 x S x S
---@param captions Tensor int64 N x (T + 1)
---@return Tensor scores (N, T, V)
---@return Tensor captions_out int64 (N, T)
function Captioner:scores(images, captions)
  if not nn.is_tensor(captions) or captions:dim() ~= 2 or captions:size(2) < 2 then
    error("Captioner: captions must be an int64 tensor N x (T + 1), T >= 1", 3)
  end
  local N, T1 = captions:size(1), captions:size(2)
  local cin, cout = captions:narrow(2, 1, T1 - 1), captions:narrow(2, 2, T1 - 1)
  local h0, c0 = self:initial_state(self:features(images))
  local x = self.embed(cin)                                   -- N x T x W
  local hx = c0 and { h0:unsqueeze(1), c0:unsqueeze(1) } or h0:unsqueeze(1)
  local h = self.rnn(x, hx)                                   -- N x T x H
  local scores = nn.F.linear(h, self.vocab.weight, self.vocab.bias) -- temporal affine, N x T x V
  if scores:size(1) ~= N then error("Captioner: internal: batch size changed", 2) end
  return scores, cout
end

-- One recurrent step for decoding: x N x W, state {h, c} -> new state.
function Captioner:_step(x, h, c)
  local r = self.rnn
  local w_ih, w_hh, b_ih, b_hh = r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0
  if self.cell == "lstm" then return nn.F.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) end
  if self.cell == "gru" then return nn.F.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh) end
  return nn.F.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh)
end

-- Runs fn with the model in eval mode (batch norm uses its running statistics) and without a
-- graph, then restores the mode.
local function inference(self, fn)
  local was = self.training
  self:eval()
  local ok, a, b = pcall(nn.no_grad, fn)
  self:train(was)
  if not ok then error(a, 0) end
  return a, b
end

-- After the first <END> of each row, <NULL>: the format of the data's token rows.
local function pad_after_end(rows)
  for _, row in ipairs(rows) do
    local ended = false
    for t = 1, #row do
      if ended then row[t] = NULL elseif row[t] == END then ended = true end
    end
  end
  return nn.tensor(rows, "int64")
end

---Greedy decoding from <START>, one recurrent step and one argmax at a time; every position after
---a row's first <END> is <NULL>; stops early once every row has ended.
---@param images Tensor N x 1 x S x S
---@param opts? {max_len?: integer} default the model's max_len
---@return Tensor ids int64 (N, max_len)
function Captioner:sample(images, opts)
  local max_len = opts and opts.max_len or self.max_len
  return inference(self, function()
    local h, c = self:initial_state(self:features(images))
    local N = h:size(1)
    local word = nn.full({ N }, START, "int64")
    local words, done = {}, nil
    for t = 1, max_len do
      h, c = self:_step(nn.F.embedding(word, self.embed.weight), h, c)
      word = nn.F.linear(h, self.vocab.weight, self.vocab.bias):argmax(2):view(N)
      words[t] = word
      local ended = word:eq(END)
      done = done and (done + ended:long()) or ended:long()
      if done:min():item() > 0 then break end
    end
    local rows = nn.stack(words, 2):totable()
    for _, row in ipairs(rows) do
      for t = #row + 1, max_len do row[t] = NULL end
    end
    return pad_after_end(rows)
  end)
end

-- The k best of the candidates {rank =, order =, ...} (descending rank, ties to the earlier).
local function top_k(cands, k)
  table.sort(cands, function(a, b)
    if a.rank ~= b.rank then return a.rank > b.rank end
    return a.order < b.order
  end)
  local best = {}
  for i = 1, math.min(k, #cands) do best[i] = cands[i] end
  return best
end

---Beam search: each image keeps the `beam` best unfinished hypotheses. Every step their extensions
---are ranked together; an extension by <END> that ranks among the first `beam` is a finished
---hypothesis and is kept aside (so longer hypotheses that score worse in the end cannot push it out
---of the beam), and the best `beam` other extensions form the next beam. The answer is the best
---finished hypothesis; at max_len the unfinished ones compete too. Ranking: the sum of token
---log-probabilities (<END> included), or with length_norm that sum over the number of tokens (no
---bias towards short captions). Without length_norm the search stops once no unfinished hypothesis
---can catch up with the best finished one. beam = 1 is greedy decoding.
---@param images Tensor N x 1 x S x S, or features
---@param opts? {beam?: integer, max_len?: integer, length_norm?: boolean} defaults 3, the model's max_len, false
---@return Tensor ids int64 (N, max_len)
---@return number[] logp the chosen captions' total log-probabilities
function Captioner:beam_search(images, opts)
  opts = opts or {}
  local k, max_len, norm = opts.beam or 3, opts.max_len or self.max_len, opts.length_norm == true
  if math.type(k) ~= "integer" or k < 1 then error("beam_search: beam must be a positive integer", 2) end
  return inference(self, function()
    local h, c = self:initial_state(self:features(images))
    local N, V = h:size(1), self.vocab_size
    -- k rows of state per image; at first only one hypothesis (the empty one) is alive
    local rep = {}
    for i = 1, N do for _ = 1, k do rep[#rep + 1] = i end end
    local rep_idx = nn.tensor(rep, "int64")
    h = h:index_select(1, rep_idx)
    if c then c = c:index_select(1, rep_idx) end
    local alive, finished = {}, {}
    for i = 1, N do
      alive[i], finished[i] = { { words = {}, score = 0, row = (i - 1) * k + 1 } }, {}
    end
    local word = nn.full({ N * k }, START, "int64")
    for t = 1, max_len do
      h, c = self:_step(nn.F.embedding(word, self.embed.weight), h, c)
      local logp = nn.F.log_softmax(nn.F.linear(h, self.vocab.weight, self.vocab.bias), 2):totable()
      local src, next_word, any_alive = {}, {}, false
      for i = 1, N do
        local cands, order = {}, 0
        for _, hyp in ipairs(alive[i]) do
          local lp = logp[hyp.row]
          for v = 1, V do
            local s = hyp.score + lp[v]
            order = order + 1
            cands[#cands + 1] = { parent = hyp, word = v, score = s, rank = norm and s / t or s, order = order }
          end
        end
        local ranked, nb, fin = top_k(cands, t == max_len and 1 or 2 * k), {}, finished[i]
        for pos, cd in ipairs(ranked) do
          if cd.word == END or t == max_len then -- complete: aside if it made the first k
            if pos <= k and (not fin.best or cd.rank > fin.best.rank) then
              local words = { table.unpack(cd.parent.words) }
              words[#words + 1] = cd.word
              fin.best = { words = words, score = cd.score, rank = cd.rank }
            end
          elseif #nb < k then
            local row = (i - 1) * k + #nb + 1
            local words = { table.unpack(cd.parent.words) }
            words[#words + 1] = cd.word
            nb[#nb + 1] = { words = words, score = cd.score, row = row }
            src[row], next_word[row] = cd.parent.row, cd.word
          end
        end
        -- without length_norm scores only fall: stop when the best finished one is out of reach
        if nb[1] and not norm and fin.best and fin.best.score >= nb[1].score then nb = {} end
        if nb[1] then any_alive = true end
        for b = #nb + 1, k do -- unused rows: any state, any word
          local row = (i - 1) * k + b
          src[row], next_word[row] = row, END
        end
        alive[i] = nb
      end
      if not any_alive then break end
      local idx = nn.tensor(src, "int64")
      h = h:index_select(1, idx)
      if c then c = c:index_select(1, idx) end
      word = nn.tensor(next_word, "int64")
    end
    local rows, scores = {}, {}
    for i = 1, N do
      local best = finished[i].best
      local row = {}
      for t = 1, max_len do row[t] = best.words[t] or NULL end
      rows[i], scores[i] = row, best.score
    end
    return pad_after_end(rows), scores
  end)
end

---Captions for many images: greedy (beam 1) or beam search, in batches so memory stays flat.
---@param images Tensor N x 1 x S x S
---@param opts? {beam?: integer, batch_size?: integer, max_len?: integer, length_norm?: boolean} beam 1, batch_size 500
---@return Tensor ids int64 (N, max_len)
function Captioner:generate(images, opts)
  opts = opts or {}
  local beam, bs, N = opts.beam or 1, opts.batch_size or 500, images:size(1)
  local parts = {}
  for first = 1, N, bs do
    local x = images:narrow(1, first, math.min(bs, N - first + 1))
    parts[#parts + 1] = beam > 1 and (self:beam_search(x, opts)) or self:sample(x, opts)
  end
  return #parts == 1 and parts[1] or nn.cat(parts, 1)
end

---The sizes and options print(model) shows.
---@return string
function Captioner:extra_repr()
  return ("cell=%s, vocab_size=%d, wordvec_dim=%d, hidden_dim=%d, feature_dim=%d")
    :format(self.cell, self.vocab_size, self.wordvec_dim, self.hidden_dim, self.feature_dim)
end

--- decode(ids, idx_to_word) -> text (one row) -- see nnlua.models.captioning_data.decode.
Captioner.decode = data.decode
Captioner.decode_batch = data.decode_batch
Captioner.data = data

return Captioner
