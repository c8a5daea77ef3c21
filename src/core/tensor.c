/* tensor.c — storage, tensor headers, creation, raw views, copies and dtype conversion.
 * A tensor is a strided view (shape, stride, offset in elements) on a refcounted storage. */
#include "tensor.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "parallel.h"

static _Atomic size_t live_bytes;

size_t nnl_tensor_nbytes_total(void) { return atomic_load(&live_bytes); }

/* ---- storage ---- */

/* Large blocks are kept for reuse: a fresh 40 MB buffer costs ~10k page faults, so an
 * allocating a + b would otherwise run at a quarter of memory bandwidth. From 64 KB up:
 * malloc hands blocks that size back to the kernel (mmap, heap trimming), so a training step's
 * activations and gradients would fault in again every step. 256 slots hold a ResNet-18
 * training step's blocks (32 left ~4,500 page faults per step); at most 1 GB is kept.
 * The sanitizer build skips it so use-after-free stays visible. */
#if defined(__has_feature) /* clang does not define __SANITIZE_ADDRESS__ */
#if __has_feature(address_sanitizer)
#define NNL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(NNL_ASAN)
#define CACHE_SLOTS 0
#else
#define CACHE_SLOTS 256
#endif
#define CACHE_MIN (1u << 16)
#define CACHE_MAX_BYTES ((size_t)1 << 30)

