-- doc/c_image.lua: documentation of nn.image (src/bind/draw.c, image_ops.c), nn.io (io.c, json.c)
-- and the methods of canvases and image pipelines, merged into doc/c_functions.lua.
local D = {}

D["nn.image"] = { summary = [[Images as tensors: load and save PNG, JPEG and BMP (uint8 C x H x W), resize, crop,
flip, normalise, sheets of images (grid), a canvas to draw on (nn.plot uses it), and compiled
transform pipelines that nn.data.ImageLoader runs over whole batches in C.]] }
D["nn.io"] = { summary = "Files: MNIST's IDX format (nn.io.read_idx, write_idx, .gz too), JSON (read_json,\n"
  .. "parse_json; null is nn.io.null) and isatty. Checkpoints are nn.save / nn.load." }
D["nnlua.Canvas"] = { summary = "A canvas from nn.image.canvas(w, h): RGB pixels to draw on, then save or turn into a tensor.\n"
  .. "Coordinates are pixels from the top-left corner (0, 0); colours are 0xRRGGBB or \"#rrggbb\"." }
D["nnlua.ImagePipeline"] = { summary = "A compiled transform pipeline from nn.image.pipeline{...} (or transforms.compile)." }

local function f(name, sig, summary, params, returns, example)
  D[name] = { signature = sig, summary = summary, params = params, returns = returns, example = example }
end

local IMG = { "img", "Tensor", "uint8 or float32, ... x H x W (usually C x H x W or N x C x H x W)" }
local TMP = 'local path = os.tmpname() .. ".png"\n'

-- ---- nn.image ----

f("nn.image.load", "nn.image.load(path, opts?) -> Tensor",
  "Decode a PNG, JPEG or BMP file into a uint8 C x H x W tensor.",
  { { "path", "string", "the file" },
    { "opts.channels?", "integer", "0 (default: as stored), 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; also as a number" } },
  "Tensor: uint8 C x H x W",
  TMP .. "nn.image.save(nn.rand(3, 8, 8), path)\nlocal img = nn.image.load(path, {channels = 1})   -- 1 x 8 x 8\nos.remove(path)")
f("nn.image.save", "nn.image.save(img, path, opts?)",
  "Write an image; the format comes from the extension (.png, .jpg/.jpeg, .bmp). Floats are taken\n"
  .. "as [0, 1], integers as 0..255 (both clamped).",
  { { "img", "Tensor", "H x W or C x H x W with C = 1..4" }, { "path", "string", "the file" },
    { "opts.quality?", "integer", "JPEG quality 1..100 (default 90); also as a number" } }, "nothing",
  TMP .. "nn.image.save(nn.rand(3, 16, 16), path)\nos.remove(path)")
f("nn.image.grid", "nn.image.grid(images, opts?) -> Tensor",
  "A sheet of images side by side (torchvision's make_grid), with optional captions under each.",
  { { "images", "Tensor", "N x C x H x W (C = 1..4) or N x H x W; floats in [0, 1]" },
    { "opts.nrow?", "integer", "images per row (default 8)" }, { "opts.padding?", "integer", "pixels between (default 2)" },
    { "opts.zoom?", "integer", "pixel repeat 1..64 (default 1)" }, { "opts.labels?", "string[]", "a caption per image" },
    { "opts.scale?", "integer", "caption font scale 1..16" }, { "opts.background?", "integer|string", "colour (default black)" },
    { "opts.color?", "integer|string", "caption colour (default white)" },
    { "opts.normalize?", "boolean", "stretch each image's min..max to full range" } },
  "Tensor: uint8 3 x H x W (save it with nn.image.save)",
  'local sheet = nn.image.grid(nn.rand(6, 1, 8, 8), {nrow = 3, labels = {"a", "b", "c", "d", "e", "f"}})')
