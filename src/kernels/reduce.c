/* reduce.c — sum, mean, max, min, prod, argmax, argmin, std and var, over everything or one dim.
 * Sums accumulate in double; parallel results combine in a fixed order, so runs repeat exactly. */
#include "tensorops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define MAXT 256 /* per-thread partials live on the stack: no allocation */
/* Columns reduced together when the reduced dim is not innermost: wide tiles read long
 * contiguous pieces of each row, which is what keeps a column sum at memory speed. */
#define TILE 1024
#define MINTILE 64
#define MAXSPLIT 16 /* narrow column sums split down the rows into at most this many parts */

static const char *redname[] = {"sum", "mean", "max", "min", "prod", "argmax", "argmin", "std", "var"};

/* "max" is exceeded by a NaN and by nothing after it: the first NaN wins, as in PyTorch. */
static inline int beats(int want_max, double v, double best) {
  return (want_max ? v > best : v < best) || (v != v && best == best);
}
static inline int is_max(nnl_redop op) { return op == NNL_RED_MAX || op == NNL_RED_ARGMAX; }
static inline int is_ext(nnl_redop op) {
  return op == NNL_RED_MAX || op == NNL_RED_MIN || op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN;
}
static inline double var_div(int64_t n, int correction) {
  return n - correction > 0 ? (double)(n - correction) : 0.0; /* 0: NaN or inf as in PyTorch */
}

static int check_ops(nnl_redop op, nnl_dtype dt) {
  if (dt == NNL_F32 || op == NNL_RED_SUM || op == NNL_RED_PROD || is_ext(op)) return 1;
  nnl_set_error("%s: not supported for %s tensors (convert to float32 first)", redname[op],
                nnl_dtype_name(dt));
  return 0;
}

static inline int64_t ldi(const char *p, nnl_dtype dt) {
  return dt == NNL_I64 ? *(const int64_t *)p : (int64_t)*(const uint8_t *)p;
}

/* ---- over all elements ---- */

typedef struct {
  nnl_redop op;
  nnl_dtype dt;
  int pass2;     /* STD/VAR second pass: sum of squared deviations from mean */
  double mean;
  int64_t pos;   /* row-major position of the next element this thread sees */
  double sum;    /* SUM MEAN STD VAR; product for PROD */
  int64_t isum;  /* integer SUM/PROD, exact (wrapping) */
  double best;   /* MAX MIN ARG* */
  int64_t ibest; /* integer MAX MIN ARG* */
  int64_t at;    /* position of best */
  int have;
  char pad[64]; /* keep threads' partials on separate cache lines */
} accum;

static void all_f32_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  accum *c = ctx;
  const float *a = (const float *)p[0];
  const int64_t sa = s[0];
  if (c->op == NNL_RED_PROD) {
    double r = c->sum;
    for (int64_t i = 0; i < n; i++) r *= a[i * sa];
    c->sum = r;
  } else if (is_ext(c->op)) {
    const int mx = is_max(c->op);
    int64_t i = 0;
    if (!c->have) {
      c->best = a[0], c->at = c->pos, c->have = 1;
      i = 1;
    }
    for (; i < n; i++)
      if (beats(mx, a[i * sa], c->best)) c->best = a[i * sa], c->at = c->pos + i;
  } else if (c->pass2) {
    double r = 0, m = c->mean;
#pragma omp simd reduction(+ : r)
    for (int64_t i = 0; i < n; i++) r += (a[i * sa] - m) * (a[i * sa] - m);
    c->sum += r;
  } else {
    double r = 0;
#pragma omp simd reduction(+ : r)
    for (int64_t i = 0; i < n; i++) r += a[i * sa];
    c->sum += r;
  }
  c->pos += n;
}

static void all_int_run(void *ctx, char **p, const int64_t *s, int64_t n) {
  accum *c = ctx;
  const int64_t step = s[0] * nnl_k_itemsize(c->dt);
  const int mx = is_max(c->op);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = ldi(p[0] + i * step, c->dt);
    if (c->op == NNL_RED_SUM) c->isum = (int64_t)((uint64_t)c->isum + (uint64_t)v);
    else if (c->op == NNL_RED_PROD) c->isum = (int64_t)((uint64_t)c->isum * (uint64_t)v);
    else if (!c->have || (mx ? v > c->ibest : v < c->ibest))
      c->ibest = v, c->at = c->pos + i, c->have = 1;
  }
  c->pos += n;
}

