/* dense.h — kernels of the dense layers: linear, activations, softmax, losses, dropout,
 * embedding and the optimizer updates. Plain float pointers, forward above backward. */
#ifndef NNL_DENSE_H
#define NNL_DENSE_H

#include <stdint.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

/* Conventions (as in llm.c):
 * - arguments: outputs, then saved values, then inputs (the incoming gradient last), then sizes
 *   and options; every buffer is contiguous, row-major, with its shape in a comment;
 * - a backward ACCUMULATES (+=) into its gradient buffers: zeroing them is the caller's job,
 *   and a NULL gradient buffer means "not needed" and skips that work;
 * - kernels never fail and never allocate: callers check shapes, label and index ranges;
 * - results do not depend on the number of threads (fixed reduction order, counter RNG). */

/* PyTorch's order: none = 0, mean = 1, sum = 2. */
typedef enum {
  NNL_REDUCTION_NONE = 0,
  NNL_REDUCTION_MEAN = 1,
  NNL_REDUCTION_SUM = 2
} nnl_reduction;

/* ignore_index value that matches no label. */
#define NNL_NO_IGNORE INT64_MIN

/* ---- linear.c: Y = X W^T + b (PyTorch layout). Matrix sizes must fit in int (sgemm). ---- */
/* relu = 1: Y = max(X W^T + b, 0) (NaN stays, as torch.relu). */
void nnl_linear_forward(float *Y,       /* (N, O) */
                        const float *X, /* (N, I) */
                        const float *W, /* (O, I) */
                        const float *b, /* (O) or NULL */
                        int N, int I, int O, int relu);
/* dX += dY W;  dW += dY^T X;  db += sum_n dY. Any of dX, dW, db may be NULL. */
void nnl_linear_backward(float *dX,       /* (N, I) or NULL */
                         float *dW,       /* (O, I) or NULL */
                         float *db,       /* (O) or NULL */
                         const float *X,  /* (N, I); may be NULL when dW is NULL */
                         const float *W,  /* (O, I); may be NULL when dX is NULL */
                         const float *dY, /* (N, O) */
                         int N, int I, int O);
/* The same gradients stored into dX, dW, db, not added: the buffers need no zero-filling. */
void nnl_linear_backward_into(float *dX,       /* (N, I) or NULL */
                              float *dW,       /* (O, I) or NULL */
                              float *db,       /* (O) or NULL */
                              const float *X,  /* (N, I); may be NULL when dW is NULL */
                              const float *W,  /* (O, I); may be NULL when dX is NULL */
                              const float *dY, /* (N, O) */
                              int N, int I, int O);

/* ---- activation.c: elementwise over n floats ---- */
void nnl_relu_forward(float *Y, const float *X, int64_t n);                     /* Y, X: (n) */
void nnl_relu_backward(float *dX, const float *X, const float *dY, int64_t n);  /* X or Y: (n) */
/* The same gradient stored, not added, in place: dYX holds dY and becomes dX. For a gradient
 * buffer the caller owns: no zero-filled dX, one pass over memory instead of three. */
void nnl_relu_backward_inplace(float *dYX, const float *Y, int64_t n); /* dYX, Y: (n) */
void nnl_leaky_relu_forward(float *Y, const float *X, int64_t n, float slope);
void nnl_leaky_relu_backward(float *dX, const float *X, const float *dY, int64_t n, float slope);
void nnl_sigmoid_forward(float *Y, const float *X, int64_t n);
void nnl_sigmoid_backward(float *dX, const float *Y, const float *dY, int64_t n); /* Y saved */
void nnl_tanh_forward(float *Y, const float *X, int64_t n);
void nnl_tanh_backward(float *dX, const float *Y, const float *dY, int64_t n);    /* Y saved */
/* approximate = 0: exact x * Phi(x) (erf form, PyTorch's default);
 * approximate = 1: PyTorch's approximate="tanh". */
void nnl_gelu_forward(float *Y, const float *X, int64_t n, int approximate);
void nnl_gelu_backward(float *dX, const float *X, const float *dY, int64_t n, int approximate);

