/* conv.c — 2-D convolution over NCHW as im2col + nnl_sgemm (darknet style), forward and backward.
 * Large planes: images in parallel, a band of rows at a time; small planes: several images' columns
 * side by side in one wide gemm; few-channel stride-1 convs run direct AVX-512 loops. */
#include "spatial.h"

#include "../core/parallel.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define NNL_CONV_DIRECT 1
#include <immintrin.h>
#else
#define NNL_CONV_DIRECT 0
#endif

/* Columns are built for a band of output rows at a time, sized so that the band's column
 * matrix (Cg*KH*KW x rows*OW floats) stays in L2 between im2col and the gemm that reads it. */
#ifndef NNL_CONV_TILE
#define NNL_CONV_TILE (1L << 17)
#endif

/* Small planes (under NNL_CONV_GROUP_P outputs: ResNet's 14x14 and 7x7) give per-image gemms
 * too narrow to run well (a 7x7 plane is 49 columns, and the weights get packed again for every
 * one). Their columns are built for a group of images side by side instead, up to
 * NNL_CONV_GROUP_TILE floats, and one threaded gemm covers the group. */
#ifndef NNL_CONV_GROUP_P
#define NNL_CONV_GROUP_P 256
#endif
#ifndef NNL_CONV_GROUP_TILE
#define NNL_CONV_GROUP_TILE (1L << 21)
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
  int group;  /* images per column matrix, 0 for one image (or a band of it) at a time */
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
  long img = g->Kc * g->P;
  g->group = 0;
  if (d->N > 1 && g->P < NNL_CONV_GROUP_P && 2 * img <= NNL_CONV_GROUP_TILE) {
    long G = NNL_CONV_GROUP_TILE / img;
    g->group = G < d->N ? (int)G : d->N;
  }
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
  if (*a > oh1) *a = oh1; /* the valid rows may all lie below this band */
  if (*b > oh1) *b = oh1;
  if (*b < *a) *b = *a;
}

/* col: (Cg*KH*KW, (oh1-oh0)*OW) in rows ld floats apart <- x: (Cg, H, W), the columns of output
 * rows oh0..oh1-1. Fills the rows of kernel rows r0..r1-1, where r = c*KH + ki, so callers can
 * split by rows. */
/* The copies are most of what im2col and col2im do: built for AVX-512 too where the CPU has it
 * (the strided ones of a stride-2 conv become vector permutes there). */
#if NNL_CONV_DIRECT
#define CONV_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define CONV_CLONES
#endif

CONV_CLONES static void im2col(float *col, long ld, const float *x, const nnl_conv2d_dims *d,
                               const geom *g, int oh0, int oh1, long r0, long r1) {
  int OW = g->OW, sw = d->stride_w;
  /* stride 1 and OW == W: consecutive output rows read consecutive input rows, so a kernel
   * tap's whole column row is one shifted copy of the plane (then the wrapped edges are zeroed) */
  int flat = d->stride_h == 1 && sw == 1 && OW == d->W;
  for (long r = r0; r < r1; r++) {
    int c = (int)(r / d->KH), ki = (int)(r % d->KH), ra, rb;
    const float *xc = x + c * g->HW;
    valid_rows(d, g, ki, oh0, oh1, &ra, &rb);
    for (int kj = 0; kj < d->KW; kj++) {
      float *row = col + (r * d->KW + kj) * ld;
      int off = kj * d->dil_w - d->pad_w, lo, hi;
      valid_range(OW, d->W, sw, off, &lo, &hi);
      memset(row, 0, sizeof(float) * (ra - oh0) * OW);
      memset(row + (long)(rb - oh0) * OW, 0, sizeof(float) * (oh1 - rb) * OW);
      if (flat && rb > ra) {
        long q0 = (long)(ra - oh0) * OW + lo, q1 = (long)(rb - 1 - oh0) * OW + hi;
        long ih = (long)ra * d->stride_h - d->pad_h + ki * d->dil_h;
        /* with no valid column (lo == hi) the shifted copy would start or end outside the plane */
        if (q1 > q0 && hi > lo) memcpy(row + q0, xc + ih * d->W + lo + off, sizeof(float) * (q1 - q0));
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
#pragma omp simd
          for (int ow = lo; ow < hi; ow++) o[ow] = xr[ow * sw + off];
        }
        for (int ow = hi; ow < OW; ow++) o[ow] = 0.0f;
      }
    }
  }
}

