/* dense_ops.c — the dense layers as single autograd nodes over the kernels of dense.h: linear,
 * activations, softmax, losses, dropout, embedding, flatten. Forward checks, backward formulas. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "../core/tensor.h"
#include "autograd.h"
#include "layers.h"

/* ---- helpers ---- */

static int want_dtype(const nnl_tensor *t, nnl_dtype dt, const char *fn, const char *what) {
  if (t->dtype == dt) return 0;
  nnl_set_error("%s: %s must be a %s tensor, got %s", fn, what, nnl_dtype_name(dt),
                nnl_dtype_name(t->dtype));
  return -1;
}

static float *fdata(const nnl_tensor *t) { return t ? nnl_tensor_data(t) : NULL; }

static nnl_tensor *zeros_shaped(int ndim, const int64_t *shape) {
  return nnl_tensor_zeros(NNL_F32, ndim, shape);
}

/* A node on out with the given inputs; NULL (out released) when the node cannot be made. The
 * caller fills parameters and saved tensors, then calls finish(). */
static nnl_node *start_node(nnl_tensor **out, const char *name, nnl_backward_fn bw,
                            nnl_tensor *const *in, int n) {
  if (!*out || !nnl_ag_needed(in, n)) return NULL;
  nnl_node *nd = nnl_node_new(name, bw, in, n);
  if (!nd) {
    nnl_tensor_release(*out);
    *out = NULL;
  }
  return nd;
}

static void finish(nnl_node *n, nnl_tensor *out) {
  nnl_node_set_output(n, out, 0);
  nnl_node_release(n);
}

static nnl_reduction reduction_of(const nnl_node *n, int k) { return (nnl_reduction)n->ip[k]; }

/* ---- linear ---- */

/* ip: 0 x's ndim, 1..8 x's shape, 10 N, 11 I, 12 O; saved: 0 X (if dW), 1 W (if dX). */
static int bw_linear(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int64_t N = n->ip[10], I = n->ip[11], O = n->ip[12];
  int64_t wshape[2] = {O, I};
  /* fresh buffers the kernel stores into (no zero-filling) */
  if (nnl_node_input_needs(n, 0) &&
      !(gin[0] = nnl_tensor_empty(NNL_F32, (int)n->ip[0], &n->ip[1])))
    return -1;
  if (nnl_node_input_needs(n, 1) && !(gin[1] = nnl_tensor_empty(NNL_F32, 2, wshape))) return -1;
  if (nnl_node_input_needs(n, 2) && !(gin[2] = nnl_tensor_empty(NNL_F32, 1, &O))) return -1;
  nnl_linear_backward_into(fdata(gin[0]), fdata(gin[1]), fdata(gin[2]), fdata(n->saved[0]),
                           fdata(n->saved[1]), fdata(gout[0]), (int)N, (int)I, (int)O);
  return 0;
}

