-- images_spec.lua — image kernels, nn.data.transforms, ImageFolder and ImageLoader: resize against
-- PyTorch (spec/fixtures/resize.safetensors, made by scripts/fixtures/images.py), crops, flips and
-- normalization by hand, class discovery, the C batch path against the Lua transforms, determinism
-- across thread counts, and errors that name the broken file.
local nn = require "nnlua"

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "spec"
package.path = here .. "/?.lua;" .. package.path
local safetensors = require "helpers.safetensors"

local T = nn.data.transforms

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmrf(d) os.execute("rm -rf '" .. d .. "'") end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

local function shape(t) return table.concat(t:size(), "x") end

local function maxdiff(a, b)
  assert.are.equal(shape(b), shape(a), "shape")
  return (a:float() - b:float()):abs():max():item()
end

-- A deterministic uint8 picture, C x H x W: smooth gradients plus a pattern, so crops, flips and
-- resizes of it are all different.
local function picture(c, h, w, salt)
  local v = {}
  for k = 1, c do
    v[k] = {}
    for y = 1, h do
      local row = {}
      for x = 1, w do row[x] = (y * 7 + x * 3 + k * 50 + salt * 11 + (x * y) % 13 * 5) % 256 end
      v[k][y] = row
    end
  end
  return nn.tensor(v):byte()
end

-- ---- kernels against PyTorch ----