/* dx: (Cg, H, W) += col: (Cg*KH*KW, (oh1-oh0)*OW) in rows ld floats apart, for channels
 * c0..c1-1 (a channel's rows all land in its own plane, so splitting by channel is race-free). */
CONV_CLONES static void col2im(float *dx, const float *col, long ld, const nnl_conv2d_dims *d,
                               const geom *g, int oh0, int oh1, int c0, int c1) {
  int OW = g->OW, sw = d->stride_w;
  for (int c = c0; c < c1; c++) {
    float *dxc = dx + c * g->HW;
    for (int ki = 0; ki < d->KH; ki++) {
      int ra, rb;
      valid_rows(d, g, ki, oh0, oh1, &ra, &rb);
      for (int kj = 0; kj < d->KW; kj++) {
        const float *row = col + (((long)c * d->KH + ki) * d->KW + kj) * ld;
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
  long rows = (long)g->Cg * d->KH, bp = (long)(oh1 - oh0) * g->OW;
  if (!par || g->Kc * bp <= NNL_PAR_MIN) {
    im2col(col, bp, x, d, g, oh0, oh1, 0, rows);
    return;
  }
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; r++) im2col(col, bp, x, d, g, oh0, oh1, r, r + 1);
}

static void col2im_band(float *dx, const float *col, const nnl_conv2d_dims *d, const geom *g,
                        int oh0, int oh1, int par) {
  long bp = (long)(oh1 - oh0) * g->OW;
  if (!par || g->Kc * bp <= NNL_PAR_MIN) {
    col2im(dx, col, bp, d, g, oh0, oh1, 0, g->Cg);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g->Cg; c++) col2im(dx, col, bp, d, g, oh0, oh1, c, c + 1);
}

/* ---- groups of whole images: columns (Kc, G*P), image j's in columns j*P .. j*P + P-1 ---- */

/* col <- images n0..n0+G-1, channels of conv group grp; the threads split (image, kernel row) */
static void im2col_images(float *col, const float *x, const nnl_conv2d_dims *d, const geom *g,
                          int n0, int G, int grp) {
  long rows = (long)g->Cg * d->KH, ld = (long)G * g->P;
#pragma omp parallel for collapse(2) schedule(static) if (g->Kc * ld > NNL_PAR_MIN)
  for (int j = 0; j < G; j++)
    for (long r = 0; r < rows; r++)
      im2col(col + (long)j * g->P, ld, x + ((long)(n0 + j) * d->C + (long)grp * g->Cg) * g->HW,
             d, g, 0, g->OH, r, r + 1);
}

/* dx of images n0..n0+G-1, conv group grp += col; the threads split (image, channel) */
static void col2im_images(float *dx, const float *col, const nnl_conv2d_dims *d, const geom *g,
                          int n0, int G, int grp) {
  long ld = (long)G * g->P;
#pragma omp parallel for collapse(2) schedule(static) if (g->Kc * ld > NNL_PAR_MIN)
  for (int j = 0; j < G; j++)
    for (int c = 0; c < g->Cg; c++)
      col2im(dx + ((long)(n0 + j) * d->C + (long)grp * g->Cg) * g->HW, col + (long)j * g->P, ld, d,
             g, 0, g->OH, c, c + 1);
}

/* yt: (Fg, G*P) <-> y: (N, F, P), images n0..n0+G-1 and the filters of conv group grp. Forward
 * (to_y): y = yt + bias. Backward: yt = y (gathering dy for the group's gemms). */
static void move_images(float *y, float *yt, const float *bias, const nnl_conv2d_dims *d,
                        const geom *g, int n0, int G, int grp, int to_y) {
  long ld = (long)G * g->P, P = g->P;
#pragma omp parallel for collapse(2) schedule(static) if (g->Fg * ld > NNL_PAR_MIN)
  for (int j = 0; j < G; j++)
    for (int f = 0; f < g->Fg; f++) {
      float *yr = y + ((long)(n0 + j) * d->F + (long)grp * g->Fg + f) * P;
      float *tr = yt + f * ld + j * P;
      if (!to_y) {
        memcpy(tr, yr, sizeof(float) * P);
        continue;
      }
      float b = bias ? bias[grp * g->Fg + f] : 0.0f;
#pragma omp simd
      for (long p = 0; p < P; p++) yr[p] = tr[p] + b;
    }
}

/* Scratch of the grouped path: the column matrix and the (Fg, G*P) staging of y or dy. */
static size_t group_floats(const geom *g) {
  return (size_t)(g->Kc + g->Fg) * g->group * g->P;
}

static void forward_groups(float *y, const float *x, const float *weight, const float *bias,
                           const nnl_conv2d_dims *d, const geom *g, float *ws) {
  int Kc = (int)g->Kc;
  for (int n0 = 0; n0 < d->N; n0 += g->group) {
    int G = d->N - n0 < g->group ? d->N - n0 : g->group, ld = G * (int)g->P;
    float *col = ws, *yt = ws + g->Kc * ld; /* (Kc, ld), (Fg, ld) */
    for (int grp = 0; grp < d->groups; grp++) {
      im2col_images(col, x, d, g, n0, G, grp);
      nnl_sgemm(0, 0, g->Fg, ld, Kc, 1.0f, weight + (long)grp * g->Fg * Kc, Kc, col, ld, 0.0f, yt,
                ld);
      move_images(y, yt, bias, d, g, n0, G, grp, 1);
    }
  }
}

/* dW_g += dY_g · cols^T and cols = W_g^T · dY_g, col2im'd onto dx, a group of images at a time */
static void backward_groups(float *dx, float *dweight, const float *dy, const float *x,
                            const float *weight, const nnl_conv2d_dims *d, const geom *g,
                            float *ws) {
  int Kc = (int)g->Kc;
  for (int n0 = 0; n0 < d->N; n0 += g->group) {
    int G = d->N - n0 < g->group ? d->N - n0 : g->group, ld = G * (int)g->P;
    float *col = ws, *dyt = ws + g->Kc * ld; /* (Kc, ld), (Fg, ld) */
    for (int grp = 0; grp < d->groups; grp++) {
      move_images((float *)dy, dyt, NULL, d, g, n0, G, grp, 0);
      if (dweight) {
        im2col_images(col, x, d, g, n0, G, grp);
        nnl_sgemm(0, 1, g->Fg, Kc, ld, 1.0f, dyt, ld, col, ld, 1.0f,
                  dweight + (long)grp * g->Fg * Kc, Kc);
      }
      if (dx) {
        nnl_sgemm(1, 0, Kc, ld, g->Fg, 1.0f, weight + (long)grp * g->Fg * Kc, Kc, dyt, ld, 0.0f,
                  col, ld);
        col2im_images(dx, col, d, g, n0, G, grp);
      }
    }
  }
}

/* ---- direct loops for few input channels (AVX-512) ----
 * With C*KH*KW small (the course's first layer: C = 1, 7x7, so K = 49) the gemm is thin: im2col
 * and the gemm's own packing copy every input pixel 2K times, for a product that runs at half
 * the speed of a square one. These loops read a zero-padded copy of one image from L1 instead:
 * the forward keeps 8 filters x 32 output columns in registers over all taps, dweight keeps
 * 4 filters x 4 taps over a whole image. Used on CPUs with AVX-512 (checked at run time) for
 * groups 1, stride 1, dilation 1; dx, when asked for, still goes through im2col + gemm. */

#define DIRECT_MAX_C 4
#define DV 16      /* floats per vector */
#define DCHUNKS 16 /* dweight is summed over fixed runs of images, then the runs in order, so the
                      result does not depend on the number of threads */

typedef struct {
  int HP, WP; /* padded plane: rows, and a row stride that keeps every vector read in the row */
  int KWB;    /* KW rounded up to the 4 taps of a dweight block */
  long XP;    /* floats of one padded image (whole vectors) */
  long KB;    /* C*KH*KWB: dweight taps including the block padding */
} dgeom;

static int direct_ok(const nnl_conv2d_dims *d, const geom *g) {
#if NNL_CONV_DIRECT
  return nnl_cpu_avx512() && d->groups == 1 && d->C <= DIRECT_MAX_C && !g->direct && d->stride_h == 1 &&
         d->stride_w == 1 && d->dil_h == 1 && d->dil_w == 1;
#else
  (void)d, (void)g;
  return 0;
#endif
}

/* The grouped path, unless the direct loops take the conv (their dx uses per-image buffers). */
static int grouped(const nnl_conv2d_dims *d, const geom *g) {
  return g->group > 0 && !direct_ok(d, g);
}

static void set_dgeom(const nnl_conv2d_dims *d, const geom *g, dgeom *q) {
  int OWv = (g->OW + DV - 1) / DV * DV;
  q->KWB = (d->KW + 3) / 4 * 4;
  q->WP = OWv + q->KWB - 1; /* >= W + 2*pad_w, and the widest read ends inside */
  q->HP = d->H + 2 * d->pad_h;
  q->XP = ((long)d->C * q->HP * q->WP + DV - 1) / DV * DV;
  q->KB = (long)d->C * d->KH * q->KWB;
}

/* Per thread: the padded image, and for dweight its vector sums (F, KB, DV) and dbias's (F, DV);
 * for dweight also the chunk sums (DCHUNKS, F*Kc + F) after the T thread blocks. */
static size_t direct_thread_floats(const nnl_conv2d_dims *d, const dgeom *q, int with_dw) {
  return (size_t)q->XP + (with_dw ? (size_t)d->F * (q->KB + 1) * DV : 0);
}

static size_t direct_need(const nnl_conv2d_dims *d, const geom *g, const dgeom *q, int with_dw,
                          int T) {
  size_t n = (size_t)T * direct_thread_floats(d, q, with_dw);
  if (with_dw) n += (size_t)DCHUNKS * (d->F * g->Kc + d->F);
  return n;
}

#if NNL_CONV_DIRECT
/* xp: (C, HP, WP), borders already zero <- x: (C, H, W) */
static void pad_image(float *xp, const float *x, const nnl_conv2d_dims *d, const dgeom *q) {
  for (int c = 0; c < d->C; c++)
    for (int h = 0; h < d->H; h++)
      memcpy(xp + ((long)c * q->HP + h + d->pad_h) * q->WP + d->pad_w,
             x + ((long)c * d->H + h) * d->W, sizeof(float) * d->W);
}

/* y[f0..f0+FB-1][oh][ow0 .. ow0 + NV*DV) (clipped to OW) = bias + sum over taps. FB <= 8 and
 * NV <= 2 are constants at every call, so acc lives in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
fwd_block(float *y, const float *xp, const float *w, const float *bias, const nnl_conv2d_dims *d,
          const geom *g, const dgeom *q, int oh, int ow0, int f0, const int FB, const int NV) {
  __m512 acc[8][2];
  long Kc = g->Kc;
#pragma GCC unroll 8
  for (int f = 0; f < FB; f++) acc[f][0] = acc[f][1] = _mm512_set1_ps(bias ? bias[f0 + f] : 0.0f);
  for (int c = 0; c < d->C; c++)
    for (int ki = 0; ki < d->KH; ki++) {
      const float *row = xp + ((long)c * q->HP + oh + ki) * q->WP + ow0;     /* (WP) */
      const float *wr = w + (long)f0 * Kc + ((long)c * d->KH + ki) * d->KW; /* (FB, Kc) */
      for (int kj = 0; kj < d->KW; kj++) {
        __m512 x0 = _mm512_loadu_ps(row + kj);
        __m512 x1 = NV > 1 ? _mm512_loadu_ps(row + kj + DV) : x0;
#pragma GCC unroll 8
        for (int f = 0; f < FB; f++) {
          __m512 wv = _mm512_set1_ps(wr[f * Kc + kj]);
          acc[f][0] = _mm512_fmadd_ps(wv, x0, acc[f][0]);
          if (NV > 1) acc[f][1] = _mm512_fmadd_ps(wv, x1, acc[f][1]);
        }
      }
    }
#pragma GCC unroll 8
  for (int f = 0; f < FB; f++)
    for (int v = 0; v < NV; v++) {
      int left = g->OW - ow0 - v * DV;
      float *dst = y + (f0 + f) * g->P + (long)oh * g->OW + ow0 + v * DV;
      if (left >= DV) _mm512_storeu_ps(dst, acc[f][v]);
      else _mm512_mask_storeu_ps(dst, (__mmask16)((1u << left) - 1), acc[f][v]);
    }
}