static struct {
  void *p;
  size_t cap;
} cache[CACHE_SLOTS + 1];
static size_t cache_bytes;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void *block_get(size_t *capp) {
  size_t cap = *capp;
  void *p = NULL;
  if (cap >= CACHE_MIN) {
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
      if (cache[i].p && cache[i].cap >= cap && cache[i].cap <= 2 * cap &&
          (best < 0 || cache[i].cap < cache[best].cap))
        best = i;
    if (best >= 0) {
      p = cache[best].p;
      *capp = cache[best].cap; /* the block keeps its real size for when it returns */
      cache_bytes -= cache[best].cap;
      cache[best].p = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (p) return p;
  }
  if (posix_memalign(&p, 64, cap) != 0) {
    nnl_storage_trim();
    if (posix_memalign(&p, 64, cap) != 0) return NULL;
  }
  return p;
}

static void block_put(void *p, size_t cap) {
  if (cap >= CACHE_MIN && cap <= CACHE_MAX_BYTES / 4) {
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
      if (!cache[i].p && cache_bytes + cap <= CACHE_MAX_BYTES) {
        cache[i].p = p, cache[i].cap = cap;
        cache_bytes += cap;
        p = NULL;
        break;
      }
    pthread_mutex_unlock(&cache_lock);
  }
  free(p);
}

void nnl_storage_trim(void) {
  pthread_mutex_lock(&cache_lock);
  for (int i = 0; i < CACHE_SLOTS; i++) {
    free(cache[i].p);
    cache[i].p = NULL;
  }
  cache_bytes = 0;
  pthread_mutex_unlock(&cache_lock);
}

static size_t capacity(size_t nbytes) {
  size_t cap = (nbytes + 63) & ~(size_t)63;
  return cap ? cap : 64;
}

/* RAM + swap: no block larger can ever be used. Linux refuses such a request in its default
 * overcommit mode, but with overcommit always on it would succeed and the first write would
 * bring the OOM killer instead of an error; refuse it here in every mode. */
static size_t memory_limit(void) {
  static size_t limit;
  if (!limit) {
    struct sysinfo si;
    limit = sysinfo(&si) == 0 ? ((size_t)si.totalram + si.totalswap) * si.mem_unit : SIZE_MAX;
  }
  return limit;
}

static nnl_storage *storage_new(size_t nbytes) {
  if (nbytes > memory_limit()) return NULL;
  nnl_storage *s = malloc(sizeof *s);
  if (!s) return NULL;
  size_t cap = capacity(nbytes);
  void *p = cap < nbytes ? NULL : block_get(&cap);
  if (!p) {
    free(s);
    return NULL;
  }
  s->data = p;
  s->nbytes = nbytes;
  s->capacity = cap;
  s->refcount = 1;
  s->release = NULL;
  s->ctx = NULL;
  atomic_fetch_add(&live_bytes, nbytes);
  return s;
}

static void storage_release(nnl_storage *s) {
  if (!s || --s->refcount > 0) return;
  if (s->release) {
    s->release(s->ctx, s->data);
  } else if (!s->ctx) { /* ours; a wrapped host buffer without release has ctx set */
    block_put(s->data, s->capacity);
    atomic_fetch_sub(&live_bytes, s->nbytes);
  }
  free(s);
}

/* ---- lifetime ---- */

nnl_tensor *nnl_tensor_retain(nnl_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void nnl_node_release(struct nnl_node *n); /* src/autograd/graph.c */

void nnl_tensor_release(nnl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  nnl_tensor_release(t->grad);
  if (t->grad_fn) nnl_node_release(t->grad_fn);
  storage_release(t->storage);
  free(t);
}

/* ---- shapes ---- */

int64_t nnl_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

void nnl_contig_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

char *nnl_shape_fmt(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

char *nnl_shape_str(const nnl_tensor *t, char *buf, size_t n) {
  return nnl_shape_fmt(t->ndim, t->shape, buf, n);
}

int64_t nnl_tensor_numel(const nnl_tensor *t) { return nnl_shape_numel(t->ndim, t->shape); }

int nnl_tensor_is_contiguous(const nnl_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

void *nnl_tensor_data(const nnl_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)nnl_dtype_size(t->dtype);
}

/* ---- creation ---- */

static nnl_tensor *header_new(nnl_dtype dt, int ndim, const int64_t *shape) {
  nnl_tensor *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, ndim * sizeof *shape);
  nnl_contig_strides(ndim, shape, t->stride);
  return t;
}

/* The product of the sizes with zeros counted as ones must stay far from int64 overflow: a tensor
 * with no elements still has strides (and offsets after narrow) computed from its other sizes. */
static int sizes_too_large(int ndim, const int64_t *shape) {
  uint64_t span = 1;
  for (int i = 0; i < ndim; i++) {
    uint64_t d = shape[i] > 1 ? (uint64_t)shape[i] : 1;
    if (span > (UINT64_MAX / 16) / d) return 1;
    span *= d;
  }
  return 0;
}

static int check_shape(int ndim, const int64_t *shape, nnl_dtype dt, size_t *nbytes) {
  char b[160];
  if (ndim < 0 || ndim > NNL_MAXDIM) {
    nnl_set_error("tensors have at most %d dimensions, got %d", NNL_MAXDIM, ndim);
    return -1;
  }
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      nnl_set_error("invalid size %s: sizes must be non-negative",
                    nnl_shape_fmt(ndim, shape, b, sizeof b));
      return -1;
    }
    n *= (uint64_t)shape[i];
  }
  if (sizes_too_large(ndim, shape)) {
    nnl_set_error("size %s is too large", nnl_shape_fmt(ndim, shape, b, sizeof b));
    return -1;
  }
  *nbytes = (size_t)(n * nnl_dtype_size(dt));
  return 0;
}

nnl_tensor *nnl_tensor_empty(nnl_dtype dt, int ndim, const int64_t *shape) {
  size_t nbytes;
  if (check_shape(ndim, shape, dt, &nbytes)) return NULL;
  nnl_tensor *t = header_new(dt, ndim, shape);
  if (!t) goto oom;
  t->storage = storage_new(nbytes);
  if (!t->storage) {
    free(t);
    goto oom;
  }
  return t;
oom: {
  char b[160];
  nnl_set_error("out of memory: cannot allocate %.1f MB for a %s tensor of size %s",
                nbytes / 1048576.0, nnl_dtype_name(dt), nnl_shape_fmt(ndim, shape, b, sizeof b));
  return NULL;
}
}

