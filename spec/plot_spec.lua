-- plot_spec.lua — pictures and training helpers: nn.image load/save/grid/canvas, nn.plot.lines
-- (a PNG of the asked size with the series drawn), the progress bar's output, nn.metrics.
local nn = require "nnlua"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmrf(d) os.execute("rm -rf '" .. d .. "'") end

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

-- Pixels of a 3 x H x W uint8 image equal to colour 0xRRGGBB.
local function count_colour(img, rgb)
  local r, g, b = rgb >> 16 & 255, rgb >> 8 & 255, rgb & 255
  local m = img[1]:eq(r):long() * img[2]:eq(g):long() * img[3]:eq(b):long()
  return m:sum():item()
end

describe("nn.image", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("saves and loads uint8 C x H x W images losslessly as PNG", function()
    nn.manual_seed(1)
    local img = (nn.rand(3, 5, 7) * 255):floor():byte()
    nn.image.save(img, dir .. "/a.png")
    local back = nn.image.load(dir .. "/a.png")
    assert.equals("uint8", back:dtype())
    assert.same({ 3, 5, 7 }, back:size())
    assert.same(img:totable(), back:totable())
  end)

  it("takes float images in [0, 1] (clamped) and H x W grey images", function()
    local g = nn.tensor{ { 0, 0.5, 1 }, { -1, 2, 0.25 } }
    nn.image.save(g, dir .. "/g.png")
    local back = nn.image.load(dir .. "/g.png")
    assert.same({ 1, 2, 3 }, back:size())
    assert.same({ { { 0, 128, 255 }, { 0, 255, 64 } } }, back:totable())
    assert.same({ 3, 2, 3 }, nn.image.load(dir .. "/g.png", { channels = 3 }):size())
  end)

  it("writes JPEG by extension", function()
    if os.getenv("NNLUA_SANITIZE") then
      -- stb_image_write's JPEG bit writer shifts into the sign bit of an int (UBSan aborts)
      return pending("JPEG encoding trips UBSan inside stb_image_write.h")
    end
    local img = nn.full({ 3, 16, 16 }, 0.5)
    nn.image.save(img, dir .. "/a.JPG")
    local back = nn.image.load(dir .. "/a.JPG")
    assert.same({ 3, 16, 16 }, back:size())
    assert.is_true(math.abs(back:float():mean():item() - 128) < 3)
  end)

  it("reports bad shapes, unknown extensions and unreadable files", function()
    assert.matches("expected an image of shape H x W or C x H x W", errmsg(nn.image.save, nn.zeros(5, 2, 2), dir .. "/x.png"))
    assert.matches("x.gif", errmsg(nn.image.save, nn.zeros(2, 2), dir .. "/x.gif"))
    local f = assert(io.open(dir .. "/junk.png", "wb"))
    f:write("not an image at all")
    f:close()
    assert.matches("nn.image.load: .*junk.png", errmsg(nn.image.load, dir .. "/junk.png"))
  end)

  it("grid lays images out in rows with padding and captions", function()
    local imgs = nn.rand(5, 1, 28, 28)
    local g = nn.image.grid(imgs, { nrow = 3, padding = 2 })
    assert.same({ 3, 2 * 28 + 3 * 2, 3 * 28 + 4 * 2 }, g:size())
    assert.equals("uint8", g:dtype())
    local c = nn.image.grid(imgs, { nrow = 3, padding = 2, zoom = 2, labels = { "a", "b", "c", "d", "e" } })
    assert.same({ 3, 2 * (56 + 10) + 3 * 2, 3 * 56 + 4 * 2 }, c:size())
    -- captions are drawn in the caption colour below the images
    local dark = nn.image.grid(nn.zeros(2, 1, 8, 8), { labels = { "W", "M" }, color = 0xFF0000, zoom = 2 })
    assert.is_true(count_colour(dark, 0xFF0000) > 10)
    assert.equals(0, count_colour(nn.image.grid(nn.zeros(2, 1, 8, 8), { color = 0xFF0000 }), 0xFF0000))
    assert.matches("expected N x C x H x W", errmsg(nn.image.grid, nn.zeros(4, 4)))
  end)

  it("canvas draws text, lines and boxes in C", function()
    local cv = nn.image.canvas(40, 20, 0xFFFFFF)
    assert.same({ 40, 20 }, { cv:size() })
    assert.same({ 5, 7 }, { nn.image.text_width("A") })
    assert.same({ 17 * 2, 7 * 2 }, { nn.image.text_width("abc", 2) })
    cv:text(1, 1, "A", 0x000000)
    local img = cv:tensor()
    local ink = count_colour(img, 0x000000)
    assert.is_true(ink >= 12 and ink <= 35, "glyph pixels: " .. ink)
    cv:fill(0, 10, 40, 10, 0x00FF00)
    assert.equals(400, count_colour(cv:tensor(), 0x00FF00))
    cv:line(0, 5.5, 40, 5.5, 0x0000FF, 1)
    assert.is_true(count_colour(cv:tensor(), 0x0000FF) >= 30)
  end)
end)

