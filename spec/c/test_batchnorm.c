/* test_batchnorm.c — the batch-norm kernels (src/kernels/batchnorm.c) against plain double-precision
 * loops: odd run lengths (masked vector tails), one channel, large offsets and outliers for the variance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spatial.h"

static int failures = 0;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double urand(void) { /* xorshift64*, uniform in [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 0x2545f4914f6cdd1dULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* Largest |got - want| / (|want| + floor) over n values; fails above tol and prints it. */
static void check(const char *what, const float *got, const double *want, long n, double floor,
                  double tol) {
  double worst = 0.0;
  long at = 0;
  for (long i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]) / (fabs(want[i]) + floor);
    if (!(e <= worst)) worst = e, at = i; /* NaN counts as worst */
  }
  if (!(worst <= tol)) {
    printf("FAIL %s: relative error %.3g at %ld (got %.9g, want %.9g)\n", what, worst, at, got[at],
           want[at]);
    failures++;
  }
}

typedef struct {
  int N, C, inner;
  double offset, outlier; /* x = offset + uniform(-1, 1); outlier: the first value of each channel */
} bn_case;

static void run_case(const bn_case *t) {
  int N = t->N, C = t->C, inner = t->inner;
  long n = (long)N * C * inner, m = (long)N * inner;
  float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy), *y = malloc(n * sizeof *y);
  float *dx = malloc(n * sizeof *dx), *dx2 = malloc(n * sizeof *dx2);
  float *w = malloc(C * sizeof *w), *b = malloc(C * sizeof *b), *mean = malloc(C * sizeof *mean);
  float *invstd = malloc(C * sizeof *invstd), *rm = malloc(C * sizeof *rm), *rv = malloc(C * sizeof *rv);
  float *dw = calloc(C, sizeof *dw), *db = calloc(C, sizeof *db);
  double *ry = malloc(n * sizeof *ry), *rdx = malloc(n * sizeof *rdx), *rmean = malloc(C * sizeof *rmean);
  double *rinv = malloc(C * sizeof *rinv), *rrm = malloc(C * sizeof *rrm), *rrv = malloc(C * sizeof *rrv);
  double *rdw = malloc(C * sizeof *rdw), *rdb = malloc(C * sizeof *rdb);
  for (long i = 0; i < n; i++) x[i] = (float)(t->offset + 2.0 * urand() - 1.0);
  for (long i = 0; i < n; i++) dy[i] = (float)(2.0 * urand() - 1.0);
  for (int c = 0; c < C; c++) {
    if (t->outlier != 0.0) x[(long)c * inner] = (float)t->outlier;
    w[c] = (float)(0.5 + urand()), b[c] = (float)(urand() - 0.5);
    rm[c] = (float)urand(), rv[c] = (float)(0.5 + urand());
  }
  const double momentum = 0.1, eps = 1e-5;
#define AT(nn, c, i) (((long)(nn) * C + (c)) * inner + (i))
  for (int c = 0; c < C; c++) { /* the reference: two passes in double */
    double s = 0.0, ss = 0.0, sdy = 0.0, sdyx = 0.0;
    for (int k = 0; k < N; k++)
      for (int i = 0; i < inner; i++) s += x[AT(k, c, i)];
    double mu = s / m;
    for (int k = 0; k < N; k++)
      for (int i = 0; i < inner; i++) ss += (x[AT(k, c, i)] - mu) * (x[AT(k, c, i)] - mu);
    double is = 1.0 / sqrt(ss / m + eps);
    rmean[c] = mu, rinv[c] = is;
    rrm[c] = (1 - momentum) * rm[c] + momentum * mu;
    rrv[c] = (1 - momentum) * rv[c] + momentum * ss / (m - 1);
    /* the backward gets the statistics as float32: its reference uses those values */
    double muf = (float)mu, isf = (float)is;
    for (int k = 0; k < N; k++)
      for (int i = 0; i < inner; i++) {
        long j = AT(k, c, i);
        ry[j] = (x[j] - mu) * is * w[c] + b[c];
        sdy += dy[j], sdyx += dy[j] * (x[j] - muf) * isf;
      }
    rdb[c] = sdy, rdw[c] = sdyx;
    for (int k = 0; k < N; k++)
      for (int i = 0; i < inner; i++) {
        long j = AT(k, c, i);
        rdx[j] = w[c] * isf * (dy[j] - sdy / m - (x[j] - muf) * isf * sdyx / m);
      }
  }
  char what[128];
