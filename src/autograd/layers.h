/* layers.h — the dense layer ops as autograd nodes: linear, activations, softmax, losses,
 * dropout, embedding, flatten. Each op is ONE node whose backward is the analytic formula. */
#ifndef NNL_LAYERS_H
#define NNL_LAYERS_H

#include "../kernels/dense.h"
#include "../nnlua.h"

/* Conventions: dims and class labels / indices are 0-based here (the Lua face shifts them);
 * float inputs must be float32, labels and indices int64; non-contiguous inputs are copied.
 * Every function returns a new reference, or NULL with nnl_set_error() naming the function and
 * the shapes involved. A node is recorded when grad mode is on and a float input requires grad;
 * its backward only computes the gradients of inputs that need one. */

/* Y = X W^T + b. x: (..., I) of any rank >= 1 (leading dims flattened, no copy when contiguous);
 * w: (O, I); b: (O) or NULL. Returns (..., O). */
nnl_tensor *nnl_linear(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b);

/* Elementwise activations, any shape. gelu: approximate = 0 exact (erf), 1 tanh form. */
nnl_tensor *nnl_relu(nnl_tensor *x);
nnl_tensor *nnl_leaky_relu(nnl_tensor *x, double slope);
nnl_tensor *nnl_sigmoid(nnl_tensor *x);
nnl_tensor *nnl_tanh(nnl_tensor *x);
nnl_tensor *nnl_gelu(nnl_tensor *x, int approximate);

/* Along dim (0-based; a 0-d x is treated as one element). */
nnl_tensor *nnl_softmax(nnl_tensor *x, int dim);
nnl_tensor *nnl_log_softmax(nnl_tensor *x, int dim);

/* Class-index losses. input: (N, C, d1, ...) or (C); labels: int64 (N, d1, ...) or 0-d, each in
 * [0, C) or equal to ignore_index (NNL_NO_IGNORE: none); weight: float32 (C) or NULL.
 * reduction NONE returns labels' shape, MEAN and SUM a 0-d tensor. No gradient for weight. */
nnl_tensor *nnl_cross_entropy(nnl_tensor *logits, nnl_tensor *labels, nnl_tensor *weight,
                              int64_t ignore_index, double label_smoothing,
                              nnl_reduction reduction);
nnl_tensor *nnl_nll_loss(nnl_tensor *logp, nnl_tensor *labels, nnl_tensor *weight,
                         int64_t ignore_index, nnl_reduction reduction);
/* The first label that is neither in [lo, hi] nor equal to ignore: its flat position (and its
 * value in *value when non-NULL), or -1 if all are fine. labels: int64, any shape and strides. */
int64_t nnl_find_bad_label(const nnl_tensor *labels, int64_t lo, int64_t hi, int64_t ignore,
                           int64_t *value);

/* (x - t)^2, x and t of the same shape; gradients for both. */
nnl_tensor *nnl_mse_loss(nnl_tensor *x, nnl_tensor *t, nnl_reduction reduction);
/* weight: broadcastable to x, or NULL; pos_weight: (C) with C = x's last size (or 1), or NULL.
 * Gradients for x and t (not for the weights). */
nnl_tensor *nnl_bce_with_logits(nnl_tensor *x, nnl_tensor *t, nnl_tensor *weight,
                                nnl_tensor *pos_weight, nnl_reduction reduction);

/* Inverted dropout with p in [0, 1] from the global counter RNG; returns x itself (retained)
 * when !training or p == 0. feature = 1 drops whole channels: x is (N, C, ...) and one mask
 * entry covers each (n, c) (dropout2d; a 3-D x counts as (N, C, L), as PyTorch 1.13). */
nnl_tensor *nnl_dropout(nnl_tensor *x, double p, int training, int feature);

/* Y[..., :] = W[idx[...], :]. idx: int64 of any shape, each in [0, V); w: (V, D); padding_idx
 * in [0, V) or -1 (none): that row gets no gradient. Returns idx's shape + (D). Gradient for
 * w only. */
nnl_tensor *nnl_embedding(nnl_tensor *idx, nnl_tensor *w, int64_t padding_idx);

/* Merge dims start..end (0-based, inclusive) into one; a view when x is contiguous. */
nnl_tensor *nnl_flatten(nnl_tensor *x, int start_dim, int end_dim);

#endif
