/* conv.c — 2-D convolution over NCHW as im2col + nnl_sgemm (darknet style), forward and backward.
 * Images run in parallel, each thread with its own column buffer; 1x1 stride-1 convs skip im2col. */
#include "spatial.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"

/* Columns are built for a band of output rows at a time, sized so that the band's column
 * matrix (Cg*KH*KW x rows*OW floats) stays in L2 between im2col and the gemm that reads it. */
#ifndef NNL_CONV_TILE
#define NNL_CONV_TILE (1L << 17)
#endif

int nnl_conv_out_size(int in, int k, int stride, int pad, int dil) {
  long span = (long)in + 2L * pad - (long)dil * (k - 1) - 1;
  if (span < 0 || stride <= 0) return 0;
  return (int)(span / stride + 1);
}

/* Sizes derived from the dims, shared by every helper below. */
typedef struct {
  int Cg, Fg, OH, OW;
  long HW, P; /* input plane, output plane (the gemm's column count) */
  long Kc;    /* Cg*KH*KW: rows of the column matrix, columns of a filter row */
  int band;   /* output rows per column band */
  int direct; /* the input plane already is the column matrix */
} geom;

static void set_geom(const nnl_conv2d_dims *d, geom *g) {
  g->Cg = d->C / d->groups;
  g->Fg = d->F / d->groups;
  g->OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, d->dil_h);
  g->OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, d->dil_w);
  g->HW = (long)d->H * d->W;
  g->P = (long)g->OH * g->OW;
  g->Kc = (long)g->Cg * d->KH * d->KW;
  g->direct = d->KH == 1 && d->KW == 1 && d->stride_h == 1 && d->stride_w == 1 &&
              d->pad_h == 0 && d->pad_w == 0;
  long row = g->Kc * g->OW;
  g->band = row >= NNL_CONV_TILE ? 1 : (int)(NNL_CONV_TILE / row);
  if (g->band > g->OH) g->band = g->OH;
  if (g->band < 1) g->band = 1;
}

/* ---- im2col / col2im for one image and one group ---- */

/* Output columns ow whose input column ow*s + off falls inside [0, W): [*lo, *hi). */
static void valid_range(int OW, int W, int s, int off, int *lo, int *hi) {
  int a = off >= 0 ? 0 : (-off + s - 1) / s;
  int b = W - off <= 0 ? 0 : (W - off + s - 1) / s;
  if (a > OW) a = OW;
  if (b > OW) b = OW;
  *lo = a;
  *hi = b < a ? a : b;
}

/* Output rows oh0..oh1-1 narrowed to those whose input row oh*stride_h - pad_h + ki*dil_h is
 * inside the image: [*a, *b). */
static void valid_rows(const nnl_conv2d_dims *d, const geom *g, int ki, int oh0, int oh1, int *a,
                       int *b) {
  valid_range(g->OH, d->H, d->stride_h, ki * d->dil_h - d->pad_h, a, b);
  if (*a < oh0) *a = oh0;
  if (*b > oh1) *b = oh1;
  if (*b < *a) *b = *a;
}

/* col: (Cg*KH*KW, (oh1-oh0)*OW) <- x: (Cg, H, W), the columns of output rows oh0..oh1-1.
 * Fills the rows of kernel rows r0..r1-1, where r = c*KH + ki, so callers can split by rows. */
