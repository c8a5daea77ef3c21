/* tensor.c (bind) — the tensor userdata: creation from Lua values, indexing, views, copies,
 * conversion back to Lua, printing. Arguments are checked here; the core reports the rest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/tensorops.h"
#include "../autograd/autograd.h"
#include "args.h"
#include "bind.h"

/* ---- userdata plumbing ---- */

static const char *fname(lua_State *L);

/* Allocation failures come from deep in the core, which cannot know who asked: name the
 * function here. Every other core message starts with its function's name already. */
int nnlb_fail(lua_State *L) {
  const char *e = nnl_last_error();
  if (!strncmp(e, "out of memory", 13) || !strncmp(e, "size [", 6)) {
    const char *fn = fname(L);
    if (strcmp(fn, "?")) return luaL_error(L, "%s: %s", fn, e);
  }
  return luaL_error(L, "%s", e);
}

/* Lua sees only an 8-byte userdata per tensor, so on its own it would let dead tensors pile
 * up far beyond the live ones. Two measures: small tensors step the incremental collector
 * (pooled until they add up to 64 KB), and once new tensor memory exceeds what was live after
 * the last full collection (at least 64 MB), a full collection runs. The Lua heap of a
 * training script is small, so that is cheap, and it keeps freed blocks flowing back to the
 * storage cache instead of fresh pages being faulted in. */
void nnlb_account(lua_State *L, const nnl_tensor *t) {
  static size_t pending, since_full, full_threshold = (size_t)64 << 20;
  if (t->storage->refcount != 1) return; /* a view: its memory was reported already */
  size_t bytes = t->storage->nbytes + sizeof *t;
  since_full += bytes;
  if (since_full > full_threshold) {
    since_full = pending = 0;
    lua_gc(L, LUA_GCCOLLECT);
    size_t live = nnl_tensor_nbytes_total();
    full_threshold = live > ((size_t)64 << 20) ? live : (size_t)64 << 20;
    return;
  }
  pending += bytes;
  if (pending < (64 << 10)) return;
  size_t kb = pending >> 10;
  pending = 0;
  lua_gc(L, LUA_GCSTEP, (int)(kb > (1 << 30) ? 1 << 30 : kb));
}

int nnlb_push(lua_State *L, nnl_tensor *t) {
  if (!t) return nnlb_fail(L);
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = t;
  luaL_setmetatable(L, NNL_TENSOR_MT);
  nnlb_account(L, t);
  if (nnl_anomaly_mode) nnlb_anomaly_forward(L, t); /* nn.detect_anomaly(true) */
  return 1;
}

void nnl_lua_push_tensor(lua_State *L, nnl_tensor *t) {
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = t;
  luaL_setmetatable(L, NNL_TENSOR_MT);
}

nnl_tensor *nnlb_test(lua_State *L, int arg) {
  nnl_tensor **ud = luaL_testudata(L, arg, NNL_TENSOR_MT);
  return ud ? *ud : NULL;
}

nnl_tensor *nnlb_check(lua_State *L, int arg) {
  nnl_tensor **ud = luaL_testudata(L, arg, NNL_TENSOR_MT);
  if (!ud) {
    const char *got = luaL_typename(L, arg);
    nnlb_argerror(L, arg, lua_pushfstring(L, "tensor expected, got %s", got));
  }
  if (!*ud) nnlb_argerror(L, arg, "tensor was closed");
  return *ud;
}

nnl_tensor *nnl_lua_check_tensor(lua_State *L, int arg) { return nnlb_check(L, arg); }
nnl_tensor *nnl_lua_to_tensor(lua_State *L, int arg) { return nnlb_test(L, arg); }

nnl_tensor *nnlb_tensor_or_number(lua_State *L, int arg, nnl_dtype dt) {
  if (lua_isnumber(L, arg) && !nnlb_test(L, arg)) {
    nnl_tensor *t = nnl_tensor_scalar(dt, lua_tonumber(L, arg));
    if (!t) nnlb_fail(L);
    return t;
  }
  return nnl_tensor_retain(nnlb_check(L, arg));
}

/* The name the running C function was called by ("sum" for x:sum() and nn.sum()), so
 * shared checks can say whose argument was bad. */
static const char *fname(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) return "?";
  if (lua_getinfo(L, "n", &ar) && ar.name) return ar.name;
  /* called from C (pcall(nn.sum, ...)): look the function up in the module and methods */
  const char *name = "?";
  lua_getinfo(L, "f", &ar);
  int fn = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "nnlua.core");
  luaL_getmetafield(L, 1, "__methods"); /* pushes nothing if arg 1 is no tensor */
  for (int t = lua_gettop(L); t > fn + 1 && !strcmp(name, "?"); t--) {
    if (!lua_istable(L, t)) continue;
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_rawequal(L, -1, fn) && lua_type(L, -2) == LUA_TSTRING) {
        name = lua_tostring(L, -2); /* the key stays alive in its table */
        lua_pop(L, 2);
        break;
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, fn - 1);
  return name;
}