/* relu = 1 only when no node is recorded (nnl_linear_relu). */
static nnl_tensor *linear(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b, int relu) {
  char xs[160], ws[160], bs[160];
  if (want_dtype(x, NNL_F32, "linear", "input") || want_dtype(w, NNL_F32, "linear", "weight") ||
      (b && want_dtype(b, NNL_F32, "linear", "bias")))
    return NULL;
  if (w->ndim != 2) {
    nnl_set_error("linear: weight must be 2-D [out_features, in_features], got %s",
                  nnl_shape_str(w, ws, sizeof ws));
    return NULL;
  }
  int64_t O = w->shape[0], I = w->shape[1];
  if (x->ndim < 1 || x->shape[x->ndim - 1] != I) {
    nnl_set_error("linear: input %s has %lld features but weight is %s (expects %lld)",
                  nnl_shape_str(x, xs, sizeof xs),
                  (long long)(x->ndim ? x->shape[x->ndim - 1] : 0),
                  nnl_shape_str(w, ws, sizeof ws), (long long)I);
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != O)) {
    nnl_set_error("linear: bias has size %s but weight is %s (expected [%lld])",
                  nnl_shape_str(b, bs, sizeof bs), nnl_shape_str(w, ws, sizeof ws),
                  (long long)O);
    return NULL;
  }
  int64_t N = 1;
  for (int d = 0; d < x->ndim - 1; d++) N *= x->shape[d];
  if (N > INT_MAX || I > INT_MAX || O > INT_MAX) {
    nnl_set_error("linear: input %s or weight %s too large for BLAS (sizes must fit in int)",
                  nnl_shape_str(x, xs, sizeof xs), nnl_shape_str(w, ws, sizeof ws));
    return NULL;
  }
  int64_t shape[NNL_MAXDIM];
  memcpy(shape, x->shape, x->ndim * sizeof *shape);
  shape[x->ndim - 1] = O;
  nnl_tensor *xc = nnl_raw_contiguous(x), *wc = xc ? nnl_raw_contiguous(w) : NULL;
  nnl_tensor *bc = wc && b ? nnl_raw_contiguous(b) : NULL;
  nnl_tensor *out = wc && (bc || !b) ? nnl_tensor_empty(NNL_F32, x->ndim, shape) : NULL;
  if (out)
    nnl_linear_forward(fdata(out), fdata(xc), fdata(wc), fdata(bc), (int)N, (int)I, (int)O, relu);
  nnl_tensor *in[3] = {x, w, b};
  nnl_node *n = start_node(&out, "LinearBackward", bw_linear, in, 3);
  if (n) {
    n->ip[0] = x->ndim;
    memcpy(&n->ip[1], x->shape, x->ndim * sizeof *shape);
    n->ip[10] = N, n->ip[11] = I, n->ip[12] = O;
    nnl_node_save(n, nnl_node_input_needs(n, 1) ? xc : NULL);
    nnl_node_save(n, nnl_node_input_needs(n, 0) ? wc : NULL);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(wc), nnl_tensor_release(bc);
  return out;
}

nnl_tensor *nnl_linear(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b) { return linear(x, w, b, 0); }

nnl_tensor *nnl_linear_relu(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b) {
  nnl_tensor *in[3] = {x, w, b};
  if (!nnl_ag_needed(in, 3)) return linear(x, w, b, 1);
  /* recording: the two usual nodes, so the graph reads as it would unfused */
  nnl_tensor *y = linear(x, w, b, 0), *out = y ? nnl_relu(y) : NULL;
  nnl_tensor_release(y);
  return out;
}

/* ---- activations ---- */

/* g is a float32 tensor over all of its storage that nothing else references: a gradient the
 * engine handed over, which a backward may overwrite and return. */
static int owned(const nnl_tensor *g) {
  return g->dtype == NNL_F32 && nnl_tensor_is_contiguous(g) && g->refcount == 1 &&
         g->storage->refcount == 1 && g->offset == 0 &&
         g->storage->nbytes == (size_t)nnl_tensor_numel(g) * sizeof(float);
}

enum { ACT_RELU, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_GELU };

static const char *act_fn[] = {"relu", "leaky_relu", "sigmoid", "tanh", "gelu"};
static const char *act_node[] = {"ReluBackward", "LeakyReluBackward", "SigmoidBackward",
                                 "TanhBackward", "GeluBackward"};

/* ip[0] kind, ip[1] gelu's approximate; p[0] slope; saved[0]: Y for relu, sigmoid and tanh
 * (their derivatives read the output), X for leaky_relu and gelu. */
static int bw_act(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *g = gout[0];
  if (n->ip[0] == ACT_RELU && owned(g)) { /* the engine's own buffer: becomes dX in place */
    nnl_relu_backward_inplace(fdata(g), fdata(n->saved[0]), nnl_tensor_numel(g));
    gin[0] = nnl_tensor_retain(g);
    return 0;
  }
  nnl_tensor *dx = zeros_shaped(g->ndim, g->shape);
  if (!dx) return -1;
  const float *s = fdata(n->saved[0]), *dy = fdata(g);
  float *d = fdata(dx);
  int64_t k = nnl_tensor_numel(g);
  switch (n->ip[0]) {
  case ACT_RELU: nnl_relu_backward(d, s, dy, k); break;
  case ACT_LEAKY: nnl_leaky_relu_backward(d, s, dy, k, (float)n->p[0]); break;
  case ACT_SIGMOID: nnl_sigmoid_backward(d, s, dy, k); break;
  case ACT_TANH: nnl_tanh_backward(d, s, dy, k); break;
  default: nnl_gelu_backward(d, s, dy, k, (int)n->ip[1]); break;
  }
  gin[0] = dx;
  return 0;
}