nnl_tensor *nnl_tensor_zeros(nnl_dtype dt, int ndim, const int64_t *shape) {
  nnl_tensor *t = nnl_tensor_empty(dt, ndim, shape);
  if (t) {
    char *p = t->storage->data;
    size_t n = t->storage->nbytes;
#pragma omp parallel for if (n > 4 * NNL_PAR_MIN)
    for (size_t c = 0; c < n; c += 65536) memset(p + c, 0, n - c < 65536 ? n - c : 65536);
  }
  return t;
}

nnl_tensor *nnl_tensor_full(nnl_dtype dt, int ndim, const int64_t *shape, double v) {
  nnl_tensor *t = nnl_tensor_empty(dt, ndim, shape);
  if (t) nnl_fill_(t, v);
  return t;
}

nnl_tensor *nnl_tensor_empty_like(const nnl_tensor *t) {
  return nnl_tensor_empty(t->dtype, t->ndim, t->shape);
}

nnl_tensor *nnl_tensor_zeros_like(const nnl_tensor *t) {
  return nnl_tensor_zeros(t->dtype, t->ndim, t->shape);
}

nnl_tensor *nnl_tensor_scalar(nnl_dtype dt, double v) { return nnl_tensor_full(dt, 0, NULL, v); }

nnl_tensor *nnl_tensor_wrap(void *data, nnl_dtype dt, int ndim, const int64_t *shape,
                            const int64_t *strides, void (*release)(void *, void *), void *ctx) {
  size_t nbytes;
  if (check_shape(ndim, shape, dt, &nbytes)) return NULL;
  if (!data && nbytes) {
    nnl_set_error("wrap: data pointer is NULL");
    return NULL;
  }
  nnl_tensor *t = header_new(dt, ndim, shape);
  nnl_storage *s = malloc(sizeof *s);
  if (!t || !s) {
    free(t);
    free(s);
    nnl_set_error("out of memory");
    return NULL;
  }
  int64_t extent = 1;
  if (strides) {
    for (int i = 0; i < ndim; i++) {
      if (strides[i] < 0) {
        free(t);
        free(s);
        nnl_set_error("wrap: negative strides are not supported");
        return NULL;
      }
      t->stride[i] = strides[i];
      if (shape[i] > 0) extent += (shape[i] - 1) * strides[i];
    }
    if (nnl_shape_numel(ndim, shape) == 0) extent = 0;
    nbytes = extent * nnl_dtype_size(dt);
  }
  s->data = data;
  s->capacity = 0;
  s->nbytes = nbytes;
  s->refcount = 1;
  s->release = release;
  s->ctx = release ? ctx : (void *)s; /* non-NULL ctx without release: host keeps the memory */
  t->storage = s;
  return t;
}

nnl_tensor *nnl_tensor_from_buffer(const void *data, nnl_dtype dt, int ndim,
                                   const int64_t *shape) {
  nnl_tensor *t = nnl_tensor_empty(dt, ndim, shape);
  if (t && t->storage->nbytes) memcpy(t->storage->data, data, t->storage->nbytes);
  return t;
}

nnl_tensor *nnl_arange(double start, double end, double step, nnl_dtype dt) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
    nnl_set_error("arange: step must be non-zero and bounds finite");
    return NULL;
  }
  double len = ceil((end - start) / step);
  if (len < 0) len = 0;
  if (len > 1e12) {
    nnl_set_error("arange: %.0f elements is too many", len);
    return NULL;
  }
  int64_t n = (int64_t)len;
  nnl_tensor *t = nnl_tensor_empty(dt, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) nnl_tensor_set(t, &i, start + i * step);
  return t;
}

