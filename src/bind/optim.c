/* optim.c (bind) — nn._C: in-place optimizer steps over the kernels of dense.h, the sum of
 * squares for clip_grad_norm, and the tensor method mul_. No autograd: parameters change in place.
 *
 * Lua API (for the optimizer classes in lua/nnlua/optim/). Every tensor is float32; param and
 * each state tensor must be contiguous and of param's shape; grad must have param's shape. State
 * buffers are created by the caller (nn.zeros_like(param)) and passed on every step. Options
 * default as in torch.optim 1.13; unknown option keys are an error.
 *
 *   nn._C.sgd_step(param, grad, buf | nil, {lr =, momentum = 0, dampening = 0,
 *                  weight_decay = 0, nesterov = false, first_step = false})
 *       buf is required when momentum ~= 0; pass first_step = true on the first step with
 *       momentum (the buffer then takes the gradient instead of decaying).
 *   nn._C.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq | nil,
 *                   {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, step =})
 *   nn._C.adamw_step(... same arguments ..., weight_decay defaults to 1e-2)
 *       step: the step count including this one (1 on the first step), for bias correction.
 *       max_exp_avg_sq: a buffer for amsgrad, nil for plain Adam.
 *   nn._C.rmsprop_step(param, grad, square_avg, grad_avg | nil, momentum_buf | nil,
 *                      {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
 *                       centered = false})
 *       grad_avg is required when centered, momentum_buf when momentum > 0.
 *   nn._C.sum_squares(t) --> number: sum of t's squared elements, in double, the same for any
 *       thread count (clip_grad_norm: total = sqrt of the sum over parameters' grads).
 *   t:mul_(s) --> t: multiply t in place by a number or a tensor broadcastable to t (scales
 *       gradients for clip_grad_norm); refused on a tensor that requires grad while grad mode
 *       is on, as other in-place ops.
 * All return nothing except sum_squares and mul_. Errors name the function and the argument. */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../core/tensor.h"
#include "../kernels/dense.h"
#include "../kernels/tensorops.h"
#include "bind.h"


/* ---- arguments ---- */

/* A float32 tensor of param's shape; contiguous when it is written (state) — grad may be any
 * view and is made contiguous by the caller. */
static nnl_tensor *check_like(lua_State *L, int arg, const char *fn, const char *what,
                              const nnl_tensor *param, int state) {
  char a[160], b[160];
  nnl_tensor *t = nnlb_test(L, arg);
  if (!t)
    luaL_error(L, "%s: %s (argument %d) must be a tensor, got %s", fn, what, arg,
               luaL_typename(L, arg));
  if (t->dtype != NNL_F32)
    luaL_error(L, "%s: %s must be float32, got %s", fn, what, nnl_dtype_name(t->dtype));
  if (param && !nnl_same_shape(t, param))
    luaL_error(L, "%s: %s has size %s but param has size %s", fn, what,
               nnl_shape_str(t, a, sizeof a), nnl_shape_str(param, b, sizeof b));
  if (state && !nnl_tensor_is_contiguous(t))
    luaL_error(L, "%s: %s must be contiguous (it is updated in place)", fn, what);
  return t;
}

/* An optional state buffer: NULL for nil; error when a required one is missing. */
static nnl_tensor *opt_state(lua_State *L, int arg, const char *fn, const char *what,
                             const nnl_tensor *param, int required, const char *why) {
  if (lua_isnoneornil(L, arg)) {
    if (required) luaL_error(L, "%s: %s (argument %d) is required %s", fn, what, arg, why);
    return NULL;
  }
  return check_like(L, arg, fn, what, param, 1);
}

static nnl_tensor *check_param(lua_State *L, const char *fn) {
  nnl_tensor *p = check_like(L, 1, fn, "param", NULL, 1);
  if (p->grad_fn)
    luaL_error(L, "%s: param must be a leaf tensor (it has grad_fn %s)", fn, nnl_grad_fn_name(p));
  return p;
}

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
    if (!known) luaL_error(L, "%s: unknown option '%s'", fn, k ? k : luaL_typename(L, -2));
  }
}

/* options[k] as a number; def < 0 with NAN means required. */
static double num(lua_State *L, int arg, const char *fn, const char *k, double def) {
  int t = lua_istable(L, arg) ? lua_getfield(L, arg, k) : (lua_pushnil(L), LUA_TNIL);
  if (t == LUA_TNUMBER) def = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option %s must be a number, got %s", fn, k, luaL_typename(L, -1));
  else if (isnan(def)) luaL_error(L, "%s: option %s is required", fn, k);
  lua_pop(L, 1);
  return def;
}

