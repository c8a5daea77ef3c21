/* blas.h — the one sgemm wrapper every kernel uses, and its plain-loop reference.
 * Row-major: C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C. */
#ifndef NNL_BLAS_H
#define NNL_BLAS_H

void nnl_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);
/* nnl_sgemm, then C[i, j] += bias[j] for every row (bias NULL: none), then, when relu is 1,
 * C = C < 0 ? 0 : C (NaN and -0 stay, as torch.relu). Our kernel does both on the tile in
 * registers; the cblas path in extra passes. */
void nnl_sgemm_bias_relu(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc, const float *bias, int relu);
/* Same contract in plain loops (double accumulation); tests only. */
void nnl_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);

#endif