nnl_tensor *nnl_linspace(double start, double end, int64_t n) {
  if (n < 0) {
    nnl_set_error("linspace: number of steps must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  nnl_tensor *t = nnl_tensor_empty(NNL_F32, 1, &n);
  if (!t) return NULL;
  float *p = t->storage->data;
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  for (int64_t i = 0; i < n; i++) /* both ends exact; a single step is the start, as PyTorch */
    p[i] = (float)(i < n / 2 || n == 1 ? start + step * i : end - step * (n - 1 - i));
  return t;
}

nnl_tensor *nnl_eye(int64_t n, int64_t m) {
  int64_t shape[2] = {n, m};
  nnl_tensor *t = nnl_tensor_zeros(NNL_F32, 2, shape);
  if (!t) return NULL;
  float *p = t->storage->data;
  for (int64_t i = 0; i < n && i < m; i++) p[i * m + i] = 1.0f;
  return t;
}

/* ---- element access ---- */

static inline int64_t elem_offset(const nnl_tensor *t, const int64_t *idx) {
  int64_t o = t->offset;
  for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
  return o;
}

static inline double load(const void *base, nnl_dtype dt, int64_t o) {
  switch (dt) {
  case NNL_F32: return ((const float *)base)[o];
  case NNL_I64: return (double)((const int64_t *)base)[o];
  case NNL_U8: return ((const uint8_t *)base)[o];
  }
  return 0;
}

/* Every double in [-2^63, 2^63) converts; NaN and the rest would be undefined: 0. */
static inline int64_t to_int(double v) {
  return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : 0;
}

static inline void store(void *base, nnl_dtype dt, int64_t o, double v) {
  switch (dt) {
  case NNL_F32: ((float *)base)[o] = (float)v; break;
  case NNL_I64: ((int64_t *)base)[o] = to_int(v); break;
  case NNL_U8: ((uint8_t *)base)[o] = (uint8_t)to_int(v); break; /* wraps like a C cast */
  }
}

double nnl_tensor_get(const nnl_tensor *t, const int64_t *idx) {
  return load(t->storage->data, t->dtype, elem_offset(t, idx));
}

void nnl_tensor_set(nnl_tensor *t, const int64_t *idx, double v) {
  store(t->storage->data, t->dtype, elem_offset(t, idx), v);
}

/* ---- copies ---- */

/* Iterate the elements of a view in row-major order, n at a time from flat index start. */
static void copy_range(void *dst, nnl_dtype ddt, const nnl_tensor *src, int64_t start,
                       int64_t count) {
  int nd = src->ndim;
  int64_t idx[NNL_MAXDIM];
  int64_t rem = start;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = src->shape[d] ? rem % src->shape[d] : 0;
    rem = src->shape[d] ? rem / src->shape[d] : 0;
  }
  int64_t o = elem_offset(src, idx);
  const void *sb = src->storage->data;
  size_t dsz = nnl_dtype_size(ddt);
  char *out = (char *)dst + start * dsz;
  int64_t inner = nd ? src->shape[nd - 1] : 1, istride = nd ? src->stride[nd - 1] : 0;
  int64_t i = 0;
  while (i < count) {
    int64_t run = nd ? inner - idx[nd - 1] : 1;
    if (run > count - i) run = count - i;
    if (ddt == src->dtype && ddt == NNL_F32) {
      const float *s = (const float *)sb + o;
      float *d = (float *)out + i;
      if (istride == 1) memcpy(d, s, run * 4);
      else for (int64_t k = 0; k < run; k++) d[k] = s[k * istride];
    } else if (ddt == src->dtype && ddt == NNL_I64) {
      const int64_t *s = (const int64_t *)sb + o;
      int64_t *d = (int64_t *)out + i;
      for (int64_t k = 0; k < run; k++) d[k] = s[k * istride];
    } else {
      for (int64_t k = 0; k < run; k++) store(out, ddt, i + k, load(sb, src->dtype, o + k * istride));
    }
    i += run;
    if (!nd) break;
    idx[nd - 1] += run;
    o += run * istride;
    for (int d = nd - 1; d > 0 && idx[d] >= src->shape[d]; d--) {
      o -= idx[d] * src->stride[d];
      idx[d] = 0;
      idx[d - 1]++;
      o += src->stride[d - 1];
    }
  }
}

/* The mirror of copy_range: dst's elements from flat index start, count of them, get the
 * dense src values start.. (src has dst's dtype). */
static void scatter_range(const nnl_tensor *dst, const void *src, int64_t start, int64_t count) {
  int nd = dst->ndim;
  int64_t idx[NNL_MAXDIM];
  int64_t rem = start;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = dst->shape[d] ? rem % dst->shape[d] : 0;
    rem = dst->shape[d] ? rem / dst->shape[d] : 0;
  }
  int64_t o = elem_offset(dst, idx);
  const size_t sz = nnl_dtype_size(dst->dtype);
  char *db = dst->storage->data;
  const char *in = (const char *)src + start * sz;
  int64_t inner = nd ? dst->shape[nd - 1] : 1, ostride = nd ? dst->stride[nd - 1] : 0;
  int64_t i = 0;
  while (i < count) {
    int64_t run = nd ? inner - idx[nd - 1] : 1;
    if (run > count - i) run = count - i;
    if (ostride == 1) {
      memcpy(db + o * sz, in + i * sz, run * sz);
    } else if (sz == 4) {
      uint32_t *d = (uint32_t *)db + o;
      const uint32_t *a = (const uint32_t *)in + i;
      for (int64_t k = 0; k < run; k++) d[k * ostride] = a[k];
    } else if (sz == 8) {
      uint64_t *d = (uint64_t *)db + o;
      const uint64_t *a = (const uint64_t *)in + i;
      for (int64_t k = 0; k < run; k++) d[k * ostride] = a[k];
    } else {
      uint8_t *d = (uint8_t *)db + o;
      const uint8_t *a = (const uint8_t *)in + i;
      for (int64_t k = 0; k < run; k++) d[k * ostride] = a[k];
    }
    i += run;
    if (!nd) break;
    idx[nd - 1] += run;
    o += run * ostride;
    for (int d = nd - 1; d > 0 && idx[d] >= dst->shape[d]; d--) {
      o -= idx[d] * dst->stride[d];
      idx[d] = 0;
      idx[d - 1]++;
      o += dst->stride[d - 1];
    }
  }
}

