/* gemm_avx512.c — packed sgemm (GotoBLAS/BLIS layout) with a 14x32 AVX-512 micro-kernel.
 * OpenBLAS runs its AVX2 kernels on Zen 5 here; this one uses the full 512-bit FMA pipes. */
#include "gemm.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/parallel.h"

/* C is computed in MR x NR tiles held in 28 zmm accumulators: each k step loads two vectors of a
 * packed B panel (NR = 32 columns) and broadcasts MR = 14 values of a packed A panel. The B panel
 * (KC x NR, 32 KB) stays in the 48 KB L1 while the A block (MC x KC) streams from L2 past it; the
 * B block (KC x NC) lives in L3. */
#define MR 14
#define NR 32
#define KC 256
#define MC 168
#define NC 2048
/* Products with fewer multiply-adds than this stay on one thread. */
#define GEMM_PAR_MIN (1L << 20)
/* A thread's part of C has at least this many rows or columns (when there are enough): packing
 * the other operand again costs about as much as 16 multiply-adds per element. */
#define PART_MIN 320

#define AVX512 __attribute__((target("avx512f")))

/* ---- packing buffers ----
 * A pool of buffers, one per concurrent caller, all reachable from `pool` until exit: a call
 * takes free ones under the lock and gives them back, so threads inside a caller's parallel
 * region (conv runs one gemm per image) allocate only the first time they outnumber the pool. */

typedef struct buf {
  float *a; /* (MC, KC) packed A block */
  float *b; /* (KC, NC) packed B block */
  int busy;
  struct buf *next;
} buf;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static buf *pool = NULL;

static buf *buf_take(void) {
  pthread_mutex_lock(&pool_lock);
  buf *p = pool;
  while (p && p->busy) p = p->next;
  if (p == NULL && (p = calloc(1, sizeof *p)) != NULL) {
    p->a = aligned_alloc(64, sizeof(float) * MC * KC);
    p->b = aligned_alloc(64, sizeof(float) * KC * NC);
    if (p->a == NULL || p->b == NULL) {
      free(p->a), free(p->b), free(p);
      p = NULL;
    } else {
      p->next = pool;
      pool = p;
    }
  }
  if (p) p->busy = 1;
  pthread_mutex_unlock(&pool_lock);
  return p;
}

static void buf_give(buf *p) {
  pthread_mutex_lock(&pool_lock);
  p->busy = 0;
  pthread_mutex_unlock(&pool_lock);
}

/* ---- packing ---- */