int nnlb_dim(lua_State *L, int arg, int ndim, int extra) {
  lua_Integer d = nnlb_checkinteger(L, arg);
  int n = ndim + extra;
  if (d < 0) d += n + 1;
  if (d < 1 || d > n) {
    lua_Integer given = lua_tointeger(L, arg);
    if (n == 0)
      return luaL_error(L, "%s: dimension %I out of range: the tensor is 0-d", fname(L), given);
    return luaL_error(L, "%s: dimension %I out of range (expected 1 to %d, or -%d to -1)",
                      fname(L), given, n, n);
  }
  return (int)d - 1;
}

int nnlb_optdim(lua_State *L, int arg, int ndim, int def) {
  return lua_isnoneornil(L, arg) ? def : nnlb_dim(L, arg, ndim, 0);
}

static int64_t checksize(lua_State *L, int arg, int isnum) {
  if (!isnum) nnlb_argerror(L, arg, "size expected (an integer)");
  lua_Number v = lua_tonumber(L, -1);
  if (v != floor(v) || v < 0 || v > 9e15) {
    lua_pop(L, 1);
    nnlb_argerror(L, arg, lua_pushfstring(L, "sizes must be non-negative integers, got %f", v));
  }
  return (int64_t)v;
}

int nnlb_sizes(lua_State *L, int arg, int64_t *shape, int *next) {
  int nd = 0;
  if (lua_istable(L, arg) && !nnlb_test(L, arg)) {
    int n = (int)luaL_len(L, arg);
    if (n > NNL_MAXDIM) nnlb_argerror(L, arg, "too many dimensions (at most 8)");
    for (int i = 1; i <= n; i++) {
      int t = lua_geti(L, arg, i);
      shape[nd++] = checksize(L, arg, t == LUA_TNUMBER);
      lua_pop(L, 1);
    }
    if (next) *next = arg + 1;
    return nd;
  }
  int top = lua_gettop(L);
  while (arg <= top && lua_type(L, arg) == LUA_TNUMBER) {
    if (nd == NNL_MAXDIM) nnlb_argerror(L, arg, "too many dimensions (at most 8)");
    lua_pushvalue(L, arg);
    shape[nd++] = checksize(L, arg, 1);
    lua_pop(L, 1);
    arg++;
  }
  if (next) *next = arg;
  return nd;
}

nnl_dtype nnlb_dtype(lua_State *L, int arg, nnl_dtype def) {
  static const char *const names[] = {"float32", "int64", "uint8", "float", "long", "byte",
                                      "torch.float32", "torch.int64", "torch.uint8", NULL};
  if (lua_isnoneornil(L, arg)) return def;
  int k = nnlb_checkoption(L, arg, NULL, names);
  return (nnl_dtype)(k % 3);
}

nnl_tensor *nnlb_index0(lua_State *L, int arg, const char *fn) {
  nnl_tensor *ix = nnlb_check(L, arg);
  if (ix->dtype != NNL_I64)
    luaL_error(L, "%s: index must be an int64 tensor, got %s", fn, nnl_dtype_name(ix->dtype));
  nnl_tensor *z = nnl_binary_scalar(NNL_OP_SUB, ix, 1, 0);
  if (!z) nnlb_fail(L);
  return z;
}

void nnlb_setfuncs(lua_State *L, const luaL_Reg *l) { luaL_setfuncs(L, l, 0); }

/* ---- creation ---- */

/* Walk a nested table to find its shape (first elements), then fill row-major. */
static int table_shape(lua_State *L, int idx, int64_t *shape, int nd) {
  if (nd > NNL_MAXDIM) luaL_error(L, "tensor: nested tables deeper than %d", NNL_MAXDIM);
  if (lua_type(L, idx) != LUA_TTABLE) return nd;
  shape[nd] = (int64_t)luaL_len(L, idx);
  if (shape[nd] == 0) return nd + 1;
  lua_geti(L, idx, 1);
  int r = table_shape(L, lua_gettop(L), shape, nd + 1);
  lua_pop(L, 1);
  return r;
}

/* Element i of a fresh contiguous t = v; NaN and out-of-range values never reach an
 * integer cast (undefined in C): they store 0, as the core's conversions do. */
static void store_flat(nnl_tensor *t, int64_t i, double v) {
  int64_t iv = v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : 0;
  switch (t->dtype) {
  case NNL_F32: ((float *)t->storage->data)[i] = (float)v; break;
  case NNL_I64: ((int64_t *)t->storage->data)[i] = iv; break;
  case NNL_U8: ((uint8_t *)t->storage->data)[i] = (uint8_t)iv; break;
  }
}

/* Every element of t (any strides) = v, exactly: an int64 past 2^53 does not survive a double,
 * which is all nnl_fill_ takes. */
