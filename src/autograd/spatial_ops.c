/* spatial_ops.c — the spatial layers as single autograd nodes over the kernels of spatial.h:
 * conv2d, max/avg/adaptive-avg pooling, batch norm. The kernels trust their sizes: checks are here. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/spatial.h"
#include "autograd.h"
#include "layers.h"

/* ---- helpers ---- */

static float *fdata(const nnl_tensor *t) { return t ? nnl_tensor_data(t) : NULL; }

static int want_float(const nnl_tensor *t, const char *fn, const char *what) {
  if (t->dtype == NNL_F32) return 0;
  nnl_set_error("%s: %s must be a float32 tensor, got %s", fn, what, nnl_dtype_name(t->dtype));
  return -1;
}

static nnl_tensor *zeros_shaped(int ndim, const int64_t *shape) {
  return nnl_tensor_zeros(NNL_F32, ndim, shape);
}

/* A node on out with the given inputs, or NULL (out released when the node cannot be made). */
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

/* A float scratch buffer of n floats as a tensor (NULL for n == 0 or on failure: *fail says). */
static nnl_tensor *scratch(size_t n, int *fail) {
  int64_t len = (int64_t)n;
  nnl_tensor *t = n ? nnl_tensor_empty(NNL_F32, 1, &len) : NULL;
  *fail = n && !t;
  return t;
}

/* An image batch: (N, C, H, W), or (C, H, W) taken as N = 1 (batched = 0). */
typedef struct {
  int N, C, H, W, batched;
} batch;

static int get_batch(const nnl_tensor *x, const char *fn, batch *b) {
  char xs[160];
  if (want_float(x, fn, "input")) return -1;
  if (x->ndim != 3 && x->ndim != 4) {
    nnl_set_error("%s: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got %s", fn,
                  nnl_shape_str(x, xs, sizeof xs));
    return -1;
  }
  const int64_t *s = x->shape + (x->ndim - 3);
  int64_t n = x->ndim == 4 ? x->shape[0] : 1;
  if (s[0] < 1 || s[1] < 1 || s[2] < 1) {
    nnl_set_error("%s: input %s has an empty channel or spatial dimension", fn,
                  nnl_shape_str(x, xs, sizeof xs));
    return -1;
  }
  if (n > INT_MAX || s[0] > INT_MAX || s[1] > INT_MAX || s[2] > INT_MAX) {
    nnl_set_error("%s: input %s is too large (each size must fit in an int)", fn,
                  nnl_shape_str(x, xs, sizeof xs));
    return -1;
  }
  b->N = (int)n, b->C = (int)s[0], b->H = (int)s[1], b->W = (int)s[2];
  b->batched = x->ndim == 4;
  return 0;
}

/* (N, C, OH, OW), without N for an unbatched input; returns the ndim. */
static int out_shape(const batch *b, int C, int OH, int OW, int64_t *shape) {
  int k = 0;
  if (b->batched) shape[k++] = b->N;
  shape[k++] = C, shape[k++] = OH, shape[k++] = OW;
  return k;
}

/* Window sizes: each >= lo. name: "stride", "padding", ... */
static int check_pair(const char *fn, const char *name, const int v[2], int lo) {
  if (v[0] >= lo && v[1] >= lo) return 0;
  nnl_set_error("%s: %s must be at least %d, got %dx%d", fn, name, lo, v[0], v[1]);
  return -1;
}

/* The output sizes of a sliding window, or an error when the (dilated) kernel does not fit the
 * padded input. */
