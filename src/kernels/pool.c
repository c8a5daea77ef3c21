/* pool.c — max, average and adaptive-average 2-D pooling over NCHW, forward and backward.
 * Each (n, c) plane is independent: OpenMP hands whole planes to threads, so writes never race. */
#include "spatial.h"

#include "../core/parallel.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define NNL_AVX512 1 /* AVX-512 paths for the 2x2 and 3x3/2 max pools, when the CPU has them */
#include <immintrin.h>
#endif

/* ---- max pooling ---- */

/* The 2x2, stride 2, unpadded window: the common case, with its own loops. */
static int pool_2x2(const nnl_pool2d_dims *d) {
  return d->KH == 2 && d->KW == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
         d->pad_w == 0 && d->dil_h == 1 && d->dil_w == 1;
}

/* 3x3, stride 2, padding 1, no dilation: ResNet's stem. */
static int pool_3x3s2(const nnl_pool2d_dims *d) {
  return d->KH == 3 && d->KW == 3 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 1 &&
         d->pad_w == 1 && d->dil_h == 1 && d->dil_w == 1;
}

#ifdef NNL_AVX512
/* The first n lanes (n <= 16). */
static inline __mmask16 lanes(int n) { return (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1); }

/* Loads and stores of a row's last, partial vector: masked near the end of the plane (EDGE),
 * whole vectors before. Whole ones read into and write over later rows of the same plane, which
 * later steps then overwrite; on this kind of CPU (AMD Zen) they are several times faster than
 * masked ones. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
ld(const float *p, __mmask16 m, const int EDGE) {
  return EDGE ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
}
__attribute__((target("avx512f"), always_inline)) static inline void
st(float *p, __mmask16 m, __m512 v, const int EDGE) {
  if (EDGE) _mm512_mask_storeu_ps(p, m, v);
  else _mm512_storeu_ps(p, v);
}

/* Output row oh of maxpool_plane_2x2 sixteen outputs at a time: the even and odd columns of
 * both input rows are gathered into vectors, so a row of 14 outputs (28x28 input) is one step
 * instead of three vector steps and a branchy scalar tail. Same compares in the same order. */
__attribute__((target("avx512f"), always_inline)) static inline void
maxpool_row_2x2(float *y, int64_t *ind, const float *x, int W, int OW, int oh, const int EDGE) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane = _mm512_srli_epi32(even, 1);
  const float *r0 = x + (long)(2 * oh) * W, *r1 = r0 + W;
  for (int ow0 = 0; ow0 < OW; ow0 += 16) {
    int n = OW - ow0 < 16 ? OW - ow0 : 16;
    __mmask16 mo = lanes(n), m0 = lanes(2 * n), m1 = lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
    const float *p0 = r0 + 2 * ow0, *p1 = r1 + 2 * ow0;
    __m512 t0 = ld(p0, m0, EDGE), t1 = ld(p0 + 16, m1, EDGE);
    __m512 u0 = ld(p1, m0, EDGE), u1 = ld(p1 + 16, m1, EDGE);
    __m512 v[4] = {_mm512_permutex2var_ps(t0, even, t1), _mm512_permutex2var_ps(t0, odd, t1),
                   _mm512_permutex2var_ps(u0, even, u1), _mm512_permutex2var_ps(u0, odd, u1)};
    const int off[4] = {0, 1, W, W + 1};
    __m512 m = v[0];
    __m512i k = _mm512_setzero_si512();
    for (int j = 1; j < 4; j++) {
      __mmask16 s = _mm512_cmp_ps_mask(v[j], m, _CMP_GT_OQ) |
                    _mm512_cmp_ps_mask(v[j], v[j], _CMP_UNORD_Q);
      m = _mm512_mask_mov_ps(m, s, v[j]);
      k = _mm512_mask_mov_epi32(k, s, _mm512_set1_epi32(off[j]));
    }
    st(y + (long)oh * OW + ow0, mo, m, EDGE);
    if (!ind) continue;
    /* in-plane index 2*oh*W + 2*ow + k: fits an int for any plane we can index */
    __m512i at = _mm512_add_epi32(_mm512_add_epi32(k, _mm512_slli_epi32(lane, 1)),
                                  _mm512_set1_epi32(2 * oh * W + 2 * ow0));
    __m512i a0 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at));
    __m512i a1 = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1));
    int64_t *ir = ind + (long)oh * OW + ow0;
    if (EDGE) {
      _mm512_mask_storeu_epi64(ir, (__mmask8)mo, a0);
      _mm512_mask_storeu_epi64(ir + 8, (__mmask8)(mo >> 8), a1);
    } else {
      _mm512_storeu_si512(ir, a0);
      _mm512_storeu_si512(ir + 8, a1);
    }
  }
}

