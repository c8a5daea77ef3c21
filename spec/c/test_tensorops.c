/* test_tensorops.c — the tensor kernels against naive loops, on contiguous, transposed and
 * broadcast views; index errors; unary gradients by central differences; PyTorch's repr. */
#include "kernels/tensorops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NNL_TENSOROPS_STANDALONE
/* Stand-ins for src/core, so the kernels can be built and tested alone. */
static char errbuf[512];
void nnl_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
}
const char *nnl_last_error(void) { return errbuf; }
const char *nnl_dtype_name(nnl_dtype dt) {
  return dt == NNL_F32 ? "float32" : dt == NNL_I64 ? "int64" : "uint8";
}
char *nnl_shape_str(const nnl_tensor *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < t->ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)t->shape[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}
#endif

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    checks++;                                                                             \
    if (!(cond)) {                                                                        \
      failures++;                                                                         \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      printf(__VA_ARGS__);                                                                \
      printf("\n");                                                                       \
    }                                                                                     \
  } while (0)

/* ---- hand-made tensors (freed all together at the end) ---- */

static void *owned[4096];
static int nowned = 0;
static void *keep(void *p) {
  owned[nowned++] = p;
  return p;
}

static nnl_tensor *mk(nnl_dtype dt, int nd, const int64_t *shape) {
  nnl_tensor *t = keep(calloc(1, sizeof *t));
  nnl_storage *st = keep(calloc(1, sizeof *st));
  int64_t n = 1;
  for (int d = nd - 1; d >= 0; d--) {
    t->shape[d] = shape[d];
    t->stride[d] = n;
    n *= shape[d];
  }
  st->nbytes = (size_t)(n ? n : 1) * (size_t)nnl_k_itemsize(dt);
  st->data = keep(calloc(1, st->nbytes));
  st->refcount = 1;
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = nd;
  t->storage = st;
  return t;
}
#define MK(dt, ...) mk(dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})

static nnl_tensor *alias(const nnl_tensor *t) {
  nnl_tensor *v = keep(malloc(sizeof *v));
  *v = *t;
  return v;
}
static nnl_tensor *transposed(const nnl_tensor *t, int d0, int d1) {
  nnl_tensor *v = alias(t);
  v->shape[d0] = t->shape[d1], v->shape[d1] = t->shape[d0];
  v->stride[d0] = t->stride[d1], v->stride[d1] = t->stride[d0];
  return v;
}
static nnl_tensor *expanded(const nnl_tensor *t, const int64_t *shape) { /* same ndim */
  nnl_tensor *v = alias(t);
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] == 1 && shape[d] != 1) v->shape[d] = shape[d], v->stride[d] = 0;
  return v;
}

static int64_t numel(const nnl_tensor *t) { return nnl_k_numel(t); }
static int64_t off_of(const nnl_tensor *t, int64_t k) { /* k-th element, row-major */
  int64_t off = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (k % t->shape[d]) * t->stride[d];
    k /= t->shape[d];
  }
  return off;
}
static double get(const nnl_tensor *t, int64_t k) {
  int64_t o = off_of(t, k);
  if (t->dtype == NNL_F32) return ((float *)t->storage->data)[o];
  if (t->dtype == NNL_I64) return (double)((int64_t *)t->storage->data)[o];
  return ((uint8_t *)t->storage->data)[o];
}
static void set(nnl_tensor *t, int64_t k, double v) {
  int64_t o = off_of(t, k);
  if (t->dtype == NNL_F32) ((float *)t->storage->data)[o] = (float)v;
  else if (t->dtype == NNL_I64) ((int64_t *)t->storage->data)[o] = (int64_t)v;
  else ((uint8_t *)t->storage->data)[o] = (uint8_t)v;
}

