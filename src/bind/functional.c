/* functional.c (bind) — nn.F: the dense layer ops (linear, activations, softmax, losses,
 * dropout, embedding, flatten) with 1-based dims and labels; opens nn._C and the spatial ops. */
#include <string.h>

#include "../autograd/layers.h"
#include "args.h"
#include "bind.h"

/* optim.c: nn._C (optimizer steps, sum_squares) and the tensor method mul_. */

/* ---- option tables ---- */

/* The options argument must be nil or a table whose keys are all in keys (NULL-terminated):
 * a misspelt option is an error, not a silent default. */
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
      luaL_error(L, "%s: unknown option '%s' (expected %s)", fn,
                 k ? k : luaL_typename(L, -2), lua_tostring(L, -1));
    }
  }
}

/* Push options[k] (nil when there is no options table); returns its type. */
static int opt_get(lua_State *L, int arg, const char *k) {
  if (!lua_istable(L, arg)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, arg, k);
}

static double opt_number(lua_State *L, int arg, const char *fn, const char *k, double def) {
  int t = opt_get(L, arg, k);
  if (t == LUA_TNUMBER) def = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option %s must be a number, got %s", fn, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return def;
}

static lua_Integer opt_integer(lua_State *L, int arg, const char *fn, const char *k,
                               lua_Integer def) {
  int t = opt_get(L, arg, k), isint = 0;
  if (t != LUA_TNIL) {
    def = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_error(L, "%s: option %s must be an integer, got %s", fn, k,
                 t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return def;
}

/* A tensor option (NULL when absent); the options table keeps it alive. */
static nnl_tensor *opt_tensor(lua_State *L, int arg, const char *fn, const char *k) {
  nnl_tensor *t = NULL;
  if (opt_get(L, arg, k) != LUA_TNIL && !(t = nnlb_test(L, -1)))
    luaL_error(L, "%s: option %s must be a tensor, got %s", fn, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return t;
}

static nnl_reduction opt_reduction(lua_State *L, int arg, const char *fn) {
  static const char *const names[] = {"none", "mean", "sum"};
  nnl_reduction r = NNL_REDUCTION_MEAN;
  int t = opt_get(L, arg, "reduction");
  if (t != LUA_TNIL) {
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int found = 0;
    for (int i = 0; s && i < 3; i++)
      if (!strcmp(s, names[i])) r = (nnl_reduction)i, found = 1;
    if (!found)
      luaL_error(L, "%s: reduction must be 'mean', 'sum' or 'none', got %s%s%s", fn,
                 s ? "'" : "", s ? s : luaL_typename(L, -1), s ? "'" : "");
  }
  lua_pop(L, 1);
  return r;
}

/* A tensor argument that may be nil (NULL). */
static nnl_tensor *opt_arg_tensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : nnlb_check(L, arg);
}

/* 1-based int64 labels (or indices) at arg -> a 0-based copy, after checking that every one
 * lies in 1..count or equals ignore. noun: "label" / "index"; what: "classes" / "embeddings". */
static nnl_tensor *to_base0(lua_State *L, int arg, const char *fn, const char *noun,
                            const char *what, int64_t count, int64_t ignore) {
  nnl_tensor *t = nnlb_check(L, arg);
  if (t->dtype != NNL_I64)
    luaL_error(L, "%s: %s must be an int64 tensor (1-based), got %s", fn,
               !strcmp(noun, "label") ? "labels" : "indices", nnl_dtype_name(t->dtype));
  int64_t v, at = nnl_find_bad_label(t, 1, count, ignore, &v);
  if (at >= 0)
    luaL_error(L, "%s: %s %I (element %I) is out of range for %I %s (expected 1 to %I)", fn, noun,
               (lua_Integer)v, (lua_Integer)at + 1, (lua_Integer)count, what, (lua_Integer)count);
  return nnl_binary_scalar(NNL_OP_SUB, t, 1, 0);
}

/* ---- linear, flatten ---- */

static int f_linear(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1), *w = nnlb_check(L, 2), *b = opt_arg_tensor(L, 3);
  return nnlb_push(L, nnl_linear(x, w, b));
}

static int f_linear_relu(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1), *w = nnlb_check(L, 2), *b = opt_arg_tensor(L, 3);
  return nnlb_push(L, nnl_linear_relu(x, w, b));
}

static int f_flatten(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1);
  if (x->ndim == 0) return nnlb_push(L, nnl_flatten(x, 0, 0));
  int s = lua_isnoneornil(L, 2) ? (x->ndim > 1 ? 1 : 0) : nnlb_dim(L, 2, x->ndim, 0);
  int e = nnlb_optdim(L, 3, x->ndim, x->ndim - 1);
  return nnlb_push(L, nnl_flatten(x, s, e));
}

