/* io.c (bind) — files from Lua: nn.save / nn.load (safetensors), nn.io.read_idx / write_idx (MNIST's
 * IDX, .gz too), nn.io.isatty; registers nn.image (image.c in this directory). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/tensor.h"
#include "../io/io.h"
#include "args.h"
#include "bind.h"

/* nn.image and the canvas live in image.c; it has no header of its own. */

/* ---- a box: Lua owns a C allocation until we are done, so an error cannot leak it ---- */

#define BOX_MT "nnlua.io.box"

typedef struct {
  void *p;
  void (*free)(void *);
} box;

static int box_gc(lua_State *L) {
  box *b = nnlb_checkudata(L, 1, BOX_MT);
  if (b->p) b->free(b->p);
  b->p = NULL;
  return 0;
}

static box *box_new(lua_State *L, void (*fn)(void *)) {
  box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->free = fn;
  luaL_setmetatable(L, BOX_MT);
  return b;
}

static void box_done(box *b) {
  if (b->p) b->free(b->p);
  b->p = NULL;
}

static void st_free(void *p) { nnl_st_free(p); }
static void idx_free(void *p) { nnl_idx_free(p); }

/* Push a new uninitialised tensor: the userdata exists before the memory, so nothing dangles. */
static nnl_tensor *push_empty(lua_State *L, nnl_dtype dt, int ndim, const int64_t *shape) {
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, NNL_TENSOR_MT);
  *ud = nnl_tensor_empty(dt, ndim, shape);
  if (!*ud) nnlb_fail(L);
  nnlb_account(L, *ud);
  return *ud;
}

/* A contiguous version of t, anchored on the Lua stack (new userdata, or t's own value). */
static nnl_tensor *anchored_contiguous(lua_State *L, nnl_tensor *t) {
  if (nnl_tensor_is_contiguous(t)) {
    lua_pushnil(L); /* keep the stack shape the same either way */
    return t;
  }
  nnl_tensor *c = nnl_raw_contiguous(t);
  nnlb_push(L, c); /* raises if c is NULL */
  return c;
}

/* ---- nn.save(path, {name = tensor}, metadata?) ---- */

static int st_code(nnl_dtype dt) {
  return dt == NNL_F32 ? NNL_ST_F32 : dt == NNL_I64 ? NNL_ST_I64 : NNL_ST_U8;
}

static int l_save(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  nnlb_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) nnlb_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  size_t n = 0, nmeta = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) n++;
  if (!lua_isnil(L, 3))
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) nmeta++;
  /* Lua-owned arrays (4, 5) and an anchor table for contiguous copies and metadata strings (6) */
  nnl_st_entry *e = lua_newuserdatauv(L, (n ? n : 1) * sizeof *e, 0);
  nnl_st_kv *meta = lua_newuserdatauv(L, (nmeta ? nmeta : 1) * sizeof *meta, 0);
  lua_newtable(L);
  int anchor = lua_gettop(L), k = 0;
  size_t i = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "nn.save: %s: keys must be strings, got a %s key", path,
                        luaL_typename(L, -2));
    const char *name = lua_tostring(L, -2);
    nnl_tensor *t = nnlb_test(L, -1);
    if (!t || !t->storage)
      return luaL_error(L, "nn.save: %s: value of '%s' must be a tensor, got %s", path, name,
                        luaL_typename(L, -1));
    nnl_tensor *c = anchored_contiguous(L, t);
    lua_rawseti(L, anchor, ++k);
    e[i].name = name; /* the key stays alive in table 2 */
    e[i].dtype = st_code(c->dtype);
    e[i].ndim = c->ndim;
    for (int d = 0; d < c->ndim; d++) e[i].shape[d] = c->shape[d];
    e[i].data = nnl_tensor_data(c);
    e[i].nbytes = (size_t)nnl_tensor_numel(c) * nnl_dtype_size(c->dtype);
    i++;
  }
  i = 0;
  if (nmeta)
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_error(L, "nn.save: %s: metadata keys must be strings, got a %s key", path,
                          luaL_typename(L, -2));
      int ty = lua_type(L, -1);
      if (ty != LUA_TSTRING && ty != LUA_TNUMBER && ty != LUA_TBOOLEAN)
        return luaL_error(L, "nn.save: %s: metadata value of '%s' must be a string, number or "
                          "boolean, got %s", path, lua_tostring(L, -2), luaL_typename(L, -1));
      meta[i].key = lua_tostring(L, -2);
      meta[i].value = luaL_tolstring(L, -1, NULL); /* a new string: anchor it */
      lua_rawseti(L, anchor, ++k);
      i++;
    }
  if (nnl_st_save(path, e, n, meta, nmeta) != 0)
    return luaL_error(L, "nn.save: %s", nnl_last_error());
  return 0;
}

