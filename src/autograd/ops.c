/* ops.c — differentiable elementwise ops: arithmetic with broadcasting, unary math, clamp,
 * where and masked_fill; comparisons (no gradient). Backward rules are written with the ops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/tensorops.h"
#include "autograd.h"

/* Convert to dtype dt if needed (new reference either way). */
static nnl_tensor *as_dtype(nnl_tensor *t, nnl_dtype dt) {
  return t->dtype == dt ? nnl_tensor_retain(t) : nnl_to_dtype(t, dt);
}

/* A node's ip[24] holds two shapes: slot 0 in ip[0..8], slot 1 in ip[10..18] (a third would run
 * past the array into ctx: where() keeps its two value inputs in slots 0 and 1). */
static nnl_tensor *unbroadcast(nnl_tensor *g, nnl_node *n, int slot) {
  int nd = (int)n->ip[slot * 10];
  return nnl_sum_to(g, nd, &n->ip[slot * 10 + 1]);
}

static void remember_shape(nnl_node *n, int slot, const nnl_tensor *t) {
  n->ip[slot * 10] = t->ndim;
  memcpy(&n->ip[slot * 10 + 1], t->shape, t->ndim * sizeof(int64_t));
}

static const char *binop_name(nnl_binop op) {
  static const char *names[] = {"AddBackward", "SubBackward", "MulBackward", "DivBackward",
                                "PowBackward", "MaximumBackward", "MinimumBackward"};
  return names[op];
}

/* Half of the gradient to each side at ties, as PyTorch's maximum/minimum. */
static nnl_tensor *minmax_share(nnl_tensor *g, nnl_tensor *a, nnl_tensor *b, nnl_cmpop win) {
  nnl_tensor *w = nnl_compare(win, a, b), *eq = nnl_compare(NNL_CMP_EQ, a, b);
  nnl_tensor *wf = w ? nnl_to_dtype(w, NNL_F32) : NULL, *ef = eq ? nnl_to_dtype(eq, NNL_F32) : NULL;
  nnl_tensor *half = ef ? nnl_binary_scalar(NNL_OP_MUL, ef, 0.5, 0) : NULL;
  nnl_tensor *share = wf && half ? nnl_binary(NNL_OP_ADD, wf, half) : NULL;
  nnl_tensor *r = share ? nnl_binary(NNL_OP_MUL, g, share) : NULL;
  nnl_tensor_release(w), nnl_tensor_release(eq), nnl_tensor_release(wf);
  nnl_tensor_release(ef), nnl_tensor_release(half), nnl_tensor_release(share);
  return r;
}

