/* elementwise.c — binary, scalar, unary, clamp, compare, where and fill kernels, and the
 * strided iterator they share: dims merged where possible, one range of runs per thread. */
#include "tensorops.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* ---- the iterator ---- */

void nnl_k_iter_init(nnl_k_iter *it, int nops, const nnl_tensor *const *ops) {
  const nnl_tensor *t0 = ops[0];
  it->nops = nops;
  it->ndim = 0;
  it->numel = 1;
  for (int k = 0; k < nops; k++) {
    it->itemsize[k] = nnl_k_itemsize(ops[k]->dtype);
    it->data[k] = ops[k]->storage && ops[k]->storage->data
                      ? (char *)ops[k]->storage->data + ops[k]->offset * it->itemsize[k]
                      : NULL;
  }
  for (int d = 0; d < t0->ndim; d++) {
    it->numel *= t0->shape[d];
    if (t0->shape[d] == 1) continue; /* its stride never matters */
    int p = it->ndim - 1, merge = p >= 0;
    for (int k = 0; merge && k < nops; k++)
      merge = it->stride[k][p] == ops[k]->stride[d] * t0->shape[d];
    if (merge) { /* outer dim p and this one walk memory as one dim */
      it->shape[p] *= t0->shape[d];
      for (int k = 0; k < nops; k++) it->stride[k][p] = ops[k]->stride[d];
    } else {
      it->shape[it->ndim] = t0->shape[d];
      for (int k = 0; k < nops; k++) it->stride[k][it->ndim] = ops[k]->stride[d];
      it->ndim++;
    }
  }
  if (it->ndim == 0) { /* 0-d or all ones: one element */
    it->ndim = 1;
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->stride[k][0] = 0;
  }
}

void nnl_k_iter_range(const nnl_k_iter *it, int64_t lo, int64_t hi, nnl_k_run_fn fn,
                      void *ctx) {
  const int nd = it->ndim, last = nd - 1;
  int64_t idx[NNL_MAXDIM], off[NNL_ITER_MAXOPS] = {0}, s[NNL_ITER_MAXOPS];
  char *p[NNL_ITER_MAXOPS];
  int64_t r = lo;
  for (int d = last; d >= 0; d--) {
    idx[d] = r % it->shape[d];
    r /= it->shape[d];
  }
  for (int k = 0; k < it->nops; k++) {
    for (int d = 0; d < nd; d++) off[k] += idx[d] * it->stride[k][d];
    s[k] = it->stride[k][last];
  }
  int64_t left = hi - lo;
  while (left > 0) {
    int64_t n = it->shape[last] - idx[last];
    if (n > left) n = left;
    for (int k = 0; k < it->nops; k++)
      p[k] = it->data[k] ? it->data[k] + off[k] * it->itemsize[k] : NULL;
    fn(ctx, p, s, n);
    left -= n;
    if (left == 0) break;
    idx[last] += n;
    for (int k = 0; k < it->nops; k++) off[k] += n * s[k];
    for (int d = last; idx[d] == it->shape[d]; d--) { /* carry; left > 0 keeps d >= 1 */
      idx[d] = 0;
      idx[d - 1]++;
      for (int k = 0; k < it->nops; k++)
        off[k] += it->stride[k][d - 1] - it->shape[d] * it->stride[k][d];
    }
  }
}

void nnl_k_iter_run(const nnl_k_iter *it, nnl_k_run_fn fn, void *ctx, int64_t work) {
  const int64_t n = it->numel;
  if (n == 0) return;
#pragma omp parallel if(work > NNL_PAR_MIN)
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t q = n / nt, rem = n % nt;
    int64_t lo = t * q + (t < rem ? t : rem), hi = lo + q + (t < rem);
    if (hi > lo) nnl_k_iter_range(it, lo, hi, fn, ctx);
  }
}

