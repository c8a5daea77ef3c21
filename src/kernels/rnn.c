/* rnn.c — Elman RNN, LSTM and GRU over a whole sequence: forward, and backpropagation through
 * time with one sgemm per step for the recurrence and one per weight for everything else. */
#include "rnn.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "blas.h"

/* Bias gradients sum columns in blocks: a thread owns a block and walks the rows in order. */
#define COL_BLOCK 64
/* Products (and per-step products) smaller than this many multiply-adds run on one thread. */
#define GEMM_PAR_MIN (1 << 20)

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* glibc's tanhf costs ten times its expf here, and the gate pass takes two per element. Near 0
 * the series avoids the cancellation in 1 - e (its next term is below 1e-8 relative); the
 * error stays within 4 ulp everywhere. */
static inline float tanh_(float x) {
  float a = fabsf(x);
  if (a < 0.25f) {
    float x2 = x * x;
    return x + x * x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835))));
  }
  float e = expf(-2.0f * a);
  return copysignf((1.0f - e) / (1.0f + e), x);
}

/* ---- pieces shared by the three cells ---- */

/* C[M,N] = A @ op(B) + beta C (alpha 1), each thread computing a block of whole 16-column panels
 * of C with a single-threaded sgemm (OpenBLAS runs serially inside a parallel region). OpenBLAS's
 * own threading split a product with few rows - a step's, whose rows are the batch - by rows, so
 * each of its threads packed all of W_hh: two threads measured no faster than one on
 * (25 x 512) @ (512 x 2048), and its threads slowed down badly on shared cores; by columns the
 * products here ran 1.8 times faster on two threads than on one. */
static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  if ((int64_t)M * N * K < GEMM_PAR_MIN || N < 32) {
    nnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel
  {
    int t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
    int j0 = t ? (int)((int64_t)N * t / nt) & ~15 : 0;
    int j1 = t + 1 < nt ? (int)((int64_t)N * (t + 1) / nt) & ~15 : N;
    if (j1 > j0)
      nnl_sgemm(ta, tb, M, j1 - j0, K, 1.0f, A, lda, tb ? B + (int64_t)j0 * ldb : B + j0, ldb,
                beta, C + j0, ldc);
  }
}

/* A[T*N, GH] = X[T*N, D] @ Wih^T + b1 + b2: the input projection of every timestep at once. */
static void project_inputs(float *A, const float *X, const float *Wih, const float *b1,
                           const float *b2, int TN, int D, int GH) {
  if (b1 || b2) {
#pragma omp parallel for if ((int64_t)TN * GH > NNL_PAR_MIN)
    for (int r = 0; r < TN; r++) {
      float *a = A + (int64_t)r * GH;
      for (int k = 0; k < GH; k++) a[k] = (b1 ? b1[k] : 0.0f) + (b2 ? b2[k] : 0.0f);
    }
  }
  gemm(0, 1, TN, GH, D, X, D, Wih, D, (b1 || b2) ? 1.0f : 0.0f, A, GH);
}