static int flag(lua_State *L, int arg, const char *k) {
  int on = lua_istable(L, arg) && lua_getfield(L, arg, k) != LUA_TNIL && lua_toboolean(L, -1);
  if (lua_istable(L, arg)) lua_pop(L, 1);
  return on;
}

static void nonneg(lua_State *L, const char *fn, const char *k, double v) {
  if (!(v >= 0.0)) luaL_error(L, "%s: invalid %s %f (must be >= 0)", fn, k, v);
}

/* grad as a contiguous tensor (a new reference: the caller releases it). */
static nnl_tensor *grad_contig(lua_State *L, nnl_tensor *g) {
  nnl_tensor *c = nnl_raw_contiguous(g);
  if (!c) nnlb_fail(L);
  return c;
}

static float *fd(const nnl_tensor *t) { return t ? nnl_tensor_data(t) : NULL; }

/* ---- steps ---- */

static int c_sgd_step(lua_State *L) {
  static const char fn[] = "sgd_step";
  static const char *const keys[] = {"lr", "momentum", "dampening", "weight_decay", "nesterov",
                                     "first_step", NULL};
  nnl_tensor *p = check_param(L, fn);
  nnl_tensor *g = check_like(L, 2, fn, "grad", p, 0);
  check_opts(L, 4, fn, keys);
  double lr = num(L, 4, fn, "lr", NAN), mom = num(L, 4, fn, "momentum", 0);
  double damp = num(L, 4, fn, "dampening", 0), wd = num(L, 4, fn, "weight_decay", 0);
  int nesterov = flag(L, 4, "nesterov"), first = flag(L, 4, "first_step");
  nonneg(L, fn, "lr", lr), nonneg(L, fn, "momentum", mom), nonneg(L, fn, "weight_decay", wd);
  if (nesterov && (mom <= 0 || damp != 0))
    return luaL_error(L, "%s: nesterov momentum requires a momentum and zero dampening", fn);
  nnl_tensor *buf = opt_state(L, 3, fn, "buf", p, mom != 0, "when momentum is not 0");
  nnl_tensor *gc = grad_contig(L, g);
  nnl_sgd_step(fd(p), mom != 0 ? fd(buf) : NULL, fd(gc), nnl_tensor_numel(p), lr, mom, damp, wd,
               nesterov, first);
  nnl_tensor_release(gc);
  return 0;
}

static int adam_any(lua_State *L, int decoupled) {
  static const char *const keys[] = {"lr", "betas", "beta1", "beta2", "eps", "weight_decay",
                                     "step", NULL};
  const char *fn = decoupled ? "adamw_step" : "adam_step";
  nnl_tensor *p = check_param(L, fn);
  nnl_tensor *g = check_like(L, 2, fn, "grad", p, 0);
  nnl_tensor *m = check_like(L, 3, fn, "exp_avg", p, 1);
  nnl_tensor *v = check_like(L, 4, fn, "exp_avg_sq", p, 1);
  nnl_tensor *vmax = opt_state(L, 5, fn, "max_exp_avg_sq", p, 0, "");
  check_opts(L, 6, fn, keys);
  double lr = num(L, 6, fn, "lr", 1e-3), eps = num(L, 6, fn, "eps", 1e-8);
  double wd = num(L, 6, fn, "weight_decay", decoupled ? 1e-2 : 0);
  double b1 = num(L, 6, fn, "beta1", 0.9), b2 = num(L, 6, fn, "beta2", 0.999);
  if (lua_istable(L, 6) && lua_getfield(L, 6, "betas") != LUA_TNIL) {
    if (!lua_istable(L, -1) || lua_geti(L, -1, 1) != LUA_TNUMBER ||
        lua_geti(L, -2, 2) != LUA_TNUMBER)
      return luaL_error(L, "%s: option betas must be a table of two numbers", fn);
    b1 = lua_tonumber(L, -2), b2 = lua_tonumber(L, -1);
  }
  lua_Number step = num(L, 6, fn, "step", NAN);
  nonneg(L, fn, "lr", lr), nonneg(L, fn, "eps", eps), nonneg(L, fn, "weight_decay", wd);
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
    return luaL_error(L, "%s: betas must be in [0, 1), got {%f, %f}", fn, b1, b2);
  if (!(step >= 1 && step <= 9007199254740992.0) || step != floor(step)) /* int64 cast below */
    return luaL_error(L, "%s: step must be an integer >= 1 (1 on the first step) and at most 2^53, "
                      "got %f", fn, step);
  nnl_tensor *gc = grad_contig(L, g);
  if (decoupled)
    nnl_adamw_step(fd(p), fd(m), fd(v), fd(vmax), fd(gc), nnl_tensor_numel(p), lr, b1, b2, eps,
                   wd, (int64_t)step);
  else
    nnl_adam_step(fd(p), fd(m), fd(v), fd(vmax), fd(gc), nnl_tensor_numel(p), lr, b1, b2, eps,
                  wd, (int64_t)step);
  nnl_tensor_release(gc);
  return 0;
}

