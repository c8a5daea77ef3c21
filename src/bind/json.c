/* json.c (bind) — JSON from Lua: nn.io.read_json(path) and nn.io.parse_json(text) turn a document
 * read by src/io/json.c into Lua values (objects -> tables, arrays -> lists, null -> nn.io.null). */
#include <string.h>

#include "../io/io.h"
#include "args.h"
#include "bind.h"


#define JSONDOC_MT "nnlua.JsonDoc"

/* The parsed document lives in a userdata until the Lua values are built, so a Lua error (out of
 * memory) on the way cannot leak it. */
typedef struct {
  nnl_json_doc *doc;
} doc_box;

static int doc_gc(lua_State *L) {
  doc_box *b = nnlb_checkudata(L, 1, JSONDOC_MT);
  nnl_json_free(b->doc);
  b->doc = NULL;
  return 0;
}

static doc_box *push_box(lua_State *L) {
  doc_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->doc = NULL;
  luaL_setmetatable(L, JSONDOC_MT);
  return b;
}

/* Push the Lua value of v; null is the light userdata at upvalue 1 (nn.io.null). */
static void push_value(lua_State *L, const nnl_json *v) {
  luaL_checkstack(L, 4, "JSON nested too deeply");
  switch (v->type) {
  case NNL_JSON_NULL: lua_pushvalue(L, lua_upvalueindex(1)); break;
  case NNL_JSON_FALSE: lua_pushboolean(L, 0); break;
  case NNL_JSON_TRUE: lua_pushboolean(L, 1); break;
  case NNL_JSON_NUMBER:
    if (v->is_int) lua_pushinteger(L, (lua_Integer)v->i);
    else lua_pushnumber(L, (lua_Number)v->num);
    break;
  case NNL_JSON_STRING: lua_pushlstring(L, v->str, v->len); break;
  case NNL_JSON_ARRAY:
    lua_createtable(L, v->len < 1u << 26 ? (int)v->len : 0, 0);
    for (size_t i = 0; i < v->len; i++) {
      push_value(L, &v->items[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case NNL_JSON_OBJECT:
    lua_createtable(L, 0, v->len < 1u << 26 ? (int)v->len : 0);
    for (size_t i = 0; i < v->len; i++) {
      lua_pushlstring(L, v->items[i].key, v->items[i].keylen);
      push_value(L, &v->items[i]);
      lua_rawset(L, -3);
    }
    break;
  }
}

/* Build the value of the document in box b (on the stack at index box), then free it early. */
static int finish(lua_State *L, int box, const char *what) {
  doc_box *b = lua_touserdata(L, box);
  if (!b->doc) return luaL_error(L, "%s: %s", what, nnl_last_error());
  push_value(L, nnl_json_root(b->doc));
  nnl_json_free(b->doc);
  b->doc = NULL;
  return 1;
}

static int opt_depth(lua_State *L, int arg) {
  lua_Integer d = nnlb_optinteger(L, arg, NNL_JSON_DEFAULT_DEPTH);
  nnlb_argcheck(L, d >= 1 && d <= 1024, arg, "max_depth must be 1..1024");
  return (int)d;
}

/* nn.io.read_json(path, max_depth = 64) -> value */
static int l_read_json(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  int depth = opt_depth(L, 2);
  doc_box *b = push_box(L);
  b->doc = nnl_json_load(path, depth);
  return finish(L, lua_gettop(L), "read_json");
}

/* nn.io.parse_json(text, max_depth = 64) -> value */
static int l_parse_json(lua_State *L) {
  size_t len;
  const char *text = nnlb_checklstring(L, 1, &len);
  int depth = opt_depth(L, 2);
  doc_box *b = push_box(L);
  b->doc = nnl_json_parse(text, len, depth);
  return finish(L, lua_gettop(L), "parse_json");
}

static const luaL_Reg json_funcs[] = {
    {"read_json", l_read_json}, {"parse_json", l_parse_json}, {NULL, NULL}};

void nnlb_open_json(lua_State *L, int module) {
  luaL_newmetatable(L, JSONDOC_MT);
  lua_pushcfunction(L, doc_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  if (lua_getfield(L, module, "io") != LUA_TTABLE) { /* io.c not linked in: make nn.io here */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, module, "io");
  }
  /* null: a unique light userdata that survives a round trip through tables */
  static const char null_tag = 0;
  lua_pushlightuserdata(L, (void *)&null_tag);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "null");
  luaL_setfuncs(L, json_funcs, 1);
  lua_pop(L, 1);
}