/* One pass over a, each thread folding its own contiguous range into part[t]. */
static int all_pass(const nnl_k_iter *it, accum *part, const accum *init, int64_t work) {
  int want = work > NNL_PAR_MIN ? omp_get_max_threads() : 1, used = 1;
  if (want > MAXT) want = MAXT;
  const int64_t n = it->numel;
  nnl_k_run_fn fn = init->dt == NNL_F32 ? all_f32_run : all_int_run;
#pragma omp parallel num_threads(want) if(want > 1)
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t q = n / nt, rem = n % nt;
    int64_t lo = t * q + (t < rem ? t : rem), hi = lo + q + (t < rem);
    part[t] = *init;
    part[t].pos = lo;
    if (hi > lo) nnl_k_iter_range(it, lo, hi, fn, &part[t]);
    if (t == 0) used = (int)nt;
  }
  return used;
}

int nnl_k_reduce_all(nnl_redop op, const nnl_tensor *a, double *result, int64_t *index,
                     int correction) {
  if (!check_ops(op, a->dtype)) return -1;
  const nnl_tensor *ops[1] = {a};
  nnl_k_iter it;
  nnl_k_iter_init(&it, 1, ops);
  const int64_t n = it.numel;
  double r = 0;
  int64_t ix = 0;
  if (n == 0) {
    if (is_ext(op)) {
      nnl_set_error("%s: cannot reduce an empty tensor", redname[op]);
      return -1;
    }
    r = op == NNL_RED_SUM ? 0.0 : op == NNL_RED_PROD ? 1.0 : NAN;
    ix = op == NNL_RED_PROD;
    *result = r;
    if (index) *index = a->dtype != NNL_F32 ? ix : 0;
    return 0;
  }
  accum part[MAXT], init;
  memset(&init, 0, sizeof init);
  init.op = op;
  init.dt = a->dtype;
  init.sum = op == NNL_RED_PROD ? 1.0 : 0.0;
  init.isum = op == NNL_RED_PROD;
  int nt = all_pass(&it, part, &init, n);
  /* combine in thread order: the same thread count always gives the same bits */
  if (is_ext(op)) {
    const int mx = is_max(op);
    accum *b = &part[0];
    for (int t = 1; t < nt; t++) {
      if (!part[t].have) continue;
      int better = a->dtype == NNL_F32 ? beats(mx, part[t].best, b->best)
                                       : (mx ? part[t].ibest > b->ibest : part[t].ibest < b->ibest);
      if (better) b = &part[t];
    }
    ix = b->at;
    r = op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN ? (double)ix
        : a->dtype == NNL_F32                        ? b->best
                                                     : (double)b->ibest;
  } else if (a->dtype != NNL_F32) {
    int64_t acc = part[0].isum;
    for (int t = 1; t < nt; t++)
      acc = op == NNL_RED_SUM ? (int64_t)((uint64_t)acc + (uint64_t)part[t].isum)
                              : (int64_t)((uint64_t)acc * (uint64_t)part[t].isum);
    ix = acc;
    r = (double)acc;
  } else {
    double acc = part[0].sum;
    for (int t = 1; t < nt; t++) acc = op == NNL_RED_PROD ? acc * part[t].sum : acc + part[t].sum;
    r = acc;
    if (op == NNL_RED_MEAN) r = acc / (double)n;
    if (op == NNL_RED_STD || op == NNL_RED_VAR) { /* two passes: exact enough in double */
      init.pass2 = 1;
      init.mean = acc / (double)n;
      nt = all_pass(&it, part, &init, n);
      double ss = 0;
      for (int t = 0; t < nt; t++) ss += part[t].sum;
      r = ss / var_div(n, correction);
      if (op == NNL_RED_STD) r = sqrt(r);
    }
  }
  *result = r;
  if (index) *index = ix;
  return 0;
}

/* ---- along one dim ---- */

/* Sum (or squared deviations from mean) in double; omp simd gives independent lanes. */
static double sum_f32(const float *p, int64_t n, int64_t stride, double mean, int squares) {
  /* p: (n,) with stride */
  double s = 0;
  if (squares) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += (p[i * stride] - mean) * (p[i * stride] - mean);
  } else if (stride == 1) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += p[i];
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += p[i * stride];
  }
  return s;
}

