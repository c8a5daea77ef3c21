/* functional_spatial.c (bind) — nn.F's spatial ops: conv2d, max/avg/adaptive-avg pooling and
 * batch_norm, with option tables; shapes are checked in src/autograd/spatial_ops.c. */
#include <limits.h>
#include <string.h>

#include "../autograd/layers.h"
#include "args.h"
#include "bind.h"

/* ---- arguments ---- */

/* The options argument: nil, or a table whose keys are all in keys (NULL-terminated). */
static void check_opts(lua_State *L, int arg, const char *fn, const char *const *keys) {
  if (lua_isnoneornil(L, arg)) return;
  if (!lua_istable(L, arg) || nnlb_test(L, arg))
    luaL_error(L, "%s: options (argument %d) must be a table, got %s", fn, arg,
               luaL_typename(L, arg));
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int known = 0;
    for (int i = 0; k && keys[i]; i++) known |= !strcmp(k, keys[i]);
    if (!known) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; keys[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, keys[i]);
      }
      luaL_pushresult(&b);
      luaL_error(L, "%s: unknown option '%s' (expected %s)", fn, k ? k : luaL_typename(L, -2),
                 lua_tostring(L, -1));
    }
  }
}

/* Push options[k] (nil without an options table); returns its type. */
static int opt_get(lua_State *L, int arg, const char *k) {
  if (!lua_istable(L, arg)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, arg, k);
}

/* An integer that fits in an int: the value at idx, or an error naming fn and what. */
static int int_at(lua_State *L, int idx, const char *fn, const char *what) {
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint)
    luaL_error(L, "%s: %s must be an integer, got %s", fn, what,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  if (v < INT_MIN || v > INT_MAX) luaL_error(L, "%s: %s %I is out of range", fn, what, v);
  return (int)v;
}

/* The value at idx as an integer n (-> {n, n}) or a pair {h, w} of integers. */
static void pair_at(lua_State *L, int idx, const char *fn, const char *what, int v[2]) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    v[0] = v[1] = int_at(L, idx, fn, what);
    return;
  }
  if (!lua_istable(L, idx) || nnlb_test(L, idx) || luaL_len(L, idx) != 2)
    luaL_error(L, "%s: %s must be an integer or a pair {h, w} of integers, got %s", fn, what,
               lua_istable(L, idx) && !nnlb_test(L, idx) ? "a table that is not a pair"
                                                         : luaL_typename(L, idx));
  for (int i = 0; i < 2; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = int_at(L, -1, fn, what);
    lua_pop(L, 1);
  }
}

/* options[k] as a pair, or def when absent. */
static void opt_pair(lua_State *L, int arg, const char *fn, const char *k, const int def[2],
                     int v[2]) {
  if (opt_get(L, arg, k) == LUA_TNIL) v[0] = def[0], v[1] = def[1];
  else pair_at(L, -1, fn, k, v);
  lua_pop(L, 1);
}

static int opt_int(lua_State *L, int arg, const char *fn, const char *k, int def) {
  if (opt_get(L, arg, k) != LUA_TNIL) def = int_at(L, -1, fn, k);
  lua_pop(L, 1);
  return def;
}

static int opt_bool(lua_State *L, int arg, const char *fn, const char *k, int def) {
  int t = opt_get(L, arg, k);
  if (t == LUA_TBOOLEAN) def = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option %s must be a boolean, got %s", fn, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return def;
}

static double opt_number(lua_State *L, int arg, const char *fn, const char *k, double def) {
  int t = opt_get(L, arg, k);
  if (t == LUA_TNUMBER) def = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option %s must be a number, got %s", fn, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return def;
}

/* A tensor argument that may be nil (NULL). */
static nnl_tensor *opt_arg_tensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : nnlb_check(L, arg);
}

/* ceil_mode is accepted for PyTorch's sake, but only its default. */
static void no_ceil_mode(lua_State *L, int arg, const char *fn) {
  if (opt_bool(L, arg, fn, "ceil_mode", 0))
    luaL_error(L, "%s: ceil_mode = true is not supported (output sizes round down)", fn);
}

/* ---- conv2d ---- */

/* padding = "valid" (none) or "same" (stride 1; output the input's size, so dil*(k-1) must be
 * even on each axis: the kernel pads both sides equally). */