/* y: (F, OH, OW) of one image <- xp: its padded copy */
__attribute__((target("avx512f"))) static void
direct_forward_image(float *y, const float *xp, const float *w, const float *bias,
                     const nnl_conv2d_dims *d, const geom *g, const dgeom *q) {
  for (int oh = 0; oh < g->OH; oh++)
    for (int ow0 = 0; ow0 < g->OW; ow0 += 2 * DV) {
      int f0 = 0;
      if (g->OW - ow0 > DV) {
        for (; f0 + 8 <= d->F; f0 += 8) fwd_block(y, xp, w, bias, d, g, q, oh, ow0, f0, 8, 2);
        for (; f0 < d->F; f0++) fwd_block(y, xp, w, bias, d, g, q, oh, ow0, f0, 1, 2);
      } else {
        for (; f0 + 8 <= d->F; f0 += 8) fwd_block(y, xp, w, bias, d, g, q, oh, ow0, f0, 8, 1);
        for (; f0 < d->F; f0++) fwd_block(y, xp, w, bias, d, g, q, oh, ow0, f0, 1, 1);
      }
    }
}

/* acc[f][k] += dy[f][16 lanes at ow0] * x[ow0 + k + lanes], lanes outside m read as zero dy;
 * with DB, bs[f] += dy[f]. */