static nnl_tensor *activation(nnl_tensor *x, int kind, double slope, int approximate) {
  if (want_dtype(x, NNL_F32, act_fn[kind], "input")) return NULL;
  nnl_tensor *xc = nnl_raw_contiguous(x);
  nnl_tensor *out = xc ? nnl_tensor_empty(NNL_F32, x->ndim, x->shape) : NULL;
  if (out) {
    float *y = fdata(out), *xs = fdata(xc);
    int64_t k = nnl_tensor_numel(x);
    switch (kind) {
    case ACT_RELU: nnl_relu_forward(y, xs, k); break;
    case ACT_LEAKY: nnl_leaky_relu_forward(y, xs, k, (float)slope); break;
    case ACT_SIGMOID: nnl_sigmoid_forward(y, xs, k); break;
    case ACT_TANH: nnl_tanh_forward(y, xs, k); break;
    default: nnl_gelu_forward(y, xs, k, approximate); break;
    }
  }
  nnl_node *n = start_node(&out, act_node[kind], bw_act, &x, 1);
  if (n) {
    n->ip[0] = kind, n->ip[1] = approximate, n->p[0] = slope;
    int saves_x = kind == ACT_LEAKY || kind == ACT_GELU;
    nnl_node_save(n, saves_x ? xc : out);
    finish(n, out);
  }
  nnl_tensor_release(xc);
  return out;
}

nnl_tensor *nnl_relu(nnl_tensor *x) { return activation(x, ACT_RELU, 0, 0); }
nnl_tensor *nnl_leaky_relu(nnl_tensor *x, double slope) {
  return activation(x, ACT_LEAKY, slope, 0);
}
nnl_tensor *nnl_sigmoid(nnl_tensor *x) { return activation(x, ACT_SIGMOID, 0, 0); }
nnl_tensor *nnl_tanh(nnl_tensor *x) { return activation(x, ACT_TANH, 0, 0); }
nnl_tensor *nnl_gelu(nnl_tensor *x, int approximate) {
  return activation(x, ACT_GELU, 0, approximate != 0);
}

/* ---- softmax, log_softmax ---- */

/* ip: 0 outer, 1 dim, 2 inner, 3 log; saved[0] Y. */
static int bw_softmax(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *g = gout[0], *dx = zeros_shaped(g->ndim, g->shape);
  if (!dx) return -1;
  if (n->ip[3])
    nnl_log_softmax_backward(fdata(dx), fdata(n->saved[0]), fdata(g), n->ip[0], n->ip[1], n->ip[2]);
  else
    nnl_softmax_backward(fdata(dx), fdata(n->saved[0]), fdata(g), n->ip[0], n->ip[1], n->ip[2]);
  gin[0] = dx;
  return 0;
}

static nnl_tensor *softmax_any(nnl_tensor *x, int dim, int log) {
  const char *fn = log ? "log_softmax" : "softmax";
  if (want_dtype(x, NNL_F32, fn, "input")) return NULL;
  int nd = x->ndim ? x->ndim : 1;
  if (dim < 0 || dim >= nd) {
    nnl_set_error("%s: dimension %d out of range (expected 1 to %d)", fn, dim + 1, nd);
    return NULL;
  }
  int64_t outer = 1, len = x->ndim ? x->shape[dim] : 1, inner = 1;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  nnl_tensor *xc = nnl_raw_contiguous(x);
  nnl_tensor *out = xc ? nnl_tensor_empty(NNL_F32, x->ndim, x->shape) : NULL;
  if (out && log) nnl_log_softmax_forward(fdata(out), fdata(xc), outer, len, inner);
  else if (out) nnl_softmax_forward(fdata(out), fdata(xc), outer, len, inner);
  nnl_tensor_release(xc);
  nnl_node *n = start_node(&out, log ? "LogSoftmaxBackward" : "SoftmaxBackward", bw_softmax, &x, 1);
  if (n) {
    n->ip[0] = outer, n->ip[1] = len, n->ip[2] = inner, n->ip[3] = log;
    nnl_node_save(n, out);
    finish(n, out);
  }
  return out;
}