static void string_padding(lua_State *L, const char *s, nnl_tensor *w, const int stride[2],
                           const int dil[2], int pad[2]) {
  pad[0] = pad[1] = 0;
  if (!strcmp(s, "valid")) return;
  if (strcmp(s, "same"))
    luaL_error(L, "conv2d: padding must be an integer, a pair {h, w}, 'valid' or 'same', got '%s'",
               s);
  if (stride[0] != 1 || stride[1] != 1)
    luaL_error(L, "conv2d: padding = 'same' needs stride 1, got %dx%d", stride[0], stride[1]);
  if (w->ndim != 4) return; /* the op reports the weight's shape */
  for (int i = 0; i < 2; i++) {
    long total = (long)dil[i] * (w->shape[2 + i] - 1);
    if (total % 2)
      luaL_error(L, "conv2d: padding = 'same' with kernel %dx%d and dilation %dx%d needs uneven "
                    "padding, which is not supported", (int)w->shape[2], (int)w->shape[3], dil[0],
                 dil[1]);
    pad[i] = (int)(total / 2);
  }
}

/* conv2d(x, w, b|nil, {stride = 1, padding = 0, dilation = 1, groups = 1}); conv2d(x, w, opts). */
static int f_conv2d(lua_State *L) {
  static const char *const keys[] = {"stride", "padding", "dilation", "groups", NULL};
  static const int one[2] = {1, 1}, zero[2] = {0, 0};
  nnl_tensor *x = nnlb_check(L, 1), *w = nnlb_check(L, 2), *b = NULL;
  int opts = 4;
  if (lua_istable(L, 3) && !nnlb_test(L, 3) && lua_isnone(L, 4)) opts = 3;
  else b = opt_arg_tensor(L, 3);
  check_opts(L, opts, "conv2d", keys);
  int stride[2], pad[2], dil[2];
  opt_pair(L, opts, "conv2d", "stride", one, stride);
  opt_pair(L, opts, "conv2d", "dilation", one, dil);
  int t = opt_get(L, opts, "padding");
  if (t == LUA_TSTRING) string_padding(L, lua_tostring(L, -1), w, stride, dil, pad);
  else if (t == LUA_TNIL) pad[0] = zero[0], pad[1] = zero[1];
  else pair_at(L, -1, "conv2d", "padding", pad);
  lua_pop(L, 1);
  int groups = opt_int(L, opts, "conv2d", "groups", 1);
  return nnlb_push(L, nnl_conv2d(x, w, b, stride, pad, dil, groups));
}

/* ---- pooling ---- */

/* kernel (arg 2) and the options stride (default: the kernel) and padding (default 0). */
static void pool_args(lua_State *L, const char *fn, int kernel[2], int stride[2], int pad[2]) {
  static const int zero[2] = {0, 0};
  if (lua_isnoneornil(L, 2))
    luaL_error(L, "%s: kernel size (argument 2) must be an integer or a pair {h, w}, got %s", fn,
               luaL_typename(L, 2));
  pair_at(L, 2, fn, "kernel size", kernel);
  opt_pair(L, 3, fn, "stride", kernel, stride);
  opt_pair(L, 3, fn, "padding", zero, pad);
}

/* max_pool2d(x, kernel, {stride = kernel, padding = 0, dilation = 1, return_indices = false});
 * with return_indices, the 1-based flat position h*W + w + 1 of each maximum comes second. */
static int f_max_pool2d(lua_State *L) {
  static const char *const keys[] = {"stride", "padding", "dilation", "ceil_mode",
                                     "return_indices", NULL};
  static const int one[2] = {1, 1};
  nnl_tensor *x = nnlb_check(L, 1);
  check_opts(L, 3, "max_pool2d", keys);
  int kernel[2], stride[2], pad[2], dil[2];
  pool_args(L, "max_pool2d", kernel, stride, pad);
  opt_pair(L, 3, "max_pool2d", "dilation", one, dil);
  no_ceil_mode(L, 3, "max_pool2d");
  if (!opt_bool(L, 3, "max_pool2d", "return_indices", 0))
    return nnlb_push(L, nnl_max_pool2d(x, kernel, stride, pad, dil, NULL));
  nnl_tensor *ind = NULL, *y = nnl_max_pool2d(x, kernel, stride, pad, dil, &ind);
  nnlb_push(L, y);
  nnl_tensor *ind1 = nnl_binary_scalar(NNL_OP_ADD, ind, 1, 0);
  nnl_tensor_release(ind);
  nnlb_push(L, ind1);
  return 2;
}

