/* views.c — differentiable views and copies: view/reshape, transpose, permute, narrow, select,
 * squeeze/unsqueeze, expand, contiguous, clone, detach, dtype conversion, cat, stack. */
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "autograd.h"

/* Record a one-input node on out; ip[0..] holds the input shape. Releases out on failure. */
static nnl_tensor *record1(nnl_tensor *out, nnl_tensor *in, const char *name, nnl_backward_fn bw,
                           const int64_t *ip, int nip) {
  if (!out || !nnl_ag_needed(&in, 1) || in->dtype != NNL_F32) return out;
  nnl_node *n = nnl_node_new(name, bw, &in, 1);
  if (!n) {
    nnl_tensor_release(out);
    return NULL;
  }
  n->ip[0] = in->ndim;
  memcpy(&n->ip[1], in->shape, in->ndim * sizeof(int64_t));
  for (int i = 0; i < nip; i++) n->ip[9 + i] = ip[i];
  nnl_node_set_output(n, out, 0);
  nnl_node_release(n);
  return out;
}

static int bw_reshape(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  gin[0] = nnl_raw_view(gout[0], (int)n->ip[0], &n->ip[1], "view backward");
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_view(nnl_tensor *t, int ndim, const int64_t *shape) {
  return record1(nnl_raw_view(t, ndim, shape, "view"), t, "ViewBackward", bw_reshape, NULL, 0);
}

nnl_tensor *nnl_reshape(nnl_tensor *t, int ndim, const int64_t *shape) {
  nnl_tensor *v = nnl_raw_view(t, ndim, shape, "reshape"); /* no copy when strides allow */
  if (v) return record1(v, t, "ReshapeBackward", bw_reshape, NULL, 0);
  nnl_tensor *c = nnl_raw_contiguous(t);
  if (!c) return NULL;
  nnl_tensor *out = nnl_raw_view(c, ndim, shape, "reshape");
  nnl_tensor_release(c);
  return record1(out, t, "ReshapeBackward", bw_reshape, NULL, 0);
}

nnl_tensor *nnl_squeeze(nnl_tensor *t, int dim) {
  return record1(nnl_raw_squeeze(t, dim), t, "SqueezeBackward", bw_reshape, NULL, 0);
}

nnl_tensor *nnl_unsqueeze(nnl_tensor *t, int dim) {
  return record1(nnl_raw_unsqueeze(t, dim), t, "UnsqueezeBackward", bw_reshape, NULL, 0);
}

static int bw_transpose(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  gin[0] = nnl_raw_transpose(gout[0], (int)n->ip[9], (int)n->ip[10]);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_transpose(nnl_tensor *t, int d0, int d1) {
  int64_t p[2] = {d0, d1};
  return record1(nnl_raw_transpose(t, d0, d1), t, "TransposeBackward", bw_transpose, p, 2);
}

static int bw_permute(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int inv[NNL_MAXDIM];
  for (int i = 0; i < (int)n->ip[0]; i++) inv[n->ip[9 + i]] = i;
  gin[0] = nnl_raw_permute(gout[0], inv);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_permute(nnl_tensor *t, const int *perm) {
  int64_t p[NNL_MAXDIM];
  for (int i = 0; i < t->ndim; i++) p[i] = perm[i];
  return record1(nnl_raw_permute(t, perm), t, "PermuteBackward", bw_permute, p, t->ndim);
}

/* gin = zeros(input); gin.narrow/select(...) = gout */
static int bw_slice(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *z = nnl_tensor_zeros(NNL_F32, (int)n->ip[0], &n->ip[1]);
  if (!z) return -1;
  int dim = (int)n->ip[9];
  nnl_tensor *part = n->ip[11] < 0 ? nnl_raw_select(z, dim, n->ip[10])
                                   : nnl_raw_narrow(z, dim, n->ip[10], n->ip[11]);
  if (!part || nnl_copy_(part, gout[0])) {
    nnl_tensor_release(part);
    nnl_tensor_release(z);
    return -1;
  }
  nnl_tensor_release(part);
  gin[0] = z;
  return 0;
}

nnl_tensor *nnl_narrow(nnl_tensor *t, int dim, int64_t start, int64_t len) {
  int64_t p[3] = {dim, start, len};
  return record1(nnl_raw_narrow(t, dim, start, len), t, "NarrowBackward", bw_slice, p, 3);
}

nnl_tensor *nnl_select(nnl_tensor *t, int dim, int64_t index) {
  int64_t p[3] = {dim, index, -1};
  return record1(nnl_raw_select(t, dim, index), t, "SelectBackward", bw_slice, p, 3);
}

static int bw_expand(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  gin[0] = nnl_sum_to(gout[0], (int)n->ip[0], &n->ip[1]);
  return gin[0] ? 0 : -1;
}

nnl_tensor *nnl_expand(nnl_tensor *t, int ndim, const int64_t *shape) {
  return record1(nnl_raw_expand(t, ndim, shape, "expand"), t, "ExpandBackward", bw_expand, NULL, 0);
}

static int bw_identity(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  (void)n;
  gin[0] = nnl_tensor_retain(gout[0]);
  return 0;
}

nnl_tensor *nnl_contiguous(nnl_tensor *t) {
  if (nnl_tensor_is_contiguous(t)) return nnl_tensor_retain(t);
  return record1(nnl_raw_clone(t), t, "CloneBackward", bw_identity, NULL, 0);
}

nnl_tensor *nnl_clone(nnl_tensor *t) {
  return record1(nnl_raw_clone(t), t, "CloneBackward", bw_identity, NULL, 0);
}

nnl_tensor *nnl_detach(nnl_tensor *t) {
  return nnl_raw_alias(t, t->ndim, t->shape, t->stride, t->offset);
}

nnl_tensor *nnl_to_dtype(nnl_tensor *t, nnl_dtype dt) {
  nnl_tensor *out = nnl_raw_to_dtype(t, dt);
  if (dt != NNL_F32) return out;
  return record1(out, t, "ToCopyBackward", bw_identity, NULL, 0);
}

/* ---- cat / stack ---- */

static int bw_cat(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int dim = (int)n->ip[0];
  const int64_t *len = n->ctx;
  int64_t start = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    if (nnl_node_input_needs(n, i)) {
      nnl_tensor *part = nnl_raw_narrow(gout[0], dim, start, len[i]);
      if (!part) return -1;
      if (n->ip[1]) { /* stack: drop the new dim */
        gin[i] = nnl_raw_squeeze(part, dim);
        nnl_tensor_release(part);
        if (!gin[i]) return -1;
      } else {
        gin[i] = part;
      }
    }
    start += len[i];
  }
  return 0;
}

static nnl_tensor *cat_impl(nnl_tensor **ts, int n, int dim, int stack) {
  char a[160], b[160];
  const char *fn = stack ? "stack" : "cat";
  if (n < 1) {
    nnl_set_error("%s: expected a non-empty list of tensors", fn);
    return NULL;
  }
  nnl_tensor *ref = ts[0];
  int nd = ref->ndim + stack;
  if (dim < 0 || dim >= nd || nd > NNL_MAXDIM) {
    nnl_set_error("%s: dimension %d out of range (expected 1 to %d)", fn, dim + 1, nd);
    return NULL;
  }
  int64_t shape[NNL_MAXDIM];
  int64_t *len = malloc(n * sizeof *len);
  if (!len) {
    nnl_set_error("out of memory");
    return NULL;
  }
  for (int k = 0, j = 0; k < nd; k++) shape[k] = (stack && k == dim) ? 0 : ref->shape[j++];
  shape[dim] = 0; /* summed over the inputs below */
  for (int i = 0; i < n; i++) {
    nnl_tensor *t = ts[i];
    int bad = t->dtype != ref->dtype || t->ndim != ref->ndim;
    for (int k = 0; !bad && k < t->ndim; k++)
      bad = t->shape[k] != ref->shape[k] && (stack || k != dim);
    if (bad) {
      nnl_set_error("%s: tensor %d has size %s (%s) but tensor 1 has size %s (%s)%s", fn, i + 1,
                    nnl_shape_str(t, a, sizeof a), nnl_dtype_name(t->dtype),
                    nnl_shape_str(ref, b, sizeof b), nnl_dtype_name(ref->dtype),
                    stack ? "" : "; sizes must match except in the cat dimension");
      free(len);
      return NULL;
    }
    len[i] = stack ? 1 : t->shape[dim];
    shape[dim] += len[i];
  }
  nnl_tensor *out = nnl_tensor_empty(ref->dtype, nd, shape);
  if (!out) {
    free(len);
    return NULL;
  }
  int64_t start = 0;
  for (int i = 0; i < n; i++) {
    nnl_tensor *part = nnl_raw_narrow(out, dim, start, len[i]);
    nnl_tensor *src = stack ? nnl_raw_unsqueeze(ts[i], dim) : nnl_tensor_retain(ts[i]);
    int rc = part && src ? nnl_copy_(part, src) : -1;
    nnl_tensor_release(part);
    nnl_tensor_release(src);
    if (rc) {
      nnl_tensor_release(out);
      free(len);
      return NULL;
    }
    start += len[i];
  }
  if (ref->dtype != NNL_F32 || !nnl_ag_needed(ts, n)) {
    free(len);
    return out;
  }
  nnl_node *node = nnl_node_new(stack ? "StackBackward" : "CatBackward", bw_cat, ts, n);
  if (!node) {
    free(len);
    nnl_tensor_release(out);
    return NULL;
  }
  node->ip[0] = dim;
  node->ip[1] = stack;
  node->ctx = len;
  node->free_ctx = free;
  nnl_node_set_output(node, out, 0);
  nnl_node_release(node);
  return out;
}

nnl_tensor *nnl_cat(nnl_tensor **ts, int n, int dim) { return cat_impl(ts, n, dim, 0); }
nnl_tensor *nnl_stack(nnl_tensor **ts, int n, int dim) { return cat_impl(ts, n, dim, 1); }