/* The first output row whose whole-vector steps would reach past the plane: its last step
 * touches input columns up to 2*L + 31 of row 2*oh + 1 and outputs up to L + 15 of row oh. */
static int edge_row(int H, int W, int OH, int OW) {
  long L = (OW - 1) / 16 * 16, oh = 0;
  while (oh < OH && (2 * oh + 1) * W + 2 * L + 32 <= (long)H * W &&
         oh * OW + L + 16 <= (long)OH * OW)
    oh++;
  return (int)oh;
}

__attribute__((target("avx512f"))) static void
maxpool_plane_2x2_avx512(float *y, int64_t *ind, const float *x, int H, int W, int OH, int OW) {
  int e = edge_row(H, W, OH, OW);
  for (int oh = 0; oh < e; oh++) maxpool_row_2x2(y, ind, x, W, OW, oh, 0);
  for (int oh = e; oh < OH; oh++) maxpool_row_2x2(y, ind, x, W, OW, oh, 1);
}

/* Input rows 2*oh, 2*oh + 1 of dx for the 2x2 pool, every element written: each output's
 * gradient goes to the window position its index names, the other three get zero (no scatter,
 * no memset); a column no window covers (odd W) is zeroed. */
__attribute__((target("avx512f"), always_inline)) static inline void
maxpool_back_row_2x2(float *dx, const float *dy, const int64_t *ind, int W, int OW, int oh,
                     const int EDGE) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 zero = _mm512_setzero_ps();
  float *d0 = dx + (long)(2 * oh) * W, *d1 = d0 + W;
  /* last step first: its spill from row 2*oh lands at the start of row 2*oh + 1, which the
   * first step then writes */
  for (int ow0 = (OW - 1) / 16 * 16; ow0 >= 0; ow0 -= 16) {
    int n = OW - ow0 < 16 ? OW - ow0 : 16;
    __mmask16 mo = lanes(n), m0 = lanes(2 * n), m1 = lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
    const int64_t *ir = ind + (long)oh * OW + ow0;
    __m512 g = ld(dy + (long)oh * OW + ow0, mo, EDGE);
    __m512i i0 = EDGE ? _mm512_maskz_loadu_epi64((__mmask8)mo, ir) : _mm512_loadu_si512(ir);
    __m512i i1 = EDGE ? _mm512_maskz_loadu_epi64((__mmask8)(mo >> 8), ir + 8)
                      : _mm512_loadu_si512(ir + 8);
    __m512i at = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(i0)),
                                    _mm512_cvtepi64_epi32(i1), 1);
    /* k = index - window origin: 0, 1, W or W + 1 */
    __m512i origin = _mm512_add_epi32(lane2, _mm512_set1_epi32(2 * oh * W + 2 * ow0));
    __m512i k = _mm512_sub_epi32(at, origin);
    __m512 a = _mm512_mask_mov_ps(zero, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(0)), g);
    __m512 b = _mm512_mask_mov_ps(zero, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(1)), g);
    __m512 c = _mm512_mask_mov_ps(zero, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(W)), g);
    __m512 e = _mm512_mask_mov_ps(zero, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(W + 1)), g);
    st(d0 + 2 * ow0, m0, _mm512_permutex2var_ps(a, lo, b), EDGE);
    st(d0 + 2 * ow0 + 16, m1, _mm512_permutex2var_ps(a, hi, b), EDGE);
    st(d1 + 2 * ow0, m0, _mm512_permutex2var_ps(c, lo, e), EDGE);
    st(d1 + 2 * ow0 + 16, m1, _mm512_permutex2var_ps(c, hi, e), EDGE);
  }
  if (W > 2 * OW) d0[W - 1] = d1[W - 1] = 0.0f;
}

__attribute__((target("avx512f"))) static void
maxpool_plane_2x2_back_avx512(float *dx, const float *dy, const int64_t *ind, int H, int W,
                              int OH, int OW) {
  int e = edge_row(H, W, OH, OW);
  for (int oh = 0; oh < e; oh++) maxpool_back_row_2x2(dx, dy, ind, W, OW, oh, 0);
  for (int oh = e; oh < OH; oh++) maxpool_back_row_2x2(dx, dy, ind, W, OW, oh, 1);
  if (H > 2 * OH) memset(dx + (long)(H - 1) * W, 0, sizeof(float) * W);
}

