/* optim.c — in-place parameter updates of SGD, Adam, AdamW and RMSprop, following
 * torch.optim 1.13 (single-tensor path) step by step, and a sum of squares for grad clipping. */
#include "dense.h"

#include "../core/parallel.h"

#include <math.h>
#if defined(__x86_64__) && defined(__GNUC__)
#define NNL_AVX512 1 /* an AVX-512 path, taken when the CPU has it */
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

/* PyTorch turns each Python-float hyperparameter into a float scalar, and derived values
 * (1 - beta1, lr / bias_correction1, ...) are computed in double first, then rounded. The float
 * expressions below keep PyTorch's operation order (addcmul: self + (value * t1) * t2,
 * addcdiv: self + (value * t1) / t2), so results match it to the last bit or nearly. */

void nnl_sgd_step(float *param,      /* (n) */
                  float *buf,        /* (n) momentum buffer, NULL when momentum == 0 */
                  const float *grad, /* (n) */
                  int64_t n, double lr, double momentum, double dampening, double weight_decay,
                  int nesterov, int first_step) {
  float wd = (float)weight_decay, mom = (float)momentum;
  float damp1 = (float)(1.0 - dampening), neg_lr = (float)-lr;
  int use_wd = weight_decay != 0.0, use_mom = momentum != 0.0;
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float d = grad[i];
    if (use_wd) d = d + wd * param[i];
    if (use_mom) {
      /* the first step copies d_p into the buffer instead of decaying an empty one */
      float b = first_step ? d : buf[i] * mom + damp1 * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    param[i] = param[i] + neg_lr * d;
  }
}

/* One Adam element, the reference for the vector path below and the path for amsgrad. */
static inline void adam_one(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                            const float *grad, int64_t i, const float c[9], int decoupled,
                            int use_wd) {
  float g = grad[i];
  float p = param[i];
  if (decoupled) p = p * c[8];
  else if (use_wd) g = g + c[7] * p;
  float m = exp_avg[i] * c[0] + c[2] * g;
  float v = exp_avg_sq[i] * c[1] + (c[3] * g) * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  if (max_exp_avg_sq) {
    /* amsgrad: normalise by the largest second moment so far (NaN spreads, as in
     * torch.maximum) */
    float mx = max_exp_avg_sq[i];
    if (v > mx || isnan(v)) mx = v;
    max_exp_avg_sq[i] = mx;
    v = mx;
  }
  float denom = sqrtf(v) / c[4] + c[5];
  param[i] = p + (c[6] * m) / denom;
}

/* Elements [i0, i1) four at a time, the same float operations in the same order as adam_one (no
 * FMA in SSE, so the results are bit for bit the same). Written with intrinsics because sqrtf
 * may set errno and so never vectorises at -O2. Returns where the scalar tail starts. */
static int64_t adam_sse(float *param, float *exp_avg, float *exp_avg_sq, const float *grad,
                        int64_t i0, int64_t i1, const float c[9], int decoupled, int use_wd) {
  int64_t i = i0;
#ifdef __SSE__
  __m128 b1 = _mm_set1_ps(c[0]), b2 = _mm_set1_ps(c[1]), one_b1 = _mm_set1_ps(c[2]);
  __m128 one_b2 = _mm_set1_ps(c[3]), bc2_sqrt = _mm_set1_ps(c[4]), eps = _mm_set1_ps(c[5]);
  __m128 neg_step = _mm_set1_ps(c[6]), wd = _mm_set1_ps(c[7]), decay = _mm_set1_ps(c[8]);
  for (; i + 4 <= i1; i += 4) {
    __m128 g = _mm_loadu_ps(grad + i), p = _mm_loadu_ps(param + i);
    if (decoupled) p = _mm_mul_ps(p, decay);
    else if (use_wd) g = _mm_add_ps(g, _mm_mul_ps(wd, p));
    __m128 m = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(exp_avg + i), b1), _mm_mul_ps(one_b1, g));
    __m128 v = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(exp_avg_sq + i), b2),
                          _mm_mul_ps(_mm_mul_ps(one_b2, g), g));
    _mm_storeu_ps(exp_avg + i, m);
    _mm_storeu_ps(exp_avg_sq + i, v);
    __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(v), bc2_sqrt), eps);
    _mm_storeu_ps(param + i, _mm_add_ps(p, _mm_div_ps(_mm_mul_ps(neg_step, m), denom)));
  }
