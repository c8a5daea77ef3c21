/* batchnorm.c — batch normalisation over (N, C, inner) with PyTorch semantics, forward and backward,
 * in training mode (batch statistics) and evaluation mode (running statistics). Threads own channels. */
#include "spatial.h"

#include "../core/parallel.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define NNL_AVX512 1 /* AVX-512 run loops, chosen at run time when the CPU has them */
#include <immintrin.h>
#endif

/* Channel c of sample n is the contiguous run x[(n*C + c)*inner .. +inner). The loops below work
 * on one run. Sums go into float lanes over blocks of BLOCK elements and into double between
 * blocks, so a 112x112 plane loses no more to rounding than a 16x16 one. */
#define BLOCK 256

static const float *run(const float *x, int n, int C, int inner, int c) {
  return x + ((long)n * C + c) * inner;
}

/* ---- one run, plain C (any CPU) ---- */

/* s[0] += sum (a - k), s[1] += sum (a - k)^2; with b: s[0] += sum a, s[1] += sum a * (b - k). */
static void sums_plain(double *s, const float *a, const float *b, long len, float k) {
  for (long i0 = 0; i0 < len; i0 += BLOCK) {
    long e = len - i0 < BLOCK ? len - i0 : BLOCK;
    const float *ap = a + i0, *bp = b ? b + i0 : NULL;
    float p = 0.0f, q = 0.0f;
    if (bp) {
#pragma omp simd reduction(+ : p, q)
      for (long i = 0; i < e; i++) {
        p += ap[i];
        q += ap[i] * (bp[i] - k);
      }
    } else {
#pragma omp simd reduction(+ : p, q)
      for (long i = 0; i < e; i++) {
        float d = ap[i] - k;
        p += d;
        q += d * d;
      }
    }
    s[0] += p;
    s[1] += q;
  }
}

/* y = (x - mean) * scale + shift, or with dy: y (+)= (dy - gmean - (x - mean) * proj) * scale.
 * y may be dy itself (each element is read before it is written). */
static void affine_plain(float *y, const float *x, const float *dy, long len, float mean,
                         float scale, float shift, float gmean, float proj, int acc) {
  if (!dy) {
    for (long i = 0; i < len; i++) y[i] = (x[i] - mean) * scale + shift;
  } else if (!x) { /* evaluation backward: y (+)= dy * scale */
    if (acc)
      for (long i = 0; i < len; i++) y[i] += dy[i] * scale;
    else
      for (long i = 0; i < len; i++) y[i] = dy[i] * scale;
  } else if (acc) {
    for (long i = 0; i < len; i++) y[i] += (dy[i] - gmean - (x[i] - mean) * proj) * scale;
  } else {
    for (long i = 0; i < len; i++) y[i] = (dy[i] - gmean - (x[i] - mean) * proj) * scale;
  }
}

/* ---- one run, AVX-512: the same arithmetic, sixteen lanes, a masked last vector ---- */

#ifdef NNL_AVX512
static inline __mmask16 lanes(long n) { return (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1); }

