/* idx.c — read and write IDX files (the MNIST format: 00 00 type ndim, big-endian u32 dims, data),
 * plain or gzip. Data is read incrementally, so a header claiming gigabytes costs only what is there. */
#define _POSIX_C_SOURCE 200809L
#include "io.h"
#include "../nnlua.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "idx.c writes assuming a little-endian host"
#endif

size_t nnl_idx_type_size(int type) {
  switch (type) {
  case NNL_IDX_U8: case NNL_IDX_I8: return 1;
  case NNL_IDX_I16: return 2;
  case NNL_IDX_I32: case NNL_IDX_F32: return 4;
  case NNL_IDX_F64: return 8;
  default: return 0;
  }
}

static const char *type_name(int type) {
  switch (type) {
  case NNL_IDX_U8: return "u8";
  case NNL_IDX_I8: return "i8";
  case NNL_IDX_I16: return "i16";
  case NNL_IDX_I32: return "i32";
  case NNL_IDX_F32: return "f32";
  case NNL_IDX_F64: return "f64";
  default: return "?";
  }
}

static const char *dims_str(const int64_t *dims, int ndim, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  if (ndim == 0) snprintf(buf, n, "scalar");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? "x%" PRId64 : "%" PRId64, dims[i]);
  return buf;
}

/* ---- input: a gzFile (plain or gzip, zlib decides) or a memory buffer (plain or gzip) ---- */

typedef struct {
  const char *name;
  gzFile gz;              /* file input */
  const uint8_t *mem;     /* memory input */
  size_t len, pos;
  int zip;                /* memory input is gzip */
  int zdone;              /* the gzip stream (and any member after it) has ended */
  z_stream zs;
} src;