int nnl_k_check_shape(const char *what, const char *name, const nnl_tensor *t, int ndim,
                      const int64_t *shape) {
  int ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (ok) return 1;
  char got[160], want[160];
  nnl_tensor tmp = {0};
  tmp.ndim = ndim;
  memcpy(tmp.shape, shape, sizeof(int64_t) * (size_t)ndim);
  nnl_set_error("%s: %s has shape %s but expected %s", what, name,
                nnl_shape_str(t, got, sizeof got), nnl_shape_str(&tmp, want, sizeof want));
  return 0;
}

static int check_dtype(const char *what, const char *name, const nnl_tensor *t, nnl_dtype dt) {
  if (t->dtype == dt) return 1;
  nnl_set_error("%s: %s must be %s but is %s", what, name, nnl_dtype_name(dt),
                nnl_dtype_name(t->dtype));
  return 0;
}

/* A stride-0 view of one value with out's shape: scalar operands become tensors. */
static void scalar_view(nnl_tensor *v, nnl_storage *st, void *value, nnl_dtype dt,
                        const nnl_tensor *like) {
  memset(v, 0, sizeof *v);
  memset(st, 0, sizeof *st);
  st->data = value;
  st->refcount = 1;
  v->refcount = 1;
  v->dtype = dt;
  v->ndim = like->ndim;
  memcpy(v->shape, like->shape, sizeof v->shape);
  v->storage = st;
}

static int64_t to_i64(double v) { /* saturating: a C cast out of range is undefined */
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

/* ---- binary ---- */

static const char *binname[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
static const char *unname[] = {"neg", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sin",
                               "cos", "rsqrt", "square", "sign", "floor", "ceil", "round", "recip"};

/* Inlined with constant strides at each call below, so unit-stride rows vectorise. */
static inline __attribute__((always_inline)) void binf_loop(nnl_binop op, float *o,
                                                            const float *a, const float *b,
                                                            int64_t n, int64_t so,
                                                            int64_t sa, int64_t sb) {
  /* o, a, b: (n,) with strides so, sa, sb */
  switch (op) {
  case NNL_OP_ADD:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb];
    break;
  case NNL_OP_SUB:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb];
    break;
  case NNL_OP_MUL:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb];
    break;
  case NNL_OP_DIV:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb];
    break;
  case NNL_OP_POW:
    for (int64_t i = 0; i < n; i++) o[i * so] = powf(a[i * sa], b[i * sb]);
    break;
  case NNL_OP_MAXIMUM:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float x = a[i * sa], y = b[i * sb];
      o[i * so] = (x > y || x != x) ? x : y;
    }
    break;
  case NNL_OP_MINIMUM:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float x = a[i * sa], y = b[i * sb];
      o[i * so] = (x < y || x != x) ? x : y;
    }
    break;
  }
}

static void binf_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  nnl_binop op = *(const nnl_binop *)ctx;
  float *o = (float *)p[0];
  const float *a = (const float *)p[1], *b = (const float *)p[2];
  if (s[0] == 1 && s[1] == 1 && s[2] == 1) binf_loop(op, o, a, b, n, 1, 1, 1);
  else if (s[0] == 1 && s[1] == 1 && s[2] == 0) binf_loop(op, o, a, b, n, 1, 1, 0);
  else if (s[0] == 1 && s[1] == 0 && s[2] == 1) binf_loop(op, o, a, b, n, 1, 0, 1);
  else binf_loop(op, o, a, b, n, s[0], s[1], s[2]);
}

static int64_t ipow(int64_t x, int64_t e) {
  if (e < 0) return x == 1 ? 1 : x == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1, base = (uint64_t)x;
  for (; e; e >>= 1, base *= base)
    if (e & 1) r *= base;
  return (int64_t)r;
}

