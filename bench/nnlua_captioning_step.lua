-- bench/nnlua_captioning_step.lua: one training step of the course's LSTM captioner at its shapes
-- (twin: bench/torch_captioning.py --step-bench); random data, median step time as a JSON line.
local nn = rawget(_G, "nn") or require "nnlua"
local Captioner = require "nnlua.models.captioning"

local USAGE = [[usage: nnlua bench/nnlua_captioning_step.lua [options]

The course's captioning training step: features N x D -> affine -> h0, word embedding N x T x W,
LSTM (or RNN) with hidden size H, temporal affine to V scores, softmax loss masked at <NULL>,
backward, Adam update. Random features and captions (random lengths, <NULL>-padded).
  --N 25 --T 16 --D 512 --W 256 --H 512 --V 1004   shapes (the course's)
  --cell lstm|rnn     recurrent cell (default lstm)
  --reps R            timed steps (default 30), after --warmup W (default 5)
  --threads T         kernel and BLAS threads (default: as started)
  --seed S            random data and weights (default 0)
Prints {"bench":"captioning_step","impl":"nnlua","median_s":...,"min_s":...,...}]]

local o = { N = 25, T = 16, D = 512, W = 256, H = 512, V = 1004, reps = 30, warmup = 5, seed = 0,
            cell = "lstm" }
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "-h" or a == "--help" then print(USAGE) return end
  local key = a:match("^%-%-(%w+)$")
  if not key or (o[key] == nil and key ~= "threads") then
    io.stderr:write("nnlua_captioning_step: unknown option " .. a .. "\n") os.exit(2)
  end
  local v = arg[i + 1]
  if v == nil then io.stderr:write("nnlua_captioning_step: " .. a .. " needs a value\n") os.exit(2) end
  o[key] = key == "cell" and v or math.tointeger(tonumber(v))
  if o[key] == nil then io.stderr:write("nnlua_captioning_step: " .. a .. " needs an integer\n") os.exit(2) end
  i = i + 2
end
if o.threads then nn.set_num_threads(o.threads) end

nn.manual_seed(o.seed)
local model = Captioner{ vocab_size = o.V, wordvec_dim = o.W, hidden_dim = o.H, cell = o.cell,
                         encoder = nn.Identity(), feature_dim = o.D }
local opt = nn.optim.Adam(model:parameters(), { lr = 1e-3 })

-- captions: <START>, L random words (L in T/4 .. T-1), <END>, then <NULL>: about 1/3 is masked
math.randomseed(o.seed)
local feats = nn.randn(o.N, o.D)
local rows = {}
for n = 1, o.N do
  local row, L = { 2 }, math.random(o.T // 4, o.T - 1)
  for t = 1, L do row[#row + 1] = math.random(5, o.V) end
  row[#row + 1] = 3
  while #row < o.T + 1 do row[#row + 1] = 1 end
  rows[n] = row
end
local captions = nn.tensor(rows, "int64")

local function step()
  opt:zero_grad()
  local loss = model(feats, captions)
  loss:backward()
  opt:step()
  return loss:item()
end

for _ = 1, o.warmup do step() end
local ts = {}
for r = 1, o.reps do
  local t0 = nn.clock()
  step()
  ts[r] = nn.clock() - t0
end
table.sort(ts)
local med = #ts % 2 == 1 and ts[(#ts + 1) // 2] or (ts[#ts // 2] + ts[#ts // 2 + 1]) / 2
print(('{"bench":"captioning_step","impl":"nnlua","cell":"%s","median_s":%.6f,"min_s":%.6f,'
  .. '"reps":%d,"N":%d,"T":%d,"D":%d,"W":%d,"H":%d,"V":%d,"threads":%d,"openblas_coretype":%s}')
  :format(o.cell, med, ts[1], o.reps, o.N, o.T, o.D, o.W, o.H, o.V, nn.get_num_threads(),
          os.getenv("OPENBLAS_CORETYPE") and ('"' .. os.getenv("OPENBLAS_CORETYPE") .. '"') or "null"))
