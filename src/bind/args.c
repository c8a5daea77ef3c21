/* args.c (bind) — argument checks whose errors name the function: at the call site when Lua knows
 * the name, else by where the function lives in the module (pcall(f, ...) and calls from C). */
#include <stdio.h>
#include <string.h>

#include "args.h"

/* out = "nn.<key>" or "nn.<sub>.<key>" when the function at index fn is in the module table at
 * index mod (subtables one level down; of several names, the least, so the answer never depends
 * on table order). Returns 1 when found. */
static int module_name(lua_State *L, int fn, int mod, char *out, size_t n) {
  for (lua_pushnil(L); lua_next(L, mod); lua_pop(L, 1))
    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, fn)) {
      snprintf(out, n, "nn.%s", lua_tostring(L, -2));
      lua_pop(L, 2);
      return 1;
    }
  int found = 0;
  for (lua_pushnil(L); lua_next(L, mod); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) continue;
    int sub = lua_gettop(L);
    for (lua_pushnil(L); lua_next(L, sub); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || !lua_rawequal(L, -1, fn)) continue;
      char cand[160];
      snprintf(cand, sizeof cand, "nn.%s.%s", lua_tostring(L, sub - 1), lua_tostring(L, -2));
      if (!found || strcmp(cand, out) < 0) snprintf(out, n, "%s", cand);
      found = 1;
    }
  }
  return found;
}

/* out = "<__name>.<key>" when the function at index fn is a method of the type of argument 1
 * (in its metatable's __methods or __index table). Returns 1 when found. */
static int method_name(lua_State *L, int fn, char *out, size_t n) {
  static const char *const fields[] = {"__methods", "__index"};
  int found = 0, top = lua_gettop(L);
  if (top < 1 || fn == 1 || !lua_getmetatable(L, 1)) return 0;
  int mt = lua_gettop(L);
  lua_getfield(L, mt, "__name");
  const char *tname = lua_tostring(L, -1);
  for (int i = 0; i < 2 && tname && !found; i++) {
    if (lua_getfield(L, mt, fields[i]) == LUA_TTABLE) {
      int t = lua_gettop(L);
      for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, fn)) {
          snprintf(out, n, "%s.%s", tname, lua_tostring(L, -2));
          found = 1;
          lua_pop(L, 2);
          break;
        }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return found;
}

/* Push the function's name by where it lives ("?" when nowhere we look). */
static const char *lookup_name(lua_State *L, lua_Debug *ar) {
  char name[160];
  int top = lua_gettop(L);
  lua_getinfo(L, "f", ar);
  int fn = lua_gettop(L), found = 0;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "nnlua.core") == LUA_TTABLE)
    found = module_name(L, fn, lua_gettop(L), name, sizeof name);
  if (!found) found = method_name(L, fn, name, sizeof name);
  lua_settop(L, top);
  return lua_pushstring(L, found ? name : "?");
}

int nnlb_argerror(lua_State *L, int arg, const char *msg) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) return luaL_error(L, "bad argument #%d (%s)", arg, msg);
  lua_getinfo(L, "n", &ar);
  if (ar.namewhat && !strcmp(ar.namewhat, "method")) {
    arg--; /* x:f(a): a is argument #1 */
    if (arg == 0) return luaL_error(L, "calling '%s' on bad self (%s)", ar.name, msg);
  }
  const char *name = ar.name ? ar.name : lookup_name(L, &ar);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
}

int nnlb_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA) got = "light userdata";
  else got = luaL_typename(L, arg);
  return nnlb_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

lua_Integer nnlb_checkinteger(lua_State *L, int arg) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg)) nnlb_argerror(L, arg, "number has no integer representation");
    else nnlb_typeerror(L, arg, "number");
  }
  return v;
}

lua_Integer nnlb_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : nnlb_checkinteger(L, arg);
}

lua_Number nnlb_checknumber(lua_State *L, int arg) {
  int isnum;
  lua_Number v = lua_tonumberx(L, arg, &isnum);
  if (!isnum) nnlb_typeerror(L, arg, "number");
  return v;
}

lua_Number nnlb_optnumber(lua_State *L, int arg, lua_Number def) {
  return lua_isnoneornil(L, arg) ? def : nnlb_checknumber(L, arg);
}

const char *nnlb_checklstring(lua_State *L, int arg, size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (!s) nnlb_typeerror(L, arg, "string");
  return s;
}

void nnlb_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) nnlb_typeerror(L, arg, lua_typename(L, t));
}

void *nnlb_checkudata(lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (!p) nnlb_typeerror(L, arg, tname);
  return p;
}

int nnlb_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]) {
  const char *name = def && lua_isnoneornil(L, arg) ? def : nnlb_checkstring(L, arg);
  for (int i = 0; lst[i]; i++)
    if (!strcmp(lst[i], name)) return i;
  return nnlb_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}
