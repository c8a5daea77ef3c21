/* winograd.c — 3x3 stride-1 convs by Winograd F(m x m, 3x3) (Lavin & Gray 2016), m = 2 (or 4):
 * each m x m output tile from an (m+2)^2 input tile, (m+2)^2 multiplies per channel pair, not 9m^2. */
#include "spatial.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"

/* The K = (m+2)^2 products of a block of tiles are K independent gemms [Co x Ci] x [Ci x TB];
 * the transformed inputs V (K, Ci, TB) and products M (K, Co, TB) of one block are sized to stay
 * near a core's L2 between the input transform, the gemms and the output transform. Each thread
 * runs whole blocks, its gemms on one thread (nnl_sgemm does inside a parallel region). */
#ifndef NNL_WINO_BLOCK
#define NNL_WINO_BLOCK (1L << 16) /* floats of (Ci + Co) x TB that a block aims for */
#endif
#define WINO_MIN_TB 64 /* narrower gemms run badly whatever the cache does */

#if defined(__x86_64__) && defined(__GNUC__)
#define WINO_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define WINO_CLONES
#endif

/* One Winograd convolution: in (N, Ci, H, W) -> out (N, Co, OH, OW), pad on every side. */
typedef struct {
  int N, Ci, H, W, Co, pad, OH, OW;
  int m, a, K;  /* output tile m x m, input tile a x a (a = m + 2), K = a*a products */
  int tH, tW;   /* tiles down and across one output plane */
  long rows;    /* N*tH tile rows: the unit that blocks are made of */
  int RB;       /* tile rows per block */
  long TB;      /* tiles per full block, the row stride of V and M */
  int WB;       /* floats of one zero-padded input row: the m*tW + 2 columns the tiles read */
  size_t per;   /* floats of scratch per thread */
} wgeom;

int nnl_conv2d_winograd_fits(const nnl_conv2d_dims *d) {
  return d->KH == 3 && d->KW == 3 && d->stride_h == 1 && d->stride_w == 1 && d->dil_h == 1 &&
         d->dil_w == 1 && d->groups == 1 && d->pad_h == d->pad_w && d->pad_h >= 0 &&
         d->pad_h <= 2 && d->H + 2 * d->pad_h >= 3 && d->W + 2 * d->pad_w >= 3;
}

static long round16(long n) { return (n + 15) / 16 * 16; }

/* F(2x2, 3x3): its transforms only add and halve, so results stay within float rounding of
 * im2col's. F(4x4, 3x3) was measured too: errors ~17x larger (1e-5 relative per layer, past the
 * tests' tolerance) and no faster on ResNet's shapes, so it was dropped. */
#define WINO_M 2

static void set_wgeom(wgeom *g, int N, int Ci, int H, int W, int Co, int pad, int nthreads) {
  g->N = N, g->Ci = Ci, g->H = H, g->W = W, g->Co = Co, g->pad = pad;
  g->OH = H + 2 * pad - 2, g->OW = W + 2 * pad - 2;
  g->m = WINO_M, g->a = g->m + 2, g->K = g->a * g->a;
  g->tH = (g->OH + g->m - 1) / g->m, g->tW = (g->OW + g->m - 1) / g->m;
  g->rows = (long)N * g->tH;
  long tb = NNL_WINO_BLOCK / (Ci + Co);
  if (tb < WINO_MIN_TB) tb = WINO_MIN_TB;
  long rb = (tb + g->tW - 1) / g->tW;
  /* every thread gets a block, when there are enough rows for that */
  long fair = (g->rows + nthreads - 1) / nthreads;
  if (rb > fair) rb = fair;
  if (rb < 1) rb = 1;
  g->RB = (int)rb;
  g->TB = rb * g->tW;
  g->WB = g->m * g->tW + 2;
  g->per = (size_t)(round16((long)g->K * Ci * g->TB) + round16((long)g->K * Co * g->TB) +
                    round16((long)g->a * g->WB) + round16((long)g->m * g->m * g->tW));
}

static int wino_threads(const wgeom *g) {
  long blocks = (g->rows + g->RB - 1) / g->RB;
  double work = (double)g->K * g->Ci * g->Co * g->TB * blocks;
  int T = omp_get_max_threads();
  if (work <= NNL_PAR_MIN) T = 1;
  return blocks < T ? (int)blocks : T;
}

static size_t wino_need(const wgeom *g, int T) {
  return (size_t)round16((long)g->K * g->Co * g->Ci) + (size_t)T * g->per;
}

