/* linalg.c — matmul (1-D, 2-D, batched 3-D through nnl_sgemm, transposed views without copies)
 * and the differentiable indexing ops: index_select, gather, scatter_add, one_hot. */
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/blas.h"
#include "../kernels/tensorops.h"
#include "autograd.h"

/* A 2-D float view as sgemm operand: row-major with ld, or its transpose. 0 if neither. */
static int as_operand(const nnl_tensor *t, int *trans, int *ld) {
  int64_t r = t->shape[0], c = t->shape[1];
  int64_t s0 = r == 1 ? (c > 0 ? c : 1) : t->stride[0], s1 = c == 1 ? 1 : t->stride[1];
  if (s1 == 1 && s0 >= (c > 1 ? c : 1)) {
    *trans = 0, *ld = (int)s0;
    return 1;
  }
  s0 = r == 1 ? 1 : t->stride[0], s1 = c == 1 ? (r > 0 ? r : 1) : t->stride[1];
  if (s0 == 1 && s1 >= (r > 1 ? r : 1)) {
    *trans = 1, *ld = (int)s1;
    return 1;
  }
  return 0;
}

/* C (contiguous [M,N] slice at c) = beta*C + A @ B for 2-D float views. */
static int mm2(float *c, nnl_tensor *a, nnl_tensor *b, float beta) {
  nnl_tensor *ca = NULL, *cb = NULL;
  int ta, tb, lda, ldb;
  if (!as_operand(a, &ta, &lda)) {
    if (!(ca = nnl_raw_clone(a))) return -1;
    a = ca, ta = 0, lda = (int)(a->shape[1] > 0 ? a->shape[1] : 1);
  }
  if (!as_operand(b, &tb, &ldb)) {
    if (!(cb = nnl_raw_clone(b))) {
      nnl_tensor_release(ca);
      return -1;
    }
    b = cb, tb = 0, ldb = (int)(b->shape[1] > 0 ? b->shape[1] : 1);
  }
  int M = (int)a->shape[0], K = (int)a->shape[1], N = (int)b->shape[1];
  nnl_sgemm(ta, tb, M, N, K, 1.0f, nnl_tensor_data(a), lda, nnl_tensor_data(b), ldb, beta, c,
            N > 0 ? N : 1);
  nnl_tensor_release(ca);
  nnl_tensor_release(cb);
  return 0;
}

static nnl_tensor *matmul_raw(nnl_tensor *a, nnl_tensor *b);