static void im2col(float *col, const float *x, const nnl_conv2d_dims *d, const geom *g, int oh0,
                   int oh1, long r0, long r1) {
  long bp = (long)(oh1 - oh0) * g->OW;
  int OW = g->OW, sw = d->stride_w;
  /* stride 1 and OW == W: consecutive output rows read consecutive input rows, so a kernel
   * tap's whole column row is one shifted copy of the plane (then the wrapped edges are zeroed) */
  int flat = d->stride_h == 1 && sw == 1 && OW == d->W;
  for (long r = r0; r < r1; r++) {
    int c = (int)(r / d->KH), ki = (int)(r % d->KH), ra, rb;
    const float *xc = x + c * g->HW;
    valid_rows(d, g, ki, oh0, oh1, &ra, &rb);
    for (int kj = 0; kj < d->KW; kj++) {
      float *row = col + (r * d->KW + kj) * bp;
      int off = kj * d->dil_w - d->pad_w, lo, hi;
      valid_range(OW, d->W, sw, off, &lo, &hi);
      memset(row, 0, sizeof(float) * (ra - oh0) * OW);
      memset(row + (long)(rb - oh0) * OW, 0, sizeof(float) * (oh1 - rb) * OW);
      if (flat && rb > ra) {
        long q0 = (long)(ra - oh0) * OW + lo, q1 = (long)(rb - 1 - oh0) * OW + hi;
        long ih = (long)ra * d->stride_h - d->pad_h + ki * d->dil_h;
        if (q1 > q0) memcpy(row + q0, xc + ih * d->W + lo + off, sizeof(float) * (q1 - q0));
        for (int oh = ra; oh < rb; oh++) {
          float *o = row + (long)(oh - oh0) * OW;
          for (int ow = 0; ow < lo; ow++) o[ow] = 0.0f;
          for (int ow = hi; ow < OW; ow++) o[ow] = 0.0f;
        }
        continue;
      }
      for (int oh = ra; oh < rb; oh++) {
        float *o = row + (long)(oh - oh0) * OW;
        const float *xr = xc + (long)(oh * d->stride_h - d->pad_h + ki * d->dil_h) * d->W;
        for (int ow = 0; ow < lo; ow++) o[ow] = 0.0f;
        if (sw == 1) {
#pragma omp simd
          for (int ow = lo; ow < hi; ow++) o[ow] = xr[ow + off];
        } else {
          for (int ow = lo; ow < hi; ow++) o[ow] = xr[ow * sw + off];
        }
        for (int ow = hi; ow < OW; ow++) o[ow] = 0.0f;
      }
    }
  }
}

/* dx: (Cg, H, W) += col: (Cg*KH*KW, (oh1-oh0)*OW) for channels c0..c1-1 (a channel's rows
 * all land in its own plane, so splitting by channel is race-free). */
static void col2im(float *dx, const float *col, const nnl_conv2d_dims *d, const geom *g, int oh0,
                   int oh1, int c0, int c1) {
  long bp = (long)(oh1 - oh0) * g->OW;
  int OW = g->OW, sw = d->stride_w;
  for (int c = c0; c < c1; c++) {
    float *dxc = dx + c * g->HW;
    for (int ki = 0; ki < d->KH; ki++) {
      int ra, rb;
      valid_rows(d, g, ki, oh0, oh1, &ra, &rb);
      for (int kj = 0; kj < d->KW; kj++) {
        const float *row = col + (((long)c * d->KH + ki) * d->KW + kj) * bp;
        int off = kj * d->dil_w - d->pad_w, lo, hi;
        valid_range(OW, d->W, sw, off, &lo, &hi);
        for (int oh = ra; oh < rb; oh++) {
          const float *o = row + (long)(oh - oh0) * OW;
          float *dr = dxc + (long)(oh * d->stride_h - d->pad_h + ki * d->dil_h) * d->W;
          if (sw == 1) {
#pragma omp simd
            for (int ow = lo; ow < hi; ow++) dr[ow + off] += o[ow];
          } else {
            for (int ow = lo; ow < hi; ow++) dr[ow * sw + off] += o[ow];
          }
        }
      }
    }
  }
}

/* With par set (one image at a time, sgemm threading inside), the copies are split across
 * threads too; inside the per-image parallel loop they run on the calling thread. */
static void im2col_band(float *col, const float *x, const nnl_conv2d_dims *d, const geom *g,
                        int oh0, int oh1, int par) {
  long rows = (long)g->Cg * d->KH;
  if (!par || g->Kc * (oh1 - oh0) * g->OW <= NNL_PAR_MIN) {
    im2col(col, x, d, g, oh0, oh1, 0, rows);
    return;
  }
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; r++) im2col(col, x, d, g, oh0, oh1, r, r + 1);
}

static void col2im_band(float *dx, const float *col, const nnl_conv2d_dims *d, const geom *g,
                        int oh0, int oh1, int par) {
  if (!par || g->Kc * (oh1 - oh0) * g->OW <= NNL_PAR_MIN) {
    col2im(dx, col, d, g, oh0, oh1, 0, g->Cg);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g->Cg; c++) col2im(dx, col, d, g, oh0, oh1, c, c + 1);
}

/* ---- threads and workspace ---- */

static size_t col_floats(const geom *g) {
  return g->direct ? 0 : (size_t)g->Kc * g->band * g->OW;
}

/* T column buffers, and for a backward with dweight, T-1 private dweight sums (thread 0
 * accumulates straight into dweight). */
static size_t ws_need(const nnl_conv2d_dims *d, const geom *g, int with_dw, int T) {
  size_t n = (size_t)T * col_floats(g);
  if (with_dw && T > 1) n += (size_t)(T - 1) * d->F * g->Kc;
  return n;
}