static int bw_binary(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_binop op = (nnl_binop)n->ip[20];
  nnl_tensor *g = gout[0], *a = n->saved[0], *b = n->saved[1], *out = n->saved[2];
  nnl_tensor *ga = NULL, *gb = NULL;
  int need_a = nnl_node_input_needs(n, 0), need_b = nnl_node_input_needs(n, 1);
  switch (op) {
  case NNL_OP_ADD:
    ga = need_a ? nnl_tensor_retain(g) : NULL;
    gb = need_b ? nnl_tensor_retain(g) : NULL;
    break;
  case NNL_OP_SUB:
    ga = need_a ? nnl_tensor_retain(g) : NULL;
    gb = need_b ? nnl_unary(NNL_OP_NEG, g) : NULL;
    break;
  case NNL_OP_MUL:
    ga = need_a ? nnl_binary(NNL_OP_MUL, g, b) : NULL;
    gb = need_b ? nnl_binary(NNL_OP_MUL, g, a) : NULL;
    break;
  case NNL_OP_DIV:
    ga = need_a ? nnl_binary(NNL_OP_DIV, g, b) : NULL;
    if (need_b) { /* -g * out / b */
      nnl_tensor *t = nnl_binary(NNL_OP_MUL, g, out);
      nnl_tensor *u = t ? nnl_binary(NNL_OP_DIV, t, b) : NULL;
      gb = u ? nnl_unary(NNL_OP_NEG, u) : NULL;
      nnl_tensor_release(t), nnl_tensor_release(u);
    }
    break;
  case NNL_OP_POW:
    if (need_a) { /* g * b * a^(b-1) */
      nnl_tensor *bm1 = nnl_binary_scalar(NNL_OP_SUB, b, 1.0, 0);
      nnl_tensor *p = bm1 ? nnl_binary(NNL_OP_POW, a, bm1) : NULL;
      nnl_tensor *q = p ? nnl_binary(NNL_OP_MUL, p, b) : NULL;
      ga = q ? nnl_binary(NNL_OP_MUL, g, q) : NULL;
      nnl_tensor_release(bm1), nnl_tensor_release(p), nnl_tensor_release(q);
    }
    if (need_b) { /* g * out * log(a) */
      nnl_tensor *l = nnl_unary(NNL_OP_LOG, a);
      nnl_tensor *p = l ? nnl_binary(NNL_OP_MUL, out, l) : NULL;
      gb = p ? nnl_binary(NNL_OP_MUL, g, p) : NULL;
      nnl_tensor_release(l), nnl_tensor_release(p);
    }
    break;
  case NNL_OP_MAXIMUM:
  case NNL_OP_MINIMUM: {
    nnl_cmpop wa = op == NNL_OP_MAXIMUM ? NNL_CMP_GT : NNL_CMP_LT;
    nnl_cmpop wb = op == NNL_OP_MAXIMUM ? NNL_CMP_LT : NNL_CMP_GT;
    ga = need_a ? minmax_share(g, a, b, wa) : NULL;
    gb = need_b ? minmax_share(g, a, b, wb) : NULL;
    break;
  }
  }
  if ((need_a && !ga) || (need_b && !gb)) goto fail;
  if (ga) {
    gin[0] = unbroadcast(ga, n, 0);
    if (!gin[0]) goto fail;
  }
  if (gb) {
    gin[1] = unbroadcast(gb, n, 1);
    if (!gin[1]) goto fail;
  }
  nnl_tensor_release(ga), nnl_tensor_release(gb);
  return 0;
fail:
  nnl_tensor_release(ga), nnl_tensor_release(gb);
  return -1;
}

static const char *binop_fn(nnl_binop op) {
  static const char *names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return names[op];
}