/* two double accumulators (low and high eight lanes) += the float vector v */
__attribute__((target("avx512f"), always_inline)) static inline void
widen_add(__m512d *lo, __m512d *hi, __m512 v) {
  *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
  *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

__attribute__((target("avx512f"))) static void sums_avx512(double *s, const float *a,
                                                           const float *b, long len, float k) {
  const __m512 vk = _mm512_set1_ps(k);
  __m512d p_lo = _mm512_setzero_pd(), p_hi = p_lo, q_lo = p_lo, q_hi = p_lo;
  for (long i0 = 0; i0 < len; i0 += BLOCK) {
    long e = len - i0 < BLOCK ? len - i0 : BLOCK;
    const float *ap = a + i0, *bp = b ? b + i0 : NULL;
    __m512 p0 = _mm512_setzero_ps(), p1 = p0, q0 = p0, q1 = p0;
    long i = 0;
    if (bp) {
      for (; i + 32 <= e; i += 32) {
        __m512 a0 = _mm512_loadu_ps(ap + i), a1 = _mm512_loadu_ps(ap + i + 16);
        p0 = _mm512_add_ps(p0, a0);
        p1 = _mm512_add_ps(p1, a1);
        q0 = _mm512_fmadd_ps(a0, _mm512_sub_ps(_mm512_loadu_ps(bp + i), vk), q0);
        q1 = _mm512_fmadd_ps(a1, _mm512_sub_ps(_mm512_loadu_ps(bp + i + 16), vk), q1);
      }
      for (; i < e; i += 16) {
        __mmask16 m = lanes(e - i);
        __m512 a0 = _mm512_maskz_loadu_ps(m, ap + i);
        p0 = _mm512_add_ps(p0, a0);
        q0 = _mm512_fmadd_ps(a0, _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, bp + i), vk), q0);
      }
    } else {
      for (; i + 32 <= e; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(ap + i), vk);
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(ap + i + 16), vk);
        p0 = _mm512_add_ps(p0, d0);
        p1 = _mm512_add_ps(p1, d1);
        q0 = _mm512_fmadd_ps(d0, d0, q0);
        q1 = _mm512_fmadd_ps(d1, d1, q1);
      }
      for (; i < e; i += 16) {
        __mmask16 m = lanes(e - i);
        __m512 d0 = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, ap + i), vk);
        p0 = _mm512_add_ps(p0, d0);
        q0 = _mm512_fmadd_ps(d0, d0, q0);
      }
    }
    widen_add(&p_lo, &p_hi, _mm512_add_ps(p0, p1));
    widen_add(&q_lo, &q_hi, _mm512_add_ps(q0, q1));
  }
  s[0] += _mm512_reduce_add_pd(_mm512_add_pd(p_lo, p_hi));
  s[1] += _mm512_reduce_add_pd(_mm512_add_pd(q_lo, q_hi));
}

/* The value of affine_plain's element i for the lanes of vectors x (or ignored) and g = dy. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
affine_lanes(__m512 x, __m512 g, const int kind, __m512 mean, __m512 scale, __m512 shift,
             __m512 gmean, __m512 proj) {
  if (kind == 0) return _mm512_fmadd_ps(_mm512_sub_ps(x, mean), scale, shift);
  if (kind == 1) return _mm512_mul_ps(g, scale);
  __m512 t = _mm512_sub_ps(g, gmean);
  return _mm512_mul_ps(_mm512_fnmadd_ps(_mm512_sub_ps(x, mean), proj, t), scale);
}

/* kind 0: forward, 1: dy * scale, 2: the training gradient. */
__attribute__((target("avx512f"), always_inline)) static inline void
affine_kind(float *y, const float *x, const float *dy, long len, float mean, float scale,
            float shift, float gmean, float proj, int acc, const int kind) {
  const __m512 vm = _mm512_set1_ps(mean), vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(shift);
  const __m512 vg = _mm512_set1_ps(gmean), vp = _mm512_set1_ps(proj), z = _mm512_setzero_ps();
  for (long i = 0; i < len; i += 16) {
    __mmask16 m = lanes(len - i);
    int whole = m == 0xFFFF;
    __m512 xv = kind == 1 ? z : whole ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(m, x + i);
    __m512 gv = kind == 0 ? z : whole ? _mm512_loadu_ps(dy + i) : _mm512_maskz_loadu_ps(m, dy + i);
    __m512 v = affine_lanes(xv, gv, kind, vm, vs, vb, vg, vp);
    if (acc) v = _mm512_add_ps(v, whole ? _mm512_loadu_ps(y + i) : _mm512_maskz_loadu_ps(m, y + i));
    if (whole) _mm512_storeu_ps(y + i, v);
    else _mm512_mask_storeu_ps(y + i, m, v);
  }
}

__attribute__((target("avx512f"))) static void affine_avx512(float *y, const float *x,
                                                             const float *dy, long len, float mean,
                                                             float scale, float shift, float gmean,
                                                             float proj, int acc) {
  if (!dy) affine_kind(y, x, dy, len, mean, scale, shift, gmean, proj, 0, 0);
  else if (!x) affine_kind(y, x, dy, len, mean, scale, shift, gmean, proj, acc, 1);
  else affine_kind(y, x, dy, len, mean, scale, shift, gmean, proj, acc, 2);
}
#endif

