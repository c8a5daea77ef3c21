/* imgproc.c — image kernels (bilinear resize, crop, flip, to float, normalize) and the transform
 * pipeline of one image: torchvision's semantics, planar pixels, float32 arithmetic as PyTorch's. */
#include "imgproc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../nnlua.h"

/* ---- resize ---- */

/* Bit-for-bit what PyTorch 1.13's CPU kernel computes (checked against it):
 * - per output coordinate (compute_source_index_and_lambda): scale = (float)in / out; the source
 *   position in double, (double)scale * (o + 0.5) - 0.5, clamped at 0; index i0 = its integer
 *   part, i1 = i0 + 1 inside the image; l1 = (float)(src - i0), l0 = 1 - l1 in float;
 * - per pixel, its AVX2 build contracted into fused multiply-adds: a row mix
 *   fma(a, w0, b * w1), and fma(top, h0, bottom * h1) across rows. fmaf is exactly rounded, so
 *   writing it out gives the same numbers on any CPU (an FMA instruction where there is one). */
typedef struct {
  int i0, i1;
  float l0, l1;
} lin_w;

static inline lin_w lin_coef(float scale, int o, int n_in, int n_out) {
  lin_w c;
  if (n_in == n_out) {
    c.i0 = c.i1 = o, c.l0 = 1.0f, c.l1 = 0.0f;
    return c;
  }
  double src = (double)scale * (o + 0.5) - 0.5;
  if (src < 0) src = 0;
  int i = (int)src;
  if (i > n_in - 1) i = n_in - 1;
  double l = src - i;
  c.i0 = i;
  c.i1 = i + (i < n_in - 1);
  c.l1 = (float)(l < 0 ? 0 : l > 1 ? 1 : l);
  c.l0 = 1.0f - c.l1;
  return c;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FMA_CLONES
#endif

FMA_CLONES static void mix_row_f32(float *o /* (n,) */, const float *a /* row y0 */, const float *b /* row y1 */,
                                   float h0, float h1, const lin_w *cx /* (n,) */, int n) {
  for (int j = 0; j < n; j++) {
    float top = fmaf(a[cx[j].i0], cx[j].l0, a[cx[j].i1] * cx[j].l1);
    float bot = fmaf(b[cx[j].i0], cx[j].l0, b[cx[j].i1] * cx[j].l1);
    o[j] = fmaf(top, h0, bot * h1);
  }
}

FMA_CLONES static void mix_row_u8(uint8_t *o /* (n,) */, const uint8_t *a /* row y0 */,
                                  const uint8_t *b /* row y1 */, float h0, float h1, const lin_w *cx /* (n,) */,
                                  int n) {
  for (int j = 0; j < n; j++) {
    float top = fmaf((float)a[cx[j].i0], cx[j].l0, (float)a[cx[j].i1] * cx[j].l1);
    float bot = fmaf((float)b[cx[j].i0], cx[j].l0, (float)b[cx[j].i1] * cx[j].l1);
    float v = nearbyintf(fmaf(top, h0, bot * h1)); /* half to even, as torch.round */
    o[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); /* a convex mix stays in range anyway */
  }
}

/* Columns go in chunks whose weights every thread computes once; rows are shared out. */
#define COLS 256

/* par = 0: one thread (the pipeline runs one image per thread; a team per kernel call would
 * only add barriers). */
static void resize_f32(float *out /* (c, oh, ow) */, const float *in /* (c, ih, iw) window */, int c,
                       int ih, int iw, int64_t ld, int64_t ps, int oh, int ow, int par) {
  float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
  int64_t rows = (int64_t)c * oh;
#pragma omp parallel if (par && rows * ow > NNL_PAR_MIN)
  {
    lin_w cx[COLS];
    for (int x = 0; x < ow; x += COLS) {
      int n = ow - x < COLS ? ow - x : COLS;
      for (int j = 0; j < n; j++) cx[j] = lin_coef(sx, x + j, iw, ow);
#pragma omp for
      for (int64_t r = 0; r < rows; r++) {
        lin_w cy = lin_coef(sy, (int)(r % oh), ih, oh);
        const float *plane = in + (r / oh) * ps; /* plane: (ih, ld) */
        mix_row_f32(out + r * ow + x, plane + cy.i0 * ld, plane + cy.i1 * ld, cy.l0, cy.l1, cx, n);
      }
    }
  }
}

/* par = 0: one thread (the pipeline runs one image per thread; a team per kernel call would
 * only add barriers). */
static void resize_u8(uint8_t *out /* (c, oh, ow) */, const uint8_t *in /* (c, ih, iw) window */, int c,
                       int ih, int iw, int64_t ld, int64_t ps, int oh, int ow, int par) {
  float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
  int64_t rows = (int64_t)c * oh;
#pragma omp parallel if (par && rows * ow > NNL_PAR_MIN)
  {
    lin_w cx[COLS];
    for (int x = 0; x < ow; x += COLS) {
      int n = ow - x < COLS ? ow - x : COLS;
      for (int j = 0; j < n; j++) cx[j] = lin_coef(sx, x + j, iw, ow);
#pragma omp for
      for (int64_t r = 0; r < rows; r++) {
        lin_w cy = lin_coef(sy, (int)(r % oh), ih, oh);
        const uint8_t *plane = in + (r / oh) * ps; /* plane: (ih, ld) */
        mix_row_u8(out + r * ow + x, plane + cy.i0 * ld, plane + cy.i1 * ld, cy.l0, cy.l1, cx, n);
      }
    }
  }
}

void nnl_img_resize_f32(float *out /* (c, oh, ow) */, const float *in /* (c, ih, iw) window */,
                        int c, int ih, int iw, int64_t ld, int64_t ps, int oh, int ow) {
  resize_f32(out, in, c, ih, iw, ld, ps, oh, ow, 1);
}

void nnl_img_resize_u8(uint8_t *out /* (c, oh, ow) */, const uint8_t *in /* (c, ih, iw) window */,
                       int c, int ih, int iw, int64_t ld, int64_t ps, int oh, int ow) {
  resize_u8(out, in, c, ih, iw, ld, ps, oh, ow, 1);
}

/* ---- crop, flip ---- */

/* The part of [start, start + len) inside [0, n): first index and count (count may be 0). */
static void overlap(int start, int len, int n, int *first, int *count) {
  int lo = start < 0 ? 0 : start, hi = start + len > n ? n : start + len;
  *first = lo;
  *count = hi > lo ? hi - lo : 0;
}

void nnl_img_crop_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (c, ih, iw) */, int c, int ih,
                     int iw, int top, int left, int h, int w) {
  int x0, nx;
  overlap(left, w, iw, &x0, &nx);
  for (int k = 0; k < c; k++)
    for (int y = 0; y < h; y++) {
      uint8_t *o = out + ((int64_t)k * h + y) * w; /* o: (w,) */
      int sy = top + y;
      if (sy < 0 || sy >= ih || nx == 0) { memset(o, 0, (size_t)w); continue; }
      const uint8_t *s = in + ((int64_t)k * ih + sy) * iw; /* s: (iw,) */
      memset(o, 0, (size_t)(x0 - left));
      memcpy(o + (x0 - left), s + x0, (size_t)nx);
      memset(o + (x0 - left) + nx, 0, (size_t)(w - (x0 - left) - nx));
    }
}