/* ---- nn.load(path) -> {name = tensor}, {metadata} ---- */

/* The dtype a safetensors entry becomes: floats -> float32, BOOL and U8 -> uint8, other ints -> int64. */
static nnl_dtype load_dtype(int st) {
  switch (st) {
  case NNL_ST_BOOL: case NNL_ST_U8: return NNL_U8;
  case NNL_ST_I8: case NNL_ST_I16: case NNL_ST_U16: case NNL_ST_I32: case NNL_ST_U32:
  case NNL_ST_I64: case NNL_ST_U64: return NNL_I64;
  default: return NNL_F32;
  }
}

static int l_load(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  box *b = box_new(L, st_free);
  nnl_safetensors *st = nnl_st_load(path);
  if (!st) return luaL_error(L, "nn.load: %s", nnl_last_error());
  b->p = st;
  lua_createtable(L, 0, (int)st->n);
  int out = lua_gettop(L);
  /* the file it came from, for errors about its contents (load_state_dict names it) */
  lua_createtable(L, 0, 2);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "source");
  lua_pushliteral(L, "StateDict");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, out);
  for (size_t i = 0; i < st->n; i++) {
    const nnl_st_entry *en = &st->entries[i];
    nnl_dtype dt = load_dtype(en->dtype);
    nnl_tensor *t = push_empty(L, dt, en->ndim, en->shape);
    size_t numel = (size_t)nnl_tensor_numel(t);
    int rc = 0;
    if (numel == 0) {
      /* nothing to convert */
    } else if ((dt == NNL_U8) || (dt == NNL_I64 && en->dtype == NNL_ST_I64) ||
               (dt == NNL_F32 && en->dtype == NNL_ST_F32)) {
      memcpy(nnl_tensor_data(t), en->data, en->nbytes); /* data may be unaligned: copy bytes */
    }
    else if (dt == NNL_I64)
      rc = nnl_st_to_i64(nnl_tensor_data(t), en->data, en->dtype, numel);
    else
      rc = nnl_st_to_f32(nnl_tensor_data(t), en->data, en->dtype, numel);
    if (rc != 0) return luaL_error(L, "nn.load: %s: tensor '%s': %s", path, en->name, nnl_last_error());
    lua_setfield(L, out, en->name);
  }
  lua_createtable(L, 0, (int)st->nmeta);
  for (size_t i = 0; i < st->nmeta; i++) {
    lua_pushstring(L, st->meta[i].value);
    lua_setfield(L, -2, st->meta[i].key);
  }
  box_done(b);
  return 2;
}

/* ---- nn.io.read_idx(path, as?, scale?) -> tensor ---- */

