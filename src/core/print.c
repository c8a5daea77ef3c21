/* print.c — tensors as text, laid out the way PyTorch's repr does (torch/_tensor_str.py):
 * one width for every element, 4 decimals or scientific notation, "..." elision, 80 columns. */
#include "../kernels/tensorops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINEWIDTH 80
#define PRECISION 4
#define PREFIX "tensor("

typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }
static void putc_n(buf *b, char c, int n) {
  for (int i = 0; i < n; i++) put(b, &c, 1);
}

/* How every element is written: chosen once per tensor from the elements shown. */
typedef struct {
  const nnl_tensor *t;
  int summarize, edge;
  int floating, int_mode, sci_mode, width;
  /* scan state */
  int any;
  double amin, amax;
} fmt;

static double value_at(const nnl_tensor *t, int64_t off) {
  const char *base = (const char *)t->storage->data;
  switch (t->dtype) {
  case NNL_F32: return ((const float *)base)[off];
  case NNL_I64: return (double)((const int64_t *)base)[off];
  default: return ((const uint8_t *)base)[off];
  }
}

/* Text of one element without padding. */
static int format_value(const fmt *f, int64_t off, char *s, size_t n) {
  if (!f->floating) {
    if (f->t->dtype == NNL_I64)
      return snprintf(s, n, "%lld", (long long)((const int64_t *)f->t->storage->data)[off]);
    return snprintf(s, n, "%d", (int)((const uint8_t *)f->t->storage->data)[off]);
  }
  double v = value_at(f->t, off);
  if (v != v) return snprintf(s, n, "nan"); /* never "-nan" */
  if (isinf(v)) return snprintf(s, n, v > 0 ? "inf" : "-inf");
  if (f->sci_mode) return snprintf(s, n, "%.*e", PRECISION, v);
  if (f->int_mode) return snprintf(s, n, "%.0f.", v);
  return snprintf(s, n, "%.*f", PRECISION, v);
}

/* Call fn on every element that will be shown, in order. */
static void visit(fmt *f, int d, int64_t off, void (*fn)(fmt *, int64_t)) {
  const nnl_tensor *t = f->t;
  if (d == t->ndim) {
    fn(f, off);
    return;
  }
  const int64_t n = t->shape[d];
  const int cut = f->summarize && n > 2 * (int64_t)f->edge;
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == f->edge) i = n - f->edge;
    if (i >= n) break;
    visit(f, d + 1, off + i * t->stride[d], fn);
  }
}

static void scan_range(fmt *f, int64_t off) {
  double v = value_at(f->t, off);
  if (v == 0 || !isfinite(v)) return;
  if (v != ceil(v)) f->int_mode = 0;
  double a = fabs(v);
  if (!f->any || a < f->amin) f->amin = a;
  if (!f->any || a > f->amax) f->amax = a;
  f->any = 1;
}

static void scan_width(fmt *f, int64_t off) {
  char s[64];
  if (f->floating) {
    double v = value_at(f->t, off);
    if (v == 0 || !isfinite(v)) return; /* PyTorch sizes columns by nonzero finite values */
  }
  int w = format_value(f, off, s, sizeof s);
  if (w > f->width) f->width = w;
}

static void fmt_init(fmt *f, const nnl_tensor *t, int summarize, int edge) {
  memset(f, 0, sizeof *f);
  f->t = t;
  f->summarize = summarize;
  f->edge = edge;
  f->floating = t->dtype == NNL_F32;
  f->int_mode = 1;
  f->width = 1;
  if (f->floating) {
    visit(f, 0, t->offset, scan_range);
    if (!f->any) return;
    f->sci_mode = f->amax / f->amin > 1000.0 || f->amax > 1.0e8 ||
                  (!f->int_mode && f->amin < 1.0e-4);
  }
  visit(f, 0, t->offset, scan_width);
}

static void put_value(buf *b, const fmt *f, int64_t off) {
  char s[64];
  int w = format_value(f, off, s, sizeof s);
  putc_n(b, ' ', f->width - w);
  put(b, s, (size_t)w);
}

