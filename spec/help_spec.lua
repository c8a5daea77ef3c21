-- help_spec.lua: nn.help (the global help and ?expr in the nnlua REPL) prints the documentation of
-- classes, functions and C functions; every script, example and benchmark answers --help and -h.
local nn = require "nnlua"

local BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Run a shell command; returns its output (stdout and stderr) and exit code.
local function run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = f:read("a")
  f:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end

-- What help(...) prints.
local function help_text(...)
  local chunks = {}
  local real = io.stdout
  io.stdout = { write = function(_, ...) for _, s in ipairs({ ... }) do chunks[#chunks + 1] = s end end }
  local ok, err = pcall(nn.help, ...)
  io.stdout = real
  assert(ok, err)
  return table.concat(chunks)
end

describe("nn.help", function()
  it("is a function of the module, and no global from the library", function()
    assert.is_function(nn.help)
    assert.is_nil(rawget(_G, "help"))
  end)

  it("shows a class: description, constructor signature, options and methods", function()
    local s = help_text(nn.Conv2d)
    assert.matches("^nn%.Conv2d %(class, extends nn%.Module%)", s)
    assert.matches("2%-d convolution", s)
    assert.matches("nn.Conv2d(in_channels, out_channels, kernel_size, opts?)", s, 1, true)
    assert.matches("Options (nn.Conv2d.opts)", s, 1, true)
    assert.matches("\n  padding%?%s+integer|integer%[%]|\"same\"|\"valid\"", s)
    assert.matches("\n  forward%s+Apply the convolution", s)
    assert.matches("Inherited from nn.Module:", s, 1, true)
  end)

  it("shows a constructor given by an @overload (classes that inherit init)", function()
    local s = help_text(nn.optim.SGD)
    assert.matches("nn.optim.SGD(params: Tensor[]|table[], opts: nn.optim.SGD.opts) -> nn.optim.SGD", s, 1, true)
    assert.matches("\n  lr%s+number%s+the learning rate %(required%)", s)
    s = help_text(nn.MaxPool2d)
    assert.matches("Options (nn.Pool2d.opts)", s, 1, true)
  end)

  it("finds the C documentation of nn.F.conv2d, x.matmul and \"matmul\"", function()
    local s = help_text(nn.F.conv2d)
    assert.matches("^nn%.F%.conv2d%(x, weight, bias%?, opts%?%)", s)
    assert.matches("\nParameters:\n  x ", s)
    assert.matches("\nExample:\n", s)
    local x = nn.ones(2, 2)
    s = help_text(x.matmul)
    assert.matches("^nn%.matmul%(a, b%)", s)
    assert.matches("Also: nn.Tensor.matmul, nn.Tensor.mm", s, 1, true)
    assert.are.equal(s, help_text("matmul"))
    assert.are.equal(s, help_text("x:mm"))
    assert.matches("^x:view%(size%.%.%.%)", help_text("view"))
  end)

  it("shows Lua functions from their annotations, with where they are defined", function()
    local s = help_text(nn.Module.parameters)
    assert.matches("^nn%.Module:parameters%(opts%?%) %-> Tensor%[%]", s)
    assert.matches("Defined in lua/nnlua/nn/Module.lua:%d+", s)
    -- an undocumented user function still gets its signature
    local function mine(a, b) return a, b end
    assert.matches("^function%(a, b%)", help_text(mine))
  end)

  it("shows a user's own Module subclass from its annotations", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write('local nn = require "nnlua"\n---My two-layer net.\n---@class Net : nn.Module\n',
      'local Net = nn.Module:extend("Net")\n---Net(n)\n---@param n integer inputs\n',
      'function Net:init(n) self.fc = nn.Linear(n, 2) end\n---Scores.\n---@param x Tensor\n',
      'function Net:forward(x) return self.fc(x) end\nreturn Net\n')
    f:close()
    local Net = dofile(path)
    local s = help_text(Net)
    os.remove(path)
    assert.matches("^Net %(class, extends nn%.Module%)\n  My two%-layer net%.", s)
    assert.matches("\n  Net%(n%)\n    n  integer  inputs", s)
    assert.matches("\n  forward  Scores%.", s)
    assert.matches("^an instance of Net\n", help_text(Net(3)))
  end)

  it("shows namespaces, instances and tensors", function()
    local s = help_text(nn.optim)
    assert.matches("^nn%.optim %(namespace%)", s)
    assert.matches("\n  SGD%s+class%s+Stochastic gradient descent", s)
    assert.matches("^an instance of nn%.Linear\n", help_text(nn.Linear(2, 3)))
    s = help_text(nn.zeros(2, 3))
    assert.matches("^a tensor: float32 %[2, 3%]", s)
    assert.matches("\n  view ", s)
  end)

  it("lists the topics with no argument, and says what it cannot find", function()
    local s = help_text()
    assert.matches("^nnlua help:", s)
    assert.matches("\n  nn%.F%s", s)
    assert.matches("Conv2d", s)
    assert.matches('^no help for "zzzq"', help_text("zzzq"))
    assert.matches("^help%(nil%)", help_text(nil))
    assert.matches("%d+ matches for \"pool\"", help_text("pool"))
  end)
end)

describe("help in the nnlua executable", function()
  it("is the global help, which ?expr calls in the REPL", function()
    local out, rc = run("printf '%s\\n' '?nn.Linear' 'x = nn.ones(2)' '?x.matmul' '?\"conv2d\"' | "
      .. q(BIN) .. " -i")
    assert.are.equal(0, rc, out)
    assert.matches("> nn%.Linear %(class, extends nn%.Module%)", out)
    assert.matches("> nn%.matmul%(a, b%)", out)
    assert.matches("> nn%.F%.conv2d%(x, weight", out)
  end)

  it("leaves a help the user defines alone", function()
    local out, rc = run("printf '?1\\n' | " .. q(BIN) .. " -e 'help = function() return \"mine\" end' -i")
    assert.are.equal(0, rc, out)
    assert.matches("> mine", out)
  end)

  it("is not a global of the stock interpreter", function()
    local out, rc = run("lua5.4 -e 'require \"nnlua\"; print(rawget(_G, \"help\"))'")
    assert.are.equal(0, rc, out)
    assert.matches("^nil", out)
  end)
end)

-- ---- --help of the commands ----

local function files(pattern)
  local out = {}
  local p = io.popen("ls -d " .. pattern .. " 2>/dev/null")
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local commands = {}
for _, f in ipairs(files("scripts/*")) do
  local h = io.open(f .. "/") -- a directory opens; a file does not
  if h then h:close() else commands[#commands + 1] = { f, q(f) } end
end
for _, f in ipairs(files("examples/*.lua")) do commands[#commands + 1] = { f, q(BIN) .. " " .. q(f) } end
for _, f in ipairs(files("bench/*.lua")) do commands[#commands + 1] = { f, q(BIN) .. " " .. q(f) } end

describe("--help", function()
  it("finds the commands", function()
    assert.is_true(#commands >= 10, "only " .. #commands .. " commands found (run from the repository root)")
  end)
  for _, c in ipairs(commands) do
    local name, cmd = c[1], c[2]
    it(name .. " answers --help and -h with its usage, without doing the work", function()
      for _, flag in ipairs({ "--help", "-h" }) do
        local t0 = os.time()
        local out, rc = run("timeout 60 " .. cmd .. " " .. flag .. " </dev/null")
        if out:match("No module named 'torch'") then
          pending(name .. " needs python3-torch (scripts/setup --torch)")
          return
        end
        assert.are.equal(0, rc, name .. " " .. flag .. " exited with " .. tostring(rc) .. ":\n" .. out)
        assert.matches("[Uu]sage", out, nil, false, name .. " " .. flag .. " printed no usage:\n" .. out)
        assert.is_true(os.time() - t0 < 30, name .. " " .. flag .. " took too long: is it working?")
      end
    end)
  end
end)