static void fill_i64(nnl_tensor *t, int64_t v) {
  int64_t n = nnl_tensor_numel(t), idx[NNL_MAXDIM] = {0};
  int64_t *base = t->storage->data; /* base: (storage elements,) */
  for (int64_t i = 0; i < n; i++) {
    int64_t o = t->offset;
    for (int d = 0; d < t->ndim; d++) o += idx[d] * t->stride[d];
    base[o] = v;
    for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
  }
}

/* t = the number at arg: a Lua integer goes into an int64 tensor exactly; anything else through
 * a double (a float into int64 truncates toward zero, as PyTorch). Returns nnl_fill_'s status. */
static int fill_from(lua_State *L, nnl_tensor *t, int arg) {
  if (t->dtype == NNL_I64 && lua_isinteger(L, arg)) {
    fill_i64(t, (int64_t)lua_tointeger(L, arg));
    return 0;
  }
  return nnl_fill_(t, lua_tonumber(L, arg));
}

static void table_fill(lua_State *L, int idx, const int64_t *shape, int nd, int d, nnl_tensor *t,
                       int64_t *pos, int64_t *path) {
  if (d == nd) {
    int isnum;
    lua_Number v = lua_tonumberx(L, idx, &isnum);
    if (!isnum && lua_isboolean(L, idx)) v = lua_toboolean(L, idx), isnum = 1;
    if (!isnum) {
      nnl_tensor_release(t);
      luaL_error(L, "tensor: element %d has type %s, expected a number", (int)*pos + 1,
                 luaL_typename(L, idx));
    }
    int64_t one = *pos;
    if (t->dtype == NNL_I64 && lua_isinteger(L, idx)) /* exact beyond 2^53 */
      ((int64_t *)t->storage->data)[one] = lua_tointeger(L, idx);
    else
      store_flat(t, one, v);
    (*pos)++;
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || (int64_t)luaL_len(L, idx) != shape[d]) {
    char b[160];
    nnl_tensor_release(t);
    luaL_error(L, "tensor: ragged nested table: expected %d elements at depth %d (shape %s), got %s",
               (int)shape[d], d + 1, nnl_shape_fmt(nd, shape, b, sizeof b),
               lua_type(L, idx) == LUA_TTABLE ? "a different length" : luaL_typename(L, idx));
  }
  for (int64_t i = 1; i <= shape[d]; i++) {
    lua_geti(L, idx, i);
    path[d] = i;
    table_fill(L, lua_gettop(L), shape, nd, d + 1, t, pos, path);
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  nnl_tensor *src = nnlb_test(L, 1);
  if (src) {
    nnl_dtype dt = nnlb_dtype(L, 2, src->dtype);
    return nnlb_push(L, nnl_raw_to_dtype(src, dt));
  }
  int64_t shape[NNL_MAXDIM + 1];
  nnl_dtype dt = nnlb_dtype(L, 2, NNL_F32);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    nnl_tensor *t = nnl_tensor_empty(dt, 0, shape);
    if (t) fill_from(L, t, 1);
    return nnlb_push(L, t);
  }
  nnlb_argexpected(L, lua_istable(L, 1), 1, "table or number");
  int nd = table_shape(L, 1, shape, 0);
  nnl_tensor *t = nnl_tensor_empty(dt, nd, shape);
  if (!t) return nnlb_fail(L);
  int64_t pos = 0, path[NNL_MAXDIM + 1];
  table_fill(L, 1, shape, nd, 0, t, &pos, path);
  return nnlb_push(L, t);
}

static int l_zeros(lua_State *L) {
  int64_t shape[NNL_MAXDIM];
  int next, nd = nnlb_sizes(L, 1, shape, &next);
  return nnlb_push(L, nnl_tensor_zeros(nnlb_dtype(L, next, NNL_F32), nd, shape));
}

static int l_ones(lua_State *L) {
  int64_t shape[NNL_MAXDIM];
  int next, nd = nnlb_sizes(L, 1, shape, &next);
  return nnlb_push(L, nnl_tensor_full(nnlb_dtype(L, next, NNL_F32), nd, shape, 1.0));
}

static int l_empty(lua_State *L) {
  int64_t shape[NNL_MAXDIM];
  int next, nd = nnlb_sizes(L, 1, shape, &next);
  return nnlb_push(L, nnl_tensor_zeros(nnlb_dtype(L, next, NNL_F32), nd, shape));
}

static int l_full(lua_State *L) {
  int64_t shape[NNL_MAXDIM];
  nnlb_checktype(L, 1, LUA_TTABLE);
  int nd = nnlb_sizes(L, 1, shape, NULL);
  nnlb_checknumber(L, 2);
  nnl_tensor *t = nnl_tensor_empty(nnlb_dtype(L, 3, NNL_F32), nd, shape);
  if (t) fill_from(L, t, 2);
  return nnlb_push(L, t);
}

