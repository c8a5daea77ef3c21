/* test_dense.c — checks the dense-layer kernels (src/kernels/dense.h): numeric gradients by
 * central differences, linear against nnl_sgemm_ref, losses and optimizers against PyTorch 1.13. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/blas.h"
#include "kernels/dense.h"
#include "nnlua.h"

#ifdef NNL_TEST_STANDALONE_RNG
/* stand-in for src/core/rng.c when the test is built without libnnlua */
uint64_t nnl_rng_u64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + counter + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
#endif

static int failures = 0;

/* ---- small helpers ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static float frand(float lo, float hi) { /* xorshift64*, uniform in [lo, hi) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545f4914f6cdd1dULL;
  return lo + (hi - lo) * (float)((r >> 40) * (1.0 / 16777216.0));
}

static float *rnd(int64_t n, float lo, float hi) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) x[i] = frand(lo, hi);
  return x;
}

/* random values with |x| >= 0.1, away from the kinks of relu and friends */
static float *rnd_away0(int64_t n) {
  float *x = rnd(n, -2.0f, 2.0f);
  for (int64_t i = 0; i < n; i++)
    if (fabsf(x[i]) < 0.1f) x[i] += x[i] < 0 ? -0.1f : 0.1f;
  return x;
}

static float *filled(int64_t n, float v) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) x[i] = v;
  return x;
}

static double dot(const float *a, const float *b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* Gradient buffers start at PREFILL to check that backward adds instead of overwriting;
 * unfill() takes it off again before comparing. */
#define PREFILL 0.25f
static void unfill(float *g, int64_t n) {
  for (int64_t i = 0; i < n; i++) g[i] -= PREFILL;
}

static void report(const char *name, double maxdiff, double tol) {
  int ok = maxdiff <= tol; /* NaN fails */
  printf("%s %-48s max diff %.3g (tol %.1g)\n", ok ? "ok  " : "FAIL", name, maxdiff, tol);
  if (!ok) failures++;
}

/* max |got - want| / max(1, |want|) */
static void check_close(const char *name, const float *got, const float *want, int64_t n,
                        double tol) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
    if (!(d <= m)) m = d;
  }
  report(name, m, tol);
}

static void check_true(const char *name, int cond) { report(name, cond ? 0.0 : 1.0, 0.0); }

/* ---- numeric gradient check ----
 * f(ctx) runs a forward and returns a scalar in double (sum(out * R) for random R, so the
 * gradient flowing back is R). The derivative along x[i] is (f(x+h) - f(x-h)) / (2h), with the
 * step actually taken in float. */
typedef double (*scalar_fn)(void *ctx);

static void gradcheck(const char *name, scalar_fn f, void *ctx, float *x, int64_t n,
                      const float *analytic) {
  const double h = 1e-2, tol = 2e-3;
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) {
    float x0 = x[i], xp = (float)(x0 + h), xm = (float)(x0 - h);
    x[i] = xp;
    double fp = f(ctx);
    x[i] = xm;
    double fm = f(ctx);
    x[i] = x0;
    double num = (fp - fm) / ((double)xp - (double)xm);
    double d = fabs(num - analytic[i]) / fmax(1.0, fabs(num));
    if (!(d <= m)) m = d;
  }
  char buf[96];
  snprintf(buf, sizeof buf, "grad %s", name);
  report(buf, m, tol);
}

/* ---- linear ---- */

typedef struct {
  float *Y, *X, *W, *b, *R;
  int N, I, O;
} lin_ctx;

static double lin_f(void *p) {
  lin_ctx *c = p;
  nnl_linear_forward(c->Y, c->X, c->W, c->b, c->N, c->I, c->O, 0);
  return dot(c->Y, c->R, (int64_t)c->N * c->O);
}