static int bw_matmul(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *a = n->saved[0], *b = n->saved[1], *g = gout[0];
  /* promote 1-D operands to matrices so one rule serves every case */
  nnl_tensor *A = a->ndim == 1 ? nnl_raw_unsqueeze(a, 0) : nnl_tensor_retain(a);
  nnl_tensor *B = b->ndim == 1 ? nnl_raw_unsqueeze(b, 1) : nnl_tensor_retain(b);
  nnl_tensor *G = NULL;
  int rc = -1;
  if (!A || !B) goto done;
  {
    int64_t gs[3];
    int gd = 0;
    int64_t ba = A->ndim == 3 ? A->shape[0] : 1, bb = B->ndim == 3 ? B->shape[0] : 1;
    if (A->ndim == 3 || B->ndim == 3) gs[gd++] = ba > bb ? ba : bb; /* broadcast batch */
    gs[gd++] = A->shape[A->ndim - 2];
    gs[gd++] = B->shape[B->ndim - 1];
    G = nnl_raw_view(g, gd, gs, "matmul backward");
  }
  if (!G) goto done;
  if (nnl_node_input_needs(n, 0)) { /* dA = G @ B^T, summed over a broadcast batch */
    nnl_tensor *Bt = nnl_raw_transpose(B, B->ndim - 2, B->ndim - 1);
    nnl_tensor *ga = Bt ? matmul_raw(G, Bt) : NULL;
    nnl_tensor_release(Bt);
    if (!ga) goto done;
    if (!nnl_same_shape(ga, A)) { /* A's batch was broadcast (missing or of size 1) */
      nnl_tensor *s = nnl_sum_to(ga, A->ndim, A->shape);
      nnl_tensor_release(ga);
      if (!(ga = s)) goto done;
    }
    gin[0] = nnl_raw_view(ga, a->ndim, a->shape, "matmul backward");
    nnl_tensor_release(ga);
    if (!gin[0]) goto done;
  }
  if (nnl_node_input_needs(n, 1)) { /* dB = A^T @ G */
    nnl_tensor *gb;
    if (B->ndim == 2 && A->ndim == 3) { /* fold the batch into rows: [K, B*M] @ [B*M, N] */
      int64_t s1[2] = {A->shape[0] * A->shape[1], A->shape[2]}, s2[2] = {s1[0], G->shape[2]};
      nnl_tensor *Ac = nnl_raw_contiguous(A);
      nnl_tensor *Af = Ac ? nnl_raw_view(Ac, 2, s1, "matmul backward") : NULL;
      nnl_tensor *Gf = Af ? nnl_raw_view(G, 2, s2, "matmul backward") : NULL;
      nnl_tensor *At = Gf ? nnl_raw_transpose(Af, 0, 1) : NULL;
      gb = At ? matmul_raw(At, Gf) : NULL;
      nnl_tensor_release(Ac), nnl_tensor_release(Af), nnl_tensor_release(Gf), nnl_tensor_release(At);
    } else {
      nnl_tensor *At = nnl_raw_transpose(A, A->ndim - 2, A->ndim - 1);
      gb = At ? matmul_raw(At, G) : NULL;
      nnl_tensor_release(At);
      if (gb && !nnl_same_shape(gb, B)) {
        nnl_tensor *s = nnl_sum_to(gb, B->ndim, B->shape);
        nnl_tensor_release(gb);
        gb = s;
      }
    }
    if (!gb) goto done;
    gin[1] = nnl_raw_view(gb, b->ndim, b->shape, "matmul backward");
    nnl_tensor_release(gb);
    if (!gin[1]) goto done;
  }
  rc = 0;
done:
  nnl_tensor_release(A), nnl_tensor_release(B), nnl_tensor_release(G);
  return rc;
}

static nnl_tensor *matmul_raw(nnl_tensor *a, nnl_tensor *b) {
  char x[160], y[160];
  if (a->ndim < 1 || a->ndim > 3 || b->ndim < 1 || b->ndim > 3) {
    nnl_set_error("matmul: expected 1-D, 2-D or 3-D tensors, got %s @ %s",
                  nnl_shape_str(a, x, sizeof x), nnl_shape_str(b, y, sizeof y));
    return NULL;
  }
  int64_t K = a->shape[a->ndim - 1], Kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
  int64_t batch_a = a->ndim == 3 ? a->shape[0] : 1, batch_b = b->ndim == 3 ? b->shape[0] : 1;
  if (K != Kb || (a->ndim == 3 && b->ndim == 3 && batch_a != batch_b && batch_a != 1 && batch_b != 1)) {
    nnl_set_error("matmul: size mismatch, %s @ %s", nnl_shape_str(a, x, sizeof x),
                  nnl_shape_str(b, y, sizeof y));
    return NULL;
  }
  if (a->dtype != NNL_F32 || b->dtype != NNL_F32) {
    nnl_set_error("matmul: expected float32 tensors, got %s @ %s", nnl_dtype_name(a->dtype),
                  nnl_dtype_name(b->dtype));
    return NULL;
  }
  if (K > 0x7fffffff || a->shape[0] > 0x7fffffff || b->shape[b->ndim - 1] > 0x7fffffff) {
    nnl_set_error("matmul: dimensions too large for BLAS");
    return NULL;
  }
  nnl_tensor *A = a->ndim == 1 ? nnl_raw_unsqueeze(a, 0) : nnl_tensor_retain(a);
  nnl_tensor *B = b->ndim == 1 ? nnl_raw_unsqueeze(b, 1) : nnl_tensor_retain(b);
  nnl_tensor *out = NULL;
  if (!A || !B) goto done;
  int64_t M = A->shape[A->ndim - 2], N = B->shape[B->ndim - 1];
  int64_t batch = batch_a > batch_b ? batch_a : batch_b;
  int64_t shape[3];
  int nd = 0;
  if (a->ndim == 3 || b->ndim == 3) shape[nd++] = batch;
  if (a->ndim > 1) shape[nd++] = M;
  if (b->ndim > 1) shape[nd++] = N;
  out = nnl_tensor_empty(NNL_F32, nd, shape);
  if (!out) goto done;
  float *c = out->storage->data;
  if (A->ndim == 3 && B->ndim == 2 && nnl_tensor_is_contiguous(A)) { /* one big sgemm */
    int64_t s2[2] = {batch * M, K};
    nnl_tensor *Af = nnl_raw_view(A, 2, s2, "matmul");
    int rc = Af ? mm2(c, Af, B, 0.0f) : -1;
    nnl_tensor_release(Af);
    if (rc) goto fail;
    goto done;
  }
  for (int64_t i = 0; i < batch; i++) {
    nnl_tensor *ai = A->ndim == 3 ? nnl_raw_select(A, 0, batch_a == 1 ? 0 : i) : nnl_tensor_retain(A);
    nnl_tensor *bi = B->ndim == 3 ? nnl_raw_select(B, 0, batch_b == 1 ? 0 : i) : nnl_tensor_retain(B);
    int rc = ai && bi ? mm2(c + i * M * N, ai, bi, 0.0f) : -1;
    nnl_tensor_release(ai), nnl_tensor_release(bi);
    if (rc) goto fail;
  }
  goto done;
fail:
  nnl_tensor_release(out);
  out = NULL;
done:
  nnl_tensor_release(A), nnl_tensor_release(B);
  return out;
}

