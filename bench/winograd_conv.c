/* bench/winograd_conv.c — Winograd F(2x2,3x3) against im2col + sgemm on ResNet-18's 3x3 stride-1
 * convolutions (forward and data gradient); medians of CPU and wall time, alternating the two.
 * Build: gcc -O2 -fopenmp -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp bench/winograd_conv.c
 *        src/kernels/conv.c src/kernels/conv_ref.c src/kernels/winograd.c src/kernels/blas.c
 *        src/kernels/gemm_avx512.c src/kernels/activation.c -lopenblas -lm -o /tmp/winograd_conv
 * Run:   /tmp/winograd_conv [batch 8] [reps 5] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/spatial.h"

typedef struct { const char *name; int C, H; } layer;

static const layer layers[] = {
    {"layer1 64@56", 64, 56}, {"layer2 128@28", 128, 28}, {"layer3 256@14", 256, 14},
    {"layer4 512@7", 512, 7}, {"32@56", 32, 56}, {"16@28", 16, 28},
};

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static float *rnd(long n) {
  float *p = malloc(sizeof(float) * n);
  for (long i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
  return p;
}

/* which: 0 im2col forward, 1 winograd forward, 2 im2col dx, 3 winograd dx */
static void run(int which, float *y, float *dx, const float *x, const float *w, const float *b,
                const nnl_conv2d_dims *d, float *ws, size_t wsn) {
  int rc = 0;
  if (which == 0) rc = nnl_conv2d_forward(y, x, w, b, d, ws, wsn);
  if (which == 1) rc = nnl_conv2d_winograd_forward(y, x, w, b, d, ws, wsn);
  if (which == 2) rc = nnl_conv2d_backward(dx, NULL, NULL, y, x, w, d, ws, wsn);
  if (which == 3) rc = nnl_conv2d_winograd_backward(dx, y, w, d, ws, wsn);
  if (rc) fprintf(stderr, "call %d failed\n", which);
}

int main(int argc, char **argv) {
  int N = argc > 1 ? atoi(argv[1]) : 8, reps = argc > 2 ? atoi(argv[2]) : 5;
  setenv("NNL_CONV_WINOGRAD", "0", 1); /* nnl_conv2d_* take the im2col path */
  for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
    int C = layers[l].C, H = layers[l].H;
    nnl_conv2d_dims d = {N, C, H, H, C, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    long nx = (long)N * C * H * H;
    float *x = rnd(nx), *w = rnd((long)C * C * 9), *b = rnd(C);
    float *y0 = malloc(sizeof(float) * nx), *y1 = malloc(sizeof(float) * nx);
    float *dx0 = calloc(nx, sizeof(float)), *dx1 = calloc(nx, sizeof(float));
    size_t a = nnl_conv2d_workspace_size(&d, 1, 0), c = nnl_conv2d_winograd_workspace_size(&d, 0, 0);
    size_t e = nnl_conv2d_winograd_workspace_size(&d, 1, 0);
    size_t wsn = a > c ? a : c;
    wsn = wsn > e ? wsn : e;
    float *ws = malloc(sizeof(float) * wsn);
    run(0, y0, dx0, x, w, b, &d, ws, wsn);
    run(1, y1, dx1, x, w, b, &d, ws, wsn);
    double m = 0, s = 0;
    for (long i = 0; i < nx; i++) m = fmax(m, fabs(y0[i] - y1[i])), s = fmax(s, fabs(y0[i]));
    run(2, y0, dx0, x, w, b, &d, ws, wsn);
    run(3, y0, dx1, x, w, b, &d, ws, wsn);
    double mb = 0;
    for (long i = 0; i < nx; i++) mb = fmax(mb, fabs(dx0[i] - dx1[i]));
    double t[4][64], c4[4][64];
    for (int r = 0; r < reps && r < 64; r++)
      for (int k = 0; k < 4; k++) {
        double w0 = omp_get_wtime(), c0 = cpu_now();
        run(k, y0, dx0, x, w, b, &d, ws, wsn);
        t[k][r] = omp_get_wtime() - w0, c4[k][r] = cpu_now() - c0;
      }
    for (int k = 0; k < 4; k++) qsort(t[k], reps, sizeof(double), cmp), qsort(c4[k], reps, sizeof(double), cmp);
    int h = reps / 2;
    printf("{\"layer\":\"%s\",\"N\":%d,\"fwd_im2col_ms\":%.2f,\"fwd_wino_ms\":%.2f,\"dx_im2col_ms\":%.2f,"
           "\"dx_wino_ms\":%.2f,\"cpu_fwd\":[%.2f,%.2f],\"cpu_dx\":[%.2f,%.2f],\"maxdiff_y\":%.2g,"
           "\"max_y\":%.2g,\"maxdiff_dx\":%.2g}\n",
           layers[l].name, N, 1e3 * t[0][h], 1e3 * t[1][h], 1e3 * t[2][h], 1e3 * t[3][h],
           1e3 * c4[0][h], 1e3 * c4[1][h], 1e3 * c4[2][h], 1e3 * c4[3][h], m, s, mb);
    fflush(stdout);
    free(x), free(w), free(b), free(y0), free(y1), free(dx0), free(dx1), free(ws);
  }
  return 0;
}
