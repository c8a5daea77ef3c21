-- nnlua.plot (nn.plot): line charts as PNG/JPEG files, drawn on nn.image.canvas (C raster, 5x7
-- bitmap font). Layout and tick choice are here; every pixel is set in C.
local core = require "nnlua.core"

local plot = {}

plot.palette = { 0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f,
                 0xbcbd22, 0x17becf }

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

local function list(v, what)
  if core.is_tensor(v) then
    if v:dim() ~= 1 then error(("nn.plot: %s must be 1-D, got %d dimensions"):format(what, v:dim()), 4) end
    return v:float():totable()
  end
  if type(v) ~= "table" then error(("nn.plot: %s must be a list of numbers or a tensor, got %s"):format(what, type(v)), 4) end
  return v
end

-- ---- ticks ----

-- A "nice" number near x (1, 2 or 5 times a power of ten), rounded or at least x.
local function nice(x, round)
  local e = math.floor(math.log(x, 10))
  local f = x / 10 ^ e
  local nf
  if round then
    nf = f < 1.5 and 1 or f < 3 and 2 or f < 7 and 5 or 10
  else
    nf = f <= 1 and 1 or f <= 2 and 2 or f <= 5 and 5 or 10
  end
  return nf * 10 ^ e
end

---About n "nice" tick values (1, 2 or 5 times a power of ten apart) within [lo, hi].
---@param lo number
---@param hi number
---@param n? integer how many, roughly (default 6)
---@return number[] ticks
---@return number step
function plot.ticks(lo, hi, n)
  n = n or 6
  if not (hi > lo) then return { lo }, 1 end
  local step = nice((hi - lo) / math.max(n - 1, 1), true)
  local out = {}
  local k0 = math.ceil(lo / step - 1e-9)
  for k = k0, k0 + 1000 do
    local v = k * step
    if v > hi + step * 1e-9 then break end
    if math.abs(v) < step * 1e-9 then v = 0 end
    out[#out + 1] = v
  end
  return out, step
end

---A tick label with as many decimals as the step needs ("0.25", "1e-05", "20000").
---@param v number the tick value
---@param step number the distance between ticks
---@return string
function plot.format_tick(v, step)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e6 or a < 1e-4 then
    local s = ("%.2e"):format(v):gsub("%.?0+e", "e"):gsub("e%+0*", "e"):gsub("e%-0*", "e-")
    return s
  end
  -- the fewest decimals that show the step exactly (0.25 -> 2, 0.5 -> 1, 500 -> 0)
  local d = 3
  if step then
    for k = 0, 10 do
      local m = step * 10 ^ k
      d = k
      if math.abs(m - math.floor(m + 0.5)) < 1e-6 * math.max(1, m) then break end
    end
  end
  local s = ("%." .. math.min(d, 10) .. "f"):format(v)
  if s:find("%.") then s = s:gsub("0+$", ""):gsub("%.$", "") end
  return s
end

local function log_ticks(lo, hi) -- lo, hi in log10 units
  local out = {}
  for e = math.ceil(lo - 1e-9), math.floor(hi + 1e-9) do out[#out + 1] = e end
  if #out < 3 then -- less than two decades: 2x and 5x as well
    out = {}
    for e = math.floor(lo) - 1, math.ceil(hi) do
      for _, m in ipairs({ 1, 2, 5 }) do
        local v = e + math.log(m, 10)
        if v >= lo - 1e-9 and v <= hi + 1e-9 then out[#out + 1] = v end
      end
    end
  end
  return out
end

-- ---- the chart ----

local function range(series, key, log)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(series) do
    for _, v in ipairs(s[key]) do
      if finite(v) and (not log or v > 0) then
        v = log and math.log(v, 10) or v
        if v < lo then lo = v end
        if v > hi then hi = v end
      end
    end
  end
  if lo > hi then return 0, 1 end
  if lo == hi then
    local d = lo == 0 and 1 or math.abs(lo) * 0.1
    return lo - d, hi + d
  end
  return lo, hi
end

---One line of a chart: y values (x defaults to 1, 2, ...).
---@class nn.plot.series
---@field y number[] the values (non-finite ones break the line)
---@field x? number[] positions (default 1..#y)
---@field name? string shown in the legend
---@field color? integer|string 0xRRGGBB or "#rrggbb" (default from nn.plot.palette)
---@field width? number line width in pixels (default 1.5)

---Options of nn.plot.lines.
---@class nn.plot.lines.opts
---@field series nn.plot.series[] the lines
---@field path? string write the chart here (PNG or JPEG by extension)
---@field title? string
---@field xlabel? string
---@field ylabel? string
---@field width? integer pixels (default 800)
---@field height? integer pixels (default 500)
---@field xlim? number[] {lo, hi} (default: the data's range)
---@field ylim? number[] {lo, hi}
---@field ylog? boolean logarithmic y axis (default false)
---@field legend? string|false "upper right" (default), "upper left", "lower right", "lower left" or false
---@field scale? integer font scale (default 2 on charts of 400 pixels and more)

---Draw a line chart (loss curves, accuracies) and write it to opts.path when given.
---
---```lua
---nn.plot.lines{path = "loss.png", title = "training loss", xlabel = "step",
---  series = {{name = "loss", y = losses}, {name = "smoothed", y = nn.plot.ema(losses)}}}
---```
---@param opts nn.plot.lines.opts
---@return userdata canvas the drawn nn.image canvas
function plot.lines(opts)
  if type(opts) ~= "table" then error("nn.plot.lines: options table expected, got " .. type(opts), 2) end
  local W, H = opts.width or 800, opts.height or 500
  local fs = opts.scale or (math.min(W, H) >= 400 and 2 or 1)
  local series = {}
  for i, s in ipairs(opts.series or {}) do
    if type(s) ~= "table" then error(("nn.plot.lines: series %d must be a table"):format(i), 2) end
    local y = list(s.y, ("series %d's y"):format(i))
    local x = s.x and list(s.x, ("series %d's x"):format(i))
    if not x then
      x = {}
      for k = 1, #y do x[k] = k end
    end
    if #x ~= #y then error(("nn.plot.lines: series %d has %d x values and %d y values"):format(i, #x, #y), 2) end
    series[i] = { name = s.name, x = x, y = y, color = s.color or plot.palette[(i - 1) % #plot.palette + 1],
                  width = s.width or 1.5 }
  end
  local ylog = opts.ylog
  local x0, x1 = range(series, "x", false)
  local y0, y1 = range(series, "y", ylog)
  if not ylog then
    local m = (y1 - y0) * 0.05
    y0, y1 = y0 - m, y1 + m
  end
  if opts.xlim then x0, x1 = opts.xlim[1], opts.xlim[2] end
  if opts.ylim then
    y0, y1 = opts.ylim[1], opts.ylim[2]
    if ylog then y0, y1 = math.log(y0, 10), math.log(y1, 10) end
  end

  -- ticks and their labels decide the margins
  local xt, xstep = plot.ticks(x0, x1, math.max(3, W // (90 * fs / 2)))
  local yt, ystep
  if ylog then yt = log_ticks(y0, y1) else yt, ystep = plot.ticks(y0, y1, math.max(3, H // (60 * fs / 2))) end
  local function ylabel_of(v)
    if ylog then return plot.format_tick(10 ^ v, 10 ^ math.floor(v + 1e-9)) end
    return plot.format_tick(v, ystep)
  end
  local cw, ch = 6 * fs, 8 * fs -- character cell
  local ytw = 0
  for _, v in ipairs(yt) do ytw = math.max(ytw, core.image.text_width(ylabel_of(v), fs)) end
  local pad, tick = 4 * fs, 3 * fs
  local left = pad + (opts.ylabel and ch + pad or 0) + ytw + tick + pad
  local top = pad + (opts.title and ch + pad * 2 or pad)
  local bottom = pad + ch + tick + pad + (opts.xlabel and ch + pad or 0)
  local right = pad + cw * 3
  local pw, ph = W - left - right, H - top - bottom
  if pw < 20 or ph < 20 then error(("nn.plot.lines: %d x %d is too small for the labels"):format(W, H), 2) end

  local cv = core.image.canvas(W, H, opts.background or 0xFFFFFF)
  local function px(v) return left + (v - x0) / (x1 - x0) * pw end
  local function py(v) return top + ph - (v - y0) / (y1 - y0) * ph end
  local axis, grid, text = 0x000000, 0xE6E6E6, 0x222222

  for _, v in ipairs(xt) do
    local x = math.floor(px(v))
    cv:fill(x, top, 1, ph, grid)
    cv:fill(x, top + ph, 1, tick, axis)
    local s = plot.format_tick(v, xstep)
    local tw = cv:text_width(s, fs)
    cv:text(x - tw // 2, top + ph + tick + pad // 2, s, text, fs)
  end
  for _, v in ipairs(yt) do
    local y = math.floor(py(v))
    cv:fill(left, y, pw, 1, grid)
    cv:fill(left - tick, y, tick, 1, axis)
    local s = ylabel_of(v)
    local tw = cv:text_width(s, fs)
    cv:text(left - tick - pad // 2 - tw, y - (7 * fs) // 2, s, text, fs)
  end

  cv:clip(left, top, pw, ph)
  for _, s in ipairs(series) do
    local xs, ys = {}, {}
    for k = 1, #s.x do
      local xv, yv = s.x[k], s.y[k]
      if ylog then yv = (finite(yv) and yv > 0) and math.log(yv, 10) or nil end
      xs[k] = finite(xv) and px(xv) or 0 / 0
      ys[k] = finite(yv) and py(yv) or 0 / 0
    end
    cv:polyline(xs, ys, s.color, s.width)
  end
  cv:clip()
  cv:rect(left - 1, top - 1, pw + 2, ph + 2, axis)

  if opts.title then
    local s = tostring(opts.title)
    cv:text((W - cv:text_width(s, fs)) // 2, pad + pad // 2, s, axis, fs)
  end
  if opts.xlabel then
    local s = tostring(opts.xlabel)
    cv:text(left + (pw - cv:text_width(s, fs)) // 2, H - pad - ch + fs, s, text, fs)
  end
  if opts.ylabel then
    local s = tostring(opts.ylabel)
    cv:text(pad, top + (ph + cv:text_width(s, fs)) // 2, s, text, fs, true)
  end

  -- legend: a framed box in a corner of the plot area
  local named = {}
  for _, s in ipairs(series) do if s.name then named[#named + 1] = s end end
  if #named > 0 and opts.legend ~= false then
    local where = opts.legend or "upper right"
    local sw = 5 * cw -- the line sample
    local lw = 0
    for _, s in ipairs(named) do lw = math.max(lw, cv:text_width(tostring(s.name), fs)) end
    local bw, bh = pad * 3 + sw + lw, pad * 2 + #named * (ch + pad) - pad
    local bx = where:find("left") and left + pad * 2 or left + pw - bw - pad * 2
    local by = where:find("lower") and top + ph - bh - pad * 2 or top + pad * 2
    cv:fill(bx, by, bw, bh, 0xFFFFFF)
    cv:rect(bx, by, bw, bh, 0xBBBBBB)
    for k, s in ipairs(named) do
      local ly = by + pad + (k - 1) * (ch + pad)
      cv:line(bx + pad, ly + ch / 2 - 0.5, bx + pad + sw, ly + ch / 2 - 0.5, s.color, math.max(2, s.width))
      cv:text(bx + pad * 2 + sw, ly + fs // 2, tostring(s.name), text, fs)
    end
  end

  if opts.path then cv:save(opts.path) end
  return cv
end

---An exponentially smoothed copy of values (for noisy per-step losses); non-finite values are skipped.
---@param values number[]
---@param alpha? number weight of each new value (default 0.05)
---@return number[]
function plot.ema(values, alpha)
  values = list(values, "values")
  alpha = alpha or 0.05
  local out, m = {}, nil
  for i, v in ipairs(values) do
    if finite(v) then m = m and m + alpha * (v - m) or v end
    out[i] = m
  end
  return out
end

---A centred moving average over `window` points (no lag, unlike ema); the window shrinks near the
---ends; non-finite values are skipped.
---@param values number[]
---@param window? integer points averaged (default #values // 50)
---@return number[]
function plot.smooth(values, window)
  values = list(values, "values")
  local n = #values
  window = math.max(1, math.floor(window or math.max(1, n // 50)))
  local csum, ccount = { [0] = 0 }, { [0] = 0 }
  for i = 1, n do
    local v = values[i]
    local ok = finite(v)
    csum[i] = csum[i - 1] + (ok and v or 0)
    ccount[i] = ccount[i - 1] + (ok and 1 or 0)
  end
  local out, h = {}, window // 2
  for i = 1, n do
    local lo, hi = math.max(0, i - h - 1), math.min(n, i - h - 1 + window)
    local c = ccount[hi] - ccount[lo]
    out[i] = c > 0 and (csum[hi] - csum[lo]) / c or 0 / 0
  end
  return out
end

return plot