__attribute__((target("avx512f"), always_inline)) static inline void
dw_step(__m512 acc[4][4], __m512 bs[4], const float *dyr, long P, const float *row, int ow0,
        __mmask16 m, const int FB, const int DB) {
  __m512 dv[4];
#pragma GCC unroll 4
  for (int f = 0; f < FB; f++) {
    dv[f] = _mm512_maskz_loadu_ps(m, dyr + f * P + ow0);
    if (DB) bs[f] = _mm512_add_ps(bs[f], dv[f]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    __m512 xv = _mm512_loadu_ps(row + ow0 + k);
#pragma GCC unroll 4
    for (int f = 0; f < FB; f++) acc[f][k] = _mm512_fmadd_ps(dv[f], xv, acc[f][k]);
  }
}

/* The sums of dy[f] * x[tap] over one image for filters f0..f0+FB-1 and the 4 taps kj0..kj0+3 of
 * kernel row (c, ki), added onto dwv: (F, KB, DV); with DB, also dy's sums onto dbv: (F, DV).
 * Lanes past OW load dy as zero; taps past KW read real columns and are dropped later. FB and
 * DB are constants at every call and every loop over them unrolled, so acc stays in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
dw_block(float *dwv, float *dbv, const float *dy, const float *xp, const nnl_conv2d_dims *d,
         const geom *g, const dgeom *q, int f0, int c, int ki, int kj0, const int FB,
         const int DB) {
  __m512 acc[4][4], bs[4];
#pragma GCC unroll 4
  for (int f = 0; f < FB; f++) {
    bs[f] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) acc[f][k] = _mm512_setzero_ps();
  }
  int OW = g->OW, full = OW / DV * DV;
  __mmask16 tail = (__mmask16)((1u << (OW - full)) - 1);
  for (int oh = 0; oh < g->OH; oh++) {
    const float *row = xp + ((long)c * q->HP + oh + ki) * q->WP + kj0; /* (WP) */
    const float *dyr = dy + (long)f0 * g->P + (long)oh * OW;          /* (FB, P) */
    for (int ow0 = 0; ow0 < full; ow0 += DV)
      dw_step(acc, bs, dyr, g->P, row, ow0, (__mmask16)0xFFFF, FB, DB);
    if (tail) dw_step(acc, bs, dyr, g->P, row, full, tail, FB, DB);
  }
  long tap = ((long)c * d->KH + ki) * q->KWB + kj0;