static uint64_t rng = 88172645463325252ull;
static double urand(void) { /* xorshift64, [0, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}
static void randomize(nnl_tensor *t, double lo, double hi, int integral) {
  for (int64_t k = 0; k < numel(t); k++) {
    double v = lo + (hi - lo) * urand();
    set(t, k, integral ? floor(v) : v);
  }
}

/* ---- elementwise ---- */

static float ref_binf(nnl_binop op, float x, float y) {
  switch (op) {
  case NNL_OP_ADD: return x + y;
  case NNL_OP_SUB: return x - y;
  case NNL_OP_MUL: return x * y;
  case NNL_OP_DIV: return x / y;
  case NNL_OP_POW: return powf(x, y);
  case NNL_OP_MAXIMUM: return isnan(x) || x > y ? x : y;
  case NNL_OP_MINIMUM: return isnan(x) || x < y ? x : y;
  }
  return 0;
}
static double ref_bini(nnl_binop op, int64_t x, int64_t y) {
  switch (op) {
  case NNL_OP_ADD: return (double)(x + y);
  case NNL_OP_SUB: return (double)(x - y);
  case NNL_OP_MUL: return (double)(x * y);
  case NNL_OP_POW: { int64_t r = 1; for (int64_t i = 0; i < y; i++) r *= x; return (double)r; }
  case NNL_OP_MAXIMUM: return (double)(x > y ? x : y);
  case NNL_OP_MINIMUM: return (double)(x < y ? x : y);
  default: return 0;
  }
}

/* out = a op b against the reference, every op, for one layout. */
static void check_binary(const char *what, nnl_tensor *out, const nnl_tensor *a, const nnl_tensor *b) {
  for (int op = NNL_OP_ADD; op <= NNL_OP_MINIMUM; op++) {
    if (out->dtype == NNL_I64 && op == NNL_OP_DIV) {
      CHECK(nnl_k_binary(op, out, a, b) == -1, "%s: int64 div should be refused", what);
      continue;
    }
    CHECK(nnl_k_binary(op, out, a, b) == 0, "%s op %d: %s", what, op, nnl_last_error());
    int64_t bad = -1;
    for (int64_t k = 0; k < numel(out) && bad < 0; k++) {
      double want = out->dtype == NNL_F32 ? ref_binf(op, (float)get(a, k), (float)get(b, k))
                                          : ref_bini(op, (int64_t)get(a, k), (int64_t)get(b, k));
      double got = get(out, k);
      if (!(got == want || (isnan(got) && isnan(want)))) bad = k;
    }
    CHECK(bad < 0, "%s op %d: element %lld differs", what, op, (long long)bad);
  }
}

static void test_binary(void) {
  /* small: contiguous, transposed, row and column broadcast, scalar both ways */
  nnl_tensor *o = MK(NNL_F32, 5, 7), *a = MK(NNL_F32, 5, 7), *b = MK(NNL_F32, 5, 7);
  nnl_tensor *at = MK(NNL_F32, 7, 5), *row = MK(NNL_F32, 1, 7), *col = MK(NNL_F32, 5, 1);
  randomize(a, -3, 3, 0), randomize(b, 0.5, 2, 0), randomize(at, 0.1, 4, 0);
  randomize(row, -2, 2, 0), randomize(col, 0.2, 3, 0);
  set(a, 3, NAN);
  int64_t s57[2] = {5, 7};
  check_binary("contiguous", o, a, b);
  check_binary("transposed", o, transposed(at, 0, 1), b);
  check_binary("row broadcast", o, a, expanded(row, s57));
  check_binary("column broadcast", o, expanded(col, s57), transposed(at, 0, 1));
  check_binary("into transposed out", transposed(at, 0, 1), a, b);
  /* big enough for threads and chunk edges inside rows: [61, 37, 29] with b [1, 37, 1] */
  nnl_tensor *O = MK(NNL_F32, 61, 37, 29), *A = MK(NNL_F32, 61, 37, 29), *B = MK(NNL_F32, 1, 37, 1);
  randomize(A, 0.1, 3, 0), randomize(B, -2, 2, 0);
  check_binary("3-d broadcast", O, A, expanded(B, (int64_t[]){61, 37, 29}));
  check_binary("3-d contiguous", O, A, A);
  /* int64 */
  nnl_tensor *io = MK(NNL_I64, 4, 6), *ia = MK(NNL_I64, 6, 4), *ib = MK(NNL_I64, 1, 6);
  randomize(ia, -9, 9, 1), randomize(ib, 0, 4, 1);
  check_binary("int64 transposed+broadcast", io, transposed(ia, 0, 1), expanded(ib, (int64_t[]){4, 6}));
  /* scalars */
  CHECK(nnl_k_binary_scalar(NNL_OP_SUB, o, a, 2.5, 1) == 0, "scalar");
  CHECK(get(o, 0) == (float)(2.5f - (float)get(a, 0)), "scalar_first sub");
  CHECK(nnl_k_binary_scalar(NNL_OP_DIV, o, transposed(at, 0, 1), 4, 0) == 0, "scalar");
  CHECK(get(o, 8) == (float)(get(at, off_of(transposed(at, 0, 1), 8)) / 4), "scalar div");
  CHECK(nnl_k_binary_scalar(NNL_OP_POW, o, b, 2, 0) == 0 && get(o, 6) == (float)(get(b, 6) * get(b, 6)),
        "pow 2");
  CHECK(nnl_k_binary_scalar(NNL_OP_POW, o, b, 0.5, 0) == 0 && get(o, 6) == sqrtf((float)get(b, 6)),
        "pow 0.5");
  CHECK(nnl_k_binary_scalar(NNL_OP_MUL, io, transposed(ia, 0, 1), -3, 1) == 0 &&
            get(io, 5) == -3 * get(transposed(ia, 0, 1), 5), "int scalar mul");
  /* errors */
  CHECK(nnl_k_binary(NNL_OP_ADD, o, a, at) == -1 &&
            !strcmp(nnl_last_error(), "binary: b has shape [7,5] but expected [5,7]"),
        "shape error: %s", nnl_last_error());
  CHECK(nnl_k_binary(NNL_OP_ADD, o, a, io) == -1 &&
            !strcmp(nnl_last_error(), "binary: b must be float32 but is int64"), "%s", nnl_last_error());
  CHECK(nnl_k_binary(NNL_OP_DIV, io, io, io) == -1 &&
            !strcmp(nnl_last_error(), "div: not supported for int64 tensors (convert to float32 first)"),
        "%s", nnl_last_error());
}

static double ref_un(nnl_unop op, double x) { /* in double: also the gradient oracle */
  switch (op) {
  case NNL_OP_NEG: return -x;
  case NNL_OP_EXP: return exp(x);
  case NNL_OP_LOG: return log(x);
  case NNL_OP_SQRT: return sqrt(x);
  case NNL_OP_ABS: return fabs(x);
  case NNL_OP_TANH: return tanh(x);
  case NNL_OP_SIGMOID: return 1 / (1 + exp(-x));
  case NNL_OP_RELU: return x > 0 ? x : 0;
  case NNL_OP_SIN: return sin(x);
  case NNL_OP_COS: return cos(x);
  case NNL_OP_RSQRT: return 1 / sqrt(x);
  case NNL_OP_SQUARE: return x * x;
  case NNL_OP_SIGN: return (x > 0) - (x < 0);
  case NNL_OP_FLOOR: return floor(x);
  case NNL_OP_CEIL: return ceil(x);
  case NNL_OP_ROUND: return nearbyint(x);
  case NNL_OP_RECIP: return 1 / x;
  }
  return 0;
}

static void test_unary(void) {
  nnl_tensor *x = MK(NNL_F32, 9, 5), *o = MK(NNL_F32, 5, 9), *oc = MK(NNL_F32, 9, 5);
  randomize(x, 0.05, 3, 0);
  set(x, 0, 2.5), set(x, 1, 0.5); /* round half to even */
  nnl_tensor *xt = transposed(x, 0, 1);
  for (int op = NNL_OP_NEG; op <= NNL_OP_RECIP; op++) {
    CHECK(nnl_k_unary(op, o, xt) == 0 && nnl_k_unary(op, oc, x) == 0, "unary %d", op);
    double worst = 0;
    for (int64_t k = 0; k < numel(o); k++) {
      double want = ref_un(op, (float)get(xt, k)), want_c = ref_un(op, (float)get(x, k));
      worst = fmax(worst, fabs(get(o, k) - want) / fmax(1, fabs(want)));
      worst = fmax(worst, fabs(get(oc, k) - want_c) / fmax(1, fabs(want_c)));
    }
    CHECK(worst < 2e-7, "unary op %d: largest relative difference %g", op, worst);
  }
  float nan_in[1] = {NAN};
  nnl_storage st = {.data = nan_in, .nbytes = 4, .refcount = 1};
  nnl_tensor nt = {.refcount = 1, .dtype = NNL_F32, .ndim = 0, .storage = &st};
  nnl_k_unary(NNL_OP_RELU, &nt, &nt);
  CHECK(isnan(nan_in[0]), "relu(nan) is nan");
  nnl_k_unary(NNL_OP_SIGN, &nt, &nt);
  CHECK(nan_in[0] == 0, "sign(nan) is 0");
  nnl_tensor *i = MK(NNL_I64, 3, 4), *io = MK(NNL_I64, 4, 3);
  randomize(i, -50, 50, 1);
  CHECK(nnl_k_unary(NNL_OP_ABS, io, transposed(i, 0, 1)) == 0, "int abs");
  CHECK(get(io, 7) == fabs(get(transposed(i, 0, 1), 7)), "int abs value");
  CHECK(nnl_k_unary(NNL_OP_EXP, io, transposed(i, 0, 1)) == -1 &&
            !strcmp(nnl_last_error(), "exp: not supported for int64 tensors (convert to float32 first)"),
        "int exp refused: %s", nnl_last_error());
}

static void test_unary_backward(void) {
  enum { N = 40 };
  float x[N], y[N], gout[N], gin[N];
  for (int op = NNL_OP_NEG; op <= NNL_OP_RECIP; op++) {
    for (int i = 0; i < N; i++) {
      double v = 0.3 + 2.0 * urand(); /* away from every kink, positive for log/sqrt */
      if (op != NNL_OP_LOG && op != NNL_OP_SQRT && op != NNL_OP_RSQRT && i % 2) v = -v;
      if (op >= NNL_OP_SIGN && op <= NNL_OP_ROUND) v = floor(v * 3) / 3 + 0.1;
      x[i] = (float)v;
      y[i] = (float)ref_un(op, x[i]);
      gout[i] = (float)(urand() - 0.5);
      gin[i] = 0.25f; /* backward accumulates */
    }
    nnl_k_unary_backward(op, gin, gout, x, y, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
      const double h = 1e-4;
      double num = (ref_un(op, x[i] + h) - ref_un(op, x[i] - h)) / (2 * h);
      double want = 0.25 + gout[i] * num;
      worst = fmax(worst, fabs(gin[i] - want) / fmax(1, fabs(want)));
    }
    CHECK(worst < 1e-4, "unary backward op %d: largest difference %g", op, worst);
  }
}

static void test_misc_elementwise(void) {
  nnl_tensor *a = MK(NNL_F32, 6, 4), *o = MK(NNL_F32, 4, 6), *b = MK(NNL_I64, 4, 1);
  nnl_tensor *m = MK(NNL_U8, 4, 6), *i64 = MK(NNL_I64, 4, 6);
  randomize(a, -3, 3, 0), randomize(b, -2, 2, 1);
  set(a, 5, NAN);
  set(a, 6, 0.1);
  int64_t s46[2] = {4, 6};
  nnl_tensor *at = transposed(a, 0, 1), *bb = expanded(b, s46);
  CHECK(nnl_k_clamp(o, at, -1, 2) == 0, "clamp");
  int ok = 1;
  for (int64_t k = 0; k < 24; k++) {
    double v = get(at, k), w = isnan(v) ? v : fmin(fmax(v, -1), 2);
    ok &= get(o, k) == (float)w || (isnan(w) && isnan(get(o, k)));
  }
  CHECK(ok, "clamp values");
  CHECK(nnl_k_clamp(o, at, 3, 2) == 0 && get(o, 0) == 2, "clamp lo > hi gives hi");
  for (int op = NNL_CMP_EQ; op <= NNL_CMP_GE; op++) {
    CHECK(nnl_k_compare(op, m, at, bb) == 0, "compare");
    ok = 1;
    for (int64_t k = 0; k < 24; k++) {
      double x = get(at, k), y = get(bb, k);
      int want = op == NNL_CMP_EQ ? x == y : op == NNL_CMP_NE ? x != y : op == NNL_CMP_LT ? x < y
               : op == NNL_CMP_LE ? x <= y : op == NNL_CMP_GT ? x > y : x >= y;
      ok &= get(m, k) == want;
    }
    CHECK(ok, "compare op %d float vs broadcast int64", op);
  }
  CHECK(nnl_k_compare_scalar(NNL_CMP_EQ, m, at, 0.1) == 0 && get(m, 13) == 1,
        "float32 0.1 == 0.1 (the scalar meets the tensor in float32)");
  CHECK(nnl_k_compare_scalar(NNL_CMP_GT, m, at, 0) == 0, "compare scalar");
  ok = 1;
  for (int64_t k = 0; k < 24; k++) ok &= get(m, k) == (get(at, k) > 0);
  CHECK(ok, "compare scalar values");
  nnl_tensor *cond = MK(NNL_U8, 1, 6), *c2 = MK(NNL_F32, 4, 6);
  randomize(cond, 0, 2, 1), randomize(c2, 5, 6, 0);
  nnl_tensor *cb = expanded(cond, s46);
  CHECK(nnl_k_where(o, cb, at, c2) == 0, "where");
  ok = 1;
  for (int64_t k = 0; k < 24; k++) {
    double w = get(cb, k) ? get(at, k) : get(c2, k);
    ok &= get(o, k) == w || (isnan(w) && isnan(get(o, k)));
  }
  CHECK(ok, "where values");
  randomize(i64, 0, 100, 1);
  CHECK(nnl_k_masked_fill(i64, cb, -7) == 0, "masked_fill");
  ok = 1;
  for (int64_t k = 0; k < 24; k++) ok &= !get(cb, k) || get(i64, k) == -7;
  CHECK(ok, "masked_fill values");
  nnl_k_fill(at, 1.5);
  ok = 1;
  for (int64_t k = 0; k < 24; k++) ok &= get(a, k) == 1.5;
  CHECK(ok, "fill through a transposed view");
  CHECK(nnl_k_where(o, cb, at, i64) == -1 &&
            !strcmp(nnl_last_error(), "where: b must be float32 but is int64"),
        "where dtype error: %s", nnl_last_error());
}

/* ---- reductions ---- */

static const char *rn[] = {"sum", "mean", "max", "min", "prod", "argmax", "argmin", "std", "var"};

/* Reduce positions k0 + r*step (r < R) of a naively in double. */
static double ref_red(nnl_redop op, const nnl_tensor *a, int64_t k0, int64_t step, int64_t R,
                      int correction, int64_t *at) {
  double acc = op == NNL_RED_PROD ? 1 : 0, best = get(a, k0), m = 0;
  *at = 0;
  for (int64_t r = 0; r < R; r++) {
    double v = get(a, k0 + r * step);
    acc = op == NNL_RED_PROD ? acc * v : acc + v;
    int mx = op == NNL_RED_MAX || op == NNL_RED_ARGMAX;
    if ((mx ? v > best : v < best) || (isnan(v) && !isnan(best))) best = v, *at = r;
  }
  m = acc / R;
  switch (op) {
  case NNL_RED_SUM: case NNL_RED_PROD: return acc;
  case NNL_RED_MEAN: return m;
  case NNL_RED_MAX: case NNL_RED_MIN: return best;
  case NNL_RED_ARGMAX: case NNL_RED_ARGMIN: return (double)*at;
  default: {
    double ss = 0;
    for (int64_t r = 0; r < R; r++) ss += (get(a, k0 + r * step) - m) * (get(a, k0 + r * step) - m);
    double v = ss / (R - correction);
    return op == NNL_RED_STD ? sqrt(v) : v;
  }
  }
}

static void check_reduce_dims(const char *what, const nnl_tensor *a, int ops_mask) {
  for (int dim = 0; dim < a->ndim; dim++) {
    int64_t shape[NNL_MAXDIM], nd = 0, inner = 1;
    for (int d = 0; d < a->ndim; d++)
      if (d != dim) shape[nd++] = a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) inner *= a->shape[d];
    const int64_t R = a->shape[dim];
    for (int op = NNL_RED_SUM; op <= NNL_RED_VAR; op++) {
      if (!(ops_mask >> op & 1)) continue;
      nnl_dtype odt = op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN ? NNL_I64
                    : a->dtype == NNL_F32 ? NNL_F32 : (op == NNL_RED_SUM || op == NNL_RED_PROD) ? NNL_I64 : a->dtype;
      nnl_tensor *out = mk(odt, (int)nd, shape), *ind = mk(NNL_I64, (int)nd, shape);
      int rc = nnl_k_reduce_dim(op, out, ind, a, dim, 1);
      CHECK(rc == 0, "%s %s dim %d: %s", what, rn[op], dim, nnl_last_error());
      double worst = 0;
      int idx_ok = 1;
      for (int64_t k = 0; k < numel(out); k++) {
        int64_t k0 = (k / inner) * inner * R + k % inner, at;
        double want = ref_red(op, a, k0, inner, R, 1, &at), got = get(out, k);
        if (!(isnan(want) && isnan(got))) worst = fmax(worst, fabs(got - want) / fmax(1, fabs(want)));
        if ((op == NNL_RED_MAX || op == NNL_RED_MIN) && get(ind, k) != at) idx_ok = 0;
      }
      CHECK(worst < 1e-5, "%s %s dim %d: largest difference %g", what, rn[op], dim, worst);
      CHECK(idx_ok, "%s %s dim %d: indices", what, rn[op], dim);
    }
    /* reduce_all agrees with the naive loop too */
  }
  for (int op = NNL_RED_SUM; op <= NNL_RED_VAR; op++) {
    if (!(ops_mask >> op & 1)) continue;
    double r;
    int64_t ix, at;
    CHECK(nnl_k_reduce_all(op, a, &r, &ix, 1) == 0, "%s all %s", what, rn[op]);
    double want = ref_red(op, a, 0, 1, numel(a), 1, &at);
    CHECK(fabs(r - want) <= 1e-9 * fmax(1, fabs(want)) || (isnan(r) && isnan(want)),
          "%s all %s: %.17g vs %.17g", what, rn[op], r, want);
    if (op >= NNL_RED_MAX && op <= NNL_RED_ARGMIN && op != NNL_RED_PROD)
      CHECK(ix == at, "%s all %s index %lld vs %lld", what, rn[op], (long long)ix, (long long)at);
  }
}