#define NAME(s) (snprintf(what, sizeof what, "N%d C%d inner%d offset %g outlier %g: %s", N, C, \
                          inner, t->offset, t->outlier, s), what)
  nnl_batchnorm_forward_train(y, mean, invstd, rm, rv, x, w, b, N, C, inner, momentum, eps);
  /* y's floor: one unit of the normalised scale; dx's: its typical size */
  check(NAME("y"), y, ry, n, 1.0, 1e-4);
  check(NAME("invstd"), invstd, rinv, C, 0.0, 1e-4);
  check(NAME("running_mean"), rm, rrm, C, 1.0, 1e-5);
  check(NAME("running_var"), rv, rrv, C, 1e-3, 1e-4);
  for (int c = 0; c < C; c++) mean[c] = (float)rmean[c], invstd[c] = (float)rinv[c];
  double dxfloor = 0.0;
  for (long i = 0; i < n; i++) dxfloor += fabs(rdx[i]) / n;
  for (long i = 0; i < n; i++) dx[i] = 1.0f; /* the accumulating form adds to it */
  nnl_batchnorm_backward_train(dx, dw, db, dy, x, mean, invstd, w, N, C, inner);
  for (long i = 0; i < n; i++) dx[i] -= 1.0f;
  check(NAME("dx (+=)"), dx, rdx, n, dxfloor + 1e-3, 1e-3);
  check(NAME("dweight"), dw, rdw, C, 1.0, 1e-4);
  check(NAME("dbias"), db, rdb, C, 1.0, 1e-4);
  nnl_batchnorm_backward_train_into(dx2, NULL, NULL, dy, x, mean, invstd, w, N, C, inner);
  check(NAME("dx (into)"), dx2, rdx, n, dxfloor, 1e-4);
  memcpy(dx2, dy, n * sizeof *dx2); /* dx in dy's own buffer */
  nnl_batchnorm_backward_train_into(dx2, NULL, NULL, dx2, x, mean, invstd, w, N, C, inner);
  check(NAME("dx (into dy)"), dx2, rdx, n, dxfloor, 1e-4);

  /* evaluation with the running statistics this test just made */
  for (int c = 0; c < C; c++) {
    double is = 1.0 / sqrt((double)rv[c] + eps);
    for (int k = 0; k < N; k++)
      for (int i = 0; i < inner; i++) {
        long j = AT(k, c, i);
        ry[j] = (x[j] - rm[c]) * is * w[c] + b[c];
        rdx[j] = dy[j] * w[c] * is;
      }
  }
  double yfloor = 0.0;
  for (long i = 0; i < n; i++) yfloor += fabs(ry[i]) / n;
  nnl_batchnorm_forward_eval(y, x, rm, rv, w, b, N, C, inner, eps);
  check(NAME("eval y"), y, ry, n, yfloor, 1e-4);
  memcpy(dx2, dy, n * sizeof *dx2);
  nnl_batchnorm_backward_eval_into(dx2, NULL, NULL, dx2, x, rm, rv, w, N, C, inner, eps);
  check(NAME("eval dx (into dy)"), dx2, rdx, n, 1e-3, 1e-5);
  for (long i = 0; i < n; i++) dx[i] = 0.0f;
  nnl_batchnorm_backward_eval(dx, NULL, NULL, dy, x, rm, rv, w, N, C, inner, eps);
  check(NAME("eval dx (+=)"), dx, rdx, n, 1e-3, 1e-5);
#undef NAME
#undef AT
  free(x), free(dy), free(y), free(dx), free(dx2), free(w), free(b), free(mean), free(invstd);
  free(rm), free(rv), free(dw), free(db), free(ry), free(rdx), free(rmean), free(rinv), free(rrm);
  free(rrv), free(rdw), free(rdb);
}

int main(void) {
  static const bn_case cases[] = {
      {3, 1, 7, 0.0, 0.0},       {2, 3, 37, 0.0, 0.0},     {5, 2, 1, 0.0, 0.0},
      {4, 5, 33, 1000.0, 0.0},   {2, 1, 301, 1000.0, 0.0}, {8, 3, 785, 0.3, 0.0},
      {2, 4, 259, 0.0, 500.0},   {3, 2, 17, 1000.0, -2e4}, {2, 64, 3136, 1.0, 0.0},
      {1, 2, 4099, -1000.0, 0.0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  if (failures) {
    printf("%d batch-norm check(s) failed\n", failures);
    return 1;
  }
  printf("batch-norm kernels: all checks passed\n");
  return 0;
}