static int window_out(const char *fn, const nnl_tensor *x, const batch *b, const int k[2],
                      const int s[2], const int p[2], const int d[2], int *OH, int *OW) {
  long eh = (long)d[0] * (k[0] - 1) + 1, ew = (long)d[1] * (k[1] - 1) + 1;
  long ph = b->H + 2L * p[0], pw = b->W + 2L * p[1];
  /* the kernels index in int: padded extents and strides up to 2^30 keep every offset in range */
  if (ph > INT_MAX / 2 || pw > INT_MAX / 2 || s[0] > INT_MAX / 2 || s[1] > INT_MAX / 2) {
    nnl_set_error("%s: stride %dx%d or padding %dx%d is too large (padded input %ldx%ld; each "
                  "must be at most %d)", fn, s[0], s[1], p[0], p[1], ph, pw, INT_MAX / 2);
    return -1;
  }
  if (eh > ph || ew > pw) {
    char xs[160], span[128] = "";
    if (d[0] != 1 || d[1] != 1)
      snprintf(span, sizeof span, " with dilation %dx%d (spanning %ldx%ld)", d[0], d[1], eh, ew);
    nnl_set_error("%s: kernel %dx%d%s is larger than the padded input %ldx%ld (input %s, "
                  "padding %dx%d)", fn, k[0], k[1], span, ph, pw,
                  nnl_shape_str(x, xs, sizeof xs), p[0], p[1]);
    return -1;
  }
  *OH = nnl_conv_out_size(b->H, k[0], s[0], p[0], d[0]);
  *OW = nnl_conv_out_size(b->W, k[1], s[1], p[1], d[1]);
  return 0;
}

/* Store and load the input shape in ip[0..4] (ndim, then up to 4 sizes). */
static void save_shape(nnl_node *n, const nnl_tensor *x) {
  n->ip[0] = x->ndim;
  memcpy(&n->ip[1], x->shape, x->ndim * sizeof(int64_t));
}

static nnl_tensor *zeros_input(const nnl_node *n) { return zeros_shaped((int)n->ip[0], &n->ip[1]); }

/* ---- conv2d ---- */

/* ip: 0..4 x's shape, 10..23 the dims; saved: 0 X (when dW is needed), 1 W (when dX is). */
static void conv_dims_store(nnl_node *n, const nnl_conv2d_dims *d) {
  const int v[14] = {d->N, d->C, d->H, d->W, d->F, d->KH, d->KW, d->stride_h, d->stride_w,
                     d->pad_h, d->pad_w, d->dil_h, d->dil_w, d->groups};
  for (int i = 0; i < 14; i++) n->ip[10 + i] = v[i];
}

static nnl_conv2d_dims conv_dims_load(const nnl_node *n) {
  const int64_t *v = &n->ip[10];
  nnl_conv2d_dims d = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5],
                       (int)v[6], (int)v[7], (int)v[8], (int)v[9], (int)v[10], (int)v[11],
                       (int)v[12], (int)v[13]};
  return d;
}

/* dX = sum_f K *full dY, dK = X *filt dY, db = sum dY: the kernel does each only when asked. */
static int bw_conv2d(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_conv2d_dims d = conv_dims_load(n);
  int need_x = nnl_node_input_needs(n, 0), need_w = nnl_node_input_needs(n, 1);
  int64_t F = d.F, wshape[4] = {d.F, d.C / d.groups, d.KH, d.KW};
  if (need_x && !(gin[0] = zeros_input(n))) return -1;
  if (need_w && !(gin[1] = zeros_shaped(4, wshape))) return -1;
  if (nnl_node_input_needs(n, 2) && !(gin[2] = zeros_shaped(1, &F))) return -1;
  if (d.N == 0) return 0;
  int fail;
  size_t wn = need_x || need_w ? nnl_conv2d_workspace_size(&d, need_w, 0) : 0;
  nnl_tensor *ws = scratch(wn, &fail);
  if (fail) return -1;
  int rc = nnl_conv2d_backward(fdata(gin[0]), fdata(gin[1]), fdata(gin[2]), fdata(gout[0]),
                               fdata(n->saved[0]), fdata(n->saved[1]), &d, fdata(ws), wn);
  nnl_tensor_release(ws);
  if (rc) nnl_set_error("conv2d: backward ran out of memory for its workspace");
  return rc;
}