#pragma GCC unroll 4
  for (int f = 0; f < FB; f++) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
      float *a = dwv + ((f0 + f) * q->KB + tap + k) * DV;
      _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), acc[f][k]));
    }
    if (DB) {
      float *b = dbv + (long)(f0 + f) * DV;
      _mm512_storeu_ps(b, _mm512_add_ps(_mm512_loadu_ps(b), bs[f]));
    }
  }
}

/* One image's dweight (and dbias) sums onto dwv, dbv; dy: (F, OH, OW), xp: its padded input */
__attribute__((target("avx512f"))) static void
direct_dw_image(float *dwv, float *dbv, const float *dy, const float *xp, const nnl_conv2d_dims *d,
                const geom *g, const dgeom *q, int with_db) {
  for (int f0 = 0; f0 < d->F;) {
    int fb = f0 + 4 <= d->F ? 4 : 1;
    for (int c = 0; c < d->C; c++)
      for (int ki = 0; ki < d->KH; ki++)
        for (int kj0 = 0; kj0 < q->KWB; kj0 += 4) {
          int db = with_db && c == 0 && ki == 0 && kj0 == 0;
          if (fb == 4 && db) dw_block(dwv, dbv, dy, xp, d, g, q, f0, c, ki, kj0, 4, 1);
          else if (fb == 4) dw_block(dwv, dbv, dy, xp, d, g, q, f0, c, ki, kj0, 4, 0);
          else dw_block(dwv, dbv, dy, xp, d, g, q, f0, c, ki, kj0, 1, db);
        }
    f0 += fb;
  }
}