static void test_reduce(void) {
  const int all = 0x1ff, ints = 1 << NNL_RED_SUM | 1 << NNL_RED_MAX | 1 << NNL_RED_MIN |
                                1 << NNL_RED_PROD | 1 << NNL_RED_ARGMAX | 1 << NNL_RED_ARGMIN;
  nnl_tensor *c = MK(NNL_F32, 4, 5, 6), *s = MK(NNL_F32, 6, 4, 5);
  randomize(c, -2, 2, 0), randomize(s, 0.5, 1.5, 0);
  check_reduce_dims("contiguous", c, all);
  nnl_tensor *p = transposed(transposed(s, 0, 1), 1, 2); /* [4, 5, 6], no unit stride last */
  check_reduce_dims("permuted", p, all);
  nnl_tensor *ib = MK(NNL_I64, 3, 4, 5), *u = MK(NNL_U8, 5, 3, 4);
  randomize(ib, -1000, 1000, 1), randomize(u, 0, 256, 1);
  check_reduce_dims("int64", transposed(ib, 0, 2), ints & ~(1 << NNL_RED_PROD));
  check_reduce_dims("uint8", transposed(u, 1, 2), ints & ~(1 << NNL_RED_PROD));
  /* big: threads, tiles, determinism */
  nnl_tensor *big = MK(NNL_F32, 300, 700);
  randomize(big, -1, 1, 0);
  check_reduce_dims("big", big, 1 << NNL_RED_SUM | 1 << NNL_RED_ARGMAX | 1 << NNL_RED_VAR);
  nnl_tensor *narrow = MK(NNL_F32, 4000, 10); /* column sums split down the rows */
  randomize(narrow, -1, 1, 0);
  check_reduce_dims("narrow", narrow, 1 << NNL_RED_SUM | 1 << NNL_RED_MEAN | 1 << NNL_RED_MIN);
  double r1, r2;
  nnl_k_reduce_all(NNL_RED_SUM, transposed(big, 0, 1), &r1, NULL, 0);
  nnl_k_reduce_all(NNL_RED_SUM, transposed(big, 0, 1), &r2, NULL, 0);
  CHECK(r1 == r2, "sum repeats bit for bit");
  /* NaN wins max and argmax; first extreme wins ties */
  nnl_tensor *n = MK(NNL_F32, 2, 4), *o = MK(NNL_F32, 2), *oi = MK(NNL_I64, 2);
  float nv[8] = {1, NAN, 3, NAN, 5, 7, 7, 2};
  memcpy(n->storage->data, nv, sizeof nv);
  double r;
  int64_t ix;
  nnl_k_reduce_all(NNL_RED_MAX, n, &r, &ix, 0);
  CHECK(isnan(r) && ix == 1, "max with NaN");
  nnl_k_reduce_dim(NNL_RED_ARGMAX, oi, NULL, n, 1, 0);
  CHECK(get(oi, 0) == 1 && get(oi, 1) == 1, "argmax: first NaN, first of ties");
  nnl_k_reduce_dim(NNL_RED_MIN, o, oi, n, 1, 0);
  CHECK(isnan(get(o, 0)) && get(oi, 0) == 1 && get(o, 1) == 2 && get(oi, 1) == 3, "min with NaN");
  nnl_k_reduce_all(NNL_RED_SUM, ib, &r, &ix, 0);
  int64_t want = 0;
  for (int64_t k = 0; k < 60; k++) want += (int64_t)get(ib, k);
  CHECK(ix == want, "exact int sum");
  /* errors and empties */
  nnl_tensor *e = MK(NNL_F32, 0, 3), *e3 = MK(NNL_F32, 3);
  CHECK(nnl_k_reduce_all(NNL_RED_MAX, e, &r, &ix, 0) == -1 &&
            !strcmp(nnl_last_error(), "max: cannot reduce an empty tensor"), "%s", nnl_last_error());
  CHECK(nnl_k_reduce_all(NNL_RED_SUM, e, &r, &ix, 0) == 0 && r == 0, "empty sum");
  CHECK(nnl_k_reduce_dim(NNL_RED_SUM, e3, NULL, e, 0, 0) == 0 && get(e3, 2) == 0, "sum over size 0");
  CHECK(nnl_k_reduce_dim(NNL_RED_ARGMIN, e3, NULL, e, 0, 0) == -1 &&
            !strcmp(nnl_last_error(), "argmin: out must be int64 but is float32"), "%s", nnl_last_error());
  CHECK(nnl_k_reduce_dim(NNL_RED_MEAN, oi, NULL, ib, 3, 0) == -1 &&
            !strcmp(nnl_last_error(), "mean: dim 3 is out of range for a 3-d tensor"), "%s", nnl_last_error());
  CHECK(nnl_k_reduce_dim(NNL_RED_MEAN, oi, NULL, ib, 0, 0) == -1 &&
            !strcmp(nnl_last_error(), "mean: not supported for int64 tensors (convert to float32 first)"),
        "%s", nnl_last_error());
}