static int like(lua_State *L, double v) {
  nnl_tensor *t = nnlb_check(L, 1);
  nnl_dtype dt = nnlb_dtype(L, 2, t->dtype);
  return nnlb_push(L, nnl_tensor_full(dt, t->ndim, t->shape, v));
}
static int l_zeros_like(lua_State *L) { return like(L, 0); }
static int l_ones_like(lua_State *L) { return like(L, 1); }
static int l_full_like(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  nnlb_checknumber(L, 2);
  nnl_tensor *o = nnl_tensor_empty(nnlb_dtype(L, 3, t->dtype), t->ndim, t->shape);
  if (o) fill_from(L, o, 2);
  return nnlb_push(L, o);
}

static int l_arange(lua_State *L) {
  int n = lua_gettop(L);
  while (n > 0 && lua_type(L, n) == LUA_TSTRING) n--;
  lua_Number start = 0, end, step = 1;
  int allint = 1;
  for (int i = 1; i <= n; i++) allint &= lua_isinteger(L, i);
  if (n == 1) {
    end = nnlb_checknumber(L, 1);
  } else {
    start = nnlb_checknumber(L, 1);
    end = nnlb_checknumber(L, 2);
    if (n >= 3) step = nnlb_checknumber(L, 3);
  }
  nnl_dtype dt = nnlb_dtype(L, n + 1, allint ? NNL_I64 : NNL_F32);
  return nnlb_push(L, nnl_arange(start, end, step, dt));
}

/* Push t converted to dtype dt (creators that compute in one dtype take a dtype argument). */
static int push_as(lua_State *L, nnl_tensor *t, nnl_dtype dt) {
  if (!t || t->dtype == dt) return nnlb_push(L, t);
  nnl_tensor *c = nnl_raw_to_dtype(t, dt);
  nnl_tensor_release(t);
  return nnlb_push(L, c);
}

static int l_linspace(lua_State *L) {
  lua_Number a = nnlb_checknumber(L, 1), b = nnlb_checknumber(L, 2);
  lua_Integer n = nnlb_checkinteger(L, 3);
  nnl_dtype dt = nnlb_dtype(L, 4, NNL_F32);
  return push_as(L, nnl_linspace(a, b, n), dt);
}

/* eye(n), eye(n, m), eye(n, "int64"), eye(n, m, "int64") */
static int l_eye(lua_State *L) {
  lua_Integer n = nnlb_checkinteger(L, 1);
  int has_m = lua_type(L, 2) == LUA_TNUMBER;
  lua_Integer m = has_m ? nnlb_checkinteger(L, 2) : n;
  nnl_dtype dt = nnlb_dtype(L, has_m ? 3 : 2, NNL_F32);
  nnlb_argcheck(L, n >= 0 && m >= 0, 1, "sizes must be non-negative");
  return push_as(L, nnl_eye(n, m), dt);
}

/* rand/randn draw float32 only, as PyTorch: an integer dtype is a mistake worth reporting. */
static int rand_any(lua_State *L, int normal) {
  int64_t shape[NNL_MAXDIM];
  int next, nd = nnlb_sizes(L, 1, shape, &next);
  nnl_dtype dt = nnlb_dtype(L, next, NNL_F32);
  if (dt != NNL_F32)
    return luaL_error(L, "%s: dtype must be float32, got %s", normal ? "randn" : "rand",
                      nnl_dtype_name(dt));
  return nnlb_push(L, normal ? nnl_randn(nd, shape) : nnl_rand(nd, shape));
}
static int l_rand(lua_State *L) { return rand_any(L, 0); }
static int l_randn(lua_State *L) { return rand_any(L, 1); }

/* randint(lo, hi, sizes [, dtype]) draws from [lo, hi) as PyTorch; randint(hi, sizes) from
 * [0, hi). int64 unless a dtype is given. */
static int l_randint(lua_State *L) {
  int two = lua_type(L, 2) == LUA_TNUMBER;
  lua_Integer lo = two ? nnlb_checkinteger(L, 1) : 0;
  lua_Integer hi = nnlb_checkinteger(L, two ? 2 : 1);
  int64_t shape[NNL_MAXDIM];
  int next, nd = nnlb_sizes(L, two ? 3 : 2, shape, &next);
  nnl_dtype dt = nnlb_dtype(L, next, NNL_I64);
  return push_as(L, nnl_randint(lo, hi, nd, shape), dt);
}

/* randperm(n [, dtype]): a permutation of 1..n (1-based, as every index in nnlua). */
static int l_randperm(lua_State *L) {
  lua_Integer n = nnlb_checkinteger(L, 1);
  nnl_dtype dt = nnlb_dtype(L, 2, NNL_I64);
  nnl_tensor *p = nnl_randperm(n);
  if (!p) return nnlb_fail(L);
  int64_t *d = p->storage->data;
  for (lua_Integer i = 0; i < n; i++) d[i]++;
  return push_as(L, p, dt);
}

static int l_manual_seed(lua_State *L) {
  lua_Integer s = nnlb_checkinteger(L, 1);
  nnl_manual_seed((uint64_t)s);
  return 0;
}

