/* index.c — index_select, gather, scatter_add, index_add, one_hot and the max/min-with-dim backward.
 * Every index is checked before anything is written; scatters run without races or atomics. */
#include "tensorops.h"

#include <omp.h>
#include <string.h>

/* ---- validation ---- */

typedef struct {
  int64_t size, bad, found;
} checkctx;

static void check_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  checkctx *c = ctx;
  const int64_t *ix = (const int64_t *)p[0];
  for (int64_t i = 0; i < n && !c->found; i++)
    if (ix[i * s[0]] < 0 || ix[i * s[0]] >= c->size) c->found = 1, c->bad = ix[i * s[0]];
}

/* Serial scan so the first bad index (row-major) is the one reported. */
static int check_index(const char *what, const nnl_tensor *index, int dim, int64_t size) {
  if (index->dtype != NNL_I64) {
    nnl_set_error("%s: index must be int64 but is %s", what, nnl_dtype_name(index->dtype));
    return 0;
  }
  const nnl_tensor *ops[1] = {index};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 1, ops);
  checkctx c = {size, 0, 0};
  if (it.numel > 0) nnl_k_iter_range(&it, 0, it.numel, check_run, &c);
  if (!c.found) return 1;
  if (dim < 0)
    nnl_set_error("%s: class %lld is out of range for %lld classes", what, (long long)c.bad,
                  (long long)size);
  else
    nnl_set_error("%s: index %lld is out of range for dimension %d of size %lld", what,
                  (long long)c.bad, dim, (long long)size);
  return 0;
}

static int check_dim(const char *what, int dim, int ndim) {
  if (dim >= 0 && dim < ndim) return 1;
  nnl_set_error("%s: dim %d is out of range for a %d-d tensor", what, dim, ndim);
  return 0;
}

static int check_same_dtype(const char *what, const nnl_tensor *x, const nnl_tensor *y,
                            const char *xn, const char *yn) {
  if (x->dtype == y->dtype) return 1;
  nnl_set_error("%s: %s is %s but %s is %s", what, xn, nnl_dtype_name(x->dtype), yn,
                nnl_dtype_name(y->dtype));
  return 0;
}

/* ---- gather and index_select: out[p] = a[p with coordinate dim replaced by index[p]] ---- */

typedef struct {
  int64_t isz, adim; /* item size, a's stride along dim */
} gatherctx;

/* p: out, index, a (a's stride along dim zeroed: the index supplies that coordinate) */
static void gather_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const gatherctx *c = ctx;
  const int64_t *ix = (const int64_t *)p[1];
  const int64_t so = s[0], si = s[1], sa = s[2];
  if (si == 0) { /* one index for the whole run: a row copy (embedding lookups) */
    const char *src = p[2] + ix[0] * c->adim * c->isz;
    if (so == 1 && sa == 1) {
      memcpy(p[0], src, (size_t)(n * c->isz));
      return;
    }
    for (int64_t i = 0; i < n; i++)
      memcpy(p[0] + i * so * c->isz, src + i * sa * c->isz, (size_t)c->isz);
    return;
  }
  if (c->isz == 4) {
    uint32_t *o = (uint32_t *)p[0];
    const uint32_t *a = (const uint32_t *)p[2];
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa + ix[i * si] * c->adim];
  } else if (c->isz == 8) {
    uint64_t *o = (uint64_t *)p[0];
    const uint64_t *a = (const uint64_t *)p[2];
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa + ix[i * si] * c->adim];
  } else {
    uint8_t *o = (uint8_t *)p[0];
    const uint8_t *a = (const uint8_t *)p[2];
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa + ix[i * si] * c->adim];
  }
}