nnl_tensor *nnl_matmul(nnl_tensor *a, nnl_tensor *b) {
  nnl_tensor *out = matmul_raw(a, b);
  nnl_tensor *in[2] = {a, b};
  if (!out || !nnl_ag_needed(in, 2)) return out;
  nnl_node *n = nnl_node_new("MmBackward", bw_matmul, in, 2);
  if (!n) {
    nnl_tensor_release(out);
    return NULL;
  }
  nnl_node_save(n, a);
  nnl_node_save(n, b);
  nnl_node_set_output(n, out, 0);
  nnl_node_release(n);
  return out;
}

/* ---- indexing ---- */

/* The kernels report indices and dims 0-based; users see both 1-based, as everywhere in
 * nnlua (the Lua face subtracts 1 before calling). Rewrites the kernel's message when an
 * index is out of range; leaves it alone otherwise. Error path only. */
static void range_error(const char *fn, const nnl_tensor *index, int dim, int64_t size) {
  int64_t n = nnl_tensor_numel(index), idx[NNL_MAXDIM] = {0};
  for (int64_t i = 0; i < n; i++) {
    /* read the int64 itself: through a double, values near 2^63 would not convert back */
    int64_t v = -1, off = 0;
    if (index->dtype == NNL_I64) {
      for (int d = 0; d < index->ndim; d++) off += idx[d] * index->stride[d];
      v = ((const int64_t *)nnl_tensor_data(index))[off];
    } else {
      double dv = nnl_tensor_get(index, idx);
      if (dv > -9e18 && dv < 9e18) v = (int64_t)dv;
    }
    if (v < 0 || v >= size) {
      /* the 1-based value the user gave; unsigned, so INT64_MAX (from INT64_MIN - 1) wraps back */
      long long shown = (long long)((uint64_t)v + 1);
      if (dim < 0)
        nnl_set_error("%s: class %lld is out of range for %lld classes (expected 1 to %lld)", fn,
                      shown, (long long)size, (long long)size);
      else
        nnl_set_error("%s: index %lld is out of range for dimension %d of size %lld", fn,
                      shown, dim + 1, (long long)size);
      return;
    }
    for (int d = index->ndim - 1; d >= 0; d--) {
      if (++idx[d] < index->shape[d]) break;
      idx[d] = 0;
    }
  }
}