static int l_get_rng_state(lua_State *L) {
  uint64_t seed, off;
  nnl_rng_get_state(&seed, &off);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)off);
  lua_setfield(L, -2, "offset");
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  nnlb_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "seed");
  lua_getfield(L, 1, "offset");
  if (!lua_isinteger(L, -1) || !lua_isinteger(L, -2))
    return nnlb_argerror(L, 1, "expected {seed = integer, offset = integer}");
  nnl_rng_set_state((uint64_t)lua_tointeger(L, -2), (uint64_t)lua_tointeger(L, -1));
  return 0;
}

/* ---- inspection ---- */

static int m_size(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, t->shape[nnlb_dim(L, 2, t->ndim, 0)]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_stride(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, t->stride[nnlb_dim(L, 2, t->ndim, 0)]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->stride[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, nnlb_check(L, 1)->ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, nnl_tensor_numel(nnlb_check(L, 1)));
  return 1;
}

static int m_dtype(lua_State *L) {
  lua_pushstring(L, nnl_dtype_name(nnlb_check(L, 1)->dtype));
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, nnl_tensor_is_contiguous(nnlb_check(L, 1)));
  return 1;
}

/* ---- element access ---- */

static void push_elem(lua_State *L, const nnl_tensor *t, const int64_t *idx) {
  if (t->dtype == NNL_I64) { /* exact: a double holds only 53 bits */
    int64_t o = t->offset;
    for (int d = 0; d < t->ndim; d++) o += idx[d] * t->stride[d];
    lua_pushinteger(L, ((const int64_t *)t->storage->data)[o]);
    return;
  }
  double v = nnl_tensor_get(t, idx);
  if (t->dtype == NNL_F32) lua_pushnumber(L, v);
  else lua_pushinteger(L, (lua_Integer)v);
}

/* Read 1-based indices from args [first, first+ndim) into idx, checking ranges. */
static void check_indices(lua_State *L, const nnl_tensor *t, int first, int64_t *idx, const char *fn) {
  int given = lua_gettop(L) - first + 1;
  if (given != t->ndim)
    luaL_error(L, "%s: expected %d indices for a %d-d tensor, got %d", fn, t->ndim, t->ndim, given);
  for (int d = 0; d < t->ndim; d++) {
    lua_Integer i = nnlb_checkinteger(L, first + d);
    if (i < 0) i += t->shape[d] + 1;
    if (i < 1 || i > t->shape[d])
      luaL_error(L, "%s: index %I is out of range for dimension %d of size %I", fn,
                 lua_tointeger(L, first + d), d + 1, (lua_Integer)t->shape[d]);
    idx[d] = i - 1;
  }
}

static int m_get(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int64_t idx[NNL_MAXDIM];
  check_indices(L, t, 2, idx, "get");
  push_elem(L, t, idx);
  return 1;
}

static void check_writable(lua_State *L, nnl_tensor *t, const char *fn) {
  if (t->requires_grad && nnl_grad_enabled())
    luaL_error(L, "%s: cannot modify a tensor that requires grad in place; use nn.no_grad or "
                  "detach() first", fn);
}

static int m_set(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  lua_Number v = nnlb_checknumber(L, 2);
  int64_t idx[NNL_MAXDIM];
  check_indices(L, t, 3, idx, "set");
  check_writable(L, t, "set");
  if (t->dtype == NNL_I64 && lua_isinteger(L, 2)) { /* exact beyond 2^53 */
    int64_t o = t->offset;
    for (int d = 0; d < t->ndim; d++) o += idx[d] * t->stride[d];
    ((int64_t *)t->storage->data)[o] = (int64_t)lua_tointeger(L, 2);
  } else {
    nnl_tensor_set(t, idx, v);
  }
  lua_settop(L, 1);
  return 1;
}

static int m_item(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (nnl_tensor_numel(t) != 1) {
    char b[160];
    return luaL_error(L, "item: only a tensor with one element can be converted to a number, got size %s",
                      nnl_shape_str(t, b, sizeof b));
  }
  int64_t idx[NNL_MAXDIM] = {0};
  push_elem(L, t, idx);
  return 1;
}