/* index: any view with out's shape; a's dims other than dim must cover out's. */
static void gather_core(nnl_tensor *out, const nnl_tensor *a, int dim, const nnl_tensor *index) {
  nnl_tensor av = *a;
  av.ndim = out->ndim;
  memcpy(av.shape, out->shape, sizeof av.shape);
  av.stride[dim] = 0;
  const nnl_tensor *ops[3] = {out, index, &av};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 3, ops);
  gatherctx c = {nnl_k_itemsize(a->dtype), a->stride[dim]};
  nnl_k_iter_run(&it, gather_run, &c, it.numel);
}

/* Whole rows along dim 0 of contiguous tensors: a batch cut from a data set. The rows sit far
 * apart in a large table, so a few rows ahead are prefetched while one is copied. */
#define ROWS_AHEAD 4

static void select_rows(char *out, const char *a, const int64_t *ix, int64_t si, int64_t L,
                        int64_t rowb) {
#pragma omp parallel for schedule(static) if (L * rowb > 4 * NNL_PAR_MIN)
  for (int64_t i = 0; i < L; i++) {
    if (i + ROWS_AHEAD < L) {
      const char *next = a + ix[(i + ROWS_AHEAD) * si] * rowb;
      for (int64_t b = 0; b < rowb; b += 64) __builtin_prefetch(next + b);
    }
    memcpy(out + i * rowb, a + ix[i * si] * rowb, (size_t)rowb);
  }
}

int nnl_k_index_select(nnl_tensor *out, const nnl_tensor *a, int dim, const nnl_tensor *index) {
  const char *what = "index_select";
  if (!check_dim(what, dim, a->ndim) || !check_same_dtype(what, out, a, "out", "a")) return -1;
  if (index->ndim > 1) {
    nnl_set_error("%s: index must be 1-d but has %d dims", what, index->ndim);
    return -1;
  }
  const int64_t L = nnl_k_numel(index);
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = L;
  if (!nnl_k_check_shape(what, "out", out, a->ndim, shape) ||
      !check_index(what, index, dim, a->shape[dim]))
    return -1;
  if (dim == 0 && nnl_k_is_contiguous(a) && nnl_k_is_contiguous(out) && a->shape[0] > 0) {
    int64_t isz = nnl_k_itemsize(a->dtype), rowb = nnl_k_numel(a) / a->shape[0] * isz;
    select_rows((char *)out->storage->data + out->offset * isz,
                (const char *)a->storage->data + a->offset * isz,
                (const int64_t *)index->storage->data + index->offset,
                index->ndim == 1 ? index->stride[0] : 0, L, rowb);
    return 0;
  }
  nnl_tensor iv = *index; /* the 1-d index stretched over out's shape */
  iv.ndim = out->ndim;
  memcpy(iv.shape, out->shape, sizeof iv.shape);
  memset(iv.stride, 0, sizeof iv.stride);
  iv.stride[dim] = index->ndim == 1 ? index->stride[0] : 0;
  gather_core(out, a, dim, &iv);
  return 0;
}

/* index fits inside t in every dim (every dim but skip, unless skip < 0). */
static int check_fits(const char *what, const nnl_tensor *index, const nnl_tensor *t,
                      const char *tname, int skip) {
  int ok = index->ndim == t->ndim;
  for (int d = 0; ok && d < t->ndim; d++)
    if (d != skip && index->shape[d] > t->shape[d]) ok = 0;
  if (ok) return 1;
  char b1[160], b2[160];
  nnl_set_error("%s: index of shape %s does not fit %s of shape %s%s", what,
                nnl_shape_str(index, b1, sizeof b1), tname, nnl_shape_str(t, b2, sizeof b2),
                skip >= 0 ? " outside dim" : "");
  return 0;
}

int nnl_k_gather(nnl_tensor *out, const nnl_tensor *a, int dim, const nnl_tensor *index) {
  const char *what = "gather";
  if (!check_dim(what, dim, a->ndim) || !check_same_dtype(what, out, a, "out", "a") ||
      !check_fits(what, index, a, "a", dim) ||
      !nnl_k_check_shape(what, "out", out, index->ndim, index->shape) ||
      !check_index(what, index, dim, a->shape[dim]))
    return -1;
  gather_core(out, a, dim, index);
  return 0;
}