static int check_index(nnl_tensor *index, const char *fn) {
  if (index->dtype != NNL_I64) {
    nnl_set_error("%s: index must be int64, got %s", fn, nnl_dtype_name(index->dtype));
    return -1;
  }
  return 0;
}

static int bw_index_select(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *z = nnl_tensor_zeros(NNL_F32, (int)n->ip[0], &n->ip[1]);
  if (!z) return -1;
  if (nnl_k_index_add(z, (int)n->ip[10], n->saved[0], gout[0]) != 0) {
    nnl_tensor_release(z);
    return -1;
  }
  gin[0] = z;
  return 0;
}

static nnl_tensor *record_index(nnl_tensor *out, nnl_tensor *a, nnl_tensor *index, int dim,
                                const char *name, nnl_backward_fn bw) {
  if (!out || a->dtype != NNL_F32 || !nnl_ag_needed(&a, 1)) return out;
  nnl_node *n = nnl_node_new(name, bw, &a, 1);
  if (!n) {
    nnl_tensor_release(out);
    return NULL;
  }
  n->ip[0] = a->ndim;
  memcpy(&n->ip[1], a->shape, a->ndim * sizeof(int64_t));
  n->ip[10] = dim;
  nnl_node_save(n, index);
  nnl_node_set_output(n, out, 0);
  nnl_node_release(n);
  return out;
}

nnl_tensor *nnl_index_select(nnl_tensor *a, int dim, nnl_tensor *index) {
  if (check_index(index, "index_select")) return NULL;
  if (dim < 0 || dim >= a->ndim || index->ndim > 1) {
    nnl_set_error(index->ndim > 1 ? "index_select: index must be 1-D"
                                  : "index_select: dimension %d out of range (expected 1 to %d)",
                  dim + 1, a->ndim);
    return NULL;
  }
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = nnl_tensor_numel(index);
  nnl_tensor *out = nnl_tensor_empty(a->dtype, a->ndim, shape);
  if (out && nnl_k_index_select(out, a, dim, index) != 0) {
    range_error("index_select", index, dim, a->shape[dim]);
    nnl_tensor_release(out);
    return NULL;
  }
  return record_index(out, a, index, dim, "IndexSelectBackward", bw_index_select);
}

static int bw_gather(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *z = nnl_tensor_zeros(NNL_F32, (int)n->ip[0], &n->ip[1]);
  if (!z) return -1;
  if (nnl_k_scatter_add(z, (int)n->ip[10], n->saved[0], gout[0]) != 0) {
    nnl_tensor_release(z);
    return -1;
  }
  gin[0] = z;
  return 0;
}

static int check_like(nnl_tensor *a, nnl_tensor *index, int dim, const char *fn) {
  char x[160], y[160];
  if (check_index(index, fn)) return -1;
  if (dim < 0 || dim >= a->ndim) {
    nnl_set_error("%s: dimension %d out of range (expected 1 to %d)", fn, dim + 1, a->ndim);
    return -1;
  }
  if (index->ndim != a->ndim) {
    nnl_set_error("%s: index must have as many dimensions as the input, got %s for %s", fn,
                  nnl_shape_str(index, x, sizeof x), nnl_shape_str(a, y, sizeof y));
    return -1;
  }
  for (int d = 0; d < a->ndim; d++)
    if (d != dim && index->shape[d] > a->shape[d]) {
      nnl_set_error("%s: index size %s exceeds input size %s in dimension %d", fn,
                    nnl_shape_str(index, x, sizeof x), nnl_shape_str(a, y, sizeof y), d + 1);
      return -1;
    }
  return 0;
}

nnl_tensor *nnl_gather(nnl_tensor *a, int dim, nnl_tensor *index) {
  if (check_like(a, index, dim, "gather")) return NULL;
  nnl_tensor *out = nnl_tensor_empty(a->dtype, index->ndim, index->shape);
  if (out && nnl_k_gather(out, a, dim, index) != 0) {
    range_error("gather", index, dim, a->shape[dim]);
    nnl_tensor_release(out);
    return NULL;
  }
  return record_index(out, a, index, dim, "GatherBackward", bw_gather);
}