static int t_index(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer i = nnlb_checkinteger(L, 2);
    if (t->ndim == 0) return luaL_error(L, "index: cannot index a 0-d tensor; use item()");
    if (i < 0) i += t->shape[0] + 1;
    if (i < 1 || i > t->shape[0])
      return luaL_error(L, "index: index %I is out of range for dimension 1 of size %I",
                        lua_tointeger(L, 2), (lua_Integer)t->shape[0]);
    if (t->ndim == 1) {
      int64_t idx[1] = {i - 1};
      push_elem(L, t, idx);
      return 1;
    }
    return nnlb_push(L, nnl_select(t, 0, i - 1));
  }
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "grad")) {
    if (!t->grad) return lua_pushnil(L), 1;
    return nnlb_push(L, nnl_tensor_retain(t->grad));
  }
  if (k && !strcmp(k, "grad_fn")) {
    const char *n = nnl_grad_fn_name(t);
    if (n) lua_pushstring(L, n);
    else lua_pushnil(L);
    return 1;
  }
  if (k && !strcmp(k, "is_leaf")) {
    lua_pushboolean(L, t->grad_fn == NULL);
    return 1;
  }
  if (k && !strcmp(k, "shape")) {
    lua_settop(L, 1);
    return m_size(L);
  }
  lua_pushvalue(L, lua_upvalueindex(1)); /* methods */
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int t_newindex(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer i = nnlb_checkinteger(L, 2);
    if (t->ndim == 0) return luaL_error(L, "index: cannot index a 0-d tensor");
    if (i < 0) i += t->shape[0] + 1;
    if (i < 1 || i > t->shape[0])
      return luaL_error(L, "index assignment: index %I is out of range for dimension 1 of size %I",
                        lua_tointeger(L, 2), (lua_Integer)t->shape[0]);
    check_writable(L, t, "index assignment");
    nnl_tensor *row = nnl_raw_select(t, 0, i - 1);
    if (!row) return nnlb_fail(L);
    int rc;
    nnl_tensor *src = nnlb_test(L, 3);
    if (src) {
      rc = nnl_copy_(row, src);
    } else if (lua_isnumber(L, 3)) {
      rc = fill_from(L, row, 3);
    } else {
      nnl_tensor_release(row);
      return luaL_error(L, "index assignment: expected a number or a tensor, got %s", luaL_typename(L, 3));
    }
    nnl_tensor_release(row);
    return rc ? nnlb_fail(L) : 0;
  }
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "grad")) {
    if (!lua_isnil(L, 3) && !nnlb_test(L, 3))
      return luaL_error(L, "grad: expected a tensor or nil, got %s", luaL_typename(L, 3));
    nnl_tensor *g = nnlb_test(L, 3);
    if (g && (!nnl_same_shape(g, t) || g->dtype != NNL_F32)) {
      char a[160], b[160];
      return luaL_error(L, "grad: assigned gradient has size %s (%s) but the tensor has size %s",
                        nnl_shape_str(g, a, sizeof a), nnl_dtype_name(g->dtype), nnl_shape_str(t, b, sizeof b));
    }
    nnl_tensor_release(t->grad);
    t->grad = g ? nnl_raw_clone(g) : NULL;
    return 0;
  }
  return luaL_error(L, "cannot set field '%s' of a tensor", k ? k : luaL_typename(L, 2));
}

static int t_gc(lua_State *L) {
  nnl_tensor **ud = nnlb_checkudata(L, 1, NNL_TENSOR_MT);
  nnl_tensor_release(*ud);
  *ud = NULL;
  return 0;
}