static int conv_check(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b, const int stride[2],
                      const int padding[2], const int dilation[2], int groups,
                      nnl_conv2d_dims *d, batch *bt, int *OH, int *OW) {
  static const char fn[] = "conv2d";
  char xs[160], ws[160], bs[160];
  if (get_batch(x, fn, bt) || want_float(w, fn, "weight") || (b && want_float(b, fn, "bias")))
    return -1;
  if (w->ndim != 4) {
    nnl_set_error("conv2d: weight must be 4-D [out_channels, in_channels/groups, kh, kw], got %s",
                  nnl_shape_str(w, ws, sizeof ws));
    return -1;
  }
  if (check_pair(fn, "stride", stride, 1) || check_pair(fn, "padding", padding, 0) ||
      check_pair(fn, "dilation", dilation, 1))
    return -1;
  int64_t F = w->shape[0], Cg = w->shape[1], KH = w->shape[2], KW = w->shape[3];
  if (F < 1 || Cg < 1 || KH < 1 || KW < 1 || F > INT_MAX || KH > INT_MAX || KW > INT_MAX) {
    nnl_set_error("conv2d: weight %s must have non-empty sizes that fit in an int",
                  nnl_shape_str(w, ws, sizeof ws));
    return -1;
  }
  if (groups < 1) {
    nnl_set_error("conv2d: groups must be at least 1, got %d", groups);
    return -1;
  }
  if (bt->C % groups || F % groups) {
    nnl_set_error("conv2d: groups (%d) must divide both the input channels (%d, input %s) and "
                  "the output channels (%lld, weight %s)", groups, bt->C,
                  nnl_shape_str(x, xs, sizeof xs), (long long)F, nnl_shape_str(w, ws, sizeof ws));
    return -1;
  }
  if (Cg * groups != bt->C) {
    nnl_set_error("conv2d: input has %d channels but weight expects %lld (weight %s, groups %d, "
                  "input %s)", bt->C, (long long)(Cg * groups), nnl_shape_str(w, ws, sizeof ws),
                  groups, nnl_shape_str(x, xs, sizeof xs));
    return -1;
  }
  if (b && (b->ndim != 1 || b->shape[0] != F)) {
    nnl_set_error("conv2d: bias has size %s but weight %s needs [%lld]",
                  nnl_shape_str(b, bs, sizeof bs), nnl_shape_str(w, ws, sizeof ws),
                  (long long)F);
    return -1;
  }
  int k[2] = {(int)KH, (int)KW};
  if (window_out(fn, x, bt, k, stride, padding, dilation, OH, OW)) return -1;
  nnl_conv2d_dims t = {bt->N, bt->C, bt->H, bt->W, (int)F, k[0], k[1], stride[0], stride[1],
                       padding[0], padding[1], dilation[0], dilation[1], groups};
  *d = t;
  return 0;
}