static int bw_scatter_add(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  if (nnl_node_input_needs(n, 0)) gin[0] = nnl_tensor_retain(gout[0]);
  if (nnl_node_input_needs(n, 2)) {
    nnl_tensor *idx = n->saved[0];
    nnl_tensor *g = nnl_tensor_empty(NNL_F32, idx->ndim, idx->shape);
    if (!g || nnl_k_gather(g, gout[0], (int)n->ip[10], idx) != 0) {
      nnl_tensor_release(g);
      return -1;
    }
    if (memcmp(idx->shape, &n->ip[1], idx->ndim * sizeof(int64_t))) {
      /* src is larger than index: its elements outside index's block got no use, so zero */
      nnl_tensor *z = nnl_tensor_zeros(NNL_F32, (int)n->ip[0], &n->ip[1]);
      nnl_tensor *part = z ? nnl_raw_alias(z, idx->ndim, idx->shape, z->stride, 0) : NULL;
      int rc = part ? nnl_copy_(part, g) : -1;
      nnl_tensor_release(part), nnl_tensor_release(g);
      if (rc) {
        nnl_tensor_release(z);
        return -1;
      }
      g = z;
    }
    gin[2] = g;
  }
  return 0;
}

nnl_tensor *nnl_scatter_add(nnl_tensor *a, int dim, nnl_tensor *index, nnl_tensor *src) {
  char x[160], y[160];
  if (check_like(a, index, dim, "scatter_add")) return NULL;
  if (src->dtype != a->dtype || src->ndim != index->ndim) {
    nnl_set_error("scatter_add: src must be %s with %d dimensions, got %s %s",
                  nnl_dtype_name(a->dtype), index->ndim, nnl_dtype_name(src->dtype),
                  nnl_shape_str(src, x, sizeof x));
    return NULL;
  }
  for (int d = 0; d < src->ndim; d++)
    if (index->shape[d] > src->shape[d]) {
      nnl_set_error("scatter_add: index size %s exceeds src size %s",
                    nnl_shape_str(index, x, sizeof x), nnl_shape_str(src, y, sizeof y));
      return NULL;
    }
  nnl_tensor *out = nnl_raw_clone(a);
  if (out && nnl_k_scatter_add(out, dim, index, src) != 0) {
    range_error("scatter_add", index, dim, a->shape[dim]);
    nnl_tensor_release(out);
    return NULL;
  }
  nnl_tensor *in[3] = {a, NULL, src};
  if (!out || a->dtype != NNL_F32 || !nnl_ag_needed(in, 3)) return out;
  nnl_node *n = nnl_node_new("ScatterAddBackward", bw_scatter_add, in, 3);
  if (!n) {
    nnl_tensor_release(out);
    return NULL;
  }
  n->ip[0] = src->ndim; /* src's shape: its gradient may be larger than index */
  memcpy(&n->ip[1], src->shape, src->ndim * sizeof(int64_t));
  n->ip[10] = dim;
  nnl_node_save(n, index);
  nnl_node_set_output(n, out, 0);
  nnl_node_release(n);
  return out;
}

nnl_tensor *nnl_one_hot(nnl_tensor *index, int64_t num_classes) {
  if (check_index(index, "one_hot")) return NULL;
  if (index->ndim >= NNL_MAXDIM || num_classes < 1) {
    nnl_set_error("one_hot: num_classes must be positive, got %lld", (long long)num_classes);
    return NULL;
  }
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, index->shape, index->ndim * sizeof *shape);
  shape[index->ndim] = num_classes;
  nnl_tensor *out = nnl_tensor_zeros(NNL_I64, index->ndim + 1, shape);
  if (out && nnl_k_one_hot(out, index, num_classes) != 0) {
    range_error("one_hot", index, -1, num_classes);
    nnl_tensor_release(out);
    return NULL;
  }
  return out;
}