static inline __mmask16 lanes(int n) { /* the first n of 16 lanes (n may be <= 0 or > 16) */
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* 16x16 transpose of r[0..15] in registers (row i becomes column i). */
#define UNROLL _Pragma("GCC unroll 16")
AVX512 static inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  UNROLL for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  UNROLL for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  UNROLL for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  UNROLL for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

/* Reads the 16 x kc block s[i * ld + k] (rows past `live` as zeros) 16 columns at a time and
 * stores column k transposed, as 16 values, at d + k * dld under mask `keep`. Rows are read
 * a few lines ahead: sixteen strided streams are more than the hardware prefetcher follows. */
AVX512 static void transpose_rows(float *d, long dld, __mmask16 keep, const float *s, long ld,
                                  int live, int kc) {
  for (int k = 0; k < kc; k += 16) {
    __mmask16 km = lanes(kc - k);
    __m512 r[16];
    UNROLL for (int i = 0; i < 16; i++) {
      const float *row = s + (long)(i < live ? i : 0) * ld + k;
      r[i] = _mm512_maskz_loadu_ps(i < live ? km : 0, row);
      if (i < live && k + 64 < kc) _mm_prefetch((const char *)(row + 64), _MM_HINT_T0);
    }
    transpose16(r);
    int kn = kc - k < 16 ? kc - k : 16;
    UNROLL for (int i = 0; i < 16; i++)
      if (i < kn) _mm512_mask_storeu_ps(d + (long)(k + i) * dld, keep, r[i]);
  }
}

/* a: (mc/MR panels, kc, MR) <- rows [0, mc) and columns [0, kc) of op(A), zero rows past mc.
 * A points at op(A)[0, 0]. */
AVX512 static void pack_a(float *a, const float *A, long lda, int ta, int mc, int kc) {
  if (ta) { /* op(A)[i, k] = A[k, i]: each k is a contiguous run of rows; walk A row by row */
    for (int k = 0; k < kc; k++)
      for (int r = 0; r < mc; r += MR)
        _mm512_mask_storeu_ps(a + (long)r * kc + (long)k * MR, lanes(MR),
                              _mm512_maskz_loadu_ps(lanes(mc - r), A + (long)k * lda + r));
    return;
  }
  for (int r = 0; r < mc; r += MR, a += (long)kc * MR)
    transpose_rows(a, MR, lanes(MR), A + (long)r * lda, lda, mc - r < MR ? mc - r : MR, kc);
}

/* b: (nc/NR panels, kc, NR) <- rows [0, kc) and columns [0, nc) of op(B), zero columns past nc.
 * B points at op(B)[0, 0]. */
AVX512 static void pack_b(float *b, const float *B, long ldb, int tb, int kc, int nc) {
  if (!tb) { /* op(B)[k, j] = B[k, j]: each k is a contiguous run of columns; walk B row by row */
    for (int k = 0; k < kc; k++) {
      const float *s = B + (long)k * ldb;
      float *d = b + (long)k * NR;
      for (int c = 0; c < nc; c += NR, d += (long)kc * NR) {
        __mmask16 m0 = lanes(nc - c), m1 = lanes(nc - c - 16);
        _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s + c));
        _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + c + 16));
      }
    }
    return;
  }
  for (int c = 0; c < nc; c += NR, b += (long)kc * NR) {
    int cols = nc - c < NR ? nc - c : NR;
    /* op(B)[k, j] = B[j, k]: transpose 16x16 tiles */
    for (int h = 0; h < NR; h += 16)
      if (cols > h)
        transpose_rows(b + h, NR, 0xffff, B + (long)(c + h) * ldb, ldb, cols - h, kc);
      else
        for (int k = 0; k < kc; k++) _mm512_store_ps(b + (long)k * NR + h, _mm512_setzero_ps());
  }
}

/* ---- the micro-kernel ---- */

typedef struct {
  const float *bias; /* this tile's columns of the column bias, or NULL */
  int relu;
} epilogue;

/*
 * C[0:m, 0:n] = alpha * a^T b + beta * C for packed a (kc, MR) and b (kc, NR) with rows bs apart
 * (NR when packed), m <= rows <= MR, n <= NR; beta = 0 stores without reading C. `rows` is a
 * constant in each copy: a last panel of 8 or 4 rows (M = 64 = 4 * 14 + 8) does not pay for 14,
 * and `wide` one of at most 16 columns not for 32. The epilogue adds the column bias and applies
 * ReLU on the tile in registers (the caller passes them with the first and the last K block). */
AVX512 static inline __attribute__((always_inline)) void
tile(const int rows, const int wide, int kc, const float *restrict a, const float *restrict b,
     long bs, float *c, long ldc, int m, int n, float alpha, float beta, const epilogue *ep) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
  for (int i = 0; i < rows; i++) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
#pragma GCC unroll 14
  for (int i = 0; i < rows; i++)
    if (i < m) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
  for (int p = 0; p < kc; p++) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = wide ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 14
    for (int i = 0; i < rows; i++) {
      __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      if (wide) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    a += MR;
    b += bs;
  }
  __mmask16 m0 = lanes(n), m1 = lanes(n - 16);
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
  __m512 bias0 = zero, bias1 = zero;
  if (ep->bias) {
    bias0 = _mm512_maskz_loadu_ps(m0, ep->bias);
    if (wide) bias1 = _mm512_maskz_loadu_ps(m1, ep->bias + 16);
  }
#pragma GCC unroll 14
  for (int i = 0; i < rows; i++) {
    if (i >= m) break;
    float *r = c + i * ldc;
    __m512 x0 = _mm512_fmadd_ps(va, c0[i], bias0), x1 = _mm512_fmadd_ps(va, c1[i], bias1);
    if (beta != 0.0f) {
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, r), x0);
      if (wide) x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, r + 16), x1);
    }
    if (ep->relu) { /* x < 0 ? 0 : x, so NaN and -0 stay (torch.relu) */
      x0 = _mm512_mask_mov_ps(x0, _mm512_cmp_ps_mask(x0, zero, _CMP_LT_OQ), zero);
      if (wide) x1 = _mm512_mask_mov_ps(x1, _mm512_cmp_ps_mask(x1, zero, _CMP_LT_OQ), zero);
    }
    _mm512_mask_storeu_ps(r, m0, x0);
    if (wide) _mm512_mask_storeu_ps(r + 16, m1, x1);
  }
}

