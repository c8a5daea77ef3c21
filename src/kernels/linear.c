/* linear.c — the fully-connected layer, Y = X W^T + b, forward and backward.
 * Both products go through nnl_sgemm with transpose flags: no copies, beta = 1 accumulates.
 * The forward can end in a ReLU (Sequential's Linear then ReLU): one pass over Y, no second one. */
#include "dense.h"

#include "blas.h"

#include <string.h>

/* Bias columns are summed in blocks of this many outputs: a thread owns a block of db and
 * walks dY row by row, so reads stay contiguous and no two threads write the same db[o]. */
#define DB_BLOCK 64

void nnl_linear_forward(float *Y,       /* (N, O) */
                        const float *X, /* (N, I) */
                        const float *W, /* (O, I) */
                        const float *b, /* (O) or NULL */
                        int N, int I, int O, int relu) {
  if (N <= 0 || O <= 0) return;
  /* Y[N,O] = X[N,I] @ (W[O,I])^T + b, then max(Y, 0) when relu: bias and ReLU are applied to
   * each tile while it is in registers (nnl_sgemm_bias_relu) */
  nnl_sgemm_bias_relu(0, 1, N, O, I, 1.0f, X, I, W, I, 0.0f, Y, O, b, relu);
}

/* beta = 1 adds the gradients into dX, dW, db; beta = 0 stores them (no zero-filling first). */
static void linear_backward(float *dX,       /* (N, I) or NULL */
                            float *dW,       /* (O, I) or NULL */
                            float *db,       /* (O) or NULL */
                            const float *X,  /* (N, I) */
                            const float *W,  /* (O, I) */
                            const float *dY, /* (N, O) */
                            int N, int I, int O, float beta) {
  if (N <= 0 || O <= 0) { /* no products: stored gradients are zero, added ones unchanged */
    if (beta == 0.0f) {
      size_t n = N > 0 ? (size_t)N : 0, i = I > 0 ? (size_t)I : 0, o = O > 0 ? (size_t)O : 0;
      if (dX) memset(dX, 0, sizeof(float) * n * i);
      if (dW) memset(dW, 0, sizeof(float) * o * i);
      if (db) memset(db, 0, sizeof(float) * o);
    }
    return;
  }
  /* I = 0 leaves dX and dW without elements; db is still summed below */
  /* dX[N,I] (+)= dY[N,O] @ W[O,I] */
  if (dX && I > 0) nnl_sgemm(0, 0, N, I, O, 1.0f, dY, O, W, I, beta, dX, I);
  /* dW[O,I] (+)= (dY[N,O])^T @ X[N,I] */
  if (dW && I > 0) nnl_sgemm(1, 0, O, I, N, 1.0f, dY, O, X, I, beta, dW, I);
  if (db) {
    int nblocks = (O + DB_BLOCK - 1) / DB_BLOCK;
#pragma omp parallel for if ((int64_t)N * O > NNL_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
      int o0 = blk * DB_BLOCK;
      int len = O - o0 < DB_BLOCK ? O - o0 : DB_BLOCK;
      float acc[DB_BLOCK];
      for (int j = 0; j < len; j++) acc[j] = 0.0f;
      for (int n = 0; n < N; n++) {
        const float *dy = dY + (int64_t)n * O + o0;
#pragma omp simd
        for (int j = 0; j < len; j++) acc[j] += dy[j];
      }
      for (int j = 0; j < len; j++) db[o0 + j] = acc[j] + (beta == 0.0f ? 0.0f : db[o0 + j]);
    }
  }
}

void nnl_linear_backward(float *dX,       /* (N, I) or NULL */
                         float *dW,       /* (O, I) or NULL */
                         float *db,       /* (O) or NULL */
                         const float *X,  /* (N, I) */
                         const float *W,  /* (O, I) */
                         const float *dY, /* (N, O) */
                         int N, int I, int O) {
  linear_backward(dX, dW, db, X, W, dY, N, I, O, 1.0f);
}

void nnl_linear_backward_into(float *dX,       /* (N, I) or NULL */
                              float *dW,       /* (O, I) or NULL */
                              float *db,       /* (O) or NULL */
                              const float *X,  /* (N, I) */
                              const float *W,  /* (O, I) */
                              const float *dY, /* (N, O) */
                              int N, int I, int O) {
  linear_backward(dX, dW, db, X, W, dY, N, I, O, 0.0f);
}