/* avg_pool2d(x, kernel, {stride = kernel, padding = 0, count_include_pad = true,
 * divisor_override = nil}) */
static int f_avg_pool2d(lua_State *L) {
  static const char *const keys[] = {"stride", "padding", "ceil_mode", "count_include_pad",
                                     "divisor_override", NULL};
  nnl_tensor *x = nnlb_check(L, 1);
  check_opts(L, 3, "avg_pool2d", keys);
  int kernel[2], stride[2], pad[2];
  pool_args(L, "avg_pool2d", kernel, stride, pad);
  no_ceil_mode(L, 3, "avg_pool2d");
  int include = opt_bool(L, 3, "avg_pool2d", "count_include_pad", 1);
  int div = opt_int(L, 3, "avg_pool2d", "divisor_override", 0);
  if (opt_get(L, 3, "divisor_override") != LUA_TNIL && div <= 0)
    return luaL_error(L, "avg_pool2d: divisor_override must be a positive integer, got %d", div);
  lua_pop(L, 1);
  return nnlb_push(L, nnl_avg_pool2d(x, kernel, stride, pad, include, div));
}

/* adaptive_avg_pool2d(x, output_size): an integer or {oh, ow}. */
static int f_adaptive_avg_pool2d(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1);
  int size[2];
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "adaptive_avg_pool2d: output size (argument 2) must be an integer or a "
                         "pair {h, w}, got %s", luaL_typename(L, 2));
  pair_at(L, 2, "adaptive_avg_pool2d", "output size", size);
  return nnlb_push(L, nnl_adaptive_avg_pool2d(x, size[0], size[1]));
}

/* ---- batch_norm ---- */

/* batch_norm(x, running_mean, running_var, weight, bias, training = false, momentum = 0.1,
 * eps = 1e-5), as PyTorch's F.batch_norm; or with {training =, momentum =, eps =} as argument 6. */
static int f_batch_norm(lua_State *L) {
  static const char *const keys[] = {"training", "momentum", "eps", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *rm = opt_arg_tensor(L, 2), *rv = opt_arg_tensor(L, 3);
  nnl_tensor *w = opt_arg_tensor(L, 4), *b = opt_arg_tensor(L, 5);
  int training = 0;
  double momentum = 0.1, eps = 1e-5;
  if (lua_istable(L, 6)) {
    check_opts(L, 6, "batch_norm", keys);
    training = opt_bool(L, 6, "batch_norm", "training", 0);
    momentum = opt_number(L, 6, "batch_norm", "momentum", momentum);
    eps = opt_number(L, 6, "batch_norm", "eps", eps);
  } else {
    if (!lua_isnoneornil(L, 6) && !lua_isboolean(L, 6))
      return luaL_error(L, "batch_norm: training (argument 6) must be a boolean, got %s",
                        luaL_typename(L, 6));
    training = lua_toboolean(L, 6);
    for (int a = 7; a <= 8; a++)
      if (!lua_isnoneornil(L, a) && lua_type(L, a) != LUA_TNUMBER)
        return luaL_error(L, "batch_norm: %s (argument %d) must be a number, got %s",
                          a == 7 ? "momentum" : "eps", a, luaL_typename(L, a));
    momentum = nnlb_optnumber(L, 7, momentum);
    eps = nnlb_optnumber(L, 8, eps);
  }
  return nnlb_push(L, nnl_batch_norm(x, rm, rv, w, b, training, momentum, eps));
}

static const luaL_Reg functions[] = {
    {"conv2d", f_conv2d}, {"max_pool2d", f_max_pool2d}, {"avg_pool2d", f_avg_pool2d},
    {"adaptive_avg_pool2d", f_adaptive_avg_pool2d}, {"batch_norm", f_batch_norm},
    {NULL, NULL}};

void nnlb_open_F_spatial(lua_State *L, int F) {
  for (const luaL_Reg *r = functions; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, F, r->name);
  }
}