static int c_adam_step(lua_State *L) { return adam_any(L, 0); }
static int c_adamw_step(lua_State *L) { return adam_any(L, 1); }

static int c_rmsprop_step(lua_State *L) {
  static const char fn[] = "rmsprop_step";
  static const char *const keys[] = {"lr", "alpha", "eps", "weight_decay", "momentum",
                                     "centered", NULL};
  nnl_tensor *p = check_param(L, fn);
  nnl_tensor *g = check_like(L, 2, fn, "grad", p, 0);
  nnl_tensor *sq = check_like(L, 3, fn, "square_avg", p, 1);
  check_opts(L, 6, fn, keys);
  double lr = num(L, 6, fn, "lr", 1e-2), alpha = num(L, 6, fn, "alpha", 0.99);
  double eps = num(L, 6, fn, "eps", 1e-8), wd = num(L, 6, fn, "weight_decay", 0);
  double mom = num(L, 6, fn, "momentum", 0);
  int centered = flag(L, 6, "centered");
  nonneg(L, fn, "lr", lr), nonneg(L, fn, "alpha", alpha), nonneg(L, fn, "eps", eps);
  nonneg(L, fn, "weight_decay", wd), nonneg(L, fn, "momentum", mom);
  nnl_tensor *ga = opt_state(L, 4, fn, "grad_avg", p, centered, "when centered");
  nnl_tensor *mb = opt_state(L, 5, fn, "momentum_buf", p, mom > 0, "when momentum > 0");
  nnl_tensor *gc = grad_contig(L, g);
  nnl_rmsprop_step(fd(p), fd(sq), centered ? fd(ga) : NULL, mom > 0 ? fd(mb) : NULL, fd(gc),
                   nnl_tensor_numel(p), lr, alpha, eps, wd, mom, centered);
  nnl_tensor_release(gc);
  return 0;
}

/* ---- grad clipping helpers ---- */

static int c_sum_squares(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (t->dtype != NNL_F32)
    return luaL_error(L, "sum_squares: expected a float32 tensor, got %s",
                      nnl_dtype_name(t->dtype));
  nnl_tensor *c = nnl_raw_contiguous(t);
  if (!c) return nnlb_fail(L);
  double s = nnl_sum_squares(fd(c), nnl_tensor_numel(c));
  nnl_tensor_release(c);
  lua_pushnumber(L, s);
  return 1;
}

static int m_mul_(lua_State *L) {
  char a[160], b[160];
  nnl_tensor *t = nnlb_check(L, 1), *o = nnlb_test(L, 2);
  if (t->requires_grad && nnl_grad_enabled())
    return luaL_error(L, "mul_: cannot modify a tensor that requires grad in place; use "
                         "nn.no_grad or detach() first");
  if (!o) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      return luaL_error(L, "mul_: expected a number or a tensor, got %s", luaL_typename(L, 2));
    if (nnl_k_binary_scalar(NNL_OP_MUL, t, t, lua_tonumber(L, 2), 0)) return nnlb_fail(L);
    lua_settop(L, 1);
    return 1;
  }
  /* other may alias t (t:mul_(t[1])): read it from a private copy in t's dtype */
  int copy = o->storage == t->storage || o->dtype != t->dtype;
  nnl_tensor *src = copy ? nnl_raw_to_dtype(o, t->dtype) : nnl_tensor_retain(o);
  nnl_tensor *e = src ? nnl_raw_expand(src, t->ndim, t->shape, "mul_") : NULL;
  nnl_tensor_release(src);
  if (!e)
    return luaL_error(L, "mul_: cannot multiply a tensor of size %s in place by %s",
                      nnl_shape_str(t, a, sizeof a), nnl_shape_str(o, b, sizeof b));
  int rc = nnl_k_binary(NNL_OP_MUL, t, t, e);
  nnl_tensor_release(e);
  if (rc) return nnlb_fail(L);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg c_functions[] = {
    {"sgd_step", c_sgd_step}, {"adam_step", c_adam_step}, {"adamw_step", c_adamw_step},
    {"rmsprop_step", c_rmsprop_step}, {"sum_squares", c_sum_squares}, {NULL, NULL}};

static const luaL_Reg tensor_methods[] = {{"mul_", m_mul_}, {NULL, NULL}};

void nnlb_open_optim(lua_State *L, int methods, int module) {
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, tensor_methods, 0);
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, c_functions, 0);
  lua_setfield(L, module, "_C");
}