AVX512 static void kernel(int kc, const float *restrict a, const float *restrict b, long bs,
                          float *c, long ldc, int m, int n, float alpha, float beta,
                          const epilogue *ep) {
  if (n > 16) {
    if (m > 8)
      tile(MR, 1, kc, a, b, bs, c, ldc, m, n, alpha, beta, ep);
    else if (m > 4)
      tile(8, 1, kc, a, b, bs, c, ldc, m, n, alpha, beta, ep);
    else
      tile(4, 1, kc, a, b, bs, c, ldc, m, n, alpha, beta, ep);
  } else if (m > 8) /* a panel of at most 16 columns (N = 200 = 6 * 32 + 8; N = 10) */
    tile(MR, 0, kc, a, b, bs, c, ldc, m, n, alpha, beta, ep);
  else
    tile(8, 0, kc, a, b, bs, c, ldc, m, n, alpha, beta, ep);
}

/* ---- one thread's product ---- */

/* n parts of about equal size, each a multiple of `unit` (the last takes the rest) */
static int split(int total, int parts, int unit) {
  int size = (total + parts - 1) / parts;
  return (size + unit - 1) / unit * unit;
}

/* 1 when rows ld floats apart start in at least half of L1's 64 sets (of 64-byte lines): a
 * KC x NR panel read in place then fits; strides near a multiple of 4 KB would thrash a few sets. */
static int spread(long ld) {
  uint64_t used = 0;
  for (long r = 0; r < 64; r++) used |= 1ull << ((r * ld / 16) & 63);
  return __builtin_popcountll(used) >= 32;
}

/* C[M,N] = alpha op(A) op(B) + beta C on the calling thread with packing buffers p. */
AVX512 static void gemm_serial(buf *p, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, long lda, const float *B, long ldb, float beta,
                               float *C, long ldc, const float *bias, int relu) {
  int kb = split(K, (K + KC - 1) / KC, 1), mb = split(M, (M + MC - 1) / MC, MR);
  for (int jc = 0; jc < N; jc += NC) {
    int nc = N - jc < NC ? N - jc : NC;
    for (int pc = 0; pc < K; pc += kb) {
      int kc = K - pc < kb ? K - pc : kb;
      float be = pc == 0 ? beta : 1.0f;
      epilogue ep = {pc == 0 ? bias : NULL, pc + kc == K && relu}; /* bias once, ReLU at the end */
      /* op(B) = B is read in place when one A block covers M (so each panel is read once either
       * way) and its rows spread over L1's sets; only a last narrow panel is packed then */
      const float *Bk = B + (long)pc * ldb + jc;
      int direct = !tb && M <= mb && spread(ldb), full = direct ? nc / NR * NR : 0;
      if (!direct)
        pack_b(p->b, tb ? B + (long)jc * ldb + pc : Bk, ldb, tb, kc, nc);
      else if (full < nc)
        pack_b(p->b, Bk + full, ldb, 0, kc, nc - full);
      for (int ic = 0; ic < M; ic += mb) {
        int mc = M - ic < mb ? M - ic : mb;
        pack_a(p->a, ta ? A + (long)pc * lda + ic : A + (long)ic * lda + pc, lda, ta, mc, kc);
        for (int jr = 0; jr < nc; jr += NR) {
          epilogue epj = {ep.bias ? ep.bias + jc + jr : NULL, ep.relu};
          for (int ir = 0; ir < mc; ir += MR)
            kernel(kc, p->a + (long)ir * kc,
                   jr < full ? Bk + jr : p->b + (long)(jr - full) * kc, jr < full ? ldb : NR,
                   C + (long)(ic + ir) * ldc + jc + jr, ldc, mc - ir < MR ? mc - ir : MR,
                   nc - jr < NR ? nc - jr : NR, alpha, be, &epj);
        }
      }
    }
  }
}

/* ---- entry ---- */

static int have_avx512 = 0;
static pthread_once_t have_once = PTHREAD_ONCE_INIT;