static void bini_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  nnl_binop op = *(const nnl_binop *)ctx;
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
  const int64_t so = s[0], sa = s[1], sb = s[2];
  /* unsigned arithmetic: overflow wraps as in PyTorch instead of being undefined */
  switch (op) {
  case NNL_OP_ADD:
    for (int64_t i = 0; i < n; i++) o[i * so] = (int64_t)((uint64_t)a[i * sa] + (uint64_t)b[i * sb]);
    break;
  case NNL_OP_SUB:
    for (int64_t i = 0; i < n; i++) o[i * so] = (int64_t)((uint64_t)a[i * sa] - (uint64_t)b[i * sb]);
    break;
  case NNL_OP_MUL:
    for (int64_t i = 0; i < n; i++) o[i * so] = (int64_t)((uint64_t)a[i * sa] * (uint64_t)b[i * sb]);
    break;
  case NNL_OP_POW:
    for (int64_t i = 0; i < n; i++) o[i * so] = ipow(a[i * sa], b[i * sb]);
    break;
  case NNL_OP_MAXIMUM:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] > b[i * sb] ? a[i * sa] : b[i * sb];
    break;
  case NNL_OP_MINIMUM:
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] < b[i * sb] ? a[i * sa] : b[i * sb];
    break;
  case NNL_OP_DIV: break; /* refused before we get here */
  }
}

int nnl_k_binary(nnl_binop op, nnl_tensor *out, const nnl_tensor *a, const nnl_tensor *b) {
  if (!check_dtype("binary", "a", a, out->dtype) || !check_dtype("binary", "b", b, out->dtype) ||
      !nnl_k_check_shape("binary", "a", a, out->ndim, out->shape) ||
      !nnl_k_check_shape("binary", "b", b, out->ndim, out->shape))
    return -1;
  if (out->dtype != NNL_F32 && (out->dtype != NNL_I64 || op == NNL_OP_DIV)) {
    nnl_set_error("%s: not supported for %s tensors (convert to float32 first)", binname[op],
                  nnl_dtype_name(out->dtype));
    return -1;
  }
  const nnl_tensor *ops[3] = {out, a, b};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 3, ops);
  int64_t work = it.numel * (op == NNL_OP_POW ? 16 : 1);
  nnl_k_iter_run(&it, out->dtype == NNL_F32 ? binf_run : bini_run, &op, work);
  return 0;
}

/* x^2 and x^0.5 are common enough (and powf slow enough) to deserve their own loops. */
static void powf_scalar_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const float e = *(const float *)ctx;
  float *o = (float *)p[0];
  const float *a = (const float *)p[1];
  if (e == 2.0f) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = a[i * s[1]] * a[i * s[1]];
  } else {
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = sqrtf(a[i * s[1]]);
  }
}

int nnl_k_binary_scalar(nnl_binop op, nnl_tensor *out, const nnl_tensor *a, double s,
                        int scalar_first) {
  float sf = (float)s;
  int64_t si = to_i64(s);
  nnl_storage st;
  nnl_tensor sv;
  scalar_view(&sv, &st, out->dtype == NNL_I64 ? (void *)&si : (void *)&sf, out->dtype, out);
  if (op == NNL_OP_POW && !scalar_first && out->dtype == NNL_F32 && a->dtype == NNL_F32 &&
      (sf == 2.0f || sf == 0.5f)) {
    if (!nnl_k_check_shape("binary", "a", a, out->ndim, out->shape)) return -1;
    const nnl_tensor *ops[2] = {out, a};
    nnl_k_iter it;
    nnl_k_iter_init(&it, 2, ops);
    nnl_k_iter_run(&it, powf_scalar_run, &sf, it.numel * 4);
    return 0;
  }
  return scalar_first ? nnl_k_binary(op, out, &sv, a) : nnl_k_binary(op, out, a, &sv);
}

