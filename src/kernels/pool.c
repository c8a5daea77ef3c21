/* pool.c — max, average and adaptive-average 2-D pooling over NCHW, forward and backward.
 * Each (n, c) plane is independent: OpenMP hands whole planes to threads, so writes never race. */
#include "spatial.h"

#include <math.h>
#include <string.h>

/* ---- max pooling ---- */

/* The common 2x2 window, stride 2, no padding: four loads and three selects per output, written
 * without branches so the loop vectorises (random data would mispredict every compare). */
static void maxpool_plane_2x2(float *y, int64_t *ind, const float *x, int W, int OH, int OW) {
  for (int oh = 0; oh < OH; oh++) {
    const float *r0 = x + (long)(2 * oh) * W, *r1 = r0 + W;
    float *yr = y + (long)oh * OW;
    if (!ind) {
#pragma omp simd
      for (int ow = 0; ow < OW; ow++) {
        float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], e = r1[2 * ow + 1];
        float m = a;
        m = (b > m || b != b) ? b : m;
        m = (c > m || c != c) ? c : m;
        m = (e > m || e != e) ? e : m;
        yr[ow] = m;
      }
      continue;
    }
    int64_t *ir = ind + (long)oh * OW, base = (int64_t)(2 * oh) * W;
#pragma omp simd
    for (int ow = 0; ow < OW; ow++) {
      float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], e = r1[2 * ow + 1];
      float m = a;
      int64_t k = 0;
      int sb = b > m || b != b;
      m = sb ? b : m;
      k = sb ? 1 : k;
      int sc = c > m || c != c;
      m = sc ? c : m;
      k = sc ? W : k;
      int se = e > m || e != e;
      m = se ? e : m;
      k = se ? W + 1 : k;
      yr[ow] = m;
      ir[ow] = base + 2 * ow + k;
    }
  }
}

/* Any window. The first element inside the image is taken unconditionally, so a window of -inf
 * still reports a real position (PyTorch starts from the window's first in-image index). */
static void maxpool_plane(float *y, int64_t *ind, const float *x, const nnl_pool2d_dims *d,
                          int OH, int OW) {
  for (int oh = 0; oh < OH; oh++)
    for (int ow = 0; ow < OW; ow++) {
      int h0 = oh * d->stride_h - d->pad_h, w0 = ow * d->stride_w - d->pad_w;
      float m = -INFINITY;
      int64_t mi = -1;
      for (int ki = 0; ki < d->KH; ki++) {
        int ih = h0 + ki * d->dil_h;
        if (ih < 0 || ih >= d->H) continue;
        for (int kj = 0; kj < d->KW; kj++) {
          int iw = w0 + kj * d->dil_w;
          if (iw < 0 || iw >= d->W) continue;
          int64_t i = (int64_t)ih * d->W + iw;
          float v = x[i];
          if (mi < 0 || v > m || isnan(v)) m = v, mi = i;
        }
      }
      y[(long)oh * OW + ow] = m;
      if (ind) ind[(long)oh * OW + ow] = mi;
    }
}

void nnl_max_pool2d_forward(float *y, int64_t *indices, const float *x,
                            const nnl_pool2d_dims *d) {
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, d->dil_h);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, d->dil_w);
  long planes = (long)d->N * d->C, HW = (long)d->H * d->W, P = (long)OH * OW;
  int fast = d->KH == 2 && d->KW == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
             d->pad_w == 0 && d->dil_h == 1 && d->dil_w == 1;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    int64_t *ind = indices ? indices + pl * P : NULL;
    if (fast)
      maxpool_plane_2x2(y + pl * P, ind, x + pl * HW, d->W, OH, OW);
    else
      maxpool_plane(y + pl * P, ind, x + pl * HW, d, OH, OW);
  }
}

static void maxpool_scatter(float *dx, const float *dy, const int64_t *indices,
                            const nnl_pool2d_dims *d, int zero) {
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, d->dil_h);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, d->dil_w);
  long planes = (long)d->N * d->C, HW = (long)d->H * d->W, P = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    float *dxp = dx + pl * HW;
    const float *dyp = dy + pl * P;
    const int64_t *ip = indices + pl * P;
    if (zero) memset(dxp, 0, sizeof(float) * HW);
    for (long o = 0; o < P; o++)
      if (ip[o] >= 0) dxp[ip[o]] += dyp[o];
  }
}

