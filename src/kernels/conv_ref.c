/* conv_ref.c — 2-D convolution written as the course formulas in plain loops (tests only).
 * Independent of conv.c: no im2col, no sgemm; dX gathers (full convolution), dK filters X by dY. */
#include "spatial.h"

/* Forward, a direct sum (cross-correlation, as PyTorch):
 * Y[n,f,p,q] = b[f] + sum_{c,i,j} X[n, c, p*sh - ph + i*dh, q*sw - pw + j*dw] K[f,c,i,j],
 * where c runs over the channels of f's group and taps in the padding read zero. */
void nnl_conv2d_forward_ref(float *y, const float *x, const float *weight, const float *bias,
                            const nnl_conv2d_dims *d) {
  int Cg = d->C / d->groups, Fg = d->F / d->groups;
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, d->dil_h);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, d->dil_w);
  for (int n = 0; n < d->N; n++)
    for (int f = 0; f < d->F; f++) {
      int c0 = (f / Fg) * Cg;
      for (int p = 0; p < OH; p++)
        for (int q = 0; q < OW; q++) {
          double s = bias ? bias[f] : 0.0;
          for (int c = 0; c < Cg; c++)
            for (int i = 0; i < d->KH; i++)
              for (int j = 0; j < d->KW; j++) {
                int h = p * d->stride_h - d->pad_h + i * d->dil_h;
                int w = q * d->stride_w - d->pad_w + j * d->dil_w;
                if (h < 0 || h >= d->H || w < 0 || w >= d->W) continue;
                s += (double)x[(((long)n * d->C + c0 + c) * d->H + h) * d->W + w] *
                     weight[(((long)f * Cg + c) * d->KH + i) * d->KW + j];
              }
          y[(((long)n * d->F + f) * OH + p) * OW + q] = (float)s;
        }
    }
}

/* Backward:
 * dL/dX[n,c] = sum_f K[f,c] *full dL/dY[n,f]: input pixel (h, w) collects K[f,c,i,j] dY[n,f,p,q]
 *   for every tap that read it, i.e. p*sh = h + ph - i*dh (exactly, 0 <= p < OH), same for q.
 *   With stride 1, no padding, no dilation this is p = h - i: the full convolution of the course.
 * dL/dK[f,c] = sum_n X[n,c] *filt dL/dY[n,f]:
 *   dK[f,c,i,j] = sum_{n,p,q} X[n, c, p*sh - ph + i*dh, q*sw - pw + j*dw] dY[n,f,p,q].
 * dL/db[f] = sum_{n,p,q} dY[n,f,p,q]. */
void nnl_conv2d_backward_ref(float *dx, float *dweight, float *dbias, const float *dy,
                             const float *x, const float *weight, const nnl_conv2d_dims *d) {
  int Cg = d->C / d->groups, Fg = d->F / d->groups;
  int OH = nnl_conv_out_size(d->H, d->KH, d->stride_h, d->pad_h, d->dil_h);
  int OW = nnl_conv_out_size(d->W, d->KW, d->stride_w, d->pad_w, d->dil_w);
#define DY(n, f, p, q) dy[(((long)(n) * d->F + (f)) * OH + (p)) * OW + (q)]
  if (dx)
    for (int n = 0; n < d->N; n++)
      for (int ch = 0; ch < d->C; ch++) {
        int grp = ch / Cg, c = ch % Cg;
        for (int h = 0; h < d->H; h++)
          for (int w = 0; w < d->W; w++) {
            double s = 0.0;
            for (int f = grp * Fg; f < (grp + 1) * Fg; f++)
              for (int i = 0; i < d->KH; i++) {
                int ph = h + d->pad_h - i * d->dil_h;
                if (ph < 0 || ph % d->stride_h) continue;
                int p = ph / d->stride_h;
                if (p >= OH) continue;
                for (int j = 0; j < d->KW; j++) {
                  int qw = w + d->pad_w - j * d->dil_w;
                  if (qw < 0 || qw % d->stride_w) continue;
                  int q = qw / d->stride_w;
                  if (q >= OW) continue;
                  s += (double)weight[(((long)f * Cg + c) * d->KH + i) * d->KW + j] * DY(n, f, p, q);
                }
              }
            dx[(((long)n * d->C + ch) * d->H + h) * d->W + w] += (float)s;
          }
      }
  if (dweight)
    for (int f = 0; f < d->F; f++) {
      int c0 = (f / Fg) * Cg;
      for (int c = 0; c < Cg; c++)
        for (int i = 0; i < d->KH; i++)
          for (int j = 0; j < d->KW; j++) {
            double s = 0.0;
            for (int n = 0; n < d->N; n++)
              for (int p = 0; p < OH; p++)
                for (int q = 0; q < OW; q++) {
                  int h = p * d->stride_h - d->pad_h + i * d->dil_h;
                  int w = q * d->stride_w - d->pad_w + j * d->dil_w;
                  if (h < 0 || h >= d->H || w < 0 || w >= d->W) continue;
                  s += (double)x[(((long)n * d->C + c0 + c) * d->H + h) * d->W + w] * DY(n, f, p, q);
                }
            dweight[(((long)f * Cg + c) * d->KH + i) * d->KW + j] += (float)s;
          }
    }
  if (dbias)
    for (int f = 0; f < d->F; f++) {
      double s = 0.0;
      for (int n = 0; n < d->N; n++)
        for (int p = 0; p < OH; p++)
          for (int q = 0; q < OW; q++) s += DY(n, f, p, q);
      dbias[f] += (float)s;
    }
#undef DY
}