f("nn.image.canvas", "nn.image.canvas(width, height, background?) -> Canvas",
  "A blank RGB canvas to draw on (see help(\"nnlua.Canvas\") for its methods).",
  { { "width", "integer", "pixels" }, { "height", "integer", "pixels" },
    { "background?", "integer|string", "0xRRGGBB or \"#rrggbb\" (default white)" } }, "Canvas",
  'local c = nn.image.canvas(64, 32)\nc:line(0, 0, 63, 31, "#ff0000")\nlocal t = c:tensor()')
f("nn.image.text_width", "nn.image.text_width(s, scale?) -> width, height   (also canvas:text_width)",
  "The size in pixels of s in the built-in bitmap font.",
  { { "s", "string", "the text" }, { "scale?", "integer", "font scale (default 1)" } }, "integer, integer",
  'print(nn.image.text_width("loss", 2))')
f("nn.image.resize", "nn.image.resize(img, h, w) -> Tensor",
  "Bilinear resize of the last two dimensions (align_corners = false, no antialiasing), uint8 or float32.",
  { IMG, { "h", "integer", "new height" }, { "w", "integer", "new width" } }, "Tensor: ... x h x w, img's dtype",
  "local small = nn.image.resize(nn.rand(3, 32, 32), 16, 16)")
f("nn.image.crop", "nn.image.crop(img, top, left, h, w) -> Tensor",
  "The h x w window whose top-left pixel is (top, left), 1-based; outside the image reads as 0.",
  { IMG, { "top", "integer", "1-based row" }, { "left", "integer", "1-based column" },
    { "h", "integer", "height" }, { "w", "integer", "width" } }, "Tensor: ... x h x w",
  "local c = nn.image.crop(nn.rand(3, 32, 32), 5, 5, 24, 24)")
f("nn.image.hflip", "nn.image.hflip(img) -> Tensor", "Mirror left to right.", { IMG }, "Tensor: img's size",
  "local m = nn.image.hflip(nn.rand(3, 4, 4))")
f("nn.image.to_float", "nn.image.to_float(img) -> Tensor",
  "uint8 0..255 to float32 [0, 1] (torchvision's ToTensor scaling).",
  { { "img", "Tensor", "uint8" } }, "Tensor: float32, img's size",
  "local f = nn.image.to_float(nn.full({3, 2, 2}, 255, \"uint8\"))")
f("nn.image.normalize", "nn.image.normalize(img, mean, std) -> Tensor",
  "(img - mean) / std per channel (dimension -3).",
  { { "img", "Tensor", "float32 ... x C x H x W" }, { "mean", "number|number[]", "one value or one per channel" },
    { "std", "number|number[]", "as mean; non-zero" } }, "Tensor: float32",
  "local x = nn.image.normalize(nn.rand(3, 8, 8), {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})")
f("nn.image.pipeline", "nn.image.pipeline(steps) -> ImagePipeline",
  "Compile a list of transform steps for nn.image.load_batch. Each step is a table with kind =\n"
  .. '"resize" (h, w or w = shorter side, max_size), "center_crop" (h, w), "random_resized_crop"\n'
  .. '(h, w, scale = {0.08, 1}, ratio = {3/4, 4/3}), "hflip" (p = 0.5), "to_tensor" or "normalize"\n'
  .. "(mean, std). nn.data.transforms.compile builds it from transform objects.",
  { { "steps", "table[]", "the steps, applied in order" } }, "ImagePipeline",
  'local p = nn.image.pipeline{{kind = "resize", h = 32, w = 32}, {kind = "to_tensor"}}\nprint(p:out_size())')