/* ---- dispatch ---- */

static void sums(int avx, double *s, const float *a, const float *b, long len, float k) {
#ifdef NNL_AVX512
  if (avx) {
    sums_avx512(s, a, b, len, k);
    return;
  }
#endif
  (void)avx;
  sums_plain(s, a, b, len, k);
}

static void affine(int avx, float *y, const float *x, const float *dy, long len, float mean,
                   float scale, float shift, float gmean, float proj, int acc) {
#ifdef NNL_AVX512
  if (avx) {
    affine_avx512(y, x, dy, len, mean, scale, shift, gmean, proj, acc);
    return;
  }
#endif
  (void)avx;
  affine_plain(y, x, dy, len, mean, scale, shift, gmean, proj, acc);
}

/* ---- the layer ---- */

/* Mean and sum of squared deviations of channel c, in one pass over x: sums of (x - k) and
 * (x - k)^2 for k, the channel's first value. Then ss = S2 - S1^2/m loses about
 * (mean - k)^2 / var times float's precision to cancellation; when that ratio is large (k an
 * outlier) a second pass with k = mean computes it again, as the two-pass formula would. */
static void channel_stats(int avx, double *mean, double *ss, const float *x, int N, int C,
                          int inner, int c) {
  double m = (double)N * inner;
  float k = run(x, 0, C, inner, c)[0];
  for (int pass = 0; pass < 2; pass++) {
    double s[2] = {0.0, 0.0};
    for (int n = 0; n < N; n++) sums(avx, s, run(x, n, C, inner, c), NULL, inner, k);
    double d = s[0] / m;
    *mean = k + d;
    *ss = s[1] - s[0] * d;
    if (*ss < 0.0) *ss = 0.0;
    if (d * d * m <= 16.0 * *ss || d * d < 1e-30) break;
    k = (float)*mean;
  }
}

void nnl_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd,
                                 float *running_mean, float *running_var, const float *x,
                                 const float *weight, const float *bias, int N, int C, int inner,
                                 double momentum, double eps) {
  long m = (long)N * inner;
  int avx = nnl_cpu_avx512();
#pragma omp parallel for schedule(static) if ((double)m * C > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    double mean, ss;
    channel_stats(avx, &mean, &ss, x, N, C, inner, c);
    float meanf = (float)mean;
    double var = ss / (double)m;
    double invstd = 1.0 / sqrt(var + eps);
    if (save_mean) save_mean[c] = meanf;
    if (save_invstd) save_invstd[c] = (float)invstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
    if (running_var) {
      double unbiased = m > 1 ? ss / (double)(m - 1) : var;
      running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
    float scale = (float)((weight ? weight[c] : 1.0) * invstd), b = bias ? bias[c] : 0.0f;
    for (int n = 0; n < N; n++)
      affine(avx, y + ((long)n * C + c) * inner, run(x, n, C, inner, c), NULL, inner, meanf, scale,
             b, 0.0f, 0.0f, 0);
  }
}

/* With xhat = (x - mean) * invstd and m = N*inner values per channel:
 * dbias = sum dy, dweight = sum dy*xhat,
 * dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy*xhat))  (the batch statistics depend on x).
 * acc: dx += (the backward), or dx = (the _into form; dx may be dy). */
static void backward_train(float *dx, float *dweight, float *dbias, const float *dy,
                           const float *x, const float *save_mean, const float *save_invstd,
                           const float *weight, int N, int C, int inner, int acc) {
  long m = (long)N * inner;
  int avx = nnl_cpu_avx512();
#pragma omp parallel for schedule(static) if ((double)m * C > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    float mean = save_mean[c];
    double s[2] = {0.0, 0.0}; /* sum dy, sum dy*(x - mean) */
    for (int n = 0; n < N; n++) sums(avx, s, run(dy, n, C, inner, c), run(x, n, C, inner, c), inner, mean);
    double invstd = save_invstd[c];
    if (dbias) dbias[c] += (float)s[0];
    if (dweight) dweight[c] += (float)(s[1] * invstd);
    if (dx) {
      double w = weight ? weight[c] : 1.0;
      float k = (float)(w * invstd);                             /* dy scale */
      float gmean = (float)(s[0] / (double)m);                    /* mean(dy) */
      float proj = (float)(s[1] / (double)m * invstd * invstd); /* per unit of (x - mean) */
      for (int n = 0; n < N; n++)
        affine(avx, dx + ((long)n * C + c) * inner, run(x, n, C, inner, c),
               run(dy, n, C, inner, c), inner, mean, k, 0.0f, gmean, proj, acc);
    }
  }
}