/* ---- unary ---- */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline __attribute__((always_inline)) void unf_loop(nnl_unop op, float *o,
                                                           const float *a, int64_t n,
                                                           int64_t so, int64_t sa) {
  /* o, a: (n,) with strides so, sa */
  switch (op) {
  case NNL_OP_NEG:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = -a[i * sa];
    break;
  case NNL_OP_EXP: for (int64_t i = 0; i < n; i++) o[i * so] = expf(a[i * sa]); break;
  case NNL_OP_LOG: for (int64_t i = 0; i < n; i++) o[i * so] = logf(a[i * sa]); break;
  case NNL_OP_SQRT:
    for (int64_t i = 0; i < n; i++) o[i * so] = sqrtf(a[i * sa]);
    break;
  case NNL_OP_ABS:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = fabsf(a[i * sa]);
    break;
  case NNL_OP_TANH: for (int64_t i = 0; i < n; i++) o[i * so] = tanhf(a[i * sa]); break;
  case NNL_OP_SIGMOID: for (int64_t i = 0; i < n; i++) o[i * so] = sigmoidf(a[i * sa]); break;
  case NNL_OP_RELU: /* NaN stays NaN, as in PyTorch */
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] < 0.0f ? 0.0f : a[i * sa];
    break;
  case NNL_OP_SIN: for (int64_t i = 0; i < n; i++) o[i * so] = sinf(a[i * sa]); break;
  case NNL_OP_COS: for (int64_t i = 0; i < n; i++) o[i * so] = cosf(a[i * sa]); break;
  case NNL_OP_RSQRT:
    for (int64_t i = 0; i < n; i++) o[i * so] = 1.0f / sqrtf(a[i * sa]);
    break;
  case NNL_OP_SQUARE:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = a[i * sa] * a[i * sa];
    break;
  case NNL_OP_SIGN: /* sign(NaN) = 0, as in PyTorch */
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = (float)((a[i * sa] > 0.0f) - (a[i * sa] < 0.0f));
    break;
  case NNL_OP_FLOOR: for (int64_t i = 0; i < n; i++) o[i * so] = floorf(a[i * sa]); break;
  case NNL_OP_CEIL: for (int64_t i = 0; i < n; i++) o[i * so] = ceilf(a[i * sa]); break;
  case NNL_OP_ROUND: /* half to even, as in PyTorch */
    for (int64_t i = 0; i < n; i++) o[i * so] = nearbyintf(a[i * sa]);
    break;
  case NNL_OP_RECIP:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i * so] = 1.0f / a[i * sa];
    break;
  }
}

static void unf_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  nnl_unop op = *(const nnl_unop *)ctx;
  if (s[0] == 1 && s[1] == 1) unf_loop(op, (float *)p[0], (const float *)p[1], n, 1, 1);
  else unf_loop(op, (float *)p[0], (const float *)p[1], n, s[0], s[1]);
}

static void uni_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  nnl_unop op = *(const nnl_unop *)ctx;
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1];
  for (int64_t i = 0; i < n; i++) {
    uint64_t x = (uint64_t)a[i * s[1]];
    int64_t v = a[i * s[1]];
    switch (op) {
    case NNL_OP_NEG: v = (int64_t)(0 - x); break;
    case NNL_OP_ABS: v = v < 0 ? (int64_t)(0 - x) : v; break;
    case NNL_OP_SQUARE: v = (int64_t)(x * x); break;
    case NNL_OP_SIGN: v = (v > 0) - (v < 0); break;
    default: break; /* FLOOR CEIL ROUND: integers are already whole */
    }
    o[i * s[0]] = v;
  }
}

int nnl_k_unary(nnl_unop op, nnl_tensor *out, const nnl_tensor *a) {
  if (!check_dtype("unary", "a", a, out->dtype) ||
      !nnl_k_check_shape("unary", "a", a, out->ndim, out->shape))
    return -1;
  int int_ok = op == NNL_OP_NEG || op == NNL_OP_ABS || op == NNL_OP_SQUARE || op == NNL_OP_SIGN ||
               op == NNL_OP_FLOOR || op == NNL_OP_CEIL || op == NNL_OP_ROUND;
  if (out->dtype != NNL_F32 && (out->dtype != NNL_I64 || !int_ok)) {
    nnl_set_error("%s: not supported for %s tensors (convert to float32 first)", unname[op],
                  nnl_dtype_name(out->dtype));
    return -1;
  }
  const nnl_tensor *ops[2] = {out, a};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 2, ops);
  int cheap = op == NNL_OP_NEG || op == NNL_OP_ABS || op == NNL_OP_RELU || op == NNL_OP_SQUARE;
  nnl_k_iter_run(&it, out->dtype == NNL_F32 ? unf_run : uni_run, &op,
                 it.numel * (cheap ? 1 : 8));
  return 0;
}