/* ---- softmax.c: along the middle axis of a contiguous (outer, dim, inner) tensor ---- */
void nnl_softmax_forward(float *Y,       /* (outer, dim, inner) */
                         const float *X, /* (outer, dim, inner) */
                         int64_t outer, int64_t dim, int64_t inner);
/* dX += Y * (dY - sum_dim(dY * Y)) */
void nnl_softmax_backward(float *dX, const float *Y, const float *dY, /* (outer, dim, inner) */
                          int64_t outer, int64_t dim, int64_t inner);
void nnl_log_softmax_forward(float *Y, const float *X, /* (outer, dim, inner) */
                             int64_t outer, int64_t dim, int64_t inner);
/* dX += dY - exp(Y) * sum_dim(dY) */
void nnl_log_softmax_backward(float *dX, const float *Y, const float *dY, /* (outer, dim, inner) */
                              int64_t outer, int64_t dim, int64_t inner);

/* ---- loss.c ----
 * Class-index losses take logits or log-probs of shape (N, C, inner), inner = d1*d2*... (1 for
 * plain (N, C)), and 0-based labels of shape (N, inner) in [0, C) or equal to ignore_index
 * (NNL_NO_IGNORE: none). weight: per-class weight (C) or NULL. loss: (1) for mean and sum,
 * (N, inner) for none; dloss has the same shape as loss. Mean divides by the summed weight of
 * the non-ignored targets (their count without weights), as PyTorch does: 0/0 = NaN when all
 * targets are ignored. */

/* cross_entropy = log_softmax over C + nll_loss, with PyTorch's label_smoothing eps:
 * loss_i = (1-eps) * w[y] * -logp[y] + eps/C * sum_c w[c] * -logp[c].
 * logp is saved for backward. */
void nnl_cross_entropy_forward(float *loss,           /* (1) or (N, inner) */
                               float *logp,           /* (N, C, inner) out: saved log-probs */
                               const float *logits,   /* (N, C, inner) */
                               const int64_t *labels, /* (N, inner) */
                               const float *weight,   /* (C) or NULL */
                               int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                               float label_smoothing, nnl_reduction reduction);
/* dlogits += g * (softmax * (sum_c q_c) - q) with q = (1-eps) w[y] onehot(y) + eps/C w. */
void nnl_cross_entropy_backward(float *dlogits,        /* (N, C, inner) */
                                const float *logp,     /* (N, C, inner) from forward */
                                const int64_t *labels, /* (N, inner) */
                                const float *weight,   /* (C) or NULL */
                                const float *dloss,    /* (1) or (N, inner) */
                                int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                                float label_smoothing, nnl_reduction reduction);
/* nll_loss: loss_i = -w[y] * logp[y]. */
void nnl_nll_loss_forward(float *loss,           /* (1) or (N, inner) */
                          const float *logp,     /* (N, C, inner) */
                          const int64_t *labels, /* (N, inner) */
                          const float *weight,   /* (C) or NULL */
                          int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                          nnl_reduction reduction);
void nnl_nll_loss_backward(float *dlogp,          /* (N, C, inner) */
                           const int64_t *labels, /* (N, inner) */
                           const float *weight,   /* (C) or NULL */
                           const float *dloss,    /* (1) or (N, inner) */
                           int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                           nnl_reduction reduction);
/* mse_loss: (x - t)^2, reduced. */
void nnl_mse_loss_forward(float *loss,      /* (1) or (n) */
                          const float *X,   /* (n) */
                          const float *T,   /* (n) target */
                          int64_t n, nnl_reduction reduction);
void nnl_mse_loss_backward(float *dX,          /* (n) or NULL */
                           float *dT,          /* (n) or NULL */
                           const float *X,     /* (n) */
                           const float *T,     /* (n) */
                           const float *dloss, /* (1) or (n) */
                           int64_t n, nnl_reduction reduction);
/* binary_cross_entropy_with_logits, stable for large |x|:
 * loss_i = weight_i * ((1 - t) x + (1 + (pw - 1) t) * log(1 + exp(-x))), pw = pos_weight[i % C].
 * X, T: (n) viewed as (n / C, C); weight: (n) (caller expands) or NULL; pos_weight: (C) or NULL.
 * C is the size of the last dim (1 without pos_weight). */
