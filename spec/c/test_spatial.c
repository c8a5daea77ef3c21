/* test_spatial.c — the spatial kernels: im2col+sgemm conv against the course-formula reference,
 * pools and batch norm against central differences, and values from PyTorch 1.13. Exit 1 on failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spatial.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static int failures;

/* ---- data ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return (float)((double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *alloc(long n) {
  float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
  if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
  return p;
}
static float *rnd(long n) {
  float *p = alloc(n);
  for (long i = 0; i < n; i++) p[i] = frand();
  return p;
}
static float *copy(const float *a, long n) {
  float *p = alloc(n);
  memcpy(p, a, sizeof(float) * n);
  return p;
}
/* The same deterministic values the PyTorch fixtures were made from. */
static void fill_sin(float *p, long n, double off, double scale) {
  for (long i = 0; i < n; i++) p[i] = (float)(sin(0.37 * (i + off) + 0.1) * scale);
}

/* ---- comparisons ---- */

typedef struct { double abs, rel; } diff;

/* got ~ want when |got - want| <= atol + rtol*|want| everywhere; d gets the largest differences. */
static int approx(const char *what, const float *got, const float *want, long n, double atol,
                 double rtol, diff *d) {
  diff m = {0, 0};
  long bad = -1;
  for (long i = 0; i < n; i++) {
    double a = fabs((double)got[i] - want[i]), r = a / fmax(fabs(want[i]), 1e-6);
    if (isnan(got[i]) != isnan(want[i])) a = r = INFINITY;
    if (isnan(a)) a = r = 0; /* both NaN */
    if (a > m.abs) m.abs = a;
    if (r > m.rel) m.rel = r;
    if (a > atol + rtol * fabs(want[i]) && bad < 0) bad = i;
  }
  if (d) *d = m;
  if (bad >= 0) {
    printf("FAIL %s: element %ld is %.7g, expected %.7g (max abs %.3g, max rel %.3g)\n", what, bad,
           got[bad], want[bad], m.abs, m.rel);
    failures++;
  }
  return bad < 0;
}

typedef double (*lossfn)(void *ctx);

/* Central differences of f (a double sum over a float forward) against the analytic gradient g,
 * in every element of p (every step-th one for large p, to stay fast). The step actually taken
 * in float is used as the denominator. */
static void gradcheck(const char *what, lossfn f, void *ctx, float *p, const float *g, long n,
                      double eps, double atol, double rtol) {
  long step = n / 400 + 1, m = 0;
  float *num = alloc(n), *ana = alloc(n);
  for (long i = 0; i < n; i += step, m++) {
    float save = p[i], hi = (float)(save + eps), lo = (float)(save - eps);
    p[i] = hi;
    double fp = f(ctx);
    p[i] = lo;
    double fm = f(ctx);
    p[i] = save;
    num[m] = (float)((fp - fm) / ((double)hi - lo));
    ana[m] = g[i];
  }
  diff d;
  if (approx(what, ana, num, m, atol, rtol, &d))
    printf("ok   %-44s max abs %.2e  max rel %.2e\n", what, d.abs, d.rel);
  free(num), free(ana);
}

/* The analytic gradient minus the prior contents of the buffer: checks backward adds (+=). */
static float *added(const float *after, const float *prior, long n) {
  float *p = alloc(n);
  for (long i = 0; i < n; i++) p[i] = after[i] - prior[i];
  return p;
}