nnl_tensor *nnl_conv2d(nnl_tensor *x, nnl_tensor *w, nnl_tensor *b, const int stride[2],
                       const int padding[2], const int dilation[2], int groups) {
  nnl_conv2d_dims d;
  batch bt;
  int OH, OW, fail = 0;
  if (conv_check(x, w, b, stride, padding, dilation, groups, &d, &bt, &OH, &OW)) return NULL;
  int64_t shape[4];
  int nd = out_shape(&bt, d.F, OH, OW, shape);
  nnl_tensor *xc = nnl_raw_contiguous(x), *wc = xc ? nnl_raw_contiguous(w) : NULL;
  nnl_tensor *bc = wc && b ? nnl_raw_contiguous(b) : NULL;
  nnl_tensor *out = wc && (bc || !b) ? nnl_tensor_empty(NNL_F32, nd, shape) : NULL;
  if (out && d.N > 0) {
    size_t wn = nnl_conv2d_workspace_size(&d, 0, 0);
    nnl_tensor *ws = scratch(wn, &fail);
    if (!fail && nnl_conv2d_forward(fdata(out), fdata(xc), fdata(wc), fdata(bc), &d, fdata(ws),
                                    wn)) {
      nnl_set_error("conv2d: out of memory for the workspace");
      fail = 1;
    }
    nnl_tensor_release(ws);
  }
  if (fail) {
    nnl_tensor_release(out);
    out = NULL;
  }
  nnl_tensor *in[3] = {x, w, b};
  nnl_node *n = start_node(&out, "ConvolutionBackward", bw_conv2d, in, 3);
  if (n) {
    save_shape(n, x);
    conv_dims_store(n, &d);
    nnl_node_save(n, nnl_node_input_needs(n, 1) ? xc : NULL);
    nnl_node_save(n, nnl_node_input_needs(n, 0) ? wc : NULL);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(wc), nnl_tensor_release(bc);
  return out;
}

/* ---- pooling ---- */

static void pool_dims_store(nnl_node *n, const nnl_pool2d_dims *d) {
  const int v[12] = {d->N, d->C, d->H, d->W, d->KH, d->KW, d->stride_h, d->stride_w,
                     d->pad_h, d->pad_w, d->dil_h, d->dil_w};
  for (int i = 0; i < 12; i++) n->ip[10 + i] = v[i];
}

static nnl_pool2d_dims pool_dims_load(const nnl_node *n) {
  const int64_t *v = &n->ip[10];
  nnl_pool2d_dims d = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5],
                       (int)v[6], (int)v[7], (int)v[8], (int)v[9], (int)v[10], (int)v[11]};
  return d;
}

/* Checks shared by max and avg pooling; fills d and the output shape (returns its ndim). */
static int pool_check(const char *fn, const nnl_tensor *x, const int kernel[2],
                      const int stride[2], const int padding[2], const int dilation[2],
                      nnl_pool2d_dims *d, int64_t *shape) {
  batch bt;
  int OH, OW;
  if (get_batch(x, fn, &bt)) return -1;
  if (check_pair(fn, "kernel size", kernel, 1) || check_pair(fn, "stride", stride, 1) ||
      check_pair(fn, "padding", padding, 0) || check_pair(fn, "dilation", dilation, 1))
    return -1;
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
    nnl_set_error("%s: padding %dx%d should be at most half the kernel size %dx%d", fn,
                  padding[0], padding[1], kernel[0], kernel[1]);
    return -1;
  }
  if (window_out(fn, x, &bt, kernel, stride, padding, dilation, &OH, &OW)) return -1;
  nnl_pool2d_dims t = {bt.N, bt.C, bt.H, bt.W, kernel[0], kernel[1], stride[0], stride[1],
                       padding[0], padding[1], dilation[0], dilation[1]};
  *d = t;
  return out_shape(&bt, bt.C, OH, OW, shape);
}

/* saved[0]: the argmax indices. */
static int bw_max_pool2d(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_pool2d_dims d = pool_dims_load(n);
  if (!(gin[0] = nnl_tensor_empty(NNL_F32, (int)n->ip[0], &n->ip[1]))) return -1;
  nnl_max_pool2d_backward_into(fdata(gin[0]), fdata(gout[0]), nnl_tensor_data(n->saved[0]), &d);
  return 0;
}

nnl_tensor *nnl_max_pool2d(nnl_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2], const int dilation[2], nnl_tensor **indices) {
  nnl_pool2d_dims d;
  int64_t shape[4];
  if (indices) *indices = NULL;
  int nd = pool_check("max_pool2d", x, kernel, stride, padding, dilation, &d, shape);
  if (nd < 0) return NULL;
  int record = nnl_ag_needed(&x, 1);
  nnl_tensor *xc = nnl_raw_contiguous(x), *ind = NULL;
  if (xc && (record || indices)) ind = nnl_tensor_empty(NNL_I64, nd, shape);
  nnl_tensor *out = xc && (ind || !(record || indices)) ? nnl_tensor_empty(NNL_F32, nd, shape)
                                                        : NULL;
  if (out) nnl_max_pool2d_forward(fdata(out), ind ? nnl_tensor_data(ind) : NULL, fdata(xc), &d);
  nnl_node *n = start_node(&out, "MaxPool2DWithIndicesBackward", bw_max_pool2d, &x, 1);
  if (n) {
    save_shape(n, x);
    pool_dims_store(n, &d);
    nnl_node_save(n, ind);
    finish(n, out);
  }
  if (indices && out) *indices = nnl_tensor_retain(ind);
  nnl_tensor_release(xc), nnl_tensor_release(ind);
  return out;
}

