/* dropout.c — inverted dropout: keep with probability 1 - p and scale by 1 / (1 - p).
 * The mask comes from the counter-based RNG, so it does not depend on the thread count. */
#include "dense.h"

#include "../nnlua.h"

/* float scale of kept elements, as PyTorch computes it (1 / (1 - p) in float); 0 drops all */
static inline float keep_scale(float p) { return p >= 1.0f ? 0.0f : 1.0f / (1.0f - p); }

void nnl_dropout_forward(float *Y,       /* (n, inner) */
                         uint8_t *mask,  /* (n) out: 1 keep, 0 drop */
                         const float *X, /* (n, inner) */
                         int64_t n, int64_t inner, float p, uint64_t seed, uint64_t counter) {
  float scale = keep_scale(p);
  double pd = p;
#pragma omp parallel for if (n * inner > NNL_PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    /* 53 random bits as a double in [0, 1): drop when below p, so P(keep) = 1 - p exactly */
    double u = (double)(nnl_rng_u64(seed, counter + (uint64_t)i) >> 11) * 0x1.0p-53;
    uint8_t keep = scale != 0.0f && u >= pd;
    mask[i] = keep;
    const float *x = X + i * inner;
    float *y = Y + i * inner;
    float s = keep ? scale : 0.0f;
    for (int64_t j = 0; j < inner; j++) y[j] = x[j] * s;
  }
}

void nnl_dropout_backward(float *dX,           /* (n, inner) */
                          const uint8_t *mask, /* (n) */
                          const float *dY,     /* (n, inner) */
                          int64_t n, int64_t inner, float p) {
  float scale = keep_scale(p);
#pragma omp parallel for if (n * inner > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const float *dy = dY + i * inner;
    float *dx = dX + i * inner;
    for (int64_t j = 0; j < inner; j++) dx[j] += dy[j] * scale;
  }
}