/* The geometry of the forward (backward 0) or of the data gradient (1), a full correlation of dy
 * with the flipped filters: F and C trade places, and the padding becomes 2 - pad. */
static void dims_wgeom(wgeom *g, const nnl_conv2d_dims *d, int backward, int nthreads) {
  int OH = d->H + 2 * d->pad_h - 2, OW = d->W + 2 * d->pad_w - 2;
  if (backward) set_wgeom(g, d->N, d->F, OH, OW, d->C, 2 - d->pad_h, nthreads);
  else set_wgeom(g, d->N, d->C, d->H, d->W, d->F, d->pad_h, nthreads);
}

/* The blocks are cut for omp_get_max_threads() whatever nthreads says, as the calls cut them:
 * so the size for one thread is the calls' true minimum. */
size_t nnl_conv2d_winograd_workspace_size(const nnl_conv2d_dims *d, int backward, int nthreads) {
  wgeom g;
  if (nthreads <= 0) nthreads = omp_get_max_threads();
  dims_wgeom(&g, d, backward, omp_get_max_threads());
  int T = wino_threads(&g);
  return wino_need(&g, T < nthreads ? T : nthreads);
}

/* ---- transforms ----
 * F(2x2, 3x3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5;
 * 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1]. Each 2-D transform is the 1-D one on the columns, then on the rows. */

/* U: (K, Co, Ci) <- G g G^T for every filter pair.
 * weight: (Co, Ci, 3, 3) read as is, or with flip: (Ci, Co, 3, 3) rotated 180 degrees.
 * In float over a contiguous run of Ci (the stores then stream; the factors are halves, so the
 * only rounding is in the sums). */
WINO_CLONES static void weight_transform(float *U, const float *weight, int Co, int Ci, int flip) {
  enum { IB = 64 }; /* a block of Ci: its 16 rows go out as whole runs (16 streams CC apart alias) */
  long CC = (long)Co * Ci;
#pragma omp parallel for schedule(static) if (CC * 16 > NNL_PAR_MIN)
  for (int o = 0; o < Co; o++)
    for (int i0 = 0; i0 < Ci; i0 += IB) {
      int n = Ci - i0 < IB ? Ci - i0 : IB;
      float gb[9][IB] __attribute__((aligned(64))), tb[12][IB] __attribute__((aligned(64)));
      float tmp[16][IB] __attribute__((aligned(64)));
      for (int j = 0; j < n; j++) { /* gb[r*3+c][j]: tap (r, c) of filter pair (o, i0+j) */
        const float *w = weight + (flip ? ((long)(i0 + j) * Co + o) * 9 : ((long)o * Ci + i0 + j) * 9);
        for (int q = 0; q < 9; q++) gb[q][j] = w[flip ? 8 - q : q];
      }
      for (int c = 0; c < 3; c++) /* columns: t = G g, tb[r*3+c] */
#pragma omp simd
        for (int j = 0; j < n; j++) {
          float g0 = gb[c][j], g1 = gb[3 + c][j], g2 = gb[6 + c][j];
          tb[c][j] = g0;
          tb[3 + c][j] = 0.5f * (g0 + g1 + g2);
          tb[6 + c][j] = 0.5f * (g0 - g1 + g2);
          tb[9 + c][j] = g2;
        }
      for (int r = 0; r < 4; r++) /* rows: U = t G^T */
#pragma omp simd
        for (int j = 0; j < n; j++) {
          float t0 = tb[r * 3][j], t1 = tb[r * 3 + 1][j], t2 = tb[r * 3 + 2][j];
          tmp[r * 4 + 0][j] = t0;
          tmp[r * 4 + 1][j] = 0.5f * (t0 + t1 + t2);
          tmp[r * 4 + 2][j] = 0.5f * (t0 - t1 + t2);
          tmp[r * 4 + 3][j] = t2;
        }
      for (int k = 0; k < 16; k++) memcpy(U + k * CC + (long)o * Ci + i0, tmp[k], sizeof(float) * n);
    }
}

