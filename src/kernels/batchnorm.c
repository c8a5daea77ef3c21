/* batchnorm.c — batch normalisation over (N, C, inner) with PyTorch semantics, forward and backward,
 * in training mode (batch statistics) and evaluation mode (running statistics). Threads own channels. */
#include "spatial.h"

#include <math.h>

/* Channel c of sample n is the contiguous run x[(n*C + c)*inner .. +inner). Sums are taken in
 * float over one run (vectorised) and in double across runs. */
static const float *run(const float *x, int n, int C, int inner, int c) {
  return x + ((long)n * C + c) * inner;
}

void nnl_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd,
                                 float *running_mean, float *running_var, const float *x,
                                 const float *weight, const float *bias, int N, int C, int inner,
                                 double momentum, double eps) {
  long m = (long)N * inner;
#pragma omp parallel for schedule(static) if ((double)m * C > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    double s = 0.0;
    for (int n = 0; n < N; n++) {
      const float *xr = run(x, n, C, inner, c);
      float part = 0.0f;
#pragma omp simd reduction(+ : part)
      for (int i = 0; i < inner; i++) part += xr[i];
      s += part;
    }
    double mean = s / (double)m;
    float meanf = (float)mean;
    double ss = 0.0; /* two passes: no cancellation when |mean| >> std */
    for (int n = 0; n < N; n++) {
      const float *xr = run(x, n, C, inner, c);
      float part = 0.0f;
#pragma omp simd reduction(+ : part)
      for (int i = 0; i < inner; i++) part += (xr[i] - meanf) * (xr[i] - meanf);
      ss += part;
    }
    double var = ss / (double)m;
    double invstd = 1.0 / sqrt(var + eps);
    if (save_mean) save_mean[c] = meanf;
    if (save_invstd) save_invstd[c] = (float)invstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
    if (running_var) {
      double unbiased = m > 1 ? ss / (double)(m - 1) : var;
      running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
    float scale = (float)((weight ? weight[c] : 1.0) * invstd), b = bias ? bias[c] : 0.0f;
    for (int n = 0; n < N; n++) {
      const float *xr = run(x, n, C, inner, c);
      float *yr = y + ((long)n * C + c) * inner;
      for (int i = 0; i < inner; i++) yr[i] = (xr[i] - meanf) * scale + b;
    }
  }
}

/* With xhat = (x - mean) * invstd and m = N*inner values per channel:
 * dbias = sum dy, dweight = sum dy*xhat,
 * dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy*xhat))  (the batch statistics depend on x). */
void nnl_batchnorm_backward_train(float *dx, float *dweight, float *dbias, const float *dy,
                                  const float *x, const float *save_mean,
                                  const float *save_invstd, const float *weight, int N, int C,
                                  int inner) {
  long m = (long)N * inner;
#pragma omp parallel for schedule(static) if ((double)m * C > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    float mean = save_mean[c];
    double sdy = 0.0, sdyx = 0.0; /* sum dy, sum dy*(x - mean) */
    for (int n = 0; n < N; n++) {
      const float *xr = run(x, n, C, inner, c), *gr = run(dy, n, C, inner, c);
      float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
      for (int i = 0; i < inner; i++) {
        a += gr[i];
        b += gr[i] * (xr[i] - mean);
      }
      sdy += a;
      sdyx += b;
    }
    double invstd = save_invstd[c];
    if (dbias) dbias[c] += (float)sdy;
    if (dweight) dweight[c] += (float)(sdyx * invstd);
    if (dx) {
      double w = weight ? weight[c] : 1.0;
      float k = (float)(w * invstd);                             /* dy scale */
      float gmean = (float)(sdy / (double)m);                    /* mean(dy) */
      float proj = (float)(sdyx / (double)m * invstd * invstd); /* per unit of (x - mean) */
      for (int n = 0; n < N; n++) {
        const float *xr = run(x, n, C, inner, c), *gr = run(dy, n, C, inner, c);
        float *dr = dx + ((long)n * C + c) * inner;
        for (int i = 0; i < inner; i++) dr[i] += (gr[i] - gmean - (xr[i] - mean) * proj) * k;
      }
    }
  }
}

void nnl_batchnorm_forward_eval(float *y, const float *x, const float *running_mean,
                                const float *running_var, const float *weight, const float *bias,
                                int N, int C, int inner, double eps) {
#pragma omp parallel for schedule(static) if ((double)N * C * inner > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    float mean = running_mean[c], b = bias ? bias[c] : 0.0f;
    float scale = (float)((weight ? weight[c] : 1.0) / sqrt((double)running_var[c] + eps));
    for (int n = 0; n < N; n++) {
      const float *xr = run(x, n, C, inner, c);
      float *yr = y + ((long)n * C + c) * inner;
      for (int i = 0; i < inner; i++) yr[i] = (xr[i] - mean) * scale + b;
    }
  }
}

void nnl_batchnorm_backward_eval(float *dx, float *dweight, float *dbias, const float *dy,
                                 const float *x, const float *running_mean,
                                 const float *running_var, const float *weight, int N, int C,
                                 int inner, double eps) {
#pragma omp parallel for schedule(static) if ((double)N * C * inner > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    double invstd = 1.0 / sqrt((double)running_var[c] + eps);
    float mean = running_mean[c];
    if (dbias || dweight) {
      double sdy = 0.0, sdyx = 0.0;
      for (int n = 0; n < N; n++) {
        const float *gr = run(dy, n, C, inner, c), *xr = dweight ? run(x, n, C, inner, c) : gr;
        float a = 0.0f, b = 0.0f;
        if (dweight) {
#pragma omp simd reduction(+ : a, b)
          for (int i = 0; i < inner; i++) {
            a += gr[i];
            b += gr[i] * (xr[i] - mean);
          }
        } else {
#pragma omp simd reduction(+ : a)
          for (int i = 0; i < inner; i++) a += gr[i];
        }
        sdy += a;
        sdyx += b;
      }
      if (dbias) dbias[c] += (float)sdy;
      if (dweight) dweight[c] += (float)(sdyx * invstd);
    }
    if (dx) {
      float k = (float)((weight ? weight[c] : 1.0) * invstd);
      for (int n = 0; n < N; n++) {
        const float *gr = run(dy, n, C, inner, c);
        float *dr = dx + ((long)n * C + c) * inner;
        for (int i = 0; i < inner; i++) dr[i] += gr[i] * k;
      }
    }
  }
}
