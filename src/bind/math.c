/* math.c (bind) — arithmetic and Lua operators, unary math, comparisons, reductions, matmul,
 * indexing ops, and the autograd face (requires_grad, backward, no_grad). */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../core/tensor.h"
#include "args.h"
#include "bind.h"

/* ---- binary ops: tensor op tensor, tensor op number, number op tensor ---- */

static int binary(lua_State *L, nnl_binop op) {
  nnl_tensor *a = nnlb_test(L, 1), *b = nnlb_test(L, 2);
  if (a && b) return nnlb_push(L, nnl_binary(op, a, b));
  if (a && lua_type(L, 2) == LUA_TNUMBER) return nnlb_push(L, nnl_binary_scalar(op, a, lua_tonumber(L, 2), 0));
  if (b && lua_type(L, 1) == LUA_TNUMBER) return nnlb_push(L, nnl_binary_scalar(op, b, lua_tonumber(L, 1), 1));
  static const char *names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return luaL_error(L, "%s: expected tensors or numbers, got %s and %s", names[op],
                    a ? "tensor" : luaL_typename(L, 1), b ? "tensor" : luaL_typename(L, 2));
}
static int m_add(lua_State *L) { return binary(L, NNL_OP_ADD); }
static int m_sub(lua_State *L) { return binary(L, NNL_OP_SUB); }
static int m_mul(lua_State *L) { return binary(L, NNL_OP_MUL); }
static int m_div(lua_State *L) { return binary(L, NNL_OP_DIV); }
static int m_pow(lua_State *L) { return binary(L, NNL_OP_POW); }
static int m_maximum(lua_State *L) { return binary(L, NNL_OP_MAXIMUM); }
static int m_minimum(lua_State *L) { return binary(L, NNL_OP_MINIMUM); }

/* ---- unary ---- */

#define UNARY(name, op) \
  static int m_##name(lua_State *L) { return nnlb_push(L, nnl_unary(op, nnlb_check(L, 1))); }
UNARY(neg, NNL_OP_NEG)
UNARY(exp, NNL_OP_EXP)
UNARY(log, NNL_OP_LOG)
UNARY(sqrt, NNL_OP_SQRT)
UNARY(abs, NNL_OP_ABS)
UNARY(tanh, NNL_OP_TANH)
UNARY(sigmoid, NNL_OP_SIGMOID)
UNARY(relu, NNL_OP_RELU)
UNARY(sin, NNL_OP_SIN)
UNARY(cos, NNL_OP_COS)
UNARY(rsqrt, NNL_OP_RSQRT)
UNARY(square, NNL_OP_SQUARE)
UNARY(sign, NNL_OP_SIGN)
UNARY(floor, NNL_OP_FLOOR)
UNARY(ceil, NNL_OP_CEIL)
UNARY(round, NNL_OP_ROUND)
UNARY(reciprocal, NNL_OP_RECIP)

static int m_clamp(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  double lo = -INFINITY, hi = INFINITY;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "min");
    lua_getfield(L, 2, "max");
    lo = nnlb_optnumber(L, -2, lo);
    hi = nnlb_optnumber(L, -1, hi);
  } else {
    lo = nnlb_optnumber(L, 2, lo);
    hi = nnlb_optnumber(L, 3, hi);
  }
  return nnlb_push(L, nnl_clamp(t, lo, hi));
}

/* ---- comparisons: uint8 masks ---- */

static int compare(lua_State *L, nnl_cmpop op) {
  nnl_tensor *a = nnlb_check(L, 1), *b = nnlb_test(L, 2);
  if (b) return nnlb_push(L, nnl_compare(op, a, b));
  return nnlb_push(L, nnl_compare_scalar(op, a, nnlb_checknumber(L, 2)));
}
static int m_eq(lua_State *L) { return compare(L, NNL_CMP_EQ); }
static int m_ne(lua_State *L) { return compare(L, NNL_CMP_NE); }
static int m_lt(lua_State *L) { return compare(L, NNL_CMP_LT); }
static int m_le(lua_State *L) { return compare(L, NNL_CMP_LE); }
static int m_gt(lua_State *L) { return compare(L, NNL_CMP_GT); }
static int m_ge(lua_State *L) { return compare(L, NNL_CMP_GE); }

static int l_where(lua_State *L) {
  nnl_tensor *c = nnlb_check(L, 1);
  nnl_tensor *a = nnlb_tensor_or_number(L, 2, NNL_F32);
  nnl_tensor *b = nnlb_test(L, 3) ? nnl_tensor_retain(nnlb_test(L, 3))
                  : lua_type(L, 3) == LUA_TNUMBER ? nnl_tensor_scalar(a->dtype, lua_tonumber(L, 3)) : NULL;
  if (!b) {
    nnl_tensor_release(a);
    return nnlb_argerror(L, 3, "tensor or number expected");
  }
  nnl_tensor *r = nnl_where(c, a, b);
  nnl_tensor_release(a), nnl_tensor_release(b);
  return nnlb_push(L, r);
}