void nnl_k_unary_backward(nnl_unop op, float *gin, const float *gout, const float *x,
                          const float *y, int64_t n) {
  /* gin, gout, x, y: (n,) */
  switch (op) {
  case NNL_OP_NEG:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] -= gout[i];
    break;
  case NNL_OP_EXP:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] * y[i];
    break;
  case NNL_OP_LOG:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] / x[i];
    break;
  case NNL_OP_SQRT:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] / (2.0f * y[i]);
    break;
  case NNL_OP_ABS:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] * (float)((x[i] > 0.0f) - (x[i] < 0.0f));
    break;
  case NNL_OP_TANH:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] * (1.0f - y[i] * y[i]);
    break;
  case NNL_OP_SIGMOID:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] * y[i] * (1.0f - y[i]);
    break;
  case NNL_OP_RELU: /* x > 0 and y > 0 agree, so either saved tensor will do */
    if (x) {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
      for (int64_t i = 0; i < n; i++) gin[i] += x[i] <= 0.0f ? 0.0f : gout[i]; /* NaN passes */
    } else {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
      for (int64_t i = 0; i < n; i++) gin[i] += y[i] <= 0.0f ? 0.0f : gout[i];
    }
    break;
  case NNL_OP_SIN:
#pragma omp parallel for if(n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) gin[i] += gout[i] * cosf(x[i]);
    break;
  case NNL_OP_COS:
#pragma omp parallel for if(n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) gin[i] -= gout[i] * sinf(x[i]);
    break;
  case NNL_OP_RSQRT: /* d x^-1/2 = -1/2 x^-3/2 = -y^3 / 2 */
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] -= 0.5f * gout[i] * y[i] * y[i] * y[i];
    break;
  case NNL_OP_SQUARE:
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] += 2.0f * x[i] * gout[i];
    break;
  case NNL_OP_RECIP: /* d 1/x = -1/x^2 = -y^2 */
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) gin[i] -= gout[i] * y[i] * y[i];
    break;
  case NNL_OP_SIGN: case NNL_OP_FLOOR: case NNL_OP_CEIL: case NNL_OP_ROUND:
    break; /* piecewise constant: zero gradient */
  }
}

/* ---- clamp ---- */

typedef struct {
  double lo, hi;
} clampctx;

static void clampf_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const clampctx *c = ctx;
  const float lo = (float)c->lo, hi = (float)c->hi; /* +-inf survive the conversion */
  float *o = (float *)p[0];
  const float *a = (const float *)p[1];
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float v = a[i * s[1]];
    v = v < lo ? lo : v; /* comparisons with NaN are false: NaN passes through */
    o[i * s[0]] = v > hi ? hi : v;
  }
}

static void clampi_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const clampctx *c = ctx;
  const int64_t lo = to_i64(ceil(c->lo)), hi = to_i64(floor(c->hi));
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1];
  for (int64_t i = 0; i < n; i++) {
    int64_t v = a[i * s[1]];
    v = v < lo ? lo : v;
    o[i * s[0]] = v > hi ? hi : v;
  }
}

int nnl_k_clamp(nnl_tensor *out, const nnl_tensor *a, double lo, double hi) {
  if (!check_dtype("clamp", "a", a, out->dtype) ||
      !nnl_k_check_shape("clamp", "a", a, out->ndim, out->shape))
    return -1;
  if (out->dtype == NNL_U8) {
    nnl_set_error("clamp: not supported for uint8 tensors");
    return -1;
  }
  const nnl_tensor *ops[2] = {out, a};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 2, ops);
  clampctx c = {lo, hi};
  nnl_k_iter_run(&it, out->dtype == NNL_F32 ? clampf_run : clampi_run, &c, it.numel);
  return 0;
}

