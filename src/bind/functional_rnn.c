/* functional_rnn.c (bind) — nn.F's recurrent ops: rnn, lstm, gru over whole sequences and their
 * one-step cells. Optional states and biases are nil; options come last in a table. */
#include <string.h>

#include "../autograd/layers.h"
#include "bind.h"

/* Called by functional.c when this file is linked in. */

/* The options argument: nil, or a table whose keys are all in keys (NULL-terminated). */
static void check_opts(lua_State *L, int arg, const char *fn, const char *const *keys) {
  if (lua_isnoneornil(L, arg)) return;
  if (!lua_istable(L, arg))
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

static int opt_bool(lua_State *L, int arg, const char *fn, const char *k) {
  if (!lua_istable(L, arg)) return 0;
  int t = lua_getfield(L, arg, k), v = lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: option %s must be a boolean, got %s", fn, k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* nonlinearity = "tanh" (default) or "relu": 1 for relu. */
static int opt_relu(lua_State *L, int arg, const char *fn) {
  if (!lua_istable(L, arg)) return 0;
  int t = lua_getfield(L, arg, "nonlinearity");
  const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  int relu = s && !strcmp(s, "relu");
  if (t != LUA_TNIL && !relu && !(s && !strcmp(s, "tanh")))
    luaL_error(L, "%s: nonlinearity must be 'tanh' or 'relu', got %s%s%s", fn, s ? "'" : "",
               s ? s : luaL_typename(L, -1), s ? "'" : "");
  lua_pop(L, 1);
  return relu;
}

/* A tensor argument that may be nil (NULL). */
static nnl_tensor *opt_arg(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : nnlb_check(L, arg);
}

/* Push the results of an op that filled all of outs (n of them) or failed (outs[0] NULL). */
static int push_all(lua_State *L, nnl_tensor **outs, int n) {
  if (!outs[0]) return nnlb_fail(L);
  for (int i = 0; i < n; i++) nnlb_push(L, outs[i]);
  return n;
}

/* rnn(x, h0, w_ih, w_hh, b_ih, b_hh, {nonlinearity = "tanh", batch_first = false})
 *   -> output, h_n */
static int f_rnn(lua_State *L) {
  static const char *const keys[] = {"nonlinearity", "batch_first", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *h0 = opt_arg(L, 2), *wih = nnlb_check(L, 3);
  nnl_tensor *whh = nnlb_check(L, 4), *bih = opt_arg(L, 5), *bhh = opt_arg(L, 6), *out[2];
  check_opts(L, 7, "rnn", keys);
  int relu = opt_relu(L, 7, "rnn"), bf = opt_bool(L, 7, "rnn", "batch_first");
  out[0] = nnl_rnn(&out[1], x, h0, wih, whh, bih, bhh, relu, bf);
  return push_all(L, out, 2);
}

/* lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, {batch_first = false}) -> output, h_n, c_n */
static int f_lstm(lua_State *L) {
  static const char *const keys[] = {"batch_first", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *h0 = opt_arg(L, 2), *c0 = opt_arg(L, 3);
  nnl_tensor *wih = nnlb_check(L, 4), *whh = nnlb_check(L, 5), *bih = opt_arg(L, 6);
  nnl_tensor *bhh = opt_arg(L, 7), *out[3];
  check_opts(L, 8, "lstm", keys);
  int bf = opt_bool(L, 8, "lstm", "batch_first");
  out[0] = nnl_lstm(&out[1], &out[2], x, h0, c0, wih, whh, bih, bhh, bf);
  return push_all(L, out, 3);
}

/* gru(x, h0, w_ih, w_hh, b_ih, b_hh, {batch_first = false}) -> output, h_n */
static int f_gru(lua_State *L) {
  static const char *const keys[] = {"batch_first", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *h0 = opt_arg(L, 2), *wih = nnlb_check(L, 3);
  nnl_tensor *whh = nnlb_check(L, 4), *bih = opt_arg(L, 5), *bhh = opt_arg(L, 6), *out[2];
  check_opts(L, 7, "gru", keys);
  int bf = opt_bool(L, 7, "gru", "batch_first");
  out[0] = nnl_gru(&out[1], x, h0, wih, whh, bih, bhh, bf);
  return push_all(L, out, 2);
}

/* rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, {nonlinearity = "tanh"}) -> h' */
static int f_rnn_cell(lua_State *L) {
  static const char *const keys[] = {"nonlinearity", NULL};
  nnl_tensor *x = nnlb_check(L, 1), *h = opt_arg(L, 2), *wih = nnlb_check(L, 3);
  nnl_tensor *whh = nnlb_check(L, 4), *bih = opt_arg(L, 5), *bhh = opt_arg(L, 6);
  check_opts(L, 7, "rnn_cell", keys);
  int relu = opt_relu(L, 7, "rnn_cell");
  return nnlb_push(L, nnl_rnn_cell(x, h, wih, whh, bih, bhh, relu));
}

/* lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) -> h', c' */
static int f_lstm_cell(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1), *h = opt_arg(L, 2), *c = opt_arg(L, 3);
  nnl_tensor *wih = nnlb_check(L, 4), *whh = nnlb_check(L, 5), *bih = opt_arg(L, 6);
  nnl_tensor *bhh = opt_arg(L, 7), *out[2];
  out[0] = nnl_lstm_cell(&out[1], x, h, c, wih, whh, bih, bhh);
  return push_all(L, out, 2);
}

/* gru_cell(x, h, w_ih, w_hh, b_ih, b_hh) -> h' */
static int f_gru_cell(lua_State *L) {
  nnl_tensor *x = nnlb_check(L, 1), *h = opt_arg(L, 2), *wih = nnlb_check(L, 3);
  nnl_tensor *whh = nnlb_check(L, 4), *bih = opt_arg(L, 5), *bhh = opt_arg(L, 6);
  return nnlb_push(L, nnl_gru_cell(x, h, wih, whh, bih, bhh));
}

static const luaL_Reg functions[] = {
    {"rnn", f_rnn}, {"lstm", f_lstm}, {"gru", f_gru}, {"rnn_cell", f_rnn_cell},
    {"lstm_cell", f_lstm_cell}, {"gru_cell", f_gru_cell}, {NULL, NULL}};

void nnlb_open_F_rnn(lua_State *L, int F) {
  lua_pushvalue(L, F);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}
