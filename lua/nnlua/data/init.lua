-- nnlua.data (nn.data): datasets and the DataLoader. MNIST-style IDX sets load whole into tensors;
-- a batch is cut with one C gather per tensor (index_select), never sample by sample in Lua.
local core = require "nnlua.core"

local data = {}

-- ---- TensorDataset ----

---A dataset of tensors sliced along their first dimension: sample i is (x[i], y[i], ...). MNIST and
---Fashion-MNIST load as one (fields images, labels, classes).
---@class nn.data.TensorDataset
---@field tensors Tensor[]
---@field n integer the number of samples
local TensorDataset = {}
TensorDataset.__index = TensorDataset
TensorDataset.__name = "TensorDataset"

---nn.data.TensorDataset(x, y, ...): sample i is (x[i], y[i], ...); the tensors share their first size.
---@param ... Tensor the tensors
---@return nn.data.TensorDataset
function data.TensorDataset(...)
  local tensors = table.pack(...)
  if tensors.n == 0 then error("TensorDataset: at least one tensor expected", 2) end
  local n
  for i = 1, tensors.n do
    local t = tensors[i]
    if not core.is_tensor(t) then
      error(("TensorDataset: argument %d must be a tensor, got %s"):format(i, type(t)), 2)
    end
    if t:dim() == 0 then error(("TensorDataset: argument %d is 0-d (needs a first dimension)"):format(i), 2) end
    if n and t:size(1) ~= n then
      error(("TensorDataset: size mismatch: argument 1 has %d samples, argument %d has %d")
        :format(n, i, t:size(1)), 2)
    end
    n = t:size(1)
  end
  tensors.n = nil
  return setmetatable({ tensors = tensors, n = n }, TensorDataset)
end

