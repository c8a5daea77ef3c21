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
/* relu(linear(x, w, b)): in one pass over the output (bias and ReLU on each tile of the product)
 * when no node is recorded; as the two ops, with their two nodes, when one is. */
nnl_tensor *nnl_linear_relu(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b);

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

/* ---- spatial layers (spatial_ops.c) ----
 * x: float32 (N, C, H, W), or (C, H, W) taken as a batch of one (the output then has no batch dim
 * either). Pairs are {h, w}: stride >= 1, padding >= 0, dilation >= 1. A kernel (dilated) larger
 * than the padded input is an error; for pooling so is padding > kernel / 2 (PyTorch's rule). */

/* w: (F, C/groups, KH, KW); b: (F) or NULL. Returns (N, F, OH, OW). im2col + sgemm with a
 * workspace tensor per call; the backward computes only the gradients that are needed (no dX
 * when x needs no gradient). */
nnl_tensor *nnl_conv2d(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b, const int stride[2],
                       const int padding[2], const int dilation[2], int groups);
/* Padding counts as -inf. *indices (when indices is non-NULL) gets a new int64 tensor of the
 * output's shape holding each maximum's flat 0-based position h*W + w in its input plane. */
nnl_tensor *nnl_max_pool2d(nnl_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2], const int dilation[2], nnl_tensor **indices);
/* divisor_override: 0 for none. */
nnl_tensor *nnl_avg_pool2d(nnl_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2], int count_include_pad, int divisor_override);
nnl_tensor *nnl_adaptive_avg_pool2d(nnl_tensor *x, int OH, int OW);

/* x: (N, C, ...); running_mean, running_var, weight, bias: (C) or NULL (the running statistics
 * both or neither; required when !training). Training normalises with the batch statistics and
 * updates the running ones in place (unbiased variance, PyTorch's momentum rule); evaluation
 * uses the running ones. Gradients for x, weight and bias. */
nnl_tensor *nnl_batch_norm(nnl_tensor *x, nnl_tensor *running_mean, nnl_tensor *running_var,
                           nnl_tensor *weight, nnl_tensor *bias, int training, double momentum,
                           double eps);

/* ---- recurrent layers (rnn_ops.c) ----
 * One node per layer over a whole sequence (backpropagation through time in the kernel), or per
 * cell step. Weights in PyTorch's layout with G gates (rnn 1; lstm 4: i, f, g, o; gru 3: r, z, n):
 * w_ih (G*H, D), w_hh (G*H, H), b_ih and b_hh (G*H) or NULL. A sequence x is (T, N, D), or
 * (N, T, D) when batch_first, or (T, D) unbatched; h0 and c0 are (N, H) ((H) unbatched) or NULL
 * for zeros. Returns every h_t, laid out as x: (T, N, H), (N, T, H) or (T, H); *h_n (and *c_n) get
 * the final states (N, H) (or (H)); pass NULL to drop them. Gradients reach x, the states and
 * every weight from all the outputs. relu = 0: tanh. */
nnl_tensor *nnl_rnn(nnl_tensor **h_n, nnl_tensor *x, nnl_tensor *h0, nnl_tensor *w_ih,
                    nnl_tensor *w_hh, nnl_tensor *b_ih, nnl_tensor *b_hh, int relu,
                    int batch_first);
nnl_tensor *nnl_lstm(nnl_tensor **h_n, nnl_tensor **c_n, nnl_tensor *x, nnl_tensor *h0,
                     nnl_tensor *c0, nnl_tensor *w_ih, nnl_tensor *w_hh, nnl_tensor *b_ih,
                     nnl_tensor *b_hh, int batch_first);
nnl_tensor *nnl_gru(nnl_tensor **h_n, nnl_tensor *x, nnl_tensor *h0, nnl_tensor *w_ih,
                    nnl_tensor *w_hh, nnl_tensor *b_ih, nnl_tensor *b_hh, int batch_first);
/* One step: x (N, D) or (D); h and c (N, H) or (H), or NULL for zeros. Returns h'; the LSTM
 * cell's c' goes to *c_new (NULL: dropped). */
nnl_tensor *nnl_rnn_cell(nnl_tensor *x, nnl_tensor *h, nnl_tensor *w_ih, nnl_tensor *w_hh,
                         nnl_tensor *b_ih, nnl_tensor *b_hh, int relu);
nnl_tensor *nnl_lstm_cell(nnl_tensor **c_new, nnl_tensor *x, nnl_tensor *h, nnl_tensor *c,
                          nnl_tensor *w_ih, nnl_tensor *w_hh, nnl_tensor *b_ih,
                          nnl_tensor *b_hh);
nnl_tensor *nnl_gru_cell(nnl_tensor *x, nnl_tensor *h, nnl_tensor *w_ih, nnl_tensor *w_hh,
                         nnl_tensor *b_ih, nnl_tensor *b_hh);

#endif