/* ip[22] count_include_pad, ip[23] divisor_override. */
static int bw_avg_pool2d(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  nnl_pool2d_dims d = pool_dims_load(n);
  if (!(gin[0] = zeros_input(n))) return -1;
  nnl_avg_pool2d_backward(fdata(gin[0]), fdata(gout[0]), &d, (int)n->ip[22], (int)n->ip[23]);
  return 0;
}

nnl_tensor *nnl_avg_pool2d(nnl_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2], int count_include_pad, int divisor_override) {
  static const int one[2] = {1, 1};
  nnl_pool2d_dims d;
  int64_t shape[4];
  int nd = pool_check("avg_pool2d", x, kernel, stride, padding, one, &d, shape);
  if (nd < 0) return NULL;
  if (divisor_override < 0) {
    nnl_set_error("avg_pool2d: divisor_override must be positive, got %d", divisor_override);
    return NULL;
  }
  nnl_tensor *xc = nnl_raw_contiguous(x);
  nnl_tensor *out = xc ? nnl_tensor_empty(NNL_F32, nd, shape) : NULL;
  if (out) nnl_avg_pool2d_forward(fdata(out), fdata(xc), &d, count_include_pad != 0,
                                  divisor_override);
  nnl_tensor_release(xc);
  nnl_node *n = start_node(&out, "AvgPool2DBackward", bw_avg_pool2d, &x, 1);
  if (n) {
    save_shape(n, x);
    pool_dims_store(n, &d);
    n->ip[22] = count_include_pad != 0, n->ip[23] = divisor_override;
    finish(n, out);
  }
  return out;
}

/* ip[10..15]: N, C, H, W, OH, OW. */
static int bw_adaptive_avg_pool2d(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  const int64_t *v = &n->ip[10];
  if (!(gin[0] = zeros_input(n))) return -1;
  nnl_adaptive_avg_pool2d_backward(fdata(gin[0]), fdata(gout[0]), (int)v[0], (int)v[1],
                                   (int)v[2], (int)v[3], (int)v[4], (int)v[5]);
  return 0;
}

nnl_tensor *nnl_adaptive_avg_pool2d(nnl_tensor *x, int OH, int OW) {
  batch bt;
  if (get_batch(x, "adaptive_avg_pool2d", &bt)) return NULL;
  if (OH < 1 || OW < 1) {
    nnl_set_error("adaptive_avg_pool2d: output size must be at least 1x1, got %dx%d", OH, OW);
    return NULL;
  }
  int64_t shape[4];
  int nd = out_shape(&bt, bt.C, OH, OW, shape);
  nnl_tensor *xc = nnl_raw_contiguous(x);
  nnl_tensor *out = xc ? nnl_tensor_empty(NNL_F32, nd, shape) : NULL;
  if (out) nnl_adaptive_avg_pool2d_forward(fdata(out), fdata(xc), bt.N, bt.C, bt.H, bt.W, OH, OW);
  nnl_tensor_release(xc);
  nnl_node *n = start_node(&out, "AdaptiveAvgPool2DBackward", bw_adaptive_avg_pool2d, &x, 1);
  if (n) {
    save_shape(n, x);
    const int v[6] = {bt.N, bt.C, bt.H, bt.W, OH, OW};
    for (int i = 0; i < 6; i++) n->ip[10 + i] = v[i];
    finish(n, out);
  }
  return out;
}

/* ---- batch norm ---- */

