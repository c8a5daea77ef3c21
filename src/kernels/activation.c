/* activation.c — elementwise activations: relu, leaky_relu, sigmoid, tanh, gelu.
 * Each forward sits above its backward; backwards accumulate into dX. */
#include "dense.h"

#include <math.h>

/* the long constants of gelu, written out rather than relying on M_SQRT1_2 & co. */
#define INV_SQRT2 0.70710678118654752440f      /* 1 / sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794f   /* 1 / sqrt(2 pi) */
#define SQRT_2_OVER_PI 0.79788456080286535588f /* sqrt(2 / pi) */
#define GELU_CUBIC 0.044715f

/* "if (parallel : ...)", not a bare "if (...)": on a combined parallel for simd a bare if clause
 * applies to the simd part too (OpenMP 5), and small arrays would run scalar, one branch per
 * element. */

void nnl_relu_forward(float *Y,       /* (n) */
                      const float *X, /* (n) */
                      int64_t n) {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float x = X[i];
    Y[i] = x < 0.0f ? 0.0f : x; /* NaN and -0 stay, as torch.relu */
  }
}

/* X > 0 exactly where Y > 0 (and NaN where NaN), so the saved output works as well as the input. */
void nnl_relu_backward(float *dX,       /* (n) */
                       const float *X,  /* (n) X or Y */
                       const float *dY, /* (n) */
                       int64_t n) {
  /* both loads unconditional: a select, not a branch, so the loop vectorises */
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = dY[i];
    dX[i] += X[i] <= 0.0f ? 0.0f : g; /* a NaN passes the gradient on, as threshold_backward */
  }
}

void nnl_relu_backward_inplace(float *dYX,     /* (n) dY in, dX out */
                               const float *Y, /* (n) */
                               int64_t n) {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = dYX[i];
    dYX[i] = Y[i] <= 0.0f ? 0.0f : g;
  }
}

void nnl_leaky_relu_forward(float *Y,       /* (n) */
                            const float *X, /* (n) */
                            int64_t n, float slope) {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float x = X[i];
    Y[i] = x > 0.0f ? x : x * slope;
  }
}

void nnl_leaky_relu_backward(float *dX,       /* (n) */
                             const float *X,  /* (n) */
                             const float *dY, /* (n) */
                             int64_t n, float slope) {
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float g = dY[i];
    dX[i] += X[i] > 0.0f ? g : g * slope;
  }
}

void nnl_sigmoid_forward(float *Y,       /* (n) */
                         const float *X, /* (n) */
                         int64_t n) {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) {
    float x = X[i];
    /* exp of a non-positive number only: no overflow, and 1 - Y keeps its precision */
    if (x >= 0.0f) {
      Y[i] = 1.0f / (1.0f + expf(-x));
    } else {
      float e = expf(x);
      Y[i] = e / (1.0f + e);
    }
  }
}

void nnl_sigmoid_backward(float *dX,       /* (n) */
                          const float *Y,  /* (n) saved output */
                          const float *dY, /* (n) */
                          int64_t n) {
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) dX[i] += dY[i] * Y[i] * (1.0f - Y[i]);
}

void nnl_tanh_forward(float *Y,       /* (n) */
                      const float *X, /* (n) */
                      int64_t n) {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) Y[i] = tanhf(X[i]);
}

void nnl_tanh_backward(float *dX,       /* (n) */
                       const float *Y,  /* (n) saved output */
                       const float *dY, /* (n) */
                       int64_t n) {
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) dX[i] += dY[i] * (1.0f - Y[i] * Y[i]);
}

/* exact:  Y = x Phi(x) = x/2 (1 + erf(x / sqrt 2))
 * tanh:   Y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void nnl_gelu_forward(float *Y,       /* (n) */
                      const float *X, /* (n) */
                      int64_t n, int approximate) {
  if (approximate) {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      float x = X[i];
      float inner = SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
      Y[i] = 0.5f * x * (1.0f + tanhf(inner));
    }
  } else {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      float x = X[i];
      Y[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
  }
}

/* exact:  dY/dx = Phi(x) + x phi(x)
 * tanh:   dY/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
void nnl_gelu_backward(float *dX,       /* (n) */
                       const float *X,  /* (n) saved input */
                       const float *dY, /* (n) */
                       int64_t n, int approximate) {
  if (approximate) {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      float x = X[i];
      float t = tanhf(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
      float dinner = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * x * x);
      float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * dinner;
      dX[i] += dY[i] * d;
    }
  } else {
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      float x = X[i];
      float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
      float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
      dX[i] += dY[i] * (cdf + x * pdf);
    }
  }
}