/* part: (F*Kc + F), the lanes of dwv and dbv summed, block padding dropped */
__attribute__((target("avx512f"))) static void
direct_fold(float *part, const float *dwv, const float *dbv, const nnl_conv2d_dims *d,
            const geom *g, const dgeom *q) {
  for (int f = 0; f < d->F; f++) {
    for (long r = 0; r < (long)d->C * d->KH; r++)
      for (int kj = 0; kj < d->KW; kj++)
        part[f * g->Kc + r * d->KW + kj] =
            _mm512_reduce_add_ps(_mm512_loadu_ps(dwv + (f * q->KB + r * q->KWB + kj) * DV));
    part[d->F * g->Kc + f] = _mm512_reduce_add_ps(_mm512_loadu_ps(dbv + (long)f * DV));
  }
}
#endif

static void direct_forward(float *y, const float *x, const float *weight, const float *bias,
                           const nnl_conv2d_dims *d, const geom *g, const dgeom *q, float *ws,
                           int T) {
#if NNL_CONV_DIRECT
#pragma omp parallel num_threads(T)
  {
    float *xp = ws + (size_t)omp_get_thread_num() * direct_thread_floats(d, q, 0);
    memset(xp, 0, sizeof(float) * q->XP);
#pragma omp for schedule(static)
    for (int n = 0; n < d->N; n++) {
      pad_image(xp, x + (long)n * d->C * g->HW, d, q);
      direct_forward_image(y + (long)n * d->F * g->P, xp, weight, bias, d, g, q);
    }
  }
#else
  (void)y, (void)x, (void)weight, (void)bias, (void)d, (void)g, (void)q, (void)ws, (void)T;
#endif
}