/* dst (any strides) = the dense row-major values at src, of dst's dtype. */
static void scatter_dense(nnl_tensor *dst, const void *src) {
  int64_t n = nnl_tensor_numel(dst);
  if (n == 0) return;
  int nt = n > NNL_PAR_MIN ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    int k = omp_get_thread_num(), m = omp_get_num_threads();
    int64_t lo = n * k / m, hi = n * (k + 1) / m;
    if (hi > lo) scatter_range(dst, src, lo, hi - lo);
  }
}

/* Dense copy of src's elements (row-major) into dst with dtype ddt. */
static void copy_dense(void *dst, nnl_dtype ddt, const nnl_tensor *src) {
  int64_t n = nnl_tensor_numel(src);
  if (n == 0) return;
  if (ddt == src->dtype && nnl_tensor_is_contiguous(src)) {
    size_t bytes = n * nnl_dtype_size(ddt);
    const char *s = nnl_tensor_data(src);
#pragma omp parallel for if (bytes > 4 * NNL_PAR_MIN)
    for (size_t c = 0; c < bytes; c += 65536)
      memcpy((char *)dst + c, s + c, bytes - c < 65536 ? bytes - c : 65536);
    return;
  }
  int nt = n > NNL_PAR_MIN ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    int k = omp_get_thread_num(), m = omp_get_num_threads();
    int64_t lo = n * k / m, hi = n * (k + 1) / m;
    if (hi > lo) copy_range(dst, ddt, src, lo, hi - lo);
  }
}

int nnl_tensor_copy_out(const nnl_tensor *t, void *dst) {
  copy_dense(dst, t->dtype, t);
  return 0;
}

nnl_tensor *nnl_raw_clone(const nnl_tensor *t) {
  nnl_tensor *c = nnl_tensor_empty(t->dtype, t->ndim, t->shape);
  if (c) copy_dense(c->storage->data, c->dtype, t);
  return c;
}

