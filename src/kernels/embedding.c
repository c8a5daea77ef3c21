/* embedding.c — table lookup Y[n] = W[idx[n]] and its backward, a deterministic scatter-add.
 * Indices are 0-based and already checked by the caller. */
#include "dense.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void nnl_embedding_forward(float *Y,           /* (N, D) */
                           const int64_t *idx, /* (N) */
                           const float *W,     /* (V, D) */
                           int64_t N, int64_t D) {
#pragma omp parallel for if (N * D > NNL_PAR_MIN)
  for (int64_t n = 0; n < N; n++)
    memcpy(Y + n * D, W + idx[n] * D, (size_t)D * sizeof(float));
}

/* Repeated indices make a plain parallel loop over n race on dW rows. Instead each thread owns
 * the rows [v0, v1) of dW and scans all of idx for them: a row's contributions are added in the
 * order of n whatever the thread count, so the result is bit-for-bit reproducible. */
void nnl_embedding_backward(float *dW,          /* (V, D) */
                            const int64_t *idx, /* (N) */
                            const float *dY,    /* (N, D) */
                            int64_t N, int64_t V, int64_t D, int64_t padding_idx) {
#pragma omp parallel if (N * D > NNL_PAR_MIN)
  {
    int64_t t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    int64_t v0 = V * t / nt, v1 = V * (t + 1) / nt;
    for (int64_t n = 0; n < N; n++) {
      int64_t v = idx[n];
      if (v < v0 || v >= v1 || v == padding_idx) continue;
      const float *dy = dY + n * D;
      float *dw = dW + v * D;
      for (int64_t d = 0; d < D; d++) dw[d] += dy[d];
    }
  }
}