#else
  (void)param, (void)exp_avg, (void)exp_avg_sq, (void)grad, (void)i1, (void)c;
  (void)decoupled, (void)use_wd;
#endif
  return i;
}

#ifdef NNL_AVX512
/* adam_sse sixteen at a time. The _round forms (in the current rounding mode, so the same
 * values) keep each product and sum separately rounded: plain vector operations the compiler
 * may fuse into FMAs where the target has them, and the results would drift from adam_one's. */
#define CUR _MM_FROUND_CUR_DIRECTION
__attribute__((target("avx512f"))) static int64_t
adam_avx512(float *param, float *exp_avg, float *exp_avg_sq, const float *grad, int64_t i0,
            int64_t i1, const float c[9], int decoupled, int use_wd) {
  __m512 b1 = _mm512_set1_ps(c[0]), b2 = _mm512_set1_ps(c[1]), one_b1 = _mm512_set1_ps(c[2]);
  __m512 one_b2 = _mm512_set1_ps(c[3]), bc2_sqrt = _mm512_set1_ps(c[4]);
  __m512 eps = _mm512_set1_ps(c[5]), neg_step = _mm512_set1_ps(c[6]);
  __m512 wd = _mm512_set1_ps(c[7]), decay = _mm512_set1_ps(c[8]);
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    __m512 g = _mm512_loadu_ps(grad + i), p = _mm512_loadu_ps(param + i);
    if (decoupled) p = _mm512_mul_round_ps(p, decay, CUR);
    else if (use_wd) g = _mm512_add_round_ps(g, _mm512_mul_round_ps(wd, p, CUR), CUR);
    __m512 m = _mm512_add_round_ps(_mm512_mul_round_ps(_mm512_loadu_ps(exp_avg + i), b1, CUR),
                                   _mm512_mul_round_ps(one_b1, g, CUR), CUR);
    __m512 v = _mm512_add_round_ps(
        _mm512_mul_round_ps(_mm512_loadu_ps(exp_avg_sq + i), b2, CUR),
        _mm512_mul_round_ps(_mm512_mul_round_ps(one_b2, g, CUR), g, CUR), CUR);
    _mm512_storeu_ps(exp_avg + i, m);
    _mm512_storeu_ps(exp_avg_sq + i, v);
    __m512 denom = _mm512_add_round_ps(
        _mm512_div_round_ps(_mm512_sqrt_round_ps(v, CUR), bc2_sqrt, CUR), eps, CUR);
    __m512 step = _mm512_div_round_ps(_mm512_mul_round_ps(neg_step, m, CUR), denom, CUR);
    _mm512_storeu_ps(param + i, _mm512_add_round_ps(p, step, CUR));
  }
  return i;
}
#undef CUR
#endif

/* Blocks of this many elements: a thread's unit of work, vectorised up to a tail of < 4. */
#define ADAM_BLOCK 4096

/* Adam and AdamW differ only in where weight decay goes: into the gradient (L2, Adam) or
 * straight onto the parameter (decoupled, AdamW). */