void nnl_img_crop_f32(float *out /* (c, h, w) */, const float *in /* (c, ih, iw) */, int c, int ih,
                      int iw, int top, int left, int h, int w) {
  int x0, nx;
  overlap(left, w, iw, &x0, &nx);
  for (int k = 0; k < c; k++)
    for (int y = 0; y < h; y++) {
      float *o = out + ((int64_t)k * h + y) * w; /* o: (w,) */
      int sy = top + y;
      for (int x = 0; x < w; x++) o[x] = 0.0f;
      if (sy < 0 || sy >= ih || nx == 0) continue;
      const float *s = in + ((int64_t)k * ih + sy) * iw; /* s: (iw,) */
      memcpy(o + (x0 - left), s + x0, (size_t)nx * sizeof *o);
    }
}

void nnl_img_hflip_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (c, h, w) */, int c, int h, int w) {
  int64_t rows = (int64_t)c * h;
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t *s = in + r * w; /* s: (w,) */
    uint8_t *o = out + r * w;      /* o: (w,) */
    for (int x = 0, z = w - 1; x <= z; x++, z--) {
      uint8_t a = s[x], b = s[z];
      o[x] = b;
      o[z] = a;
    }
  }
}

void nnl_img_hflip_f32(float *out /* (c, h, w) */, const float *in /* (c, h, w) */, int c, int h, int w) {
  int64_t rows = (int64_t)c * h;
  for (int64_t r = 0; r < rows; r++) {
    const float *s = in + r * w; /* s: (w,) */
    float *o = out + r * w;      /* o: (w,) */
    for (int x = 0, z = w - 1; x <= z; x++, z--) {
      float a = s[x], b = s[z];
      o[x] = b;
      o[z] = a;
    }
  }
}