describe("nn.plot.lines", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("writes a PNG of the requested size with the series, axes and legend", function()
    local ys = {}
    for i = 1, 200 do ys[i] = math.exp(-i / 50) end
    local path = dir .. "/loss.png"
    nn.plot.lines{ path = path, title = "Loss", xlabel = "iteration", ylabel = "loss", width = 640, height = 400,
                   series = { { name = "train", y = ys, color = 0xFF0000 },
                              { name = "test", x = { 1, 100, 200 }, y = nn.tensor{ 0.9, 0.3, 0.1 }, color = 0x0000FF } } }
    local img = nn.image.load(path)
    assert.same({ 3, 400, 640 }, img:size())
    assert.is_true(count_colour(img, 0xFF0000) > 100, "red series drawn")
    assert.is_true(count_colour(img, 0x0000FF) > 100, "blue series drawn")
    assert.is_true(count_colour(img, 0x000000) > 1000, "axes and text drawn")
  end)

  it("handles log scale, constant and non-finite data", function()
    local cv = nn.plot.lines{ series = { { y = { 1, 1, 1 } } }, width = 300, height = 200 }
    assert.same({ 300, 200 }, { cv:size() })
    nn.plot.lines{ ylog = true, series = { { y = { 1, 0.1, 0 / 0, 0.001, -1 } } } }
  end)

  it("chooses round ticks and labels them compactly", function()
    assert.same({ 0, 0.5, 1, 1.5, 2 }, (nn.plot.ticks(0, 2.2, 6)))
    assert.same({ 0, 20, 40, 60, 80, 100 }, (nn.plot.ticks(0, 100, 6)))
    assert.equals("0.25", nn.plot.format_tick(0.25, 0.25))
    assert.equals("1000", nn.plot.format_tick(1000, 500))
    assert.equals("1e-5", nn.plot.format_tick(1e-5, 1e-5))
    assert.equals("2.5e6", nn.plot.format_tick(2.5e6, 5e5))
  end)

  it("smooths without lag", function()
    local s = nn.plot.smooth({ 1, 2, 3, 4, 5 }, 3)
    assert.same({ 1.5, 2, 3, 4, 4.5 }, s)
  end)

  it("rejects malformed series", function()
    assert.matches("series 1 has 2 x values and 3 y values",
      errmsg(nn.plot.lines, { series = { { x = { 1, 2 }, y = { 1, 2, 3 } } } }))
    assert.matches("must be a list of numbers or a tensor", errmsg(nn.plot.lines, { series = { { y = 5 } } }))
  end)
end)

describe("nn.progress", function()
  -- A fake stream and clock make the output deterministic.
  local function sink()
    local s = { buf = {} }
    function s:write(...) for _, v in ipairs({ ... }) do self.buf[#self.buf + 1] = v end return self end
    function s:flush() end
    function s:text() return table.concat(self.buf) end
    return s
  end

  it("prints plain lines at most every interval seconds when not on a terminal", function()
    local out, now = sink(), 0
    local bar = nn.progress{ total = 100, epoch = 2, epochs = 5, out = out, tty = false, interval = 5,
                             clock = function() return now end }
    for step = 1, 100 do
      now = step * 0.1 -- 10 steps a second
      bar:update(step, { loss = 1 / step, acc = step / 100, samples = 50 })
    end
    bar:finish()
    local lines = {}
    for l in out:text():gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equals(3, #lines) -- at 5 s, 10 s, and the final line
    assert.equals("epoch 2/5 step 50/100 loss 0.0200 acc 50.00% 500 samples/s ETA 0:05", lines[1])
    assert.equals("epoch 2/5 step 100/100 loss 0.0100 acc 100.00% 500 samples/s ETA 0:00", lines[2])
    assert.equals("epoch 2/5 step 100/100 loss 0.0100 acc 100.00% 500 samples/s 0:10 elapsed", lines[3])
    assert.is_nil(out:text():find("\r"))
  end)

  it("redraws one line in place on a terminal", function()
    local out, now = sink(), 0
    local bar = nn.progress{ total = 4, out = out, tty = true, width = 8, clock = function() return now end }
    for step = 1, 4 do
      now = now + 1
      bar:update(step, { loss = 0.5 })
    end
    bar:finish()
    local text = out:text()
    assert.matches("^\r%[==>     %]", text)
    assert.matches("\r%[========%] 4/4 loss 0.5000 0:04 elapsed *\n$", text)
    local _, newlines = text:gsub("\n", "")
    assert.equals(1, newlines)
  end)

  it("shows extra statistics and formats durations", function()
    local out = sink()
    local bar = nn.progress{ total = 2, out = out, tty = false, clock = function() return 0 end }
    bar:finish({ lr = 0.001 })
    assert.matches("step 0/2 lr 0.001", out:text())
    assert.equals("1:01:05", nn.progress.format_time(3665))
  end)
end)

describe("nn.metrics", function()
  local logits = nn.tensor{ { 0.1, 0.9, 0 }, { 2, 1, 0 }, { 0, 0, 3 }, { 1, 0, 0 } }
  local labels = nn.tensor({ 2, 1, 2, 3 }, "int64")

  it("accuracy takes logits or predicted classes", function()
    assert.equals(0.5, nn.metrics.accuracy(logits, labels))
    assert.equals(0.5, nn.metrics.accuracy(nn.tensor({ 2, 1, 3, 1 }, "int64"), labels))
    assert.equals(2, nn.metrics.correct(logits, labels))
    assert.matches("4 predictions for 3 labels", errmsg(nn.metrics.accuracy, logits, nn.tensor({ 1, 2, 3 }, "int64")))
  end)

  it("confusion_matrix counts (true class, predicted class)", function()
    local cm = nn.metrics.confusion_matrix(logits, labels, 3)
    assert.same({ { 1, 0, 0 }, { 0, 1, 1 }, { 1, 0, 0 } }, cm:totable())
    assert.equals("int64", cm:dtype())
    local pca = nn.metrics.per_class_accuracy(cm):totable()
    assert.same({ 1, 0.5, 0 }, pca)
    assert.matches("classes must be 1..2", errmsg(nn.metrics.confusion_matrix, logits, labels, 2))
  end)
end)