/* Pads input rows m*th - pad .. m*th - pad + a-1 of xc: (H, W) into rb: (a, WB), zeros outside. */
static void pad_rows(float *rb, const float *xc, const wgeom *g, int th) {
  int WB = g->WB, p = g->pad, W = g->W;
  for (int i = 0; i < g->a; i++) {
    float *r = rb + i * WB;
    int ih = g->m * th - p + i;
    if (ih < 0 || ih >= g->H) {
      memset(r, 0, sizeof(float) * WB);
      continue;
    }
    memset(r, 0, sizeof(float) * p);
    memcpy(r + p, xc + (long)ih * W, sizeof(float) * W);
    memset(r + p + W, 0, sizeof(float) * (WB - p - W));
  }
}

/* V[k][tw] (rows ldk apart) <- (B^T d B)[k] for the tW tiles of one tile row of one channel;
 * rb: the tile row's a padded input rows, WB floats apart. */
WINO_CLONES static void input_row2(float *V, long ldk, const float *rb, int WB, int tW) {
  const float *r0 = rb, *r1 = rb + WB, *r2 = rb + 2 * WB, *r3 = rb + 3 * WB;
#pragma omp simd
  for (int tw = 0; tw < tW; tw++) {
    int j = 2 * tw;
    float t[4][4];
    for (int b = 0; b < 4; b++) {
      float d0 = r0[j + b], d1 = r1[j + b], d2 = r2[j + b], d3 = r3[j + b];
      t[0][b] = d0 - d2, t[1][b] = d1 + d2, t[2][b] = d2 - d1, t[3][b] = d1 - d3;
    }
    for (int a = 0; a < 4; a++) {
      V[(4 * a + 0) * ldk + tw] = t[a][0] - t[a][2];
      V[(4 * a + 1) * ldk + tw] = t[a][1] + t[a][2];
      V[(4 * a + 2) * ldk + tw] = t[a][2] - t[a][1];
      V[(4 * a + 3) * ldk + tw] = t[a][1] - t[a][3];
    }
  }
}

/* ob: (m, m*tW) <- A^T M A + b for the tW tiles of one tile row of one output channel,
 * M[k][tw] in rows ldk apart. */
WINO_CLONES static void output_row2(float *ob, const float *M, long ldk, float b, int tW) {
  float *o0 = ob, *o1 = ob + 2 * tW;
#pragma omp simd
  for (int tw = 0; tw < tW; tw++) {
    float s[2][4];
    for (int c = 0; c < 4; c++) {
      float m0 = M[(0 + c) * ldk + tw], m1 = M[(4 + c) * ldk + tw];
      float m2 = M[(8 + c) * ldk + tw], m3 = M[(12 + c) * ldk + tw];
      s[0][c] = m0 + m1 + m2, s[1][c] = m1 - m2 - m3;
    }
    o0[2 * tw] = s[0][0] + s[0][1] + s[0][2] + b;
    o0[2 * tw + 1] = s[0][1] - s[0][2] - s[0][3] + b;
    o1[2 * tw] = s[1][0] + s[1][1] + s[1][2] + b;
    o1[2 * tw + 1] = s[1][1] - s[1][2] - s[1][3] + b;
  }
}

/* Output rows m*th .. (those below OH) of yc: (OH, OW) = (or += with acc) ob: (m, m*tW). */
static void store_rows(float *yc, const float *ob, const wgeom *g, int th, int acc) {
  int n = g->m * g->tW;
  for (int i = 0; i < g->m && g->m * th + i < g->OH; i++) {
    float *yr = yc + (long)(g->m * th + i) * g->OW;
    const float *o = ob + i * n;
    if (acc) {
#pragma omp simd
      for (int w = 0; w < g->OW; w++) yr[w] += o[w];
    } else {
      memcpy(yr, o, sizeof(float) * g->OW);
    }
  }
}

/* One block: tile rows R0..R1-1 (over all images) through input transform, gemms, output. */
static void run_block(float *out, const float *in, const float *U, const float *bias,
                      const wgeom *g, long R0, long R1, float *tws, int acc) {
  long TB = g->TB, nt = (R1 - R0) * g->tW;
  long ldv = (long)g->Ci * TB, ldm = (long)g->Co * TB;
  float *V = tws, *M = V + round16(g->K * ldv);             /* (K, Ci, TB), (K, Co, TB) */
  float *rb = M + round16(g->K * ldm), *ob = rb + round16((long)g->a * g->WB);
  long HW = (long)g->H * g->W, OP = (long)g->OH * g->OW;
  for (long R = R0; R < R1; R++) {
    int n = (int)(R / g->tH), th = (int)(R % g->tH);
    float *v = V + (R - R0) * g->tW;
    for (int c = 0; c < g->Ci; c++) {
      pad_rows(rb, in + ((long)n * g->Ci + c) * HW, g, th);
      input_row2(v + (long)c * TB, ldv, rb, g->WB, g->tW);
    }
  }
  for (int k = 0; k < g->K; k++)
    nnl_sgemm(0, 0, g->Co, (int)nt, g->Ci, 1.0f, U + (long)k * g->Co * g->Ci, g->Ci,
              V + k * ldv, (int)TB, 0.0f, M + k * ldm, (int)TB);
  for (long R = R0; R < R1; R++) {
    int n = (int)(R / g->tH), th = (int)(R % g->tH);
    const float *mr = M + (R - R0) * g->tW;
    for (int f = 0; f < g->Co; f++) {
      float b = bias ? bias[f] : 0.0f;
      output_row2(ob, mr + (long)f * TB, ldm, b, g->tW);
      store_rows(out + ((long)n * g->Co + f) * OP, ob, g, th, acc);
    }
  }
}

