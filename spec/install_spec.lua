-- install_spec.lua: `cmake --install` into a temporary prefix gives a working nnlua: the
-- executable, the module for stock lua5.4, and a host program built through pkg-config.
local build = os.getenv("NNLUA_BUILD") or "build"

local function run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = f:read("a")
  f:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

describe("installed copy", function()
  local prefix
  setup(function()
    prefix = os.tmpname()
    os.remove(prefix)
    local rc, out = run(string.format("cmake --install %q --prefix %q", build, prefix))
    assert(rc == 0, out)
  end)
  teardown(function()
    if prefix then os.execute(string.format("rm -rf %q", prefix)) end
  end)

  it("runs the installed nnlua, which finds its Lua files in the prefix", function()
    local rc, out = run(string.format("cd /tmp && env -u LUA_PATH -u LUA_PATH_5_4 %q/bin/nnlua -e 'print(package.searchpath(\"nnlua\", package.path))'", prefix))
    assert.are.equal(0, rc, out)
    assert.matches(prefix .. "/bin/../share/lua/5.4/nnlua/init.lua", out, 1, true)
  end)

  it("loads from stock lua5.4 through the installed module", function()
    local rc, out = run(string.format(
      "cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' LUA_CPATH='%s/lib/lua/5.4/?.so' " ..
      "lua5.4 -e 'local nn = require \"nnlua\"; print((nn.ones(2, 2) * 3):sum():item())'", prefix, prefix, prefix))
    assert.are.equal(0, rc, out)
    assert.matches("^12", out)
  end)

  it("builds and runs examples/embed against the installed pkg-config file", function()
    local exe = prefix .. "/embed"
    local rc, out = run(string.format(
      "PKG_CONFIG_PATH=%q/lib/pkgconfig gcc -O2 examples/embed/main.c " ..
      "$(PKG_CONFIG_PATH=%q/lib/pkgconfig pkg-config --cflags --libs nnlua) -o %q && %q",
      prefix, prefix, exe, exe))
    assert.are.equal(0, rc, out)
    assert.matches("sample 1: p = %[0%.0025, 0%.9975%]", out)
  end)

  it("installs a CMake package config that find_package accepts", function()
    local dir = prefix .. "/cmake-user"
    os.execute("mkdir -p " .. dir)
    local f = assert(io.open(dir .. "/CMakeLists.txt", "w"))
    f:write("cmake_minimum_required(VERSION 3.20)\nproject(user C)\nfind_package(nnlua 0.1 REQUIRED)\n",
      "add_executable(u u.c)\ntarget_link_libraries(u nnlua::nnlua)\n")
    f:close()
    f = assert(io.open(dir .. "/u.c", "w"))
    f:write('#include <stdio.h>\n#include <nnlua.h>\nint main(void) {\n',
      '  int64_t s[1] = {4};\n  nnl_tensor *t = nnl_tensor_full(NNL_F32, 1, s, 2.5);\n',
      '  nnl_tensor *r = nnl_reduce(NNL_RED_SUM, t, -1, 0, NULL);\n',
      '  printf("sum=%g\\n", nnl_tensor_get(r, NULL));\n  nnl_tensor_release(r); nnl_tensor_release(t);\n  return 0;\n}\n')
    f:close()
    local rc, out = run(string.format("cmake -S %q -B %q/b -DCMAKE_PREFIX_PATH=%q >/dev/null && cmake --build %q/b >/dev/null && %q/b/u",
      dir, dir, prefix, dir, dir))
    assert.are.equal(0, rc, out)
    assert.matches("sum=10", out)
  end)
end)
