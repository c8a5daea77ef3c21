-- nnlua-dev-1.rockspec: `luarocks --lua-version 5.4 make` builds nnlua with CMake and installs the
-- module (nnlua.core and the Lua files under nnlua.*) and the nnlua executable into a LuaRocks tree.
rockspec_format = "3.0"
package = "nnlua"
version = "dev-1"

source = {
  url = "git+https://example.invalid/nnlua.git", -- placeholder: `luarocks make` builds this checkout
}

description = {
  summary = "A neural-network runtime: OpenMP/OpenBLAS tensor kernels with autograd, for Lua 5.4",
  detailed = [[
nnlua is a C core of parallel tensor and layer kernels (OpenBLAS for matrix products) with
reverse-mode autograd, exposed to Lua 5.4 as the module `nnlua`: tensors, nn modules in the style of
PyTorch and Torch7, optimizers, data loading, images, plots and safetensors checkpoints.
]],
  labels = { "machine-learning", "neural-networks", "tensor" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

-- Debian: cmake pkg-config liblua5.4-dev libopenblas-openmp-dev zlib1g-dev libstb-dev libedit-dev
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  ZLIB = { header = "zlib.h" },
  STB = { header = "stb/stb_image.h" },
}

build = {
  type = "command",
  -- Only the installed targets are built (no tests, no embedding example). In the rock's prefix,
  -- lua/ and lib/ are what LuaRocks deploys to share/lua/5.4 and lib/lua/5.4; the C API files
  -- (header, pkg-config, CMake config, libnnlua-lua) are left out: `cmake --install` gives those.
  build_command = [[
cmake -S . -B build.luarocks -DCMAKE_BUILD_TYPE=Release -DNNL_WERROR=OFF \
  -DCMAKE_INSTALL_PREFIX="$(PREFIX)" -DCMAKE_INSTALL_LIBDIR=lib -DNNL_LUADIR=lua -DNNL_CLUADIR=lib &&
cmake --build build.luarocks -j2 --target nnlua nnlua_lua nnlua_core nnlua_exe
]],
  -- LuaRocks copies files, not symbolic links: keep libnnlua as the one file the module and the
  -- executable load (libnnlua.so.0; their rpaths look in lib/lua/5.4 of the tree).
  install_command = [[
cmake --install build.luarocks &&
cd "$(PREFIX)/lib" && rm -rf ../include pkgconfig cmake libnnlua-lua.so* libnnlua.so libnnlua.so.0 &&
mv libnnlua.so.0.* libnnlua.so.0
]],
  copy_directories = {},
}
