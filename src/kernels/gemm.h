/* gemm.h — nnlua's own packed sgemm with an AVX-512 micro-kernel (gemm_avx512.c), private to
 * src/kernels and the C tests; everyone else calls nnl_sgemm (blas.h), which dispatches here. */
#ifndef NNL_GEMM_H
#define NNL_GEMM_H

/* 1 when the CPU (and OS) run AVX-512F code, else 0. */
int nnl_sgemm_avx512_available(void);

/* The nnl_sgemm contract (row-major, C[M,N] = alpha op(A) op(B) + beta C; beta = 0 never reads C),
 * for M, N, K >= 1. Threads over blocks of C when called outside a parallel region and the product
 * is large enough; one thread inside one. nthreads <= 0 means omp_get_max_threads().
 * bias (N floats, or NULL) is added to every row and relu (0 or 1) clamps negatives to 0 (NaN
 * stays), both while the tile is in registers (nnl_sgemm_bias_relu's contract).
 * Returns 0, or -1 without touching C when it cannot run (no AVX-512, no memory for packing):
 * the caller then uses cblas. */
int nnl_sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const float *bias, int relu, int nthreads);

#endif