static void direct_backward(float *dweight, float *dbias, const float *dy, const float *x,
                            const nnl_conv2d_dims *d, const geom *g, const dgeom *q, float *ws,
                            int T) {
#if NNL_CONV_DIRECT
  int nch = d->N < DCHUNKS ? d->N : DCHUNKS;
  long K = (long)d->F * g->Kc, per = (long)direct_thread_floats(d, q, 1);
  float *parts = ws + (size_t)T * per; /* (nch, F*Kc + F) */
#pragma omp parallel num_threads(T)
  {
    float *xp = ws + (size_t)omp_get_thread_num() * per;
    float *dwv = xp + q->XP, *dbv = dwv + (long)d->F * q->KB * DV;
    memset(xp, 0, sizeof(float) * q->XP);
#pragma omp for schedule(static)
    for (int k = 0; k < nch; k++) {
      memset(dwv, 0, sizeof(float) * d->F * (q->KB + 1) * DV);
      for (int n = (int)((long)k * d->N / nch); n < (int)((long)(k + 1) * d->N / nch); n++) {
        pad_image(xp, x + (long)n * d->C * g->HW, d, q);
        direct_dw_image(dwv, dbv, dy + (long)n * d->F * g->P, xp, d, g, q, dbias != NULL);
      }
      direct_fold(parts + k * (K + d->F), dwv, dbv, d, g, q);
    }
  }
  for (long i = 0; i < K + d->F; i++) {
    float s = 0.0f;
    for (int k = 0; k < nch; k++) s += parts[k * (K + d->F) + i];
    if (i < K) dweight[i] += s;
    else if (dbias) dbias[i - K] += s;
  }
#else
  (void)dweight, (void)dbias, (void)dy, (void)x, (void)d, (void)g, (void)q, (void)ws, (void)T;
#endif
}

/* ---- threads and workspace ---- */

static size_t col_floats(const geom *g) {
  return g->direct ? 0 : (size_t)g->Kc * g->band * g->OW;
}

/* T column buffers, and for a backward with dweight, T-1 private dweight sums (thread 0
 * accumulates straight into dweight). With the direct loops: their scratch, or T column buffers
 * for a dx, whichever is more. */
static size_t ws_need(const nnl_conv2d_dims *d, const geom *g, int with_dw, int T) {
  if (grouped(d, g)) return group_floats(g);
  if (direct_ok(d, g)) {
    dgeom q;
    set_dgeom(d, g, &q);
    size_t a = direct_need(d, g, &q, with_dw, T), b = (size_t)T * col_floats(g);
    return a > b ? a : b;
  }
  size_t n = (size_t)T * col_floats(g);
  if (with_dw && T > 1) n += (size_t)(T - 1) * d->F * g->Kc;
  return n;
}

/* Whole images per thread when there are at least as many images as threads (im2col, col2im and
 * the small per-image gemms all scale); otherwise one image at a time with threaded sgemm. */
static int image_threads(const nnl_conv2d_dims *d, const geom *g, int nthreads) {
  double work = (double)d->N * d->F * g->Kc * g->P;
  if (grouped(d, g)) return 1; /* the threads work inside each step instead */
  if (nthreads <= 1 || d->N < nthreads || work <= NNL_PAR_MIN) return 1;
  return nthreads;
}

/* ---- Winograd dispatch ---- */

static size_t ws_max(size_t a, size_t b) { return a > b ? a : b; }

size_t nnl_conv2d_workspace_size(const nnl_conv2d_dims *d, int backward, int nthreads) {
  geom g;
  set_geom(d, &g);
  if (nthreads <= 0) nthreads = omp_get_max_threads();
  size_t n = ws_need(d, &g, backward, image_threads(d, &g, nthreads));
  /* the backward's Winograd dx runs after its dweight, in the same scratch */
  if (nnl_conv2d_winograd_wanted(d))
    n = ws_max(n, nnl_conv2d_winograd_workspace_size(d, backward, nthreads));
  return n;
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
    /* y starts as the broadcast bias and the gemms add onto it (beta = 1): with beta = 0 the
     * gemm would clear y first, and the bias would be one more pass over it */
    float beta = bias ? 1.0f : 0.0f;
    if (bias)
      for (int f = 0; f < g->Fg; f++) {
        float b = bias[grp * g->Fg + f], *yr = yg + f * g->P;
        for (long p = 0; p < g->P; p++) yr[p] = b;
      }
    if (g->direct)
      nnl_sgemm(0, 0, g->Fg, P, Kc, 1.0f, wg, Kc, xg, P, beta, yg, P);
    else
      for (int oh0 = 0; oh0 < g->OH; oh0 += g->band) {
        int oh1 = oh0 + g->band < g->OH ? oh0 + g->band : g->OH, bp = (oh1 - oh0) * g->OW;
        im2col_band(col, xg, d, g, oh0, oh1, par);
        nnl_sgemm(0, 0, g->Fg, bp, Kc, 1.0f, wg, Kc, col, bp, beta, yg + (long)oh0 * g->OW, P);
      }
  }
}

