/* fuzz_lua_api.c — libFuzzer target: the public Lua API. lua_api.lua reads the input as a sequence of
 * calls with generated arguments; every call must return or raise a string error (no crash, no hang,
 * no sanitizer report). NNL_FUZZ_FRESH=1 gives every input a new Lua state (for reproducing). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_lua.h"

#ifndef NNL_FUZZ_DIR
#error "NNL_FUZZ_DIR (the directory holding lua_api.lua) must be defined"
#endif

static lua_State *L;
static int run_ref;
static int fresh;

static int l_check(lua_State *Ls) {
  if (!lua_toboolean(Ls, 1)) fz_fail("invariant broken: %s", luaL_optstring(Ls, 2, "?"));
  return 0;
}

static void open_state(void) {
  L = fz_lua_open();
  lua_register(L, "fuzz_check", l_check);
  const char *path = NNL_FUZZ_DIR "/lua_api.lua";
  if (luaL_loadfile(L, path) != LUA_OK) fz_fail("%s", lua_tostring(L, -1));
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) fz_fail("%s: %s", path, lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) fz_fail("%s must return a function", path);
  run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *f = getenv("NNL_FUZZ_FRESH");
  fresh = f && *f && strcmp(f, "0");
  open_state();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fresh && !L) open_state();
  fz_clean_tmp();
  lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
  lua_pushlstring(L, (const char *)data, size);
  fz_enter_tmp();
  int rc = lua_pcall(L, 1, 0, 0);
  fz_leave_tmp();
  if (rc != LUA_OK) {
    /* every call runs under pcall in lua_api.lua: only running out of Lua memory in the driver
     * itself may end up here */
    const char *msg = lua_tostring(L, -1);
    if (!msg || !strstr(msg, "not enough memory")) fz_fail("the driver failed: %s", msg ? msg : "?");
    lua_pop(L, 1);
  }
  fz_lua_collect(L);
  if (fresh) {
    fz_lua_close(L);
    L = NULL;
  }
  return 0;
}
