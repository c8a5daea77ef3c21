/* loss.c — losses: cross_entropy (log_softmax + nll, label smoothing), nll_loss, mse_loss,
 * binary_cross_entropy_with_logits; PyTorch's reductions, weights and ignore_index. */
#include "dense.h"

#include <math.h>
#include <stddef.h>

/* A mean or sum adds fixed chunks of the items (in double), then the chunk sums in order, so
 * the result is the same for any number of threads. */
#define NCHUNK 64

static inline int64_t chunk_lo(int64_t n, int c) { return n * c / NCHUNK; }

/* sum of items [lo, hi) of a loss described by ctx */
typedef double (*chunk_sum_fn)(const void *ctx, int64_t lo, int64_t hi);

static double sum_chunks(chunk_sum_fn f, const void *ctx, int64_t n, int64_t work) {
  double part[NCHUNK];
#pragma omp parallel for if (work > NNL_PAR_MIN)
  for (int c = 0; c < NCHUNK; c++) part[c] = f(ctx, chunk_lo(n, c), chunk_lo(n, c + 1));
  double s = 0.0;
  for (int c = 0; c < NCHUNK; c++) s += part[c];
  return s;
}

static inline float class_w(const float *weight, int64_t c) { return weight ? weight[c] : 1.0f; }

/* a class-index loss over rows r = n * inner + k */
typedef struct {
  const float *logp;     /* (N, C, inner) */
  const int64_t *labels; /* (N, inner) */
  const float *weight;   /* (C) or NULL */
  int64_t C, inner, ignore_index;
  float eps;             /* label smoothing */
} class_ctx;

/* Loss of row r: (1-eps) * w[y] * -logp[y] + eps/C * sum_c w[c] * -logp[c]. */
static inline double row_loss(const class_ctx *k, int64_t r) {
  int64_t y = k->labels[r], C = k->C, s = k->inner;
  const float *lp = k->logp + (r / s) * C * s + r % s; /* classes s apart */
  double nll = -(double)class_w(k->weight, y) * lp[y * s];
  if (k->eps == 0.0f) return nll;
  double smooth = 0.0;
  for (int64_t c = 0; c < C; c++) smooth -= (double)class_w(k->weight, c) * lp[c * s];
  return (1.0 - k->eps) * nll + (double)k->eps / (double)C * smooth;
}

static double class_loss_chunk(const void *ctx, int64_t lo, int64_t hi) {
  const class_ctx *k = ctx;
  double s = 0.0;
  for (int64_t r = lo; r < hi; r++)
    if (k->labels[r] != k->ignore_index) s += row_loss(k, r);
  return s;
}

/* the mean's denominator: summed class weight of the targets that are not ignored */
static double class_weight_chunk(const void *ctx, int64_t lo, int64_t hi) {
  const class_ctx *k = ctx;
  double s = 0.0;
  for (int64_t r = lo; r < hi; r++)
    if (k->labels[r] != k->ignore_index) s += class_w(k->weight, k->labels[r]);
  return s;
}

/* Shared by cross_entropy (on its log-probs) and nll_loss (eps = 0). */
static void class_loss(float *loss, const class_ctx *k, int64_t rows, nnl_reduction reduction) {
  int64_t work = rows * (k->eps != 0.0f ? k->C : 1);
  if (reduction == NNL_REDUCTION_NONE) {
#pragma omp parallel for if (work > NNL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
      loss[r] = k->labels[r] == k->ignore_index ? 0.0f : (float)row_loss(k, r);
    return;
  }
  double s = sum_chunks(class_loss_chunk, k, rows, work);
  if (reduction == NNL_REDUCTION_MEAN) s /= sum_chunks(class_weight_chunk, k, rows, rows);
  loss[0] = (float)s;
}

/* d loss / d (one row's loss) for mean and sum; for none it is dloss[r] */
static float class_scale(const class_ctx *k, const float *dloss, int64_t rows,
                         nnl_reduction reduction) {
  if (reduction == NNL_REDUCTION_MEAN)
    return (float)(dloss[0] / sum_chunks(class_weight_chunk, k, rows, rows));
  return dloss[0];
}

