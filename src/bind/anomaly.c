/* anomaly.c (bind) — nn.detect_anomaly and nn.is_anomaly_enabled, and the forward check that
 * nnlb_push runs on every op result while anomaly mode is on (the engine checks backward). */
#include <stdio.h>
#include <string.h>

#include "../autograd/anomaly.h"
#include "args.h"
#include "bind.h"

/* The name the running C function was called by ("log", "cross_entropy", "add" for a + b), or
 * NULL (called from C, or through a local alias Lua cannot name). */
static const char *called_as(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "n", &ar)) return NULL;
  return ar.name;
}

/* Which pushes are an op producing values: a float32 result with a graph node, or one computed
 * from tensor arguments. Views and returned inputs (sharing an argument's storage) only show
 * values that were checked when they were made, so they are skipped; so is a tensor's .grad,
 * which the engine checked as it was made. Constructors (nn.tensor, nn.full, nn.load) take data
 * in rather than compute it: not checked. In-place methods return their argument without a
 * push: what they write is caught by the first op that reads it, and the message then says
 * that an argument already held the NaN. */
void nnlb_anomaly_forward(lua_State *L, const nnl_tensor *t) {
  if (t->dtype != NNL_F32) return;
  int tensors = 0, top = lua_gettop(L) - 1; /* t itself is on top */
  for (int i = 1; i <= top; i++) {
    const nnl_tensor *a = nnlb_test(L, i);
    if (!a) continue;
    tensors++;
    if (a->grad == t || a->storage == t->storage) return;
  }
  if (!tensors && !t->grad_fn) return;
  if (nnl_anomaly_find(t, NULL) == -1) return;
  char what[200];
  const char *node = nnl_grad_fn_name(t), *name = called_as(L);
  if (node && name)
    snprintf(what, sizeof what, "produced by %s's forward (%s)", node, name);
  else if (node)
    snprintf(what, sizeof what, "produced by %s's forward", node);
  else
    snprintf(what, sizeof what, "produced by %s", name ? name : "an op");
  nnl_anomaly_check(t, what);
  /* not this op's doing when an argument was already bad: say so, and which */
  for (int i = 1; i <= top; i++) {
    const nnl_tensor *a = nnlb_test(L, i);
    float v = 0;
    if (!a || nnl_anomaly_find(a, &v) < 0) continue;
    luaL_error(L, "%s (but argument %d already held %s: written in place, loaded, or made before "
                  "detect_anomaly was on)",
               nnl_last_error(), i, v != v ? "NaN" : "Inf");
  }
  nnlb_fail(L);
}

/* nn.detect_anomaly(true | false) -> previous setting;
 * nn.detect_anomaly(fn, ...) -> fn(...)'s results, run with anomaly mode on (restored after,
 * errors included). */
static int l_detect_anomaly(lua_State *L) {
  if (lua_type(L, 1) == LUA_TFUNCTION) {
    int prev = nnl_set_anomaly_enabled(1);
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    nnl_set_anomaly_enabled(prev);
    if (rc != LUA_OK) return lua_error(L);
    return lua_gettop(L);
  }
  if (lua_type(L, 1) != LUA_TBOOLEAN)
    return nnlb_argerror(L, 1, lua_pushfstring(L, "boolean or function expected, got %s",
                                               luaL_typename(L, 1)));
  lua_pushboolean(L, nnl_set_anomaly_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int l_is_anomaly_enabled(lua_State *L) {
  lua_pushboolean(L, nnl_anomaly_enabled());
  return 1;
}

void nnlb_open_anomaly(lua_State *L, int module) {
  static const luaL_Reg fns[] = {
      {"detect_anomaly", l_detect_anomaly}, {"is_anomaly_enabled", l_is_anomaly_enabled}, {NULL, NULL}};
  lua_pushvalue(L, module);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
