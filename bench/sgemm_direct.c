/* bench/sgemm_direct.c — the baselines nnlua's micro-benchmarks are compared with: cblas_sgemm
 * called directly from C, and a plain C loop for c = a + b (memory bandwidth). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1024, reps = argc > 2 ? atoi(argv[2]) : 20;
  long m = argc > 3 ? atol(argv[3]) : 10000000;
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
  for (long i = 0; i < (long)n * n; i++) a[i] = (float)rand() / RAND_MAX, b[i] = (float)rand() / RAND_MAX;
  double ts[1000];
  for (int r = -3; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    if (r >= 0) ts[r] = now() - t0;
  }
  qsort(ts, reps, sizeof *ts, cmp);
  double t = ts[reps / 2];
  printf("{\"bench\":\"micro\",\"impl\":\"C cblas\",\"op\":\"matmul\",\"n\":%d,\"median_s\":%.6f,\"gflops\":%.2f}\n", n, t,
         2.0 * n * n * n / t / 1e9);
  float *x = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * m), *z = malloc(sizeof(float) * m);
#pragma omp parallel for
  for (long i = 0; i < m; i++) x[i] = 1, y[i] = 2, z[i] = 0;
  for (int r = -3; r < reps; r++) {
    double t0 = now();
#pragma omp parallel for simd
    for (long i = 0; i < m; i++) z[i] = x[i] + y[i];
    if (r >= 0) ts[r] = now() - t0;
  }
  qsort(ts, reps, sizeof *ts, cmp);
  t = ts[reps / 2];
  printf("{\"bench\":\"micro\",\"impl\":\"C loop\",\"op\":\"add\",\"numel\":%ld,\"median_s\":%.6f,\"gbps\":%.2f,\"check\":%g}\n", m, t,
         12.0 * m / t / 1e9, (double)z[m / 2]);
  free(a), free(b), free(c), free(x), free(y), free(z);
  return 0;
}