/* ---- indexing ---- */

static void test_index(void) {
  nnl_tensor *a = MK(NNL_F32, 7, 5), *at = transposed(a, 0, 1); /* at: [5, 7] */
  randomize(a, -5, 5, 0);
  nnl_tensor *ix = MK(NNL_I64, 8), *ixs = alias(ix);
  int64_t iv[8] = {6, 0, 3, 3, 6, 1, 2, 5};
  memcpy(ix->storage->data, iv, sizeof iv);
  ixs->shape[0] = 4, ixs->stride[0] = 2; /* {6, 3, 6, 2} */
  nnl_tensor *o1 = MK(NNL_F32, 5, 4), *o0 = MK(NNL_F32, 8, 5);
  CHECK(nnl_k_index_select(o1, at, 1, ixs) == 0, "index_select: %s", nnl_last_error());
  int ok = 1;
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++) ok &= get(o1, i * 4 + j) == get(at, i * 7 + iv[2 * j]);
  CHECK(ok, "index_select dim 1 of a transposed view, strided index");
  CHECK(nnl_k_index_select(o0, a, 0, ix) == 0, "index_select rows");
  ok = 1;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 5; j++) ok &= get(o0, i * 5 + j) == get(a, iv[i] * 5 + j);
  CHECK(ok, "index_select dim 0 (row copies)");
  /* gather: index [5, 3] into at [5, 7] along dim 1 */
  nnl_tensor *gi = MK(NNL_I64, 5, 3), *go = MK(NNL_F32, 5, 3);
  randomize(gi, 0, 7, 1);
  CHECK(nnl_k_gather(go, at, 1, gi) == 0, "gather: %s", nnl_last_error());
  ok = 1;
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 3; j++) ok &= get(go, i * 3 + j) == get(at, i * 7 + (int64_t)get(gi, i * 3 + j));
  CHECK(ok, "gather values");
  /* scatter_add with repeated indices, on threads: out [40, 300], index [40, 2000] along dim 1 */
  nnl_tensor *so = MK(NNL_F32, 40, 300), *si = MK(NNL_I64, 40, 2000), *ss = MK(NNL_F32, 40, 2000);
  randomize(si, 0, 300, 1), randomize(ss, -1, 1, 0), randomize(so, -1, 1, 0);
  double *ref = keep(malloc(sizeof(double) * 12000));
  for (int64_t k = 0; k < 12000; k++) ref[k] = get(so, k);
  for (int64_t i = 0; i < 40; i++)
    for (int64_t j = 0; j < 2000; j++) ref[i * 300 + (int64_t)get(si, i * 2000 + j)] += (float)get(ss, i * 2000 + j);
  CHECK(nnl_k_scatter_add(so, 1, si, ss) == 0, "scatter_add: %s", nnl_last_error());
  double worst = 0;
  for (int64_t k = 0; k < 12000; k++) worst = fmax(worst, fabs(get(so, k) - ref[k]));
  CHECK(worst < 1e-4, "scatter_add: largest difference %g", worst);
  /* index_add along dim 0 (index_select's backward) */
  nnl_tensor *ao = MK(NNL_F32, 7, 5), *src = MK(NNL_F32, 8, 5);
  randomize(src, -1, 1, 0);
  CHECK(nnl_k_index_add(ao, 0, ix, src) == 0, "index_add");
  ok = 1;
  for (int r = 0; r < 7; r++)
    for (int j = 0; j < 5; j++) {
      float w = 0;
      for (int i = 0; i < 8; i++)
        if (iv[i] == r) w += (float)get(src, i * 5 + j);
      ok &= fabs(get(ao, r * 5 + j) - w) < 1e-6;
    }
  CHECK(ok, "index_add values");
  /* scatter_dim: max over dim 1 of [4, 6], with the dim removed and kept */
  nnl_tensor *gin = MK(NNL_F32, 4, 6), *gout = MK(NNL_F32, 4), *mi = MK(NNL_I64, 4), *mik = alias(mi);
  int64_t mv[4] = {5, 0, 2, 2};
  memcpy(mi->storage->data, mv, sizeof mv);
  randomize(gout, 1, 2, 0);
  mik->ndim = 2, mik->shape[1] = 1, mik->stride[1] = 1;
  nnl_tensor *goutk = alias(gout);
  goutk->ndim = 2, goutk->shape[1] = 1, goutk->stride[1] = 1;
  CHECK(nnl_k_scatter_dim(gin, gout, mi, 1) == 0 && nnl_k_scatter_dim(gin, goutk, mik, 1) == 0,
        "scatter_dim: %s", nnl_last_error());
  ok = 1;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 6; j++) ok &= get(gin, i * 6 + j) == (j == mv[i] ? 2 * (float)get(gout, i) : 0);
  CHECK(ok, "scatter_dim values");
  /* one_hot */
  nnl_tensor *oh = MK(NNL_I64, 4, 2, 7);
  CHECK(nnl_k_one_hot(oh, transposed(alias(ixs), 0, 0), 7) == -1, "one_hot shape check");
  nnl_tensor *ix42 = alias(ix);
  ix42->ndim = 2, ix42->shape[0] = 4, ix42->shape[1] = 2, ix42->stride[0] = 2, ix42->stride[1] = 1;
  CHECK(nnl_k_one_hot(oh, ix42, 7) == 0, "one_hot: %s", nnl_last_error());
  ok = 1;
  for (int i = 0; i < 8; i++)
    for (int c = 0; c < 7; c++) ok &= get(oh, i * 7 + c) == (c == iv[i]);
  CHECK(ok, "one_hot values");
  /* every index is checked before anything is written */
  iv[6] = 12;
  memcpy(ix->storage->data, iv, sizeof iv);
  float before = (float)get(o0, 0);
  CHECK(nnl_k_index_select(o0, a, 0, ix) == -1 &&
            !strcmp(nnl_last_error(), "index_select: index 12 is out of range for dimension 0 of size 7"),
        "%s", nnl_last_error());
  CHECK(get(o0, 0) == before, "nothing written on error");
  set(gi, 4, -1);
  CHECK(nnl_k_gather(go, at, 1, gi) == -1 &&
            !strcmp(nnl_last_error(), "gather: index -1 is out of range for dimension 1 of size 7"),
        "%s", nnl_last_error());
  CHECK(nnl_k_index_add(ao, 0, ix, src) == -1 &&
            !strcmp(nnl_last_error(), "index_add: index 12 is out of range for dimension 0 of size 7"),
        "%s", nnl_last_error());
  set(si, 77, 300);
  CHECK(nnl_k_scatter_add(so, 1, si, ss) == -1 &&
            !strcmp(nnl_last_error(), "scatter_add: index 300 is out of range for dimension 1 of size 300"),
        "%s", nnl_last_error());
  CHECK(nnl_k_one_hot(oh, ix42, 7) == -1 &&
            !strcmp(nnl_last_error(), "one_hot: class 12 is out of range for 7 classes"), "%s", nnl_last_error());
  CHECK(nnl_k_gather(go, at, 2, gi) == -1 &&
            !strcmp(nnl_last_error(), "gather: dim 2 is out of range for a 2-d tensor"), "%s", nnl_last_error());
}