/* db[c] += sum_r dA[r, c] for each non-NULL db. */
static void column_sums(float *db1, float *db2, const float *dA, int rows, int cols) {
  if (!db1 && !db2) return;
  int nblocks = (cols + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for if ((int64_t)rows * cols > NNL_PAR_MIN)
  for (int blk = 0; blk < nblocks; blk++) {
    int c0 = blk * COL_BLOCK, len = cols - c0 < COL_BLOCK ? cols - c0 : COL_BLOCK;
    float acc[COL_BLOCK];
    for (int j = 0; j < len; j++) acc[j] = 0.0f;
    for (int r = 0; r < rows; r++) {
      const float *d = dA + (int64_t)r * cols + c0;
      for (int j = 0; j < len; j++) acc[j] += d[j];
    }
    for (int j = 0; j < len; j++) {
      if (db1) db1[c0 + j] += acc[j];
      if (db2) db2[c0 + j] += acc[j];
    }
  }
}

/* The weight and input gradients once every step's gate gradients are known:
 * dWhh += sum_t dGh_t^T h_{t-1}, dWih += dGx^T X, dX += dGx Wih (one sgemm each; dWhh takes two
 * when h0 is given, because h0 does not sit in front of Y in memory). */
static void weight_grads(float *dX, float *dWih, float *dWhh, const float *dGx, const float *dGh,
                         const float *Y, const float *X, const float *h0, const float *Wih,
                         int T, int N, int D, int H, int GH) {
  int TN = T * N;
  if (dWhh) {
    /* dWhh[GH,H] += dGh[N..TN)^T @ Y[0..TN-N) */
    if (T > 1)
      gemm(1, 0, GH, H, TN - N, dGh + (int64_t)N * GH, GH, Y, H, 1.0f, dWhh, H);
    if (h0) gemm(1, 0, GH, H, N, dGh, GH, h0, H, 1.0f, dWhh, H);
  }
  /* dWih[GH,D] += dGx[TN,GH]^T @ X[TN,D] */
  if (dWih) gemm(1, 0, GH, D, TN, dGx, GH, X, D, 1.0f, dWih, D);
  /* dX[TN,D] += dGx[TN,GH] @ Wih[GH,D] */
  if (dX) gemm(0, 0, TN, D, GH, dGx, GH, Wih, D, 1.0f, dX, D);
}

/* ---- the time loop ----
 * The recurrence of a layer runs inside one parallel region. Each thread owns a slice [j0, j1) of
 * the hidden units (whole 16-column panels) for the whole sequence: it computes its units' columns
 * of every gate in the step's product (a single-threaded sgemm on its rows or columns of W_hh),
 * does their gate arithmetic, and meets the others at one barrier per step, once h_t (or the
 * gate gradients of step t) is complete. Two fork-joins per step cost more than the product
 * when the cores are shared with other programs. */

/* 1 if a step's product is worth a team of threads. */
static int team_worth(int N, int H, int G) { return (int64_t)N * G * H * H >= GEMM_PAR_MIN; }

/* This thread's hidden units [*j0, *j1). */
static void my_units(int H, int *j0, int *j1) {
  int t = 0, nt = 1;
#ifdef _OPENMP
  t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
  *j0 = t ? (int)((int64_t)H * t / nt) & ~15 : 0;
  *j1 = t + 1 < nt ? (int)((int64_t)H * (t + 1) / nt) & ~15 : H;
}

/* out[N, G*H] = h[N,H] @ Whh[G*H,H]^T + beta out, in the columns g*H + [j0, j1) of every gate g. */
static void step_product(float *out, const float *h, const float *Whh, int N, int H, int G,
                         int j0, int j1, float beta) {
  if (j0 == 0 && j1 == H) {
    nnl_sgemm(0, 1, N, G * H, H, 1.0f, h, H, Whh, H, beta, out, G * H);
    return;
  }
  for (int g = 0; g < G && j1 > j0; g++)
    nnl_sgemm(0, 1, N, j1 - j0, H, 1.0f, h, H, Whh + ((int64_t)g * H + j0) * H, H, beta,
              out + (int64_t)g * H + j0, G * H);
}

/* dh[N, j0:j1) = dG[N, G*H] @ Whh[G*H, j0:j1) + beta dh: the gradient reaching h_{t-1}. */
static void step_product_back(float *dh, const float *dG, const float *Whh, int N, int H, int G,
                              int j0, int j1, float beta) {
  if (j1 > j0)
    nnl_sgemm(0, 0, N, j1 - j0, G * H, 1.0f, dG, G * H, Whh + j0, H, beta, dh + j0, H);
}

/* dh[:, j0:j1) = dhT (or zeros) before the backward walk. */
static void init_state_grad(float *dh, const float *dhT, int N, int H, int j0, int j1) {
  for (int64_t n = 0; n < N; n++)
    for (int j = j0; j < j1; j++) dh[n * H + j] = dhT ? dhT[n * H + j] : 0.0f;
}

/* ---- Elman RNN ---- */

void nnl_rnn_forward(float *Y, const float *X, const float *h0, const float *Wih,
                     const float *Whh, const float *bih, const float *bhh, int T, int N, int D,
                     int H, int relu) {
  int64_t NH = (int64_t)N * H;
  /* Y holds the pre-activations of every step until the step turns them into h_t */
  project_inputs(Y, X, Wih, bih, bhh, T * N, D, H);
#pragma omp parallel if (team_worth(N, H, 1))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    for (int t = 0; t < T; t++) {
      float *y = Y + t * NH;
      const float *hp = t ? y - NH : h0;
      if (hp) step_product(y, hp, Whh, N, H, 1, j0, j1, 1.0f);
      for (int64_t n = 0; n < N; n++) {
        float *yn = y + n * H;
        for (int j = j0; j < j1; j++) yn[j] = relu ? (yn[j] > 0.0f ? yn[j] : 0.0f) : tanh_(yn[j]);
      }
#pragma omp barrier
    }
  }
}