nnl_tensor *nnl_softmax(nnl_tensor *x, int dim) { return softmax_any(x, dim, 0); }
nnl_tensor *nnl_log_softmax(nnl_tensor *x, int dim) { return softmax_any(x, dim, 1); }

/* ---- class-index losses: cross_entropy, nll_loss ---- */

int64_t nnl_find_bad_label(const nnl_tensor *t, int64_t lo, int64_t hi, int64_t ignore,
                           int64_t *value) {
  int64_t n = nnl_tensor_numel(t), idx[NNL_MAXDIM] = {0}, off = t->offset;
  const int64_t *p = t->storage->data;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = p[off];
    if ((v < lo || v > hi) && v != ignore) {
      if (value) *value = v;
      return i;
    }
    for (int d = t->ndim - 1; d >= 0; d--) {
      off += t->stride[d];
      if (++idx[d] < t->shape[d]) break;
      off -= idx[d] * t->stride[d];
      idx[d] = 0;
    }
  }
  return -1;
}

typedef struct {
  int64_t N, C, inner;
} class_dims;

/* input (N, C, d...) or (C); labels (N, d...) or 0-d; weight (C). */
static int class_check(const char *fn, nnl_tensor *in, nnl_tensor *labels, nnl_tensor *weight,
                       int64_t ignore, class_dims *k) {
  char a[160], b[160], c[160];
  if (want_dtype(in, NNL_F32, fn, "input")) return -1;
  if (labels->dtype != NNL_I64) {
    nnl_set_error("%s: labels must be an int64 tensor of class indices, got %s", fn,
                  nnl_dtype_name(labels->dtype));
    return -1;
  }
  if (in->ndim < 1) {
    nnl_set_error("%s: input must be (N, C, ...) or (C), got a 0-d tensor", fn);
    return -1;
  }
  int64_t want[NNL_MAXDIM];
  int wd = 0;
  k->N = in->ndim == 1 ? 1 : in->shape[0];
  k->C = in->ndim == 1 ? in->shape[0] : in->shape[1];
  k->inner = 1;
  if (in->ndim > 1) want[wd++] = k->N;
  for (int d = 2; d < in->ndim; d++) want[wd++] = in->shape[d], k->inner *= in->shape[d];
  if (labels->ndim != wd || memcmp(labels->shape, want, wd * sizeof *want)) {
    nnl_set_error("%s: labels have size %s but input %s needs labels of size %s", fn,
                  nnl_shape_str(labels, a, sizeof a), nnl_shape_str(in, b, sizeof b),
                  nnl_shape_fmt(wd, want, c, sizeof c));
    return -1;
  }
  if (weight && (want_dtype(weight, NNL_F32, fn, "weight") || weight->ndim != 1 ||
                 weight->shape[0] != k->C)) {
    if (weight->dtype == NNL_F32)
      nnl_set_error("%s: weight must have size [%lld] (one per class), got %s", fn,
                    (long long)k->C, nnl_shape_str(weight, a, sizeof a));
    return -1;
  }
  int64_t v, at = nnl_find_bad_label(labels, 0, k->C - 1, ignore, &v);
  if (at >= 0) {
    nnl_set_error("%s: label %lld (element %lld) is out of range for %lld classes (expected 0 "
                  "to %lld)", fn, (long long)v, (long long)at, (long long)k->C,
                  (long long)k->C - 1);
    return -1;
  }
  return 0;
}

static nnl_tensor *loss_output(nnl_tensor *shape_of, nnl_reduction reduction) {
  int64_t none[1] = {1};
  if (reduction == NNL_REDUCTION_NONE)
    return nnl_tensor_empty(NNL_F32, shape_of->ndim, shape_of->shape);
  return nnl_tensor_empty(NNL_F32, 0, none);
}

