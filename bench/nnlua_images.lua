-- bench/nnlua_images.lua: the image loader's cost — a batch of JPEGs read, decoded and augmented
-- (RandomResizedCrop 224 + flip + ToTensor + Normalize) in one C call, per thread count.
local nn = require "nnlua"

local function usage()
  print([[usage: nnlua bench/nnlua_images.lua [--reps R] [--batch 8] [--files 32] [--h 300] [--w 400]
Writes --files JPEGs of h x w to a temporary ImageFolder, then times ImageLoader batches with 1 and
2 threads. Prints one JSON object per thread count:
{"bench":"images","impl":"nnlua","op":"load_batch","threads":...,"median_s":...,"per_image_ms":...}]])
end

local opts = { reps = 30, batch = 8, files = 32, h = 300, w = 400 }
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "-h" or a == "--help" then usage() return end
  local key = a:match("^%-%-(%w+)$")
  if not key or opts[key] == nil then io.stderr:write("unknown option " .. a .. "\n") os.exit(2) end
  opts[key] = math.tointeger(tonumber(arg[i + 1])) or error("option " .. a .. " needs an integer")
  i = i + 2
end

local T = nn.data.transforms
local root = os.tmpname()
os.remove(root)
assert(os.execute("mkdir -p '" .. root .. "/a' '" .. root .. "/b'"))

-- photo-like content (smooth shapes and mild noise): JPEG decode time depends on it
nn.manual_seed(0)
for f = 1, opts.files do
  local base = nn.image.resize(nn.rand(3, 12, 16), opts.h, opts.w)
  local img = ((base * 0.85 + nn.rand(3, opts.h, opts.w) * 0.15) * 255):clamp(0, 255):byte()
  nn.image.save(img, ("%s/%s/%03d.jpg"):format(root, f % 2 == 0 and "a" or "b", f), { quality = 90 })
end

local ds = nn.data.ImageFolder(root, { transform = T.Compose{
  T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
  T.Normalize({ 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }) } })

for _, threads in ipairs({ 1, 2 }) do
  local loader = nn.data.ImageLoader(ds, { batch_size = opts.batch, seed = 1, num_threads = threads })
  local ts = {}
  for r = 0, opts.reps do
    local idx = {}
    for k = 1, opts.batch do idx[k] = (r * opts.batch + k - 1) % #ds + 1 end
    local t0 = nn.clock()
    loader:batch(idx, r)
    if r > 0 then ts[r] = nn.clock() - t0 end -- r = 0 warms the page cache and the allocator
  end
  table.sort(ts)
  local med = ts[(#ts + 1) // 2]
  print(('{"bench":"images","impl":"nnlua","op":"load_batch","batch":%d,"size":"%dx%d","threads":%d,'
    .. '"median_s":%.6f,"min_s":%.6f,"per_image_ms":%.3f}'):format(opts.batch, opts.h, opts.w, threads, med,
    ts[1], med / opts.batch * 1e3))
end

os.execute("rm -rf '" .. root .. "'")