static void test_linear(int N, int I, int O, int gradchecks) {
  char name[64];
  lin_ctx c = {filled((int64_t)N * O, 0), rnd((int64_t)N * I, -1, 1), rnd((int64_t)O * I, -1, 1),
               rnd(O, -1, 1), rnd((int64_t)N * O, -1, 1), N, I, O};
  float *ref = malloc(sizeof(float) * N * O);
  /* forward, with and without bias, against the plain-loop sgemm */
  for (int o = 0; o < O; o++)
    for (int n = 0; n < N; n++) ref[n * O + o] = c.b[o];
  nnl_sgemm_ref(0, 1, N, O, I, 1.0f, c.X, I, c.W, I, 1.0f, ref, O);
  nnl_linear_forward(c.Y, c.X, c.W, c.b, N, I, O, 0);
  snprintf(name, sizeof name, "linear forward %dx%dx%d vs sgemm_ref", N, I, O);
  check_close(name, c.Y, ref, (int64_t)N * O, 1e-5);
  nnl_sgemm_ref(0, 1, N, O, I, 1.0f, c.X, I, c.W, I, 0.0f, ref, O);
  nnl_linear_forward(c.Y, c.X, c.W, NULL, N, I, O, 0);
  snprintf(name, sizeof name, "linear forward %dx%dx%d no bias", N, I, O);
  check_close(name, c.Y, ref, (int64_t)N * O, 1e-5);
  /* fused ReLU, with and without bias: relu of the unfused result; a NaN row stays NaN */
  for (int relu_bias = 0; relu_bias < 2; relu_bias++) {
    float *unfused = malloc(sizeof(float) * N * O);
    nnl_linear_forward(unfused, c.X, c.W, relu_bias ? c.b : NULL, N, I, O, 0);
    nnl_relu_forward(ref, unfused, (int64_t)N * O);
    nnl_linear_forward(c.Y, c.X, c.W, relu_bias ? c.b : NULL, N, I, O, 1);
    int64_t neg = 0;
    for (int64_t k = 0; k < (int64_t)N * O; k++) neg += unfused[k] < 0.0f && c.Y[k] == 0.0f;
    snprintf(name, sizeof name, "linear+relu forward %dx%dx%d bias %d", N, I, O, relu_bias);
    check_close(name, c.Y, ref, (int64_t)N * O, 1e-5);
    snprintf(name, sizeof name, "linear+relu %dx%dx%d zeroes negatives", N, I, O);
    int64_t want = 0;
    for (int64_t k = 0; k < (int64_t)N * O; k++) want += unfused[k] < 0.0f;
    check_true(name, neg == want && (want > 0 || (int64_t)N * O < 16));
    free(unfused);
  }
  float x0 = c.X[0];
  c.X[0] = NAN;
  nnl_linear_forward(c.Y, c.X, c.W, c.b, N, I, O, 1);
  int nans = 0;
  for (int o = 0; o < O; o++) nans += isnan(c.Y[o]);
  snprintf(name, sizeof name, "linear+relu %dx%dx%d keeps NaN", N, I, O);
  check_true(name, nans == O);
  c.X[0] = x0;

  /* backward against the plain-loop sgemm, accumulating onto PREFILL */
  float *dX = filled((int64_t)N * I, PREFILL), *dW = filled((int64_t)O * I, PREFILL);
  float *db = filled(O, PREFILL);
  float *rdX = filled((int64_t)N * I, PREFILL), *rdW = filled((int64_t)O * I, PREFILL);
  float *rdb = filled(O, PREFILL);
  nnl_linear_backward(dX, dW, db, c.X, c.W, c.R, N, I, O);
  nnl_sgemm_ref(0, 0, N, I, O, 1.0f, c.R, O, c.W, I, 1.0f, rdX, I);
  nnl_sgemm_ref(1, 0, O, I, N, 1.0f, c.R, O, c.X, I, 1.0f, rdW, I);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) rdb[o] += c.R[n * O + o];
  snprintf(name, sizeof name, "linear backward dX %dx%dx%d vs sgemm_ref", N, I, O);
  check_close(name, dX, rdX, (int64_t)N * I, 1e-5);
  snprintf(name, sizeof name, "linear backward dW %dx%dx%d vs sgemm_ref", N, I, O);
  check_close(name, dW, rdW, (int64_t)O * I, 1e-5);
  snprintf(name, sizeof name, "linear backward db %dx%dx%d", N, I, O);
  check_close(name, db, rdb, O, 1e-5);
  /* _into stores: buffers full of NaN come out as the gradients alone */
  {
    float *iX = filled((int64_t)N * I, NAN), *iW = filled((int64_t)O * I, NAN), *ib = filled(O, NAN);
    nnl_linear_backward_into(iX, iW, ib, c.X, c.W, c.R, N, I, O);
    for (int64_t k = 0; k < (int64_t)N * I; k++) iX[k] += PREFILL;
    for (int64_t k = 0; k < (int64_t)O * I; k++) iW[k] += PREFILL;
    for (int o = 0; o < O; o++) ib[o] += PREFILL;
    snprintf(name, sizeof name, "linear backward_into dX %dx%dx%d", N, I, O);
    check_close(name, iX, rdX, (int64_t)N * I, 1e-5);
    snprintf(name, sizeof name, "linear backward_into dW %dx%dx%d", N, I, O);
    check_close(name, iW, rdW, (int64_t)O * I, 1e-5);
    snprintf(name, sizeof name, "linear backward_into db %dx%dx%d", N, I, O);
    check_close(name, ib, rdb, O, 1e-5);
    free(iX), free(iW), free(ib);
  }
  /* NULL gradients are skipped and leave the others alone */
  float *dW2 = filled((int64_t)O * I, PREFILL);
  nnl_linear_backward(NULL, dW2, NULL, c.X, NULL, c.R, N, I, O);
  check_close("linear backward with dX, db NULL", dW2, rdW, (int64_t)O * I, 1e-5);

  if (gradchecks) {
    unfill(dX, (int64_t)N * I);
    unfill(dW, (int64_t)O * I);
    unfill(db, O);
    gradcheck("linear dX", lin_f, &c, c.X, (int64_t)N * I, dX);
    gradcheck("linear dW", lin_f, &c, c.W, (int64_t)O * I, dW);
    gradcheck("linear db", lin_f, &c, c.b, O, db);
  }
  free(c.Y); free(c.X); free(c.W); free(c.b); free(c.R); free(ref);
  free(dX); free(dW); free(db); free(rdX); free(rdW); free(rdb); free(dW2);
}

/* ---- activations ---- */

enum { RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH, N_ACT };
static const char *act_name[N_ACT] = {"relu", "leaky_relu(0.1)", "sigmoid", "tanh", "gelu",
                                      "gelu tanh"};

static void act_forward(int k, float *Y, const float *X, int64_t n) {
  switch (k) {
  case RELU: nnl_relu_forward(Y, X, n); break;
  case LEAKY_RELU: nnl_leaky_relu_forward(Y, X, n, 0.1f); break;
  case SIGMOID: nnl_sigmoid_forward(Y, X, n); break;
  case TANH: nnl_tanh_forward(Y, X, n); break;
  default: nnl_gelu_forward(Y, X, n, k == GELU_TANH); break;
  }
}

/* each backward gets what its autograd node would save: X, or Y for sigmoid and tanh */
static void act_backward(int k, float *dX, const float *X, const float *Y, const float *dY,
                         int64_t n) {
  switch (k) {
  case RELU: nnl_relu_backward(dX, X, dY, n); break;
  case LEAKY_RELU: nnl_leaky_relu_backward(dX, X, dY, n, 0.1f); break;
  case SIGMOID: nnl_sigmoid_backward(dX, Y, dY, n); break;
  case TANH: nnl_tanh_backward(dX, Y, dY, n); break;
  default: nnl_gelu_backward(dX, X, dY, n, k == GELU_TANH); break;
  }
}