static void have_init(void) {
  have_avx512 = nnl_cpu_avx512();
}

int nnl_sgemm_avx512_available(void) {
  pthread_once(&have_once, have_init);
  return have_avx512;
}

/* Splitting C between threads: by columns (each thread packs all of A and its share of B) or by
 * rows (each packs all of B and its share of A). Pick the side with the smaller estimated time of
 * the busiest thread: its tiles (padding included) plus its packing at ~16 multiply-adds an
 * element. */
static int split_by_rows(int M, int N, int K, int T) {
  int np = (N + NR - 1) / NR, mp = (M + MR - 1) / MR;
  if (mp < T) return 0;
  if (np < T) return 1;
  double a = (double)M * K, b = (double)K * N;
  double by_cols = (double)((np + T - 1) / T) * NR * mp * MR * K + 16.0 * (a + b / T);
  double by_rows = (double)((mp + T - 1) / T) * MR * np * NR * K + 16.0 * (b + a / T);
  return by_rows < by_cols;
}

/* What a part of len rows costs in tile rows: whole panels, then one of 4, 8 or MR rows. */
static int row_cost(int len) {
  int r = len % MR;
  return len / MR * MR + (r == 0 ? 0 : r <= 4 ? 4 : r <= 8 ? 8 : MR);
}

/* What the busiest part costs when M rows go in parts of s rows (the last takes the rest). */
static int busiest(int M, int s) {
  int last = M - (M + s - 1) / s * s + s;
  return row_cost(s) > row_cost(last) ? row_cost(s) : row_cost(last);
}

/* The rows per part for T parts whose busiest part costs least: 100 rows on 2 threads as 50 + 50
 * (3 panels and one of 8 rows each), not 56 + 44. A multiple of MR when nothing is cheaper. */
static int row_step(int M, int T) {
  int best = split(M, T, MR), even = (M + T - 1) / T;
  for (int s = even; s < even + MR; s++)
    if (busiest(M, s) < busiest(M, best)) best = s;
  return best;
}

int nnl_sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const float *bias, int relu, int nthreads) {
  if (!nnl_sgemm_avx512_available() || M < 1 || N < 1 || K < 1) return -1;
  int T = 1;
  if (!omp_in_parallel() && (double)M * N * K >= GEMM_PAR_MIN) {
    T = nthreads > 0 ? nthreads : omp_get_max_threads();
    int most = ((M + MR - 1) / MR > (N + NR - 1) / NR ? (M + MR - 1) / MR : (N + NR - 1) / NR);
    if (T > most) T = most;
    if (T > 64) T = 64;
  }
  buf *bufs[64];
  for (int t = 0; t < T; t++)
    if ((bufs[t] = buf_take()) == NULL) {
      while (t-- > 0) buf_give(bufs[t]);
      return -1;
    }
  if (T == 1) {
    gemm_serial(bufs[0], trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias,
                relu);
    buf_give(bufs[0]);
    return 0;
  }
  /* Parts are handed out dynamically, so a thread whose core is busy with something else takes
   * fewer; more parts cost more duplicated packing, so each part keeps PART_MIN rows or columns. */
  int rows = split_by_rows(M, N, K, T), dim = rows ? M : N, unit = rows ? MR : NR;
  int parts = dim / PART_MIN / T * T;
  if (parts > 4 * T) parts = 4 * T;
  if (parts < T) parts = T;
  int step = rows && parts == T ? row_step(M, T) : split(dim, parts, unit);
  parts = (dim + step - 1) / step;
#pragma omp parallel num_threads(T)
  {
    buf *p = bufs[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < parts; t++) {
      int lo = t * step, len = dim - lo < step ? dim - lo : step;
      if (rows)
        gemm_serial(p, trans_a, trans_b, len, N, K, alpha, trans_a ? A + lo : A + (long)lo * lda,
                    lda, B, ldb, beta, C + (long)lo * ldc, ldc, bias, relu);
      else
        gemm_serial(p, trans_a, trans_b, M, len, K, alpha, A, lda,
                    trans_b ? B + (long)lo * ldb : B + lo, ldb, beta, C + lo, ldc,
                    bias ? bias + lo : NULL, relu);
    }
  }
  for (int t = 0; t < T; t++) buf_give(bufs[t]);
  return 0;
}