/* acc[j] = sum of base[r * sr + j] over rows [r0, r1). */
static void colsum_f32(double *acc, const float *base, int64_t r0, int64_t r1, int64_t sr,
                       int64_t len) {
  /* acc: (len,); base: (R, len) with row stride sr */
  for (int64_t j = 0; j < len; j++) acc[j] = 0;
  for (int64_t r = r0; r < r1; r++) {
    const float *row = base + r * sr;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) acc[j] += row[j];
  }
}

/* Reduce R elements base[0], base[sr], ... into *o (float) or *oi (int64 for ARG*). */
static void row_f32(nnl_redop op, void *out, int64_t *ind, const float *base, int64_t R,
                    int64_t sr, int correction) {
  /* base: (R,) with stride sr */
  if (is_ext(op)) {
    /* beats() without branches on the data (a classifier's argmax over 10 logits per row
     * mispredicted about every other compare): a NaN wins at once and nothing beats it */
    float best = base[0];
    int64_t at = 0;
    const int mx = is_max(op);
    if (best == best)
      for (int64_t r = 1; r < R; r++) {
        float v = base[r * sr];
        if (v != v) { best = v, at = r; break; }
        int b = mx ? v > best : v < best;
        best = b ? v : best, at = b ? r : at;
      }
    if (op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN) *(int64_t *)out = at;
    else *(float *)out = best;
    if (ind) *ind = at;
    return;
  }
  if (op == NNL_RED_PROD) {
    double p = 1;
    for (int64_t r = 0; r < R; r++) p *= base[r * sr];
    *(float *)out = (float)p;
    return;
  }
  const double s = sum_f32(base, R, sr, 0.0, 0);
  if (op == NNL_RED_SUM) {
    *(float *)out = (float)s;
    return;
  }
  const double m = s / (double)R;
  if (op == NNL_RED_MEAN) {
    *(float *)out = (float)m;
    return;
  }
  double v = sum_f32(base, R, sr, m, 1) / var_div(R, correction);
  *(float *)out = (float)(op == NNL_RED_STD ? sqrt(v) : v);
}

static void row_int(nnl_redop op, nnl_dtype dt, void *out, int64_t *ind, const char *base,
                    int64_t R, int64_t sr) {
  /* base: (R,) of dt with stride sr (elements) */
  const int64_t step = sr * nnl_k_itemsize(dt);
  if (op == NNL_RED_SUM || op == NNL_RED_PROD) {
    uint64_t acc = op == NNL_RED_PROD;
    for (int64_t r = 0; r < R; r++) {
      uint64_t v = (uint64_t)ldi(base + r * step, dt);
      acc = op == NNL_RED_SUM ? acc + v : acc * v;
    }
    *(int64_t *)out = (int64_t)acc;
    return;
  }
  const int mx = is_max(op);
  int64_t best = ldi(base, dt), at = 0;
  for (int64_t r = 1; r < R; r++) {
    int64_t v = ldi(base + r * step, dt);
    if (mx ? v > best : v < best) best = v, at = r;
  }
  if (op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN) *(int64_t *)out = at;
  else if (dt == NNL_I64) *(int64_t *)out = best;
  else *(uint8_t *)out = (uint8_t)best;
  if (ind) *ind = at;
}

/* Reduce R rows of len (<= TILE) adjacent columns: column sums of [R, I] and the like. */
static void tile_f32(nnl_redop op, void *out, int64_t *ind, const float *base, int64_t R,
                     int64_t sr, int64_t len, int correction) {
  /* base: (R, len) with row stride sr, unit column stride; out, ind: (len,) */
  if (is_ext(op)) {
    const int mx = is_max(op);
    float best[TILE];
    int64_t at[TILE];
    for (int64_t j = 0; j < len; j++) best[j] = base[j], at[j] = 0;
    for (int64_t r = 1; r < R; r++) {
      const float *row = base + r * sr;
      for (int64_t j = 0; j < len; j++)
        if (beats(mx, row[j], best[j])) best[j] = row[j], at[j] = r;
    }
    for (int64_t j = 0; j < len; j++) {
      if (op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN) ((int64_t *)out)[j] = at[j];
      else ((float *)out)[j] = best[j];
      if (ind) ind[j] = at[j];
    }
    return;
  }
  double acc[TILE];
  if (op == NNL_RED_PROD) {
    for (int64_t j = 0; j < len; j++) acc[j] = 1.0;
    for (int64_t r = 0; r < R; r++)
      for (int64_t j = 0; j < len; j++) acc[j] *= base[r * sr + j];
  } else {
    colsum_f32(acc, base, 0, R, sr, len);
  }
  float *o = out;
  if (op == NNL_RED_SUM || op == NNL_RED_PROD) {
    for (int64_t j = 0; j < len; j++) o[j] = (float)acc[j];
    return;
  }
  for (int64_t j = 0; j < len; j++) acc[j] /= (double)R;
  if (op == NNL_RED_MEAN) {
    for (int64_t j = 0; j < len; j++) o[j] = (float)acc[j];
    return;
  }
  double ss[TILE] = {0};
  for (int64_t r = 0; r < R; r++) {
    const float *row = base + r * sr;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) ss[j] += (row[j] - acc[j]) * (row[j] - acc[j]);
  }
  const double dv = var_div(R, correction);
  for (int64_t j = 0; j < len; j++)
    o[j] = (float)(op == NNL_RED_STD ? sqrt(ss[j] / dv) : ss[j] / dv);
}