typedef struct {
  int k;
  float *Y, *X, *R;
  int64_t n;
} act_ctx;

static double act_f(void *p) {
  act_ctx *c = p;
  act_forward(c->k, c->Y, c->X, c->n);
  return dot(c->Y, c->R, c->n);
}

static void test_activations(void) {
  int64_t n = 40;
  for (int k = 0; k < N_ACT; k++) {
    act_ctx c = {k, filled(n, 0), rnd_away0(n), rnd(n, -1, 1), n};
    c.X[0] = 6.0f; /* saturated ends */
    c.X[1] = -6.0f;
    float *dX = filled(n, PREFILL);
    act_f(&c);
    act_backward(k, dX, c.X, c.Y, c.R, n);
    unfill(dX, n);
    gradcheck(act_name[k], act_f, &c, c.X, n, dX);
    free(c.Y); free(c.X); free(c.R); free(dX);
  }
  /* values from torch.nn.functional.gelu */
  float x[7] = {-3.0f, -1.0f, -0.1f, 0.0f, 0.5f, 2.0f, 4.0f}, y[7];
  const float exact[7] = {-0.00404986739f, -0.158655286f, -0.0460172109f, 0.0f, 0.345731199f,
                          1.95449996f, 3.99987316f};
  const float approx[7] = {-0.00363743305f, -0.158807993f, -0.0460172482f, 0.0f, 0.345714003f,
                           1.95459771f, 3.9999299f};
  nnl_gelu_forward(y, x, 7, 0);
  check_close("gelu exact vs torch", y, exact, 7, 1e-6);
  nnl_gelu_forward(y, x, 7, 1);
  check_close("gelu tanh vs torch", y, approx, 7, 1e-6);
  float big[4] = {-100.0f, -89.0f, 89.0f, 100.0f}, s[4];
  nnl_sigmoid_forward(s, big, 4);
  check_true("sigmoid saturates without NaN", s[0] >= 0.0f && s[0] < 1e-38f && s[1] >= 0.0f &&
                                                  s[1] < 1e-38f && s[2] == 1.0f && s[3] == 1.0f);
}

/* ---- softmax, log_softmax ---- */

typedef struct {
  int log;
  float *Y, *X, *R;
  int64_t outer, dim, inner;
} sm_ctx;

static double sm_f(void *p) {
  sm_ctx *c = p;
  if (c->log) nnl_log_softmax_forward(c->Y, c->X, c->outer, c->dim, c->inner);
  else nnl_softmax_forward(c->Y, c->X, c->outer, c->dim, c->inner);
  return dot(c->Y, c->R, c->outer * c->dim * c->inner);
}

static void test_softmax(int log, int64_t outer, int64_t dim, int64_t inner) {
  int64_t n = outer * dim * inner;
  sm_ctx c = {log, filled(n, 0), rnd(n, -3, 3), rnd(n, -1, 1), outer, dim, inner};
  float *dX = filled(n, PREFILL);
  sm_f(&c);
  if (log) nnl_log_softmax_backward(dX, c.Y, c.R, outer, dim, inner);
  else nnl_softmax_backward(dX, c.Y, c.R, outer, dim, inner);
  unfill(dX, n);
  char name[64];
  snprintf(name, sizeof name, "%s (%ld,%ld,%ld)", log ? "log_softmax" : "softmax", (long)outer,
           (long)dim, (long)inner);
  gradcheck(name, sm_f, &c, c.X, n, dX);
  /* each line sums to 1 (softmax) or its exp does (log_softmax) */
  double m = 0.0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0.0;
      for (int64_t d = 0; d < dim; d++) {
        float y = c.Y[(o * dim + d) * inner + i];
        s += log ? exp(y) : y;
      }
      if (fabs(s - 1.0) > m) m = fabs(s - 1.0);
    }
  snprintf(name, sizeof name, "%s lines sum to 1", log ? "log_softmax" : "softmax");
  report(name, m, 1e-6);
  free(c.Y); free(c.X); free(c.R); free(dX);
}

static void test_softmax_stable(void) {
  float x[3] = {1000.0f, 1001.0f, 999.0f}, y[3], ly[3];
  nnl_softmax_forward(y, x, 1, 3, 1);
  nnl_log_softmax_forward(ly, x, 1, 3, 1);
  /* same as for {1, 2, 0} */
  double e0 = exp(-1.0), e2 = exp(-2.0), z = 1.0 + e0 + e2;
  float want[3] = {(float)(e0 / z), (float)(1 / z), (float)(e2 / z)};
  float lwant[3] = {(float)(-1 - log(z)), (float)(-log(z)), (float)(-2 - log(z))};
  check_close("softmax of large logits", y, want, 3, 1e-6);
  check_close("log_softmax of large logits", ly, lwant, 3, 1e-6);
}

/* ---- cross_entropy, nll_loss ---- */

typedef struct {
  int nll; /* nll_loss on X as log-probs instead of cross_entropy on X as logits */
  float *loss, *logp, *X, *R, *weight;
  int64_t *labels;
  int64_t N, C, inner, ignore;
  float eps;
  nnl_reduction red;
} ce_ctx;

static int64_t loss_len(nnl_reduction red, int64_t rows) {
  return red == NNL_REDUCTION_NONE ? rows : 1;
}