/* ---- compare, where, fill ---- */

typedef struct {
  nnl_cmpop op;
  nnl_dtype da, db;
  double s;
} cmpctx;

static inline double load(const char *p, nnl_dtype dt) {
  return dt == NNL_F32 ? *(const float *)p : dt == NNL_I64 ? (double)*(const int64_t *)p
                                                            : *(const uint8_t *)p;
}

static inline uint8_t cmp(nnl_cmpop op, double x, double y) {
  switch (op) {
  case NNL_CMP_EQ: return x == y;
  case NNL_CMP_NE: return x != y;
  case NNL_CMP_LT: return x < y;
  case NNL_CMP_LE: return x <= y;
  case NNL_CMP_GT: return x > y;
  case NNL_CMP_GE: return x >= y;
  }
  return 0;
}

static inline uint8_t cmpi(nnl_cmpop op, int64_t x, int64_t y) {
  switch (op) {
  case NNL_CMP_EQ: return x == y;
  case NNL_CMP_NE: return x != y;
  case NNL_CMP_LT: return x < y;
  case NNL_CMP_LE: return x <= y;
  case NNL_CMP_GT: return x > y;
  case NNL_CMP_GE: return x >= y;
  }
  return 0;
}

static void cmp_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const cmpctx *c = ctx;
  uint8_t *o = (uint8_t *)p[0];
  if (c->da == NNL_I64 && c->db == NNL_I64) { /* exact beyond 2^53 */
    const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = cmpi(c->op, a[i * s[1]], b[i * s[2]]);
    return;
  }
  const int64_t ia = s[1] * nnl_k_itemsize(c->da), ib = s[2] * nnl_k_itemsize(c->db);
  for (int64_t i = 0; i < n; i++)
    o[i * s[0]] = cmp(c->op, load(p[1] + i * ia, c->da), load(p[2] + i * ib, c->db));
}

static void cmps_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const cmpctx *c = ctx;
  uint8_t *o = (uint8_t *)p[0];
  const int64_t ia = s[1] * nnl_k_itemsize(c->da);
  for (int64_t i = 0; i < n; i++) o[i * s[0]] = cmp(c->op, load(p[1] + i * ia, c->da), c->s);
}

int nnl_k_compare(nnl_cmpop op, nnl_tensor *out, const nnl_tensor *a, const nnl_tensor *b) {
  if (!check_dtype("compare", "out", out, NNL_U8) ||
      !nnl_k_check_shape("compare", "a", a, out->ndim, out->shape) ||
      !nnl_k_check_shape("compare", "b", b, out->ndim, out->shape))
    return -1;
  const nnl_tensor *ops[3] = {out, a, b};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 3, ops);
  cmpctx c = {op, a->dtype, b->dtype, 0.0};
  nnl_k_iter_run(&it, cmp_run, &c, it.numel);
  return 0;
}

int nnl_k_compare_scalar(nnl_cmpop op, nnl_tensor *out, const nnl_tensor *a, double s) {
  if (!check_dtype("compare", "out", out, NNL_U8) ||
      !nnl_k_check_shape("compare", "a", a, out->ndim, out->shape))
    return -1;
  const nnl_tensor *ops[2] = {out, a};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 2, ops);
  /* a float tensor meets the scalar in float32, as in PyTorch: x == 0.1 finds 0.1f */
  cmpctx c = {op, a->dtype, a->dtype, a->dtype == NNL_F32 ? (double)(float)s : s};
  nnl_k_iter_run(&it, cmps_run, &c, it.numel);
  return 0;
}