/* Read up to n bytes into dst; returns the count (less than n only at the end), or -1. */
static long long src_read(src *s, uint8_t *dst, size_t n) {
  size_t got = 0;
  if (s->gz) {
    while (got < n) {
      unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
      int r = gzread(s->gz, dst + got, chunk);
      int err;
      const char *msg = gzerror(s->gz, &err);
      if (r < 0 || (err != Z_OK && err != Z_BUF_ERROR)) {
        nnl_set_error("%s: %s: %s", s->name, err == Z_DATA_ERROR ? "corrupt gzip data" : "read error",
                      err == Z_ERRNO ? strerror(errno) : msg);
        return -1;
      }
      got += (size_t)r;
      if (r == 0) {
        if (err == Z_BUF_ERROR) {
          nnl_set_error("%s: gzip stream is truncated (unexpected end of file)", s->name);
          return -1;
        }
        break;
      }
    }
    return (long long)got;
  }
  if (!s->zip) {
    size_t k = s->len - s->pos < n ? s->len - s->pos : n;
    if (k) memcpy(dst, s->mem + s->pos, k);
    s->pos += k;
    return (long long)k;
  }
  while (got < n && !s->zdone) {
    size_t in = s->len - s->pos, out = n - got;
    s->zs.next_in = (Bytef *)(uintptr_t)(s->mem + s->pos);
    s->zs.avail_in = in > UINT_MAX ? UINT_MAX : (uInt)in;
    s->zs.next_out = dst + got;
    s->zs.avail_out = out > UINT_MAX ? UINT_MAX : (uInt)out;
    uInt ai = s->zs.avail_in, ao = s->zs.avail_out;
    int r = inflate(&s->zs, Z_NO_FLUSH);
    s->pos += ai - s->zs.avail_in;
    got += ao - s->zs.avail_out;
    if (r == Z_STREAM_END) {
      /* like gzread: another gzip member may follow; anything else after the stream is ignored */
      if (s->len - s->pos >= 2 && s->mem[s->pos] == 0x1f && s->mem[s->pos + 1] == 0x8b) inflateReset(&s->zs);
      else s->zdone = 1;
    } else if (r == Z_BUF_ERROR && s->pos == s->len) {
      nnl_set_error("%s: gzip stream is truncated (unexpected end of data)", s->name);
      return -1;
    } else if (r != Z_OK && r != Z_BUF_ERROR) {
      nnl_set_error("%s: corrupt gzip data: %s", s->name,
                    r == Z_MEM_ERROR ? "out of memory" : s->zs.msg ? s->zs.msg : "inflate failed");
      return -1;
    }
  }
  return (long long)got;
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int convert(nnl_idx *x, uint8_t *raw, const char *name) {
  size_t n = x->numel, esz = nnl_idx_type_size(x->type);
  if (x->as == NNL_IDX_AS_U8 && x->type == NNL_IDX_U8) { x->data = raw; return 0; }
  size_t osz = x->as == NNL_IDX_AS_U8 ? 1 : x->as == NNL_IDX_AS_F32 ? 4 : 8;
  void *out = malloc(n ? n * osz : 1);
  if (!out) { nnl_set_error("%s: out of memory", name); return -1; }
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = raw + i * esz;
    double v;
    uint32_t u32;
    uint64_t u64;
    switch (x->type) {
    case NNL_IDX_U8: v = p[0]; break;
    case NNL_IDX_I8: v = (int8_t)p[0]; break;
    case NNL_IDX_I16: v = (int16_t)(uint16_t)((p[0] << 8) | p[1]); break;
    case NNL_IDX_I32: v = (int32_t)be32(p); break;
    case NNL_IDX_F32: {
      float f;
      u32 = be32(p);
      memcpy(&f, &u32, 4);
      v = f;
      break;
    }
    default:
      u64 = 0;
      for (int k = 0; k < 8; k++) u64 = (u64 << 8) | p[k];
      memcpy(&v, &u64, 8);
      break;
    }
    if (x->as == NNL_IDX_AS_F32) { ((float *)out)[i] = (float)v; continue; }
    int ok = x->as == NNL_IDX_AS_U8 ? (v >= 0 && v <= 255 && v == floor(v))
                                   : (v >= -0x1p63 && v < 0x1p63 && v == floor(v));
    if (!ok) {
      nnl_set_error("%s: element %zu is %g, which does not fit in %s (load it as float32)", name, i, v,
                    x->as == NNL_IDX_AS_U8 ? "uint8" : "int64");
      free(out);
      return -1;
    }
    if (x->as == NNL_IDX_AS_U8) ((uint8_t *)out)[i] = (uint8_t)v;
    else ((int64_t *)out)[i] = (int64_t)v;
  }
  free(raw);
  x->data = out;
  return 0;
}