void nnl_rnn_backward(float *dX, float *dh0, float *dWih, float *dWhh, float *dbih, float *dbhh,
                      float *dA, float *dh, const float *Y, const float *X, const float *h0,
                      const float *Wih, const float *Whh, const float *dY, const float *dhT,
                      int T, int N, int D, int H, int relu) {
  int64_t NH = (int64_t)N * H;
#pragma omp parallel if (team_worth(N, H, 1))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    init_state_grad(dh, dhT, N, H, j0, j1);
    for (int t = T - 1; t >= 0; t--) {
      const float *y = Y + t * NH, *dy = dY + t * NH;
      float *da = dA + t * NH;
      for (int64_t o = 0; o < NH; o += H)
        for (int j = j0; j < j1; j++) {
          float g = dh[o + j] + dy[o + j], h = y[o + j];
          da[o + j] = relu ? (h > 0.0f ? g : 0.0f) : g * (1.0f - h * h);
        }
#pragma omp barrier
      /* dh_{t-1} = dA_t[N,H] @ Whh[H,H]; the last one lands in dh0 */
      if (t > 0) step_product_back(dh, da, Whh, N, H, 1, j0, j1, 0.0f);
      else if (dh0) step_product_back(dh0, da, Whh, N, H, 1, j0, j1, 1.0f);
    }
  }
  column_sums(dbih, dbhh, dA, T * N, H);
  weight_grads(dX, dWih, dWhh, dA, dA, Y, X, h0, Wih, T, N, D, H, H);
}

/* ---- LSTM ---- */

void nnl_lstm_forward(float *Y, float *C, float *gates, const float *X, const float *h0,
                      const float *c0, const float *Wih, const float *Whh, const float *bih,
                      const float *bhh, int T, int N, int D, int H) {
  int64_t NH = (int64_t)N * H, G4 = 4 * (int64_t)H;
  project_inputs(gates, X, Wih, bih, bhh, T * N, D, 4 * H);
#pragma omp parallel if (team_worth(N, H, 4))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    for (int t = 0; t < T; t++) {
      float *a = gates + t * N * G4, *y = Y + t * NH, *c = C + t * NH;
      const float *hp = t ? y - NH : h0, *cp = t ? c - NH : c0;
      /* the four gates of this thread's units: a[N,4H] += h_{t-1}[N,H] @ Whh[4H,H]^T */
      if (hp) step_product(a, hp, Whh, N, H, 4, j0, j1, 1.0f);
      for (int64_t n = 0; n < N; n++) {
        float *an = a + n * G4, *yn = y + n * H, *cn = c + n * H;
        const float *cpn = cp ? cp + n * H : NULL;
        for (int j = j0; j < j1; j++) {
          float i = sigmoidf(an[j]), f = sigmoidf(an[H + j]);
          float g = tanh_(an[2 * H + j]), o = sigmoidf(an[3 * H + j]);
          float cv = i * g + (cpn ? f * cpn[j] : 0.0f);
          an[j] = i, an[H + j] = f, an[2 * H + j] = g, an[3 * H + j] = o;
          cn[j] = cv;
          yn[j] = o * tanh_(cv);
        }
      }
#pragma omp barrier
    }
  }
}