/* ---- scatters: out[p with coordinate dim = index[p]] += src[p] over index's positions ---- */

/* Threads take whole lines along dim: two positions can only hit the same element of out
 * when they differ in coordinate dim alone, so each element has one owner, and the owner
 * adds in increasing order along dim. */
static void scatter_core(nnl_tensor *out, int dim, const nnl_tensor *index,
                         const nnl_tensor *src) {
  const nnl_tensor *t[3] = {out, index, src};
  int nd = 0;
  int64_t shape[NNL_MAXDIM], st[3][NNL_MAXDIM], nlines = 1;
  for (int d = 0; d < index->ndim; d++) {
    if (d == dim || index->shape[d] == 1) continue;
    shape[nd] = index->shape[d];
    for (int k = 0; k < 3; k++) st[k][nd] = t[k]->stride[d];
    nlines *= shape[nd++];
  }
  const int64_t J = index->shape[dim], jo = out->stride[dim], ji = index->stride[dim],
                js = src->stride[dim];
  float *of = (float *)out->storage->data + out->offset;
  int64_t *oi = (int64_t *)out->storage->data + out->offset;
  const int64_t *ix = (const int64_t *)index->storage->data + index->offset;
  const float *sf = (const float *)src->storage->data + src->offset;
  const int64_t *si = (const int64_t *)src->storage->data + src->offset;
  const int is_f32 = out->dtype == NNL_F32;
  if (nlines * J == 0) return;
#pragma omp parallel if(nlines * J > NNL_PAR_MIN && nlines > 1)
  {
    int64_t nt = omp_get_num_threads(), t0 = omp_get_thread_num();
    int64_t q = nlines / nt, rem = nlines % nt;
    int64_t lo = t0 * q + (t0 < rem ? t0 : rem), hi = lo + q + (t0 < rem);
    int64_t idx[NNL_MAXDIM], off[3] = {0, 0, 0}, r = lo;
    for (int d = nd - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
      for (int k = 0; k < 3; k++) off[k] += idx[d] * st[k][d];
    }
    for (int64_t line = lo; line < hi; line++) {
      if (is_f32)
        for (int64_t j = 0; j < J; j++) of[off[0] + ix[off[1] + j * ji] * jo] += sf[off[2] + j * js];
      else
        for (int64_t j = 0; j < J; j++) {
          int64_t *o = &oi[off[0] + ix[off[1] + j * ji] * jo];
          *o = (int64_t)((uint64_t)*o + (uint64_t)si[off[2] + j * js]);
        }
      for (int d = nd - 1; d >= 0; d--) { /* next line */
        for (int k = 0; k < 3; k++) off[k] += st[k][d];
        if (++idx[d] < shape[d]) break;
        for (int k = 0; k < 3; k++) off[k] -= shape[d] * st[k][d];
        idx[d] = 0;
      }
    }
  }
}

static int check_add_dtypes(const char *what, const nnl_tensor *out, const nnl_tensor *src) {
  if (!check_same_dtype(what, out, src, "out", "src")) return 0;
  if (out->dtype == NNL_F32 || out->dtype == NNL_I64) return 1;
  nnl_set_error("%s: not supported for %s tensors", what, nnl_dtype_name(out->dtype));
  return 0;
}

int nnl_k_scatter_add(nnl_tensor *out, int dim, const nnl_tensor *index, const nnl_tensor *src) {
  const char *what = "scatter_add";
  if (!check_dim(what, dim, out->ndim) || !check_add_dtypes(what, out, src) ||
      !check_fits(what, index, out, "out", dim) || !check_fits(what, index, src, "src", -1) ||
      !check_index(what, index, dim, out->shape[dim]))
    return -1;
  scatter_core(out, dim, index, src);
  return 0;
}