void nnl_max_pool2d_backward(float *dx, const float *dy, const int64_t *indices,
                             const nnl_pool2d_dims *d) {
  maxpool_scatter(dx, dy, indices, d, 0);
}

void nnl_max_pool2d_backward_into(float *dx, const float *dy, const int64_t *indices,
                                  const nnl_pool2d_dims *d) {
  maxpool_scatter(dx, dy, indices, d, 1);
}

/* ---- average pooling ---- */

/* The window of output (oh, ow) clipped to the image, and PyTorch's divisor for it: the window
 * clipped to the padded image when padding counts, the in-image part when it does not. */
typedef struct { int h0, h1, w0, w1; float div; } window;

static window avg_window(const nnl_pool2d_dims *d, int oh, int ow, int count_include_pad,
                         int divisor_override) {
  window r;
  int hs = oh * d->stride_h - d->pad_h, ws = ow * d->stride_w - d->pad_w;
  int he = hs + d->KH, we = ws + d->KW;
  if (he > d->H + d->pad_h) he = d->H + d->pad_h;
  if (we > d->W + d->pad_w) we = d->W + d->pad_w;
  int padded = (he - hs) * (we - ws);
  r.h0 = hs < 0 ? 0 : hs;
  r.w0 = ws < 0 ? 0 : ws;
  r.h1 = he > d->H ? d->H : he;
  r.w1 = we > d->W ? d->W : we;
  int div = divisor_override ? divisor_override
            : count_include_pad ? padded : (r.h1 - r.h0) * (r.w1 - r.w0);
  r.div = div > 0 ? (float)div : INFINITY; /* an empty window averages to 0 */
  return r;
}

void nnl_avg_pool2d_forward(float *y, const float *x, const nnl_pool2d_dims *d,
                            int count_include_pad, int divisor_override) {
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, 1);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, 1);
  long planes = (long)d->N * d->C, HW = (long)d->H * d->W, P = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * HW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        window r = avg_window(d, oh, ow, count_include_pad, divisor_override);
        float s = 0.0f;
        for (int h = r.h0; h < r.h1; h++)
          for (int w = r.w0; w < r.w1; w++) s += xp[(long)h * d->W + w];
        y[pl * P + (long)oh * OW + ow] = s / r.div;
      }
  }
}

void nnl_avg_pool2d_backward(float *dx, const float *dy, const nnl_pool2d_dims *d,
                             int count_include_pad, int divisor_override) {
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, 1);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, 1);
  long planes = (long)d->N * d->C, HW = (long)d->H * d->W, P = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    float *dxp = dx + pl * HW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        window r = avg_window(d, oh, ow, count_include_pad, divisor_override);
        float g = dy[pl * P + (long)oh * OW + ow] / r.div;
        for (int h = r.h0; h < r.h1; h++)
          for (int w = r.w0; w < r.w1; w++) dxp[(long)h * d->W + w] += g;
      }
  }
}

/* ---- adaptive average pooling ---- */

static int start_index(int i, int in, int out) { return (int)(((long)i * in) / out); }
static int end_index(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

void nnl_adaptive_avg_pool2d_forward(float *y, const float *x, int N, int C, int H, int W, int OH,
                                     int OW) {
  long planes = (long)N * C, HW = (long)H * W, P = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * HW;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = start_index(oh, H, OH), h1 = end_index(oh, H, OH);
      for (int ow = 0; ow < OW; ow++) {
        int w0 = start_index(ow, W, OW), w1 = end_index(ow, W, OW);
        double s = 0.0;
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) s += xp[(long)h * W + w];
        y[pl * P + (long)oh * OW + ow] = (float)(s / ((double)(h1 - h0) * (w1 - w0)));
      }
    }
  }
}

void nnl_adaptive_avg_pool2d_backward(float *dx, const float *dy, int N, int C, int H, int W,
                                      int OH, int OW) {
  long planes = (long)N * C, HW = (long)H * W, P = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    float *dxp = dx + pl * HW;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = start_index(oh, H, OH), h1 = end_index(oh, H, OH);
      for (int ow = 0; ow < OW; ow++) {
        int w0 = start_index(ow, W, OW), w1 = end_index(ow, W, OW);
        float g = dy[pl * P + (long)oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) dxp[(long)h * W + w] += g;
      }
    }
  }
}