/* Whole images per thread when there are at least as many images as threads (im2col, col2im and
 * the small per-image gemms all scale); otherwise one image at a time with threaded sgemm. */
static int image_threads(const nnl_conv2d_dims *d, const geom *g, int nthreads) {
  double work = (double)d->N * d->F * g->Kc * g->P;
  if (nthreads <= 1 || d->N < nthreads || work <= NNL_PAR_MIN) return 1;
  return nthreads;
}

size_t nnl_conv2d_workspace_size(const nnl_conv2d_dims *d, int backward, int nthreads) {
  geom g;
  set_geom(d, &g);
  if (nthreads <= 0) nthreads = omp_get_max_threads();
  return ws_need(d, &g, backward, image_threads(d, &g, nthreads));
}

/* Points *ws at usable scratch (allocating into *own when the caller gave none) and returns the
 * thread count it allows, or 0 when it is below the one-thread minimum. */
static int take_ws(const nnl_conv2d_dims *d, const geom *g, int with_dw, float **ws,
                   size_t *ws_floats, float **own) {
  int T = image_threads(d, g, omp_get_max_threads());
  *own = NULL;
  if (*ws == NULL) {
    *ws_floats = ws_need(d, g, with_dw, T);
    if (*ws_floats > 0) {
      *own = malloc(*ws_floats * sizeof(float));
      if (*own == NULL) return 0;
    }
    *ws = *own;
  }
  while (T > 1 && ws_need(d, g, with_dw, T) > *ws_floats) T--;
  return ws_need(d, g, with_dw, 1) > *ws_floats ? 0 : T;
}

/* ---- forward ---- */

static void forward_image(float *y, const float *x, const float *weight, const float *bias,
                          const nnl_conv2d_dims *d, const geom *g, float *col, int n, int par) {
  for (int grp = 0; grp < d->groups; grp++) {
    const float *xg = x + ((long)n * d->C + (long)grp * g->Cg) * g->HW; /* (Cg, H, W) */
    float *yg = y + ((long)n * d->F + (long)grp * g->Fg) * g->P;       /* (Fg, OH*OW) */
    const float *wg = weight + (long)grp * g->Fg * g->Kc;              /* (Fg, Kc) */
    int P = (int)g->P, Kc = (int)g->Kc;
    if (g->direct)
      nnl_sgemm(0, 0, g->Fg, P, Kc, 1.0f, wg, Kc, xg, P, 0.0f, yg, P);
    else
      for (int oh0 = 0; oh0 < g->OH; oh0 += g->band) {
        int oh1 = oh0 + g->band < g->OH ? oh0 + g->band : g->OH, bp = (oh1 - oh0) * g->OW;
        im2col_band(col, xg, d, g, oh0, oh1, par);
        nnl_sgemm(0, 0, g->Fg, bp, Kc, 1.0f, wg, Kc, col, bp, 0.0f, yg + (long)oh0 * g->OW, P);
      }
    if (bias)
      for (int f = 0; f < g->Fg; f++) {
        float b = bias[grp * g->Fg + f], *yr = yg + f * g->P;
        for (long p = 0; p < g->P; p++) yr[p] += b;
      }
  }
}

int nnl_conv2d_forward(float *y, const float *x, const float *weight, const float *bias,
                       const nnl_conv2d_dims *d, float *ws, size_t ws_floats) {
  geom g;
  float *own;
  set_geom(d, &g);
  int T = take_ws(d, &g, 0, &ws, &ws_floats, &own);
  if (T == 0) return -1;
  size_t colsz = col_floats(&g);
  if (T > 1) {
#pragma omp parallel num_threads(T)
    {
      float *col = colsz ? ws + (size_t)omp_get_thread_num() * colsz : NULL;
#pragma omp for schedule(static)
      for (int n = 0; n < d->N; n++) forward_image(y, x, weight, bias, d, &g, col, n, 0);
    }
  } else {
    for (int n = 0; n < d->N; n++) forward_image(y, x, weight, bias, d, &g, ws, n, 1);
  }
  free(own);
  return 0;
}

/* ---- backward ---- */

