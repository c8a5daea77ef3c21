/* bench/gemm_shapes.c — nnl_sgemm (nnlua's AVX-512 sgemm where it dispatches to it) against
 * cblas_sgemm on the shapes nnlua's models multiply; medians, alternating the two, as JSON lines.
 * Build: gcc -O2 -fopenmp -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp bench/gemm_shapes.c
 *        src/kernels/blas.c src/kernels/gemm_avx512.c src/kernels/activation.c -lopenblas -lm
 *        -o /tmp/gemm_shapes
 * Run:   /tmp/gemm_shapes [threads] [reps] */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/blas.h"

extern void openblas_set_num_threads(int n);

typedef struct {
  const char *name;
  int ta, tb, M, N, K;
} shape;

static const shape shapes[] = {
    {"square 1024", 0, 0, 1024, 1024, 1024},
    {"mlp infer 1000", 0, 1, 1000, 200, 784},
    {"conv1 fwd", 0, 0, 64, 12544, 147},
    {"layer1 fwd", 0, 0, 64, 3136, 576},
    {"layer2 fwd", 0, 0, 128, 784, 1152},
    {"layer3 fwd", 0, 0, 256, 196, 2304},
    {"layer4 fwd", 0, 0, 512, 49, 4608},
    {"layer1 dW", 0, 1, 64, 576, 3136},
    {"layer4 dW", 0, 1, 512, 4608, 49},
    {"layer1 dX", 1, 0, 576, 3136, 64},
    {"layer4 dX", 1, 0, 4608, 49, 512},
    {"mlp fwd", 0, 1, 100, 200, 784},
    {"lstm step", 0, 1, 25, 2048, 512},
    {"lstm proj", 0, 1, 400, 2048, 256},
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static float *rnd(long n) {
  float *x = malloc(sizeof(float) * (size_t)n);
  for (long i = 0; i < n; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
  return x;
}

/* seconds per call of one implementation, `inner` calls per sample */
static double sample(int own, const shape *s, const float *A, const float *B, float *C, int inner) {
  int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
  double t0 = now();
  for (int i = 0; i < inner; i++)
    if (own)
      nnl_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
    else
      cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                  s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, A, lda, B, ldb,
                  0.0f, C, s->N);
  return (now() - t0) / inner;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 7;
  if (reps < 1 || reps > 100) reps = 7;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  const char *ct = getenv("OPENBLAS_CORETYPE");
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    const shape *s = &shapes[k];
    float *A = rnd((long)s->M * s->K), *B = rnd((long)s->K * s->N), *C = rnd((long)s->M * s->N);
    double flop = 2.0 * s->M * s->N * s->K, own[100], blas[100];
    int inner = (int)(2e7 * threads / flop) + 1; /* about 1-2 ms of work per sample */
    for (int w = 0; w < 2; w++) sample(w, s, A, B, C, inner);
    for (int r = 0; r < reps; r++) /* alternating which goes first */
      for (int w = 0; w < 2; w++) {
        int impl = w ^ (r & 1);
        (impl ? own : blas)[r] = sample(impl, s, A, B, C, inner);
      }
    qsort(own, reps, sizeof *own, cmp);
    qsort(blas, reps, sizeof *blas, cmp);
    double to = own[reps / 2], tb = blas[reps / 2];
    printf("{\"bench\":\"gemm\",\"shape\":\"%s\",\"ta\":%d,\"tb\":%d,\"M\":%d,\"N\":%d,\"K\":%d,"
           "\"threads\":%d,\"coretype\":\"%s\",\"nnl_s\":%.3e,\"cblas_s\":%.3e,\"nnl_gflops\":%.1f,"
           "\"cblas_gflops\":%.1f,\"speedup\":%.2f,\"nnl_min_s\":%.3e,\"cblas_min_s\":%.3e}\n",
           s->name, s->ta, s->tb, s->M, s->N, s->K, threads, ct ? ct : "unset", to, tb,
           flop / to / 1e9, flop / tb / 1e9, tb / to, own[0], blas[0]);
    fflush(stdout);
    free(A), free(B), free(C);
  }
  return 0;
}