f("nn.image.load_batch", "nn.image.load_batch(paths, pipeline, opts?) -> Tensor",
  "Decode and transform image files into one batch, in parallel in C. Random steps draw from a\n"
  .. "per-image stream keyed by (seed, epoch, index), so results do not depend on threads.",
  { { "paths", "string[]", "the files" }, { "pipeline", "ImagePipeline", "must end at a fixed size" },
    { "opts.channels?", "integer", "1..4 (default 3)" }, { "opts.seed?", "integer", "default 0" },
    { "opts.epoch?", "integer", "default 0" }, { "opts.indices?", "integer[]", "the stream index of each path (default 1..n)" },
    { "opts.threads?", "integer", "0 (default): nn.get_num_threads()" } },
  "Tensor: N x C x H x W (uint8, or float32 after to_tensor)",
  TMP .. "nn.image.save(nn.rand(3, 20, 20), path)\nlocal p = nn.image.pipeline{{kind = \"center_crop\", h = 16, w = 16}, {kind = \"to_tensor\"}}\n"
  .. "local batch = nn.image.load_batch({path, path}, p, {channels = 3})   -- 2 x 3 x 16 x 16\nos.remove(path)")

-- ---- canvas and pipeline methods ----

local CV = { "canvas", "Canvas", "the canvas (self)" }
local COLOUR = { "colour", "integer|string", "0xRRGGBB or \"#rrggbb\" (default black)" }
local EX = "local c = nn.image.canvas(40, 30)\n"
f("nnlua.Canvas.size", "canvas:size() -> width, height", "The canvas size in pixels.", { CV }, "integer, integer",
  EX .. "print(c:size())")
f("nnlua.Canvas.fill", "canvas:fill(x, y, w, h, colour?)", "Fill a rectangle.",
  { CV, { "x", "number", "left" }, { "y", "number", "top" }, { "w", "number", "width" }, { "h", "number", "height" }, COLOUR },
  "nothing", EX .. 'c:fill(5, 5, 10, 10, "#3366cc")')
f("nnlua.Canvas.rect", "canvas:rect(x, y, w, h, colour?, thickness?)", "Outline a rectangle (inside the box).",
  { CV, { "x", "number", "left" }, { "y", "number", "top" }, { "w", "number", "width" }, { "h", "number", "height" },
    COLOUR, { "thickness?", "integer", "default 1" } }, "nothing", EX .. "c:rect(0, 0, 40, 30, 0x000000)")
f("nnlua.Canvas.line", "canvas:line(x0, y0, x1, y1, colour?, width?)", "Draw a line segment (edges blended, widths below 1 drawn faint).",
  { CV, { "x0", "number", "start" }, { "y0", "number", "start" }, { "x1", "number", "end" }, { "y1", "number", "end" },
    COLOUR, { "width?", "number", "default 1" } }, "nothing", EX .. "c:line(0, 29, 39, 0, 0xcc0000, 2)")
f("nnlua.Canvas.polyline", "canvas:polyline(xs, ys, colour?, width?)",
  "Draw a connected line through the points; a nil or NaN coordinate breaks it.",
  { CV, { "xs", "number[]", "x of each point" }, { "ys", "number[]", "y of each point" }, COLOUR,
    { "width?", "number", "default 1" } }, "nothing", EX .. "c:polyline({0, 10, 20, 30}, {25, 5, 20, 10}, 0x0000cc)")
f("nnlua.Canvas.text", "canvas:text(x, y, s, colour?, scale?, up?)",
  "Write s in the built-in bitmap font; (x, y) is the top-left corner (bottom-left when up = true, for\n"
  .. "text rotated to read upwards).",
  { CV, { "x", "number", "left" }, { "y", "number", "top" }, { "s", "string", "the text" }, COLOUR,
    { "scale?", "integer", "font scale (default 1)" }, { "up?", "boolean", "rotate 90° counter-clockwise" } },
  "nothing", EX .. 'c:text(2, 2, "hi", 0)')
f("nnlua.Canvas.blit", "canvas:blit(img, x, y, zoom?)",
  "Copy an image onto the canvas at (x, y), each pixel repeated zoom times.",
  { CV, { "img", "Tensor", "H x W or C x H x W, uint8 0..255 or float [0, 1]" }, { "x", "number", "left" },
    { "y", "number", "top" }, { "zoom?", "integer", "1..64 (default 1)" } }, "nothing",
  EX .. "c:blit(nn.rand(1, 8, 8), 4, 4, 2)")