/* dbias[f] += sum over n and the plane of dy[n, f]; each thread owns whole filters. */
static void bias_backward(float *dbias, const float *dy, const nnl_conv2d_dims *d, long P) {
#pragma omp parallel for schedule(static) if ((double)d->N * d->F * P > NNL_PAR_MIN)
  for (int f = 0; f < d->F; f++) {
    double s = 0.0;
    for (int n = 0; n < d->N; n++) {
      const float *r = dy + ((long)n * d->F + f) * P;
      float part = 0.0f;
#pragma omp simd reduction(+ : part)
      for (long p = 0; p < P; p++) part += r[p];
      s += part;
    }
    dbias[f] += (float)s;
  }
}

/* dw (a whole (F, Kc) weight gradient, private or shared) and dx[n] for image n. */
static void backward_image(float *dx, float *dw, const float *dy, const float *x,
                           const float *weight, const nnl_conv2d_dims *d, const geom *g,
                           float *col, int n, int par) {
  for (int grp = 0; grp < d->groups; grp++) {
    long xoff = ((long)n * d->C + (long)grp * g->Cg) * g->HW;     /* (Cg, H, W) */
    const float *dyg = dy + ((long)n * d->F + (long)grp * g->Fg) * g->P; /* (Fg, OH*OW) */
    const float *wg = weight + (long)grp * g->Fg * g->Kc;                /* (Fg, Kc) */
    float *dwg = dw ? dw + (long)grp * g->Fg * g->Kc : NULL;           /* (Fg, Kc) */
    int P = (int)g->P, Kc = (int)g->Kc;
    if (g->direct) { /* dW_g += dY_g · X_g^T, dX_g += W_g^T · dY_g */
      if (dw) nnl_sgemm(0, 1, g->Fg, Kc, P, 1.0f, dyg, P, x + xoff, P, 1.0f, dwg, Kc);
      if (dx) nnl_sgemm(1, 0, g->Cg, P, g->Fg, 1.0f, wg, Kc, dyg, P, 1.0f, dx + xoff, P);
      continue;
    }
    for (int oh0 = 0; oh0 < g->OH; oh0 += g->band) {
      int oh1 = oh0 + g->band < g->OH ? oh0 + g->band : g->OH, bp = (oh1 - oh0) * g->OW;
      const float *dyb = dyg + (long)oh0 * g->OW; /* (Fg, bp) inside rows of P */
      if (dw) { /* dW_g += dY_band · cols_band^T */
        im2col_band(col, x + xoff, d, g, oh0, oh1, par);
        nnl_sgemm(0, 1, g->Fg, Kc, bp, 1.0f, dyb, P, col, bp, 1.0f, dwg, Kc);
      }
      if (dx) { /* cols_band = W_g^T · dY_band, scattered back onto the input planes */
        nnl_sgemm(1, 0, Kc, bp, g->Fg, 1.0f, wg, Kc, dyb, P, 0.0f, col, bp);
        col2im_band(dx + xoff, col, d, g, oh0, oh1, par);
      }
    }
  }
}

int nnl_conv2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, const nnl_conv2d_dims *d, float *ws,
                        size_t ws_floats) {
  geom g;
  float *own;
  set_geom(d, &g);
  if (!dx && !dweight) {
    if (dbias) bias_backward(dbias, dy, d, g.P);
    return 0;
  }
  int T = take_ws(d, &g, dweight != NULL, &ws, &ws_floats, &own);
  if (T == 0) return -1;
  if (dbias) bias_backward(dbias, dy, d, g.P);
  size_t colsz = col_floats(&g), wsz = (size_t)d->F * g.Kc;
  if (T > 1) {
    float *parts = dweight ? ws + (size_t)T * colsz : NULL; /* (T-1, F, Kc) */
#pragma omp parallel num_threads(T)
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      float *dw = NULL;
      if (dweight) {
        dw = t == 0 ? dweight : parts + (size_t)(t - 1) * wsz;
        if (t > 0) memset(dw, 0, wsz * sizeof(float));
      }
      float *col = colsz ? ws + (size_t)t * colsz : NULL;
#pragma omp for schedule(static)
      for (int n = 0; n < d->N; n++) backward_image(dx, dw, dy, x, weight, d, &g, col, n, 0);
      if (dweight) { /* the loop's barrier has passed: fold the private sums in */
#pragma omp for schedule(static)
        for (size_t i = 0; i < wsz; i++) {
          float s = 0.0f;
          for (int u = 1; u < nt; u++) s += parts[(size_t)(u - 1) * wsz + i];
          dweight[i] += s;
        }
      }
    }
  } else {
    for (int n = 0; n < d->N; n++) backward_image(dx, dweight, dy, x, weight, d, &g, ws, n, 1);
  }
  free(own);
  return 0;
}