static double ce_f(void *p) {
  ce_ctx *c = p;
  if (c->nll)
    nnl_nll_loss_forward(c->loss, c->X, c->labels, c->weight, c->N, c->C, c->inner, c->ignore,
                         c->red);
  else
    nnl_cross_entropy_forward(c->loss, c->logp, c->X, c->labels, c->weight, c->N, c->C,
                              c->inner, c->ignore, c->eps, c->red);
  return dot(c->loss, c->R, loss_len(c->red, c->N * c->inner));
}

static void ce_backward(ce_ctx *c, float *dX) {
  if (c->nll)
    nnl_nll_loss_backward(dX, c->labels, c->weight, c->R, c->N, c->C, c->inner, c->ignore, c->red);
  else
    nnl_cross_entropy_backward(dX, c->logp, c->labels, c->weight, c->R, c->N, c->C, c->inner,
                               c->ignore, c->eps, c->red);
}

static const char *red_name[] = {"none", "mean", "sum"};

static void test_ce_grad(int nll, int64_t N, int64_t C, int64_t inner, int weighted,
                         int64_t ignore, float eps, nnl_reduction red) {
  int64_t rows = N * inner, n = N * C * inner;
  ce_ctx c = {nll, filled(rows, 0), filled(n, 0), rnd(n, -2, 2), rnd(loss_len(red, rows), 0.2f, 1),
              weighted ? rnd(C, 0.5f, 2) : NULL, malloc(sizeof(int64_t) * rows), N, C, inner,
              ignore, eps, red};
  for (int64_t r = 0; r < rows; r++) c.labels[r] = r % C == 1 ? 1 : (int64_t)frand(0, (float)C);
  float *dX = filled(n, PREFILL);
  ce_f(&c);
  ce_backward(&c, dX);
  unfill(dX, n);
  char name[96];
  snprintf(name, sizeof name, "%s (%ld,%ld,%ld) w=%d ign=%ld ls=%.2g %s",
           nll ? "nll_loss" : "cross_entropy", (long)N, (long)C, (long)inner, weighted,
           ignore == NNL_NO_IGNORE ? -1L : (long)ignore, eps, red_name[red]);
  gradcheck(name, ce_f, &c, c.X, n, dX);
  free(c.loss); free(c.logp); free(c.X); free(c.R); free(c.weight); free(c.labels); free(dX);
}

