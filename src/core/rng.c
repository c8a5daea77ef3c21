/* rng.c — a counter-based generator: draw i of a stream is a hash of (seed, counter + i).
 * Any thread can compute any draw, so results never depend on the thread count. */
#include <math.h>

#include "../nnlua.h"
#include "parallel.h"
#include "tensor.h"

static uint64_t g_seed = 0x853c49e6748fea9bULL, g_offset = 0;

static inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t nnl_rng_u64(uint64_t seed, uint64_t counter) {
  return mix(mix(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL + 1));
}

void nnl_manual_seed(uint64_t seed) {
  g_seed = seed;
  g_offset = 0;
}

void nnl_rng_get_state(uint64_t *seed, uint64_t *offset) {
  *seed = g_seed;
  *offset = g_offset;
}

void nnl_rng_set_state(uint64_t seed, uint64_t offset) {
  g_seed = seed;
  g_offset = offset;
}

uint64_t nnl_rng_reserve(uint64_t n, uint64_t *seed) {
  uint64_t c = g_offset;
  g_offset += n;
  *seed = g_seed;
  return c;
}

static inline float u01(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); }

static inline float normal(uint64_t seed, uint64_t c) {
  /* Box-Muller on draws c and c+1; u1 in (0,1] keeps log finite */
  double u1 = ((nnl_rng_u64(seed, c) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double u2 = (nnl_rng_u64(seed, c + 1) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static int fill_random(nnl_tensor *t, int kind, double a, double b) {
  if (t->dtype != NNL_F32) {
    nnl_set_error("%s: needs a float32 tensor, got %s", kind ? "normal_" : "uniform_",
                  nnl_dtype_name(t->dtype));
    return -1;
  }
  nnl_tensor *c = nnl_raw_contiguous(t);
  if (!c) return -1;
  int64_t n = nnl_tensor_numel(c);
  uint64_t seed, base = nnl_rng_reserve(kind ? 2 * (uint64_t)n : (uint64_t)n, &seed);
  float *p = nnl_tensor_data(c);
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++)
    p[i] = kind ? (float)(a + b * normal(seed, base + 2 * i))
                : (float)(a + (b - a) * u01(nnl_rng_u64(seed, base + i)));
  int rc = c == t ? 0 : nnl_copy_(t, c);
  nnl_tensor_release(c);
  return rc;
}

int nnl_uniform_(nnl_tensor *t, double lo, double hi) { return fill_random(t, 0, lo, hi); }
int nnl_normal_(nnl_tensor *t, double mean, double std) { return fill_random(t, 1, mean, std); }

nnl_tensor *nnl_rand(int ndim, const int64_t *shape) {
  nnl_tensor *t = nnl_tensor_empty(NNL_F32, ndim, shape);
  if (t) fill_random(t, 0, 0, 1);
  return t;
}

nnl_tensor *nnl_randn(int ndim, const int64_t *shape) {
  nnl_tensor *t = nnl_tensor_empty(NNL_F32, ndim, shape);
  if (t) fill_random(t, 1, 0, 1);
  return t;
}

nnl_tensor *nnl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape) {
  if (hi <= lo) {
    nnl_set_error("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    return NULL;
  }
  nnl_tensor *t = nnl_tensor_empty(NNL_I64, ndim, shape);
  if (!t) return NULL;
  int64_t n = nnl_tensor_numel(t), *p = t->storage->data;
  /* unsigned: hi - lo may exceed INT64_MAX (signed overflow is undefined) */
  uint64_t range = (uint64_t)hi - (uint64_t)lo, seed, base = nnl_rng_reserve(n, &seed);
#pragma omp parallel for if (n > NNL_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++)
    p[i] = (int64_t)((uint64_t)lo + nnl_rng_u64(seed, base + i) % range);
  return t;
}

nnl_tensor *nnl_randperm(int64_t n) {
  if (n < 0) {
    nnl_set_error("randperm: n must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  nnl_tensor *t = nnl_tensor_empty(NNL_I64, 1, &n);
  if (!t) return NULL;
  int64_t *p = t->storage->data;
  uint64_t seed, base = nnl_rng_reserve(n, &seed);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(nnl_rng_u64(seed, base + i) % (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j], p[j] = tmp;
  }
  return t;
}
