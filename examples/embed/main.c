/* embed/main.c — a host program that embeds Lua and nnlua: it wraps its own float buffer as a
 * tensor (no copy), runs a model defined in Lua on it, and reads the result back. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

#define NNLUA_WITH_LUA_API
#include <nnlua.h>

/* The model lives in Lua: here a fixed linear layer + softmax; a real host would load a
 * checkpoint with nn.load and a module definition. */
static const char *model_src =
    "local nn = require 'nnlua'\n"
    "local w = nn.tensor{{1, 0, -1}, {0, 2, 0}}\n"
    "return function(x) return nn.matmul(x, w:t()):exp() / nn.matmul(x, w:t()):exp():sum(2, true) end\n";

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "nnlua", luaopen_nnlua, 0); /* preloads nnlua.core, finds the Lua files */
  lua_pop(L, 1);
  if (luaL_dostring(L, model_src) != LUA_OK) {
    fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  /* host memory: two samples of three features */
  float input[2][3] = {{1, 2, 3}, {0.5f, -1, 0}};
  int64_t shape[2] = {2, 3};
  nnl_tensor *x = nnl_tensor_wrap(input, NNL_F32, 2, shape, NULL, NULL, NULL);
  if (!x) {
    fprintf(stderr, "embed: %s\n", nnl_last_error());
    return 1;
  }
  input[1][2] = 1; /* the tensor sees host writes: it is the same memory */
  nnl_lua_push_tensor(L, x); /* Lua now owns the reference */
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  nnl_tensor *y = nnl_lua_check_tensor(L, -1);
  float out[2][2];
  nnl_tensor_copy_out(y, out);
  for (int i = 0; i < 2; i++) printf("sample %d: p = [%.4f, %.4f]\n", i + 1, out[i][0], out[i][1]);
  lua_close(L);
  return 0;
}
