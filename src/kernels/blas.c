/* blas.c — sgemm through OpenBLAS (cblas), and a reference in plain loops.
 * Every matrix product in nnlua goes through nnl_sgemm. */
#include "blas.h"

#include <cblas.h>

void nnl_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* cblas leaves C untouched for K = 0 only when beta = 1 */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
              beta, C, ldc);
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