/* ---- to float, normalize, layout ---- */

static void to_float(float *out /* (n,) */, const uint8_t *in /* (n,) */, int64_t n, int par) {
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
#pragma omp parallel for if (par && n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) out[i] = lut[in[i]];
}

static void normalize(float *out /* (c, hw) */, const float *in /* (c, hw) */, int c, int64_t hw,
                      const float *mean /* (c,) */, const float *std /* (c,) */, int par) {
#pragma omp parallel for collapse(2) if (par && c * hw > NNL_PAR_MIN)
  for (int k = 0; k < c; k++)
    for (int64_t i = 0; i < hw; i++) /* a division, not a reciprocal: torchvision's div_ */
      out[k * hw + i] = (in[k * hw + i] - mean[k]) / std[k];
}

void nnl_img_to_float(float *out /* (n,) */, const uint8_t *in /* (n,) */, int64_t n) { to_float(out, in, n, 1); }

void nnl_img_normalize(float *out /* (c, hw) */, const float *in /* (c, hw) */, int c, int64_t hw,
                       const float *mean /* (c,) */, const float *std /* (c,) */) {
  normalize(out, in, c, hw, mean, std, 1);
}

void nnl_img_hwc_to_chw_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (h, w, c) */, int h,
                           int w, int c) {
  int64_t hw = (int64_t)h * w;
  if (c == 3) {
    uint8_t *r = out, *g = out + hw, *b = out + 2 * hw;
    for (int64_t i = 0; i < hw; i++) {
      r[i] = in[3 * i];
      g[i] = in[3 * i + 1];
      b[i] = in[3 * i + 2];
    }
    return;
  }
  for (int64_t i = 0; i < hw; i++)
    for (int k = 0; k < c; k++) out[k * hw + i] = in[i * c + k];
}

/* ---- random draws ---- */

uint64_t nnl_imgrng_key(uint64_t seed, uint64_t epoch, uint64_t index) {
  /* a salt keeps these streams apart from the global one seeded with the same number */
  return nnl_rng_u64(nnl_rng_u64(seed ^ 0x696d616765735f31ULL, epoch), index);
}