void nnl_lstm_backward(float *dX, float *dh0, float *dc0, float *dWih, float *dWhh, float *dbih,
                       float *dbhh, float *dG, float *dh, float *dc, const float *Y,
                       const float *C, const float *gates, const float *X, const float *h0,
                       const float *c0, const float *Wih, const float *Whh, const float *dY,
                       const float *dhT, const float *dcT, int T, int N, int D, int H) {
  int64_t NH = (int64_t)N * H, G4 = 4 * (int64_t)H;
#pragma omp parallel if (team_worth(N, H, 4))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    init_state_grad(dh, dhT, N, H, j0, j1);
    init_state_grad(dc, dcT, N, H, j0, j1);
    for (int t = T - 1; t >= 0; t--) {
      const float *a = gates + t * N * G4, *c = C + t * NH, *dy = dY + t * NH;
      const float *cp = t ? c - NH : c0;
      float *dg = dG + t * N * G4;
      for (int64_t n = 0; n < N; n++) {
        const float *an = a + n * G4, *cn = c + n * H, *dyn = dy + n * H;
        const float *cpn = cp ? cp + n * H : NULL;
        float *dgn = dg + n * G4, *dhn = dh + n * H, *dcn = dc + n * H;
        for (int j = j0; j < j1; j++) {
          float i = an[j], f = an[H + j], g = an[2 * H + j], o = an[3 * H + j];
          float tc = tanh_(cn[j]), dht = dhn[j] + dyn[j];
          float dct = dcn[j] + dht * o * (1.0f - tc * tc);
          dgn[j] = dct * g * i * (1.0f - i);
          dgn[H + j] = cpn ? dct * cpn[j] * f * (1.0f - f) : 0.0f;
          dgn[2 * H + j] = dct * i * (1.0f - g * g);
          dgn[3 * H + j] = dht * tc * o * (1.0f - o);
          dcn[j] = dct * f;
        }
      }
#pragma omp barrier
      /* dh_{t-1} = dG_t[N,4H] @ Whh[4H,H]; the last one lands in dh0 */
      if (t > 0) step_product_back(dh, dg, Whh, N, H, 4, j0, j1, 0.0f);
      else if (dh0) step_product_back(dh0, dg, Whh, N, H, 4, j0, j1, 1.0f);
    }
    if (dc0)
      for (int64_t o = 0; o < NH; o += H)
        for (int j = j0; j < j1; j++) dc0[o + j] += dc[o + j];
  }
  column_sums(dbih, dbhh, dG, T * N, 4 * H);
  weight_grads(dX, dWih, dWhh, dG, dG, Y, X, h0, Wih, T, N, D, H, 4 * H);
}

/* ---- GRU ---- */