static int l_read_idx(lua_State *L) {
  static const char *const names[] = {"uint8", "float32", "int64", "byte", "float", "long", NULL};
  const char *path = nnlb_checkstring(L, 1);
  int as = lua_isnoneornil(L, 2) ? -1 : nnlb_checkoption(L, 2, NULL, names) % 3;
  double scale = nnlb_optnumber(L, 3, 1.0);
  box *b = box_new(L, idx_free);
  nnl_idx *ix = NULL;
  if (as == NNL_IDX_AS_F32 || as < 0) {
    /* bytes are read as bytes and converted once, straight into the result; other kinds, when no
     * type is asked, by what the file holds: floats -> float32, other integers -> int64 */
    ix = nnl_idx_load(path, NNL_IDX_AS_U8);
    if (ix && ix->type != NNL_IDX_U8) {
      nnl_idx_free(ix);
      ix = NULL;
    }
    if (!ix) {
      ix = nnl_idx_load(path, NNL_IDX_AS_F32);
      if (ix && as < 0 && ix->type != NNL_IDX_F32 && ix->type != NNL_IDX_F64) {
        nnl_idx_free(ix);
        ix = nnl_idx_load(path, NNL_IDX_AS_I64);
      }
    }
  } else {
    ix = nnl_idx_load(path, as);
  }
  if (!ix) return luaL_error(L, "nn.io.read_idx: %s", nnl_last_error());
  b->p = ix;
  if (as < 0) as = ix->as;
  nnl_tensor *t = push_empty(L, as == NNL_IDX_AS_U8 ? NNL_U8 : as == NNL_IDX_AS_F32 ? NNL_F32 : NNL_I64,
                             ix->ndim, ix->dims);
  if (as == NNL_IDX_AS_F32) {
    float *dst = nnl_tensor_data(t); /* dst: (numel,) */
    if (ix->as == NNL_IDX_AS_U8) {
      /* in double, then rounded: v * (1 / 255.0) gives exactly the float32 v / 255 */
      const uint8_t *src = ix->data;
      float lut[256];
      for (int v = 0; v < 256; v++) lut[v] = (float)(v * scale);
      for (size_t i = 0; i < ix->numel; i++) dst[i] = lut[src[i]];
    } else {
      const float *src = ix->data;
      for (size_t i = 0; i < ix->numel; i++) dst[i] = scale == 1.0 ? src[i] : (float)(src[i] * scale);
    }
  } else if (ix->numel) {
    memcpy(nnl_tensor_data(t), ix->data, ix->numel * (as == NNL_IDX_AS_U8 ? 1 : 8));
  }
  box_done(b);
  return 1;
}

/* ---- nn.io.write_idx(path, tensor, {gz = bool}) ---- */

static int l_write_idx(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  nnl_tensor *t = nnlb_check(L, 2);
  int gz = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "gz");
    gz = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 3)) {
    return nnlb_argerror(L, 3, "options table expected");
  }
  lua_settop(L, 3);
  nnl_tensor *c = anchored_contiguous(L, t);
  int type = c->dtype == NNL_U8 ? NNL_IDX_U8 : c->dtype == NNL_F32 ? NNL_IDX_F32 : NNL_IDX_I32;
  const void *data = nnl_tensor_data(c);
  if (c->dtype == NNL_I64) {
    /* IDX has no 64-bit integers: int32 it is, when the values fit */
    size_t n = (size_t)nnl_tensor_numel(c);
    int32_t *d32 = lua_newuserdatauv(L, n ? n * 4 : 1, 0);
    const int64_t *src = data;
    for (size_t i = 0; i < n; i++) {
      if (src[i] < INT32_MIN || src[i] > INT32_MAX)
        return luaL_error(L, "nn.io.write_idx: %s: value %I at element %I does not fit in int32",
                          path, (lua_Integer)src[i], (lua_Integer)(i + 1));
      d32[i] = (int32_t)src[i];
    }
    data = d32;
  }
  if (nnl_idx_save(path, type, c->ndim, c->shape, data, gz) != 0)
    return luaL_error(L, "nn.io.write_idx: %s", nnl_last_error());
  return 0;
}

/* ---- nn.io.isatty(fd = 1) ---- */

static int l_isatty(lua_State *L) {
  lua_Integer fd = nnlb_optinteger(L, 1, 1);
  lua_pushboolean(L, fd >= 0 && fd <= 1 << 20 && isatty((int)fd));
  return 1;
}

static const luaL_Reg io_funcs[] = {
    {"read_idx", l_read_idx}, {"write_idx", l_write_idx}, {"isatty", l_isatty}, {NULL, NULL}};

void nnlb_open_io(lua_State *L, int methods, int module) {
  (void)methods;
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_save);
  lua_setfield(L, module, "save");
  lua_pushcfunction(L, l_load);
  lua_setfield(L, module, "load");
  luaL_getsubtable(L, module, "io"); /* json.c adds read_json / parse_json here */
  luaL_setfuncs(L, io_funcs, 0);
  lua_pop(L, 1);
  nnlb_open_image(L, module);
}
