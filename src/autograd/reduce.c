/* reduce.c — differentiable reductions (sum, mean, max, min, prod, std, var; argmax/argmin)
 * over all elements or one dim, with keepdim. */
#include <math.h>
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/tensorops.h"
#include "autograd.h"

static const char *red_fn(nnl_redop op) {
  static const char *names[] = {"sum", "mean", "max", "min", "prod", "argmax", "argmin", "std", "var"};
  return names[op];
}

static const char *red_node(nnl_redop op) {
  static const char *names[] = {"SumBackward", "MeanBackward", "MaxBackward", "MinBackward",
                                "ProdBackward", "", "", "StdBackward", "VarBackward"};
  return names[op];
}

/* gout (reduced shape) viewed with the reduced dim kept, then broadcast to the input shape. */
static nnl_tensor *spread(nnl_tensor *g, const nnl_node *n) {
  int nd = (int)n->ip[0], dim = (int)n->ip[10];
  const int64_t *shape = &n->ip[1];
  nnl_tensor *k;
  if (dim < 0) {
    int64_t ones[NNL_MAXDIM];
    for (int i = 0; i < nd; i++) ones[i] = 1;
    k = nnl_raw_view(g, nd, ones, "reduce backward");
  } else {
    k = n->ip[11] ? nnl_tensor_retain(g) : nnl_raw_unsqueeze(g, dim);
  }
  if (!k) return NULL;
  nnl_tensor *e = nnl_raw_expand(k, nd, shape, "reduce backward");
  nnl_tensor_release(k);
  return e;
}

