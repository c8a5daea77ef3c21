-- doc_spec.lua: every public function, class and C function reachable from nn (and every module
-- under lua/nnlua) is documented: LuaLS annotations in the Lua files, doc/c_functions.lua for C.
-- An undocumented addition fails here; so do a stale C entry and a C example that does not run.
local nn = require "nnlua"
local doc = require "nnlua.doc"
local luals = require "nnlua.doc.luals"

local function list(rows)
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = "  " .. r end
  return table.concat(out, "\n")
end

describe("the API documentation", function()
  it("indexes the public API without load errors", function()
    local idx = doc.index()
    assert.are.same({}, idx.errors)
    local kinds = {}
    for _, e in ipairs(idx.entries) do kinds[e.kind] = (kinds[e.kind] or 0) + 1 end
    -- a walk that found little would pass the checks below vacuously
    assert.is_true(kinds["function"] > 300, "functions indexed: " .. tostring(kinds["function"]))
    assert.is_true(kinds.class > 40, "classes indexed: " .. tostring(kinds.class))
    for _, name in ipairs({ "nn.matmul", "nn.F.conv2d", "nn.Tensor.view", "nn.Conv2d", "nn.optim.SGD",
                            "nn.data.DataLoader", "nn.image.load", "nn.io.read_idx", "nn.plot.lines",
                            "nn.init.kaiming_uniform_", "nn.Module.state_dict", "nnlua.Canvas.line",
                            "nn.help" }) do
      assert.is_not_nil(idx.by_name[name], name .. " is not in the index")
    end
  end)

  it("documents every public function and class", function()
    local missing = {}
    for _, m in ipairs(doc.undocumented()) do missing[#missing + 1] = m.name .. ": " .. m.problem end
    assert(#missing == 0, #missing .. " undocumented (add ---@ annotations, or an entry in "
      .. "lua/nnlua/doc/c_functions.lua for C functions):\n" .. list(missing))
  end)

  it("has no C documentation for functions that do not exist", function()
    local stale = doc.stale_c_docs()
    assert(#stale == 0, "entries in doc/c_functions.lua naming no C function:\n" .. list(stale))
  end)

  it("gives every C entry a signature, summary, {name, type, text} params, returns and example", function()
    local bad = {}
    for name, d in pairs(doc.c_docs()) do
      if type(d) == "string" then
        if not doc.c_doc(name) then bad[#bad + 1] = name .. ": alias of a missing entry " .. d end
      elseif d.signature then
        for _, f in ipairs({ "summary", "returns", "example" }) do
          if type(d[f]) ~= "string" or d[f] == "" then bad[#bad + 1] = name .. ": no " .. f end
        end
        for i, p in ipairs(d.params or {}) do
          if type(p[1]) ~= "string" or type(p[2]) ~= "string" or type(p[3]) ~= "string" then
            bad[#bad + 1] = name .. ": param " .. i .. " is not {name, type, text}"
          end
        end
      elseif type(d.summary) ~= "string" then
        bad[#bad + 1] = name .. ": neither a function entry nor a namespace summary"
      end
    end
    table.sort(bad)
    assert(#bad == 0, list(bad))
  end)

  it("runs every C example", function()
    local failed, n = {}, 0
    local saved = nn.get_rng_state()
    for name, d in pairs(doc.c_docs()) do
      if type(d) == "table" and d.example then
        n = n + 1
        local env = setmetatable({ nn = nn, print = function() end }, { __index = _G })
        local f, err = load(d.example, "=" .. name, "t", env)
        local ok, err2 = pcall(f or error, err)
        if not (f and ok) then failed[#failed + 1] = name .. ": " .. tostring(err or err2) end
      end
    end
    nn.set_rng_state(saved)
    table.sort(failed)
    assert(#failed == 0, #failed .. " of " .. n .. " examples failed:\n" .. list(failed))
  end)
end)

describe("the annotation checker", function()
  local path
  setup(function()
    path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write([[
local M = {}

---Documented.
---@param a integer first
---@param b? string second
---@return integer
function M.good(a, b) return a end

---A description but one parameter missing.
---@param a integer
function M.half(a, b) return a end

function M.bare(x) return x end

---Tags only.
---@class demo.Thing : demo.Base
---@field size integer the size
---@overload fun(n: integer): demo.Thing
local Thing = {}

---Method; self needs no @param.
---@param opts? {stride?: integer, padding?: integer|integer[]} the options
---@param fn fun(x: Tensor): Tensor a callback
---@return Tensor y # the result
function Thing:method(opts, fn) return opts, fn end

---Varargs.
---@param ... Tensor the tensors
function M.many(...) return ... end

M.Thing = Thing
return M
]])
    f:close()
  end)
  teardown(function() os.remove(path) end)

  it("accepts complete blocks and names what is missing", function()
    local M = dofile(path)
    assert.is_nil(luals.check_function(M.good))
    assert.is_nil(luals.check_function(M.Thing.method))
    assert.is_nil(luals.check_function(M.many))
    assert.are.equal("no @param for b", luals.check_function(M.half))
    assert.are.equal("no ---@ annotation block above the definition", luals.check_function(M.bare))
  end)

  it("parses types with spaces, classes, fields and overloads", function()
    local M = dofile(path)
    local b = luals.function_block(M.Thing.method)
    assert.are.equal("opts", b.params[1].name)
    assert.is_true(b.params[1].optional)
    assert.are.equal("{stride?: integer, padding?: integer|integer[]}", b.params[1].type)
    assert.are.equal("the options", b.params[1].desc)
    assert.are.equal("fun(x: Tensor): Tensor", b.params[2].type)
    assert.are.equal("Tensor", b.returns[1].type)
    assert.are.equal("y # the result", b.returns[1].desc)
    local cls = luals.file(path).classes["demo.Thing"]
    assert.are.equal("demo.Base", cls.parent)
    assert.are.equal("size", cls.fields[1].name)
    assert.are.equal("fun(n: integer): demo.Thing", cls.overloads[1])
    assert.are.equal("Tags only.", cls.text)
  end)
end)