/* ip: 0 N, 1 C, 2 inner, 3 ignore_index, 4 reduction; p[0] label smoothing;
 * saved: 0 log-probs (cross_entropy only), 1 labels, 2 weight. */
static int bw_cross_entropy(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *lp = n->saved[0];
  nnl_tensor *dz = zeros_shaped(lp->ndim, lp->shape);
  if (!dz) return -1;
  nnl_cross_entropy_backward(fdata(dz), fdata(lp), nnl_tensor_data(n->saved[1]),
                             fdata(n->saved[2]), fdata(gout[0]), n->ip[0], n->ip[1], n->ip[2],
                             n->ip[3], (float)n->p[0], reduction_of(n, 4));
  gin[0] = dz;
  return 0;
}

nnl_tensor *nnl_cross_entropy(nnl_tensor *logits, nnl_tensor *labels, nnl_tensor *weight,
                              int64_t ignore_index, double label_smoothing,
                              nnl_reduction reduction) {
  class_dims k;
  if (class_check("cross_entropy", logits, labels, weight, ignore_index, &k)) return NULL;
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
    nnl_set_error("cross_entropy: label_smoothing must be between 0 and 1, got %g",
                  label_smoothing);
    return NULL;
  }
  nnl_tensor *xc = nnl_raw_contiguous(logits), *lc = xc ? nnl_raw_contiguous(labels) : NULL;
  nnl_tensor *wc = lc && weight ? nnl_raw_contiguous(weight) : NULL;
  nnl_tensor *lp = lc && (wc || !weight) ? nnl_tensor_empty(NNL_F32, logits->ndim, logits->shape)
                                         : NULL;
  nnl_tensor *out = lp ? loss_output(labels, reduction) : NULL;
  if (out)
    nnl_cross_entropy_forward(fdata(out), fdata(lp), fdata(xc), nnl_tensor_data(lc), fdata(wc),
                              k.N, k.C, k.inner, ignore_index, (float)label_smoothing, reduction);
  nnl_node *n = start_node(&out, "CrossEntropyBackward", bw_cross_entropy, &logits, 1);
  if (n) {
    n->ip[0] = k.N, n->ip[1] = k.C, n->ip[2] = k.inner, n->ip[3] = ignore_index;
    n->ip[4] = reduction, n->p[0] = label_smoothing;
    nnl_node_save(n, lp);
    nnl_node_save(n, lc);
    nnl_node_save(n, wc);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(lc), nnl_tensor_release(wc), nnl_tensor_release(lp);
  return out;
}

/* ip as cross_entropy, plus 5..: the input's shape (ndim at 5); saved: 0 labels, 1 weight. */
static int bw_nll(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *d = zeros_shaped((int)n->ip[5], &n->ip[6]);
  if (!d) return -1;
  nnl_nll_loss_backward(fdata(d), nnl_tensor_data(n->saved[0]), fdata(n->saved[1]),
                        fdata(gout[0]), n->ip[0], n->ip[1], n->ip[2], n->ip[3],
                        reduction_of(n, 4));
  gin[0] = d;
  return 0;
}