---The number of samples (also #ds).
---@return integer
function TensorDataset:size() return self.n end
function TensorDataset.__len(self) return self.n end

---The i-th sample of each tensor (views; a 1-D tensor gives a 0-d tensor).
---@param i integer 1-based
---@return Tensor ... one per tensor
function TensorDataset:get(i)
  if math.type(i) ~= "integer" or i < 1 or i > self.n then
    error(("%s:get: index %s out of range (1 to %d)"):format(self.__name, tostring(i), self.n), 2)
  end
  local out = {}
  for k, t in ipairs(self.tensors) do out[k] = t:select(1, i) end
  return table.unpack(out)
end

---A dataset of samples start .. start + len - 1 (views, no copy): a validation split, a subset.
---@param start integer 1-based first sample
---@param len integer how many
---@return nn.data.TensorDataset
function TensorDataset:narrow(start, len)
  local ts = {}
  for k, t in ipairs(self.tensors) do ts[k] = t:narrow(1, start, len) end
  local d = data.TensorDataset(table.unpack(ts))
  d.classes = self.classes
  return d
end

function TensorDataset:__tostring()
  local parts = {}
  for k, t in ipairs(self.tensors) do
    parts[k] = ("%s[%s]"):format(t:dtype(), table.concat(t:size(), "x"))
  end
  return ("%s(%d samples: %s)"):format(self.__name, self.n, table.concat(parts, ", "))
end

-- ---- MNIST and Fashion-MNIST (IDX files, plain or .gz) ----

local FILES = {
  train = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "train-images.idx3-ubyte",
            "train-labels.idx1-ubyte" },
  test = { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "t10k-images.idx3-ubyte",
           "t10k-labels.idx1-ubyte" },
}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function find(dir, names, fn)
  local tried = {}
  for _, base in ipairs(names) do
    for _, name in ipairs({ base .. ".gz", base }) do
      local p = dir .. "/" .. name
      if exists(p) then return p end
      tried[#tried + 1] = name
    end
  end
  error(("%s: no %s in %s (tried %s; scripts/get-data downloads them)")
    :format(fn, names[1], dir, table.concat(tried, ", ")), 3)
end

local function idx_dataset(fn, name, dir, split, classes)
  if type(dir) ~= "string" then error(fn .. ": directory (a string) expected, got " .. type(dir), 3) end
  split = split or "train"
  local f = FILES[split]
  if not f then error(("%s: split must be \"train\" or \"test\", got %q"):format(fn, tostring(split)), 3) end
  local ipath = find(dir, { f[1], f[3] }, fn)
  local lpath = find(dir, { f[2], f[4] }, fn)
  local images = core.io.read_idx(ipath, "float32", 1 / 255)
  local labels = core.io.read_idx(lpath, "int64")
  if images:dim() ~= 3 then
    error(("%s: %s: expected N x H x W images, got %d dimensions"):format(fn, ipath, images:dim()), 3)
  end
  if labels:dim() ~= 1 or labels:size(1) ~= images:size(1) then
    error(("%s: %s holds %d labels for the %d images of %s")
      :format(fn, lpath, labels:numel(), images:size(1), ipath), 3)
  end
  if labels:numel() > 0 then
    local lo, hi = labels:min():item(), labels:max():item()
    if lo < 0 or hi >= #classes then
      error(("%s: %s: labels must be 0..%d, found %d..%d"):format(fn, lpath, #classes - 1, lo, hi), 3)
    end
  end
  local n, h, w = images:size(1), images:size(2), images:size(3)
  local ds = data.TensorDataset(images:view(n, 1, h, w), labels + 1)
  ds.__name = name
  ds.images, ds.labels = ds.tensors[1], ds.tensors[2]
  ds.classes, ds.split, ds.root = classes, split, dir
  return ds
end

local DIGITS = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" }
local FASHION = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot" }

---MNIST from IDX files in dir (plain or .gz; scripts/get-data fetches them): images N x 1 x 28 x 28
---float32 in [0, 1], labels int64 1..10 (digit d has label d + 1).
---@param dir string the directory with train-images-idx3-ubyte(.gz), ...
---@param split? "train"|"test" (default "train")
---@return nn.data.TensorDataset ds with fields images, labels, classes, split, root
function data.mnist(dir, split) return idx_dataset("nn.data.mnist", "MNIST", dir, split, DIGITS) end

---Fashion-MNIST from IDX files in dir, as nn.data.mnist; classes names the ten garments.
---@param dir string the directory
---@param split? "train"|"test" (default "train")
---@return nn.data.TensorDataset ds
function data.fashion_mnist(dir, split) return idx_dataset("nn.data.fashion_mnist", "FashionMNIST", dir, split, FASHION) end

-- ---- DataLoader ----

---Batches of a dataset, optionally shuffled: `for xb, yb in loader:iter() do ... end`; #loader is the
---number of batches. A TensorDataset is cut with one C gather per tensor per batch (views when not
---shuffling); another dataset (with get(i) and size()) is stacked sample by sample.
---@class nn.data.DataLoader
---@field dataset table
---@field batch_size integer
---@field shuffle boolean
---@field drop_last boolean
---@field seed integer the shuffle's own random stream
local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"

---Options of nn.data.DataLoader (an ImageFolder's loader, nn.data.ImageLoader, takes more).
---@class nn.data.DataLoader.opts
---@field batch_size? integer samples per batch (default 1)
---@field shuffle? boolean a new order every pass (default false)
---@field seed? integer seed of the shuffle's own stream (default: from the global state, without drawing)
---@field drop_last? boolean drop a last, smaller batch (default false)

---A loader for a TensorDataset (or any dataset with size() and get(i)).
---@param dataset table
---@param opts? nn.data.DataLoader.opts
---@return nn.data.DataLoader
function data.DataLoader(dataset, opts)
  opts = opts or {}
  if type(dataset) ~= "table" then error("DataLoader: dataset expected, got " .. type(dataset), 2) end
  local n = dataset.size and dataset:size() or #dataset
  if math.type(n) ~= "integer" then error("DataLoader: the dataset has no integer size", 2) end
  local bs = opts.batch_size or 1
  if math.type(bs) ~= "integer" or bs < 1 then
    error("DataLoader: batch_size must be a positive integer, got " .. tostring(bs), 2)
  end
  if not dataset.tensors and not dataset.get then
    error("DataLoader: dataset needs .tensors (TensorDataset) or a get(i) method", 2)
  end
  local seed = opts.seed
  if seed == nil then -- from the global state, without drawing from it
    local g = core.get_rng_state()
    seed = g.seed ~ (0x5DEECE66D * (g.offset + 1))
  end
  if math.type(seed) ~= "integer" then error("DataLoader: seed must be an integer, got " .. tostring(seed), 2) end
  local self = setmetatable({
    dataset = dataset, n = n, batch_size = bs, shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false, seed = seed,
    _rng = { seed = seed, offset = 0 },
  }, DataLoader)
  return self
end

--- #loader: batches per epoch.
function DataLoader.__len(self)
  if self.drop_last then return self.n // self.batch_size end
  return (self.n + self.batch_size - 1) // self.batch_size
end

-- The next permutation (1-based int64) of this loader's own stream; the global stream is left as
-- it was.
function DataLoader:_permutation()
  local saved = core.get_rng_state()
  core.set_rng_state(self._rng)
  local ok, perm = pcall(core.randperm, self.n)
  self._rng = core.get_rng_state()
  core.set_rng_state(saved)
  if not ok then error(perm, 0) end
  return perm
end

local function stack_samples(dataset, first, count, order)
  local cols = {}
  for j = 1, count do
    local i = order and order[first + j - 1] or first + j - 1
    local s = table.pack(dataset:get(i))
    for k = 1, s.n do
      cols[k] = cols[k] or {}
      cols[k][j] = s[k]
    end
  end
  for k, c in ipairs(cols) do cols[k] = core.stack(c, 1) end
  return cols
end

---One pass over the data: `for xb, yb in loader:iter() do ... end` (a new order each pass when
---shuffling). Without shuffle, batches of a TensorDataset are views (no copy).
---@return fun(): Tensor, ... iterator of batches, one tensor per dataset tensor
function DataLoader:iter()
  local n, bs, nb = self.n, self.batch_size, #self
  local tensors = self.dataset.tensors
  local perm = self.shuffle and self:_permutation() or nil
  local order = perm and not tensors and perm:totable() or nil
  local b = 0
  return function()
    b = b + 1
    if b > nb then return nil end
    local first = (b - 1) * bs + 1
    local count = math.min(bs, n - first + 1)
    if not tensors then return table.unpack(stack_samples(self.dataset, first, count, order)) end
    local out = {}
    if perm then
      local idx = perm:narrow(1, first, count)
      for k, t in ipairs(tensors) do out[k] = t:index_select(1, idx) end
    else
      for k, t in ipairs(tensors) do out[k] = t:narrow(1, first, count) end
    end
    return table.unpack(out)
  end
end

function DataLoader:__tostring()
  return ("DataLoader(%d samples, batch_size=%d, %d batches%s%s)"):format(self.n, self.batch_size,
    #self, self.shuffle and ", shuffle" or "", self.drop_last and ", drop_last" or "")
end

data.TensorDataset_class = TensorDataset
data.DataLoader_class = DataLoader

-- Images (transforms.lua, ImageFolder.lua, ImageLoader.lua), loaded on first use. A dataset that
-- brings its own loader (ImageFolder: batches decoded and augmented in C) gets it from DataLoader.
local image_modules = { transforms = "nnlua.data.transforms", ImageFolder = "nnlua.data.ImageFolder",
                        ImageLoader = "nnlua.data.ImageLoader" }
setmetatable(data, { __index = function(t, k)
  local path = image_modules[k]
  if not path then return nil end
  local m = require(path)
  rawset(t, k, m)
  return m
end })
local tensor_loader = data.DataLoader
---Batches of a dataset: nn.data.DataLoader(ds, {batch_size = 64, shuffle = true}); iterate with
---`for xb, yb in loader:iter() do`. An ImageFolder gets an nn.data.ImageLoader (batches decoded and
---augmented in C), any other dataset an nn.data.DataLoader.
---@param dataset table a TensorDataset, an ImageFolder, or anything with size() and get(i)
---@param opts? nn.data.DataLoader.opts
---@return nn.data.DataLoader|nn.data.ImageLoader loader
function data.DataLoader(dataset, opts)
  if type(dataset) == "table" and dataset._make_loader then return dataset:_make_loader(opts) end
  return tensor_loader(dataset, opts)
end

return data