/* values printed by PyTorch 1.13 (F.cross_entropy on float32, then backward of 0.5 * loss) */
static void test_ce_values(void) {
  float logits[12] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, -0.5f, 3.0f, 1.0f, 2.0f, 2.0f, -2.0f, 0.5f};
  int64_t labels[3] = {0, 3, 1};
  float w[4] = {0.5f, 1.0f, 2.0f, 1.5f};
  struct {
    const char *name;
    int weighted;
    int64_t ignore;
    float eps;
    nnl_reduction red;
    float loss[3], grad[12];
  } cases[] = {
      {"mean", 0, NNL_NO_IGNORE, 0.0f, NNL_REDUCTION_MEAN, {1.49910343f},
       {-0.129298702f, 0.101576678f, 0.0226648189f, 0.00505720545f, 0.00682770461f, 0.00414121198f,
        0.137138128f, -0.148107052f, 0.074356772f, -0.0923098996f, 0.00136189151f, 0.0165912397f}},
      {"sum", 0, NNL_NO_IGNORE, 0.0f, NNL_REDUCTION_SUM, {4.49731016f},
       {-0.387896091f, 0.304730028f, 0.067994453f, 0.0151716154f, 0.0204831138f, 0.0124236355f,
        0.411414355f, -0.444321126f, 0.223070309f, -0.276929677f, 0.00408567442f, 0.0497737154f}},
      {"none", 0, NNL_NO_IGNORE, 0.0f, NNL_REDUCTION_NONE, {1.49518192f, 2.19500732f, 0.807121098f},
       {-0.387896091f, 0.304730028f, 0.067994453f, 0.0151716154f, 0.0204831138f, 0.0124236355f,
        0.411414355f, -0.444321126f, 0.223070309f, -0.276929677f, 0.00408567442f, 0.0497737154f}},
      {"weight mean", 1, NNL_NO_IGNORE, 0.0f, NNL_REDUCTION_MEAN, {1.61574113f},
       {-0.0646493509f, 0.0507883392f, 0.0113324095f, 0.00252860272f, 0.0102415569f,
        0.00621181773f, 0.205707178f, -0.222160563f, 0.074356772f, -0.0923098996f,
        0.00136189151f, 0.0165912397f}},
      {"ignore_index mean", 0, 3, 0.0f, NNL_REDUCTION_MEAN, {1.15115154f},
       {-0.193948045f, 0.152365014f, 0.0339972265f, 0.0075858077f, 0, 0, 0, 0, 0.111535154f,
        -0.138464838f, 0.00204283721f, 0.0248868577f}},
      {"label_smoothing mean", 0, NNL_NO_IGNORE, 0.1f, NNL_REDUCTION_MEAN, {1.56160343f},
       {-0.116798691f, 0.0974099934f, 0.0184981469f, 0.000890537514f, 0.00266103726f,
        -2.54553106e-05f, 0.132971451f, -0.135607034f, 0.0701900944f, -0.0798098966f,
        -0.00280477572f, 0.0124245696f}},
      {"smoothing+weight+ignore mean", 1, 0, 0.2f, NNL_REDUCTION_MEAN, {1.77709532f},
       {0, 0, 0, 0, 0.00688020559f, -0.00279429136f, 0.218620315f, -0.222706243f, 0.0886895284f,
        -0.0763104782f, -0.0182840172f, 0.00590495998f}},
      {"smoothing+weight none", 1, NNL_NO_IGNORE, 0.2f, NNL_REDUCTION_NONE,
       {1.12186825f, 3.08276081f, 1.35997725f},
       {-0.139632463f, 0.173074529f, -0.00580360368f, -0.0276384503f, 0.0172005165f,
        -0.00698572816f, 0.54655081f, -0.556765676f, 0.22172384f, -0.190776169f,
        -0.0457100421f, 0.0147624034f}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    float loss[3], logp[12], dX[12] = {0}, half[3] = {0.5f, 0.5f, 0.5f};
    const float *wt = cases[k].weighted ? w : NULL;
    nnl_cross_entropy_forward(loss, logp, logits, labels, wt, 3, 4, 1, cases[k].ignore,
                              cases[k].eps, cases[k].red);
    nnl_cross_entropy_backward(dX, logp, labels, wt, half, 3, 4, 1, cases[k].ignore,
                               cases[k].eps, cases[k].red);
    char name[96];
    snprintf(name, sizeof name, "cross_entropy %s vs torch", cases[k].name);
    check_close(name, loss, cases[k].loss, loss_len(cases[k].red, 3), 1e-6);
    snprintf(name, sizeof name, "cross_entropy %s grad vs torch", cases[k].name);
    check_close(name, dX, cases[k].grad, 12, 1e-6);
  }
  /* K-dim: logits (2, 3, 2), labels (2, 2), weight, ignore_index 0, label_smoothing 0.1 */
  float xk[12] = {0.1f, -0.3f, 1.2f, 0.4f, -0.7f, 0.9f, 0.5f, 0.5f, -1.0f, 2.0f, 0.3f, -0.2f};
  int64_t yk[4] = {2, 0, 1, 1};
  float wk[3] = {1.0f, 2.0f, 0.5f}, one = 1.0f, loss, logp[12], dX[12] = {0};
  const float gk[12] = {0.0208683461f, 0, 0.0701302439f, 0, -0.0909985825f, 0, 0.201189503f,
                        0.0638382211f, -0.368270546f, -0.0955140591f, 0.167080998f, 0.0316758268f};
  const float lk = 1.32375824f;
  nnl_cross_entropy_forward(&loss, logp, xk, yk, wk, 2, 3, 2, 0, 0.1f, NNL_REDUCTION_MEAN);
  nnl_cross_entropy_backward(dX, logp, yk, wk, &one, 2, 3, 2, 0, 0.1f, NNL_REDUCTION_MEAN);
  check_close("cross_entropy K-dim vs torch", &loss, &lk, 1, 1e-6);
  check_close("cross_entropy K-dim grad vs torch", dX, gk, 12, 1e-6);

  /* by hand: equal logits give log C; every target ignored gives 0/0 = NaN, as in torch */
  float zeros[10] = {0}, lp[10];
  int64_t lab[2] = {4, 1}, ign[2] = {3, 3};
  nnl_cross_entropy_forward(&loss, lp, zeros, lab, NULL, 2, 5, 1, NNL_NO_IGNORE, 0.0f,
                            NNL_REDUCTION_MEAN);
  const float log5 = (float)log(5.0);
  check_close("cross_entropy of equal logits = log C", &loss, &log5, 1, 1e-7);
  nnl_cross_entropy_forward(&loss, lp, zeros, ign, NULL, 2, 5, 1, 3, 0.0f, NNL_REDUCTION_MEAN);
  check_true("cross_entropy all ignored mean is NaN", isnan(loss));

  /* nll_loss(log_softmax(x)) = cross_entropy(x) */
  float lsm[12], l1[3], l2[3];
  nnl_log_softmax_forward(lsm, logits, 3, 4, 1);
  nnl_nll_loss_forward(l1, lsm, labels, w, 3, 4, 1, 3, NNL_REDUCTION_NONE);
  nnl_cross_entropy_forward(l2, logp, logits, labels, w, 3, 4, 1, 3, 0.0f, NNL_REDUCTION_NONE);
  check_close("nll_loss(log_softmax) = cross_entropy", l1, l2, 3, 1e-7);
}

/* ---- mse_loss, bce_with_logits ---- */

typedef struct {
  int bce;
  float *loss, *X, *T, *R, *weight, *pos_weight;
  int64_t n, C;
  nnl_reduction red;
} el_ctx;

static double el_f(void *p) {
  el_ctx *c = p;
  if (c->bce)
    nnl_bce_with_logits_forward(c->loss, c->X, c->T, c->weight, c->pos_weight, c->n, c->C, c->red);
  else
    nnl_mse_loss_forward(c->loss, c->X, c->T, c->n, c->red);
  return dot(c->loss, c->R, loss_len(c->red, c->n));
}

static void test_elementwise_loss_grad(int bce, nnl_reduction red) {
  int64_t n = 24, C = 4;
  el_ctx c = {bce, filled(n, 0), rnd(n, -3, 3), rnd(n, 0, 1), rnd(loss_len(red, n), 0.2f, 1),
              bce ? rnd(n, 0.5f, 2) : NULL, bce ? rnd(C, 0.5f, 3) : NULL, n, C, red};
  float *dX = filled(n, PREFILL), *dT = filled(n, PREFILL);
  el_f(&c);
  if (bce)
    nnl_bce_with_logits_backward(dX, dT, c.X, c.T, c.weight, c.pos_weight, c.R, n, C, red);
  else
    nnl_mse_loss_backward(dX, dT, c.X, c.T, c.R, n, red);
  unfill(dX, n);
  unfill(dT, n);
  char name[64];
  snprintf(name, sizeof name, "%s %s dX", bce ? "bce_with_logits" : "mse_loss", red_name[red]);
  gradcheck(name, el_f, &c, c.X, n, dX);
  snprintf(name, sizeof name, "%s %s dT", bce ? "bce_with_logits" : "mse_loss", red_name[red]);
  gradcheck(name, el_f, &c, c.T, n, dT);
  free(c.loss); free(c.X); free(c.T); free(c.R); free(c.weight); free(c.pos_weight);
  free(dX); free(dT);
}