/* ---- activations ---- */

static int f_relu(lua_State *L) { return nnlb_push(L, nnl_relu(nnlb_check(L, 1))); }
static int f_sigmoid(lua_State *L) { return nnlb_push(L, nnl_sigmoid(nnlb_check(L, 1))); }
static int f_tanh(lua_State *L) { return nnlb_push(L, nnl_tanh(nnlb_check(L, 1))); }

static int f_leaky_relu(lua_State *L) {
  static const char *const keys[] = {"negative_slope", NULL};
  nnl_tensor *x = nnlb_check(L, 1);
  double slope = 0.01;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    slope = lua_tonumber(L, 2);
  } else {
    check_opts(L, 2, "leaky_relu", keys);
    slope = opt_number(L, 2, "leaky_relu", "negative_slope", slope);
  }
  return nnlb_push(L, nnl_leaky_relu(x, slope));
}

static int f_gelu(lua_State *L) {
  static const char *const keys[] = {"approximate", NULL};
  nnl_tensor *x = nnlb_check(L, 1);
  const char *a = "none";
  if (lua_type(L, 2) == LUA_TSTRING) {
    a = lua_tostring(L, 2);
  } else {
    check_opts(L, 2, "gelu", keys);
    int t = opt_get(L, 2, "approximate");
    if (t != LUA_TNIL && t != LUA_TSTRING)
      return luaL_error(L, "gelu: approximate must be 'none' or 'tanh', got %s",
                        luaL_typename(L, -1));
    if (t == LUA_TSTRING) a = lua_tostring(L, -1); /* stays on the stack */
  }
  if (strcmp(a, "none") && strcmp(a, "tanh"))
    return luaL_error(L, "gelu: approximate must be 'none' or 'tanh', got '%s'", a);
  return nnlb_push(L, nnl_gelu(x, !strcmp(a, "tanh")));
}

/* dim: 1-based, negative from the end, default the last; a 0-d x has one dim. */
static int softmax_dim(lua_State *L, const nnl_tensor *x) {
  int nd = x->ndim ? x->ndim : 1;
  return lua_isnoneornil(L, 2) ? nd - 1 : nnlb_dim(L, 2, nd, 0);
}

static int f_softmax(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1);
  return nnlb_push(L, nnl_softmax(x, softmax_dim(L, x)));
}

static int f_log_softmax(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1);
  return nnlb_push(L, nnl_log_softmax(x, softmax_dim(L, x)));
}

/* ---- losses ---- */

/* PyTorch's default; in Lua a label equal to ignore_index is skipped, as in PyTorch. */
#define DEFAULT_IGNORE (-100)

static int class_loss(lua_State *L, int ce) {
  static const char *const ce_keys[] = {"ignore_index", "label_smoothing", "reduction", "weight",
                                        NULL};
  static const char *const nll_keys[] = {"ignore_index", "reduction", "weight", NULL};
  const char *fn = ce ? "cross_entropy" : "nll_loss";
  nnl_tensor *x = nnlb_check(L, 1);
  nnlb_check(L, 2);
  check_opts(L, 3, fn, ce ? ce_keys : nll_keys);
  if (x->ndim == 0)
    return luaL_error(L, "%s: input must be (N, C, ...) or (C), got a 0-d tensor", fn);
  lua_Integer ignore = opt_integer(L, 3, fn, "ignore_index", DEFAULT_IGNORE);
  double smoothing = ce ? opt_number(L, 3, fn, "label_smoothing", 0.0) : 0.0;
  nnl_reduction red = opt_reduction(L, 3, fn);
  nnl_tensor *weight = opt_tensor(L, 3, fn, "weight");
  int64_t C = x->ndim == 1 ? x->shape[0] : x->shape[1];
  /* ignore_index shifts with the labels; the smallest integer can't, and matches nothing */
  int64_t ignore0 = ignore == LUA_MININTEGER ? NNL_NO_IGNORE : (int64_t)ignore - 1;
  nnl_tensor *labels = to_base0(L, 2, fn, "label", "classes", C, ignore);
  if (!labels) return nnlb_fail(L);
  nnl_tensor *r = ce ? nnl_cross_entropy(x, labels, weight, ignore0, smoothing, red)
                     : nnl_nll_loss(x, labels, weight, ignore0, red);
  nnl_tensor_release(labels);
  return nnlb_push(L, r);
}

static int f_cross_entropy(lua_State *L) { return class_loss(L, 1); }
static int f_nll_loss(lua_State *L) { return class_loss(L, 0); }