static int t_len(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

static int t_tostring(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  char suffix[96] = "";
  if (t->grad_fn) snprintf(suffix, sizeof suffix, "grad_fn=<%s>", t->grad_fn->name);
  else if (t->requires_grad) snprintf(suffix, sizeof suffix, "requires_grad=True");
  char *s = nnl_tensor_format(t, 1000, 3, suffix[0] ? suffix : NULL);
  if (!s) return luaL_error(L, "tostring: out of memory");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, s);
  free(s);
  if (t->ndim > 0) {
    char sz[200];
    size_t k = snprintf(sz, sizeof sz, "\n[%s tensor of size ", nnl_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim; i++) k += snprintf(sz + k, sizeof sz - k, i ? "x%lld" : "%lld", (long long)t->shape[i]);
    snprintf(sz + k, sizeof sz - k, "]");
    luaL_addstring(&b, sz);
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- conversion to Lua ---- */

static void totable_rec(lua_State *L, const nnl_tensor *t, int d, int64_t *idx) {
  if (d == t->ndim) {
    push_elem(L, t, idx);
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    idx[d] = i;
    totable_rec(L, t, d + 1, idx);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int64_t idx[NNL_MAXDIM] = {0};
  luaL_checkstack(L, t->ndim + 4, "totable: too deep");
  totable_rec(L, t, 0, idx);
  return 1;
}

/* ---- views ---- */

static int m_view(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int64_t shape[NNL_MAXDIM];
  int nd = nnlb_sizes(L, 2, shape, NULL);
  for (int i = 0; i < nd; i++) (void)0;
  return nnlb_push(L, nnl_view(t, nd, shape));
}

static int sizes_with_minus1(lua_State *L, int arg, int64_t *shape) {
  int nd = 0, top = lua_gettop(L);
  if (lua_istable(L, arg)) {
    int n = (int)luaL_len(L, arg);
    nnlb_argcheck(L, n <= NNL_MAXDIM, arg, "too many dimensions");
    for (int i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      if (!lua_isinteger(L, -1)) nnlb_argerror(L, arg, "sizes must be integers");
      shape[nd++] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    return nd;
  }
  for (; arg <= top; arg++) {
    nnlb_argcheck(L, nd < NNL_MAXDIM, arg, "too many dimensions");
    shape[nd++] = nnlb_checkinteger(L, arg);
  }
  return nd;
}

static int m_view_any(lua_State *L, int reshape) {
  nnl_tensor *t = nnlb_check(L, 1);
  int64_t shape[NNL_MAXDIM];
  int nd = sizes_with_minus1(L, 2, shape);
  return nnlb_push(L, reshape ? nnl_reshape(t, nd, shape) : nnl_view(t, nd, shape));
}
static int m_view2(lua_State *L) { return m_view_any(L, 0); }
static int m_reshape(lua_State *L) { return m_view_any(L, 1); }

static int m_transpose(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (lua_isnoneornil(L, 2) && t->ndim == 2) return nnlb_push(L, nnl_transpose(t, 0, 1));
  int a = nnlb_dim(L, 2, t->ndim, 0), b = nnlb_dim(L, 3, t->ndim, 0);
  return nnlb_push(L, nnl_transpose(t, a, b));
}

static int m_t(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (t->ndim < 2) return nnlb_push(L, nnl_tensor_retain(t));
  if (t->ndim > 2) return luaL_error(L, "t: expected a tensor with at most 2 dimensions, got %d", t->ndim);
  return nnlb_push(L, nnl_transpose(t, 0, 1));
}

static int m_permute(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int perm[NNL_MAXDIM], n;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n != t->ndim) return luaL_error(L, "permute: expected %d dims, got %d", t->ndim, n);
    for (int i = 0; i < n; i++) {
      lua_geti(L, 2, i + 1);
      perm[i] = nnlb_dim(L, -1, t->ndim, 0);
      lua_pop(L, 1);
    }
  } else {
    n = lua_gettop(L) - 1;
    if (n != t->ndim) return luaL_error(L, "permute: expected %d dims, got %d", t->ndim, n);
    for (int i = 0; i < n; i++) perm[i] = nnlb_dim(L, i + 2, t->ndim, 0);
  }
  return nnlb_push(L, nnl_permute(t, perm));
}

static int m_narrow(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = nnlb_dim(L, 2, t->ndim, 0);
  lua_Integer start = nnlb_checkinteger(L, 3), len = nnlb_checkinteger(L, 4);
  if (start < 0) start += t->shape[d] + 1;
  return nnlb_push(L, nnl_narrow(t, d, start - 1, len));
}

static int m_select(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = nnlb_dim(L, 2, t->ndim, 0);
  lua_Integer i = nnlb_checkinteger(L, 3);
  if (i < 0) i += t->shape[d] + 1;
  return nnlb_push(L, nnl_select(t, d, i - 1));
}

static int m_squeeze(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? -1 : nnlb_dim(L, 2, t->ndim, 0);
  return nnlb_push(L, nnl_squeeze(t, d));
}

static int m_unsqueeze(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  return nnlb_push(L, nnl_unsqueeze(t, nnlb_dim(L, 2, t->ndim, 1)));
}

static int m_expand(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int64_t shape[NNL_MAXDIM];
  nnl_tensor *o = nnlb_test(L, 2);
  int nd;
  if (o) nd = o->ndim, memcpy(shape, o->shape, sizeof shape);
  else nd = sizes_with_minus1(L, 2, shape);
  return nnlb_push(L, nnl_expand(t, nd, shape));
}

static int m_flatten(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int s = nnlb_optdim(L, 2, t->ndim, 0), e = nnlb_optdim(L, 3, t->ndim, t->ndim - 1);
  if (t->ndim == 0) {
    int64_t one = 1;
    return nnlb_push(L, nnl_reshape(t, 1, &one));
  }
  if (e < s) return luaL_error(L, "flatten: end dim %d is before start dim %d", e + 1, s + 1);
  int64_t shape[NNL_MAXDIM];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (i <= s || i > e) shape[nd++] = t->shape[i];
    else shape[nd - 1] *= t->shape[i];
  }
  return nnlb_push(L, nnl_reshape(t, nd, shape));
}

static int m_contiguous(lua_State *L) { return nnlb_push(L, nnl_contiguous(nnlb_check(L, 1))); }
static int m_clone(lua_State *L) { return nnlb_push(L, nnl_clone(nnlb_check(L, 1))); }
static int m_detach(lua_State *L) { return nnlb_push(L, nnl_detach(nnlb_check(L, 1))); }

static int m_to(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  nnl_dtype dt = nnlb_dtype(L, 2, t->dtype);
  if (dt == t->dtype) return nnlb_push(L, nnl_tensor_retain(t));
  return nnlb_push(L, nnl_to_dtype(t, dt));
}
static int m_float(lua_State *L) { lua_settop(L, 1); lua_pushstring(L, "float32"); return m_to(L); }
static int m_long(lua_State *L) { lua_settop(L, 1); lua_pushstring(L, "int64"); return m_to(L); }
static int m_byte(lua_State *L) { lua_settop(L, 1); lua_pushstring(L, "uint8"); return m_to(L); }

static int tensors_arg(lua_State *L, int arg, nnl_tensor **ts, int max, const char *fn) {
  nnlb_argexpected(L, lua_istable(L, arg), arg, "table of tensors");
  int n = (int)luaL_len(L, arg);
  if (n > max) nnlb_argerror(L, arg, "too many tensors");
  for (int i = 0; i < n; i++) {
    lua_geti(L, arg, i + 1);
    ts[i] = nnlb_test(L, -1);
    if (!ts[i])
      luaL_error(L, "%s: expected a list of tensors, element %d is a %s", fn, i + 1,
                 luaL_typename(L, -1));
    lua_pop(L, 1); /* the table keeps it alive */
  }
  return n;
}

static int cat_or_stack(lua_State *L, int stack) {
  nnl_tensor *ts[4096];
  int n = tensors_arg(L, 1, ts, 4096, stack ? "stack" : "cat");
  if (n == 0) return luaL_error(L, "%s: expected a non-empty list of tensors", stack ? "stack" : "cat");
  lua_Integer d = nnlb_optinteger(L, 2, 1);
  int nd = ts[0]->ndim + stack;
  if (d < 0) d += nd + 1;
  if (d < 1 || d > nd) return luaL_error(L, "%s: dimension %d out of range (expected 1 to %d)",
                                         stack ? "stack" : "cat", (int)nnlb_optinteger(L, 2, 1), nd);
  return nnlb_push(L, stack ? nnl_stack(ts, n, (int)d - 1) : nnl_cat(ts, n, (int)d - 1));
}
static int l_cat(lua_State *L) { return cat_or_stack(L, 0); }
static int l_stack(lua_State *L) { return cat_or_stack(L, 1); }

/* ---- in place (outside autograd) ---- */

static int m_fill_(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  nnlb_checknumber(L, 2);
  check_writable(L, t, "fill_");
  fill_from(L, t, 2);
  lua_settop(L, 1);
  return 1;
}

static int m_zero_(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  check_writable(L, t, "zero_");
  nnl_fill_(t, 0);
  lua_settop(L, 1);
  return 1;
}

static int m_copy_(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1), *s = nnlb_check(L, 2);
  check_writable(L, t, "copy_");
  if (nnl_copy_(t, s)) return nnlb_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int m_uniform_(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  check_writable(L, t, "uniform_");
  if (nnl_uniform_(t, nnlb_optnumber(L, 2, 0), nnlb_optnumber(L, 3, 1))) return nnlb_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int m_normal_(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  check_writable(L, t, "normal_");
  if (nnl_normal_(t, nnlb_optnumber(L, 2, 0), nnlb_optnumber(L, 3, 1))) return nnlb_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int m_data_ptr(lua_State *L) {
  lua_pushlightuserdata(L, nnl_tensor_data(nnlb_check(L, 1)));
  return 1;
}

static const luaL_Reg methods[] = {
    {"size", m_size}, {"stride", m_stride}, {"dim", m_dim}, {"numel", m_numel},
    {"nelement", m_numel}, {"dtype", m_dtype}, {"is_contiguous", m_is_contiguous},
    {"get", m_get}, {"set", m_set}, {"item", m_item}, {"totable", m_totable},
    {"view", m_view2}, {"reshape", m_reshape}, {"transpose", m_transpose}, {"t", m_t},
    {"permute", m_permute}, {"narrow", m_narrow}, {"select", m_select}, {"squeeze", m_squeeze},
    {"unsqueeze", m_unsqueeze}, {"expand", m_expand}, {"expand_as", m_expand},
    {"flatten", m_flatten}, {"contiguous", m_contiguous}, {"clone", m_clone},
    {"detach", m_detach}, {"to", m_to}, {"type", m_to}, {"float", m_float}, {"long", m_long},
    {"byte", m_byte}, {"fill_", m_fill_}, {"zero_", m_zero_}, {"copy_", m_copy_},
    {"uniform_", m_uniform_}, {"normal_", m_normal_}, {"data_ptr", m_data_ptr},
    {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"empty", l_empty},
    {"full", l_full}, {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like},
    {"full_like", l_full_like}, {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
    {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint}, {"randperm", l_randperm},
    {"manual_seed", l_manual_seed}, {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state}, {"cat", l_cat}, {"stack", l_stack}, {NULL, NULL}};

void nnlb_open_tensor(lua_State *L, int mt_methods, int module) {
  (void)m_view;
  lua_pushvalue(L, mt_methods);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 1);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
  /* the metatable */
  luaL_newmetatable(L, NNL_TENSOR_MT);
  lua_pushvalue(L, mt_methods);
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, t_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, t_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, t_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, t_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, t_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, "nnlua.Tensor");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, mt_methods);
  lua_setfield(L, -2, "__methods");
  lua_pop(L, 1);
}