void nnl_cross_entropy_forward(float *loss,           /* (1) or (N, inner) */
                               float *logp,           /* (N, C, inner) out: saved log-probs */
                               const float *logits,   /* (N, C, inner) */
                               const int64_t *labels, /* (N, inner) */
                               const float *weight,   /* (C) or NULL */
                               int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                               float label_smoothing, nnl_reduction reduction) {
  nnl_log_softmax_forward(logp, logits, N, C, inner);
  class_ctx k = {logp, labels, weight, C, inner, ignore_index, label_smoothing};
  class_loss(loss, &k, N * inner, reduction);
}

/* d/dz_c of one row's loss, with p = softmax(z), q_c = eps/C w[c] + (1-eps) w[y] [c == y]:
 * p_c * sum(q) - q_c, where sum(q) = (1-eps) w[y] + eps/C sum(w). */
void nnl_cross_entropy_backward(float *dlogits,        /* (N, C, inner) */
                                const float *logp,     /* (N, C, inner) from forward */
                                const int64_t *labels, /* (N, inner) */
                                const float *weight,   /* (C) or NULL */
                                const float *dloss,    /* (1) or (N, inner) */
                                int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                                float label_smoothing, nnl_reduction reduction) {
  int64_t rows = N * inner;
  if (rows <= 0 || C <= 0) return;
  class_ctx k = {logp, labels, weight, C, inner, ignore_index, label_smoothing};
  float eps = label_smoothing, eps_c = label_smoothing / (float)C;
  double wall = 0.0;
  for (int64_t c = 0; c < C; c++) wall += class_w(weight, c);
  float scale = class_scale(&k, dloss, rows, reduction);
#pragma omp parallel for if (rows * C > NNL_PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    int64_t y = labels[r];
    if (y == ignore_index) continue;
    int64_t base = (r / inner) * C * inner + r % inner;
    const float *lp = logp + base;
    float *dz = dlogits + base;
    float g = reduction == NNL_REDUCTION_NONE ? dloss[r] : scale;
    float wy = (1.0f - eps) * class_w(weight, y);
    float qsum = wy + eps_c * (float)wall;
    for (int64_t c = 0; c < C; c++) {
      float q = eps_c * class_w(weight, c) + (c == y ? wy : 0.0f);
      dz[c * inner] += g * (expf(lp[c * inner]) * qsum - q);
    }
  }
}

void nnl_nll_loss_forward(float *loss,           /* (1) or (N, inner) */
                          const float *logp,     /* (N, C, inner) */
                          const int64_t *labels, /* (N, inner) */
                          const float *weight,   /* (C) or NULL */
                          int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                          nnl_reduction reduction) {
  class_ctx k = {logp, labels, weight, C, inner, ignore_index, 0.0f};
  class_loss(loss, &k, N * inner, reduction);
}

void nnl_nll_loss_backward(float *dlogp,          /* (N, C, inner) */
                           const int64_t *labels, /* (N, inner) */
                           const float *weight,   /* (C) or NULL */
                           const float *dloss,    /* (1) or (N, inner) */
                           int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                           nnl_reduction reduction) {
  int64_t rows = N * inner;
  if (rows <= 0) return;
  class_ctx k = {NULL, labels, weight, C, inner, ignore_index, 0.0f};
  float scale = class_scale(&k, dloss, rows, reduction);
#pragma omp parallel for if (rows > NNL_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t y = labels[r];
    if (y == ignore_index) continue;
    float g = reduction == NNL_REDUCTION_NONE ? dloss[r] : scale;
    dlogp[(r / inner) * C * inner + y * inner + r % inner] -= g * class_w(weight, y);
  }
}

/* ---- elementwise losses: mse, bce_with_logits ---- */

typedef struct {
  const float *X, *T;    /* (n) */
  const float *weight;   /* (n) or NULL */
  const float *pos_weight; /* (C) or NULL */
  int64_t C;
} elem_ctx;

static inline float mse_term(const elem_ctx *k, int64_t i) {
  float d = k->X[i] - k->T[i];
  return d * d;
}

static double mse_chunk(const void *ctx, int64_t lo, int64_t hi) {
  double s = 0.0;
  for (int64_t i = lo; i < hi; i++) s += mse_term(ctx, i);
  return s;
}