int nnl_k_index_add(nnl_tensor *out, int dim, const nnl_tensor *index, const nnl_tensor *src) {
  const char *what = "index_add";
  if (!check_dim(what, dim, out->ndim) || !check_add_dtypes(what, out, src)) return -1;
  if (index->ndim > 1) {
    nnl_set_error("%s: index must be 1-d but has %d dims", what, index->ndim);
    return -1;
  }
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, out->shape, sizeof shape);
  shape[dim] = nnl_k_numel(index);
  if (!nnl_k_check_shape(what, "src", src, out->ndim, shape) ||
      !check_index(what, index, dim, out->shape[dim]))
    return -1;
  nnl_tensor iv = *index; /* the 1-d index stretched over src's shape */
  iv.ndim = src->ndim;
  memcpy(iv.shape, src->shape, sizeof iv.shape);
  memset(iv.stride, 0, sizeof iv.stride);
  iv.stride[dim] = index->ndim == 1 ? index->stride[0] : 0;
  scatter_core(out, dim, &iv, src);
  return 0;
}

/* t viewed with gin's ndim: a removed dim comes back as size 1. */
static int as_kept(const char *what, const char *name, nnl_tensor *v, const nnl_tensor *t,
                   const nnl_tensor *gin, int dim) {
  *v = *t;
  if (t->ndim == gin->ndim - 1) {
    for (int d = gin->ndim - 1; d > dim; d--) v->shape[d] = t->shape[d - 1], v->stride[d] = t->stride[d - 1];
    v->shape[dim] = 1;
    v->stride[dim] = 0;
    v->ndim = gin->ndim;
  }
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, gin->shape, sizeof shape);
  shape[dim] = 1;
  return nnl_k_check_shape(what, name, v, gin->ndim, shape);
}

int nnl_k_scatter_dim(nnl_tensor *gin, const nnl_tensor *gout, const nnl_tensor *indices,
                      int dim) {
  const char *what = "scatter_dim";
  nnl_tensor gv, iv;
  if (!check_dim(what, dim, gin->ndim) || !check_add_dtypes(what, gin, gout) ||
      !as_kept(what, "gout", &gv, gout, gin, dim) ||
      !as_kept(what, "indices", &iv, indices, gin, dim) ||
      !check_index(what, indices, dim, gin->shape[dim]))
    return -1;
  scatter_core(gin, dim, &iv, &gv);
  return 0;
}

/* ---- one_hot ---- */

static void one_hot_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  (void)ctx;
  int64_t *o = (int64_t *)p[0]; /* out's first column: add the class to reach its 1 */
  const int64_t *ix = (const int64_t *)p[1];
  for (int64_t i = 0; i < n; i++) o[i * s[0] + ix[i * s[1]]] = 1;
}

int nnl_k_one_hot(nnl_tensor *out, const nnl_tensor *index, int64_t num_classes) {
  const char *what = "one_hot";
  int64_t shape[NNL_MAXDIM];
  if (index->ndim >= NNL_MAXDIM) {
    nnl_set_error("%s: index has too many dims (%d)", what, index->ndim);
    return -1;
  }
  memcpy(shape, index->shape, sizeof(int64_t) * (size_t)index->ndim);
  shape[index->ndim] = num_classes;
  if (out->dtype != NNL_I64 || !nnl_k_is_contiguous(out)) {
    nnl_set_error("%s: out must be a contiguous int64 tensor", what);
    return -1;
  }
  if (!nnl_k_check_shape(what, "out", out, index->ndim + 1, shape) ||
      !check_index(what, index, -1, num_classes))
    return -1;
  nnl_k_fill(out, 0.0);
  nnl_tensor ov = *out; /* column 0 of out, one element per index */
  ov.ndim = index->ndim;
  const nnl_tensor *ops[2] = {&ov, index};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 2, ops);
  nnl_k_iter_run(&it, one_hot_run, NULL, it.numel);
  return 0;
}
