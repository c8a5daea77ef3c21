-- nnlua.data.transforms (nn.data.transforms): torchvision's image transforms on C x H x W tensors
-- (uint8 from nn.image.load, or float after ToTensor). Each one also compiles to a step of a C
-- pipeline (T.compile), which nn.data.ImageLoader runs on a whole batch with OpenMP.
--
-- Randomness: t(img) draws from the global generator (nn.manual_seed); t:apply(img, rng) draws
-- from rng(), a function returning uniforms in [0, 1). T.stream(seed, epoch, index) is the stream
-- the C loader gives sample `index`, so a Lua transform can redo exactly what C did.
-- Resize is bilinear without antialiasing (torchvision's behaviour on tensors before 0.17,
-- antialias=False): downscaling by more than 2x aliases where PIL would smooth.
local core = require "nnlua.core"

local image = core.image
local T = {}

-- ---- random draws ----

local function global_uniform()
  local st = core.get_rng_state()
  core.set_rng_state({ seed = st.seed, offset = st.offset + 1 })
  return image._uniform(st.seed, st.offset)
end

---The random stream nn.image.load_batch gives sample `index` in an epoch, so Lua code can redo
---exactly what C did.
---@param seed integer the loader's seed
---@param epoch integer the epoch
---@param index integer the sample
---@return fun(): number rng uniform draws in [0, 1)
function T.stream(seed, epoch, index)
  local key, counter = image._rng_key(seed, epoch, index), -1
  return function()
    counter = counter + 1
    return image._uniform(key, counter)
  end
end