static double dot(const float *a, const float *b, long n) {
  double s = 0;
  for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* ---- convolution: fast against reference ---- */

typedef struct { int N, C, H, W, F, KH, KW, sh, sw, ph, pw, dh, dw, g; } shape;

static const shape shapes[] = {
    {2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},    {3, 4, 7, 9, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {2, 4, 7, 9, 6, 1, 1, 2, 2, 0, 0, 1, 1, 2},    {2, 2, 10, 7, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1},
    {3, 6, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 3},    {2, 4, 11, 11, 4, 3, 3, 1, 1, 2, 2, 2, 2, 4},
    {4, 1, 28, 28, 8, 7, 7, 1, 1, 3, 3, 1, 1, 1},  {2, 3, 13, 10, 5, 5, 3, 3, 2, 2, 1, 1, 2, 1},
    {1, 5, 6, 6, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1},    {5, 2, 5, 5, 3, 5, 5, 1, 1, 0, 0, 1, 1, 1},
    {2, 3, 4, 4, 2, 3, 3, 2, 2, 2, 2, 1, 1, 1},    {3, 8, 6, 5, 8, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    {2, 4, 9, 9, 6, 3, 3, 2, 2, 1, 1, 3, 1, 2},    {2, 6, 8, 8, 4, 2, 2, 2, 2, 0, 0, 1, 1, 2},
    {6, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},  {2, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {2, 8, 7, 7, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1},   {3, 4, 15, 6, 2, 4, 1, 1, 3, 0, 0, 2, 1, 1},
    {2, 2, 9, 9, 4, 3, 3, 4, 4, 4, 4, 1, 1, 2},    {7, 3, 5, 8, 6, 2, 3, 1, 2, 1, 1, 1, 1, 3},
    {2, 4, 3, 3, 4, 3, 3, 1, 1, 1, 1, 2, 2, 1},    {4, 64, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {3, 2, 1, 9, 4, 1, 3, 1, 1, 0, 1, 1, 1, 2},    {5, 12, 10, 10, 12, 3, 3, 1, 1, 1, 1, 1, 1, 12},
    /* planes of 1024 outputs and more: one image at a time in bands of rows */
    {2, 4, 40, 45, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},  {3, 3, 70, 33, 4, 5, 3, 2, 1, 2, 1, 1, 1, 1},
    /* small planes: several images side by side in one gemm (ResNet's 7x7 and strided 1x1s),
     * and a batch split into two such groups (5 images of 64x28x28 columns) */
    {8, 16, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},  {4, 8, 15, 15, 16, 1, 1, 2, 2, 0, 0, 1, 1, 1},
    {3, 8, 9, 9, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1},    {5, 64, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    /* 3x3 stride 1 with >= 96 channels on a >= 12x12 plane: Winograd for y and dx, im2col for dw */
    {2, 96, 13, 12, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static nnl_conv2d_dims dims_of(const shape *s) {
  nnl_conv2d_dims d = {s->N, s->C, s->H, s->W, s->F, s->KH, s->KW, s->sh, s->sw,
                       s->ph, s->pw, s->dh, s->dw, s->g};
  return d;
}

/* wsmode 0: ws NULL (the kernel allocates), 1: the full size, 2: the one-thread minimum.
 * which: bit 0 dx, bit 1 dweight, bit 2 dbias. */
static void conv_case(int id, const shape *s, int wsmode, int which) {
  nnl_conv2d_dims d = dims_of(s);
  int OH = nnl_conv_out_size(s->H, s->KH, s->sh, s->ph, s->dh);
  int OW = nnl_conv_out_size(s->W, s->KW, s->sw, s->pw, s->dw);
  long nx = (long)s->N * s->C * s->H * s->W, nw = (long)s->F * (s->C / s->g) * s->KH * s->KW;
  long ny = (long)s->N * s->F * OH * OW;
  float *x = rnd(nx), *w = rnd(nw), *b = rnd(s->F), *dy = rnd(ny);
  float *y = alloc(ny), *yr = alloc(ny);
  float *pdx = rnd(nx), *pdw = rnd(nw), *pdb = rnd(s->F); /* gradients already there */
  float *dx = copy(pdx, nx), *dw = copy(pdw, nw), *db = copy(pdb, s->F);
  float *dxr = copy(pdx, nx), *dwr = copy(pdw, nw), *dbr = copy(pdb, s->F);
  size_t nf = nnl_conv2d_workspace_size(&d, 0, wsmode == 2 ? 1 : 0);
  size_t nb = nnl_conv2d_workspace_size(&d, 1, wsmode == 2 ? 1 : 0);
  float *ws = wsmode ? alloc((long)(nf > nb ? nf : nb)) : NULL;
  char what[160];
  snprintf(what, sizeof what, "conv %2d N%d C%d %dx%d F%d k%dx%d s%d,%d p%d,%d d%d,%d g%d",
                   id, s->N, s->C, s->H, s->W, s->F, s->KH, s->KW, s->sh, s->sw, s->ph, s->pw,
                   s->dh, s->dw, s->g);
  if (nnl_conv2d_forward(y, x, w, b, &d, ws, nf) != 0) {
    printf("FAIL %s: forward returned -1\n", what);
    failures++;
  }
  nnl_conv2d_forward_ref(yr, x, w, b, &d);
  if (nnl_conv2d_backward(which & 1 ? dx : NULL, which & 2 ? dw : NULL, which & 4 ? db : NULL, dy,
                          x, w, &d, ws, nb) != 0) {
    printf("FAIL %s: backward returned -1\n", what);
    failures++;
  }
  nnl_conv2d_backward_ref(dxr, dwr, dbr, dy, x, w, &d);
  /* sgemm sums in float, the reference in double: allow float rounding of sums of ~K terms */
  diff e[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  int ok = approx(what, y, yr, ny, 2e-5, 2e-5, &e[0]);
  if (which & 1) ok &= approx(what, dx, dxr, nx, 2e-5, 2e-5, &e[1]);
  else ok &= approx(what, dx, pdx, nx, 0, 0, NULL); /* NULL: untouched buffer stays as it was */
  if (which & 2) ok &= approx(what, dw, dwr, nw, 1e-4, 2e-5, &e[2]);
  if (which & 4) ok &= approx(what, db, dbr, s->F, 1e-4, 2e-5, &e[3]);
  if (ok)
    printf("ok   %-48s ws%d y %.1e dx %.1e dw %.1e db %.1e\n", what, wsmode, e[0].abs, e[1].abs,
           e[2].abs, e[3].abs);
  free(x), free(w), free(b), free(dy), free(y), free(yr), free(pdx), free(pdw), free(pdb);
  free(dx), free(dw), free(db), free(dxr), free(dwr), free(dbr), free(ws);
}

static void test_conv(void) {
  for (int i = 0; i < NSHAPES; i++) conv_case(i, &shapes[i], i % 3, 7);
  /* parts of the backward, and other thread counts (uneven image splits, private dW sums) */
  conv_case(0, &shapes[0], 1, 1);
  conv_case(14, &shapes[14], 0, 2);
  conv_case(16, &shapes[16], 1, 5);
  conv_case(21, &shapes[21], 0, 4);
#ifdef _OPENMP
  int keep = omp_get_max_threads();
  for (int t = 1; t <= 3; t += 2) {
    omp_set_num_threads(t);
    printf("     (%d threads)\n", t);
    conv_case(14, &shapes[14], 0, 7);
    conv_case(19, &shapes[19], 1, 7);
    conv_case(21, &shapes[21], 1, 3);
  }
  omp_set_num_threads(keep);
#endif
  /* a workspace below the one-thread minimum is refused, not overrun */
  nnl_conv2d_dims d = dims_of(&shapes[0]);
  float z[1];
  size_t min = nnl_conv2d_workspace_size(&d, 0, 1);
  if (min == 0 || nnl_conv2d_forward(z, z, z, NULL, &d, z, min - 1) != -1) {
    printf("FAIL conv: a short workspace was not refused\n");
    failures++;
  }
}

/* ---- Winograd F(2x2, 3x3) against the reference ---- */

typedef struct { int N, C, H, W, F, pad, bias; } wshape;

/* wsmode 0: ws NULL, 1: the full size, 2: one float short of the one-thread minimum (refused,
 * nothing written). dx starts random: the data gradient must add onto it. */
static void wino_case(const wshape *s, int wsmode) {
  nnl_conv2d_dims d = {s->N, s->C, s->H, s->W, s->F, 3, 3, 1, 1, s->pad, s->pad, 1, 1, 1};
  int OH = s->H + 2 * s->pad - 2, OW = s->W + 2 * s->pad - 2;
  long nx = (long)s->N * s->C * s->H * s->W, ny = (long)s->N * s->F * OH * OW;
  float *x = rnd(nx), *w = rnd((long)s->F * s->C * 9), *b = s->bias ? rnd(s->F) : NULL;
  float *dy = rnd(ny), *y = rnd(ny), *yr = alloc(ny), *y0 = copy(y, ny);
  float *dx = rnd(nx), *dxr = copy(dx, nx), *dx0 = copy(dx, nx);
  char what[160];
  snprintf(what, sizeof what, "winograd N%d C%d %dx%d F%d p%d%s ws%d", s->N, s->C, s->H, s->W, s->F,
           s->pad, s->bias ? " bias" : "", wsmode);
  if (!nnl_conv2d_winograd_fits(&d)) {
    printf("FAIL %s: does not fit\n", what);
    failures++;
  }
  size_t nf = nnl_conv2d_winograd_workspace_size(&d, 0, wsmode == 2 ? 1 : 0);
  size_t nb = nnl_conv2d_winograd_workspace_size(&d, 1, wsmode == 2 ? 1 : 0);
  float *ws = wsmode ? alloc((long)(nf > nb ? nf : nb)) : NULL;
  int rf = nnl_conv2d_winograd_forward(y, x, w, b, &d, ws, wsmode == 2 ? nf - 1 : nf);
  int rb = nnl_conv2d_winograd_backward(dx, dy, w, &d, ws, wsmode == 2 ? nb - 1 : nb);
  if (wsmode == 2) {
    if (rf != -1 || rb != -1) {
      printf("FAIL %s: a short workspace was not refused\n", what);
      failures++;
    }
    approx(what, y, y0, ny, 0, 0, NULL);
    approx(what, dx, dx0, nx, 0, 0, NULL);
  } else {
    if (rf || rb) {
      printf("FAIL %s: returned %d, %d\n", what, rf, rb);
      failures++;
    }
    nnl_conv2d_forward_ref(yr, x, w, b, &d);
    nnl_conv2d_backward_ref(dxr, NULL, NULL, dy, x, w, &d);
    diff e[2] = {{0, 0}, {0, 0}};
    /* the transforms add a few roundings to im2col's: still float rounding of ~9*C terms */
    if (approx(what, y, yr, ny, 3e-5, 3e-5, &e[0]) & approx(what, dx, dxr, nx, 3e-5, 3e-5, &e[1]))
      printf("ok   %-48s y %.1e dx %.1e\n", what, e[0].abs, e[1].abs);
  }
  free(x), free(w), free(b), free(dy), free(y), free(yr), free(y0), free(dx), free(dxr), free(dx0);
  free(ws);
}

static void test_winograd(void) {
  static const wshape ws[] = {
      {1, 5, 7, 7, 3, 1, 1},     {5, 17, 9, 13, 19, 1, 0},  {2, 3, 1, 1, 4, 1, 1},
      {1, 16, 2, 3, 20, 1, 1},   {5, 20, 7, 7, 33, 1, 0},   {2, 8, 9, 13, 6, 0, 1},
      {3, 6, 5, 4, 7, 2, 0},     {1, 4, 3, 3, 5, 0, 1},     {2, 70, 14, 14, 40, 1, 1},
      {5, 33, 28, 30, 17, 1, 1},
  };
  int n = (int)(sizeof ws / sizeof ws[0]);
  for (int i = 0; i < n; i++) wino_case(&ws[i], i % 2);
  wino_case(&ws[1], 2);
  wino_case(&ws[8], 2);
#ifdef _OPENMP
  int keep = omp_get_max_threads();
  for (int t = 1; t <= 3; t += 2) {
    omp_set_num_threads(t);
    printf("     (%d threads)\n", t);
    wino_case(&ws[4], 1);
    wino_case(&ws[9], 0);
  }
  omp_set_num_threads(keep);
#endif
  /* the shapes it does not take */
  nnl_conv2d_dims no[] = {{1, 4, 8, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1}, {1, 4, 8, 8, 4, 3, 3, 1, 1, 3, 3, 1, 1, 1},
                          {1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 2, 2, 1}, {1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2},
                          {1, 4, 8, 8, 4, 3, 5, 1, 1, 1, 1, 1, 1, 1}, {1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 0, 1, 1, 1}};
  for (int i = 0; i < (int)(sizeof no / sizeof no[0]); i++)
    if (nnl_conv2d_winograd_fits(&no[i])) {
      printf("FAIL winograd: shape %d should not fit\n", i);
      failures++;
    }
}

/* The reference itself against central differences of the reference forward. */
typedef struct { nnl_conv2d_dims d; float *x, *w, *b, *y, *r; long ny; } conv_ctx;

static double conv_loss(void *p) {
  conv_ctx *c = p;
  nnl_conv2d_forward_ref(c->y, c->x, c->w, c->b, &c->d);
  return dot(c->y, c->r, c->ny);
}

static void test_conv_ref_numeric(void) {
  static const shape s[] = {{2, 2, 6, 5, 2, 3, 2, 1, 1, 0, 0, 1, 1, 1},
                            {2, 4, 7, 6, 4, 3, 3, 2, 1, 1, 2, 1, 2, 2}};
  for (int k = 0; k < 2; k++) {
    conv_ctx c = {dims_of(&s[k]), 0, 0, 0, 0, 0, 0};
    int OH = nnl_conv_out_size(s[k].H, s[k].KH, s[k].sh, s[k].ph, s[k].dh);
    int OW = nnl_conv_out_size(s[k].W, s[k].KW, s[k].sw, s[k].pw, s[k].dw);
    long nx = (long)s[k].N * s[k].C * s[k].H * s[k].W;
    long nw = (long)s[k].F * (s[k].C / s[k].g) * s[k].KH * s[k].KW;
    c.ny = (long)s[k].N * s[k].F * OH * OW;
    c.x = rnd(nx), c.w = rnd(nw), c.b = rnd(s[k].F), c.y = alloc(c.ny), c.r = rnd(c.ny);
    float *dx = alloc(nx), *dw = alloc(nw), *db = alloc(s[k].F);
    nnl_conv2d_backward_ref(dx, dw, db, c.r, c.x, c.w, &c.d);
    char what[64];
    snprintf(what, sizeof what, "conv_ref %d numeric dx", k);
    gradcheck(what, conv_loss, &c, c.x, dx, nx, 1e-2, 2e-3, 1e-3);
    snprintf(what, sizeof what, "conv_ref %d numeric dweight", k);
    gradcheck(what, conv_loss, &c, c.w, dw, nw, 1e-2, 2e-3, 1e-3);
    snprintf(what, sizeof what, "conv_ref %d numeric dbias", k);
    gradcheck(what, conv_loss, &c, c.b, db, s[k].F, 1e-2, 2e-3, 1e-3);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
  }
}

/* ---- pooling ---- */

enum { MAXP, AVGP, ADAPT };
typedef struct {
  int kind;
  nnl_pool2d_dims d;
  int OH, OW, include_pad, divisor;
  float *x, *y, *r;
  int64_t *ind;
  long ny;
} pool_ctx;

static void pool_forward(pool_ctx *c) {
  if (c->kind == MAXP) nnl_max_pool2d_forward(c->y, c->ind, c->x, &c->d);
  else if (c->kind == AVGP) nnl_avg_pool2d_forward(c->y, c->x, &c->d, c->include_pad, c->divisor);
  else nnl_adaptive_avg_pool2d_forward(c->y, c->x, c->d.N, c->d.C, c->d.H, c->d.W, c->OH, c->OW);
}
static double pool_loss(void *p) {
  pool_ctx *c = p;
  pool_forward(c);
  return dot(c->y, c->r, c->ny);
}

/* Plain max pooling to compare values and indices with (NaN wins, first maximum kept). */
static void maxpool_naive(float *y, int64_t *ind, const float *x, const nnl_pool2d_dims *d, int OH,
                          int OW) {
  for (long pl = 0; pl < (long)d->N * d->C; pl++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float m = -INFINITY;
        int64_t mi = -1;
        for (int i = 0; i < d->KH; i++)
          for (int j = 0; j < d->KW; j++) {
            int h = oh * d->stride_h - d->pad_h + i * d->dil_h;
            int w = ow * d->stride_w - d->pad_w + j * d->dil_w;
            if (h < 0 || h >= d->H || w < 0 || w >= d->W) continue;
            float v = x[pl * d->H * d->W + h * d->W + w];
            if (mi < 0 || v > m || isnan(v)) m = v, mi = h * d->W + w;
          }
        y[(pl * OH + oh) * OW + ow] = m;
        ind[(pl * OH + oh) * OW + ow] = mi;
      }
}

static void pool_case(const char *name, int kind, nnl_pool2d_dims d, int OH, int OW, int include_pad,
                      int divisor) {
  pool_ctx c = {kind, d, OH, OW, include_pad, divisor, 0, 0, 0, 0, 0};
  if (kind != ADAPT) {
    c.OH = nnl_conv_out_size(d.H, d.KH, d.stride_h, d.pad_h, d.dil_h);
    c.OW = nnl_conv_out_size(d.W, d.KW, d.stride_w, d.pad_w, d.dil_w);
  }
  long nx = (long)d.N * d.C * d.H * d.W;
  c.ny = (long)d.N * d.C * c.OH * c.OW;
  c.x = alloc(nx), c.y = alloc(c.ny), c.r = rnd(c.ny);
  c.ind = calloc((size_t)c.ny, sizeof(int64_t));
  /* distinct values 0.05 apart, shuffled: a step of 1e-3 never changes which one is the max */
  for (long i = 0; i < nx; i++) c.x[i] = 0.05f * (float)(i - nx / 2);
  for (long i = nx - 1; i > 0; i--) {
    long j = (long)((frand() + 1.0f) * 0.5f * (float)(i + 1)) % (i + 1);
    float t = c.x[i];
    c.x[i] = c.x[j], c.x[j] = t;
  }
  pool_forward(&c);
  if (kind == MAXP) { /* values and indices against the naive loop, NaNs included */
    float *yn = alloc(c.ny);
    int64_t *in = calloc((size_t)c.ny, sizeof(int64_t));
    float *xn = copy(c.x, nx);
    xn[nx / 3] = NAN;
    float *yk = alloc(c.ny);
    int64_t *ik = calloc((size_t)c.ny, sizeof(int64_t));
    nnl_max_pool2d_forward(yk, ik, xn, &d);
    maxpool_naive(yn, in, xn, &d, c.OH, c.OW);
    long badi = 0;
    for (long i = 0; i < c.ny; i++) badi += ik[i] != in[i];
    char what[96];
    snprintf(what, sizeof what, "%s forward vs naive (with a NaN)", name);
    if (approx(what, yk, yn, c.ny, 0, 0, NULL) && badi == 0) printf("ok   %s\n", what);
    else if (badi) printf("FAIL %s: %ld indices differ\n", what, badi), failures++;
    free(yn), free(in), free(xn), free(yk), free(ik);
  }
  float *prior = rnd(nx), *dx = copy(prior, nx);
  if (kind == MAXP) nnl_max_pool2d_backward(dx, c.r, c.ind, &d);
  else if (kind == AVGP) nnl_avg_pool2d_backward(dx, c.r, &d, include_pad, divisor);
  else nnl_adaptive_avg_pool2d_backward(dx, c.r, d.N, d.C, d.H, d.W, OH, OW);
  float *g = added(dx, prior, nx);
  char what[96];
  snprintf(what, sizeof what, "%s numeric dx", name);
  gradcheck(what, pool_loss, &c, c.x, g, nx, 1e-3, 1e-3, 1e-3);
  free(c.x), free(c.y), free(c.r), free(c.ind), free(prior), free(dx), free(g);
}

static void test_pool(void) {
  nnl_pool2d_dims d;
#define POOL(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw) \
  (d = (nnl_pool2d_dims){n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw})
  pool_case("max 2x2 s2 (fast path)", MAXP, POOL(2, 3, 6, 8, 2, 2, 2, 2, 0, 0, 1, 1), 0, 0, 0, 0);
  pool_case("max 2x2 s2 odd 7x5", MAXP, POOL(2, 2, 7, 5, 2, 2, 2, 2, 0, 0, 1, 1), 0, 0, 0, 0);
  pool_case("max 2x2 s2 big (threads)", MAXP, POOL(4, 8, 32, 30, 2, 2, 2, 2, 0, 0, 1, 1), 0, 0, 0, 0);
  pool_case("max 3x3 s2 p1", MAXP, POOL(2, 2, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1), 0, 0, 0, 0);
  pool_case("max 3x2 s(2,1) p(1,1) d(1,2)", MAXP, POOL(1, 3, 6, 7, 3, 2, 2, 1, 1, 1, 1, 2), 0, 0, 0, 0);
  pool_case("max 2x2 s1 overlapping", MAXP, POOL(2, 2, 5, 6, 2, 2, 1, 1, 0, 0, 1, 1), 0, 0, 0, 0);
  pool_case("avg 2x2 s2", AVGP, POOL(2, 3, 6, 8, 2, 2, 2, 2, 0, 0, 1, 1), 0, 0, 1, 0);
  pool_case("avg 3x3 s2 p1 include_pad", AVGP, POOL(2, 2, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1), 0, 0, 1, 0);
  pool_case("avg 3x3 s2 p1 exclude_pad", AVGP, POOL(2, 2, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1), 0, 0, 0, 0);
  pool_case("avg 3x2 s(1,2) p(1,0) divisor 5", AVGP, POOL(1, 2, 5, 7, 3, 2, 1, 2, 1, 0, 1, 1), 0, 0, 1, 5);
  pool_case("adaptive 7x5 -> 3x2", ADAPT, POOL(2, 3, 7, 5, 0, 0, 0, 0, 0, 0, 0, 0), 3, 2, 0, 0);
  pool_case("adaptive 5x6 -> 1x1 (global)", ADAPT, POOL(2, 3, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0), 1, 1, 0, 0);
  pool_case("adaptive 3x4 -> 5x7 (overlap)", ADAPT, POOL(1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0), 5, 7, 0, 0);
#undef POOL
}

/* The 3x3 stride-2 pad-1 fast path against the naive loop on sizes around its 16-wide steps:
 * values from a few integers (ties everywhere), -inf (whole windows of it too) and NaNs.
 * Gradients are integers, so every order of summation gives the same bits. */
static void maxpool_3x3s2_case(int N, int C, int H, int W, int seed) {
  nnl_pool2d_dims d = {N, C, H, W, 3, 3, 2, 2, 1, 1, 1, 1};
  int OH = nnl_conv_out_size(H, 3, 2, 1, 1), OW = nnl_conv_out_size(W, 3, 2, 1, 1);
  long nx = (long)N * C * H * W, ny = (long)N * C * OH * OW, badv = 0, badi = 0, badg = 0;
  float *x = alloc(nx), *y = alloc(ny), *yn = alloc(ny), *dy = alloc(ny);
  int64_t *ind = calloc((size_t)ny, sizeof(int64_t)), *in = calloc((size_t)ny, sizeof(int64_t));
  for (long i = 0; i < nx; i++) {
    float r = frand();
    x[i] = r < -0.9f ? -INFINITY : r > 0.97f ? NAN : (float)(int)(3.0f * frand());
  }
  if (seed % 2 && nx >= (long)H * W) /* the first plane all -inf */
    for (long i = 0; i < (long)H * W; i++) x[i] = -INFINITY;
  for (long i = 0; i < ny; i++) dy[i] = (float)(int)(8.0f * frand());
  nnl_max_pool2d_forward(y, ind, x, &d);
  maxpool_naive(yn, in, x, &d, OH, OW);
  for (long i = 0; i < ny; i++) {
    badv += !(y[i] == yn[i] || (isnan(y[i]) && isnan(yn[i])));
    badi += ind[i] != in[i];
  }
  float *dx = alloc(nx), *want = alloc(nx), *prior = alloc(nx);
  for (int acc = 0; acc < 2; acc++) {
    for (long i = 0; i < nx; i++) prior[i] = (float)(int)(4.0f * frand());
    for (long i = 0; i < nx; i++) dx[i] = acc ? prior[i] : NAN, want[i] = acc ? prior[i] : 0.0f;
    for (long pl = 0; pl < (long)N * C; pl++)
      for (long o = 0; o < (long)OH * OW; o++) want[pl * H * W + in[pl * OH * OW + o]] += dy[pl * OH * OW + o];
    if (acc) nnl_max_pool2d_backward(dx, dy, ind, &d);
    else nnl_max_pool2d_backward_into(dx, dy, ind, &d);
    for (long i = 0; i < nx; i++) badg += dx[i] != want[i];
  }
  char what[96];
  snprintf(what, sizeof what, "max 3x3 s2 p1 fast path N%d C%d %dx%d", N, C, H, W);
  if (badv || badi || badg)
    printf("FAIL %s: %ld values, %ld indices, %ld gradients differ\n", what, badv, badi, badg), failures++;
  else printf("ok   %s (ties, -inf, NaN; dx stored and added)\n", what);
  free(x), free(y), free(yn), free(dy), free(ind), free(in), free(dx), free(want), free(prior);
}

static void test_maxpool_3x3s2(void) {
  static const int hw[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {4, 5}, {7, 7}, {8, 9},
                              {31, 32}, {32, 33}, {33, 34}, {35, 65}, {17, 64}, {12, 96}, {9, 97}};
  for (int i = 0; i < (int)(sizeof hw / sizeof hw[0]); i++) maxpool_3x3s2_case(2, 3, hw[i][0], hw[i][1], i);
  maxpool_3x3s2_case(2, 8, 64, 64, 1); /* enough work for threads */
  maxpool_3x3s2_case(1, 2, 112, 111, 0);
}

/* ---- batch norm ---- */

typedef struct {
  int train, N, C, inner;
  float *x, *w, *b, *rm, *rv, *y, *r;
} bn_ctx;

static double bn_loss(void *p) {
  bn_ctx *c = p;
  long n = (long)c->N * c->C * c->inner;
  if (c->train)
    nnl_batchnorm_forward_train(c->y, NULL, NULL, NULL, NULL, c->x, c->w, c->b, c->N, c->C,
                                c->inner, 0.1, 1e-5);
  else
    nnl_batchnorm_forward_eval(c->y, c->x, c->rm, c->rv, c->w, c->b, c->N, c->C, c->inner, 1e-5);
  return dot(c->y, c->r, n);
}

static void bn_case(int train, int N, int C, int inner, int affine) {
  long n = (long)N * C * inner;
  bn_ctx c = {train, N, C, inner, rnd(n), affine ? rnd(C) : NULL, affine ? rnd(C) : NULL,
              rnd(C), rnd(C), alloc(n), rnd(n)};
  for (int i = 0; i < C; i++) c.rv[i] = 0.5f + 0.5f * (c.rv[i] + 1.0f);
  for (long i = 0; i < n; i++) c.x[i] = 2.0f * c.x[i] + 0.5f; /* off-centre, not unit scale */
  float *mean = alloc(C), *invstd = alloc(C), *rm = copy(c.rm, C), *rv = copy(c.rv, C);
  char what[96];
  const char *mode = train ? "train" : "eval";
  if (train) { /* statistics and the running update against a double computation */
    nnl_batchnorm_forward_train(c.y, mean, invstd, rm, rv, c.x, c.w, c.b, N, C, inner, 0.1, 1e-5);
    float *want = alloc(4L * C), *got = alloc(4L * C);
    for (int ch = 0; ch < C; ch++) {
      double s = 0, ss = 0;
      long m = (long)N * inner;
      for (int k = 0; k < N; k++)
        for (int i = 0; i < inner; i++) s += c.x[((long)k * C + ch) * inner + i];
      for (int k = 0; k < N; k++)
        for (int i = 0; i < inner; i++)
          ss += pow(c.x[((long)k * C + ch) * inner + i] - s / m, 2);
      want[ch] = (float)(s / m);
      want[C + ch] = (float)(1.0 / sqrt(ss / m + 1e-5));
      want[2 * C + ch] = (float)(0.9 * c.rm[ch] + 0.1 * s / m);
      want[3 * C + ch] = (float)(0.9 * c.rv[ch] + 0.1 * ss / (m - 1));
      got[ch] = mean[ch], got[C + ch] = invstd[ch], got[2 * C + ch] = rm[ch], got[3 * C + ch] = rv[ch];
    }
    snprintf(what, sizeof what, "batchnorm N%d C%d inner%d stats, running update", N, C, inner);
    if (approx(what, got, want, 4L * C, 1e-6, 1e-5, NULL)) printf("ok   %s\n", what);
    free(want), free(got);
  }
  float *px = rnd(n), *pw = rnd(C), *pb = rnd(C);
  float *dx = copy(px, n), *dw = copy(pw, C), *db = copy(pb, C);
  if (train)
    nnl_batchnorm_backward_train(dx, affine ? dw : NULL, affine ? db : NULL, c.r, c.x, mean, invstd,
                                 c.w, N, C, inner);
  else
    nnl_batchnorm_backward_eval(dx, affine ? dw : NULL, affine ? db : NULL, c.r, c.x, c.rm, c.rv,
                                c.w, N, C, inner, 1e-5);
  float *gx = added(dx, px, n), *gw = added(dw, pw, C), *gb = added(db, pb, C);
  snprintf(what, sizeof what, "batchnorm %s N%d C%d inner%d%s dx", mode, N, C, inner,
           affine ? "" : " no-affine");
  gradcheck(what, bn_loss, &c, c.x, gx, n, 1e-2, 2e-3, 1e-2);
  if (affine) {
    snprintf(what, sizeof what, "batchnorm %s N%d C%d inner%d dweight", mode, N, C, inner);
    gradcheck(what, bn_loss, &c, c.w, gw, C, 1e-2, 2e-3, 1e-2);
    snprintf(what, sizeof what, "batchnorm %s N%d C%d inner%d dbias", mode, N, C, inner);
    gradcheck(what, bn_loss, &c, c.b, gb, C, 1e-2, 2e-3, 1e-2);
  }
  free(c.x), free(c.w), free(c.b), free(c.rm), free(c.rv), free(c.y), free(c.r);
  free(mean), free(invstd), free(rm), free(rv), free(px), free(pw), free(pb);
  free(dx), free(dw), free(db), free(gx), free(gw), free(gb);
}

static void test_batchnorm(void) {
  bn_case(1, 4, 3, 5, 1);   /* BatchNorm2d-like */
  bn_case(1, 6, 4, 1, 1);   /* BatchNorm1d on (N, C) */
  bn_case(1, 3, 2, 6, 0);   /* no affine */
  bn_case(1, 8, 32, 196, 1); /* enough work for threads */
  bn_case(0, 3, 3, 4, 1);
  bn_case(0, 5, 2, 1, 0);
}

/* ---- values from PyTorch 1.13 (inputs: sin(0.37*(i+off)+0.1)*scale, made by a throwaway script) ---- */

static const float fx_conv[48] = {-1.0608521, -1.1455199, -1.2054955, -1.2326615, -0.076592147, 0.079208612, 0.09394002, -0.034391344, -1.2544383, -1.1735306, -1.0641394, -0.94107056, -1.1470281, -0.97684002, -0.78279263, -0.59114963, -1.3790889, -1.2896153, -1.1339499, -0.93316138, -0.76696676, -0.61850047, -0.49467456, -0.41224834, -0.81476808, -0.78622711, -0.72296393, -0.63354063, 0.17227256, 0.31923443, 0.35129952, 0.26412821, -0.7154364, -0.54316956, -0.36907703, -0.21672136, -0.28852478, -0.11710833, 0.044833168, 0.17538165, -1.1019188, -1.0520411, -0.88509965, -0.62368917, 0.032122999, 0.076304927, 0.084834293, 0.056556642};
static const float fx_max[21] = {0.8207168, 0.97178036, 0.99131799, 0.97178036, 0.99131799, 0.87668538, 0.64339757, 0.8207168, 0.97178036, 0.99131799, 0.97178036, 0.99131799, 0.99039894, 0.97336525, 0.63816577, 0.87338674, 0.63816577, 0.82459116, 0.97336525, 0.99039894, 0.97336525};
static const int64_t fx_maxi[21] = {8, 9, 10, 9, 10, 11, 12, 8, 9, 10, 9, 10, 27, 26, 29, 28, 29, 25, 26, 27, 26};
static const float fx_avg_inc[12] = {-0.058835037, 0.0065276688, 0.12162665, 0.11560583, 0.03443855, 0.15762275, 0.22360621, 0.13444126, 0.098095775, 0.17316598, 0.13328966, 0.037660342};
static const float fx_avg_exc[12] = {-0.13237883, 0.0097915037, 0.18243998, 0.26011312, 0.051657826, 0.15762275, 0.22360621, 0.20166188, 0.22071549, 0.25974897, 0.1999345, 0.084735766};
static const float fx_adapt[6] = {-0.18374449, -0.22193919, -0.14404574, 0.031356778, -0.12631755, -0.21791984};
static const float fx_bn[24] = {0.73689258, 0.62856972, 0.55614638, 0.52942473, 0.66932303, 0.63804901, 0.58999699, 0.53167057, 0.98875302, 1.1095626, 1.2011716, 1.251181, 0.35102621, 0.3723498, 0.41285652, 0.46706396, 0.86397815, 0.73465478, 0.62687284, 0.55522001, 0.6796, 0.66892803, 0.6372987, 0.58899289};
static const float fx_bn_run[4] = {0.0068583149, 0.0058827479, 1.1073983, 1.1134769};

static void test_pytorch_values(void) {
  float x[120], w[48], b[4], y[48];
  /* conv2d(x (1,4,5,6), w (4,2,3,2), b, stride (2,1), padding (1,0), dilation (1,2), groups 2) */
  nnl_conv2d_dims d = {1, 4, 5, 6, 4, 3, 2, 2, 1, 1, 0, 1, 2, 2};
  fill_sin(x, 120, 0, 1.0), fill_sin(w, 48, 100, 0.5), fill_sin(b, 4, 200, 1.0);
  int ok = nnl_conv_out_size(5, 3, 2, 1, 1) == 3 && nnl_conv_out_size(6, 2, 1, 0, 2) == 4 &&
           nnl_conv_out_size(2, 5, 1, 0, 1) == 0 && nnl_conv_out_size(1, 3, 2, 0, 1) == 0 &&
           nnl_conv_out_size(3, 2, 1, 0, 3) == 0;
  if (!ok) printf("FAIL nnl_conv_out_size\n"), failures++;
  nnl_conv2d_forward(y, x, w, b, &d, NULL, 0);
  ok &= approx("pytorch conv2d", y, fx_conv, 48, 1e-5, 1e-5, NULL);
  nnl_conv2d_forward_ref(y, x, w, b, &d);
  ok &= approx("pytorch conv2d (reference)", y, fx_conv, 48, 1e-5, 1e-5, NULL);
  /* max_pool2d(x (1,1,5,7), (3,2), stride (2,1), padding (1,1), dilation (1,2)) */
  nnl_pool2d_dims p = {1, 1, 5, 7, 3, 2, 2, 1, 1, 1, 1, 2};
  int64_t ind[21];
  fill_sin(x, 35, 300, 1.0);
  nnl_max_pool2d_forward(y, ind, x, &p);
  ok &= approx("pytorch max_pool2d", y, fx_max, 21, 0, 0, NULL);
  for (int i = 0; i < 21; i++)
    if (ind[i] != fx_maxi[i]) {
      printf("FAIL pytorch max_pool2d index %d: %lld, expected %lld\n", i, (long long)ind[i],
             (long long)fx_maxi[i]);
      failures++, ok = 0;
      break;
    }
  /* avg_pool2d(x, 3, stride 2, padding 1), count_include_pad true and false */
  p = (nnl_pool2d_dims){1, 1, 5, 7, 3, 3, 2, 2, 1, 1, 1, 1};
  nnl_avg_pool2d_forward(y, x, &p, 1, 0);
  ok &= approx("pytorch avg_pool2d include_pad", y, fx_avg_inc, 12, 1e-6, 1e-6, NULL);
  nnl_avg_pool2d_forward(y, x, &p, 0, 0);
  ok &= approx("pytorch avg_pool2d exclude_pad", y, fx_avg_exc, 12, 1e-6, 1e-6, NULL);
  nnl_adaptive_avg_pool2d_forward(y, x, 1, 1, 5, 7, 2, 3);
  ok &= approx("pytorch adaptive_avg_pool2d 5x7->2x3", y, fx_adapt, 6, 1e-6, 1e-6, NULL);
  /* batch_norm(x (3,2,4)*2+0.5, zeros, ones, w, b, training, momentum 0.1, eps 1e-5) */
  float run[4] = {0, 0, 1, 1};
  fill_sin(x, 24, 400, 2.0), fill_sin(w, 2, 500, 1.0), fill_sin(b, 2, 600, 1.0);
  for (int i = 0; i < 24; i++) x[i] += 0.5f;
  nnl_batchnorm_forward_train(y, NULL, NULL, run, run + 2, x, w, b, 3, 2, 4, 0.1, 1e-5);
  ok &= approx("pytorch batch_norm", y, fx_bn, 24, 1e-5, 1e-5, NULL);
  ok &= approx("pytorch batch_norm running stats", run, fx_bn_run, 4, 1e-6, 1e-6, NULL);
  if (ok) printf("ok   PyTorch values: conv2d, max/avg/adaptive pooling, batch_norm\n");
}

int main(void) {
  test_pytorch_values();
  test_conv();
  test_winograd();
  test_conv_ref_numeric();
  test_pool();
  test_maxpool_3x3s2();
  test_batchnorm();
  printf(failures ? "test_spatial: %d FAILED\n" : "test_spatial: all passed\n", failures);
  return failures ? 1 : 0;
}