double nnl_imgrng_at(uint64_t key, uint64_t counter) {
  return (double)(nnl_rng_u64(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}

double nnl_imgrng_uniform(nnl_imgrng *r) { return nnl_imgrng_at(r->key, r->counter++); }

/* torch.randint(0, n) from one draw: floor(u * n), kept below n against rounding. */
static int draw_int(nnl_imgrng *r, int n) {
  int v = (int)floor(nnl_imgrng_uniform(r) * n);
  return v >= n ? n - 1 : v;
}

void nnl_img_rrc_params(int h, int w, const double scale[2], const double ratio[2], nnl_imgrng *r,
                        int *top, int *left, int *ch, int *cw) {
  double area = (double)h * (double)w;
  double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target = area * (scale[0] + (scale[1] - scale[0]) * nnl_imgrng_uniform(r));
    double aspect = exp(lr0 + (lr1 - lr0) * nnl_imgrng_uniform(r));
    double fw = rint(sqrt(target * aspect)), fh = rint(sqrt(target / aspect)); /* Python's round */
    if (fw > 0 && fw <= w && fh > 0 && fh <= h) {
      *cw = (int)fw;
      *ch = (int)fh;
      *top = draw_int(r, h - *ch + 1);
      *left = draw_int(r, w - *cw + 1);
      return;
    }
  }
  double in_ratio = (double)w / (double)h, rmin = fmin(ratio[0], ratio[1]), rmax = fmax(ratio[0], ratio[1]);
  if (in_ratio < rmin) {
    *cw = w;
    *ch = (int)rint(w / rmin);
  } else if (in_ratio > rmax) {
    *ch = h;
    *cw = (int)rint(h * rmax);
  } else {
    *cw = w;
    *ch = h;
  }
  *top = (h - *ch) / 2;
  *left = (w - *cw) / 2;
}

void nnl_img_center_origin(int h, int w, int ch, int cw, int *top, int *left) {
  /* torchvision pads a too-small side to the crop ((d // 2) before, the rest after) and then
   * crops at round((size - crop) / 2), Python's round: half to even */
  *top = ch > h ? -((ch - h) / 2) : (int)rint((h - ch) / 2.0);
  *left = cw > w ? -((cw - w) / 2) : (int)rint((w - cw) / 2.0);
}

int nnl_img_resize_short(int h, int w, int size, int max_size, int *oh, int *ow) {
  int shrt = w <= h ? w : h, lng = w <= h ? h : w;
  int64_t ns = size, nl = (int64_t)((double)((int64_t)size * lng) / shrt);
  if (max_size > 0) {
    if (max_size <= size) {
      nnl_set_error("Resize: max_size (%d) must be larger than size (%d)", max_size, size);
      return -1;
    }
    if (nl > max_size) {
      ns = (int64_t)((double)((int64_t)max_size * ns) / nl);
      nl = max_size;
    }
  }
  if (nl > 65535 * 64) nl = 65535 * 64; /* absurd: nnl_imgpipe_apply rejects it by pixel count */
  *ow = (int)(w <= h ? ns : nl);
  *oh = (int)(w <= h ? nl : ns);
  return 0;
}

/* ---- the pipeline ---- */

int nnl_imgpipe_check(const nnl_imgpipe *p, int c) {
  int is_float = 0;
  if (p->n < 0 || p->n > NNL_IMGPIPE_MAXOPS) {
    nnl_set_error("transform pipeline: %d steps (at most %d)", p->n, NNL_IMGPIPE_MAXOPS);
    return -1;
  }
  for (int i = 0; i < p->n; i++) {
    const nnl_imgop *o = &p->ops[i];
    switch (o->kind) {
    case NNL_IMGOP_RESIZE:
    case NNL_IMGOP_CENTER_CROP:
    case NNL_IMGOP_RRC:
      if (o->w < 1 || o->w > 65535 || o->h < (o->kind == NNL_IMGOP_RESIZE ? 0 : 1) || o->h > 65535) {
        nnl_set_error("transform step %d: size %d x %d is not in 1..65535", i + 1, o->h, o->w);
        return -1;
      }
      if (o->kind == NNL_IMGOP_RRC &&
          !(o->scale[0] > 0 && o->scale[0] <= o->scale[1] && o->ratio[0] > 0 && o->ratio[1] > 0 &&
            isfinite(o->scale[1]) && isfinite(o->ratio[0]) && isfinite(o->ratio[1]))) {
        nnl_set_error("transform step %d (RandomResizedCrop): scale must be 0 < lo <= hi and ratio "
                      "positive, got scale {%g, %g}, ratio {%g, %g}", i + 1, o->scale[0], o->scale[1],
                      o->ratio[0], o->ratio[1]);
        return -1;
      }
      break;
    case NNL_IMGOP_HFLIP:
      if (!(o->p >= 0 && o->p <= 1)) {
        nnl_set_error("transform step %d (RandomHorizontalFlip): p must be in [0, 1], got %g", i + 1, o->p);
        return -1;
      }
      break;
    case NNL_IMGOP_TO_FLOAT:
      if (is_float) {
        nnl_set_error("transform step %d (ToTensor): the image is already float (ToTensor twice?)", i + 1);
        return -1;
      }
      is_float = 1;
      break;
    case NNL_IMGOP_NORMALIZE:
      if (!is_float) {
        nnl_set_error("transform step %d (Normalize): needs a float image: put ToTensor before it", i + 1);
        return -1;
      }
      if (o->nch != 1 && o->nch != c) {
        nnl_set_error("transform step %d (Normalize): %d values of mean and std for %d channels", i + 1,
                      o->nch, c);
        return -1;
      }
      for (int k = 0; k < o->nch; k++)
        if (o->std[k] == 0 || !isfinite(o->std[k]) || !isfinite(o->mean[k])) {
          nnl_set_error("transform step %d (Normalize): std must be finite and non-zero and mean "
                        "finite (channel %d: mean %g, std %g)", i + 1, k + 1, o->mean[k], o->std[k]);
          return -1;
        }
      break;
    default:
      nnl_set_error("transform step %d: unknown kind %d", i + 1, o->kind);
      return -1;
    }
  }
  return 0;
}

int nnl_imgpipe_out_size(const nnl_imgpipe *p, int *is_float, int *h, int *w) {
  int known = 0, fl = 0;
  for (int i = 0; i < p->n; i++) {
    const nnl_imgop *o = &p->ops[i];
    if (o->kind == NNL_IMGOP_TO_FLOAT) fl = 1;
    if (o->kind == NNL_IMGOP_CENTER_CROP || o->kind == NNL_IMGOP_RRC ||
        (o->kind == NNL_IMGOP_RESIZE && o->h > 0)) {
      known = 1;
      *h = o->h;
      *w = o->w;
    } else if (o->kind == NNL_IMGOP_RESIZE && known) {
      int oh, ow;
      if (nnl_img_resize_short(*h, *w, o->w, o->max_size, &oh, &ow)) return -1;
      *h = oh;
      *w = ow;
    }
  }
  *is_float = fl;
  return known ? 0 : -1;
}

/* Replace img's pixels by a new buffer of c x h x w elements of the current type. */
static void *new_pixels(const nnl_img *img, int h, int w, const char *what) {
  if (h < 1 || w < 1 || (int64_t)h * w > NNL_IMG_MAX_PIXELS) {
    nnl_set_error("%s: output of %d x %d pixels is empty or over the %lld-pixel limit", what, h, w,
                  (long long)NNL_IMG_MAX_PIXELS);
    return NULL;
  }
  size_t n = (size_t)img->c * h * w * (img->is_float ? sizeof(float) : 1);
  void *q = malloc(n);
  if (!q) nnl_set_error("%s: out of memory for a %d x %d x %d image", what, img->c, h, w);
  return q;
}

static void swap_in(nnl_img *img, void *q, int h, int w) {
  free(img->data);
  img->data = q;
  img->h = h;
  img->w = w;
}

/* Resize the window (top, left, wh, ww) of img (inside the image) to h x w. */
static int resize_window(nnl_img *img, int top, int left, int wh, int ww, int h, int w, const char *what) {
  if (top == 0 && left == 0 && wh == img->h && ww == img->w && h == img->h && w == img->w) return 0;
  void *q = new_pixels(img, h, w, what);
  if (!q) return -1;
  if (wh == h && ww == w) { /* torchvision's resize returns a same-size image untouched */
    if (img->is_float) nnl_img_crop_f32(q, img->data, img->c, img->h, img->w, top, left, h, w);
    else nnl_img_crop_u8(q, img->data, img->c, img->h, img->w, top, left, h, w);
    swap_in(img, q, h, w);
    return 0;
  }
  int64_t ps = (int64_t)img->h * img->w, off = (int64_t)top * img->w + left;
  if (img->is_float)
    resize_f32(q, (const float *)img->data + off, img->c, wh, ww, img->w, ps, h, w, 0);
  else
    resize_u8(q, (const uint8_t *)img->data + off, img->c, wh, ww, img->w, ps, h, w, 0);
  swap_in(img, q, h, w);
  return 0;
}

int nnl_imgpipe_apply(const nnl_imgpipe *p, nnl_img *img, nnl_imgrng *r) {
  for (int i = 0; i < p->n; i++) {
    const nnl_imgop *o = &p->ops[i];
    int top, left, h, w;
    void *q;
    switch (o->kind) {
    case NNL_IMGOP_RESIZE:
      h = o->h, w = o->w;
      if (h == 0 && nnl_img_resize_short(img->h, img->w, o->w, o->max_size, &h, &w)) return -1;
      if (resize_window(img, 0, 0, img->h, img->w, h, w, "Resize")) return -1;
      break;
    case NNL_IMGOP_CENTER_CROP:
      nnl_img_center_origin(img->h, img->w, o->h, o->w, &top, &left);
      if (top == 0 && left == 0 && o->h == img->h && o->w == img->w) break;
      if (!(q = new_pixels(img, o->h, o->w, "CenterCrop"))) return -1;
      if (img->is_float) nnl_img_crop_f32(q, img->data, img->c, img->h, img->w, top, left, o->h, o->w);
      else nnl_img_crop_u8(q, img->data, img->c, img->h, img->w, top, left, o->h, o->w);
      swap_in(img, q, o->h, o->w);
      break;
    case NNL_IMGOP_RRC:
      nnl_img_rrc_params(img->h, img->w, o->scale, o->ratio, r, &top, &left, &h, &w);
      if (resize_window(img, top, left, h, w, o->h, o->w, "RandomResizedCrop")) return -1;
      break;
    case NNL_IMGOP_HFLIP:
      if (nnl_imgrng_uniform(r) < o->p) {
        if (img->is_float) nnl_img_hflip_f32(img->data, img->data, img->c, img->h, img->w);
        else nnl_img_hflip_u8(img->data, img->data, img->c, img->h, img->w);
      }
      break;
    case NNL_IMGOP_TO_FLOAT: {
      if (img->is_float) { nnl_set_error("ToTensor: the image is already float"); return -1; }
      int64_t n = (int64_t)img->c * img->h * img->w;
      float *f = malloc((size_t)n * sizeof *f);
      if (!f) { nnl_set_error("ToTensor: out of memory"); return -1; }
      to_float(f, img->data, n, 0);
      free(img->data);
      img->data = f;
      img->is_float = 1;
      break;
    }
    case NNL_IMGOP_NORMALIZE: {
      if (!img->is_float) { nnl_set_error("Normalize: needs a float image (ToTensor first)"); return -1; }
      if (o->nch != 1 && o->nch != img->c) {
        nnl_set_error("Normalize: %d values of mean and std for %d channels", o->nch, img->c);
        return -1;
      }
      float mean[NNL_IMGPIPE_MAXCH], std[NNL_IMGPIPE_MAXCH];
      for (int k = 0; k < img->c && k < NNL_IMGPIPE_MAXCH; k++) {
        mean[k] = o->mean[o->nch == 1 ? 0 : k];
        std[k] = o->std[o->nch == 1 ? 0 : k];
      }
      if (img->c > NNL_IMGPIPE_MAXCH) { nnl_set_error("Normalize: more than 4 channels"); return -1; }
      normalize(img->data, img->data, img->c, (int64_t)img->h * img->w, mean, std, 0);
      break;
    }
    default:
      nnl_set_error("transform pipeline: unknown step kind %d", o->kind);
      return -1;
    }
  }
  return 0;
}