static nnl_idx *read_idx(src *s, int as) {
  const char *name = s->name;
  uint8_t hdr[4 * NNL_IO_MAXDIM];
  char db[200];
  if (as != NNL_IDX_AS_U8 && as != NNL_IDX_AS_F32 && as != NNL_IDX_AS_I64) {
    nnl_set_error("%s: bad output type %d (expected u8, float32 or int64)", name, as);
    return NULL;
  }
  long long got = src_read(s, hdr, 4);
  if (got < 0) return NULL;
  if (got < 4) {
    nnl_set_error("%s: file too short (%lld bytes) for an IDX header: truncated or not IDX", name, got);
    return NULL;
  }
  if (hdr[0] || hdr[1]) {
    nnl_set_error("%s: not an IDX file (starts with %02x %02x %02x %02x, expected 00 00 type ndim)", name,
                  hdr[0], hdr[1], hdr[2], hdr[3]);
    return NULL;
  }
  nnl_idx *x = calloc(1, sizeof *x);
  if (!x) { nnl_set_error("%s: out of memory", name); return NULL; }
  x->type = hdr[2];
  x->ndim = hdr[3];
  x->as = as;
  size_t esz = nnl_idx_type_size(x->type);
  if (!esz) {
    nnl_set_error("%s: unknown IDX element type 0x%02x (expected 08, 09, 0b, 0c, 0d or 0e)", name, x->type);
    goto fail;
  }
  if (x->ndim > NNL_IO_MAXDIM) {
    nnl_set_error("%s: IDX header has %d dimensions (at most %d supported)", name, x->ndim, NNL_IO_MAXDIM);
    goto fail;
  }
  got = src_read(s, hdr, 4 * (size_t)x->ndim);
  if (got < 0) goto fail;
  if (got < 4 * x->ndim) {
    nnl_set_error("%s: truncated IDX header (%d dimensions need %d bytes)", name, x->ndim, 4 + 4 * x->ndim);
    goto fail;
  }
  uint64_t numel = 1;
  for (int i = 0; i < x->ndim; i++) {
    const uint8_t *p = hdr + 4 * i;
    x->dims[i] = ((int64_t)p[0] << 24) | ((int64_t)p[1] << 16) | ((int64_t)p[2] << 8) | p[3];
    if (x->dims[i] && numel > (SIZE_MAX / 8) / (uint64_t)x->dims[i]) numel = UINT64_MAX;
    else numel *= (uint64_t)x->dims[i];
  }
  if (numel == UINT64_MAX) {
    nnl_set_error("%s: IDX dimensions %s are too large", name, dims_str(x->dims, x->ndim, db, sizeof db));
    goto fail;
  }
  x->numel = (size_t)numel;
  size_t nbytes = x->numel * esz, cap = nbytes < (1u << 20) ? nbytes : (1u << 20), have = 0;
  uint8_t *raw = malloc(cap ? cap : 1);
  while (raw) {
    got = src_read(s, raw + have, cap - have);
    if (got < 0) { free(raw); goto fail; }
    have += (size_t)got;
    if (have < cap || cap == nbytes) break;
    size_t nc = cap > nbytes / 2 ? nbytes : cap * 2; /* grow only as data keeps coming */
    uint8_t *nr = realloc(raw, nc);
    if (!nr) { free(raw); raw = NULL; break; }
    raw = nr;
    cap = nc;
  }
  if (!raw) { nnl_set_error("%s: out of memory (%zu bytes of data)", name, nbytes); goto fail; }
  if (have < nbytes) {
    nnl_set_error("%s: truncated: %s %s data needs %zu bytes but only %zu are present", name,
                  dims_str(x->dims, x->ndim, db, sizeof db), type_name(x->type), nbytes, have);
    free(raw);
    goto fail;
  }
  uint8_t extra;
  got = src_read(s, &extra, 1);
  if (got != 0) {
    if (got > 0)
      nnl_set_error("%s: trailing data after the %zu bytes of %s %s data (wrong dimensions or garbage)",
                    name, nbytes, dims_str(x->dims, x->ndim, db, sizeof db), type_name(x->type));
    free(raw);
    goto fail;
  }
  if (convert(x, raw, name)) { free(raw); goto fail; }
  return x;
fail:
  free(x);
  return NULL;
}

nnl_idx *nnl_idx_parse(const void *buf, size_t len, const char *name, int as) {
  src s;
  memset(&s, 0, sizeof s);
  s.name = name ? name : "<memory>";
  if (!buf && len) { nnl_set_error("%s: NULL buffer", s.name); return NULL; }
  s.mem = buf;
  s.len = len;
  s.zip = len >= 2 && s.mem[0] == 0x1f && s.mem[1] == 0x8b;
  if (s.zip && inflateInit2(&s.zs, 15 + 16) != Z_OK) {
    nnl_set_error("%s: out of memory", s.name);
    return NULL;
  }
  nnl_idx *x = read_idx(&s, as);
  if (s.zip) inflateEnd(&s.zs);
  return x;
}

nnl_idx *nnl_idx_load(const char *path, int as) {
  if (!path) { nnl_set_error("idx: NULL path"); return NULL; }
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) { nnl_set_error("%s: is a directory", path); return NULL; }
  src s;
  memset(&s, 0, sizeof s);
  s.name = path;
  errno = 0;
  s.gz = gzopen(path, "rb");
  if (!s.gz) {
    nnl_set_error("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    return NULL;
  }
  gzbuffer(s.gz, 1u << 17);
  nnl_idx *x = read_idx(&s, as);
  gzclose(s.gz);
  return x;
}