nnl_tensor *nnl_raw_contiguous(nnl_tensor *t) {
  if (nnl_tensor_is_contiguous(t)) return nnl_tensor_retain(t);
  return nnl_raw_clone(t);
}

nnl_tensor *nnl_raw_to_dtype(const nnl_tensor *t, nnl_dtype dt) {
  nnl_tensor *c = nnl_tensor_empty(dt, t->ndim, t->shape);
  if (c) copy_dense(c->storage->data, dt, t);
  return c;
}

int nnl_fill_(nnl_tensor *dst, double v) {
  int64_t n = nnl_tensor_numel(dst);
  if (nnl_tensor_is_contiguous(dst)) {
    void *p = nnl_tensor_data(dst);
    if (dst->dtype == NNL_F32) {
      float f = (float)v, *q = p;
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
      for (int64_t i = 0; i < n; i++) q[i] = f;
    } else {
      for (int64_t i = 0; i < n; i++) store(p, dst->dtype, i, v);
    }
    return 0;
  }
  int64_t idx[NNL_MAXDIM] = {0};
  for (int64_t i = 0; i < n; i++) {
    nnl_tensor_set(dst, idx, v);
    for (int d = dst->ndim - 1; d >= 0; d--) {
      if (++idx[d] < dst->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

int nnl_copy_(nnl_tensor *dst, const nnl_tensor *src) {
  nnl_tensor *s = nnl_raw_expand((nnl_tensor *)src, dst->ndim, dst->shape, "copy_");
  if (!s) return -1;
  const int contig = nnl_tensor_is_contiguous(dst);
  if (contig && s->storage != dst->storage) {
    copy_dense(nnl_tensor_data(dst), dst->dtype, s);
    nnl_tensor_release(s);
    return 0;
  }
  /* A strided dst takes dense values of its dtype; and src may overlap dst
   * (x:copy_(x:t())), so it is read in full before anything is written. */
  if (s->storage == dst->storage || s->dtype != dst->dtype || !nnl_tensor_is_contiguous(s)) {
    nnl_tensor *tmp = nnl_raw_to_dtype(s, dst->dtype);
    nnl_tensor_release(s);
    if (!tmp) return -1;
    s = tmp;
  }
  if (contig) copy_dense(nnl_tensor_data(dst), dst->dtype, s);
  else scatter_dense(dst, nnl_tensor_data(s));
  nnl_tensor_release(s);
  return 0;
}

/* ---- raw views ---- */

nnl_tensor *nnl_raw_alias(const nnl_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset) {
  nnl_tensor *v = calloc(1, sizeof *v);
  if (!v) {
    nnl_set_error("out of memory");
    return NULL;
  }
  v->refcount = 1;
  v->dtype = t->dtype;
  v->ndim = ndim;
  if (ndim) {
    memcpy(v->shape, shape, ndim * sizeof *shape);
    memcpy(v->stride, stride, ndim * sizeof *stride);
  }
  v->offset = offset;
  v->storage = t->storage;
  t->storage->refcount++;
  return v;
}

static int check_dim(const nnl_tensor *t, int dim, int extra, const char *fn) {
  if (dim < 0 || dim >= t->ndim + extra) {
    nnl_set_error("%s: dimension %d out of range (expected 1 to %d)", fn, dim + 1,
                  t->ndim + extra);
    return -1;
  }
  return 0;
}

/* Strides for viewing t as shape without copying, PyTorch's rule: each run of dims that is
 * contiguous within itself must map onto whole new dims. 0 if impossible. */
static int view_strides(const nnl_tensor *t, int ndim, const int64_t *shape, int64_t *st) {
  if (nnl_tensor_numel(t) == 0 || t->ndim == 0 || nnl_tensor_is_contiguous(t)) {
    nnl_contig_strides(ndim, shape, st);
    return 1;
  }
  int vd = ndim - 1;
  int64_t base = t->stride[t->ndim - 1], tn = 1, vn = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tn *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tn * base)) {
      while (vd >= 0 && (vn < tn || shape[vd] == 1)) {
        st[vd] = vn * base;
        vn *= shape[vd];
        vd--;
      }
      if (vn != tn) return 0;
      if (td > 0) base = t->stride[td - 1], tn = 1, vn = 1;
    }
  }
  return vd == -1;
}

nnl_tensor *nnl_raw_view(nnl_tensor *t, int ndim, const int64_t *shape, const char *fn) {
  char a[160], b[160];
  if (ndim > NNL_MAXDIM || ndim < 0) {
    nnl_set_error("%s: at most %d dimensions, got %d", fn, NNL_MAXDIM, ndim);
    return NULL;
  }
  int64_t s[NNL_MAXDIM], known = 1, total = nnl_tensor_numel(t);
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1) {
      if (infer >= 0) {
        nnl_set_error("%s: only one dimension can be inferred (-1)", fn);
        return NULL;
      }
      infer = i;
    } else if (s[i] < 0) {
      nnl_set_error("%s: invalid size %s", fn, nnl_shape_fmt(ndim, shape, a, sizeof a));
      return NULL;
    } else { /* saturate: a product past int64 can only be a mismatch */
      known = s[i] && known > INT64_MAX / s[i] ? INT64_MAX : known * s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || total % known) {
      nnl_set_error("%s: shape %s is invalid for input of size %lld", fn,
                    nnl_shape_fmt(ndim, shape, a, sizeof a), (long long)total);
      return NULL;
    }
    s[infer] = total / known;
    known *= s[infer];
  }
  if (known != total) {
    nnl_set_error("%s: shape %s is invalid for input of size %lld (%s)", fn,
                  nnl_shape_fmt(ndim, s, a, sizeof a), (long long)total,
                  nnl_shape_str(t, b, sizeof b));
    return NULL;
  }
  if (sizes_too_large(ndim, s)) {
    nnl_set_error("%s: size %s is too large", fn, nnl_shape_fmt(ndim, s, a, sizeof a));
    return NULL;
  }
  int64_t st[NNL_MAXDIM];
  if (!view_strides(t, ndim, s, st)) {
    nnl_set_error("%s: cannot view a tensor of size %s (not contiguous) as size %s without "
                  "copying; use reshape() or contiguous() first",
                  fn, nnl_shape_str(t, b, sizeof b), nnl_shape_fmt(ndim, s, a, sizeof a));
    return NULL;
  }
  return nnl_raw_alias(t, ndim, s, st, t->offset);
}