nnl_tensor *nnl_binary(nnl_binop op, nnl_tensor *a, nnl_tensor *b) {
  int64_t shape[NNL_MAXDIM];
  int nd = nnl_broadcast_shape(a, b, shape, binop_fn(op));
  if (nd < 0) return NULL;
  nnl_dtype dt = (a->dtype == NNL_F32 || b->dtype == NNL_F32 || op == NNL_OP_DIV || op == NNL_OP_POW)
                     ? NNL_F32 : NNL_I64;
  nnl_tensor *ca = as_dtype(a, dt), *cb = ca ? as_dtype(b, dt) : NULL;
  nnl_tensor *ea = cb ? nnl_raw_expand(ca, nd, shape, binop_fn(op)) : NULL;
  nnl_tensor *eb = ea ? nnl_raw_expand(cb, nd, shape, binop_fn(op)) : NULL;
  nnl_tensor *out = eb ? nnl_tensor_empty(dt, nd, shape) : NULL;
  if (out) nnl_k_binary(op, out, ea, eb);
  nnl_tensor_release(ea), nnl_tensor_release(eb);
  nnl_tensor *in[2] = {a, b};
  if (out && dt == NNL_F32 && nnl_ag_needed(in, 2)) {
    nnl_node *n = nnl_node_new(binop_name(op), bw_binary, in, 2);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      n->ip[20] = op;
      remember_shape(n, 0, a);
      remember_shape(n, 1, b);
      int keep = op != NNL_OP_ADD && op != NNL_OP_SUB;
      nnl_node_save(n, keep ? ca : NULL);
      nnl_node_save(n, keep ? cb : NULL);
      nnl_node_save(n, op == NNL_OP_DIV || op == NNL_OP_POW ? out : NULL);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(ca), nnl_tensor_release(cb);
  return out;
}

static int bw_binary_scalar(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_binop op = (nnl_binop)n->ip[20];
  int first = (int)n->ip[21];
  double s = n->p[0];
  nnl_tensor *g = gout[0], *a = n->saved[0], *out = n->saved[1];
  switch (op) {
  case NNL_OP_ADD: gin[0] = nnl_tensor_retain(g); break;
  case NNL_OP_SUB: gin[0] = first ? nnl_unary(NNL_OP_NEG, g) : nnl_tensor_retain(g); break;
  case NNL_OP_MUL: gin[0] = nnl_binary_scalar(NNL_OP_MUL, g, s, 0); break;
  case NNL_OP_DIV:
    if (!first) {
      gin[0] = nnl_binary_scalar(NNL_OP_DIV, g, s, 0);
    } else { /* d(s/a) = -out/a */
      nnl_tensor *t = nnl_binary(NNL_OP_DIV, out, a);
      nnl_tensor *u = t ? nnl_binary(NNL_OP_MUL, g, t) : NULL;
      gin[0] = u ? nnl_unary(NNL_OP_NEG, u) : NULL;
      nnl_tensor_release(t), nnl_tensor_release(u);
    }
    break;
  case NNL_OP_POW:
    if (!first) { /* s * a^(s-1) */
      nnl_tensor *p = s == 2.0 ? nnl_tensor_retain(a) : nnl_binary_scalar(NNL_OP_POW, a, s - 1, 0);
      nnl_tensor *q = p ? nnl_binary_scalar(NNL_OP_MUL, p, s, 0) : NULL;
      gin[0] = q ? nnl_binary(NNL_OP_MUL, g, q) : NULL;
      nnl_tensor_release(p), nnl_tensor_release(q);
    } else { /* out * log(s) */
      nnl_tensor *p = nnl_binary_scalar(NNL_OP_MUL, out, log(s), 0);
      gin[0] = p ? nnl_binary(NNL_OP_MUL, g, p) : NULL;
      nnl_tensor_release(p);
    }
    break;
  case NNL_OP_MAXIMUM:
  case NNL_OP_MINIMUM: {
    nnl_cmpop win = op == NNL_OP_MAXIMUM ? NNL_CMP_GT : NNL_CMP_LT;
    nnl_tensor *sc = nnl_tensor_scalar(NNL_F32, s);
    gin[0] = sc ? minmax_share(g, a, sc, win) : NULL;
    nnl_tensor_release(sc);
    break;
  }
  }
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_binary_scalar(nnl_binop op, nnl_tensor *a, double s, int scalar_first) {
  int integral = s == floor(s) && fabs(s) < 9e15;
  nnl_dtype dt = (a->dtype == NNL_F32 || !integral || op == NNL_OP_DIV || op == NNL_OP_POW)
                     ? NNL_F32 : NNL_I64;
  nnl_tensor *ca = as_dtype(a, dt);
  nnl_tensor *out = ca ? nnl_tensor_empty(dt, a->ndim, a->shape) : NULL;
  if (out) nnl_k_binary_scalar(op, out, ca, s, scalar_first);
  if (out && dt == NNL_F32 && nnl_ag_needed(&a, 1)) {
    nnl_node *n = nnl_node_new(binop_name(op), bw_binary_scalar, &a, 1);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      n->ip[20] = op;
      n->ip[21] = scalar_first;
      n->p[0] = s;
      int keep_a = op == NNL_OP_POW || op == NNL_OP_MAXIMUM || op == NNL_OP_MINIMUM ||
                   (op == NNL_OP_DIV && scalar_first);
      nnl_node_save(n, keep_a ? ca : NULL);
      nnl_node_save(n, (op == NNL_OP_DIV || op == NNL_OP_POW) && scalar_first ? out : NULL);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(ca);
  return out;
}

/* ---- unary ---- */

static const char *unop_name(nnl_unop op) {
  static const char *names[] = {"NegBackward", "ExpBackward", "LogBackward", "SqrtBackward",
                                "AbsBackward", "TanhBackward", "SigmoidBackward", "ReluBackward",
                                "SinBackward", "CosBackward", "RsqrtBackward", "SquareBackward",
                                "SignBackward", "FloorBackward", "CeilBackward", "RoundBackward",
                                "ReciprocalBackward"};
  return names[op];
}

static int bw_unary(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *x = n->saved[0], *y = n->saved[1];
  nnl_tensor *g = nnl_tensor_zeros(NNL_F32, gout[0]->ndim, gout[0]->shape);
  if (!g) return -1;
  nnl_k_unary_backward((nnl_unop)n->ip[20], nnl_tensor_data(g), nnl_tensor_data(gout[0]),
                       x ? nnl_tensor_data(x) : NULL, y ? nnl_tensor_data(y) : NULL,
                       nnl_tensor_numel(g));
  gin[0] = g;
  return 0;
}

nnl_tensor *nnl_unary(nnl_unop op, nnl_tensor *a) {
  int int_ok = op == NNL_OP_NEG || op == NNL_OP_ABS || op == NNL_OP_SIGN;
  nnl_dtype dt = a->dtype == NNL_I64 && int_ok ? NNL_I64 : NNL_F32;
  nnl_tensor *ca = a->dtype == dt ? nnl_raw_contiguous(a) : nnl_raw_to_dtype(a, dt);
  nnl_tensor *out = ca ? nnl_tensor_empty(dt, a->ndim, a->shape) : NULL;
  if (out) nnl_k_unary(op, out, ca);
  if (out && dt == NNL_F32 && nnl_ag_needed(&a, 1)) {
    nnl_node *n = nnl_node_new(unop_name(op), bw_unary, &a, 1);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      n->ip[20] = op;
      nnl_node_save(n, ca);
      nnl_node_save(n, out);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(ca);
  return out;
}

/* ---- clamp, comparisons, where, masked_fill ---- */

static int bw_clamp(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *x = n->saved[0];
  nnl_tensor *ge = nnl_compare_scalar(NNL_CMP_GE, x, n->p[0]);
  nnl_tensor *le = ge ? nnl_compare_scalar(NNL_CMP_LE, x, n->p[1]) : NULL;
  nnl_tensor *both = le ? nnl_binary(NNL_OP_MUL, ge, le) : NULL;
  nnl_tensor *m = both ? nnl_to_dtype(both, NNL_F32) : NULL;
  gin[0] = m ? nnl_binary(NNL_OP_MUL, gout[0], m) : NULL;
  nnl_tensor_release(ge), nnl_tensor_release(le), nnl_tensor_release(both), nnl_tensor_release(m);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_clamp(nnl_tensor *a, double lo, double hi) {
  if (lo > hi) {
    nnl_set_error("clamp: min %g is greater than max %g", lo, hi);
    return NULL;
  }
  nnl_tensor *ca = a->dtype == NNL_U8 ? nnl_raw_to_dtype(a, NNL_F32) : nnl_tensor_retain(a);
  nnl_tensor *out = ca ? nnl_tensor_empty(ca->dtype, a->ndim, a->shape) : NULL;
  if (out) nnl_k_clamp(out, ca, lo, hi);
  if (out && out->dtype == NNL_F32 && nnl_ag_needed(&a, 1)) {
    nnl_node *n = nnl_node_new("ClampBackward", bw_clamp, &a, 1);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      n->p[0] = lo, n->p[1] = hi;
      nnl_node_save(n, ca);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(ca);
  return out;
}

nnl_tensor *nnl_compare(nnl_cmpop op, nnl_tensor *a, nnl_tensor *b) {
  int64_t shape[NNL_MAXDIM];
  int nd = nnl_broadcast_shape(a, b, shape, "compare");
  if (nd < 0) return NULL;
  nnl_tensor *ea = nnl_raw_expand(a, nd, shape, "compare");
  nnl_tensor *eb = ea ? nnl_raw_expand(b, nd, shape, "compare") : NULL;
  nnl_tensor *out = eb ? nnl_tensor_empty(NNL_U8, nd, shape) : NULL;
  if (out) nnl_k_compare(op, out, ea, eb);
  nnl_tensor_release(ea), nnl_tensor_release(eb);
  return out;
}

nnl_tensor *nnl_compare_scalar(nnl_cmpop op, nnl_tensor *a, double s) {
  nnl_tensor *out = nnl_tensor_empty(NNL_U8, a->ndim, a->shape);
  if (out) nnl_k_compare_scalar(op, out, a, s);
  return out;
}

static nnl_tensor *mask_of(nnl_tensor *m, const char *fn) {
  if (m->dtype == NNL_U8) return nnl_tensor_retain(m);
  if (m->dtype == NNL_I64) return nnl_compare_scalar(NNL_CMP_NE, m, 0);
  nnl_set_error("%s: mask must be uint8 (or int64), got %s", fn, nnl_dtype_name(m->dtype));
  return NULL;
}

static int bw_where(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *cond = n->saved[0], *zero = nnl_tensor_scalar(NNL_F32, 0);
  if (!zero) return -1;
  for (int i = 0; i < 2; i++) {
    if (!nnl_node_input_needs(n, i + 1)) continue;
    nnl_tensor *g = i == 0 ? nnl_where(cond, gout[0], zero) : nnl_where(cond, zero, gout[0]);
    gin[i + 1] = g ? unbroadcast(g, n, i) : NULL;
    nnl_tensor_release(g);
    if (!gin[i + 1]) {
      nnl_tensor_release(zero);
      return -1;
    }
  }
  nnl_tensor_release(zero);
  return 0;
}

nnl_tensor *nnl_where(nnl_tensor *cond, nnl_tensor *a, nnl_tensor *b) {
  int64_t s1[NNL_MAXDIM], shape[NNL_MAXDIM];
  int nd1 = nnl_broadcast_shape(a, b, s1, "where");
  if (nd1 < 0) return NULL;
  nnl_tensor tmp = {.ndim = nd1};
  memcpy(tmp.shape, s1, sizeof s1);
  int nd = nnl_broadcast_shape(cond, &tmp, shape, "where");
  if (nd < 0) return NULL;
  nnl_dtype dt = a->dtype == NNL_F32 || b->dtype == NNL_F32 ? NNL_F32 : a->dtype;
  nnl_tensor *m = mask_of(cond, "where");
  nnl_tensor *ca = m ? as_dtype(a, dt) : NULL, *cb = ca ? as_dtype(b, dt) : NULL;
  nnl_tensor *em = cb ? nnl_raw_expand(m, nd, shape, "where") : NULL;
  nnl_tensor *ea = em ? nnl_raw_expand(ca, nd, shape, "where") : NULL;
  nnl_tensor *eb = ea ? nnl_raw_expand(cb, nd, shape, "where") : NULL;
  nnl_tensor *out = eb ? nnl_tensor_empty(dt, nd, shape) : NULL;
  if (out) nnl_k_where(out, em, ea, eb);
  nnl_tensor_release(em), nnl_tensor_release(ea), nnl_tensor_release(eb);
  nnl_tensor *in[3] = {NULL, a, b};
  if (out && dt == NNL_F32 && nnl_ag_needed(in, 3)) {
    nnl_node *n = nnl_node_new("WhereBackward", bw_where, in, 3);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      remember_shape(n, 0, a);
      remember_shape(n, 1, b);
      nnl_node_save(n, m);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(m), nnl_tensor_release(ca), nnl_tensor_release(cb);
  return out;
}

static int bw_masked_fill(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  gin[0] = nnl_masked_fill(gout[0], n->saved[0], 0.0);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_masked_fill(nnl_tensor *a, nnl_tensor *mask, double v) {
  nnl_tensor *m = mask_of(mask, "masked_fill");
  nnl_tensor *em = m ? nnl_raw_expand(m, a->ndim, a->shape, "masked_fill") : NULL;
  nnl_tensor *out = em ? nnl_raw_clone(a) : NULL;
  if (out) nnl_k_masked_fill(out, em, v);
  nnl_tensor_release(em);
  if (out && a->dtype == NNL_F32 && nnl_ag_needed(&a, 1)) {
    nnl_node *n = nnl_node_new("MaskedFillBackward", bw_masked_fill, &a, 1);
    if (!n) {
      nnl_tensor_release(out);
      out = NULL;
    } else {
      nnl_node_save(n, m);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
  }
  nnl_tensor_release(m);
  return out;
}
