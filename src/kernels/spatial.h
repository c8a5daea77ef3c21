/* spatial.h — kernels of the spatial layers: conv2d, max/avg/adaptive pooling, batch norm.
 * Contiguous float32 buffers, NCHW; forward above backward; backward accumulates (+=), caller zeroes. */
#ifndef NNL_SPATIAL_H
#define NNL_SPATIAL_H

#include <stddef.h>
#include <stdint.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

/* Length of one output axis of a convolution or pooling (PyTorch, ceil_mode false):
 * floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1, or 0 when the window does not fit. */
int nnl_conv_out_size(int in, int k, int stride, int pad, int dil);

/* ---- conv2d (conv.c; conv_ref.c holds the plain-loop reference for tests) ----
 * x: (N, C, H, W), weight: (F, C/groups, KH, KW), bias: (F) or NULL,
 * y: (N, F, OH, OW) with OH = nnl_conv_out_size(H, KH, stride_h, pad_h, dil_h), same for OW.
 * The kernels trust the dims: C and F divisible by groups, every field >= 1 (pads >= 0), OH, OW >= 1.
 *
 * Workspace: ws points to ws_floats floats of scratch (any contents) that the call may overwrite.
 * nnl_conv2d_workspace_size() gives the size that lets the call use every OpenMP thread; a smaller
 * ws only lowers the parallelism, down to the one-thread minimum (workspace_size with nthreads 1).
 * ws == NULL: the kernel mallocs what it needs (outside any parallel region) and frees it.
 * Returns 0, or -1 when ws is below the minimum or malloc failed (nothing was written then). */
typedef struct nnl_conv2d_dims {
  int N, C, H, W;       /* input */
  int F, KH, KW;        /* filters */
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
} nnl_conv2d_dims;

/* Floats of workspace for forward (backward = 0) or backward (1) with nthreads threads
 * (nthreads <= 0: omp_get_max_threads()). May be 0 (1x1 forward needs none). */
size_t nnl_conv2d_workspace_size(const nnl_conv2d_dims *d, int backward, int nthreads);

int nnl_conv2d_forward(float *y,            /* y: (N, F, OH, OW) */
                       const float *x,      /* x: (N, C, H, W) */
                       const float *weight, /* weight: (F, C/groups, KH, KW) */
                       const float *bias,   /* bias: (F) or NULL */
                       const nnl_conv2d_dims *d, float *ws, size_t ws_floats);
/* Any of dx, dweight, dbias may be NULL to skip its work (x is only read for dweight,
 * weight only for dx). */
int nnl_conv2d_backward(float *dx,           /* dx: (N, C, H, W) or NULL */
                        float *dweight,      /* dweight: (F, C/groups, KH, KW) or NULL */
                        float *dbias,        /* dbias: (F) or NULL */
                        const float *dy,     /* dy: (N, F, OH, OW) */
                        const float *x,      /* x: (N, C, H, W) */
                        const float *weight, /* weight: (F, C/groups, KH, KW) */
                        const nnl_conv2d_dims *d, float *ws, size_t ws_floats);

/* Reference in plain loops with double sums (tests only): the forward as a direct sum,
 * dX[n,c] = sum_f K[f,c] *full dY[n,f] and dK[f,c] = sum_n X[n,c] *filt dY[n,f],
 * generalised to stride, padding, dilation and groups. Backward accumulates; NULLs skip. */
void nnl_conv2d_forward_ref(float *y, const float *x, const float *weight, const float *bias,
                            const nnl_conv2d_dims *d);
void nnl_conv2d_backward_ref(float *dx, float *dweight, float *dbias, const float *dy,
                             const float *x, const float *weight, const nnl_conv2d_dims *d);

/* ---- conv2d by Winograd F(2x2, 3x3) (winograd.c) ----
 * For 3x3 kernels, stride 1, dilation 1, groups 1, the same padding (0, 1 or 2) on both axes:
 * nnl_conv2d_winograd_fits() says whether d is such a conv. nnl_conv2d_forward and
 * nnl_conv2d_backward call these themselves where they measured faster; the calls here always
 * take the Winograd path (tests, benchmarks). Same ws contract as above: ws NULL allocates; a ws
 * below the one-thread minimum, or a failed malloc, returns -1 with nothing written. */
