-- cli_spec.lua — the nnlua executable run as a user would: options, arg, errors,
-- stdin, the REPL through a pipe, and (when tmux is installed) through a terminal.
local proc = require "helpers.proc"
local BIN, q, run = proc.BIN, proc.q, proc.run -- run(cmd, input): stdout, stderr, exit code

local function nnlua(args, input)
  return run(q(BIN) .. " " .. args, input)
end

local function write_file(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

describe("nnlua executable", function()
  it("exists (set NNLUA_BIN to test another build)", function()
    local f = io.open(BIN)
    assert.is_not_nil(f, "no executable at " .. BIN)
    f:close()
  end)

  describe("-v", function()
    it("prints the nnlua, Lua and BLAS versions and the thread count", function()
      local out, _, code = nnlua("-v")
      assert.equal(0, code)
      assert.matches("^nnlua %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, [^,]+, %d+ threads?%)\n$", out)
    end)

    it("reports the thread count set with -t", function()
      local out, _, code = nnlua("-t 3 -v")
      assert.equal(0, code)
      assert.matches(", 3 threads%)", out)
      out = nnlua("-t1 -v")
      assert.matches(", 1 thread%)", out)
    end)

    it("rejects a bad thread count", function()
      local _, err, code = nnlua("-t zero -e 'print(1)'")
      assert.not_equal(0, code)
      assert.matches("'%-t' needs a thread count", err)
    end)
  end)

  describe("-h", function()
    it("lists every option on stdout and exits 0", function()
      for _, flag in ipairs{"-h", "--help"} do
        local out, _, code = nnlua(flag)
        assert.equal(0, code)
        assert.matches("^usage: ", out)
        for _, opt in ipairs{"-e stat", "-i", "-l mod", "-l g=mod", "-t N", "-v", "-E", "-W",
                             "-h", "--", "-  "} do
          assert.is_truthy(out:find("\n  " .. opt, 1, true), "usage lacks " .. opt)
        end
      end
    end)

    it("goes to stderr with a non-zero status for an unknown option", function()
      local out, err, code = nnlua("-x")
      assert.not_equal(0, code)
      assert.equal("", out)
      assert.matches("unrecognized option '%-x'", err)
      assert.matches("usage: ", err)
      _, err, code = nnlua("-e")
      assert.not_equal(0, code)
      assert.matches("'%-e' needs argument", err)
    end)
  end)

  describe("-e and -l", function()
    it("runs statements in order, with nn preloaded", function()
      local out, err, code = nnlua("-e 'x = 20' -e 'print(x + 1, type(nn))'")
      assert.equal(0, code, err)
      assert.equal("21\ttable\n", out)
    end)

    it("requires a library into a global, also under another name", function()
      local out, err, code = nnlua("-l string -l s=string -e 'print(s.upper(\"ok\"), string == s)'")
      assert.equal(0, code, err)
      assert.equal("OK\ttrue\n", out)
    end)
  end)

  describe("scripts", function()
    it("get their arguments in arg and ..., with options at negative indices", function()
      local script = write_file([[
        print(select("#", ...), ...)
        for i = -4, #arg do io.write(i, "=", arg[i], ";") end
        print()
      ]])
      local out, err, code = nnlua("-t 2 -e 'y=1' " .. q(script) .. " a 'b c'")
      os.remove(script)
      assert.equal(0, code, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("2\ta\tb c", lines[1])
      assert.equal(("-4=-t;-3=2;-2=-e;-1=y=1;0=%s;1=a;2=b c;"):format(script), lines[2])
    end)

    it("stop with a traceback on stderr and a non-zero status on error", function()
      local script = write_file("local function f() error('boom') end\nf()\n")
      local out, err, code = nnlua(q(script))
      os.remove(script)
      assert.not_equal(0, code)
      assert.equal("", out)
      assert.matches("boom", err)
      assert.matches("stack traceback:", err)
      assert.matches("in local 'f'", err)
    end)

    it("report a missing script file", function()
      local _, err, code = nnlua("/nonexistent/x.lua")
      assert.not_equal(0, code)
      assert.matches("cannot open /nonexistent/x.lua", err)
    end)

    it("exit with the status passed to os.exit", function()
      local _, _, code = nnlua("-e 'os.exit(7)'")
      assert.equal(7, code)
    end)
  end)

  describe("stdin", function()
    it("runs as a script when it is not a terminal", function()
      local out, err, code = nnlua("", "print(40 + 2)\n")
      assert.equal(0, code, err)
      assert.equal("42\n", out)
    end)

    it("runs as a script with '-', arguments following", function()
      local out, err, code = nnlua("- x y", "print(...)\n")
      assert.equal(0, code, err)
      assert.equal("x\ty\n", out)
    end)

    it("fails with a traceback when the piped script fails", function()
      local _, err, code = nnlua("", "error('piped')\n")
      assert.not_equal(0, code)
      assert.matches("piped", err)
      assert.matches("stack traceback:", err)
    end)
  end)

  describe("REPL over a pipe (-i)", function()
    it("echoes expressions and continues unfinished statements", function()
      local out, err, code = nnlua("-i",
        "1+1\nfor i = 1, 3 do\nprint(i * 10)\nend\n'a', nil, 3\n=2*3\n")
      assert.equal(0, code, err)
      assert.matches("^nnlua %d", out) -- -i shows the version first
      assert.is_truthy(out:find("\n> 2\n", 1, true), out)
      assert.is_truthy(out:find("> >> >> 10\n20\n30\n", 1, true), out)
      assert.is_truthy(out:find("> a\tnil\t3\n", 1, true), out)
      assert.is_truthy(out:find("> 6\n", 1, true), out)
      assert.equal("", err)
    end)

    it("reports errors and keeps going", function()
      local out, err, code = nnlua("-i", "error('oops')\nlocal = 1\nprint('after')\n")
      assert.equal(0, code)
      assert.matches("stdin:1: oops", err)
      assert.matches("stack traceback:", err)
      assert.matches("<name> expected near '='", err)
      assert.matches("after\n", out)
    end)

    it("runs the script first, then reads the prompt", function()
      local script = write_file("x = 5\n")
      local out, err, code = nnlua("-i " .. q(script), "x * 2\n")
      os.remove(script)
      assert.equal(0, code, err)
      assert.matches("> 10\n", out)
    end)

    it("passes ?expr to the global help", function()
      local out, err = nnlua("-i", "function help(v) return 'help on ' .. type(v) end\n?nn\n")
      assert.matches("> help on table\n", out)
      assert.equal("", err)
    end)

    it("uses _PROMPT and _PROMPT2", function()
      local out = nnlua("-e '_PROMPT=\"in: \" _PROMPT2=\"..: \"' -i", "if true then\nend\n")
      assert.matches("in: %.%.: in: \n$", out)
    end)
  end)

  describe("REPL on a terminal (tmux)", function()
    local has_tmux = os.execute("command -v tmux >/dev/null 2>&1")
    local socket_base = "nnlua_spec_" .. tostring(os.time()) .. "_" .. tostring(math.random(1e6))
    local socket, nstarted, history = nil, 0, nil

    local function tmux(args)
      return run("tmux -L " .. socket .. " " .. args)
    end

    local function screen()
      return (tmux("capture-pane -p -t t"))
    end

    -- Poll the screen until it shows the pattern (plain text); a slow machine waits longer.
    local function wait_for(text, timeout)
      local deadline = os.time() + (timeout or 10)
      repeat
        local s = screen()
        if s:find(text, 1, true) then return s end
        os.execute("sleep 0.1")
      until os.time() > deadline
      error("screen never showed " .. q(text) .. ":\n" .. screen())
    end

    local function type_text(text)
      tmux("send-keys -t t -l " .. q(text))
    end

    local function keys(k)
      tmux("send-keys -t t " .. k)
    end

    local function start()
      if not has_tmux then
        pending("tmux is not installed")
      end
      nstarted = nstarted + 1 -- a fresh server each test: a dying one may still hold the socket
      socket = socket_base .. "_" .. nstarted
      history = os.tmpname()
      os.remove(history)
      local cmd = ("env NNLUA_HISTORY=%s %s; echo EXIT=$?; sleep 60"):format(q(history), q(BIN))
      tmux("new-session -d -s t -x 120 -y 40 " .. q(cmd))
      wait_for("\n>") -- the screen capture drops trailing blanks
    end

    after_each(function()
      if socket then tmux("kill-server") end
      socket = nil
      if history then os.remove(history) end
    end)

    it("echoes expressions, continues lines, keeps history, exits on Ctrl-D", function()
      start()
      type_text("1+1"); keys("Enter")
      wait_for("\n2\n")
      type_text("for i = 1, 2 do"); keys("Enter")
      wait_for("\n>>")
      type_text("print(i * 100)"); keys("Enter")
      type_text("end"); keys("Enter")
      wait_for("100\n200\n")
      keys("C-d")
      wait_for("EXIT=0")
      local f = assert(io.open(history))
      local h = f:read("a")
      f:close()
      assert.matches("1%+1", h)
    end)

    it("stops a running loop with Ctrl-C and returns to the prompt", function()
      start()
      type_text("print('spin' .. 'ning') while true do end"); keys("Enter")
      wait_for("\nspinning\n")
      keys("C-c")
      wait_for("interrupted!")
      type_text("'still here'"); keys("Enter")
      wait_for("\nstill here\n")
    end)

    it("drops the line being typed on Ctrl-C", function()
      start()
      type_text("this is not lua"); keys("C-c")
      wait_for("^C")
      type_text("6*7"); keys("Enter")
      local s = wait_for("\n42\n")
      assert.is_falsy(s:find("syntax error", 1, true))
    end)

    it("completes globals, fields and methods with Tab", function()
      start()
      type_text("string.for"); keys("Tab")
      wait_for("> string.format")
      keys("C-u")
      type_text("s = 'abc'"); keys("Enter")
      type_text("s:upp"); keys("Tab")
      wait_for("> s:upper")
      type_text("()"); keys("Enter")
      wait_for("\nABC\n")
      type_text("collectg"); keys("Tab")
      wait_for("> collectgarbage")
    end)

    it("completes tensor methods", function()
      local out = nnlua("-e 'io.write(tostring(type(nn.Tensor) == \"table\" and " ..
                        "nn.Tensor.numel ~= nil and nn.zeros ~= nil))'")
      if out ~= "true" then
        pending("needs nn.zeros and nn.Tensor.numel")
      end
      start()
      type_text("x = nn.zeros(2, 3)"); keys("Enter")
      type_text("x:nume"); keys("Tab")
      wait_for("> x:numel")
      type_text("()"); keys("Enter")
      wait_for("\n6\n")
    end)
  end)
end)