/* A per-channel vector argument: NULL, or float32 with C elements in one dim. */
static int check_channel_vec(const nnl_tensor *t, const char *what, int64_t C,
                             const nnl_tensor *x) {
  char ts[160], xs[160];
  if (!t) return 0;
  if (want_float(t, "batch_norm", what)) return -1;
  if (t->ndim == 1 && t->shape[0] == C) return 0;
  nnl_set_error("batch_norm: %s has size %s but input %s has %lld channels (expected [%lld])",
                what, nnl_shape_str(t, ts, sizeof ts), nnl_shape_str(x, xs, sizeof xs),
                (long long)C, (long long)C);
  return -1;
}

/* ip: 0..8 x's shape, 10 N, 11 C, 12 inner, 13 training; p[0] eps;
 * saved: 0 X, 1 batch mean | running mean, 2 batch invstd | running var, 3 weight. */
/* g is a float32 tensor over all of its storage that nothing else references: a gradient the
 * engine handed over, which a backward may overwrite and return. */
static int owned(const nnl_tensor *g) {
  return g->dtype == NNL_F32 && nnl_tensor_is_contiguous(g) && g->refcount == 1 &&
         g->storage->refcount == 1 && g->offset == 0 &&
         g->storage->nbytes == (size_t)nnl_tensor_numel(g) * sizeof(float);
}

/* dx is stored, not accumulated: into dy's own buffer when the engine handed it over (no fresh
 * 6 MB tensor to fault in), else into an uninitialised one. */
static int bw_batch_norm(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int N = (int)n->ip[10], C = (int)n->ip[11], inner = (int)n->ip[12];
  int64_t C64 = C;
  nnl_tensor *g = gout[0];
  if (nnl_node_input_needs(n, 0)) {
    gin[0] = owned(g) ? nnl_tensor_retain(g) : nnl_tensor_empty(NNL_F32, (int)n->ip[0], &n->ip[1]);
    if (!gin[0]) return -1;
  }
  if (nnl_node_input_needs(n, 1) && !(gin[1] = zeros_shaped(1, &C64))) return -1;
  if (nnl_node_input_needs(n, 2) && !(gin[2] = zeros_shaped(1, &C64))) return -1;
  if ((int64_t)N * inner == 0) return 0;
  const float *x = fdata(n->saved[0]), *s1 = fdata(n->saved[1]), *s2 = fdata(n->saved[2]);
  const float *w = fdata(n->saved[3]);
  if (n->ip[13])
    nnl_batchnorm_backward_train_into(fdata(gin[0]), fdata(gin[1]), fdata(gin[2]), fdata(g), x,
                                      s1, s2, w, N, C, inner);
  else
    nnl_batchnorm_backward_eval_into(fdata(gin[0]), fdata(gin[1]), fdata(gin[2]), fdata(g), x,
                                     s1, s2, w, N, C, inner, n->p[0]);
  return 0;
}

/* Update a running statistic that may be a strided view: through a contiguous copy. */
static int copy_back(nnl_tensor *dst, nnl_tensor *tmp) {
  return dst == tmp ? 0 : nnl_copy_(dst, tmp);
}

