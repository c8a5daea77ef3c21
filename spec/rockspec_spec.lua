-- rockspec_spec.lua: `luarocks make` of nnlua-dev-1.rockspec builds a copy of the tree with CMake and
-- installs into a temporary LuaRocks tree a module that stock lua5.4 loads (pending without luarocks).
local function run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = f:read("a")
  f:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local has_luarocks = run("command -v luarocks >/dev/null") == 0

describe("luarocks make", function()
  if not has_luarocks then
    pending("luarocks is not installed (scripts/setup installs it)")
    return
  end

  local tmp, tree, made, log
  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    tree = tmp .. "/tree"
    -- a copy of what the rockspec builds from, so the build directory stays out of the checkout
    local rc, out = run(("mkdir -p %s/src && cp -r CMakeLists.txt cmake src lua nnlua-dev-1.rockspec %s/src/")
      :format(q(tmp), q(tmp)))
    assert(rc == 0, out)
    local t0 = os.time()
    rc, log = run(("cd %s/src && luarocks --lua-version 5.4 make --tree %s"):format(q(tmp), q(tree)))
    made = rc == 0
    log = log .. ("\n(luarocks make took %d s)"):format(os.time() - t0)
  end)
  teardown(function()
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  it("builds with CMake and installs nnlua dev-1", function()
    assert(made, log)
    local rc, out = run(("luarocks --lua-version 5.4 list --tree %s --porcelain"):format(q(tree)))
    assert.are.equal(0, rc, out)
    assert.matches("nnlua\tdev%-1\tinstalled", out)
  end)

  it("gives stock lua5.4 the module through `luarocks path`", function()
    assert(made, log)
    local rc, out = run(("cd /tmp && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 sh -c %s"):format(q(
      ("eval \"$(luarocks --lua-version 5.4 path --tree %s)\" && lua5.4 -e %s"):format(q(tree), q(
        "local nn = require 'nnlua'\n"
        .. "print(package.searchpath('nnlua', package.path))\n"
        .. "print(package.searchpath('nnlua.core', package.cpath))\n"
        .. "print((nn.ones(2, 2) * 3):sum():item(), nn.Linear(2, 3), type(nn.help))")))))
    assert.are.equal(0, rc, out)
    assert.matches(tree .. "/share/lua/5.4/nnlua/init.lua", out, 1, true)
    assert.matches(tree .. "/lib/lua/5.4/nnlua/core.so", out, 1, true)
    assert.matches("12.0\tLinear%(in_features=2, out_features=3, bias=true%)", out)
    assert.matches("function", out)
  end)

  it("installs the nnlua executable in the tree's bin, finding the tree's Lua files", function()
    assert(made, log)
    local rc, out = run(("cd /tmp && env -u LUA_PATH -u LUA_PATH_5_4 %s/bin/nnlua -e %s"):format(q(tree),
      q("print(package.searchpath('nnlua', package.path), nn.tensor{1, 2}:sum():item())")))
    assert.are.equal(0, rc, out)
    assert.matches(tree .. "/bin/../share/lua/5.4/nnlua/init.lua\t3.0", out, 1, true)
  end)

  it("removes cleanly", function()
    assert(made, log)
    local rc, out = run(("luarocks --lua-version 5.4 remove --tree %s nnlua"):format(q(tree)))
    assert.are.equal(0, rc, out)
    rc = run(("test -e %s/lib/lua/5.4/nnlua/core.so"):format(q(tree)))
    assert.are_not.equal(0, rc)
  end)
end)