/* The last dim: elements joined by ", ", wrapped to the line width. */
static void vector_str(buf *b, const fmt *f, int64_t off, int indent) {
  const nnl_tensor *t = f->t;
  const int d = t->ndim - 1;
  const int64_t n = t->shape[d];
  const int cut = f->summarize && n > 2 * (int64_t)f->edge;
  int per_line = (int)floor((double)(LINEWIDTH - indent) / (f->width + 2));
  if (per_line < 1) per_line = 1;
  put(b, "[", 1);
  if (f->summarize && f->edge <= 0) {
    puts_(b, "...]");
    return;
  }
  int64_t k = 0; /* items written, " ..." included */
  for (int64_t i = 0; i < n; i++, k++) {
    if (k > 0) {
      if (k % per_line == 0) {
        put(b, ",\n", 2);
        putc_n(b, ' ', indent + 1);
      } else {
        put(b, ", ", 2);
      }
    }
    if (cut && i == f->edge) {
      puts_(b, " ...");
      i = n - f->edge - 1;
      continue;
    }
    put_value(b, f, off + i * t->stride[d]);
  }
  put(b, "]", 1);
}

static void tensor_str(buf *b, const fmt *f, int d, int64_t off, int indent) {
  const nnl_tensor *t = f->t;
  if (d == t->ndim - 1) {
    vector_str(b, f, off, indent);
    return;
  }
  const int64_t n = t->shape[d];
  const int cut = f->summarize && n > 2 * (int64_t)f->edge;
  if (f->summarize && f->edge <= 0) {
    puts_(b, "[...]");
    return;
  }
  put(b, "[", 1);
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == f->edge) i = n - f->edge;
    if (i > 0) { /* between slices: a comma, a blank line per dim below, the indent */
      put(b, ",", 1);
      putc_n(b, '\n', t->ndim - d - 1);
      putc_n(b, ' ', indent + 1);
    }
    if (cut && i == n - f->edge) {
      puts_(b, "...,");
      putc_n(b, '\n', t->ndim - d - 1);
      putc_n(b, ' ', indent + 1);
    }
    if (i >= n) break;
    tensor_str(b, f, d + 1, off + i * t->stride[d], indent + 1);
  }
  put(b, "]", 1);
}

/* ", suffix", or ",\n       suffix" when it would run past the line width. */
static void add_suffix(buf *b, const char *suffix, int *last_line_len) {
  int n = (int)strlen(suffix);
  if (*last_line_len + n + 2 > LINEWIDTH) {
    put(b, ",\n", 2);
    putc_n(b, ' ', (int)strlen(PREFIX));
    *last_line_len = (int)strlen(PREFIX) + n;
  } else {
    put(b, ", ", 2);
    *last_line_len += n + 2;
  }
  puts_(b, suffix);
}

char *nnl_tensor_format(const nnl_tensor *t, int max_elems, int edge, const char *suffix) {
  buf b = {0};
  const int indent = (int)strlen(PREFIX);
  const int64_t numel = nnl_k_numel(t);
  char extra[3][256];
  int nextra = 0;
  puts_(&b, PREFIX);
  if (numel == 0) {
    puts_(&b, "[]");
    if (t->ndim != 1) { /* Python's tuple spelling: (0, 3) */
      int k = snprintf(extra[nextra], sizeof extra[0], "size=(");
      for (int d = 0; d < t->ndim; d++)
        k += snprintf(extra[nextra] + k, sizeof extra[0] - (size_t)k, "%s%lld",
                      d ? ", " : "", (long long)t->shape[d]);
      snprintf(extra[nextra] + k, sizeof extra[0] - (size_t)k, ")");
      nextra++;
    }
  } else {
    fmt f;
    fmt_init(&f, t, numel > max_elems, edge);
    if (t->ndim == 0) {
      put_value(&b, &f, t->offset);
    } else {
      tensor_str(&b, &f, 0, t->offset, indent);
    }
  }
  if (t->dtype != NNL_F32)
    snprintf(extra[nextra++], sizeof extra[0], "dtype=%s", nnl_dtype_name(t->dtype));
  /* PyTorch measures the last line one past its length; kept so wrapping matches */
  const char *nl = b.s ? strrchr(b.s, '\n') : NULL;
  int last = nl ? (int)(b.len - (size_t)(nl - b.s)) + 1 : (int)b.len + 2;
  for (int i = 0; i < nextra; i++) add_suffix(&b, extra[i], &last);
  if (suffix && *suffix) add_suffix(&b, suffix, &last);
  put(&b, ")", 1);
  if (b.oom) {
    free(b.s);
    nnl_set_error("tensor format: out of memory");
    return NULL;
  }
  return b.s;
}