void nnl_batchnorm_backward_train(float *dx, float *dweight, float *dbias, const float *dy,
                                  const float *x, const float *save_mean,
                                  const float *save_invstd, const float *weight, int N, int C,
                                  int inner) {
  backward_train(dx, dweight, dbias, dy, x, save_mean, save_invstd, weight, N, C, inner, 1);
}

void nnl_batchnorm_backward_train_into(float *dx, float *dweight, float *dbias, const float *dy,
                                       const float *x, const float *save_mean,
                                       const float *save_invstd, const float *weight, int N, int C,
                                       int inner) {
  backward_train(dx, dweight, dbias, dy, x, save_mean, save_invstd, weight, N, C, inner, 0);
}

/* One scale and shift per channel, as PyTorch's CPU kernel: y = x * scale + (bias - mean * scale). */
void nnl_batchnorm_forward_eval(float *y, const float *x, const float *running_mean,
                                const float *running_var, const float *weight, const float *bias,
                                int N, int C, int inner, double eps) {
  int avx = nnl_cpu_avx512();
#pragma omp parallel for schedule(static) if ((double)N * C * inner > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    double scale = (weight ? weight[c] : 1.0) / sqrt((double)running_var[c] + eps);
    float shift = (float)((bias ? bias[c] : 0.0) - running_mean[c] * scale);
    for (int n = 0; n < N; n++)
      affine(avx, y + ((long)n * C + c) * inner, run(x, n, C, inner, c), NULL, inner, 0.0f,
             (float)scale, shift, 0.0f, 0.0f, 0);
  }
}

static void backward_eval(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                          const float *running_mean, const float *running_var, const float *weight,
                          int N, int C, int inner, double eps, int acc) {
  int avx = nnl_cpu_avx512();
#pragma omp parallel for schedule(static) if ((double)N * C * inner > NNL_PAR_MIN)
  for (int c = 0; c < C; c++) {
    double invstd = 1.0 / sqrt((double)running_var[c] + eps);
    float mean = running_mean[c];
    if (dbias || dweight) { /* without dweight, x is not read: dy stands in for it */
      double s[2] = {0.0, 0.0};
      for (int n = 0; n < N; n++) {
        const float *gr = run(dy, n, C, inner, c);
        sums(avx, s, gr, dweight ? run(x, n, C, inner, c) : gr, inner, mean);
      }
      if (dbias) dbias[c] += (float)s[0];
      if (dweight) dweight[c] += (float)(s[1] * invstd);
    }
    if (dx) {
      float k = (float)((weight ? weight[c] : 1.0) * invstd);
      for (int n = 0; n < N; n++)
        affine(avx, dx + ((long)n * C + c) * inner, NULL, run(dy, n, C, inner, c), inner, 0.0f, k,
               0.0f, 0.0f, 0.0f, acc);
    }
  }
}

void nnl_batchnorm_backward_eval(float *dx, float *dweight, float *dbias, const float *dy,
                                 const float *x, const float *running_mean,
                                 const float *running_var, const float *weight, int N, int C,
                                 int inner, double eps) {
  backward_eval(dx, dweight, dbias, dy, x, running_mean, running_var, weight, N, C, inner, eps, 1);
}

void nnl_batchnorm_backward_eval_into(float *dx, float *dweight, float *dbias, const float *dy,
                                      const float *x, const float *running_mean,
                                      const float *running_var, const float *weight, int N, int C,
                                      int inner, double eps) {
  backward_eval(dx, dweight, dbias, dy, x, running_mean, running_var, weight, N, C, inner, eps, 0);
}
