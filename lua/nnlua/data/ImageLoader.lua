-- nnlua.data.ImageLoader (nn.data.ImageLoader; nn.data.DataLoader(ImageFolder) returns one): batches
-- of an ImageFolder read, decoded and augmented by ONE C call per batch, OpenMP across images.
-- Deterministic: the shuffle of epoch e and the random draws of sample i in epoch e depend only on
-- (seed, e, i), never on the thread count, the batch size or the global generator.
local core = require "nnlua.core"
local T = require "nnlua.data.transforms"

local image = core.image

---Batches of an ImageFolder read, decoded and augmented by one C call per batch (OpenMP across
---images); nn.data.DataLoader(image_folder, opts) makes one. xb is float32 B x C x H x W when the
---transform ends in ToTensor (uint8 otherwise), yb int64 labels. Deterministic: the shuffle and the
---random draws of sample i in epoch e depend only on (seed, e, i), not on threads or batch size.
---A transform made only of nn.data.transforms with a fixed output size runs in C; any other runs
---in Lua per image, with the same per-sample random streams.
---@class nn.data.ImageLoader
---@overload fun(dataset: nn.data.ImageFolder, opts?: nn.data.ImageLoader.opts): nn.data.ImageLoader
---@field epoch integer the epoch the next iter() runs
local ImageLoader = {}
ImageLoader.__index = ImageLoader
ImageLoader.__name = "ImageLoader"

local loaders = 0

local function check_int(v, name, lo)
  if math.type(v) ~= "integer" or v < lo then
    error(("ImageLoader: %s must be an integer >= %d, got %s"):format(name, lo, tostring(v)), 4)
  end
  return v
end

---Options of nn.data.ImageLoader.
---@class nn.data.ImageLoader.opts
---@field batch_size? integer (default 1)
---@field shuffle? boolean (default false)
---@field seed? integer (default: derived from the global generator's state)
---@field drop_last? boolean (default false)
---@field num_threads? integer decoding threads (default nn.get_num_threads())
---@field transform? any (default the dataset's)

-- ImageLoader(dataset, opts): see the class annotation above.
local function new(_, dataset, opts)
  opts = opts or {}
  if type(dataset) ~= "table" or type(dataset.samples) ~= "table" then
    error("ImageLoader: an ImageFolder (a dataset with .samples) expected, got " .. type(dataset), 2)
  end
  local bs = check_int(opts.batch_size or 1, "batch_size", 1)
  loaders = loaders + 1
  local seed = opts.seed
  if seed == nil then seed = core.get_rng_state().seed ~ (0x2545F4914F6CDD1D * loaders) end
  check_int(seed, "seed", math.mininteger)
  local threads = check_int(opts.num_threads or (core.get_num_threads and core.get_num_threads()) or 1,
    "num_threads", 1)
  local transform = opts.transform
  if transform == nil then transform = dataset.transform end
  local self = setmetatable({
    dataset = dataset, n = #dataset.samples, batch_size = bs, shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false, seed = seed, epoch = 0, num_threads = threads,
    channels = dataset.channels or 3, transform = transform,
  }, ImageLoader)
  -- the C pipeline, when the whole transform has one and its output size is fixed
  local ok, pipe = pcall(T.compile, transform)
  if not ok then error("ImageLoader: " .. tostring(pipe), 2) end
  if pipe and pipe:out_size() then self.pipeline = pipe end
  return self
end

--- #loader: batches per epoch.
function ImageLoader.__len(self)
  if self.drop_last then return self.n // self.batch_size end
  return (self.n + self.batch_size - 1) // self.batch_size
end

---Make the next iter() run epoch e (its shuffle and draws), e.g. when resuming; iter() counts up.
---@param e integer
function ImageLoader:set_epoch(e)
  self.epoch = check_int(e, "epoch", 0)
end

---The sample order of an epoch (1-based indices), leaving the global generator as it was.
---@param epoch integer
---@return integer[] order
function ImageLoader:permutation(epoch)
  local saved = core.get_rng_state()
  core.set_rng_state({ seed = image._rng_key(self.seed, epoch, 0), offset = 0 })
  local ok, perm = pcall(core.randperm, self.n)
  core.set_rng_state(saved)
  if not ok then error(perm, 0) end
  return perm:totable()
end

-- Samples one by one in Lua: nn.image.load, the transform with the sample's own stream, stack.
function ImageLoader:_lua_batch(indices, epoch)
  local imgs = {}
  for k, i in ipairs(indices) do
    local img = image.load(self.dataset.samples[i][1], self.channels)
    local t = self.transform
    if type(t) == "table" and t.apply then
      img = t:apply(img, T.stream(self.seed, epoch, i))
    elseif t then
      img = t(img)
    end
    imgs[k] = img
  end
  local ok, xb = pcall(core.stack, imgs, 1)
  if not ok then
    error("ImageLoader: cannot stack the batch (images of different sizes? end the transform with a "
      .. "crop or a Resize{h, w}): " .. tostring(xb), 0)
  end
  return xb
end

---The batch of these samples in an epoch (what iter() yields).
---@param indices integer[] 1-based sample numbers
---@param epoch integer the epoch (for the random draws)
---@return Tensor xb images B x C x H x W
---@return Tensor yb int64 labels
function ImageLoader:batch(indices, epoch)
  epoch = epoch or self.epoch
  local paths, labels, samples = {}, {}, self.dataset.samples
  for k, i in ipairs(indices) do
    local s = samples[i]
    if not s then error(("ImageLoader: sample index %s out of range (1 to %d)"):format(tostring(i), self.n), 2) end
    paths[k], labels[k] = s[1], s[2]
  end
  local xb
  if self.pipeline then
    xb = image.load_batch(paths, self.pipeline, { channels = self.channels, seed = self.seed, epoch = epoch,
      indices = indices, threads = self.num_threads })
  else
    xb = self:_lua_batch(indices, epoch)
  end
  local tt = self.dataset.target_transform
  if tt then
    for k = 1, #labels do labels[k] = tt(labels[k]) end
  end
  return xb, core.tensor(labels, "int64")
end

---One epoch: `for xb, yb in loader:iter() do ... end` (a new order each epoch when shuffling).
---@return fun(): Tensor, Tensor iterator
function ImageLoader:iter()
  local epoch, bs, n, nb = self.epoch, self.batch_size, self.n, #self
  self.epoch = epoch + 1
  local order = self.shuffle and self:permutation(epoch) or nil
  local b = 0
  return function()
    b = b + 1
    if b > nb then return nil end
    local first, indices = (b - 1) * bs + 1, {}
    for k = first, math.min(first + bs - 1, n) do indices[#indices + 1] = order and order[k] or k end
    return self:batch(indices, epoch)
  end
end

function ImageLoader:__tostring()
  return ("ImageLoader(%d images, batch_size=%d, %d batches%s%s, %s, %d threads)"):format(self.n, self.batch_size,
    #self, self.shuffle and ", shuffle" or "", self.drop_last and ", drop_last" or "",
    self.pipeline and "C pipeline" or "Lua transforms", self.num_threads)
end

return setmetatable(ImageLoader, { __call = new })