/* where and fill move bits, so one loop per item size serves every dtype. */
static void where_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const int64_t isz = *(const int64_t *)ctx;
  const uint8_t *c = (const uint8_t *)p[1];
  if (isz == 4) {
    uint32_t *o = (uint32_t *)p[0];
    const uint32_t *a = (const uint32_t *)p[2], *b = (const uint32_t *)p[3];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];
  } else if (isz == 8) {
    uint64_t *o = (uint64_t *)p[0];
    const uint64_t *a = (const uint64_t *)p[2], *b = (const uint64_t *)p[3];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];
  } else {
    uint8_t *o = (uint8_t *)p[0];
    const uint8_t *a = (const uint8_t *)p[2], *b = (const uint8_t *)p[3];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];
  }
}

int nnl_k_where(nnl_tensor *out, const nnl_tensor *cond, const nnl_tensor *a,
                const nnl_tensor *b) {
  if (!check_dtype("where", "cond", cond, NNL_U8) || !check_dtype("where", "a", a, out->dtype) ||
      !check_dtype("where", "b", b, out->dtype) ||
      !nnl_k_check_shape("where", "cond", cond, out->ndim, out->shape) ||
      !nnl_k_check_shape("where", "a", a, out->ndim, out->shape) ||
      !nnl_k_check_shape("where", "b", b, out->ndim, out->shape))
    return -1;
  const nnl_tensor *ops[4] = {out, cond, a, b};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 4, ops);
  int64_t isz = it.itemsize[0];
  nnl_k_iter_run(&it, where_run, &isz, it.numel);
  return 0;
}

typedef struct {
  int64_t isz;
  uint64_t bits; /* the value in the destination dtype, as raw bits */
} fillctx;

static void fillctx_init(fillctx *c, nnl_dtype dt, double v) {
  c->isz = nnl_k_itemsize(dt);
  c->bits = 0;
  if (dt == NNL_F32) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    c->bits = u;
  } else if (dt == NNL_I64) {
    c->bits = (uint64_t)to_i64(v);
  } else {
    c->bits = (uint8_t)to_i64(v); /* wraps like a C cast to uint8 */
  }
}

/* p[1] (optional, U8): only where the mask is non-zero */
static void fill_run(void *ctx, char **p, const int64_t *s, int64_t n, const uint8_t *m) {
  const fillctx *c = ctx;
  if (c->isz == 4) {
    uint32_t *o = (uint32_t *)p[0], v = (uint32_t)c->bits;
    for (int64_t i = 0; i < n; i++)
      if (!m || m[i * s[1]]) o[i * s[0]] = v;
  } else if (c->isz == 8) {
    uint64_t *o = (uint64_t *)p[0], v = c->bits;
    for (int64_t i = 0; i < n; i++)
      if (!m || m[i * s[1]]) o[i * s[0]] = v;
  } else {
    uint8_t *o = (uint8_t *)p[0], v = (uint8_t)c->bits;
    for (int64_t i = 0; i < n; i++)
      if (!m || m[i * s[1]]) o[i * s[0]] = v;
  }
}

static void fill_all_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  const fillctx *c = ctx;
  if (s[0] == 1 && c->isz == 4) { /* the common case gets a loop the compiler vectorises */
    uint32_t *o = (uint32_t *)p[0], v = (uint32_t)c->bits;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = v;
    return;
  }
  fill_run(ctx, p, s, n, NULL);
}

static void fill_masked_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  fill_run(ctx, p, s, n, (const uint8_t *)p[1]);
}

int nnl_k_masked_fill(nnl_tensor *out, const nnl_tensor *mask, double v) {
  if (!check_dtype("masked_fill", "mask", mask, NNL_U8) ||
      !nnl_k_check_shape("masked_fill", "mask", mask, out->ndim, out->shape))
    return -1;
  const nnl_tensor *ops[2] = {out, mask};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 2, ops);
  fillctx c;
  fillctx_init(&c, out->dtype, v);
  nnl_k_iter_run(&it, fill_masked_run, &c, it.numel);
  return 0;
}

void nnl_k_fill(nnl_tensor *out, double v) {
  const nnl_tensor *ops[1] = {out};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 1, ops);
  fillctx c;
  fillctx_init(&c, out->dtype, v);
  nnl_k_iter_run(&it, fill_all_run, &c, it.numel);
}