/* The kept dims of a, merged where contiguous, so element k's offset is a few div/mods. */
typedef struct {
  int nd;
  int64_t shape[NNL_MAXDIM], stride[NNL_MAXDIM];
} dims;

static void dims_add(dims *g, int64_t size, int64_t stride) {
  if (size == 1) return;
  if (g->nd > 0 && g->stride[g->nd - 1] == stride * size) {
    g->shape[g->nd - 1] *= size;
    g->stride[g->nd - 1] = stride;
    return;
  }
  g->shape[g->nd] = size;
  g->stride[g->nd] = stride;
  g->nd++;
}

static inline int64_t dims_offset(const dims *g, int64_t k) {
  if (g->nd == 1) return k * g->stride[0]; /* no divisions (two per output element otherwise) */
  int64_t off = 0;
  for (int d = g->nd - 1; d >= 0; d--) {
    off += (k % g->shape[d]) * g->stride[d];
    k /= g->shape[d];
  }
  return off;
}

static nnl_dtype out_dtype(nnl_redop op, nnl_dtype in) {
  if (op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN) return NNL_I64;
  if (in == NNL_F32) return NNL_F32;
  return op == NNL_RED_SUM || op == NNL_RED_PROD ? NNL_I64 : in;
}

int nnl_k_reduce_dim(nnl_redop op, nnl_tensor *out, nnl_tensor *indices, const nnl_tensor *a,
                     int dim, int correction) {
  nnl_tensor a1;
  if (a->ndim == 0) { /* a 0-d tensor reduces like shape [1] */
    a1 = *a;
    a1.ndim = 1;
    a1.shape[0] = 1;
    a1.stride[0] = 1;
    a = &a1;
  }
  if (dim < 0 || dim >= a->ndim) {
    nnl_set_error("%s: dim %d is out of range for a %d-d tensor", redname[op], dim, a->ndim);
    return -1;
  }
  if (!check_ops(op, a->dtype)) return -1;
  nnl_dtype odt = out_dtype(op, a->dtype);
  if (out->dtype != odt) {
    nnl_set_error("%s: out must be %s but is %s", redname[op], nnl_dtype_name(odt),
                  nnl_dtype_name(out->dtype));
    return -1;
  }
  const int64_t R = a->shape[dim], sr = a->stride[dim];
  int64_t O = 1, I = 1, nout = nnl_k_numel(out);
  for (int d = 0; d < dim; d++) O *= a->shape[d];
  for (int d = dim + 1; d < a->ndim; d++) I *= a->shape[d];
  if (nout != O * I || !nnl_k_is_contiguous(out)) {
    nnl_set_error("%s: out must be contiguous with %lld elements", redname[op], (long long)(O * I));
    return -1;
  }
  if (!is_ext(op) || op == NNL_RED_ARGMAX || op == NNL_RED_ARGMIN) indices = NULL;
  if (indices && (indices->dtype != NNL_I64 || nnl_k_numel(indices) != nout ||
                  !nnl_k_is_contiguous(indices))) {
    nnl_set_error("%s: indices must be a contiguous int64 tensor of %lld elements", redname[op],
                  (long long)nout);
    return -1;
  }
  if (nout == 0) return 0;
  if (R == 0) {
    if (is_ext(op)) {
      nnl_set_error("%s: cannot reduce over dimension %d of size 0", redname[op], dim);
      return -1;
    }
    nnl_k_fill(out, op == NNL_RED_SUM ? 0.0 : op == NNL_RED_PROD ? 1.0 : NAN);
    return 0;
  }
  const int64_t osz = nnl_k_itemsize(odt), asz = nnl_k_itemsize(a->dtype);
  const char *A = (const char *)a->storage->data + a->offset * asz;
  char *OUT = (char *)out->storage->data + out->offset * osz;
  int64_t *IND = indices ? (int64_t *)indices->storage->data + indices->offset : NULL;
  const int64_t work = O * R * I;

  int inner_contig = 1; /* dims after dim form one unit-stride block */
  for (int64_t d = a->ndim - 1, expect = 1; d > dim; d--) {
    if (a->shape[d] != 1 && a->stride[d] != expect) inner_contig = 0;
    expect *= a->shape[d];
  }

  if (a->dtype == NNL_F32 && I > 1 && inner_contig) {
    /* columns: tiles as wide as possible while there are enough for every thread */
    dims g = {0};
    for (int d = 0; d < dim; d++) dims_add(&g, a->shape[d], a->stride[d]);
    const int64_t nt = work > NNL_PAR_MIN ? omp_get_max_threads() : 1;
    const int64_t per_o = (nt + O - 1) / O; /* tiles wanted per outer index */
    int64_t tw = (I + per_o - 1) / per_o;
    tw = tw < MINTILE ? MINTILE : tw > TILE ? TILE : (tw + 15) / 16 * 16;
    const int64_t ntile = (I + tw - 1) / tw, W = O * ntile;
    if ((op == NNL_RED_SUM || op == NNL_RED_MEAN) && W < nt && W * 2 <= MAXSPLIT &&
        tw == MINTILE && R >= 64) {
      /* still too few tiles (bias gradients of narrow layers): split the rows as well,
       * then add the partials in a fixed order */
      const int64_t P = nt / W < MAXSPLIT / W ? nt / W : MAXSPLIT / W;
      double part[MAXSPLIT][MINTILE];
#pragma omp parallel for schedule(static)
      for (int64_t task = 0; task < W * P; task++) {
        int64_t w = task / P, p = task % P, o = w / ntile, i0 = (w % ntile) * tw;
        int64_t len = I - i0 < tw ? I - i0 : tw;
        colsum_f32(part[task], (const float *)A + dims_offset(&g, o) + i0, R * p / P,
                   R * (p + 1) / P, sr, len);
      }
      for (int64_t w = 0; w < W; w++) {
        int64_t o = w / ntile, i0 = (w % ntile) * tw, len = I - i0 < tw ? I - i0 : tw;
        float *dst = (float *)OUT + o * I + i0;
        for (int64_t j = 0; j < len; j++) {
          double t = 0;
          for (int64_t p = 0; p < P; p++) t += part[w * P + p][j];
          dst[j] = (float)(op == NNL_RED_MEAN ? t / (double)R : t);
        }
      }
      return 0;
    }
#pragma omp parallel for schedule(static) if(work > NNL_PAR_MIN)
    for (int64_t w = 0; w < W; w++) {
      int64_t o = w / ntile, i0 = (w % ntile) * tw, len = I - i0 < tw ? I - i0 : tw;
      const float *base = (const float *)A + dims_offset(&g, o) + i0;
      tile_f32(op, OUT + (o * I + i0) * osz, IND ? IND + o * I + i0 : NULL, base, R, sr, len,
               correction);
    }
    return 0;
  }
  /* rows: each output element reduces its own line of R elements */
  dims g = {0};
  for (int d = 0; d < a->ndim; d++)
    if (d != dim) dims_add(&g, a->shape[d], a->stride[d]);
  if (a->dtype == NNL_F32) {
#pragma omp parallel for schedule(static) if(work > NNL_PAR_MIN)
    for (int64_t k = 0; k < nout; k++)
      row_f32(op, OUT + k * osz, IND ? IND + k : NULL, (const float *)A + dims_offset(&g, k), R,
              sr, correction);
  } else {
#pragma omp parallel for schedule(static) if(work > NNL_PAR_MIN)
    for (int64_t k = 0; k < nout; k++)
      row_int(op, a->dtype, OUT + k * osz, IND ? IND + k : NULL, A + dims_offset(&g, k) * asz,
              R, sr);
  }
  return 0;
}