void nnl_bce_with_logits_forward(float *loss,             /* (1) or (n) */
                                 const float *X,          /* (n) logits */
                                 const float *T,          /* (n) targets in [0, 1] */
                                 const float *weight,     /* (n) or NULL */
                                 const float *pos_weight, /* (C) or NULL */
                                 int64_t n, int64_t C, nnl_reduction reduction);
void nnl_bce_with_logits_backward(float *dX,               /* (n) or NULL */
                                  float *dT,               /* (n) or NULL */
                                  const float *X,          /* (n) */
                                  const float *T,          /* (n) */
                                  const float *weight,     /* (n) or NULL */
                                  const float *pos_weight, /* (C) or NULL */
                                  const float *dloss,      /* (1) or (n) */
                                  int64_t n, int64_t C, nnl_reduction reduction);

/* ---- dropout.c: inverted dropout, Y = X * mask / (1 - p) ----
 * Mask entry i keeps with probability 1 - p, from draw nnl_rng_u64(seed, counter + i): reserve
 * n draws with nnl_rng_reserve. Each mask entry covers `inner` consecutive elements of X
 * (inner = 1: dropout; inner = H*W on an (N, C, H, W) tensor: dropout2d). p >= 1 drops all. */
void nnl_dropout_forward(float *Y,       /* (n, inner) */
                         uint8_t *mask,  /* (n) out: 1 keep, 0 drop */
                         const float *X, /* (n, inner) */
                         int64_t n, int64_t inner, float p, uint64_t seed, uint64_t counter);
/* dX += dY * mask / (1 - p) */
void nnl_dropout_backward(float *dX,          /* (n, inner) */
                          const uint8_t *mask, /* (n) */
                          const float *dY,    /* (n, inner) */
                          int64_t n, int64_t inner, float p);

/* ---- embedding.c ---- (indices 0-based, checked by the caller to lie in [0, V)) */
void nnl_embedding_forward(float *Y,            /* (N, D) */
                           const int64_t *idx,  /* (N) */
                           const float *W,      /* (V, D) */
                           int64_t N, int64_t D);
/* dW[idx[n]] += dY[n] for idx[n] != padding_idx (-1: none). Deterministic: each thread owns a
 * range of rows of dW and adds its rows' contributions in order of n. */
void nnl_embedding_backward(float *dW,           /* (V, D) */
                            const int64_t *idx,  /* (N) */
                            const float *dY,     /* (N, D) */
                            int64_t N, int64_t V, int64_t D, int64_t padding_idx);

/* ---- optim.c: in-place updates of n parameters, formulas of torch.optim (1.13) ----
 * Hyperparameters are doubles, like Python floats; the update runs in float in PyTorch's order. */

/* SGD. buf: momentum buffer (n), NULL when momentum == 0. first_step = 1 on the first update
 * with momentum (PyTorch then sets buf = d_p instead of decaying it). */
void nnl_sgd_step(float *param, float *buf, const float *grad, int64_t n, double lr,
                  double momentum, double dampening, double weight_decay, int nesterov,
                  int first_step);
/* Adam (L2 weight decay added to the gradient) and AdamW (decoupled: param *= 1 - lr*wd).
 * step: the step count including this one (1 on the first update), for bias correction.
 * max_exp_avg_sq: (n) buffer for amsgrad, NULL for plain Adam. Buffers start at zero. */
void nnl_adam_step(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                   const float *grad, int64_t n, double lr, double beta1, double beta2,
                   double eps, double weight_decay, int64_t step);
void nnl_adamw_step(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                    const float *grad, int64_t n, double lr, double beta1, double beta2,
                    double eps, double weight_decay, int64_t step);
/* RMSprop. grad_avg: (n), only when centered (else NULL); momentum_buf: (n), only when
 * momentum > 0 (else NULL). Buffers start at zero. */
void nnl_rmsprop_step(float *param, float *square_avg, float *grad_avg, float *momentum_buf,
                      const float *grad, int64_t n, double lr, double alpha, double eps,
                      double weight_decay, double momentum, int centered);
/* sum of x[i]^2 in double, in a fixed order (for clip_grad_norm: sqrt of the sum over params). */
double nnl_sum_squares(const float *x, int64_t n);

#endif
