-- data_spec.lua — nn.io.read_idx (plain, gzip, corrupt and truncated files), nn.data.mnist and
-- fashion_mnist on small generated sets and on data/ when present, TensorDataset and DataLoader.
local nn = require "nnlua"

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

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

-- An IDX file by hand: magic (0, 0, type, ndim), big-endian dims, then the bytes.
local function idx_bytes(type_code, dims, payload)
  local s = string.pack(">BBBB", 0, 0, type_code, #dims)
  for _, d in ipairs(dims) do s = s .. string.pack(">I4", d) end
  return s .. payload
end

-- N fake 28x28 images (image k is filled with k) and labels, written as MNIST files into dir.
local function fake_mnist(dir, split, n, gz, label_of)
  local prefix = split == "train" and "train" or "t10k"
  local imgs = nn.zeros(n, 28, 28, "uint8")
  for k = 1, n do imgs[k]:fill_(k * 10 % 256) end
  local labels = nn.zeros(n, "uint8")
  for k = 1, n do labels[k] = label_of and label_of(k) or (k - 1) % 10 end
  nn.io.write_idx(dir .. "/" .. prefix .. "-images-idx3-ubyte" .. (gz and ".gz" or ""), imgs, { gz = gz })
  nn.io.write_idx(dir .. "/" .. prefix .. "-labels-idx1-ubyte" .. (gz and ".gz" or ""), labels, { gz = gz })
  return imgs, labels
end

describe("nn.io.read_idx", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("reads bytes as uint8 (the default for byte files), float32 (scaled) or int64", function()
    local path = dir .. "/a-idx2-ubyte"
    spit(path, idx_bytes(0x08, { 2, 3 }, string.char(0, 1, 2, 253, 254, 255)))
    local u = nn.io.read_idx(path)
    assert.equals("uint8", u:dtype())
    assert.same({ { 0, 1, 2 }, { 253, 254, 255 } }, u:totable())
    local f = nn.io.read_idx(path, "float32", 1 / 255)
    assert.equals("float32", f:dtype())
    assert.equals(1.0, f[2][3])
    assert.is_true(math.abs(f[1][2] - 1 / 255) < 1e-9)
    local l = nn.io.read_idx(path, "int64")
    assert.equals("int64", l:dtype())
    assert.same({ { 0, 1, 2 }, { 253, 254, 255 } }, l:totable())
  end)

  it("scales bytes to exactly float32(v) / 255, as numpy's astype(float32) / 255", function()
    local all = {}
    for v = 0, 255 do all[#all + 1] = string.char(v) end
    local path = dir .. "/all-idx1-ubyte"
    spit(path, idx_bytes(0x08, { 256 }, table.concat(all)))
    local f = nn.io.read_idx(path, "float32", 1 / 255)
    local want = nn.arange(0, 256):float() / 255
    assert.equals(0, (f - want):abs():max():item())
  end)

  it("reads gzip files, detected by content", function()
    local t = nn.tensor({ { 1, 2 }, { 3, 4 } }, "uint8")
    nn.io.write_idx(dir .. "/t.gz", t, { gz = true })
    nn.io.write_idx(dir .. "/plain", t)
    assert.not_equals(slurp(dir .. "/t.gz"), slurp(dir .. "/plain"))
    assert.same(t:totable(), nn.io.read_idx(dir .. "/t.gz"):totable())
    assert.same(t:totable(), nn.io.read_idx(dir .. "/plain"):totable())
  end)

  it("reads int32 files as int64 and float files as float32 by default", function()
    nn.io.write_idx(dir .. "/i", nn.tensor({ -7, 70000, 3 }, "int64"))
    local i = nn.io.read_idx(dir .. "/i")
    assert.equals("int64", i:dtype())
    assert.same({ -7, 70000, 3 }, i:totable())
    spit(dir .. "/f", idx_bytes(0x0D, { 2 }, string.pack(">f>f", 1.5, -2.25)))
    local f = nn.io.read_idx(dir .. "/f")
    assert.equals("float32", f:dtype())
    assert.same({ 1.5, -2.25 }, f:totable())
    assert.matches("f: element 0 is 1.5, which does not fit in int64", errmsg(nn.io.read_idx, dir .. "/f", "int64"))
  end)

  it("rejects corrupt and truncated files, naming them", function()
    local p = dir .. "/bad-idx"
    spit(p, "\1\2\8\1" .. string.pack(">I4", 1) .. "x")
    local e = errmsg(nn.io.read_idx, p)
    assert.matches("nn.io.read_idx: .*bad%-idx", e)
    spit(p, idx_bytes(0x08, { 10 }, "12345"))
    e = errmsg(nn.io.read_idx, p)
    assert.matches("bad%-idx", e)
    assert.matches("5", e)
    spit(p, idx_bytes(0x08, { 2 }, "12345"))
    assert.matches("bad%-idx", errmsg(nn.io.read_idx, p))
    spit(p, "\0\0\8")
    assert.matches("bad%-idx", errmsg(nn.io.read_idx, p))
    spit(p, idx_bytes(0x07, { 1 }, "1"))
    assert.matches("bad%-idx", errmsg(nn.io.read_idx, p))
    assert.matches("cannot open", errmsg(nn.io.read_idx, dir .. "/missing"))
  end)

  it("rejects a truncated or corrupt gzip stream", function()
    nn.io.write_idx(dir .. "/z.gz", nn.zeros(50, 50, "uint8") + 7, { gz = true })
    local s = slurp(dir .. "/z.gz")
    spit(dir .. "/cut.gz", s:sub(1, #s // 2))
    assert.matches("cut.gz: .*truncated", errmsg(nn.io.read_idx, dir .. "/cut.gz"))
    spit(dir .. "/flip.gz", s:sub(1, 12) .. ("\255"):rep(8) .. s:sub(21))
    assert.matches("flip.gz", errmsg(nn.io.read_idx, dir .. "/flip.gz"))
  end)

  it("checks its arguments", function()
    assert.matches("invalid option", errmsg(nn.io.read_idx, dir .. "/x", "complex"))
    assert.matches("does not fit in int32",
      errmsg(nn.io.write_idx, dir .. "/x", nn.tensor({ 2 ^ 40 }, "int64")))
  end)
end)

describe("nn.data.mnist / fashion_mnist", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("loads images as N x 1 x 28 x 28 float in [0, 1] and labels int64 1..10", function()
    local imgs, labels = fake_mnist(dir, "train", 12, true)
    fake_mnist(dir, "test", 3, false)
    local ds = nn.data.mnist(dir, "train")
    assert.equals(12, #ds)
    assert.same({ 12, 1, 28, 28 }, ds.images:size())
    assert.equals("float32", ds.images:dtype())
    assert.equals("int64", ds.labels:dtype())
    assert.same((labels:long() + 1):totable(), ds.labels:totable())
    assert.is_true(math.abs(ds.images[3][1][5][5] - imgs[3][1][1] / 255) < 1e-7)
    assert.equals(1.0, ds.images:max():item() <= 1 and 1.0 or 0)
    local x, y = ds:get(2)
    assert.same({ 1, 28, 28 }, x:size())
    assert.equals(2, y:item())
    local test = nn.data.mnist(dir, "test")
    assert.equals(3, #test)
    assert.equals("0", test.classes[1])
  end)

  it("fashion_mnist names the garments", function()
    fake_mnist(dir, "test", 4, true)
    local ds = nn.data.fashion_mnist(dir, "test")
    assert.equals("T-shirt/top", ds.classes[1])
    assert.equals("Ankle boot", ds.classes[10])
  end)

  it("explains missing files, bad splits and bad labels", function()
    assert.matches("no train%-images%-idx3%-ubyte in .*get%-data", errmsg(nn.data.mnist, dir, "train"))
    assert.matches('split must be "train" or "test"', errmsg(nn.data.mnist, dir, "valid"))
    fake_mnist(dir, "train", 5, false, function(k) return k == 3 and 12 or 1 end)
    assert.matches("labels must be 0..9, found 1..12", errmsg(nn.data.mnist, dir, "train"))
    rmrf(dir)
    dir = tmpdir()
    fake_mnist(dir, "train", 5, false)
    nn.io.write_idx(dir .. "/train-labels-idx1-ubyte", nn.zeros(4, "uint8"))
    assert.matches("4 labels for the 5 images", errmsg(nn.data.mnist, dir, "train"))
  end)

  it("reads the real data under data/ when scripts/get-data has run", function()
    local f = io.open("data/mnist/train-images-idx3-ubyte.gz")
    if not f then return pending("data/mnist is absent (scripts/get-data)") end
    f:close()
    local ds = nn.data.mnist("data/mnist", "test")
    assert.equals(2000, #ds)
    assert.equals(1, ds.labels:min():item())
    assert.equals(10, ds.labels:max():item())
    assert.equals(0, ds.images:min():item())
    assert.equals(1, ds.images:max():item())
  end)
end)

describe("nn.data.TensorDataset", function()
  it("pairs tensors along their first dimension", function()
    local ds = nn.data.TensorDataset(nn.arange(1, 7):view(3, 2), nn.tensor({ 10, 20, 30 }, "int64"))
    assert.equals(3, #ds)
    local x, y = ds:get(2)
    assert.same({ 3, 4 }, x:totable())
    assert.equals(20, y:item())
    assert.matches("3 samples", tostring(ds))
    local sub = ds:narrow(2, 2)
    assert.equals(2, #sub)
    assert.equals(30, select(2, sub:get(2)):item())
  end)

  it("rejects mismatched sizes and non-tensors", function()
    assert.matches("argument 1 has 3 samples, argument 2 has 2",
      errmsg(nn.data.TensorDataset, nn.zeros(3, 2), nn.zeros(2)))
    assert.matches("argument 2 must be a tensor", errmsg(nn.data.TensorDataset, nn.zeros(3), {}))
    assert.matches("out of range", errmsg(function() nn.data.TensorDataset(nn.zeros(3)):get(4) end))
  end)
end)

describe("nn.data.DataLoader", function()
  local N = 23
  local ds = nn.data.TensorDataset(nn.arange(1, N + 1):view(N, 1) * 2, nn.arange(1, N + 1):long())

  local function epoch(loader)
    local xs, ys, sizes = {}, {}, {}
    for xb, yb in loader:iter() do
      sizes[#sizes + 1] = yb:size(1)
      assert.same({ yb:size(1), 1 }, xb:size())
      for i, v in ipairs(yb:totable()) do
        ys[#ys + 1] = v
        assert.equals(2 * v, xb[i][1]) -- x and y stay paired
      end
    end
    return ys, sizes
  end

  it("cuts batches in order without shuffle; #loader counts batches", function()
    local loader = nn.data.DataLoader(ds, { batch_size = 5 })
    assert.equals(5, #loader)
    local ys, sizes = epoch(loader)
    assert.same({ 5, 5, 5, 5, 3 }, sizes)
    for i = 1, N do assert.equals(i, ys[i]) end
  end)

  it("drop_last drops the short batch", function()
    local loader = nn.data.DataLoader(ds, { batch_size = 5, drop_last = true })
    assert.equals(4, #loader)
    local ys, sizes = epoch(loader)
    assert.same({ 5, 5, 5, 5 }, sizes)
    assert.equals(20, #ys)
  end)

  it("shuffles into a permutation, new each epoch, repeatable from the seed", function()
    local a = nn.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 42 })
    local b = nn.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 42 })
    local c = nn.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 43 })
    local a1, a2 = epoch(a), epoch(a)
    local b1, b2 = epoch(b), epoch(b)
    local c1 = epoch(c)
    assert.same(a1, b1)
    assert.same(a2, b2)
    assert.are_not.same(a1, a2)
    assert.are_not.same(a1, c1)
    local sorted = { table.unpack(a1) }
    table.sort(sorted)
    for i = 1, N do assert.equals(i, sorted[i]) end
  end)

  it("leaves the global random stream alone", function()
    nn.manual_seed(7)
    local want = nn.rand(3):totable()
    nn.manual_seed(7)
    local loader = nn.data.DataLoader(ds, { batch_size = 4, shuffle = true })
    epoch(loader)
    epoch(loader)
    assert.same(want, nn.rand(3):totable())
  end)

  it("without a seed, follows nn.manual_seed", function()
    nn.manual_seed(3)
    local a = epoch(nn.data.DataLoader(ds, { batch_size = 4, shuffle = true }))
    nn.manual_seed(3)
    local b = epoch(nn.data.DataLoader(ds, { batch_size = 4, shuffle = true }))
    assert.same(a, b)
  end)

  it("stacks samples of any dataset with get(i)", function()
    local custom = { size = function() return 5 end,
                     get = function(_, i) return nn.full({ 2 }, i), nn.tensor(i * 10):long() end }
    local loader = nn.data.DataLoader(custom, { batch_size = 2 })
    local got = {}
    for xb, yb in loader:iter() do got[#got + 1] = { xb:size(1), yb:totable() } end
    assert.same({ { 2, { 10, 20 } }, { 2, { 30, 40 } }, { 1, { 50 } } }, got)
  end)

  it("rejects bad options", function()
    assert.matches("batch_size must be a positive integer", errmsg(nn.data.DataLoader, ds, { batch_size = 0 }))
    assert.matches("dataset expected", errmsg(nn.data.DataLoader, 5))
  end)
end)