/* ---- the 3x3, stride 2, padding 1 window (ResNet's stem) ----
 * Output column ow reads input columns 2ow-1 (L), 2ow (E), 2ow+1 (O) of rows 2oh-1, 2oh, 2oh+1.
 * Sixteen outputs at a time: E and O are the even and odd columns of 32 loaded floats, L is O
 * moved up one lane with the previous step's last O in lane 0. Positions outside the image read
 * as -inf, which never wins a compare; the running maximum starts from the window's first
 * in-image element, so the compares (strict >, NaN wins) are the generic loop's, in its order. */

/* t[0], t[1]: the 32 floats at p, -inf from the n-th on (n <= 32); whole loads when they stay
 * inside the plane (end), masked ones when they would run past it. */
__attribute__((target("avx512f"), always_inline)) static inline void
ld32(__m512 t[2], const float *p, int n, const float *end) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  if (n >= 32 && p + 32 <= end) {
    t[0] = _mm512_loadu_ps(p);
    t[1] = _mm512_loadu_ps(p + 16);
    return;
  }
  __mmask16 m0 = lanes(n), m1 = lanes(n > 16 ? n - 16 : 0);
  if (p + 32 <= end) {
    t[0] = _mm512_mask_mov_ps(ninf, m0, _mm512_loadu_ps(p));
    t[1] = _mm512_mask_mov_ps(ninf, m1, _mm512_loadu_ps(p + 16));
  } else {
    t[0] = _mm512_mask_loadu_ps(ninf, m0, p);
    t[1] = _mm512_mask_loadu_ps(ninf, m1, p + 16);
  }
}

/* v[0..2]: columns L, E, O of the 16 windows at ow0 in input row p (n columns left in the row);
 * *carry: this row's O of the step before (lane 15 is column 2*ow0 - 1), replaced by this O. */
__attribute__((target("avx512f"), always_inline)) static inline void
leo(__m512 v[3], __m512 *carry, const float *p, int n, const float *end) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 t[2];
  ld32(t, p, n, end);
  v[1] = _mm512_permutex2var_ps(t[0], even, t[1]);
  v[2] = _mm512_permutex2var_ps(t[0], odd, t[1]);
  v[0] = _mm512_castsi512_ps(
      _mm512_alignr_epi32(_mm512_castps_si512(v[2]), _mm512_castps_si512(*carry), 15));
  *carry = v[2];
}

/* One compare of the scan: v wins where it is greater or NaN; k records its offset. */
__attribute__((target("avx512f"), always_inline)) static inline void
take(__m512 *m, __m512i *k, __m512 v, int at) {
  __mmask16 s = _mm512_cmp_ps_mask(v, *m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  *m = _mm512_mask_mov_ps(*m, s, v);
  *k = _mm512_mask_mov_epi32(*k, s, _mm512_set1_epi32(at));
}

/* Output row oh of one plane; TOP: row 2oh-1 is inside the image, BOT: row 2oh+1 is. */
__attribute__((target("avx512f"), always_inline)) static inline void
maxpool_row_3x3s2(float *y, int64_t *ind, const float *x, int H, int W, int OW, int oh,
                  const int TOP, const int BOT) {
  const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  const float *end = x + (long)H * W, *mid = x + (long)(2 * oh) * W;
  int rm = 2 * oh * W; /* offsets of row 2oh's columns */
  __m512 ct = ninf, cm = ninf, cb = ninf;
  for (int ow0 = 0; ow0 < OW; ow0 += 16) {
    int n = W - 2 * ow0 < 32 ? W - 2 * ow0 : 32;
    __m512 t[3], c[3], b[3], m;
    __m512i k;
    leo(c, &cm, mid + 2 * ow0, n, end);
    if (TOP) {
      leo(t, &ct, mid - W + 2 * ow0, n, end);
      m = t[0], k = _mm512_set1_epi32(rm - W - 1); /* the window's first element, taken as is */
      if (ow0 == 0) /* column -1 is outside: lane 0 starts from column 0 */
        m = _mm512_mask_mov_ps(m, 1, t[1]),
        k = _mm512_mask_mov_epi32(k, 1, _mm512_set1_epi32(rm - W));
      take(&m, &k, t[1], rm - W);
      take(&m, &k, t[2], rm - W + 1);
      take(&m, &k, c[0], rm - 1);
    } else {
      m = c[0], k = _mm512_set1_epi32(rm - 1);
      if (ow0 == 0)
        m = _mm512_mask_mov_ps(m, 1, c[1]), k = _mm512_mask_mov_epi32(k, 1, _mm512_set1_epi32(rm));
    }
    take(&m, &k, c[1], rm);
    take(&m, &k, c[2], rm + 1);
    if (BOT) {
      leo(b, &cb, mid + W + 2 * ow0, n, end);
      take(&m, &k, b[0], rm + W - 1);
      take(&m, &k, b[1], rm + W);
      take(&m, &k, b[2], rm + W + 1);
    }
    int no = OW - ow0 < 16 ? OW - ow0 : 16;
    __mmask16 mo = lanes(no);
    float *yr = y + (long)oh * OW + ow0;
    if (no == 16) _mm512_storeu_ps(yr, m);
    else _mm512_mask_storeu_ps(yr, mo, m);
    if (!ind) continue;
    __m512i at = _mm512_add_epi32(k, _mm512_add_epi32(lane2, _mm512_set1_epi32(2 * ow0)));
    __m512i a0 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at));
    __m512i a1 = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1));
    int64_t *ir = ind + (long)oh * OW + ow0;
    if (no == 16) {
      _mm512_storeu_si512(ir, a0);
      _mm512_storeu_si512(ir + 8, a1);
    } else {
      _mm512_mask_storeu_epi64(ir, (__mmask8)mo, a0);
      _mm512_mask_storeu_epi64(ir + 8, (__mmask8)(mo >> 8), a1);
    }
  }
}

