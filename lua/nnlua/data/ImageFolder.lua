-- nnlua.data.ImageFolder (nn.data.ImageFolder): torchvision's ImageFolder. root/<class>/**/<file>:
-- one class per subfolder (sorted bytewise, labels 1..C), image files found recursively, in
-- torchvision's order (folders sorted by path, files sorted within each folder).
local core = require "nnlua.core"

local image = core.image

---torchvision's ImageFolder: root/<class>/**/<image file>, one class per subfolder (sorted, labels
---1..C), files found recursively in torchvision's order. get(i) loads image i (uint8 C x H x W) and
---applies the transform; nn.data.DataLoader(ds, opts) gives an ImageLoader (batches made in C).
---@class nn.data.ImageFolder
---@overload fun(root: string, opts?: nn.data.ImageFolder.opts): nn.data.ImageFolder
---@field root string
---@field classes string[] class names (folder names), label i is classes[i]
---@field class_to_idx table<string, integer>
---@field samples table[] {path, label} per image
---@field targets integer[] the label of each image
---@field transform any|nil applied by get(i) and by the loader
local ImageFolder = {}
ImageFolder.__index = ImageFolder
ImageFolder.__name = "ImageFolder"

-- What stb decodes here; torchvision also lists .ppm .pgm .tif .tiff .webp, which it reads with PIL.
ImageFolder.EXTENSIONS = { ".jpg", ".jpeg", ".png", ".bmp" }

local MAX_DEPTH = 32 -- symlinks are followed, as torchvision's os.walk(followlinks=True): no loops

---Python's string order (bytewise), whatever the C locale's collation.
---@param a string
---@param b string
---@return boolean
local function byte_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function has_extension(name, exts)
  local lower = name:lower()
  for _, e in ipairs(exts) do
    if #lower > #e and lower:sub(-#e) == e then return true end
  end
  return false
end

-- Every folder under dir (dir included), sorted by path as torchvision's sorted(os.walk(dir)).
local function folders(dir, depth, out)
  out[#out + 1] = dir
  if depth >= MAX_DEPTH then
    error(("%s: folders nested deeper than %d (a symlink loop?)"):format(dir, MAX_DEPTH), 0)
  end
  local names, isdir = image._listdir(dir)
  for i, name in ipairs(names) do
    if isdir[i] then folders(dir .. "/" .. name, depth + 1, out) end
  end
  return out
end

local function image_files(dir, exts, out)
  local dirs = folders(dir, 0, {})
  table.sort(dirs, byte_less)
  for _, d in ipairs(dirs) do
    local names, isdir = image._listdir(d)
    for i, name in ipairs(names) do
      if not isdir[i] and has_extension(name, exts) then out[#out + 1] = d .. "/" .. name end
    end
  end
  return out
end

---Options of nn.data.ImageFolder.
---@class nn.data.ImageFolder.opts
---@field transform? any applied to each image (nn.data.transforms: runs in C in a loader)
---@field target_transform? fun(label: integer): any applied to each label
---@field channels? integer 1..4; 3 (default) converts grey to RGB, as torchvision's loader
---@field extensions? string[] file name endings (default .jpg .jpeg .png .bmp)
---@field allow_empty? boolean allow class folders without images (default false)

-- ImageFolder(root, opts): see the class annotation above.
local function new(_, root, opts)
  opts = opts or {}
  if type(root) ~= "string" then error("ImageFolder: root (a directory path) expected, got " .. type(root), 2) end
  if type(opts) ~= "table" then error("ImageFolder: options must be a table, got " .. type(opts), 2) end
  root = root:gsub("(.)/+$", "%1")
  local channels = opts.channels or 3
  if math.type(channels) ~= "integer" or channels < 1 or channels > 4 then
    error("ImageFolder: channels must be 1..4, got " .. tostring(channels), 2)
  end
  local exts = opts.extensions or ImageFolder.EXTENSIONS
  local ok, names, isdir = pcall(image._listdir, root)
  if not ok then error("ImageFolder: " .. tostring(names), 2) end
  local classes, class_to_idx = {}, {}
  for i, name in ipairs(names) do
    if isdir[i] then
      classes[#classes + 1] = name
      class_to_idx[name] = #classes
    end
  end
  if #classes == 0 then error(("ImageFolder: no class folders in %s"):format(root), 2) end
  local samples, targets, empty = {}, {}, {}
  for label, cls in ipairs(classes) do
    local ok2, files = pcall(image_files, root .. "/" .. cls, exts, {})
    if not ok2 then error("ImageFolder: " .. tostring(files), 2) end
    if #files == 0 then empty[#empty + 1] = cls end
    for _, path in ipairs(files) do
      samples[#samples + 1] = { path, label }
      targets[#targets + 1] = label
    end
  end
  if #empty > 0 and not opts.allow_empty then
    error(("ImageFolder: no image files (%s) in the class folder%s %s of %s"):format(table.concat(exts, " "),
      #empty > 1 and "s" or "", table.concat(empty, ", "), root), 2)
  end
  return setmetatable({
    root = root, classes = classes, class_to_idx = class_to_idx, samples = samples, imgs = samples,
    targets = targets, transform = opts.transform, target_transform = opts.target_transform,
    channels = channels, extensions = exts,
  }, ImageFolder)
end

---The number of images (also #ds).
---@return integer
function ImageFolder:size() return #self.samples end
function ImageFolder.__len(self) return #self.samples end

---Load image i and apply the transforms.
---@param i integer 1-based
---@return Tensor image uint8 C x H x W, or what the transform makes
---@return any label the class number 1..C (or target_transform's value)
function ImageFolder:get(i)
  local s = self.samples[math.type(i) == "integer" and i or 0]
  if not s then
    error(("ImageFolder:get: index %s out of range (1 to %d)"):format(tostring(i), #self.samples), 2)
  end
  local img = image.load(s[1], self.channels)
  if self.transform then img = self.transform(img) end
  local label = s[2]
  if self.target_transform then label = self.target_transform(label) end
  return img, label
end

-- nn.data.DataLoader(ds, opts) hands an ImageFolder to ImageLoader (batches decoded in C).
function ImageFolder:_make_loader(opts) return require("nnlua.data.ImageLoader")(self, opts) end

function ImageFolder:__tostring()
  local lines = { ("ImageFolder(%d images, %d classes, root=%s)"):format(#self.samples, #self.classes, self.root) }
  if self.transform then lines[2] = "  transform: " .. tostring(self.transform):gsub("\n", "\n  ") end
  return table.concat(lines, "\n")
end

ImageFolder.byte_less = byte_less
return setmetatable(ImageFolder, { __call = new })