static void test_elementwise_loss_values(void) {
  float x[3] = {1, 2, 3}, t[3] = {0, 2, 5}, l[3];
  const float none[3] = {1, 0, 4}, sum = 5, mean = 5.0f / 3.0f;
  nnl_mse_loss_forward(l, x, t, 3, NNL_REDUCTION_NONE);
  check_close("mse_loss none by hand", l, none, 3, 0);
  nnl_mse_loss_forward(l, x, t, 3, NNL_REDUCTION_SUM);
  check_close("mse_loss sum by hand", l, &sum, 1, 0);
  nnl_mse_loss_forward(l, x, t, 3, NNL_REDUCTION_MEAN);
  check_close("mse_loss mean by hand", l, &mean, 1, 1e-7);

  /* torch: logits with extremes (20, -25), weight and pos_weight over the last dim of (2, 3) */
  float xb[6] = {-3.0f, 0.5f, 20.0f, 1.0f, -25.0f, 0.0f}, tb[6] = {0, 1, 1, 0.3f, 0, 1};
  float pw[3] = {2.0f, 0.5f, 3.0f}, wb[6] = {1.0f, 2.0f, 0.5f, 1.5f, 1.0f, 1.0f}, ones[6];
  const float lmean = 0.710494339f;
  const float lnone[6] = {0.0485873222f, 0.474076986f, 0, 1.6608603f, 0, 2.07944155f};
  const float gx[6] = {0.00790431257f, -0.0629234388f, 0, 0.0875940323f, 2.31465715e-12f, -0.25f};
  const float gt[6] = {1.00809789f, -0.245679498f, -1.66666663f, -0.171684578f, 2.08333325f,
                       0.231049061f};
  float lb[6], dx[6] = {0}, dt[6] = {0};
  for (int i = 0; i < 6; i++) ones[i] = 1.0f;
  nnl_bce_with_logits_forward(lb, xb, tb, wb, pw, 6, 3, NNL_REDUCTION_NONE);
  check_close("bce_with_logits none vs torch", lb, lnone, 6, 1e-6);
  nnl_bce_with_logits_forward(lb, xb, tb, wb, pw, 6, 3, NNL_REDUCTION_MEAN);
  check_close("bce_with_logits mean vs torch", lb, &lmean, 1, 1e-6);
  nnl_bce_with_logits_backward(dx, dt, xb, tb, wb, pw, ones, 6, 3, NNL_REDUCTION_MEAN);
  check_close("bce_with_logits mean dX vs torch", dx, gx, 6, 1e-6);
  check_close("bce_with_logits mean dT vs torch", dt, gt, 6, 1e-6);
}

/* ---- dropout ---- */

typedef struct {
  float *Y, *X, *R;
  uint8_t *mask;
  int64_t n, inner;
  float p;
} do_ctx;

static double do_f(void *p) {
  do_ctx *c = p;
  nnl_dropout_forward(c->Y, c->mask, c->X, c->n, c->inner, c->p, 7, 100);
  return dot(c->Y, c->R, c->n * c->inner);
}

static void set_threads(int t) {
#ifdef _OPENMP
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}

static void test_dropout(void) {
  int64_t n = 200000;
  float p = 0.3f, scale = 1.0f / (1.0f - p);
  float *X = rnd(n, -1, 1), *Y1 = filled(n, 0), *Y2 = filled(n, 0);
  uint8_t *m1 = malloc((size_t)n), *m2 = malloc((size_t)n);
  set_threads(1);
  nnl_dropout_forward(Y1, m1, X, n, 1, p, 42, 1000);
  set_threads(2);
  nnl_dropout_forward(Y2, m2, X, n, 1, p, 42, 1000);
  check_true("dropout same mask for 1 and 2 threads",
             !memcmp(m1, m2, (size_t)n) && !memcmp(Y1, Y2, sizeof(float) * n));
  int64_t kept = 0, bad = 0;
  for (int64_t i = 0; i < n; i++) {
    kept += m1[i];
    if (Y1[i] != (m1[i] ? X[i] * scale : 0.0f)) bad++;
  }
  double frac = (double)kept / n, sd = sqrt(p * (1 - p) / n);
  printf("     dropout kept %.4f of %ld (expect %.2f)\n", frac, (long)n, 1 - p);
  report("dropout keep rate within 5 sd of 1 - p", fabs(frac - (1 - p)) / sd, 5.0);
  check_true("dropout output = x * mask / (1 - p)", bad == 0);
  nnl_dropout_forward(Y2, m2, X, n, 1, p, 42, 1001);
  check_true("dropout depends on the counter", memcmp(m1, m2, (size_t)n) != 0);

  float *dX = filled(n, PREFILL), *dY = rnd(n, -1, 1);
  nnl_dropout_backward(dX, m1, dY, n, 1, p);
  bad = 0;
  for (int64_t i = 0; i < n; i++)
    if (dX[i] != PREFILL + (m1[i] ? dY[i] * scale : 0.0f)) bad++;
  check_true("dropout backward = dY * mask / (1 - p), accumulated", bad == 0);
  nnl_dropout_forward(Y1, m1, X, n, 1, 1.0f, 42, 0);
  bad = 0;
  for (int64_t i = 0; i < n; i++) bad += Y1[i] != 0.0f || m1[i];
  check_true("dropout p = 1 drops everything", bad == 0);

  /* channel dropout (inner > 1): a mask entry covers a whole channel */
  do_ctx c = {filled(60, 0), rnd(60, -1, 1), rnd(60, -1, 1), malloc(20), 20, 3, 0.5f};
  float *g = filled(60, PREFILL);
  do_f(&c);
  nnl_dropout_backward(g, c.mask, c.R, 20, 3, 0.5f);
  unfill(g, 60);
  bad = 0;
  for (int64_t i = 0; i < 60; i++) bad += c.Y[i] != (c.mask[i / 3] ? 2.0f * c.X[i] : 0.0f);
  check_true("dropout2d mask covers inner", bad == 0);
  gradcheck("dropout (20, 3)", do_f, &c, c.X, 60, g);
  free(X); free(Y1); free(Y2); free(m1); free(m2); free(dX); free(dY);
  free(c.Y); free(c.X); free(c.R); free(c.mask); free(g);
}