__attribute__((target("avx512f"))) static void
maxpool_plane_3x3s2_avx512(float *y, int64_t *ind, const float *x, int H, int W, int OH, int OW) {
  int last = OH - 1, lastbot = 2 * last + 1 < H;
  if (OH == 1) {
    if (lastbot) maxpool_row_3x3s2(y, ind, x, H, W, OW, 0, 0, 1);
    else maxpool_row_3x3s2(y, ind, x, H, W, OW, 0, 0, 0);
    return;
  }
  maxpool_row_3x3s2(y, ind, x, H, W, OW, 0, 0, 1);
  for (int oh = 1; oh < last; oh++) maxpool_row_3x3s2(y, ind, x, H, W, OW, oh, 1, 1);
  if (lastbot) maxpool_row_3x3s2(y, ind, x, H, W, OW, last, 1, 1);
  else maxpool_row_3x3s2(y, ind, x, H, W, OW, last, 1, 0);
}

/* One input row's part of the gradient of 16 outputs: g where the index offset k names column L,
 * E or O of this row (offset r0 - 1, r0, r0 + 1); gn: the L part of the window right of the 16,
 * which lands on the last odd column. Stored (+= with ADD) as 32 columns, n of them in the row. */
__attribute__((target("avx512f"), always_inline)) static inline void
back_row(float *p, __m512 g, __m512i k, int r0, float gn, int n, const int ADD) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  __m512 l = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(r0 - 1)), g);
  __m512 e = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(r0)), g);
  __m512 o = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(r0 + 1)), g);
  /* odd column 2ow+1 is also the next window's L */
  o = _mm512_add_ps(o, _mm512_castsi512_ps(_mm512_alignr_epi32(
                           _mm512_castps_si512(_mm512_set1_ps(gn)), _mm512_castps_si512(l), 1)));
  __m512 a = _mm512_permutex2var_ps(e, lo, o), b = _mm512_permutex2var_ps(e, hi, o);
  if (n >= 32) {
    if (ADD) {
      a = _mm512_add_ps(a, _mm512_loadu_ps(p));
      b = _mm512_add_ps(b, _mm512_loadu_ps(p + 16));
    }
    _mm512_storeu_ps(p, a);
    _mm512_storeu_ps(p + 16, b);
    return;
  }
  __mmask16 m0 = lanes(n), m1 = lanes(n > 16 ? n - 16 : 0);
  if (ADD) {
    a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(m0, p));
    b = _mm512_add_ps(b, _mm512_maskz_loadu_ps(m1, p + 16));
  }
  _mm512_mask_storeu_ps(p, m0, a);
  _mm512_mask_storeu_ps(p + 16, m1, b);
}

/* The gradient of output row oh onto input rows 2oh-1 (TOP; added, as the row before's bottom
 * row got there first), 2oh and 2oh+1 (BOT; stored, or added with ACC). Each output's gradient
 * goes to the one of its nine positions its index names. Every input row and column lies in
 * some window, so with ACC = 0 the whole plane gets written. */
