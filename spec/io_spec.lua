-- io_spec.lua — nn.save / nn.load (safetensors) from Lua: round trips of every dtype, metadata,
-- files made by PyTorch, atomic writes, and errors for corrupt files that name the file.
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"
local FIXTURE = "spec/fixtures/io/torch_small.safetensors"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmrf(d) os.execute("rm -rf '" .. d .. "'") end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function ls(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

local function maxdiff(a, b) return (a:float() - b:float()):abs():max():item() end

-- A safetensors file by hand: header JSON then raw bytes (entries {name, dtype, shape, bytes}).
local function st_bytes(entries, meta)
  local parts, data, off = {}, {}, 0
  if meta then parts[#parts + 1] = '"__metadata__":' .. meta end
  for _, e in ipairs(entries) do
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}')
      :format(e[1], e[2], table.concat(e[3], ","), off, off + #e[4])
    data[#data + 1] = e[4]
    off = off + #e[4]
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  return string.pack("<I8", #header) .. header .. table.concat(data)
end

describe("nn.save / nn.load", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("round-trips float32, int64 and uint8 tensors of any shape", function()
    nn.manual_seed(1)
    local sd = {
      ["fc.weight"] = nn.randn(4, 3), ["fc.bias"] = nn.randn(4), scalar = nn.tensor(3.5):sum(),
      empty = nn.zeros(0, 5), labels = nn.tensor({ 1, -2, 3, 2 ^ 40 }, "int64"),
      pixels = nn.tensor({ { 0, 1, 254, 255 } }, "uint8"), big = nn.rand(2, 3, 4, 5),
    }
    local path = dir .. "/m.safetensors"
    nn.save(path, sd)
    local got, meta = nn.load(path)
    assert.same({}, meta)
    local n = 0
    for k, t in pairs(sd) do
      n = n + 1
      local g = got[k]
      assert.is_not_nil(g, "missing " .. k)
      assert.equals(t:dtype(), g:dtype())
      assert.same(t:size(), g:size())
      if t:numel() > 0 then assert.equals(0, maxdiff(t, g)) end
    end
    local m = 0
    for _ in pairs(got) do m = m + 1 end
    assert.equals(n, m)
    assert.equals(2 ^ 40, got.labels[4])
    assert.equals(255, got.pixels[1][4])
  end)

  it("saves the values of views (transposed, narrowed), not their storage", function()
    local base = nn.arange(1, 13):view(3, 4)
    local path = dir .. "/v.safetensors"
    nn.save(path, { t = base:t(), n = base:narrow(2, 2, 2) })
    local got = nn.load(path)
    assert.same(base:t():totable(), got.t:totable())
    assert.same({ { 2, 3 }, { 6, 7 }, { 10, 11 } }, got.n:totable())
  end)

  it("writes and reads metadata (strings; numbers and booleans become strings)", function()
    local path = dir .. "/meta.safetensors"
    nn.save(path, { w = nn.ones(2) }, { format = "pt", epoch = 3, lr = 0.001, best = true })
    local _, meta = nn.load(path)
    assert.same({ format = "pt", epoch = "3", lr = "0.001", best = "true" }, meta)
  end)

  it("saves a state_dict as it comes and loads it back into a model", function()
    nn.manual_seed(2)
    local m1 = nn.Sequential{ nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) }
    local path = dir .. "/sd.safetensors"
    nn.save(path, m1:state_dict())
    local m2 = nn.Sequential{ nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) }
    m2:load_state_dict(nn.load(path))
    local x = nn.randn(5, 3)
    assert.equals(0, maxdiff(m1(x):detach(), m2(x):detach()))
  end)

  it("reads a file written by PyTorch, converting F16/BF16/F64 to float32, I32 to int64, BOOL to uint8", function()
    local t, meta = nn.load(FIXTURE)
    assert.equals("pt", meta.format)
    assert.equals("float32", t.half:dtype())
    -- (the values include infinities: compare element by element)
    assert.same(t.half_as_f32:totable(), t.half:totable())
    assert.same(t.bf_as_f32:totable(), t.bf:totable())
    assert.same(t.d_as_f32:totable(), t.d:totable())
    assert.equals("int64", t.i32:dtype())
    assert.same({ -5, 0, 7 }, t.i32:totable())
    assert.equals("uint8", t.mask:dtype())
    assert.same({ 2, 3 }, t["fc.weight"]:size())
    assert.same({ 0, 3 }, t.empty:size())
  end)

  it("converts hand-made I8, I16, U16, U32 and U64 to int64", function()
    local path = dir .. "/ints.safetensors"
    spit(path, st_bytes({
      { "a", "I8", { 2 }, string.pack("<i1i1", -3, 4) },
      { "b", "I16", { 2 }, string.pack("<i2i2", -300, 300) },
      { "c", "U16", { 1 }, string.pack("<I2", 65535) },
      { "d", "U32", { 1 }, string.pack("<I4", 4000000000) },
      { "e", "U64", { 1 }, string.pack("<I8", 1 << 40) },
    }))
    local t = nn.load(path)
    assert.same({ -3, 4 }, t.a:totable())
    assert.same({ -300, 300 }, t.b:totable())
    assert.same({ 65535 }, t.c:totable())
    assert.same({ 4000000000 }, t.d:totable())
    assert.same({ 1 << 40 }, t.e:totable())
    for _, k in ipairs({ "a", "b", "c", "d", "e" }) do assert.equals("int64", t[k]:dtype()) end
  end)

  it("rejects bad arguments with messages naming the problem", function()
    local path = dir .. "/x.safetensors"
    assert.matches("must be a tensor, got number", errmsg(nn.save, path, { w = 3 }))
    assert.matches("keys must be strings", errmsg(nn.save, path, { nn.ones(1) }))
    assert.matches("metadata value of 'k' must be", errmsg(nn.save, path, { w = nn.ones(1) }, { k = {} }))
    assert.matches("__metadata__", errmsg(nn.save, path, { __metadata__ = nn.ones(1) }))
    assert.is_nil(io.open(path))
  end)

  describe("atomic writes", function()
    it("leaves no temporary file behind after a successful save", function()
      nn.save(dir .. "/ok.safetensors", { w = nn.ones(3) })
      assert.same({ "ok.safetensors" }, ls(dir))
    end)

    it("keeps an existing file intact when a save fails", function()
      local path = dir .. "/keep.safetensors"
      nn.save(path, { w = nn.ones(3) })
      local before = slurp(path)
      errmsg(nn.save, path, { w = nn.ones(3), bad = "not a tensor" })
      assert.equals(before, slurp(path))
      assert.same({ "keep.safetensors" }, ls(dir))
    end)

    it("removes the temporary file when the final rename fails", function()
      local target = dir .. "/is_a_dir"
      assert(os.execute("mkdir -p '" .. target .. "/sub'"))
      local e = errmsg(nn.save, target, { w = nn.ones(100) })
      assert.matches("is_a_dir", e)
      assert.same({ "is_a_dir" }, ls(dir))
    end)

    it("keeps the old file when the write itself fails midway (file size limit)", function()
      local f = io.open(BIN)
      if not f then return pending("no nnlua executable at " .. BIN) end
      f:close()
      local path = dir .. "/big.safetensors"
      nn.save(path, { w = nn.ones(4) })
      local before = slurp(path)
      -- ulimit -f 8: at most 8 KiB per file; SIGXFSZ ignored so the write returns EFBIG instead
      local script = dir .. "/w.lua"
      spit(script, ("local ok, e = pcall(nn.save, %q, {w = nn.ones(100000)}) print(ok, e)"):format(path))
      local p = io.popen(("sh -c \"trap '' XFSZ; ulimit -f 8; '%s' '%s'\" 2>&1"):format(BIN, script))
      local out = p:read("a")
      p:close()
      assert.matches("^false", out)
      assert.matches("big.safetensors", out)
      assert.equals(before, slurp(path))
      assert.same({ "big.safetensors", "w.lua" }, ls(dir))
    end)
  end)

  describe("corrupt files", function()
    local good
    before_each(function()
      good = dir .. "/good.safetensors"
      nn.save(good, { a = nn.ones(10), b = nn.zeros(3, "int64") })
    end)

    it("names a missing file", function()
      local e = errmsg(nn.load, dir .. "/nope.safetensors")
      assert.matches("nn.load: .*nope.safetensors: cannot open", e)
    end)

    it("reports a truncated file", function()
      local s = slurp(good)
      local path = dir .. "/cut.safetensors"
      spit(path, s:sub(1, #s - 5))
      local e = errmsg(nn.load, path)
      assert.matches("cut.safetensors", e)
      assert.matches("truncated", e)
      spit(path, s:sub(1, 4))
      assert.matches("cut.safetensors: file too short", errmsg(nn.load, path))
    end)

    it("reports garbage, bad JSON, unknown dtypes and overlapping data", function()
      local path = dir .. "/bad.safetensors"
      spit(path, ("\255"):rep(64))
      assert.matches("bad.safetensors: header length", errmsg(nn.load, path))
      local h = "{not json}"
      spit(path, string.pack("<I8", #h) .. h)
      assert.matches("bad.safetensors: header is not valid JSON", errmsg(nn.load, path))
      spit(path, st_bytes({ { "x", "Q7", { 1 }, "abcd" } }))
      assert.matches("unknown dtype", errmsg(nn.load, path))
      spit(path, st_bytes({ { "x", "F32", { 2 }, "abcd" } }))
      assert.matches("do not match shape", errmsg(nn.load, path))
    end)
  end)
end)