/* ---- embedding ---- */

typedef struct {
  float *Y, *W, *R;
  int64_t *idx;
  int64_t N, D;
} emb_ctx;

static double emb_f(void *p) {
  emb_ctx *c = p;
  nnl_embedding_forward(c->Y, c->idx, c->W, c->N, c->D);
  return dot(c->Y, c->R, c->N * c->D);
}

static void test_embedding(void) {
  int64_t V = 7, D = 5, N = 12;
  int64_t idx[12] = {3, 1, 3, 0, 6, 2, 3, 1, 2, 5, 0, 3};
  emb_ctx c = {filled(N * D, 0), rnd(V * D, -1, 1), rnd(N * D, -1, 1), idx, N, D};
  emb_f(&c);
  int bad = 0;
  for (int64_t n = 0; n < N; n++)
    bad += memcmp(c.Y + n * D, c.W + idx[n] * D, sizeof(float) * D) != 0;
  check_true("embedding forward copies rows", bad == 0);
  float *dW = filled(V * D, PREFILL), *dWp = filled(V * D, PREFILL);
  nnl_embedding_backward(dW, idx, c.R, N, V, D, -1);
  nnl_embedding_backward(dWp, idx, c.R, N, V, D, 2);
  unfill(dW, V * D);
  unfill(dWp, V * D);
  gradcheck("embedding dW (repeated indices)", emb_f, &c, c.W, V * D, dW);
  bad = 0;
  for (int64_t i = 0; i < V * D; i++) bad += dWp[i] != (i / D == 2 ? 0.0f : dW[i]);
  check_true("embedding padding_idx row gets no gradient", bad == 0);

  /* big enough to run threaded: same bits as a plain serial loop, for 1 and 2 threads */
  int64_t N2 = 6000, V2 = 50, D2 = 64;
  int64_t *idx2 = malloc(sizeof(int64_t) * N2);
  for (int64_t n = 0; n < N2; n++) idx2[n] = (int64_t)frand(0, (float)V2);
  float *dY2 = rnd(N2 * D2, -1, 1), *ref = filled(V2 * D2, 0);
  float *g1 = filled(V2 * D2, 0), *g2 = filled(V2 * D2, 0);
  for (int64_t n = 0; n < N2; n++)
    if (idx2[n] != 4)
      for (int64_t d = 0; d < D2; d++) ref[idx2[n] * D2 + d] += dY2[n * D2 + d];
  set_threads(1);
  nnl_embedding_backward(g1, idx2, dY2, N2, V2, D2, 4);
  set_threads(2);
  nnl_embedding_backward(g2, idx2, dY2, N2, V2, D2, 4);
  size_t bytes = sizeof(float) * V2 * D2;
  check_true("embedding backward bitwise equal for 1 and 2 threads, and serial",
             !memcmp(g1, ref, bytes) && !memcmp(g2, ref, bytes));
  free(c.Y); free(c.W); free(c.R); free(dW); free(dWp);
  free(idx2); free(dY2); free(ref); free(g1); free(g2);
}

/* ---- optimizers: 3 steps against torch.optim 1.13 ---- */

enum { SGD, ADAM, ADAMW, RMSPROP };