int nnl_conv2d_forward(float *y, const float *x, const float *weight, const float *bias,
                       const nnl_conv2d_dims *d, float *ws, size_t ws_floats) {
  geom g;
  float *own;
  /* a short ws or a failed malloc leaves y untouched there: im2col gets its chance */
  if (nnl_conv2d_winograd_wanted(d) &&
      nnl_conv2d_winograd_forward(y, x, weight, bias, d, ws, ws_floats) == 0)
    return 0;
  set_geom(d, &g);
  int T = take_ws(d, &g, 0, &ws, &ws_floats, &own);
  if (T == 0) return -1;
  if (direct_ok(d, &g)) {
    dgeom q;
    set_dgeom(d, &g, &q);
    direct_forward(y, x, weight, bias, d, &g, &q, ws, T);
    free(own);
    return 0;
  }
  if (grouped(d, &g)) {
    forward_groups(y, x, weight, bias, d, &g, ws);
    free(own);
    return 0;
  }
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
    /* weight is NULL when dx is not wanted (autograd saves it only for dx): no offset on NULL */
    const float *wg = dx ? weight + (long)grp * g->Fg * g->Kc : NULL;  /* (Fg, Kc) */
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

static int backward_im2col(float *dx, float *dweight, float *dbias, const float *dy,
                           const float *x, const float *weight, const nnl_conv2d_dims *d,
                           float *ws, size_t ws_floats) {
  geom g;
  float *own;
  set_geom(d, &g);
  if (!dx && !dweight) {
    if (dbias) bias_backward(dbias, dy, d, g.P);
    return 0;
  }
  int T = take_ws(d, &g, dweight != NULL, &ws, &ws_floats, &own);
  if (T == 0) return -1;
  if (dweight && direct_ok(d, &g)) { /* dweight and dbias here; a dx below, through im2col */
    dgeom q;
    set_dgeom(d, &g, &q);
    direct_backward(dweight, dbias, dy, x, d, &g, &q, ws, T);
    dweight = dbias = NULL;
    if (!dx) {
      free(own);
      return 0;
    }
  }
  if (dbias) bias_backward(dbias, dy, d, g.P);
  if (grouped(d, &g)) {
    backward_groups(dx, dweight, dy, x, weight, d, &g, ws);
    free(own);
    return 0;
  }
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

/* dweight and dbias through im2col, then dx by Winograd where it is wanted: one scratch
 * (taken up front when the caller gave none) serves both, so once dweight is written nothing
 * below can run out of memory and break the nothing-written-on-failure contract. */
int nnl_conv2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, const nnl_conv2d_dims *d, float *ws,
                        size_t ws_floats) {
  if (!dx || !nnl_conv2d_winograd_wanted(d))
    return backward_im2col(dx, dweight, dbias, dy, x, weight, d, ws, ws_floats);
  float *own = NULL;
  if (ws == NULL) {
    ws_floats = nnl_conv2d_workspace_size(d, dweight != NULL, 0);
    ws = own = malloc(ws_floats * sizeof(float));
    if (!own) return backward_im2col(dx, dweight, dbias, dy, x, weight, d, NULL, 0);
  }
  int rc = 0;
  if (dweight || dbias) rc = backward_im2col(NULL, dweight, dbias, dy, x, weight, d, ws, ws_floats);
  if (rc == 0 && nnl_conv2d_winograd_backward(dx, dy, weight, d, ws, ws_floats) != 0)
    rc = backward_im2col(dx, NULL, NULL, dy, x, weight, d, ws, ws_floats);
  free(own);
  return rc;
}