void nnl_idx_free(nnl_idx *x) {
  if (!x) return;
  free(x->data);
  free(x);
}

/* ---- writing ---- */

typedef struct {
  int type, ndim, gz;
  const int64_t *dims;
  const uint8_t *data;
  size_t numel;
  const char *path;
  z_stream zs;
} writer;

static int sink(writer *w, FILE *f, const uint8_t *p, size_t n, int finish) {
  if (!w->gz) { if (n) fwrite(p, 1, n, f); return 0; }
  uint8_t out[65536];
  w->zs.next_in = (Bytef *)(uintptr_t)p;
  w->zs.avail_in = (uInt)n; /* callers pass at most 64 KiB */
  int r;
  do {
    w->zs.next_out = out;
    w->zs.avail_out = sizeof out;
    r = deflate(&w->zs, finish ? Z_FINISH : Z_NO_FLUSH);
    if (r == Z_STREAM_ERROR) { nnl_set_error("%s: gzip compression failed", w->path); return -1; }
    fwrite(out, 1, sizeof out - w->zs.avail_out, f);
  } while (w->zs.avail_out == 0 || (finish && r != Z_STREAM_END));
  return 0;
}

static int write_idx(FILE *f, void *ctx) {
  writer *w = ctx;
  uint8_t buf[65536];
  size_t esz = nnl_idx_type_size(w->type), k = 4;
  buf[0] = buf[1] = 0;
  buf[2] = (uint8_t)w->type;
  buf[3] = (uint8_t)w->ndim;
  for (int i = 0; i < w->ndim; i++, k += 4)
    for (int b = 0; b < 4; b++) buf[k + b] = (uint8_t)((uint64_t)w->dims[i] >> (24 - 8 * b));
  if (sink(w, f, buf, k, 0)) return -1;
  size_t per = sizeof buf / esz;
  for (size_t i = 0; i < w->numel && !ferror(f); i += per) {
    size_t m = w->numel - i < per ? w->numel - i : per;
    const uint8_t *src = w->data + i * esz;
    for (size_t j = 0; j < m; j++) /* host order (little-endian) to big-endian */
      for (size_t b = 0; b < esz; b++) buf[j * esz + b] = src[j * esz + esz - 1 - b];
    if (sink(w, f, buf, m * esz, 0)) return -1;
  }
  return sink(w, f, NULL, 0, 1);
}

int nnl_idx_save(const char *path, int type, int ndim, const int64_t *dims, const void *data, int gz) {
  const char *name = path ? path : "idx";
  char db[200];
  size_t esz = nnl_idx_type_size(type);
  if (!esz) { nnl_set_error("%s: unknown IDX element type 0x%02x", name, type); return -1; }
  if (ndim < 0 || ndim > NNL_IO_MAXDIM || (ndim && !dims)) {
    nnl_set_error("%s: ndim %d is not in 0..%d", name, ndim, NNL_IO_MAXDIM);
    return -1;
  }
  uint64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0 || dims[i] > UINT32_MAX) {
      nnl_set_error("%s: dimension %d is %" PRId64 ", IDX needs 0..4294967295", name, i + 1, dims[i]);
      return -1;
    }
    if (dims[i] && numel > (SIZE_MAX / 8) / (uint64_t)dims[i]) {
      nnl_set_error("%s: dimensions %s are too large", name, dims_str(dims, ndim, db, sizeof db));
      return -1;
    }
    numel *= (uint64_t)dims[i];
  }
  if (numel && !data) { nnl_set_error("%s: NULL data", name); return -1; }
  writer w;
  memset(&w, 0, sizeof w);
  w.type = type;
  w.ndim = ndim;
  w.dims = dims;
  w.data = data;
  w.numel = (size_t)numel;
  w.gz = gz;
  w.path = name;
  if (gz && deflateInit2(&w.zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    nnl_set_error("%s: out of memory", name);
    return -1;
  }
  int rc = nnl_io_write_atomic(path, write_idx, &w);
  if (gz) deflateEnd(&w.zs);
  return rc;
}
