/* softmax.c — softmax and log_softmax along one axis of a contiguous tensor seen as
 * (outer, dim, inner); max-shifted for stability, backward from the saved output. */
#include "dense.h"

#include <math.h>

/* A "line" is the dim values at one (o, i): stride inner apart. Each thread owns whole lines,
 * so the reductions along dim stay in one thread and in a fixed order. Sums run in double. */

static inline float line_max(const float *x, int64_t dim, int64_t s) {
  float m = -INFINITY;
  for (int64_t d = 0; d < dim; d++)
    if (x[d * s] > m) m = x[d * s];
  return m; /* a NaN in the line comes back through exp(NaN - m) */
}

void nnl_softmax_forward(float *Y,       /* (outer, dim, inner) */
                         const float *X, /* (outer, dim, inner) */
                         int64_t outer, int64_t dim, int64_t inner) {
  int64_t lines = outer * inner;
#pragma omp parallel for if (lines * dim > NNL_PAR_MIN / 8)
  for (int64_t l = 0; l < lines; l++) {
    int64_t o = l / inner, i = l % inner;
    const float *x = X + o * dim * inner + i;
    float *y = Y + o * dim * inner + i;
    float m = line_max(x, dim, inner);
    double sum = 0.0;
    for (int64_t d = 0; d < dim; d++) {
      float e = expf(x[d * inner] - m);
      y[d * inner] = e;
      sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int64_t d = 0; d < dim; d++) y[d * inner] *= inv;
  }
}

void nnl_softmax_backward(float *dX,       /* (outer, dim, inner) */
                          const float *Y,  /* (outer, dim, inner) saved output */
                          const float *dY, /* (outer, dim, inner) */
                          int64_t outer, int64_t dim, int64_t inner) {
  int64_t lines = outer * inner;
#pragma omp parallel for if (lines * dim > NNL_PAR_MIN)
  for (int64_t l = 0; l < lines; l++) {
    int64_t base = (l / inner) * dim * inner + l % inner;
    const float *y = Y + base, *dy = dY + base;
    float *dx = dX + base;
    double dot = 0.0;
    for (int64_t d = 0; d < dim; d++) dot += (double)dy[d * inner] * y[d * inner];
    float fdot = (float)dot;
    for (int64_t d = 0; d < dim; d++) dx[d * inner] += y[d * inner] * (dy[d * inner] - fdot);
  }
}

/* Y = (x - max) - log(sum exp(x - max)) */
void nnl_log_softmax_forward(float *Y,       /* (outer, dim, inner) */
                             const float *X, /* (outer, dim, inner) */
                             int64_t outer, int64_t dim, int64_t inner) {
  int64_t lines = outer * inner;
#pragma omp parallel for if (lines * dim > NNL_PAR_MIN / 8)
  for (int64_t l = 0; l < lines; l++) {
    int64_t base = (l / inner) * dim * inner + l % inner;
    const float *x = X + base;
    float *y = Y + base;
    float m = line_max(x, dim, inner);
    double sum = 0.0;
    for (int64_t d = 0; d < dim; d++) sum += expf(x[d * inner] - m);
    float lse = (float)log(sum);
    for (int64_t d = 0; d < dim; d++) y[d * inner] = (x[d * inner] - m) - lse;
  }
}

void nnl_log_softmax_backward(float *dX,       /* (outer, dim, inner) */
                              const float *Y,  /* (outer, dim, inner) saved output */
                              const float *dY, /* (outer, dim, inner) */
                              int64_t outer, int64_t dim, int64_t inner) {
  int64_t lines = outer * inner;
#pragma omp parallel for if (lines * dim > NNL_PAR_MIN / 8)
  for (int64_t l = 0; l < lines; l++) {
    int64_t base = (l / inner) * dim * inner + l % inner;
    const float *y = Y + base, *dy = dY + base;
    float *dx = dX + base;
    double sum = 0.0;
    for (int64_t d = 0; d < dim; d++) sum += dy[d * inner];
    float fsum = (float)sum;
    for (int64_t d = 0; d < dim; d++) dx[d * inner] += dy[d * inner] - expf(y[d * inner]) * fsum;
  }
}