void nnl_mse_loss_forward(float *loss,    /* (1) or (n) */
                          const float *X, /* (n) */
                          const float *T, /* (n) target */
                          int64_t n, nnl_reduction reduction) {
  elem_ctx k = {X, T, NULL, NULL, 1};
  if (reduction == NNL_REDUCTION_NONE) {
#pragma omp parallel for if (n > NNL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) loss[i] = mse_term(&k, i);
    return;
  }
  double s = sum_chunks(mse_chunk, &k, n, n);
  loss[0] = (float)(reduction == NNL_REDUCTION_MEAN ? s / (double)n : s);
}

void nnl_mse_loss_backward(float *dX,          /* (n) or NULL */
                           float *dT,          /* (n) or NULL */
                           const float *X,     /* (n) */
                           const float *T,     /* (n) */
                           const float *dloss, /* (1) or (n) */
                           int64_t n, nnl_reduction reduction) {
  float scale = reduction == NNL_REDUCTION_MEAN ? (float)(dloss[0] / (double)n) : dloss[0];
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = reduction == NNL_REDUCTION_NONE ? dloss[i] : scale;
    float d = 2.0f * (X[i] - T[i]) * g;
    if (dX) dX[i] += d;
    if (dT) dT[i] -= d;
  }
}

/* softplus(-x) = log(1 + exp(-x)), without overflow for either sign of x */
static inline float softplus_neg(float x) {
  return log1pf(expf(-fabsf(x))) + (x < 0.0f ? -x : 0.0f);
}

static inline float sigmoidf(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* weight * ((1 - t) x + (1 + (pw - 1) t) softplus(-x)) */
static inline float bce_term(const elem_ctx *k, int64_t i) {
  float x = k->X[i], t = k->T[i];
  float lw = k->pos_weight ? 1.0f + (k->pos_weight[i % k->C] - 1.0f) * t : 1.0f;
  float l = (1.0f - t) * x + lw * softplus_neg(x);
  return k->weight ? l * k->weight[i] : l;
}

static double bce_chunk(const void *ctx, int64_t lo, int64_t hi) {
  double s = 0.0;
  for (int64_t i = lo; i < hi; i++) s += bce_term(ctx, i);
  return s;
}

void nnl_bce_with_logits_forward(float *loss,             /* (1) or (n) */
                                 const float *X,          /* (n) logits */
                                 const float *T,          /* (n) targets in [0, 1] */
                                 const float *weight,     /* (n) or NULL */
                                 const float *pos_weight, /* (C) or NULL */
                                 int64_t n, int64_t C, nnl_reduction reduction) {
  elem_ctx k = {X, T, weight, pos_weight, C > 0 ? C : 1};
  if (reduction == NNL_REDUCTION_NONE) {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) loss[i] = bce_term(&k, i);
    return;
  }
  double s = sum_chunks(bce_chunk, &k, n, n * 8);
  loss[0] = (float)(reduction == NNL_REDUCTION_MEAN ? s / (double)n : s);
}

/* dl/dx = (1 + (pw-1) t) sigmoid(x) - pw t;   dl/dt = -x + (pw-1) softplus(-x)  (times weight) */
void nnl_bce_with_logits_backward(float *dX,               /* (n) or NULL */
                                  float *dT,               /* (n) or NULL */
                                  const float *X,          /* (n) */
                                  const float *T,          /* (n) */
                                  const float *weight,     /* (n) or NULL */
                                  const float *pos_weight, /* (C) or NULL */
                                  const float *dloss,      /* (1) or (n) */
                                  int64_t n, int64_t C, nnl_reduction reduction) {
  float scale = reduction == NNL_REDUCTION_MEAN ? (float)(dloss[0] / (double)n) : dloss[0];
  if (C <= 0) C = 1;
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) {
    float g = reduction == NNL_REDUCTION_NONE ? dloss[i] : scale;
    if (weight) g *= weight[i];
    float x = X[i], t = T[i];
    float pw = pos_weight ? pos_weight[i % C] : 1.0f;
    if (dX) dX[i] += g * ((1.0f + (pw - 1.0f) * t) * sigmoidf(x) - pw * t);
    if (dT) dT[i] += g * (-x + (pw - 1.0f) * softplus_neg(x));
  }
}
