/* module.c — the entry points: luaopen_nnlua_core (the C module "nnlua.core") and
 * luaopen_nnlua (for hosts: preload the C module and require the Lua package). */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"


static void apply_env_threads(void) {
  /* OMP_NUM_THREADS already sets OpenMP; make OpenBLAS agree with it. */
  const char *s = getenv("OMP_NUM_THREADS");
  if (s && atoi(s) > 0) nnl_set_num_threads(atoi(s));
}

/* nn.clock(): wall-clock seconds from a monotonic clock (os.clock counts CPU time of all
 * threads, which misleads when kernels run in parallel). */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

/* lua_close() unloads C modules, and with this one libgomp and OpenBLAS, while their idle
 * worker threads still run code in them: a crash at exit. Keep the module loaded for good. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)luaopen_nnlua_core, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* When the state closes, its tensors are freed into the storage block cache, which would then
 * hold up to 1 GB until the process ends: give those blocks back. (The cache is shared by every
 * state in the process; emptying it only costs the next large allocation a fresh block.) */
static int trim_on_close(lua_State *L) {
  (void)L;
  nnl_storage_trim();
  return 0;
}

static void trim_at_close(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "nnlua.trim_at_close") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_newuserdatauv(L, 1, 0); /* collected at lua_close, after the tensors made before it */
  lua_newtable(L);
  lua_pushcfunction(L, trim_on_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "nnlua.trim_at_close");
}

int luaopen_nnlua_core(lua_State *L) {
  static int once;
  if (!once) {
    once = 1;
    pin_module();
    apply_env_threads();
  }
  trim_at_close(L);
  lua_newtable(L); /* module */
  int module = lua_gettop(L);
  lua_newtable(L); /* tensor methods */
  int methods = lua_gettop(L);
  nnlb_open_tensor(L, methods, module);
  nnlb_open_math(L, methods, module);
  nnlb_open_functional(L, methods, module);
  nnlb_open_io(L, methods, module);
  nnlb_open_image_ops(L, module);
  nnlb_open_json(L, module);
  nnlb_open_anomaly(L, module);
  nnlb_open_signal(L, module);
  lua_pushvalue(L, methods);
  lua_setfield(L, module, "Tensor");
  lua_pushcfunction(L, l_clock);
  lua_setfield(L, module, "clock");
  lua_pushstring(L, NNL_VERSION);
  lua_setfield(L, module, "version");
  lua_pushstring(L, NNL_LUA_DIR_BUILD);
  lua_setfield(L, module, "_lua_dir_build");
  lua_pushstring(L, NNL_LUA_DIR_INSTALL);
  lua_setfield(L, module, "_lua_dir_install");
  lua_settop(L, module);
  return 1;
}

/* For host programs: make "nnlua" requirable without LUA_PATH set, then require it. */
int luaopen_nnlua(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_nnlua_core);
  lua_setfield(L, -2, "nnlua.core");
  lua_pop(L, 1);
  /* an installed library finds the Lua files beside it: <libdir>/../share/lua/5.4 */
  char here[4096] = "";
  Dl_info info;
  if (dladdr((void *)luaopen_nnlua, &info) && info.dli_fname && strlen(info.dli_fname) < 4000) {
    strcpy(here, info.dli_fname);
    char *slash = strrchr(here, '/');
    if (slash) strcpy(slash, "/../share/lua/5.4");
    else here[0] = '\0';
  }
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "path");
    const char *p = lua_tostring(L, -1);
    lua_pushfstring(L, "%s;%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua",
                    p ? p : "", here, here, NNL_LUA_DIR_BUILD, NNL_LUA_DIR_BUILD,
                    NNL_LUA_DIR_INSTALL, NNL_LUA_DIR_INSTALL);
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "nnlua");
  lua_call(L, 1, 1);
  return 1;
}