nnl_tensor *nnl_raw_transpose(nnl_tensor *t, int d0, int d1) {
  if (check_dim(t, d0, 0, "transpose") || check_dim(t, d1, 0, "transpose")) return NULL;
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  memcpy(sh, t->shape, sizeof sh);
  memcpy(st, t->stride, sizeof st);
  sh[d0] = t->shape[d1], sh[d1] = t->shape[d0];
  st[d0] = t->stride[d1], st[d1] = t->stride[d0];
  return nnl_raw_alias(t, t->ndim, sh, st, t->offset);
}

nnl_tensor *nnl_raw_permute(nnl_tensor *t, const int *perm) {
  int seen[NNL_MAXDIM] = {0};
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  for (int i = 0; i < t->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]]++) {
      nnl_set_error("permute: dims must be a permutation of 1..%d", t->ndim);
      return NULL;
    }
    sh[i] = t->shape[perm[i]];
    st[i] = t->stride[perm[i]];
  }
  return nnl_raw_alias(t, t->ndim, sh, st, t->offset);
}

nnl_tensor *nnl_raw_narrow(nnl_tensor *t, int dim, int64_t start, int64_t len) {
  if (check_dim(t, dim, 0, "narrow")) return NULL;
  if (start < 0 || len < 0 || len > t->shape[dim] - start) { /* start + len could overflow */
    nnl_set_error("narrow: start %lld and length %lld exceed dimension %d of size %lld",
                  (long long)start + 1, (long long)len, dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[NNL_MAXDIM];
  memcpy(sh, t->shape, sizeof sh);
  sh[dim] = len;
  return nnl_raw_alias(t, t->ndim, sh, t->stride, t->offset + start * t->stride[dim]);
}

nnl_tensor *nnl_raw_select(nnl_tensor *t, int dim, int64_t index) {
  if (check_dim(t, dim, 0, "select")) return NULL;
  if (index < 0 || index >= t->shape[dim]) {
    nnl_set_error("select: index %lld is out of range for dimension %d of size %lld",
                  (long long)index + 1, dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dim) sh[k] = t->shape[i], st[k++] = t->stride[i];
  return nnl_raw_alias(t, t->ndim - 1, sh, st, t->offset + index * t->stride[dim]);
}

nnl_tensor *nnl_raw_squeeze(nnl_tensor *t, int dim) {
  if (dim >= 0 && check_dim(t, dim, 0, "squeeze")) return NULL;
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  int k = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] == 1 && (dim < 0 || dim == i)) continue;
    sh[k] = t->shape[i], st[k++] = t->stride[i];
  }
  return nnl_raw_alias(t, k, sh, st, t->offset);
}