static int bw_reduce(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_redop op = (nnl_redop)n->ip[12];
  nnl_tensor *x = n->saved[0], *out = n->saved[1], *idx = n->saved[2];
  double count = n->p[0];
  nnl_tensor *g = spread(gout[0], n);
  if (!g) return -1;
  switch (op) {
  case NNL_RED_SUM: gin[0] = nnl_tensor_retain(g); break;
  case NNL_RED_MEAN: gin[0] = nnl_binary_scalar(NNL_OP_DIV, g, count, 0); break;
  case NNL_RED_MAX:
  case NNL_RED_MIN: {
    nnl_tensor *z = nnl_tensor_zeros(NNL_F32, x->ndim, x->shape);
    if (z && idx) {
      nnl_k_scatter_dim(z, gout[0], idx, (int)n->ip[10]);
    } else if (z) { /* full reduction: shared evenly by the tied extremes, as PyTorch */
      const double gv = *(const float *)nnl_tensor_data(gout[0]);
      nnl_tensor *eq = nnl_compare(NNL_CMP_EQ, x, out);
      nnl_tensor *cnt = eq ? nnl_reduce(NNL_RED_SUM, eq, -1, 0, NULL) : NULL;
      double c = cnt ? nnl_tensor_get(cnt, NULL) : 0;
      if (c > 0) {
        nnl_tensor *ef = nnl_to_dtype(eq, NNL_F32);
        nnl_tensor_release(z);
        z = ef ? nnl_binary_scalar(NNL_OP_MUL, ef, gv / c, 0) : NULL;
        nnl_tensor_release(ef);
      } else if (eq && cnt) { /* a NaN maximum equals nothing: its first position takes all */
        int64_t flat = (int64_t)n->p[1], pos[NNL_MAXDIM];
        for (int d = x->ndim - 1; d >= 0; d--) pos[d] = flat % x->shape[d], flat /= x->shape[d];
        nnl_tensor_set(z, pos, gv);
      } else {
        nnl_tensor_release(z);
        z = NULL;
      }
      nnl_tensor_release(eq), nnl_tensor_release(cnt);
    }
    gin[0] = z;
    break;
  }
  case NNL_RED_PROD: { /* out / x, fine away from zeros */
    nnl_tensor *o = spread(out, n);
    nnl_tensor *q = o ? nnl_binary(NNL_OP_DIV, o, x) : NULL;
    gin[0] = q ? nnl_binary(NNL_OP_MUL, g, q) : NULL;
    nnl_tensor_release(o), nnl_tensor_release(q);
    break;
  }
  case NNL_RED_VAR:
  case NNL_RED_STD: { /* var: 2 (x - mean) / (N - c);  std: (x - mean) / ((N - c) std) */
    double denom = count - n->p[2];
    nnl_tensor *mean = n->ip[10] < 0 ? nnl_reduce(NNL_RED_MEAN, x, -1, 0, NULL)
                                     : nnl_reduce(NNL_RED_MEAN, x, (int)n->ip[10], 1, NULL);
    nnl_tensor *d = mean ? nnl_binary(NNL_OP_SUB, x, mean) : NULL;
    nnl_tensor *s = NULL;
    if (d && op == NNL_RED_VAR) {
      s = nnl_binary_scalar(NNL_OP_MUL, d, 2.0 / denom, 0);
    } else if (d) {
      nnl_tensor *o = spread(out, n);
      nnl_tensor *q = o ? nnl_binary(NNL_OP_DIV, d, o) : NULL;
      s = q ? nnl_binary_scalar(NNL_OP_DIV, q, denom, 0) : NULL;
      nnl_tensor_release(o), nnl_tensor_release(q);
    }
    gin[0] = s ? nnl_binary(NNL_OP_MUL, g, s) : NULL;
    nnl_tensor_release(mean), nnl_tensor_release(d), nnl_tensor_release(s);
    break;
  }
  default: break;
  }
  nnl_tensor_release(g);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_reduce(nnl_redop op, nnl_tensor *a, int dim, int keepdim, nnl_tensor **indices) {
  const char *fn = red_fn(op);
  if (indices) *indices = NULL;
  if (dim >= a->ndim || (dim >= 0 && a->ndim == 0)) {
    nnl_set_error("%s: dimension %d out of range (expected 1 to %d)", fn, dim + 1, a->ndim);
    return NULL;
  }
  int arg = op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN;
  int extreme = op == NNL_RED_MAX || op == NNL_RED_MIN || arg;
  int64_t n_red = dim < 0 ? nnl_tensor_numel(a) : a->shape[dim];
  if (extreme && n_red == 0) {
    if (dim < 0)
      nnl_set_error("%s: cannot reduce an empty tensor (it has no elements to compare)", fn);
    else
      nnl_set_error("%s: cannot reduce dimension %d of size 0 (it has no elements to compare)",
                    fn, dim + 1);
    return NULL;
  }
  nnl_dtype in_dt = a->dtype;
  int float_op = op == NNL_RED_MEAN || op == NNL_RED_STD || op == NNL_RED_VAR;
  nnl_tensor *ca = (float_op && in_dt != NNL_F32) ? nnl_raw_to_dtype(a, NNL_F32) : nnl_tensor_retain(a);
  if (!ca) return NULL;
  nnl_dtype out_dt = arg ? NNL_I64
                     : ca->dtype == NNL_F32 ? NNL_F32
                     : (op == NNL_RED_SUM || op == NNL_RED_PROD) ? NNL_I64 : ca->dtype;
  nnl_tensor *out = NULL, *idx = NULL;
  int correction = 1;
  if (dim < 0) {
    double r;
    int64_t at = 0;
    if (nnl_k_reduce_all(op, ca, &r, &at, correction) == 0) {
      out = nnl_tensor_scalar(out_dt, arg ? (double)at : r);
      if (out && out_dt == NNL_I64 && (op == NNL_RED_SUM || op == NNL_RED_PROD))
        *(int64_t *)out->storage->data = at; /* exact, past 2^53 */
      if (out && out_dt == NNL_I64 && (op == NNL_RED_MAX || op == NNL_RED_MIN)) {
        int64_t pos = ca->offset, flat = at; /* the element itself: exact, past 2^53 */
        for (int d = ca->ndim - 1; d >= 0; d--)
          pos += flat % ca->shape[d] * ca->stride[d], flat /= ca->shape[d];
        *(int64_t *)out->storage->data = ((const int64_t *)ca->storage->data)[pos];
      }
    }
    if (out && (op == NNL_RED_MAX || op == NNL_RED_MIN) && indices)
      *indices = nnl_tensor_scalar(NNL_I64, (double)at);
    if (out && nnl_ag_needed(&a, 1) && out_dt == NNL_F32 && !arg) {
      nnl_node *n = nnl_node_new(red_node(op), bw_reduce, &a, 1);
      if (!n) goto fail;
      n->ip[0] = a->ndim;
      memcpy(&n->ip[1], a->shape, a->ndim * sizeof(int64_t));
      n->ip[10] = -1, n->ip[11] = 0, n->ip[12] = op;
      n->p[0] = (double)n_red, n->p[1] = (double)at, n->p[2] = correction;
      nnl_node_save(n, ca);
      nnl_node_save(n, out);
      nnl_node_save(n, NULL);
      nnl_node_set_output(n, out, 0);
      nnl_node_release(n);
    }
    nnl_tensor_release(ca);
    return out;
  }
  int64_t shape[NNL_MAXDIM];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (i != dim) shape[nd++] = a->shape[i];
    else if (keepdim) shape[nd++] = 1;
  }
  out = nnl_tensor_empty(out_dt, nd, shape);
  if (!out) goto fail;
  if (extreme && !arg) {
    idx = nnl_tensor_empty(NNL_I64, nd, shape);
    if (!idx) goto fail;
  }
  if (nnl_k_reduce_dim(op, out, idx, ca, dim, correction) != 0) goto fail;
  if (nnl_ag_needed(&a, 1) && out_dt == NNL_F32 && !arg) {
    nnl_node *n = nnl_node_new(red_node(op), bw_reduce, &a, 1);
    if (!n) goto fail;
    n->ip[0] = a->ndim;
    memcpy(&n->ip[1], a->shape, a->ndim * sizeof(int64_t));
    n->ip[10] = dim, n->ip[11] = keepdim, n->ip[12] = op;
    n->p[0] = (double)n_red, n->p[2] = correction;
    nnl_node_save(n, ca);
    nnl_node_save(n, out);
    nnl_node_save(n, idx);
    nnl_node_set_output(n, out, 0);
    nnl_node_release(n);
  }
  if (indices) *indices = idx;
  else nnl_tensor_release(idx);
  nnl_tensor_release(ca);
  return out;
fail:
  nnl_tensor_release(out);
  nnl_tensor_release(idx);
  nnl_tensor_release(ca);
  return NULL;
}