/* ---- printing, against PyTorch 1.13's repr (int64/uint8 dtype spelled our way) ---- */

static nnl_tensor *from(nnl_dtype dt, int nd, const int64_t *shape, const double *v) {
  nnl_tensor *t = mk(dt, nd, shape);
  for (int64_t k = 0; k < numel(t); k++) set(t, k, v[k]);
  return t;
}
#define SH(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__}
#define FROM(dt, sh, ...) from(dt, sh, (double[]){__VA_ARGS__})

static void check_print(const nnl_tensor *t, const char *suffix, const char *want) {
  char *got = nnl_tensor_format(t, 1000, 3, suffix);
  CHECK(got && !strcmp(got, want), "print:\n got: %s\nwant: %s", got, want);
  free(got);
}

static void test_print(void) {
  check_print(FROM(NNL_F32, SH(2, 3), 1, 2.5, -3, 4, 5, 6), NULL,
              "tensor([[ 1.0000,  2.5000, -3.0000],\n        [ 4.0000,  5.0000,  6.0000]])");
  check_print(FROM(NNL_F32, SH(3), 1, 2, 3), NULL, "tensor([1., 2., 3.])");
  check_print(FROM(NNL_F32, SH(1), 3.5), NULL, "tensor([3.5000])");
  nnl_tensor *z = FROM(NNL_F32, SH(1), 3.5);
  z->ndim = 0;
  check_print(z, NULL, "tensor(3.5000)");
  check_print(MK(NNL_F32, 0, 3), NULL, "tensor([], size=(0, 3))");
  check_print(MK(NNL_I64, 0), NULL, "tensor([], dtype=int64)");
  check_print(FROM(NNL_F32, SH(3), 1e10, 1, -2.5), NULL, "tensor([ 1.0000e+10,  1.0000e+00, -2.5000e+00])");
  check_print(FROM(NNL_F32, SH(2), 1e-5, 1), NULL, "tensor([1.0000e-05, 1.0000e+00])");
  check_print(FROM(NNL_F32, SH(4), NAN, INFINITY, -INFINITY, 1), NULL, "tensor([nan, inf, -inf, 1.])");
  check_print(FROM(NNL_F32, SH(2, 2), -NAN, 1e-9, -INFINITY, 2), NULL,
              "tensor([[       nan, 1.0000e-09],\n        [      -inf, 2.0000e+00]])");
  check_print(FROM(NNL_F32, SH(2), -0.0, 1.5), NULL, "tensor([-0.0000, 1.5000])");
  check_print(FROM(NNL_F32, SH(2), 0, 0), NULL, "tensor([0., 0.])");
  check_print(FROM(NNL_F32, SH(2), 123456.789, 0.5), NULL, "tensor([1.2346e+05, 5.0000e-01])");
  check_print(FROM(NNL_I64, SH(2, 3), 1, -20, 3, 4, 5, 6), NULL,
              "tensor([[  1, -20,   3],\n        [  4,   5,   6]], dtype=int64)");
  check_print(FROM(NNL_U8, SH(2), 3, 200), NULL, "tensor([  3, 200], dtype=uint8)");
  z = FROM(NNL_I64, SH(1), 7);
  z->ndim = 0;
  check_print(z, NULL, "tensor(7, dtype=int64)");
  nnl_tensor *r = MK(NNL_F32, 1010), *ri = MK(NNL_I64, 1010), *m = MK(NNL_F32, 40, 50);
  nnl_tensor *c = MK(NNL_F32, 2, 3, 5), *l = MK(NNL_F32, 10), *w = MK(NNL_F32, 8);
  for (int64_t k = 0; k < 2000; k++) {
    if (k < 1010) set(r, k, (double)k / 3), set(ri, k, (double)k);
    if (k < 30) set(c, k, (double)k);
    if (k < 10) set(l, k, 1.25 * (double)k);
    if (k < 8) set(w, k, 10 + 1.25 * (double)k);
    set(m, k, (double)k);
  }
  check_print(ri, NULL, "tensor([   0,    1,    2,  ..., 1007, 1008, 1009], dtype=int64)");
  check_print(r, NULL, "tensor([0.0000e+00, 3.3333e-01, 6.6667e-01,  ..., 3.3567e+02, 3.3600e+02,\n"
                       "        3.3633e+02])");
  check_print(m, NULL,
              "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
              "         4.9000e+01],\n"
              "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
              "         9.9000e+01],\n"
              "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
              "         1.4900e+02],\n"
              "        ...,\n"
              "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
              "         1.8990e+03],\n"
              "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
              "         1.9490e+03],\n"
              "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
              "         1.9990e+03]])");
  check_print(c, NULL,
              "tensor([[[ 0.,  1.,  2.,  3.,  4.],\n         [ 5.,  6.,  7.,  8.,  9.],\n"
              "         [10., 11., 12., 13., 14.]],\n\n        [[15., 16., 17., 18., 19.],\n"
              "         [20., 21., 22., 23., 24.],\n         [25., 26., 27., 28., 29.]]])");
  check_print(l, "grad_fn=<MulBackward0>",
              "tensor([ 0.0000,  1.2500,  2.5000,  3.7500,  5.0000,  6.2500,  7.5000,  8.7500,\n"
              "        10.0000, 11.2500], grad_fn=<MulBackward0>)");
  check_print(w, "requires_grad=True",
              "tensor([10.0000, 11.2500, 12.5000, 13.7500, 15.0000, 16.2500, 17.5000, 18.7500],\n"
              "       requires_grad=True)");
  check_print(transposed(FROM(NNL_F32, SH(3, 2), 1, 2, 3, 4, 5, 6), 0, 1), NULL,
              "tensor([[1., 3., 5.],\n        [2., 4., 6.]])");
}

int main(void) {
  test_binary();
  test_unary();
  test_unary_backward();
  test_misc_elementwise();
  test_reduce();
  test_index();
  test_print();
  for (int i = 0; i < nowned; i++) free(owned[i]);
  printf("test_tensorops: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
