-- nnlua.metrics.bleu: corpus BLEU (Papineni et al. 2002) as NLTK's corpus_bleu without smoothing:
-- clipped n-gram counts against several references, summed over the corpus, and a brevity penalty.
local bleu = {}

-- A sentence as a list of tokens: a list is used as is (strings or numbers), a string is split
-- on whitespace.
local function tokens(s, what)
  if type(s) == "string" then
    local t = {}
    for w in s:gmatch("%S+") do t[#t + 1] = w end
    return t
  end
  if type(s) ~= "table" then error(("bleu: %s must be a string or a list of tokens, got %s"):format(what, type(s)), 4) end
  return s
end

-- Counts of the n-grams of toks: {["w1 w2"] = count}, and how many there are.
local function ngram_counts(toks, n)
  local counts, total = {}, 0
  for i = 1, #toks - n + 1 do
    local key = tostring(toks[i])
    for j = i + 1, i + n - 1 do key = key .. "\0" .. tostring(toks[j]) end
    counts[key] = (counts[key] or 0) + 1
    total = total + 1
  end
  return counts, total
end

-- The reference length closest to hyp_len; a tie goes to the shorter one (as NLTK).
local function closest_ref_len(refs, hyp_len)
  local best
  for _, r in ipairs(refs) do
    local l = #r
    if not best or math.abs(l - hyp_len) < math.abs(best - hyp_len)
        or (math.abs(l - hyp_len) == math.abs(best - hyp_len) and l < best) then
      best = l
    end
  end
  return best or 0
end

---The sums corpus BLEU is made of: clipped n-gram matches and counts per order, and the lengths.
---@param references table[] references[i]: the reference sentences of hypothesis i
---@param hypotheses table hypotheses; a sentence is a token list or a string of space-separated words
---@param max_n? integer the largest n-gram order (default 4)
---@return {matches: integer[], counts: integer[], hyp_len: integer, ref_len: integer, max_n: integer} stats
function bleu.stats(references, hypotheses, max_n)
  max_n = max_n or 4
  if type(references) ~= "table" or type(hypotheses) ~= "table" then
    error("bleu: references and hypotheses must be lists", 3)
  end
  if #references ~= #hypotheses then
    error(("bleu: %d reference lists for %d hypotheses"):format(#references, #hypotheses), 3)
  end
  local st = { matches = {}, counts = {}, hyp_len = 0, ref_len = 0, max_n = max_n }
  for n = 1, max_n do st.matches[n], st.counts[n] = 0, 0 end
  for i, hyp in ipairs(hypotheses) do
    hyp = tokens(hyp, "hypothesis " .. i)
    local rl = references[i]
    if type(rl) ~= "table" or #rl == 0 then
      error(("bleu: hypothesis %d needs a non-empty list of references"):format(i), 3)
    end
    local refs = {}
    for j, r in ipairs(rl) do refs[j] = tokens(r, ("reference %d of hypothesis %d"):format(j, i)) end
    for n = 1, max_n do
      local hc, total = ngram_counts(hyp, n)
      -- clip: an n-gram counts at most as often as in the reference that has it most often
      local maxref = {}
      for _, r in ipairs(refs) do
        for k, c in pairs((ngram_counts(r, n))) do
          if hc[k] and c > (maxref[k] or 0) then maxref[k] = c end
        end
      end
      local m = 0
      for k, c in pairs(hc) do m = m + math.min(c, maxref[k] or 0) end
      st.matches[n] = st.matches[n] + m
      st.counts[n] = st.counts[n] + total
    end
    st.hyp_len = st.hyp_len + #hyp
    st.ref_len = st.ref_len + closest_ref_len(refs, #hyp)
  end
  return st
end

---The brevity penalty: 1 when the hypotheses are longer than the references, else exp(1 - r/c)
---(0 for an empty corpus of hypotheses).
---@param c integer total hypothesis length
---@param r integer total (closest) reference length
---@return number
function bleu.brevity_penalty(c, r)
  if c > r then return 1 end
  if c == 0 then return 0 end
  return math.exp(1 - r / c)
end

---BLEU from stats with the given n-gram weights; without smoothing, a zero precision for any
---weighted order gives 0.
---@param st table from bleu.stats
---@param weights? number[] one per order (default uniform over 1..st.max_n)
---@return number bleu in [0, 1]
function bleu.from_stats(st, weights)
  if not weights then
    weights = {}
    for n = 1, st.max_n do weights[n] = 1 / st.max_n end
  end
  if st.matches[1] == 0 then return 0 end
  local s = 0
  for n, w in ipairs(weights) do
    if w > 0 then
      local m, c = st.matches[n], st.counts[n]
      if not m then error("bleu: weights ask for " .. n .. "-grams beyond max_n", 2) end
      if m == 0 or c == 0 then return 0 end
      s = s + w * math.log(m / c)
    end
  end
  return bleu.brevity_penalty(st.hyp_len, st.ref_len) * math.exp(s)
end

---Corpus BLEU-1 .. BLEU-max_n; BLEU-k weighs the 1..k-gram precisions uniformly (NLTK's corpus_bleu
---with weights (1/k, ..., 1/k), no smoothing).
---@param references table[] references[i]: the reference sentences of hypothesis i
---@param hypotheses table the hypotheses (token lists or strings)
---@param opts? {max_n?: integer} default 4
---@return number[] scores {BLEU-1, ..., BLEU-max_n}
---@return table stats from bleu.stats
function bleu.corpus(references, hypotheses, opts)
  local st = bleu.stats(references, hypotheses, opts and opts.max_n or 4)
  local scores = {}
  for k = 1, st.max_n do
    local w = {}
    for n = 1, k do w[n] = 1 / k end
    scores[k] = bleu.from_stats(st, w)
  end
  return scores, st
end

---BLEU-1 .. BLEU-max_n of one hypothesis against its references (a corpus of one).
---@param references table the reference sentences
---@param hypothesis table|string the hypothesis
---@param opts? {max_n?: integer} default 4
---@return number[] scores
function bleu.sentence(references, hypothesis, opts)
  return bleu.corpus({ references }, { hypothesis }, opts)
end

return bleu
