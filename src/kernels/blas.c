/* blas.c — sgemm through our AVX-512 kernel (gemm_avx512.c) or OpenBLAS (cblas), and a reference
 * in plain loops. Every matrix product in nnlua goes through nnl_sgemm. */
#include "blas.h"
#include "dense.h" /* before cblas.h, whose complex.h defines I (a parameter name there) */

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

/* NNL_GEMM=openblas sends every product to cblas (read once, at the first product). */
static int own = 0;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

static void own_init(void) {
  const char *e = getenv("NNL_GEMM");
  own = nnl_sgemm_avx512_available() && !(e && strcmp(e, "openblas") == 0);
}

/* Shapes where our kernel measured faster than OpenBLAS's (Haswell or SkylakeX kernels on Zen 5):
 * all but the narrow ones, where a tile is mostly padding, and matrix-vector products. Narrow ones
 * of 8-16 columns (a 16-column tile) still win when tall: a classifier's last layer over 1000
 * images, 1000 x 10 x 200, in 25 us on 2 threads against OpenBLAS's 49-63 us, 45-53 us on one
 * against 54-61 us; 500 x 10 x 200 in 23 us against 25-32 us. Narrower ones when big enough to
 * run on several threads. */
static int own_wins(int M, int N, int K) {
  if (N > 16) return M > 2 && K > 4 && (long)M * N * K >= 4096;
  if (N >= 8) return M >= 256 && K > 4 && (long)M * N * K >= (1L << 19);
  return N > 1 && M >= 512 && K > 4 && (long)M * N * K >= (1L << 21) && !omp_in_parallel() &&
         omp_get_max_threads() > 1;
}

void nnl_sgemm_bias_relu(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc, const float *bias, int relu) {
  if (M <= 0 || N <= 0) return;
  pthread_once(&own_once, own_init);
  if (K > 0 && own && own_wins(M, N, K) &&
      nnl_sgemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, relu,
                       0) == 0)
    return;
  /* C starts as beta C plus the broadcast bias and the product adds onto it (beta = 1); for K = 0
   * that is all, as cblas leaves C untouched then only when beta = 1 */
  if (bias || K <= 0) {
#pragma omp parallel for if ((long)M * N > (1L << 15))
    for (int i = 0; i < M; i++) {
      float *c = C + (long)i * ldc;
      for (int j = 0; j < N; j++) {
        float v = beta == 0.0f ? 0.0f : beta * c[j];
        c[j] = bias ? v + bias[j] : v;
      }
    }
    beta = 1.0f;
  }
  if (K > 0)
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (relu && ldc == N)
    nnl_relu_forward(C, C, (int64_t)M * N);
  else if (relu)
    for (int i = 0; i < M; i++) nnl_relu_forward(C + (long)i * ldc, C + (long)i * ldc, N);
}

void nnl_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc) {
  nnl_sgemm_bias_relu(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0);
}

void nnl_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) {
        double a = trans_a ? A[(long)k * lda + i] : A[(long)i * lda + k];
        double b = trans_b ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
        s += a * b;
      }
      float *c = &C[(long)i * ldc + j];
      *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : beta * (double)*c));
    }
}