---Python's round(): to the nearest integer, halves to even (as torchvision's int(round(x))).
---@param x number
---@return integer
local function round(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  return f
end

-- torch.randint(0, n) from one draw
local function draw_int(rng, n)
  local v = math.floor(rng() * n)
  return v >= n and n - 1 or v
end

-- ---- the base class ----

local Transform = {}
Transform.__index = Transform

-- A class is callable: T.Resize(224) makes an instance; an instance is callable on an image.
local function class(name)
  local c = setmetatable({}, {
    __index = Transform,
    __call = function(cls, ...)
      local obj = setmetatable({}, cls)
      obj:init(...)
      return obj
    end,
  })
  c.__index, c.__name = c, name
  c.__call = function(self, img) return self:apply(img, global_uniform) end
  c.__tostring = function(self) return self:describe() end
  T[name] = c
  return c
end

function Transform:init() end
function Transform:describe() return self.__name .. "()" end
---The C pipeline steps of this transform, or nil if it has none (Lambda).
---@return table[]|nil steps
function Transform:steps() return nil end

local function check_image(img, who)
  if not core.is_tensor(img) then error(who .. ": expected an image tensor, got " .. type(img), 3) end
  if img:dim() < 2 then
    error(("%s: expected a C x H x W image, got shape [%s]"):format(who, table.concat(img:size(), ",")), 3)
  end
  return img:size(-2), img:size(-1)
end

-- size: n or {h, w} (or {n}); returns h, w (h = nil for a single number when single_ok)
local function check_size(size, who, single_ok)
  local function int(v) return math.type(v) == "integer" and v >= 1 and v <= 65535 end
  if type(size) == "table" and #size == 1 then size = size[1] end
  if int(size) then
    if single_ok then return nil, size end
    return size, size
  end
  if type(size) == "table" and #size == 2 and int(size[1]) and int(size[2]) then return size[1], size[2] end
  error(("%s: size must be an integer or {h, w} of integers in 1..65535, got %s")
    :format(who, type(size) == "table" and "{" .. table.concat(size, ", ") .. "}" or tostring(size)), 4)
end

local function size_str(h, w) return h and ("{%d, %d}"):format(h, w) or tostring(w) end

-- ---- Resize ----

---Resize an image: size n makes the shorter side n (the other keeps the aspect ratio, truncated);
---size {h, w} makes it exactly h x w. Bilinear, without antialiasing (torchvision on tensors < 0.17).
---@class nn.data.transforms.Resize
local Resize = class("Resize")

---nn.data.transforms.Resize(size, opts)
---@param size integer|integer[] n (shorter side) or {h, w}
---@param opts? {max_size?: integer} cap on the longer side, with a single size
function Resize:init(size, opts)
  opts = opts or {}
  self.h, self.w = check_size(size, "Resize", true)
  self.max_size = opts.max_size
  if self.max_size ~= nil then
    if self.h then error("Resize: max_size is only allowed with a single size", 3) end
    if math.type(self.max_size) ~= "integer" or self.max_size <= self.w then
      error(("Resize: max_size must be an integer larger than size (%d), got %s"):format(self.w,
        tostring(self.max_size)), 3)
    end
  end
  if opts.antialias then error("Resize: antialias = true is not supported (bilinear without antialiasing)", 3) end
  if opts.interpolation and opts.interpolation ~= "bilinear" then
    error(("Resize: only bilinear interpolation is supported, got %q"):format(tostring(opts.interpolation)), 3)
  end
end

---The output size for an h x w input.
---@param h integer
---@param w integer
---@return integer h
---@return integer w
function Resize:out_size(h, w)
  if self.h then return self.h, self.w end
  local short, long = math.min(h, w), math.max(h, w)
  local ns, nl = self.w, math.floor(self.w * long / short)
  if self.max_size and nl > self.max_size then
    ns, nl = math.floor(self.max_size * ns / nl), self.max_size
  end
  if w <= h then return nl, ns end
  return ns, nl
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@return Tensor
function Resize:apply(img)
  local h, w = check_image(img, "Resize")
  local oh, ow = self:out_size(h, w)
  if oh == h and ow == w then return img end
  return image.resize(img, oh, ow)
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function Resize:steps()
  if self.h then return { { kind = "resize", h = self.h, w = self.w } } end
  return { { kind = "resize", h = 0, w = self.w, max_size = self.max_size } }
end

---The text tostring(transform) shows.
---@return string
function Resize:describe()
  return ("Resize(size=%s%s)"):format(size_str(self.h, self.w),
    self.max_size and ", max_size=" .. self.max_size or "")
end

-- ---- CenterCrop ----

---Crop the central h x w of an image (a smaller image is padded with zeros).
---@class nn.data.transforms.CenterCrop
local CenterCrop = class("CenterCrop")

---nn.data.transforms.CenterCrop(size)
---@param size integer|integer[] n (n x n) or {h, w}
function CenterCrop:init(size) self.h, self.w = check_size(size, "CenterCrop") end

---The crop's top-left corner (0-based; negative where the image is padded).
---@param h integer image height
---@param w integer image width
---@param ch integer crop height
---@param cw integer crop width
---@return integer top
---@return integer left
function CenterCrop.origin(h, w, ch, cw)
  local top = ch > h and -((ch - h) // 2) or round((h - ch) / 2)
  local left = cw > w and -((cw - w) // 2) or round((w - cw) / 2)
  return top, left
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@return Tensor
function CenterCrop:apply(img)
  local h, w = check_image(img, "CenterCrop")
  local top, left = CenterCrop.origin(h, w, self.h, self.w)
  if top == 0 and left == 0 and h == self.h and w == self.w then return img end
  return image.crop(img, top + 1, left + 1, self.h, self.w)
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function CenterCrop:steps() return { { kind = "center_crop", h = self.h, w = self.w } } end
---The text tostring(transform) shows.
---@return string
function CenterCrop:describe() return ("CenterCrop(size=%s)"):format(size_str(self.h, self.w)) end

-- ---- RandomResizedCrop ----

---Crop a random area fraction (scale) and aspect ratio (log-uniform ratio) of the image, then
---resize it to size: torchvision's RandomResizedCrop (10 tries, else the central crop).
---@class nn.data.transforms.RandomResizedCrop
local RandomResizedCrop = class("RandomResizedCrop")

local function pair(v, default, name)
  v = v or default
  if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number" then
    error(("RandomResizedCrop: %s must be a pair {lo, hi} of numbers"):format(name), 4)
  end
  return { v[1], v[2] }
end

---nn.data.transforms.RandomResizedCrop(size, opts)
---@param size integer|integer[] output n (n x n) or {h, w}
---@param opts? {scale?: number[], ratio?: number[]} scale {0.08, 1} of the area; ratio {3/4, 4/3}
function RandomResizedCrop:init(size, opts)
  opts = opts or {}
  self.h, self.w = check_size(size, "RandomResizedCrop")
  self.scale = pair(opts.scale, { 0.08, 1.0 }, "scale")
  self.ratio = pair(opts.ratio, { 3 / 4, 4 / 3 }, "ratio")
  if not (self.scale[1] > 0 and self.scale[1] <= self.scale[2] and self.ratio[1] > 0 and self.ratio[2] > 0) then
    error(("RandomResizedCrop: need 0 < scale[1] <= scale[2] and positive ratios, got scale {%g, %g}, ratio {%g, %g}")
      :format(self.scale[1], self.scale[2], self.ratio[1], self.ratio[2]), 3)
  end
end

---torchvision's get_params: the crop for an h x w image, drawing what the C pipeline draws, in order.
---@param h integer image height
---@param w integer image width
---@param scale number[] {lo, hi} area fraction
---@param ratio number[] {lo, hi} aspect ratio
---@param rng fun(): number uniform draws
---@return integer top 0-based
---@return integer left 0-based
---@return integer ch crop height
---@return integer cw crop width
function RandomResizedCrop.params(h, w, scale, ratio, rng)
  local area = h * w
  local lr1, lr2 = math.log(ratio[1]), math.log(ratio[2])
  for _ = 1, 10 do
    local target = area * (scale[1] + (scale[2] - scale[1]) * rng())
    local aspect = math.exp(lr1 + (lr2 - lr1) * rng())
    local cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
    if cw > 0 and cw <= w and ch > 0 and ch <= h then
      local top = draw_int(rng, h - ch + 1)
      return top, draw_int(rng, w - cw + 1), ch, cw
    end
  end
  local in_ratio, rmin, rmax = w / h, math.min(ratio[1], ratio[2]), math.max(ratio[1], ratio[2])
  local ch, cw = h, w
  if in_ratio < rmin then
    ch = round(w / rmin)
  elseif in_ratio > rmax then
    cw = round(h * rmax)
  end
  return (h - ch) // 2, (w - cw) // 2, ch, cw
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@param rng? fun(): number uniform draws in [0, 1) (default: the global generator)
---@return Tensor
function RandomResizedCrop:apply(img, rng)
  local h, w = check_image(img, "RandomResizedCrop")
  local top, left, ch, cw = RandomResizedCrop.params(h, w, self.scale, self.ratio, rng or global_uniform)
  local out = img
  if top ~= 0 or left ~= 0 or ch ~= h or cw ~= w then out = image.crop(img, top + 1, left + 1, ch, cw) end
  if ch ~= self.h or cw ~= self.w then out = image.resize(out, self.h, self.w) end
  return out
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function RandomResizedCrop:steps()
  return { { kind = "random_resized_crop", h = self.h, w = self.w, scale = self.scale, ratio = self.ratio } }
end

---The text tostring(transform) shows.
---@return string
function RandomResizedCrop:describe()
  return ("RandomResizedCrop(size=%s, scale={%g, %g}, ratio={%g, %g})"):format(size_str(self.h, self.w),
    self.scale[1], self.scale[2], self.ratio[1], self.ratio[2])
end

-- ---- RandomHorizontalFlip ----

---Mirror the image left-right with probability p.
---@class nn.data.transforms.RandomHorizontalFlip
local RandomHorizontalFlip = class("RandomHorizontalFlip")

---nn.data.transforms.RandomHorizontalFlip(p)
---@param p? number the probability of a flip (default 0.5)
function RandomHorizontalFlip:init(p)
  self.p = p == nil and 0.5 or p
  if type(self.p) ~= "number" or not (self.p >= 0 and self.p <= 1) then
    error("RandomHorizontalFlip: p must be a number in [0, 1], got " .. tostring(p), 3)
  end
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@param rng? fun(): number uniform draws in [0, 1) (default: the global generator)
---@return Tensor
function RandomHorizontalFlip:apply(img, rng)
  check_image(img, "RandomHorizontalFlip")
  if (rng or global_uniform)() < self.p then return image.hflip(img) end
  return img
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function RandomHorizontalFlip:steps() return { { kind = "hflip", p = self.p } } end
---The text tostring(transform) shows.
---@return string
function RandomHorizontalFlip:describe() return ("RandomHorizontalFlip(p=%g)"):format(self.p) end

-- ---- ToTensor, Normalize ----

---uint8 C x H x W -> float32 in [0, 1] (v / 255): nn.data.transforms.ToTensor().
---@class nn.data.transforms.ToTensor
local ToTensor = class("ToTensor")

---Convert one image.
---@param img Tensor uint8 C x H x W
---@return Tensor float32
function ToTensor:apply(img)
  if not core.is_tensor(img) then error("ToTensor: expected an image tensor, got " .. type(img), 2) end
  return image.to_float(img)
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function ToTensor:steps() return { { kind = "to_tensor" } } end

---(x - mean[c]) / std[c] per channel of a float image.
---@class nn.data.transforms.Normalize
local Normalize = class("Normalize")

local function numbers(v, who, what)
  if type(v) == "number" then v = { v } end
  if type(v) ~= "table" or #v < 1 or #v > 4 then
    error(("%s: %s must be a number or 1 to 4 numbers"):format(who, what), 4)
  end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= "number" then error(("%s: %s[%d] must be a number"):format(who, what, i), 4) end
    out[i] = v[i]
  end
  return out
end

---nn.data.transforms.Normalize(mean, std), e.g. ImageNet's {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}.
---@param mean number|number[] one value or one per channel
---@param std number|number[] as mean; non-zero
function Normalize:init(mean, std)
  self.mean, self.std = numbers(mean, "Normalize", "mean"), numbers(std, "Normalize", "std")
  if #self.mean ~= #self.std then
    error(("Normalize: %d mean values but %d std values"):format(#self.mean, #self.std), 3)
  end
  for i, s in ipairs(self.std) do
    if s == 0 then error(("Normalize: std[%d] is zero"):format(i), 3) end
  end
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@return Tensor
function Normalize:apply(img)
  if not core.is_tensor(img) then error("Normalize: expected an image tensor, got " .. type(img), 2) end
  return image.normalize(img, self.mean, self.std)
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function Normalize:steps() return { { kind = "normalize", mean = self.mean, std = self.std } } end

---The text tostring(transform) shows.
---@return string
function Normalize:describe()
  return ("Normalize(mean={%s}, std={%s})"):format(table.concat(self.mean, ", "), table.concat(self.std, ", "))
end

-- ---- Lambda, Compose ----

---A transform made of a function img -> img. It runs in Lua, so a loader with it decodes images
---one by one instead of in C.
---@class nn.data.transforms.Lambda
local Lambda = class("Lambda")

---nn.data.transforms.Lambda(fn)
---@param fn fun(img: Tensor): Tensor
function Lambda:init(fn)
  if type(fn) ~= "function" then error("Lambda: a function expected, got " .. type(fn), 3) end
  self.fn = fn
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@return Tensor
function Lambda:apply(img) return self.fn(img) end

---Several transforms applied in turn: Compose{Resize(256), CenterCrop(224), ToTensor()}.
---@class nn.data.transforms.Compose
local Compose = class("Compose")

---nn.data.transforms.Compose{t1, t2, ...}
---@param list table transforms, or plain functions img -> img
function Compose:init(list)
  if type(list) ~= "table" or getmetatable(list) then error("Compose: a list of transforms expected", 3) end
  self.transforms = {}
  for i, t in ipairs(list) do
    local mt = type(t) == "table" and getmetatable(t)
    if type(t) ~= "function" and not (mt and mt.__call) then
      error(("Compose: item %d is a %s, not a transform"):format(i, type(t)), 3)
    end
    self.transforms[i] = t
  end
end

---Transform one image (what calling the transform does, with the global generator).
---@param img Tensor C x H x W
---@param rng? fun(): number uniform draws in [0, 1) (default: the global generator)
---@return Tensor
function Compose:apply(img, rng)
  for i, t in ipairs(self.transforms) do
    if type(t) == "function" then
      img = t(img)
    elseif t.apply then
      img = t:apply(img, rng)
    else
      img = t(img)
    end
    if img == nil then error(("Compose: transform %d returned nothing"):format(i), 2) end
  end
  return img
end

---The C pipeline steps of this transform (for nn.image.pipeline).
---@return table[]|nil steps nil when it has none
function Compose:steps()
  local out = {}
  for _, t in ipairs(self.transforms) do
    local s = type(t) == "table" and t.steps and t:steps()
    if not s then return nil end
    for _, step in ipairs(s) do out[#out + 1] = step end
  end
  return out
end

---The text tostring(transform) shows.
---@return string
function Compose:describe()
  local parts = {}
  for i, t in ipairs(self.transforms) do
    parts[i] = "  " .. (type(t) == "function" and "<function>" or tostring(t))
  end
  return "Compose{\n" .. table.concat(parts, ",\n") .. "\n}"
end

---Compile a transform into a C pipeline (nn.image.pipeline), or nil when some part runs in Lua.
---@param transform table|nil a transform (nil: the empty pipeline)
---@return userdata|nil pipeline
function T.compile(transform)
  if transform == nil then return image.pipeline({}) end
  local s = type(transform) == "table" and transform.steps and transform:steps()
  if not s then return nil end
  return image.pipeline(s)
end

T.round = round
return T