static int m_masked_fill(lua_State *L) {
  return nnlb_push(L, nnl_masked_fill(nnlb_check(L, 1), nnlb_check(L, 2), nnlb_checknumber(L, 3)));
}

/* ---- reductions ---- */

static int keepdim_arg(lua_State *L, int arg) {
  if (lua_istable(L, arg)) {
    lua_getfield(L, arg, "keepdim");
    int k = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return k;
  }
  return lua_toboolean(L, arg);
}

static int reduce(lua_State *L, nnl_redop op) {
  nnl_tensor *t = nnlb_check(L, 1);
  int all = lua_isnoneornil(L, 2) || lua_istable(L, 2);
  int d = all ? -1 : nnlb_dim(L, 2, t->ndim, 0);
  int keep = all ? 0 : keepdim_arg(L, 3);
  if (all && op != NNL_RED_ARGMAX && op != NNL_RED_ARGMIN)
    return nnlb_push(L, nnl_reduce(op, t, -1, 0, NULL));
  if (op == NNL_RED_MAX || op == NNL_RED_MIN) {
    nnl_tensor *idx = NULL, *v = nnl_reduce(op, t, d, keep, &idx);
    if (!v) return nnlb_fail(L);
    nnlb_push(L, v);
    nnl_tensor *one = idx ? nnl_binary_scalar(NNL_OP_ADD, idx, 1, 0) : NULL;
    nnl_tensor_release(idx);
    nnlb_push(L, one);
    return 2;
  }
  nnl_tensor *r = nnl_reduce(op, t, d, keep, NULL);
  if (r && (op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN)) {
    nnl_tensor *one = nnl_binary_scalar(NNL_OP_ADD, r, 1, 0);
    nnl_tensor_release(r);
    r = one;
  }
  return nnlb_push(L, r);
}
static int m_sum(lua_State *L) { return reduce(L, NNL_RED_SUM); }
static int m_mean(lua_State *L) { return reduce(L, NNL_RED_MEAN); }
static int m_max(lua_State *L) { return reduce(L, NNL_RED_MAX); }
static int m_min(lua_State *L) { return reduce(L, NNL_RED_MIN); }
static int m_prod(lua_State *L) { return reduce(L, NNL_RED_PROD); }
static int m_std(lua_State *L) { return reduce(L, NNL_RED_STD); }
static int m_var(lua_State *L) { return reduce(L, NNL_RED_VAR); }
static int m_argmax(lua_State *L) { return reduce(L, NNL_RED_ARGMAX); }
static int m_argmin(lua_State *L) { return reduce(L, NNL_RED_ARGMIN); }

/* ---- matmul and indexing ---- */

static int m_matmul(lua_State *L) { return nnlb_push(L, nnl_matmul(nnlb_check(L, 1), nnlb_check(L, 2))); }

static int m_index_select(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = nnlb_dim(L, 2, t->ndim, 0);
  nnl_tensor *ix = nnlb_index0(L, 3, "index_select");
  nnl_tensor *r = nnl_index_select(t, d, ix);
  nnl_tensor_release(ix);
  return nnlb_push(L, r);
}

static int m_gather(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = nnlb_dim(L, 2, t->ndim, 0);
  nnl_tensor *ix = nnlb_index0(L, 3, "gather");
  nnl_tensor *r = nnl_gather(t, d, ix);
  nnl_tensor_release(ix);
  return nnlb_push(L, r);
}

static int m_scatter_add(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int d = nnlb_dim(L, 2, t->ndim, 0);
  nnl_tensor *src = nnlb_check(L, 4);
  nnl_tensor *ix = nnlb_index0(L, 3, "scatter_add");
  nnl_tensor *r = nnl_scatter_add(t, d, ix, src);
  nnl_tensor_release(ix);
  return nnlb_push(L, r);
}

static int m_one_hot(lua_State *L) {
  lua_Integer c = nnlb_optinteger(L, 2, -1); /* before index0 allocates: may raise */
  nnl_tensor *ix = nnlb_index0(L, 1, "one_hot");
  if (c < 0) { /* as PyTorch: one more than the largest class (1-based: the largest) */
    nnl_tensor *mx = nnl_tensor_numel(ix) ? nnl_reduce(NNL_RED_MAX, ix, -1, 0, NULL) : NULL;
    double top = mx ? nnl_tensor_get(mx, NULL) : 0.0; /* 0-based */
    nnl_tensor_release(mx);
    if (!(top < 9e15)) { /* no integer cast of a value past int64 (undefined in C) */
      nnl_tensor_release(ix);
      return luaL_error(L, "one_hot: class %f is too large", top + 1);
    }
    c = (lua_Integer)top + 1;
  }
  nnl_tensor *r = nnl_one_hot(ix, c);
  nnl_tensor_release(ix);
  return nnlb_push(L, r);
}