int nnl_conv2d_winograd_fits(const nnl_conv2d_dims *d);
/* Whether nnl_conv2d_forward / _backward (its dx) go through here: fits, and a shape where it
 * measured faster than im2col; never with the environment variable NNL_CONV_WINOGRAD=0. */
int nnl_conv2d_winograd_wanted(const nnl_conv2d_dims *d);
/* Floats of workspace for the forward (backward 0) or the data gradient (1), nthreads as above. */
size_t nnl_conv2d_winograd_workspace_size(const nnl_conv2d_dims *d, int backward, int nthreads);
int nnl_conv2d_winograd_forward(float *y,            /* y: (N, F, OH, OW), overwritten */
                                const float *x,      /* x: (N, C, H, W) */
                                const float *weight, /* weight: (F, C, 3, 3) */
                                const float *bias,   /* bias: (F) or NULL */
                                const nnl_conv2d_dims *d, float *ws, size_t ws_floats);
/* dx += the data gradient: dy correlated with the 180-degree-rotated filters, padding 2 - pad. */
int nnl_conv2d_winograd_backward(float *dx,           /* dx: (N, C, H, W), accumulated */
                                 const float *dy,     /* dy: (N, F, OH, OW) */
                                 const float *weight, /* weight: (F, C, 3, 3) */
                                 const nnl_conv2d_dims *d, float *ws, size_t ws_floats);

/* ---- pooling (pool.c) ----
 * x: (N, C, H, W) -> y: (N, C, OH, OW), OH = nnl_conv_out_size(H, KH, stride_h, pad_h, dil_h).
 * The caller checks PyTorch's rule pad <= kernel/2 (so every window holds an input element). */
typedef struct nnl_pool2d_dims {
  int N, C, H, W;
  int KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w; /* avg pooling: dil must be 1 */
} nnl_pool2d_dims;

/* Padding counts as -inf; NaN wins (as in PyTorch); ties keep the first in row-major order.
 * indices: flat h*W+w of each maximum inside its (H, W) plane, as PyTorch returns them;
 * may be NULL when no backward follows. 2x2 stride 2 (no pad, no dilation) and 3x3 stride 2
 * padding 1 (no dilation) have fast paths. */
void nnl_max_pool2d_forward(float *y,          /* y: (N, C, OH, OW) */
                            int64_t *indices,  /* indices: (N, C, OH, OW) or NULL */
                            const float *x,    /* x: (N, C, H, W) */
                            const nnl_pool2d_dims *d);
void nnl_max_pool2d_backward(float *dx,              /* dx: (N, C, H, W) */
                             const float *dy,        /* dy: (N, C, OH, OW) */
                             const int64_t *indices, /* indices: (N, C, OH, OW) */
                             const nnl_pool2d_dims *d);
/* The same gradient stored, not added: all of dx is written (zero where no window's maximum
 * sits), a plane at a time while it is in cache, so dx needs no zero-filling first. */
void nnl_max_pool2d_backward_into(float *dx,              /* dx: (N, C, H, W) */
                                  const float *dy,        /* dy: (N, C, OH, OW) */
                                  const int64_t *indices, /* indices: (N, C, OH, OW) */
                                  const nnl_pool2d_dims *d);

/* count_include_pad: PyTorch's default is 1. divisor_override: 0 for none. */
void nnl_avg_pool2d_forward(float *y,       /* y: (N, C, OH, OW) */
                            const float *x, /* x: (N, C, H, W) */
                            const nnl_pool2d_dims *d, int count_include_pad, int divisor_override);
void nnl_avg_pool2d_backward(float *dx,       /* dx: (N, C, H, W) */
                             const float *dy, /* dy: (N, C, OH, OW) */
                             const nnl_pool2d_dims *d, int count_include_pad,
                             int divisor_override);

/* Output cell i covers rows floor(i*H/OH) .. ceil((i+1)*H/OH)-1, and the same for columns. */
void nnl_adaptive_avg_pool2d_forward(float *y,       /* y: (N, C, OH, OW) */
                                     const float *x, /* x: (N, C, H, W) */
                                     int N, int C, int H, int W, int OH, int OW);
void nnl_adaptive_avg_pool2d_backward(float *dx,       /* dx: (N, C, H, W) */
                                      const float *dy, /* dy: (N, C, OH, OW) */
                                      int N, int C, int H, int W, int OH, int OW);

