/* test_gemm.c — checks nnl_sgemm and the AVX-512 sgemm behind it (src/kernels/gemm.h) against the
 * plain-loop nnl_sgemm_ref: all transpose pairs, odd and large sizes, padded strides, alpha, beta. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "kernels/blas.h"
#include "kernels/gemm.h"

static int checks = 0, failures = 0;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545f4914f6cdd1dULL;
  return (float)((r >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rnd(long n) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (long i = 0; i < n; i++) x[i] = frand();
  return x;
}

typedef int (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                       float, float *, int, int);

/* the avx512 entry with a fixed thread count (no epilogue; test_dense checks bias and ReLU), or
 * nnl_sgemm (threads from omp_set_num_threads) */
static int via_avx512(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, int nthreads) {
  return nnl_sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, nthreads);
}

static int via_nnl(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc, int nthreads) {
  omp_set_num_threads(nthreads);
  nnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

/* One product: op(A) (M, K), op(B) (K, N), C (M, N) inside padded row strides. Entries of C's
 * padding must survive; with beta = 0, C starts as NaN and must not leak through. The scale of
 * an entry is sum_k |a||b| (+ |beta c|): errors are measured relative to it. */
static void check(const char *via, gemm_fn fn, int ta, int tb, int M, int N, int K, int pad,
                  float alpha, float beta, int nthreads) {
  int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
  float *A = rnd(na), *B = rnd(nb), *C = rnd(nc);
  float *R = malloc(sizeof(float) * (size_t)(nc ? nc : 1));
  float *Aabs = malloc(sizeof(float) * (size_t)(na ? na : 1));
  float *Babs = malloc(sizeof(float) * (size_t)(nb ? nb : 1));
  float *S = malloc(sizeof(float) * (size_t)(nc ? nc : 1));
  for (long i = 0; i < na; i++) Aabs[i] = fabsf(A[i]);
  for (long i = 0; i < nb; i++) Babs[i] = fabsf(B[i]);
  if (beta == 0.0f)
    for (long i = 0; i < nc; i++) C[i] = NAN;
  memcpy(R, C, sizeof(float) * (size_t)nc);
  for (long i = 0; i < nc; i++) S[i] = beta == 0.0f ? 0.0f : fabsf(C[i]);
  nnl_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
  nnl_sgemm_ref(ta, tb, M, N, K, fabsf(alpha), Aabs, lda, Babs, ldb, fabsf(beta), S, ldc);
  int rc = fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nthreads);
  double worst = 0.0, tol = 1e-5 * sqrt((double)K + 1.0);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < ldc; j++) {
      long at = (long)i * ldc + j;
      double d;
      if (j >= N) /* padding: untouched (beta = 0 filled it with NaN too) */
        d = (C[at] == R[at] || (isnan(C[at]) && isnan(R[at]))) ? 0.0 : INFINITY;
      else
        d = fabs((double)C[at] - R[at]) / (S[at] + 1e-30);
      if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
    }
  checks++;
  if (rc != 0 || !(worst <= tol)) {
    failures++;
    printf("FAIL %s ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g threads=%d: rc %d, "
           "max rel err %.3g (tol %.1g)\n",
           via, ta, tb, M, N, K, pad, alpha, beta, nthreads, rc, worst, tol);
  }
  free(A), free(B), free(C), free(R), free(Aabs), free(Babs), free(S);
}

/* every transpose pair, alpha and beta for one shape */
static void check_all(const char *via, gemm_fn fn, int M, int N, int K, int pad, int nthreads) {
  static const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.3f};
  for (int t = 0; t < 4; t++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 3; b++)
        check(via, fn, t >> 1, t & 1, M, N, K, pad, alphas[a], betas[b], nthreads);
}

int main(void) {
  int have = nnl_sgemm_avx512_available();
  printf("test_gemm: AVX-512 %s\n", have ? "available" : "not available (checking nnl_sgemm only)");
  /* sizes around the tile edges (14 rows, 32 columns, 16-wide vectors) and blocks (KC 256) */
  static const int sizes[] = {1, 2, 3, 7, 13, 14, 15, 16, 17, 28, 31, 32, 33, 47, 64, 70};
  int ns = (int)(sizeof sizes / sizeof *sizes);
  for (int threads = 1; threads <= 2; threads++) {
    int before = failures;
    for (int i = 0; i < ns; i++)
      for (int j = 0; j < ns; j += 3) {
        int M = sizes[i], N = sizes[(j + i) % ns], K = sizes[(ns - 1 - j + 2 * i) % ns];
        if (have) check_all("avx512", via_avx512, M, N, K, (i + j) % 3 == 0 ? 0 : 5, threads);
        check_all("nnl_sgemm", via_nnl, M, N, K, (i + j) % 2 ? 3 : 0, threads);
      }
    /* large enough to take several K, M and N blocks, and threads */
    static const int big[][3] = {{300, 517, 263}, {71, 2100, 520}, {1000, 33, 700},
                                 {25, 2048, 512}, {1000, 10, 300}, {700, 3, 1100}};
    for (int s = 0; s < 6; s++) { /* the last two: narrow and tall, ours only when threaded */
      int M = big[s][0], N = big[s][1], K = big[s][2];
      for (int t = 0; t < 4 && have; t++) { /* two (alpha, beta) pairs: the reference is slow */
        check("avx512", via_avx512, t >> 1, t & 1, M, N, K, 7, 1.0f, 0.0f, threads);
        check("avx512", via_avx512, t >> 1, t & 1, M, N, K, 0, -0.5f, 0.3f, threads);
      }
      for (int t = 0; t < 4; t++) check("nnl_sgemm", via_nnl, t >> 1, t & 1, M, N, K, 1, 1.0f, 0.0f, threads);
    }
    printf("%s %d thread%s: %d failures\n", failures == before ? "ok  " : "FAIL", threads,
           threads > 1 ? "s" : "", failures - before);
  }
  /* K = 0 scales C by beta (0 clears NaN) */
  for (int b = 0; b < 2; b++) {
    float C[6] = {NAN, NAN, NAN, 2, 4, 6}, beta = b ? 0.5f : 0.0f;
    nnl_sgemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, beta, C, 3);
    checks++;
    if (b ? C[3] != 1 || C[5] != 3 : C[0] != 0 || C[4] != 0) {
      failures++;
      printf("FAIL K=0 beta=%g\n", beta);
    }
  }
  printf("test_gemm: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