void nnl_gru_forward(float *Y, float *gates, float *ghn, float *work, const float *X,
                     const float *h0, const float *Wih, const float *Whh, const float *bih,
                     const float *bhh, int T, int N, int D, int H) {
  int64_t NH = (int64_t)N * H, G3 = 3 * (int64_t)H;
  /* b_hh stays out of the projection: b_hn sits inside r * (.) */
  project_inputs(gates, X, Wih, bih, NULL, T * N, D, 3 * H);
#pragma omp parallel if (team_worth(N, H, 3))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    for (int t = 0; t < T; t++) {
      float *a = gates + t * N * G3, *y = Y + t * NH, *gn = ghn + t * NH;
      const float *hp = t ? y - NH : h0;
      /* work[N,3H] = h_{t-1}[N,H] @ Whh[3H,H]^T in this thread's columns */
      if (hp) step_product(work, hp, Whh, N, H, 3, j0, j1, 0.0f);
      for (int64_t n = 0; n < N; n++) {
        float *an = a + n * G3, *yn = y + n * H, *gnn = gn + n * H;
        const float *wn = work + n * G3, *hpn = hp ? hp + n * H : NULL;
        for (int j = j0; j < j1; j++) {
          float hr = hpn ? wn[j] : 0.0f, hz = hpn ? wn[H + j] : 0.0f;
          float hn = hpn ? wn[2 * H + j] : 0.0f, h = hpn ? hpn[j] : 0.0f;
          if (bhh) hr += bhh[j], hz += bhh[H + j], hn += bhh[2 * H + j];
          float r = sigmoidf(an[j] + hr), z = sigmoidf(an[H + j] + hz);
          float nv = tanh_(an[2 * H + j] + r * hn);
          an[j] = r, an[H + j] = z, an[2 * H + j] = nv;
          gnn[j] = hn;
          yn[j] = (1.0f - z) * nv + z * h;
        }
      }
#pragma omp barrier
    }
  }
}

void nnl_gru_backward(float *dX, float *dh0, float *dWih, float *dWhh, float *dbih, float *dbhh,
                      float *dGx, float *dGh, float *dh, const float *Y, const float *gates,
                      const float *ghn, const float *X, const float *h0, const float *Wih,
                      const float *Whh, const float *dY, const float *dhT, int T, int N, int D,
                      int H) {
  int64_t NH = (int64_t)N * H, G3 = 3 * (int64_t)H;
#pragma omp parallel if (team_worth(N, H, 3))
  {
    int j0, j1;
    my_units(H, &j0, &j1);
    init_state_grad(dh, dhT, N, H, j0, j1);
    for (int t = T - 1; t >= 0; t--) {
      const float *a = gates + t * N * G3, *gn = ghn + t * NH, *dy = dY + t * NH;
      const float *hp = t ? Y + (t - 1) * NH : h0;
      float *dgx = dGx + t * N * G3, *dgh = dGh + t * N * G3;
      for (int64_t n = 0; n < N; n++) {
        const float *an = a + n * G3, *gnn = gn + n * H, *dyn = dy + n * H;
        const float *hpn = hp ? hp + n * H : NULL;
        float *dxn = dgx + n * G3, *dhh = dgh + n * G3, *dhn = dh + n * H;
        for (int j = j0; j < j1; j++) {
          float r = an[j], z = an[H + j], nv = an[2 * H + j], h = hpn ? hpn[j] : 0.0f;
          float dht = dhn[j] + dyn[j];
          float dan = dht * (1.0f - z) * (1.0f - nv * nv);
          float dar = dan * gnn[j] * r * (1.0f - r);
          float daz = dht * (h - nv) * z * (1.0f - z);
          dxn[j] = dhh[j] = dar;
          dxn[H + j] = dhh[H + j] = daz;
          dxn[2 * H + j] = dan;
          dhh[2 * H + j] = dan * r;
          dhn[j] = dht * z; /* the direct path h_{t-1} -> h_t; the product adds the gates' */
        }
      }
#pragma omp barrier
      /* dh_{t-1} = dh_t * z + dGh_t[N,3H] @ Whh[3H,H] */
      if (t > 0) {
        step_product_back(dh, dgh, Whh, N, H, 3, j0, j1, 1.0f);
      } else if (dh0) {
        for (int64_t o = 0; o < NH; o += H)
          for (int j = j0; j < j1; j++) dh0[o + j] += dh[o + j];
        step_product_back(dh0, dgh, Whh, N, H, 3, j0, j1, 1.0f);
      }
    }
  }
  column_sums(dbih, NULL, dGx, T * N, 3 * H);
  column_sums(dbhh, NULL, dGh, T * N, 3 * H);
  weight_grads(dX, dWih, dWhh, dGx, dGh, Y, X, h0, Wih, T, N, D, H, 3 * H);
}