/* ---- batch norm over (N, C, inner) (batchnorm.c) ----
 * inner = H*W for BatchNorm2d, 1 for BatchNorm1d on (N, C). weight, bias: (C) or NULL (no affine).
 * Training: batch mean and biased variance; save_mean, save_invstd = 1/sqrt(var + eps) (either may
 * be NULL); running_mean/var (or NULL) become (1-momentum)*old + momentum*batch, with the
 * UNBIASED batch variance (N*inner == 1 uses the biased one; PyTorch rejects that case). */
void nnl_batchnorm_forward_train(float *y,            /* y: (N, C, inner) */
                                 float *save_mean,    /* save_mean: (C) or NULL */
                                 float *save_invstd,  /* save_invstd: (C) or NULL */
                                 float *running_mean, /* running_mean: (C) or NULL, updated */
                                 float *running_var,  /* running_var: (C) or NULL, updated */
                                 const float *x,      /* x: (N, C, inner) */
                                 const float *weight, /* weight: (C) or NULL */
                                 const float *bias,   /* bias: (C) or NULL */
                                 int N, int C, int inner, double momentum, double eps);
/* The full gradient through the batch statistics. dx, dweight, dbias may each be NULL. */
void nnl_batchnorm_backward_train(float *dx,               /* dx: (N, C, inner) or NULL */
                                  float *dweight,          /* dweight: (C) or NULL */
                                  float *dbias,            /* dbias: (C) or NULL */
                                  const float *dy,         /* dy: (N, C, inner) */
                                  const float *x,          /* x: (N, C, inner) */
                                  const float *save_mean,  /* save_mean: (C) */
                                  const float *save_invstd,/* save_invstd: (C) */
                                  const float *weight,     /* weight: (C) or NULL */
                                  int N, int C, int inner);
/* The same gradient stored into dx, not added (dx needs no zero-filling); dx may be dy itself. */
void nnl_batchnorm_backward_train_into(float *dx,               /* dx: (N, C, inner) or NULL */
                                       float *dweight,          /* dweight: (C) or NULL, += */
                                       float *dbias,            /* dbias: (C) or NULL, += */
                                       const float *dy,         /* dy: (N, C, inner) */
                                       const float *x,          /* x: (N, C, inner) */
                                       const float *save_mean,  /* save_mean: (C) */
                                       const float *save_invstd,/* save_invstd: (C) */
                                       const float *weight,     /* weight: (C) or NULL */
                                       int N, int C, int inner);
/* Evaluation: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias. */
void nnl_batchnorm_forward_eval(float *y,                  /* y: (N, C, inner) */
                                const float *x,            /* x: (N, C, inner) */
                                const float *running_mean, /* running_mean: (C) */
                                const float *running_var,  /* running_var: (C) */
                                const float *weight,       /* weight: (C) or NULL */
                                const float *bias,         /* bias: (C) or NULL */
                                int N, int C, int inner, double eps);
/* Statistics are constants here, so dx = dy * weight / sqrt(running_var + eps). */
void nnl_batchnorm_backward_eval(float *dx,                 /* dx: (N, C, inner) or NULL */
                                 float *dweight,            /* dweight: (C) or NULL */
                                 float *dbias,              /* dbias: (C) or NULL */
                                 const float *dy,           /* dy: (N, C, inner) */
                                 const float *x,            /* x: (N, C, inner) */
                                 const float *running_mean, /* running_mean: (C) */
                                 const float *running_var,  /* running_var: (C) */
                                 const float *weight,       /* weight: (C) or NULL */
                                 int N, int C, int inner, double eps);
/* The same, dx stored rather than added; dx may be dy itself. */
void nnl_batchnorm_backward_eval_into(float *dx,                 /* dx: (N, C, inner) or NULL */
                                      float *dweight,            /* dweight: (C) or NULL, += */
                                      float *dbias,              /* dbias: (C) or NULL, += */
                                      const float *dy,           /* dy: (N, C, inner) */
                                      const float *x,            /* x: (N, C, inner) */
                                      const float *running_mean, /* running_mean: (C) */
                                      const float *running_var,  /* running_var: (C) */
                                      const float *weight,       /* weight: (C) or NULL */
                                      int N, int C, int inner, double eps);

#endif