nnl_tensor *nnl_nll_loss(nnl_tensor *logp, nnl_tensor *labels, nnl_tensor *weight,
                         int64_t ignore_index, nnl_reduction reduction) {
  class_dims k;
  if (class_check("nll_loss", logp, labels, weight, ignore_index, &k)) return NULL;
  nnl_tensor *xc = nnl_raw_contiguous(logp), *lc = xc ? nnl_raw_contiguous(labels) : NULL;
  nnl_tensor *wc = lc && weight ? nnl_raw_contiguous(weight) : NULL;
  nnl_tensor *out = lc && (wc || !weight) ? loss_output(labels, reduction) : NULL;
  if (out)
    nnl_nll_loss_forward(fdata(out), fdata(xc), nnl_tensor_data(lc), fdata(wc), k.N, k.C,
                         k.inner, ignore_index, reduction);
  nnl_node *n = start_node(&out, "NllLossBackward", bw_nll, &logp, 1);
  if (n) {
    n->ip[0] = k.N, n->ip[1] = k.C, n->ip[2] = k.inner, n->ip[3] = ignore_index;
    n->ip[4] = reduction, n->ip[5] = logp->ndim;
    memcpy(&n->ip[6], logp->shape, logp->ndim * sizeof(int64_t));
    nnl_node_save(n, lc);
    nnl_node_save(n, wc);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(lc), nnl_tensor_release(wc);
  return out;
}

/* ---- elementwise losses: mse, bce with logits ---- */

static int same_size(nnl_tensor *x, nnl_tensor *t, const char *fn) {
  char a[160], b[160];
  if (want_dtype(x, NNL_F32, fn, "input") || want_dtype(t, NNL_F32, fn, "target")) return -1;
  if (nnl_same_shape(x, t)) return 0;
  nnl_set_error("%s: input %s and target %s must have the same size", fn,
                nnl_shape_str(x, a, sizeof a), nnl_shape_str(t, b, sizeof b));
  return -1;
}

/* ip: 0 n, 1 reduction, 2 C; saved: 0 X, 1 T, 2 weight, 3 pos_weight (bce). */
static int bw_mse(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *x = n->saved[0];
  if (nnl_node_input_needs(n, 0) && !(gin[0] = zeros_shaped(x->ndim, x->shape))) return -1;
  if (nnl_node_input_needs(n, 1) && !(gin[1] = zeros_shaped(x->ndim, x->shape))) return -1;
  nnl_mse_loss_backward(fdata(gin[0]), fdata(gin[1]), fdata(x), fdata(n->saved[1]),
                        fdata(gout[0]), n->ip[0], reduction_of(n, 1));
  return 0;
}

nnl_tensor *nnl_mse_loss(nnl_tensor *x, nnl_tensor *t, nnl_reduction reduction) {
  if (same_size(x, t, "mse_loss")) return NULL;
  int64_t k = nnl_tensor_numel(x);
  nnl_tensor *xc = nnl_raw_contiguous(x), *tc = xc ? nnl_raw_contiguous(t) : NULL;
  nnl_tensor *out = tc ? loss_output(x, reduction) : NULL;
  if (out) nnl_mse_loss_forward(fdata(out), fdata(xc), fdata(tc), k, reduction);
  nnl_tensor *in[2] = {x, t};
  nnl_node *n = start_node(&out, "MseLossBackward", bw_mse, in, 2);
  if (n) {
    n->ip[0] = k, n->ip[1] = reduction;
    nnl_node_save(n, xc);
    nnl_node_save(n, tc);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(tc);
  return out;
}

static int bw_bce(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *x = n->saved[0];
  if (nnl_node_input_needs(n, 0) && !(gin[0] = zeros_shaped(x->ndim, x->shape))) return -1;
  if (nnl_node_input_needs(n, 1) && !(gin[1] = zeros_shaped(x->ndim, x->shape))) return -1;
  nnl_bce_with_logits_backward(fdata(gin[0]), fdata(gin[1]), fdata(x), fdata(n->saved[1]),
                               fdata(n->saved[2]), fdata(n->saved[3]), fdata(gout[0]),
                               n->ip[0], n->ip[2], reduction_of(n, 1));
  return 0;
}

nnl_tensor *nnl_bce_with_logits(nnl_tensor *x, nnl_tensor *t, nnl_tensor *weight,
                                nnl_tensor *pos_weight, nnl_reduction reduction) {
  static const char fn[] = "binary_cross_entropy_with_logits";
  char a[160], b[160];
  if (same_size(x, t, fn)) return NULL;
  if ((weight && want_dtype(weight, NNL_F32, fn, "weight")) ||
      (pos_weight && want_dtype(pos_weight, NNL_F32, fn, "pos_weight")))
    return NULL;
  int64_t last = x->ndim ? x->shape[x->ndim - 1] : 1, C = 1;
  if (pos_weight) {
    C = nnl_tensor_numel(pos_weight);
    if (pos_weight->ndim > 1 || (C != last && C != 1)) {
      nnl_set_error("%s: pos_weight must have size [%lld] (the input's last size) for input %s, "
                    "got %s", fn, (long long)last, nnl_shape_str(x, a, sizeof a),
                    nnl_shape_str(pos_weight, b, sizeof b));
      return NULL;
    }
  }
  int64_t k = nnl_tensor_numel(x);
  nnl_tensor *xc = nnl_raw_contiguous(x), *tc = xc ? nnl_raw_contiguous(t) : NULL;
  nnl_tensor *we = tc && weight ? nnl_raw_expand(weight, x->ndim, x->shape, fn) : NULL;
  nnl_tensor *wc = we ? nnl_raw_contiguous(we) : NULL;
  nnl_tensor *pc = tc && pos_weight ? nnl_raw_contiguous(pos_weight) : NULL;
  nnl_tensor_release(we);
  int ok = tc && (wc || !weight) && (pc || !pos_weight);
  nnl_tensor *out = ok ? loss_output(x, reduction) : NULL;
  if (out)
    nnl_bce_with_logits_forward(fdata(out), fdata(xc), fdata(tc), fdata(wc), fdata(pc), k, C,
                                reduction);
  nnl_tensor *in[2] = {x, t};
  nnl_node *n = start_node(&out, "BinaryCrossEntropyWithLogitsBackward", bw_bce, in, 2);
  if (n) {
    n->ip[0] = k, n->ip[1] = reduction, n->ip[2] = C;
    nnl_node_save(n, xc);
    nnl_node_save(n, tc);
    nnl_node_save(n, wc);
    nnl_node_save(n, pc);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(tc), nnl_tensor_release(wc), nnl_tensor_release(pc);
  return out;
}

/* ---- dropout ---- */

/* ip: 0 mask entries, 1 inner; p[0] p; saved[0] the uint8 mask. */
static int bw_dropout(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_tensor *g = gout[0], *dx = zeros_shaped(g->ndim, g->shape);
  if (!dx) return -1;
  nnl_dropout_backward(fdata(dx), nnl_tensor_data(n->saved[0]), fdata(g), n->ip[0], n->ip[1],
                       (float)n->p[0]);
  gin[0] = dx;
  return 0;
}

nnl_tensor *nnl_dropout(nnl_tensor *x, double p, int training, int feature) {
  const char *fn = feature ? "dropout2d" : "dropout";
  char a[160];
  if (!(p >= 0.0 && p <= 1.0)) {
    nnl_set_error("%s: probability must be between 0 and 1, got %g", fn, p);
    return NULL;
  }
  if (want_dtype(x, NNL_F32, fn, "input")) return NULL;
  if (feature && x->ndim < 2) {
    nnl_set_error("%s: expected an input of size (N, C, ...), got %s", fn,
                  nnl_shape_str(x, a, sizeof a));
    return NULL;
  }
  if (!training || p == 0.0) return nnl_tensor_retain(x);
  int64_t entries = nnl_tensor_numel(x), inner = 1;
  if (feature) {
    entries = x->shape[0] * x->shape[1];
    for (int d = 2; d < x->ndim; d++) inner *= x->shape[d];
  }
  nnl_tensor *xc = nnl_raw_contiguous(x);
  nnl_tensor *mask = xc ? nnl_tensor_empty(NNL_U8, 1, &entries) : NULL;
  nnl_tensor *out = mask ? nnl_tensor_empty(NNL_F32, x->ndim, x->shape) : NULL;
  if (out) {
    uint64_t seed, counter = nnl_rng_reserve((uint64_t)entries, &seed);
    nnl_dropout_forward(fdata(out), nnl_tensor_data(mask), fdata(xc), entries, inner, (float)p,
                        seed, counter);
  }
  nnl_node *n = start_node(&out, feature ? "FeatureDropoutBackward" : "DropoutBackward",
                           bw_dropout, &x, 1);
  if (n) {
    n->ip[0] = entries, n->ip[1] = inner, n->p[0] = p;
    nnl_node_save(n, mask);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(mask);
  return out;
}

/* ---- embedding ---- */

/* ip: 0 N, 1 V, 2 D, 3 padding_idx; saved[0] the indices (contiguous). Input 1 is the weight. */
static int bw_embedding(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int64_t N = n->ip[0], V = n->ip[1], D = n->ip[2], shape[2] = {V, D};
  nnl_tensor *dw = zeros_shaped(2, shape);
  if (!dw) return -1;
  nnl_embedding_backward(fdata(dw), nnl_tensor_data(n->saved[0]), fdata(gout[0]), N, V, D,
                         n->ip[3]);
  gin[1] = dw;
  return 0;
}

nnl_tensor *nnl_embedding(nnl_tensor *idx, nnl_tensor *w, int64_t padding_idx) {
  char a[160];
  if (idx->dtype != NNL_I64) {
    nnl_set_error("embedding: indices must be an int64 tensor, got %s", nnl_dtype_name(idx->dtype));
    return NULL;
  }
  if (want_dtype(w, NNL_F32, "embedding", "weight")) return NULL;
  if (w->ndim != 2) {
    nnl_set_error("embedding: weight must be 2-D [num_embeddings, embedding_dim], got %s",
                  nnl_shape_str(w, a, sizeof a));
    return NULL;
  }
  int64_t V = w->shape[0], D = w->shape[1];
  if (idx->ndim >= NNL_MAXDIM) {
    nnl_set_error("embedding: indices have %d dimensions, at most %d allowed", idx->ndim,
                  NNL_MAXDIM - 1);
    return NULL;
  }
  if (padding_idx < -1 || padding_idx >= V) {
    nnl_set_error("embedding: padding_idx %lld is out of range for %lld embeddings",
                  (long long)padding_idx, (long long)V);
    return NULL;
  }
  int64_t v, at = nnl_find_bad_label(idx, 0, V - 1, NNL_NO_IGNORE, &v);
  if (at >= 0) {
    nnl_set_error("embedding: index %lld (element %lld) is out of range for %lld embeddings "
                  "(expected 0 to %lld)", (long long)v, (long long)at, (long long)V,
                  (long long)V - 1);
    return NULL;
  }
  int64_t shape[NNL_MAXDIM], N = nnl_tensor_numel(idx);
  memcpy(shape, idx->shape, idx->ndim * sizeof *shape);
  shape[idx->ndim] = D;
  nnl_tensor *ic = nnl_raw_contiguous(idx), *wc = ic ? nnl_raw_contiguous(w) : NULL;
  nnl_tensor *out = wc ? nnl_tensor_empty(NNL_F32, idx->ndim + 1, shape) : NULL;
  if (out) nnl_embedding_forward(fdata(out), nnl_tensor_data(ic), fdata(wc), N, D);
  nnl_tensor *in[2] = {NULL, w};
  nnl_node *n = start_node(&out, "EmbeddingBackward", bw_embedding, in, 2);
  if (n) {
    n->ip[0] = N, n->ip[1] = V, n->ip[2] = D, n->ip[3] = padding_idx;
    nnl_node_save(n, ic);
    finish(n, out);
  }
  nnl_tensor_release(ic), nnl_tensor_release(wc);
  return out;
}

/* ---- flatten ---- */

nnl_tensor *nnl_flatten(nnl_tensor *x, int start_dim, int end_dim) {
  int64_t shape[NNL_MAXDIM];
  if (x->ndim == 0) {
    shape[0] = 1;
    return nnl_reshape(x, 1, shape);
  }
  if (start_dim < 0 || start_dim >= x->ndim || end_dim < 0 || end_dim >= x->ndim) {
    nnl_set_error("flatten: dimension %d out of range for a %d-d input (expected 1 to %d)",
                  (start_dim < 0 || start_dim >= x->ndim ? start_dim : end_dim) + 1, x->ndim,
                  x->ndim);
    return NULL;
  }
  if (end_dim < start_dim) {
    nnl_set_error("flatten: end_dim %d comes before start_dim %d", end_dim + 1, start_dim + 1);
    return NULL;
  }
  int nd = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (d <= start_dim || d > end_dim) shape[nd++] = x->shape[d];
    else shape[nd - 1] *= x->shape[d];
  }
  return nnl_reshape(x, nd, shape);
}
