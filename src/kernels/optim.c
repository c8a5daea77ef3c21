/* optim.c — in-place parameter updates of SGD, Adam, AdamW and RMSprop, following
 * torch.optim 1.13 (single-tensor path) step by step, and a sum of squares for grad clipping. */
#include "dense.h"

#include <math.h>

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

/* Adam and AdamW differ only in where weight decay goes: into the gradient (L2, Adam) or
 * straight onto the parameter (decoupled, AdamW). */
static void adam_update(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                        const float *grad, int64_t n, double lr, double beta1, double beta2,
                        double eps, double weight_decay, int64_t step, int decoupled) {
  double bc1 = 1.0 - pow(beta1, (double)step);
  double bc2 = 1.0 - pow(beta2, (double)step);
  float neg_step_size = (float)-(lr / bc1);
  float bc2_sqrt = (float)sqrt(bc2);
  float b1 = (float)beta1, b2 = (float)beta2, one_b1 = (float)(1.0 - beta1);
  float one_b2 = (float)(1.0 - beta2), feps = (float)eps, wd = (float)weight_decay;
  float decay = (float)(1.0 - lr * weight_decay);
  int use_wd = weight_decay != 0.0;
#pragma omp parallel for if (n > NNL_PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i];
    float p = param[i];
    if (decoupled) p = p * decay;
    else if (use_wd) g = g + wd * p;
    float m = exp_avg[i] * b1 + one_b1 * g;
    float v = exp_avg_sq[i] * b2 + (one_b2 * g) * g;
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
    float denom = sqrtf(v) / bc2_sqrt + feps;
    param[i] = p + (neg_step_size * m) / denom;
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