describe("nn.image.resize", function()
  local fx = safetensors.load(here .. "/fixtures/resize.safetensors")
  local names = {}
  for k in pairs(fx) do
    local n = k:match("^(.-)%.out$")
    if n then names[#names + 1] = n end
  end
  table.sort(names)

  it("matches F.interpolate(bilinear, align_corners=False) bit for bit", function()
    assert.is_true(#names >= 10, "fixtures missing: run scripts/fixtures/images.py")
    for _, n in ipairs(names) do
      local x, want, size = fx[n .. ".x"], fx[n .. ".out"], fx[n .. ".size"]:totable()
      if n:match("^u8") then x = x:byte() end
      local win = fx[n .. ".window"]
      if win then
        local w = win:totable()
        x = nn.image.crop(x, w[1], w[2], w[3], w[4])
      end
      local got = nn.image.resize(x, size[1], size[2])
      assert.are.equal(n:match("^u8") and "uint8" or "float32", got:dtype())
      -- one channel: PyTorch sums in another order there (its channels-last kernel)
      local tol = n == "f_1ch" and 1e-6 or 0
      local d = maxdiff(got, want)
      assert(d <= tol, ("%s: max difference %.3g (tolerance %g)"):format(n, d, tol))
    end
  end)

  it("resizes every plane of a batch alike", function()
    local x = nn.rand(2, 3, 9, 11)
    local y = nn.image.resize(x, 4, 17)
    assert.are.equal("2x3x4x17", shape(y))
    assert.are.equal(0, maxdiff(y[2], nn.image.resize(x[2], 4, 17)))
  end)

  it("checks its arguments", function()
    assert.truthy(err(nn.image.resize, nn.zeros(3, 4, 4), 0, 4):find("height must be in 1..65535, got 0"))
    assert.truthy(err(nn.image.resize, nn.zeros(4), 2, 2):find("expected an image of shape H x W"))
    assert.truthy(err(nn.image.resize, nn.zeros(3, 4, 4):long(), 2, 2):find("uint8 or float32"))
  end)
end)

describe("crop, flip, to_float, normalize", function()
  it("crop takes a 1-based window and pads outside with zeros", function()
    local x = nn.arange(1, 13):float():view(1, 3, 4)
    assert.are.same({ { { 6, 7 }, { 10, 11 } } }, nn.image.crop(x, 2, 2, 2, 2):totable())
    assert.are.same({ { { 0, 0, 0 }, { 0, 1, 2 }, { 0, 5, 6 } } }, nn.image.crop(x, 0, 0, 3, 3):totable())
    assert.are.same({ { { 12, 0 }, { 0, 0 } } }, nn.image.crop(x, 3, 4, 2, 2):totable())
  end)

  it("hflip mirrors the last dimension", function()
    local x = nn.tensor({ { { 1, 2, 3 }, { 4, 5, 6 } } }):byte()
    assert.are.same({ { { 3, 2, 1 }, { 6, 5, 4 } } }, nn.image.hflip(x):totable())
  end)

  it("to_float is v / 255 in float32, as ToTensor", function()
    local x = nn.tensor({ 0, 1, 51, 128, 255 }):byte():view(1, 1, 5)
    local want = nn.tensor({ 0, 1, 51, 128, 255 }):view(1, 1, 5) / 255
    assert.are.equal(0, maxdiff(nn.image.to_float(x), want))
    assert.are.equal(1, nn.image.to_float(x)[1][1][5])
    assert.truthy(err(nn.image.to_float, nn.zeros(1, 2, 2)):find("expected a uint8 image, got float32"))
  end)

  it("normalize is (x - mean) / std per channel, in float32", function()
    local x = nn.rand(3, 4, 5)
    local mean, std = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }
    local got = nn.image.normalize(x, mean, std)
    for c = 1, 3 do
      assert.are.equal(0, maxdiff(got[c], (x[c] - mean[c]) / std[c]))
    end
    local y = nn.tensor({ 0, 0.25, 1 }):view(1, 1, 3)
    assert.are.same({ { { -2, -1, 2 } } }, nn.image.normalize(y, 0.5, 0.25):totable())
    assert.truthy(err(nn.image.normalize, x, { 0.5, 0.5 }, { 1, 1 }):find("2 mean and 2 std values for 3 channels"))
    assert.truthy(err(nn.image.normalize, x, 0.5, 0):find("std%[1%] is zero"))
  end)
end)

-- ---- transforms ----

describe("nn.data.transforms", function()
  it("CenterCrop picks torchvision's corner and pads small images", function()
    local x = nn.arange(0, 30):float():view(1, 5, 6)
    -- top = round((5 - 3) / 2) = 1, left = round((6 - 3) / 2) = round(1.5) = 2 (half to even)
    local got = T.CenterCrop(3)(x)
    assert.are.same({ { { 8, 9, 10 }, { 14, 15, 16 }, { 20, 21, 22 } } }, got:totable())
    local y = nn.tensor({ { { 1, 2, 3 }, { 4, 5, 6 } } })
    assert.are.same({ { { 0, 0, 0, 0 }, { 1, 2, 3, 0 }, { 4, 5, 6, 0 }, { 0, 0, 0, 0 } } },
      T.CenterCrop({ 4, 4 })(y):totable())
    assert.are.equal(y, T.CenterCrop({ 2, 3 })(y)) -- same size: the same tensor
  end)

  it("Resize: shorter side, truncated longer side, max_size, exact size", function()
    local function out(t, h, w) return shape(t(nn.zeros(3, h, w):byte())) end
    assert.are.equal("3x15x20", out(T.Resize(15), 30, 40))
    assert.are.equal("3x20x15", out(T.Resize(15), 40, 30))
    assert.are.equal("3x10x142", out(T.Resize(10), 7, 100)) -- int(10 * 100 / 7)
    assert.are.equal("3x3x50", out(T.Resize(10, { max_size = 50 }), 7, 100))
    assert.are.equal("3x9x4", out(T.Resize({ 9, 4 }), 30, 40))
    local x = picture(3, 30, 40, 1)
    assert.are.equal(0, maxdiff(T.Resize(20)(x), nn.image.resize(x, 20, 26))) -- int(20 * 40 / 30)
    assert.truthy(err(T.Resize, 0):find("Resize: size must be an integer or {h, w}"))
    assert.truthy(err(T.Resize, 10, { max_size = 10 }):find("max_size must be an integer larger than size"))
    assert.truthy(err(T.Resize, 10, { antialias = true }):find("antialias = true is not supported"))
  end)

  it("RandomHorizontalFlip flips with probability p", function()
    local x = picture(3, 4, 5, 2)
    assert.are.equal(0, maxdiff(T.RandomHorizontalFlip(1)(x), nn.image.hflip(x)))
    assert.are.equal(x, T.RandomHorizontalFlip(0)(x))
    nn.manual_seed(3)
    local flips = 0
    for _ = 1, 200 do
      if maxdiff(T.RandomHorizontalFlip()(x), x) > 0 then flips = flips + 1 end
    end
    assert(flips > 70 and flips < 130, "flipped " .. flips .. " of 200")
    assert.truthy(err(T.RandomHorizontalFlip, 2):find("p must be a number in %[0, 1%]"))
  end)

  it("RandomResizedCrop follows torchvision's sampling and falls back to a central crop", function()
    local params = T.RandomResizedCrop.params
    local draws = 0
    local function rng() draws = draws + 1; return 0.5 end
    -- area 1200 at ratio 1 needs 35 x 35: too tall every time, so 10 tries (2 draws each), then
    -- the fallback for a 40/30 image with ratios up to 1: h = 30, w = round(30 * 1)
    assert.are.same({ 0, 5, 30, 30 }, { params(30, 40, { 1, 1 }, { 1, 1 }, rng) })
    assert.are.equal(20, draws)
    -- scale 1/4, ratio 1 on 40 x 40: a 20 x 20 crop, top and left = floor(0.5 * 21) = 10
    draws = 0
    assert.are.same({ 10, 10, 20, 20 }, { params(40, 40, { 0.25, 0.25 }, { 1, 1 }, rng) })
    assert.are.equal(4, draws)
    -- every crop lies inside the image, with an area and a ratio in range
    nn.manual_seed(5)
    local s = T.stream(1, 2, 3)
    for _ = 1, 200 do
      local top, left, h, w = params(60, 80, { 0.08, 1 }, { 3 / 4, 4 / 3 }, s)
      assert(top >= 0 and left >= 0 and top + h <= 60 and left + w <= 80)
      assert(h * w >= 0.08 * 4800 * 0.9 and h * w <= 4800)
    end
    local out = T.RandomResizedCrop({ 24, 32 })(picture(3, 60, 80, 3))
    assert.are.equal("3x24x32", shape(out))
    assert.truthy(err(T.RandomResizedCrop, 10, { scale = { 0.5, 0.1 } }):find("need 0 < scale%[1%] <= scale%[2%]"))
  end)

  it("Compose chains transforms and plain functions; ToTensor and Normalize", function()
    local t = T.Compose{ T.CenterCrop(2), T.ToTensor(), function(x) return x * 2 end,
      T.Normalize({ 0, 0, 0 }, { 2, 2, 2 }) }
    local x = picture(3, 4, 4, 4)
    local want = nn.image.to_float(nn.image.crop(x, 2, 2, 2, 2))
    assert.are.equal(0, maxdiff(t(x), want))
    assert.is_nil(t:steps()) -- a plain function cannot run in C
    assert.truthy(tostring(t):find("CenterCrop%(size={2, 2}%)"))
    assert.truthy(err(T.Normalize, { 0.5 }, { 0 }):find("std%[1%] is zero"))
    assert.truthy(err(T.Compose, { 1 }):find("item 1 is a number, not a transform"))
  end)

  it("random draws come from the global generator, so nn.manual_seed repeats them", function()
    local t = T.Compose{ T.RandomResizedCrop(8), T.RandomHorizontalFlip() }
    local x = picture(3, 30, 40, 5)
    nn.manual_seed(11)
    local a = t(x)
    nn.manual_seed(11)
    assert.are.equal(0, maxdiff(t(x), a))
  end)

  it("compiles to a C pipeline with a known output size", function()
    local p = T.compile(T.Compose{ T.Resize(40), T.CenterCrop(32), T.ToTensor() })
    assert.are.same({ 32, 32, "float32" }, { p:out_size() })
    assert.is_nil(T.compile(T.Compose{ T.Resize(40) }):out_size()) -- depends on the image
    assert.truthy(err(T.compile, T.Compose{ T.Normalize(0.5, 0.5) }):find("Normalize%): needs a float image"))
    assert.truthy(err(T.compile, T.Compose{ T.ToTensor(), T.ToTensor() }):find("ToTensor twice"))
  end)
end)

-- ---- ImageFolder and the loader ----

describe("ImageFolder and ImageLoader", function()
  local root

  -- root/{Zulu,ants,bees}: PNGs, JPEGs, a BMP, nested folders, a grey image and files to skip
  local function make_folder()
    local r = tmpdir()
    for _, d in ipairs({ "Zulu", "ants/sub/deep", "ants/sub-b", "bees" }) do
      assert(os.execute("mkdir -p '" .. r .. "/" .. d .. "'"))
    end
    local files = {
      "ants/a2.png", "ants/a10.png", "ants/a1.JPG", "ants/sub/s.png", "ants/sub/deep/d.png",
      "ants/sub-b/t.png", "bees/b1.jpg", "bees/b2.jpeg", "bees/b3.bmp", "Zulu/z.png",
    }
    for i, f in ipairs(files) do
      local h, w = 30 + 3 * i, 40 + 5 * (i % 4)
      nn.image.save(picture(3, h, w, i), r .. "/" .. f)
    end
    nn.image.save(picture(1, 24, 28, 99), r .. "/bees/grey.png")
    spit(r .. "/ants/notes.txt", "not an image")
    spit(r .. "/readme.png", "a file at the top is not a class")
    return r
  end

  setup(function() root = make_folder() end)
  teardown(function() if root then rmrf(root) end end)

  it("finds classes and files in torchvision's order", function()
    local ds = nn.data.ImageFolder(root)
    assert.are.same({ "Zulu", "ants", "bees" }, ds.classes)
    assert.are.same({ Zulu = 1, ants = 2, bees = 3 }, ds.class_to_idx)
    local rel = {}
    for i, s in ipairs(ds.samples) do rel[i] = s[1]:sub(#root + 2) .. ":" .. s[2] end
    assert.are.same({ "Zulu/z.png:1", "ants/a1.JPG:2", "ants/a10.png:2", "ants/a2.png:2",
      "ants/sub/s.png:2", "ants/sub-b/t.png:2", "ants/sub/deep/d.png:2", "bees/b1.jpg:3",
      "bees/b2.jpeg:3", "bees/b3.bmp:3", "bees/grey.png:3" }, rel)
    assert.are.equal(11, #ds)
    local img, label = ds:get(4)
    assert.are.equal("uint8", img:dtype())
    assert.are.equal("3x33x45", shape(img)) -- a2.png, the first file made
    assert.are.equal(2, label)
    local grey = ds:get(11)
    assert.are.equal("3x24x28", shape(grey)) -- converted to RGB, as torchvision's loader
    assert.are.equal(0, maxdiff(grey[1], grey[3]))
    assert.truthy(err(ds.get, ds, 12):find("index 12 out of range %(1 to 11%)"))
  end)

  it("applies transform and target_transform in get", function()
    local ds = nn.data.ImageFolder(root, { transform = T.Compose{ T.CenterCrop(16), T.ToTensor() },
      target_transform = function(y) return y - 1 end })
    local x, y = ds:get(1)
    assert.are.equal("3x16x16", shape(x))
    assert.are.equal("float32", x:dtype())
    assert.are.equal(0, y)
  end)

  it("reports a missing root, no classes and empty classes", function()
    assert.truthy(err(nn.data.ImageFolder, root .. "/nope"):find("nope: cannot open directory"))
    local r = tmpdir()
    assert.truthy(err(nn.data.ImageFolder, r):find("no class folders in " .. r, 1, true))
    assert(os.execute("mkdir -p '" .. r .. "/cats' '" .. r .. "/dogs'"))
    nn.image.save(picture(3, 8, 8, 1), r .. "/dogs/d.png")
    assert.truthy(err(nn.data.ImageFolder, r):find("no image files .* in the class folder cats"))
    assert.are.equal(1, #nn.data.ImageFolder(r, { allow_empty = true }))
    rmrf(r)
  end)

  local train = T.Compose{ T.RandomResizedCrop(24), T.RandomHorizontalFlip(), T.ToTensor(),
    T.Normalize({ 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }) }

  it("DataLoader(ImageFolder) decodes and augments whole batches in C", function()
    local ds = nn.data.ImageFolder(root, { transform = train })
    local loader = nn.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 1 })
    assert.are.equal("ImageLoader", getmetatable(loader).__name)
    assert.truthy(tostring(loader):find("C pipeline"))
    assert.are.equal(3, #loader)
    local sizes, labels = {}, 0
    for xb, yb in loader:iter() do
      sizes[#sizes + 1] = shape(xb)
      assert.are.equal("float32", xb:dtype())
      assert.are.equal("int64", yb:dtype())
      labels = labels + yb:sum():item()
    end
    assert.are.same({ "4x3x24x24", "4x3x24x24", "3x3x24x24" }, sizes)
    assert.are.equal(1 + 2 * 6 + 3 * 4, labels) -- every sample once
    local dl = nn.data.DataLoader(ds, { batch_size = 4, drop_last = true })
    assert.are.equal(2, #dl)
  end)

  it("gives the C batch exactly what the Lua transforms give with the same draws", function()
    local ds = nn.data.ImageFolder(root, { transform = train })
    local loader = nn.data.ImageLoader(ds, { batch_size = 11, seed = 42 })
    loader:set_epoch(3)
    local xb = loader:iter()()
    for i = 1, #ds do
      local img = nn.image.load(ds.samples[i][1], 3)
      local want = train:apply(img, T.stream(42, 3, i))
      assert(maxdiff(xb[i], want) == 0, "sample " .. i .. " differs")
    end
  end)

  it("is deterministic: same batches with 1 and 2 threads, new draws each epoch", function()
    local ds = nn.data.ImageFolder(root, { transform = train })
    local function epochs(threads)
      local l = nn.data.ImageLoader(ds, { batch_size = 3, shuffle = true, seed = 7, num_threads = threads })
      local out = {}
      for e = 1, 2 do
        for xb, yb in l:iter() do out[#out + 1] = { xb, yb, e } end
      end
      return out
    end
    local before = nn.get_rng_state()
    local a, b = epochs(1), epochs(2)
    assert.are.same(before, nn.get_rng_state()) -- the global generator is left alone
    assert.are.equal(8, #a)
    for k = 1, #a do
      assert.are.equal(0, maxdiff(a[k][1], b[k][1]))
      assert.are.same(a[k][2]:totable(), b[k][2]:totable())
    end
    -- epoch 2 shuffles and draws anew
    local l = nn.data.ImageLoader(ds, { batch_size = 11, seed = 7 })
    local e0, e1 = l:iter()(), l:iter()()
    assert(maxdiff(e0, e1) > 0.1)
    local p0, p1 = l:permutation(0), l:permutation(1)
    table.sort(p0)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, p0)
    assert.are_not.same(l:permutation(0), p1)
  end)

  it("runs transforms with Lua parts per image, with the same streams", function()
    local t = T.Compose{ T.CenterCrop(20), T.Lambda(function(x) return x end), T.RandomHorizontalFlip(), T.ToTensor() }
    local ds = nn.data.ImageFolder(root, { transform = t })
    local l1 = nn.data.ImageLoader(ds, { batch_size = 5, seed = 9 })
    assert.truthy(tostring(l1):find("Lua transforms"))
    local c = T.Compose{ T.CenterCrop(20), T.RandomHorizontalFlip(), T.ToTensor() }
    local l2 = nn.data.ImageLoader(ds, { batch_size = 5, seed = 9, transform = c })
    assert.are.equal(0, maxdiff(l1:iter()(), l2:iter()()))
  end)

  it("names the file that is corrupt, truncated or gone", function()
    local r = tmpdir()
    assert(os.execute("mkdir -p '" .. r .. "/a'"))
    for i = 1, 4 do nn.image.save(picture(3, 20, 20, i), r .. "/a/" .. i .. ".png") end
    local png = slurp(r .. "/a/1.png")
    spit(r .. "/a/2.png", ("\137PNG garbage"):rep(20))
    spit(r .. "/a/3.png", png:sub(1, #png // 2))
    local ds = nn.data.ImageFolder(r, { transform = T.Compose{ T.CenterCrop(8), T.ToTensor() } })
    local loader = nn.data.ImageLoader(ds, { batch_size = 1, num_threads = 2 })
    local it = loader:iter()
    assert.are.equal("1x3x8x8", shape(it()))
    local e2 = err(it)
    assert.truthy(e2:find(r .. "/a/2.png: cannot decode image", 1, true), e2)
    local e3 = err(it)
    assert.truthy(e3:find(r .. "/a/3.png: cannot decode image", 1, true), e3)
    assert.truthy(err(ds.get, ds, 3):find(r .. "/a/3.png", 1, true))
    -- a batch with two bad files reports the first and counts the other
    local all = nn.data.ImageLoader(ds, { batch_size = 4, num_threads = 2 })
    local e = err(all:iter())
    assert.truthy(e:find("a/2.png: cannot decode image", 1, true) and e:find("and 1 more files failed", 1, true), e)
    os.remove(r .. "/a/4.png")
    assert.truthy(err(ds.get, ds, 4):find("4.png: cannot open", 1, true))
    rmrf(r)
  end)
end)