__attribute__((target("avx512f"), always_inline)) static inline void
maxpool_back_row_3x3s2(float *dx, const float *dy, const int64_t *ind, int W, int OW, int oh,
                       const int TOP, const int BOT, const int ACC) {
  const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  int rm = 2 * oh * W;
  float *mid = dx + rm;
  for (int ow0 = 0; ow0 < OW; ow0 += 16) {
    int no = OW - ow0 < 16 ? OW - ow0 : 16, n = W - 2 * ow0 < 32 ? W - 2 * ow0 : 32;
    long o = (long)oh * OW + ow0;
    __m512 g;
    __m512i i0, i1;
    if (no == 16) {
      g = _mm512_loadu_ps(dy + o);
      i0 = _mm512_loadu_si512(ind + o), i1 = _mm512_loadu_si512(ind + o + 8);
    } else {
      __mmask16 mo = lanes(no);
      g = _mm512_maskz_loadu_ps(mo, dy + o);
      i0 = _mm512_maskz_loadu_epi64((__mmask8)mo, ind + o);
      i1 = _mm512_maskz_loadu_epi64((__mmask8)(mo >> 8), ind + o + 8);
    }
    __m512i at = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(i0)),
                                    _mm512_cvtepi64_epi32(i1), 1);
    /* k: the index minus the window's centre 2oh*W + 2ow, one of -W-1 .. W+1 */
    __m512i k = _mm512_sub_epi32(at, _mm512_add_epi32(lane2, _mm512_set1_epi32(rm + 2 * ow0)));
    long kn = no == 16 && ow0 + 16 < OW ? ind[o + 16] - (rm + 2 * (ow0 + 16)) : 0;
    float gn = no == 16 && ow0 + 16 < OW ? dy[o + 16] : 0.0f;
    if (TOP) back_row(mid - W + 2 * ow0, g, k, -W, kn == -W - 1 ? gn : 0.0f, n, 1);
    back_row(mid + 2 * ow0, g, k, 0, kn == -1 ? gn : 0.0f, n, ACC);
    if (BOT) back_row(mid + W + 2 * ow0, g, k, W, kn == W - 1 ? gn : 0.0f, n, ACC);
  }
}

__attribute__((target("avx512f"))) static void
maxpool_plane_3x3s2_back_avx512(float *dx, const float *dy, const int64_t *ind, int H, int W,
                                int OH, int OW, int acc) {
#define BACK_ROWS(ACC)                                                                        \
  do {                                                                                        \
    int last = OH - 1, lastbot = 2 * last + 1 < H;                                            \
    if (OH == 1) {                                                                            \
      if (lastbot) maxpool_back_row_3x3s2(dx, dy, ind, W, OW, 0, 0, 1, ACC);                   \
      else maxpool_back_row_3x3s2(dx, dy, ind, W, OW, 0, 0, 0, ACC);                           \
      break;                                                                                  \
    }                                                                                         \
    maxpool_back_row_3x3s2(dx, dy, ind, W, OW, 0, 0, 1, ACC);                                  \
    for (int oh = 1; oh < last; oh++) maxpool_back_row_3x3s2(dx, dy, ind, W, OW, oh, 1, 1, ACC); \
    if (lastbot) maxpool_back_row_3x3s2(dx, dy, ind, W, OW, last, 1, 1, ACC);                  \
    else maxpool_back_row_3x3s2(dx, dy, ind, W, OW, last, 1, 0, ACC);                          \
  } while (0)
  if (acc) BACK_ROWS(1);
  else BACK_ROWS(0);
#undef BACK_ROWS
}
#endif

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
  int fast = pool_2x2(d), wide = fast && nnl_cpu_avx512(), s2 = pool_3x3s2(d) && nnl_cpu_avx512();
  (void)wide, (void)s2;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    int64_t *ind = indices ? indices + pl * P : NULL;
#ifdef NNL_AVX512
    if (wide)
      maxpool_plane_2x2_avx512(y + pl * P, ind, x + pl * HW, d->H, d->W, OH, OW);
    else if (s2)
      maxpool_plane_3x3s2_avx512(y + pl * P, ind, x + pl * HW, d->H, d->W, OH, OW);
    else
#endif
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
  int wide = zero && pool_2x2(d) && nnl_cpu_avx512(), s2 = pool_3x3s2(d) && nnl_cpu_avx512();
  (void)wide, (void)s2;
#pragma omp parallel for schedule(static) if (planes * HW > NNL_PAR_MIN)
  for (long pl = 0; pl < planes; pl++) {
    float *dxp = dx + pl * HW;
    const float *dyp = dy + pl * P;
    const int64_t *ip = indices + pl * P;
#ifdef NNL_AVX512
    if (wide) {
      maxpool_plane_2x2_back_avx512(dxp, dyp, ip, d->H, d->W, OH, OW);
      continue;
    }
    if (s2) {
      maxpool_plane_3x3s2_back_avx512(dxp, dyp, ip, d->H, d->W, OH, OW, !zero);
      continue;
    }
#endif
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