static void test_optim(void) {
  const float p0[4] = {0.5f, -1.0f, 2.0f, 0.0f};
  const float G[3][4] = {{0.1f, -0.2f, 0.3f, -0.4f}, {-0.5f, 0.25f, 0.05f, 1.0f},
                         {0.3f, 0.3f, -0.1f, 0.2f}};
  struct {
    const char *name;
    int kind;
    double lr, a, b, eps, wd, mom; /* SGD: a = dampening; Adam: betas; RMSprop: a = alpha */
    int flag;                      /* nesterov, amsgrad, centered */
    float want[3][4];
  } cases[] = {
      {"SGD lr=0.1", SGD, 0.1, 0, 0, 0, 0, 0, 0,
       {{0.49000001f, -0.980000019f, 1.97000003f, 0.0400000028f},
        {0.540000021f, -1.005f, 1.96500003f, -0.0599999987f},
        {0.50999999f, -1.03499997f, 1.97500002f, -0.0799999982f}}},
      {"SGD momentum dampening weight_decay", SGD, 0.1, 0.1, 0, 0, 0.01, 0.9, 0,
       {{0.489499986f, -0.978999972f, 1.96800005f, 0.0400000028f},
        {0.524609447f, -0.981718898f, 1.9329288f, -0.0140359895f},
        {0.528735816f, -1.0102824f, 1.90862513f, -0.0806557536f}}},
      {"SGD nesterov weight_decay", SGD, 0.1, 0, 0, 0, 0.01, 0.9, 1,
       {{0.480049998f, -0.960099995f, 1.93920004f, 0.0759999976f},
        {0.56563288f, -0.988765836f, 1.90009558f, -0.0817443877f},
        {0.540014803f, -1.04805052f, 1.8865366f, -0.171490625f}}},
      {"Adam weight_decay", ADAM, 0.01, 0.9, 0.999, 1e-8, 0.1, 0, 0,
       {{0.49000001f, -0.99000001f, 1.99000001f, 0.00999999978f},
        {0.494947702f, -0.987362385f, 1.98068404f, 0.00557475304f},
        {0.494242579f, -0.988899708f, 1.9724859f, 0.00104268035f}}},
      {"Adam amsgrad betas (0.8, 0.9)", ADAM, 0.01, 0.8, 0.9, 1e-8, 0, 0, 1,
       {{0.49000001f, -0.99000001f, 1.99000001f, 0.00999999978f},
        {0.496319801f, -0.992195964f, 1.98259747f, 0.00513144303f},
        {0.496747106f, -0.998133898f, 1.97962892f, 0.00043839775f}}},
      {"AdamW weight_decay", ADAMW, 0.01, 0.9, 0.999, 1e-8, 0.1, 0, 0,
       {{0.489500016f, -0.989000022f, 1.98800004f, 0.00999999978f},
        {0.494994044f, -0.989638388f, 1.97817886f, 0.00556784822f},
        {0.495244414f, -0.993936002f, 1.9724462f, 0.00103451218f}}},
      {"AdamW amsgrad", ADAMW, 0.01, 0.9, 0.999, 1e-8, 0.05, 0, 1,
       {{0.489749998f, -0.989499986f, 1.98899996f, 0.00999999978f},
        {0.495488644f, -0.990632534f, 1.98017216f, 0.00557284756f},
        {0.495986253f, -0.995424449f, 1.97542751f, 0.00104229292f}}},
      {"RMSprop", RMSPROP, 0.01, 0.99, 0, 1e-8, 0, 0, 0,
       {{0.400000095f, -0.900000036f, 1.9000001f, 0.0999999791f},
        {0.498077005f, -0.978239715f, 1.8834796f, 0.00708822161f},
        {0.447171092f, -1.04686975f, 1.91499472f, -0.0112703238f}}},
      {"RMSprop centered momentum weight_decay", RMSPROP, 0.01, 0.9, 0, 1e-8, 0.1, 0.9, 1,
       {{0.466666669f, -0.966666698f, 1.9666667f, 0.0333333276f},
        {0.467538744f, -0.951764107f, 1.92065442f, 0.0332086235f},
        {0.449031502f, -0.955979109f, 1.87295043f, 0.0267168544f}}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    float p[4], s1[4] = {0}, s2[4] = {0}, s3[4] = {0};
    memcpy(p, p0, sizeof p);
    double m = 0.0;
    for (int t = 0; t < 3; t++) {
      switch (cases[k].kind) {
      case SGD:
        nnl_sgd_step(p, cases[k].mom != 0 ? s1 : NULL, G[t], 4, cases[k].lr, cases[k].mom,
                     cases[k].a, cases[k].wd, cases[k].flag, t == 0);
        break;
      case ADAM:
      case ADAMW:
        (cases[k].kind == ADAM ? nnl_adam_step : nnl_adamw_step)(
            p, s1, s2, cases[k].flag ? s3 : NULL, G[t], 4, cases[k].lr, cases[k].a, cases[k].b,
            cases[k].eps, cases[k].wd, t + 1);
        break;
      case RMSPROP:
        nnl_rmsprop_step(p, s1, cases[k].flag ? s2 : NULL, cases[k].mom > 0 ? s3 : NULL, G[t], 4,
                         cases[k].lr, cases[k].a, cases[k].eps, cases[k].wd, cases[k].mom,
                         cases[k].flag);
        break;
      }
      for (int i = 0; i < 4; i++) {
        double d = fabs((double)p[i] - cases[k].want[t][i]);
        if (!(d <= m)) m = d;
      }
    }
    char name[96];
    snprintf(name, sizeof name, "%s, 3 steps vs torch.optim", cases[k].name);
    report(name, m, 2e-7);
  }

  int64_t n = 100001;
  float *x = rnd(n, -1, 1);
  double ref = 0.0;
  for (int64_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
  set_threads(1);
  double s1 = nnl_sum_squares(x, n);
  set_threads(2);
  double s2 = nnl_sum_squares(x, n);
  report("sum_squares vs serial double", fabs(s1 - ref) / ref, 1e-12);
  check_true("sum_squares same for 1 and 2 threads", s1 == s2);
  free(x);
}

int main(void) {
  test_linear(5, 7, 4, 1);
  test_linear(1, 3, 1, 1);
  test_linear(300, 64, 130, 0); /* threaded bias paths, blocks of 64 with a remainder */
  test_linear(257, 300, 200, 0); /* two K blocks (bias first, ReLU last), a 16-column tail */
  test_linear(64, 33, 45, 0);    /* a 13-column tail */
  test_activations();
  test_softmax(0, 3, 5, 1);
  test_softmax(0, 2, 4, 3);
  test_softmax(1, 3, 5, 1);
  test_softmax(1, 2, 4, 3);
  test_softmax_stable();
  test_ce_values();
  for (int red = 0; red < 3; red++) {
    test_ce_grad(0, 4, 5, 1, 0, NNL_NO_IGNORE, 0.0f, red);
    test_ce_grad(0, 4, 5, 1, 1, 1, 0.15f, red);
    test_ce_grad(0, 3, 4, 3, 1, 1, 0.1f, red);
    test_ce_grad(1, 4, 5, 1, 1, 1, 0.0f, red);
    test_ce_grad(1, 2, 3, 4, 0, NNL_NO_IGNORE, 0.0f, red);
    test_elementwise_loss_grad(0, red);
    test_elementwise_loss_grad(1, red);
  }
  test_elementwise_loss_values();
  test_dropout();
  test_embedding();
  test_optim();
  if (failures) printf("test_dense: %d FAILED\n", failures);
  else printf("test_dense: all passed\n");
  return failures != 0;
}