/* out (N, Co, OH, OW) = (or += with acc) the convolution of in (N, Ci, H, W) by U, plus bias. */
static int wino_run(float *out, const float *in, const float *weight, const float *bias,
                    const wgeom *g, int flip, int acc, float *ws, size_t ws_floats) {
  int T = wino_threads(g);
  float *own = NULL;
  if (ws == NULL) {
    ws_floats = wino_need(g, T);
    ws = own = malloc(ws_floats * sizeof(float));
    if (!own) return -1;
  }
  while (T > 1 && wino_need(g, T) > ws_floats) T--;
  if (wino_need(g, T) > ws_floats) return -1;
  float *U = ws, *tws = ws + round16((long)g->K * g->Co * g->Ci);
  weight_transform(U, weight, g->Co, g->Ci, flip);
  long blocks = (g->rows + g->RB - 1) / g->RB;
#pragma omp parallel num_threads(T)
  {
    float *mine = tws + (size_t)omp_get_thread_num() * g->per;
#pragma omp for schedule(static)
    for (long b = 0; b < blocks; b++) {
      long R1 = (b + 1) * g->RB < g->rows ? (b + 1) * g->RB : g->rows;
      run_block(out, in, U, bias, g, b * g->RB, R1, mine, acc);
    }
  }
  free(own);
  return 0;
}

int nnl_conv2d_winograd_forward(float *y, const float *x, const float *weight, const float *bias,
                                const nnl_conv2d_dims *d, float *ws, size_t ws_floats) {
  wgeom g;
  dims_wgeom(&g, d, 0, omp_get_max_threads());
  return wino_run(y, x, weight, bias, &g, 0, 0, ws, ws_floats);
}

int nnl_conv2d_winograd_backward(float *dx, const float *dy, const float *weight,
                                 const nnl_conv2d_dims *d, float *ws, size_t ws_floats) {
  wgeom g;
  dims_wgeom(&g, d, 1, omp_get_max_threads());
  return wino_run(dx, dy, weight, NULL, &g, 1, 1, ws, ws_floats);
}

/* ---- when nnl_conv2d_forward and nnl_conv2d_backward use it ---- */

/* F(2x2, 3x3) against im2col + sgemm (bench/winograd_conv.c, batch 8, CPU time): 10-25% faster
 * for 128 channels on 28x28 and a little for 256 on 14x14; slower for 64 channels on 56x56 (the
 * gemms' K = 64 is too short to run at speed) and for 512 on 7x7 (a 4x4 grid of 2x2 tiles pads
 * 49 outputs to 64, and the transformed weights outweigh the 8 images). */
#define WINO_MIN_C 96
#define WINO_MIN_PLANE 12
#define WINO_MAX_PLANE 1024

/* NNL_CONV_WINOGRAD=0 keeps every conv on im2col (read once; a benign race: all read the same) */
static int wino_on(void) {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("NNL_CONV_WINOGRAD");
    on = !(e && strcmp(e, "0") == 0);
  }
  return on;
}

int nnl_conv2d_winograd_wanted(const nnl_conv2d_dims *d) {
  if (!nnl_conv2d_winograd_fits(d) || d->C < WINO_MIN_C || d->F < WINO_MIN_C) return 0;
  int OH = d->H + 2 * d->pad_h - 2, OW = d->W + 2 * d->pad_w - 2;
  return OH >= WINO_MIN_PLANE && OW >= WINO_MIN_PLANE && (long)OH * OW <= WINO_MAX_PLANE &&
         wino_on();
}