nnl_tensor *nnl_raw_unsqueeze(nnl_tensor *t, int dim) {
  if (check_dim(t, dim, 1, "unsqueeze")) return NULL;
  if (t->ndim >= NNL_MAXDIM) {
    nnl_set_error("unsqueeze: tensors have at most %d dimensions", NNL_MAXDIM);
    return NULL;
  }
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  int k = 0;
  for (int i = 0; i <= t->ndim; i++) {
    if (i == dim) {
      sh[k] = 1;
      st[k++] = i < t->ndim ? t->stride[i] * t->shape[i] : 1;
    }
    if (i < t->ndim) sh[k] = t->shape[i], st[k++] = t->stride[i];
  }
  return nnl_raw_alias(t, k, sh, st, t->offset);
}

nnl_tensor *nnl_raw_expand(nnl_tensor *t, int ndim, const int64_t *shape, const char *fn) {
  char a[160], b[160];
  if (ndim < t->ndim || ndim > NNL_MAXDIM) goto bad;
  int64_t sh[NNL_MAXDIM], st[NNL_MAXDIM];
  for (int i = ndim - 1, j = t->ndim - 1; i >= 0; i--, j--) {
    int64_t want = shape[i];
    if (j >= 0) {
      if (want == -1) want = t->shape[j];
      if (want < 0) goto bad;
      if (t->shape[j] == want) {
        sh[i] = want, st[i] = t->stride[j];
      } else if (t->shape[j] == 1) {
        sh[i] = want, st[i] = 0;
      } else {
        goto bad;
      }
    } else {
      if (want < 0) goto bad;
      sh[i] = want, st[i] = 0;
    }
  }
  { /* the view costs nothing, but every kernel counts its elements in int64 */
    size_t nbytes;
    if (check_shape(ndim, sh, t->dtype, &nbytes)) {
      nnl_set_error("%s: size %s is too large", fn, nnl_shape_fmt(ndim, sh, b, sizeof b));
      return NULL;
    }
  }
  return nnl_raw_alias(t, ndim, sh, st, t->offset);
bad:
  nnl_set_error("%s: cannot broadcast size %s to %s", fn, nnl_shape_str(t, a, sizeof a),
                nnl_shape_fmt(ndim, shape, b, sizeof b));
  return NULL;
}

int nnl_broadcast_shape(const nnl_tensor *a, const nnl_tensor *b, int64_t *out, const char *fn) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[160], y[160];
      nnl_set_error("%s: shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)", fn,
                    nnl_shape_str(a, x, sizeof x), nnl_shape_str(b, y, sizeof y), i + 1,
                    (long long)sa, (long long)sb);
      return -1;
    }
    out[i] = sa == 1 ? sb : sa;
  }
  return nd;
}