f("nnlua.Canvas.clip", "canvas:clip(x?, y?, w?, h?)",
  "Restrict drawing to a rectangle; clip() lifts the restriction.",
  { CV, { "x?", "number", "left" }, { "y?", "number", "top" }, { "w?", "number", "width" }, { "h?", "number", "height" } },
  "nothing", EX .. "c:clip(0, 0, 20, 30)\nc:fill(0, 0, 40, 30, 0)\nc:clip()")
f("nnlua.Canvas.tensor", "canvas:tensor() -> Tensor", "The pixels as a new uint8 3 x H x W tensor.",
  { CV }, "Tensor", EX .. "print(c:tensor():size()[1])")
f("nnlua.Canvas.save", "canvas:save(path, quality?)", "Write the canvas as PNG, JPEG or BMP (by the extension).",
  { CV, { "path", "string", "the file" }, { "quality?", "integer", "JPEG quality (default 90)" } }, "nothing",
  EX .. TMP .. "c:save(path)\nos.remove(path)")
f("nnlua.ImagePipeline.out_size", "pipe:out_size() -> h, w, dtype",
  "The size and dtype of the images the pipeline makes, or nothing when that depends on the input.",
  { { "pipe", "ImagePipeline", "the pipeline (self)" } }, "integer, integer, string (or nothing)",
  'print(nn.image.pipeline{{kind = "center_crop", h = 8, w = 8}}:out_size())')

-- ---- nn.io ----

f("nn.io.read_idx", "nn.io.read_idx(path, dtype?, scale?) -> Tensor",
  "Read an IDX file (MNIST's format), plain or .gz. Without dtype: uint8 files give uint8, float files\n"
  .. "float32, other integers int64. With \"float32\", values are multiplied by scale (1/255: pixels in [0, 1]).",
  { { "path", "string", "the file" }, { "dtype?", "string", '"uint8", "float32" or "int64"' },
    { "scale?", "number", "factor for float32 results (default 1)" } }, "Tensor: the file's dimensions",
  'local path = os.tmpname()\nnn.io.write_idx(path, nn.tensor({{0, 255}}, "uint8"))\nprint(nn.io.read_idx(path, "float32", 1 / 255))\nos.remove(path)')
f("nn.io.write_idx", "nn.io.write_idx(path, tensor, opts?)",
  "Write a tensor as an IDX file: uint8 as bytes, float32 as floats, int64 as int32 (values must fit).",
  { { "path", "string", "the file" }, { "tensor", "Tensor", "any dtype" },
    { "opts.gz?", "boolean", "gzip the file" } }, "nothing",
  'local path = os.tmpname()\nnn.io.write_idx(path, nn.tensor({1, 2, 3}, "int64"), {gz = true})\nos.remove(path)')
f("nn.io.isatty", "nn.io.isatty(fd?) -> boolean", "Whether a file descriptor is a terminal (default 1, stdout).",
  { { "fd?", "integer", "default 1" } }, "boolean", "print(nn.io.isatty(1))")
f("nn.io.read_json", "nn.io.read_json(path, max_depth?) -> any",
  "Read a JSON file into Lua values: objects become tables, arrays lists, null nn.io.null.",
  { { "path", "string", "the file" }, { "max_depth?", "integer", "nesting limit 1..1024 (default 64)" } }, "any",
  'local path = os.tmpname()\nlocal f = assert(io.open(path, "w"))\nf:write(\'{"a": [1, 2]}\')\nf:close()\nprint(nn.io.read_json(path).a[2])\nos.remove(path)')
f("nn.io.parse_json", "nn.io.parse_json(text, max_depth?) -> any",
  "Parse JSON text into Lua values (as read_json).",
  { { "text", "string", "the JSON" }, { "max_depth?", "integer", "nesting limit (default 64)" } }, "any",
  'local v = nn.io.parse_json(\'{"x": null, "n": 3}\')\nassert(v.x == nn.io.null and v.n == 3)')

return D