static void adam_update(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                        const float *grad, int64_t n, double lr, double beta1, double beta2,
                        double eps, double weight_decay, int64_t step, int decoupled) {
  double bc1 = 1.0 - pow(beta1, (double)step);
  double bc2 = 1.0 - pow(beta2, (double)step);
  const float c[9] = {(float)beta1,        (float)beta2,  (float)(1.0 - beta1),
                      (float)(1.0 - beta2), (float)sqrt(bc2), (float)eps,
                      (float)-(lr / bc1),   (float)weight_decay,
                      (float)(1.0 - lr * weight_decay)};
  int use_wd = weight_decay != 0.0, wide = 0;
#ifdef NNL_AVX512
  wide = nnl_cpu_avx512();
#endif
  (void)wide;
  int64_t nblocks = (n + ADAM_BLOCK - 1) / ADAM_BLOCK;
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t i0 = b * ADAM_BLOCK, i1 = i0 + ADAM_BLOCK < n ? i0 + ADAM_BLOCK : n, i = i0;
#ifdef NNL_AVX512
    if (!max_exp_avg_sq && wide)
      i = adam_avx512(param, exp_avg, exp_avg_sq, grad, i, i1, c, decoupled, use_wd);
#endif
    if (!max_exp_avg_sq)
      i = adam_sse(param, exp_avg, exp_avg_sq, grad, i, i1, c, decoupled, use_wd);
    for (; i < i1; i++)
      adam_one(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, i, c, decoupled, use_wd);
  }
}

void nnl_adam_step(float *param,          /* (n) */
                   float *exp_avg,        /* (n) first moment */
                   float *exp_avg_sq,     /* (n) second moment */
                   float *max_exp_avg_sq, /* (n) for amsgrad, or NULL */
                   const float *grad,     /* (n) */
                   int64_t n, double lr, double beta1, double beta2, double eps,
                   double weight_decay, int64_t step) {
  adam_update(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, lr, beta1, beta2, eps,
              weight_decay, step, 0);
}

void nnl_adamw_step(float *param,          /* (n) */
                    float *exp_avg,        /* (n) first moment */
                    float *exp_avg_sq,     /* (n) second moment */
                    float *max_exp_avg_sq, /* (n) for amsgrad, or NULL */
                    const float *grad,     /* (n) */
                    int64_t n, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step) {
  adam_update(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, lr, beta1, beta2, eps,
              weight_decay, step, 1);
}

void nnl_rmsprop_step(float *param,        /* (n) */
                      float *square_avg,   /* (n) */
                      float *grad_avg,     /* (n) when centered, else NULL */
                      float *momentum_buf, /* (n) when momentum > 0, else NULL */
                      const float *grad,   /* (n) */
                      int64_t n, double lr, double alpha, double eps, double weight_decay,
                      double momentum, int centered) {
  float a = (float)alpha, one_a = (float)(1.0 - alpha), feps = (float)eps;
  float wd = (float)weight_decay, mom = (float)momentum, neg_lr = (float)-lr;
  int use_wd = weight_decay != 0.0, use_mom = momentum > 0.0;
#pragma omp parallel for if (n > NNL_PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i];
    if (use_wd) g = g + wd * param[i];
    float sq = square_avg[i] * a + (one_a * g) * g;
    square_avg[i] = sq;
    float avg;
    if (centered) {
      /* variance estimate: E[g^2] - E[g]^2 */
      float ga = grad_avg[i] * a + one_a * g;
      grad_avg[i] = ga;
      avg = sqrtf(sq + (-1.0f * ga) * ga);
    } else {
      avg = sqrtf(sq);
    }
    avg = avg + feps;
    if (use_mom) {
      float b = momentum_buf[i] * mom + g / avg;
      momentum_buf[i] = b;
      param[i] = param[i] + neg_lr * b;
    } else {
      param[i] = param[i] + (neg_lr * g) / avg;
    }
  }
}

/* Fixed chunks summed in order: the norm is the same for any number of threads. */
#define NCHUNK 64

double nnl_sum_squares(const float *x, /* (n) */
                       int64_t n) {
  double part[NCHUNK];
#pragma omp parallel for if (n > NNL_PAR_MIN)
  for (int c = 0; c < NCHUNK; c++) {
    double s = 0.0;
    for (int64_t i = n * c / NCHUNK; i < n * (c + 1) / NCHUNK; i++) s += (double)x[i] * x[i];
    part[c] = s;
  }
  double s = 0.0;
  for (int c = 0; c < NCHUNK; c++) s += part[c];
  return s;
}