/* ---- autograd ---- */

static int m_requires_grad(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (on && t->dtype != NNL_F32)
    return luaL_error(L, "requires_grad: only float32 tensors can require gradients, got %s",
                      nnl_dtype_name(t->dtype));
  if (!on && t->grad_fn)
    return luaL_error(L, "requires_grad: can only change the flag of leaf tensors; use detach()");
  t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

static int m_requires_grad_p(lua_State *L) {
  lua_pushboolean(L, nnlb_check(L, 1)->requires_grad);
  return 1;
}

static int m_backward(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  nnl_tensor *g = NULL;
  int retain = 0, opts = 2;
  if (nnlb_test(L, 2)) g = nnlb_test(L, 2), opts = 3;
  else if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return nnlb_argerror(L, 2, "gradient tensor or options table expected");
  if (lua_istable(L, opts)) {
    lua_getfield(L, opts, "retain_graph");
    retain = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (nnl_backward(t, g, retain) != 0) return nnlb_fail(L);
  return 0;
}

static int l_no_grad(lua_State *L) {
  nnlb_checktype(L, 1, LUA_TFUNCTION);
  int prev = nnl_set_grad_enabled(0);
  int n = lua_gettop(L);
  int rc = lua_pcall(L, n - 1, LUA_MULTRET, 0);
  nnl_set_grad_enabled(prev);
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, nnl_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, nnl_grad_enabled());
  return 1;
}

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = nnlb_checkinteger(L, 1);
  nnlb_argcheck(L, n >= 1 && n <= 1024, 1, "thread count must be between 1 and 1024");
  nnl_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, nnl_get_num_threads());
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, nnlb_test(L, 1) != NULL);
  return 1;
}

static int l_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nnl_tensor_nbytes_total());
  return 1;
}

static const luaL_Reg methods[] = {
    {"add", m_add}, {"sub", m_sub}, {"mul", m_mul}, {"div", m_div}, {"pow", m_pow},
    {"maximum", m_maximum}, {"minimum", m_minimum}, {"neg", m_neg}, {"exp", m_exp},
    {"log", m_log}, {"sqrt", m_sqrt}, {"abs", m_abs}, {"tanh", m_tanh}, {"sigmoid", m_sigmoid},
    {"relu", m_relu}, {"sin", m_sin}, {"cos", m_cos}, {"rsqrt", m_rsqrt}, {"square", m_square},
    {"sign", m_sign}, {"floor", m_floor}, {"ceil", m_ceil}, {"round", m_round},
    {"reciprocal", m_reciprocal}, {"clamp", m_clamp}, {"eq", m_eq}, {"ne", m_ne}, {"lt", m_lt},
    {"le", m_le}, {"gt", m_gt}, {"ge", m_ge}, {"masked_fill", m_masked_fill}, {"sum", m_sum},
    {"mean", m_mean}, {"max", m_max}, {"min", m_min}, {"prod", m_prod}, {"std", m_std},
    {"var", m_var}, {"argmax", m_argmax}, {"argmin", m_argmin}, {"matmul", m_matmul},
    {"mm", m_matmul}, {"index_select", m_index_select}, {"gather", m_gather},
    {"scatter_add", m_scatter_add}, {"requires_grad", m_requires_grad},
    {"requires_grad_", m_requires_grad}, {"is_requires_grad", m_requires_grad_p},
    {"backward", m_backward}, {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"add", m_add}, {"sub", m_sub}, {"mul", m_mul}, {"div", m_div}, {"pow", m_pow},
    {"maximum", m_maximum}, {"minimum", m_minimum}, {"exp", m_exp}, {"log", m_log},
    {"sqrt", m_sqrt}, {"abs", m_abs}, {"tanh", m_tanh}, {"sigmoid", m_sigmoid}, {"relu", m_relu},
    {"clamp", m_clamp}, {"where", l_where}, {"masked_fill", m_masked_fill}, {"matmul", m_matmul},
    {"sum", m_sum}, {"mean", m_mean}, {"max", m_max}, {"min", m_min}, {"argmax", m_argmax},
    {"argmin", m_argmin}, {"std", m_std}, {"var", m_var}, {"index_select", m_index_select},
    {"gather", m_gather}, {"scatter_add", m_scatter_add}, {"one_hot", m_one_hot},
    {"no_grad", l_no_grad}, {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled}, {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads}, {"is_tensor", l_is_tensor},
    {"memory_allocated", l_memory}, {NULL, NULL}};

void nnlb_open_math(lua_State *L, int mt_methods, int module) {
  lua_pushvalue(L, mt_methods);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 1);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
  luaL_getmetatable(L, NNL_TENSOR_MT);
  static const luaL_Reg ops[] = {{"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul},
                                 {"__div", m_div}, {"__pow", m_pow}, {"__unm", m_neg},
                                 {NULL, NULL}};
  luaL_setfuncs(L, ops, 0);
  lua_pop(L, 1);
}