static int f_mse_loss(lua_State *L) {
  static const char *const keys[] = {"reduction", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *t = nnlb_check(L, 2);
  check_opts(L, 3, "mse_loss", keys);
  return nnlb_push(L, nnl_mse_loss(x, t, opt_reduction(L, 3, "mse_loss")));
}

static int f_bce_with_logits(lua_State *L) {
  static const char fn[] = "binary_cross_entropy_with_logits";
  static const char *const keys[] = {"weight", "pos_weight", "reduction", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *t = nnlb_check(L, 2);
  check_opts(L, 3, fn, keys);
  nnl_tensor *w = opt_tensor(L, 3, fn, "weight"), *pw = opt_tensor(L, 3, fn, "pos_weight");
  return nnlb_push(L, nnl_bce_with_logits(x, t, w, pw, opt_reduction(L, 3, fn)));
}

/* ---- dropout, embedding ---- */

/* dropout(x, p = 0.5, training = true), or dropout(x, {p =, training =}) */
static int dropout(lua_State *L, int feature) {
  static const char *const keys[] = {"p", "training", NULL};
  const char *fn = feature ? "dropout2d" : "dropout";
  nnl_tensor *x = nnlb_check(L, 1);
  double p = 0.5;
  int training = 1;
  if (lua_istable(L, 2)) {
    check_opts(L, 2, fn, keys);
    p = opt_number(L, 2, fn, "p", p);
    if (opt_get(L, 2, "training") != LUA_TNIL) training = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else {
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TNUMBER)
      return luaL_error(L, "%s: p must be a number, got %s", fn, luaL_typename(L, 2));
    p = nnlb_optnumber(L, 2, p);
    if (!lua_isnoneornil(L, 3)) training = lua_toboolean(L, 3);
  }
  return nnlb_push(L, nnl_dropout(x, p, training, feature));
}

static int f_dropout(lua_State *L) { return dropout(L, 0); }
static int f_dropout2d(lua_State *L) { return dropout(L, 1); }

static int f_embedding(lua_State *L) {
  static const char *const keys[] = {"padding_idx", NULL};
  nnlb_check(L, 1);
  nnl_tensor *w = nnlb_check(L, 2);
  check_opts(L, 3, "embedding", keys);
  if (w->ndim != 2) {
    char ws[160];
    return luaL_error(L, "embedding: weight must be 2-D [num_embeddings, embedding_dim], got %s",
                      nnl_shape_str(w, ws, sizeof ws));
  }
  int64_t V = w->shape[0], pad0 = -1;
  int has_pad = opt_get(L, 3, "padding_idx") != LUA_TNIL;
  lua_pop(L, 1);
  if (has_pad) {
    lua_Integer given = opt_integer(L, 3, "embedding", "padding_idx", 0);
    lua_Integer pad = given < 0 ? given + V + 1 : given; /* -1: the last row, as PyTorch */
    if (pad < 1 || pad > V)
      return luaL_error(L, "embedding: padding_idx %I is out of range for %I embeddings "
                           "(expected 1 to %I, or -%I to -1)",
                        given, (lua_Integer)V, (lua_Integer)V, (lua_Integer)V);
    pad0 = pad - 1;
  }
  nnl_tensor *idx = to_base0(L, 1, "embedding", "index", "embeddings", V, NNL_NO_IGNORE);
  if (!idx) return nnlb_fail(L);
  nnl_tensor *r = nnl_embedding(idx, w, pad0);
  nnl_tensor_release(idx);
  return nnlb_push(L, r);
}

static const luaL_Reg functions[] = {
    {"linear", f_linear}, {"linear_relu", f_linear_relu}, {"relu", f_relu}, {"leaky_relu", f_leaky_relu},
    {"sigmoid", f_sigmoid}, {"tanh", f_tanh}, {"gelu", f_gelu}, {"softmax", f_softmax},
    {"log_softmax", f_log_softmax}, {"cross_entropy", f_cross_entropy},
    {"nll_loss", f_nll_loss}, {"mse_loss", f_mse_loss},
    {"binary_cross_entropy_with_logits", f_bce_with_logits}, {"dropout", f_dropout},
    {"dropout2d", f_dropout2d}, {"embedding", f_embedding}, {"flatten", f_flatten},
    {NULL, NULL}};

void nnlb_open_functional(lua_State *L, int methods, int module) {
  lua_newtable(L);
  int F = lua_gettop(L);
  luaL_setfuncs(L, functions, 0);
  nnlb_open_F_spatial(L, F);
  nnlb_open_F_rnn(L, F);
  lua_settop(L, F);
  lua_setfield(L, module, "F");
  nnlb_open_optim(L, methods, module);
}