nnl_tensor *nnl_batch_norm(nnl_tensor *x, nnl_tensor *running_mean, nnl_tensor *running_var,
                           nnl_tensor *weight, nnl_tensor *bias, int training, double momentum,
                           double eps) {
  char xs[160];
  if (want_float(x, "batch_norm", "input")) return NULL;
  if (x->ndim < 2) {
    nnl_set_error("batch_norm: input must be (N, C, ...) with at least 2 dimensions, got %s",
                  nnl_shape_str(x, xs, sizeof xs));
    return NULL;
  }
  int64_t N = x->shape[0], C = x->shape[1], inner = 1;
  for (int d = 2; d < x->ndim; d++) inner *= x->shape[d];
  if (check_channel_vec(running_mean, "running_mean", C, x) ||
      check_channel_vec(running_var, "running_var", C, x) ||
      check_channel_vec(weight, "weight", C, x) || check_channel_vec(bias, "bias", C, x))
    return NULL;
  if (!running_mean != !running_var) {
    nnl_set_error("batch_norm: running_mean and running_var must be given together (got only %s)",
                  running_mean ? "running_mean" : "running_var");
    return NULL;
  }
  if (!training && !running_mean) {
    nnl_set_error("batch_norm: running_mean and running_var are needed when not training");
    return NULL;
  }
  if (!(eps >= 0.0) || !isfinite(momentum)) {
    nnl_set_error("batch_norm: eps must be >= 0 and momentum finite, got eps %g, momentum %g", eps,
                  momentum);
    return NULL;
  }
  if (training && N * inner <= 1) {
    nnl_set_error("batch_norm: Expected more than 1 value per channel when training, got input "
                  "size %s", nnl_shape_str(x, xs, sizeof xs));
    return NULL;
  }
  if (N > INT_MAX || C > INT_MAX || inner > INT_MAX || C < 1) {
    nnl_set_error("batch_norm: input %s must have channels, and sizes that fit in an int",
                  nnl_shape_str(x, xs, sizeof xs));
    return NULL;
  }
  nnl_tensor *in[3] = {x, weight, bias};
  int copy_stats = !training && nnl_ag_needed(in, 3);
  nnl_tensor *xc = nnl_raw_contiguous(x), *wc = NULL, *bc = NULL, *rm = NULL, *rv = NULL;
  nnl_tensor *mean = NULL, *invstd = NULL, *out = NULL;
  int ok = xc && (!weight || (wc = nnl_raw_contiguous(weight))) &&
           (!bias || (bc = nnl_raw_contiguous(bias)));
  /* A recorded evaluation saves copies of the running statistics: a later training step updates
   * them in place, and the backward must see the values the forward used. */
  if (ok && running_mean) {
    rm = copy_stats ? nnl_raw_clone(running_mean) : nnl_raw_contiguous(running_mean);
    rv = !rm ? NULL : copy_stats ? nnl_raw_clone(running_var) : nnl_raw_contiguous(running_var);
    ok = rv != NULL;
  }
  if (ok && training) {
    ok = (mean = nnl_tensor_empty(NNL_F32, 1, &C)) && (invstd = nnl_tensor_empty(NNL_F32, 1, &C));
  }
  if (ok) out = nnl_tensor_empty(NNL_F32, x->ndim, x->shape);
  if (out && N * inner > 0) {
    if (training) {
      nnl_batchnorm_forward_train(fdata(out), fdata(mean), fdata(invstd), fdata(rm), fdata(rv),
                                  fdata(xc), fdata(wc), fdata(bc), (int)N, (int)C, (int)inner,
                                  momentum, eps);
      if (rm && (copy_back(running_mean, rm) || copy_back(running_var, rv))) {
        nnl_tensor_release(out);
        out = NULL;
      }
    } else {
      nnl_batchnorm_forward_eval(fdata(out), fdata(xc), fdata(rm), fdata(rv), fdata(wc),
                                 fdata(bc), (int)N, (int)C, (int)inner, eps);
    }
  }
  nnl_node *n = start_node(&out, "NativeBatchNormBackward", bw_batch_norm, in, 3);
  if (n) {
    n->ip[0] = x->ndim;
    memcpy(&n->ip[1], x->shape, x->ndim * sizeof(int64_t));
    n->ip[10] = N, n->ip[11] = C, n->ip[12] = inner, n->ip[13] = training != 0;
    n->p[0] = eps;
    nnl_node_save(n, xc);
    nnl_node_save(n, training ? mean : rm);
    nnl_node_save(n, training ? invstd : rv);
    nnl_node_save(n, wc);
    finish(n, out);
  }
  nnl_tensor_release(xc), nnl_tensor_release(wc), nnl_tensor_release(bc);
  nnl_tensor_release(rm), nnl_tensor_release(rv);
  nnl_tensor_release(mean), nnl_tensor_release(invstd);
  return out;
}
