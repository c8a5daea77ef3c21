/* safetensors.c — read, validate and write safetensors files; dtype conversion; the shared
 * whole-file reader and atomic (temp file + fsync + rename) writer used by every format here. */
#define _POSIX_C_SOURCE 200809L
#include "io.h"
#include "../nnlua.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ---- files ---- */

void *nnl_io_read_file(const char *path, size_t *len) {
  if (!path) { nnl_set_error("read: NULL path"); return NULL; }
  FILE *f = fopen(path, "rb");
  if (!f) { nnl_set_error("%s: cannot open: %s", path, strerror(errno)); return NULL; }
  struct stat st;
  size_t cap = 65536;
  if (fstat(fileno(f), &st) == 0) {
    if (S_ISDIR(st.st_mode)) { fclose(f); nnl_set_error("%s: is a directory", path); return NULL; }
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX - 1)
      cap = (size_t)st.st_size + 1;
  }
  char *buf = malloc(cap);
  size_t n = 0;
  while (buf) {
    n += fread(buf + n, 1, cap - 1 - n, f);
    if (n < cap - 1) break; /* EOF or error */
    int c = fgetc(f);       /* the file may have grown since fstat */
    if (c == EOF) break;
    if (cap > SIZE_MAX / 2) { free(buf); buf = NULL; break; }
    char *nb = realloc(buf, cap * 2);
    if (!nb) { free(buf); buf = NULL; break; }
    buf = nb;
    cap *= 2;
    buf[n++] = (char)c;
  }
  if (!buf) { fclose(f); nnl_set_error("%s: out of memory reading the file", path); return NULL; }
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    free(buf);
    nnl_set_error("%s: read error: %s", path, strerror(e));
    return NULL;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd); /* durability of the rename; failure here does not undo the write */
    close(fd);
  }
  free(dir);
}

/* A writer killed mid-save (SIGKILL, OOM killer) leaves its "<path>.tmp.<pid>" behind: never
 * a partial <path>, but one stray file per kill. Before writing, remove the temporary files of
 * <path> whose writer no longer exists; those of live processes (a concurrent writer) stay. */
static void sweep_stale_temps(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  DIR *d = dir ? opendir(dir) : NULL;
  free(dir);
  if (!d) return;
  size_t blen = strlen(base);
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *name = e->d_name;
    if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5)) continue;
    const char *digits = name + blen + 5;
    if (*digits < '1' || *digits > '9') continue;
    char *end;
    long pid = strtol(digits, &end, 10);
    if (*end || pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), name, 0);
  }
  closedir(d);
}

int nnl_io_write_atomic(const char *path, nnl_io_writer fn, void *ctx) {
  if (!path || !*path) { nnl_set_error("write: empty path"); return -1; }
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (!tmp) { nnl_set_error("%s: out of memory", path); return -1; }
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  sweep_stale_temps(path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    nnl_set_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
    return -1;
  }
  int rc = fn(f, ctx);
  if (!rc && (fflush(f) != 0 || ferror(f))) {
    nnl_set_error("%s: write failed: %s", path, strerror(errno ? errno : EIO));
    rc = -1;
  }
  if (!rc && fsync(fileno(f)) != 0) {
    nnl_set_error("%s: fsync failed: %s", path, strerror(errno));
    rc = -1;
  }
  if (fclose(f) != 0 && !rc) {
    nnl_set_error("%s: write failed: %s", path, strerror(errno));
    rc = -1;
  }
  if (!rc && rename(tmp, path) != 0) {
    nnl_set_error("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    rc = -1;
  }
  if (rc) remove(tmp);
  else sync_dir(path);
  free(tmp);
  return rc;
}

/* ---- dtypes ---- */

static const struct { const char *name; size_t size; } dtypes[NNL_ST_NDTYPES] = {
  [NNL_ST_BOOL] = {"BOOL", 1}, [NNL_ST_U8] = {"U8", 1}, [NNL_ST_I8] = {"I8", 1},
  [NNL_ST_F8_E5M2] = {"F8_E5M2", 1}, [NNL_ST_F8_E4M3] = {"F8_E4M3", 1},
  [NNL_ST_I16] = {"I16", 2}, [NNL_ST_U16] = {"U16", 2}, [NNL_ST_F16] = {"F16", 2},
  [NNL_ST_BF16] = {"BF16", 2}, [NNL_ST_I32] = {"I32", 4}, [NNL_ST_U32] = {"U32", 4},
  [NNL_ST_F32] = {"F32", 4}, [NNL_ST_F64] = {"F64", 8}, [NNL_ST_I64] = {"I64", 8},
  [NNL_ST_U64] = {"U64", 8},
};

const char *nnl_st_dtype_name(int dt) { return dt >= 0 && dt < NNL_ST_NDTYPES ? dtypes[dt].name : "?"; }
size_t nnl_st_dtype_size(int dt) { return dt >= 0 && dt < NNL_ST_NDTYPES ? dtypes[dt].size : 0; }

int nnl_st_dtype_from_name(const char *s) {
  for (int i = 0; s && i < NNL_ST_NDTYPES; i++)
    if (!strcmp(s, dtypes[i].name)) return i;
  return -1;
}

/* ---- message helpers ---- */

/* A name as it should appear in a message: at most 60 bytes, control characters shown as '?'. */
static const char *shown(const char *s, char *buf, size_t n) {
  size_t i = 0, len = strlen(s);
  for (; i < len && i + 4 < n && i < 60; i++) buf[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
  if (i < len) { memcpy(buf + i, "...", 3); i += 3; }
  buf[i] = 0;
  return buf;
}

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%" PRId64 : "%" PRId64, shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* numel * itemsize, or -1 on overflow of size_t. */
static int entry_bytes(const int64_t *shape, int ndim, int dt, uint64_t *nbytes) {
  uint64_t total = dtypes[dt].size;
  for (int i = 0; i < ndim; i++) {
    uint64_t d = (uint64_t)shape[i];
    if (d && total > SIZE_MAX / d) return -1;
    total *= d;
  }
  *nbytes = total;
  return 0;
}

/* ---- reading ---- */

typedef struct {
  void *owned;       /* copy of the file bytes, or NULL when borrowing the caller's buffer */
  nnl_json_doc *doc; /* names and metadata strings live in its arena */
} st_priv;

typedef struct {
  uint64_t begin, end;
  size_t idx; /* position in the header, to keep the sort stable */
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void nnl_st_free(nnl_safetensors *st) {
  if (!st) return;
  st_priv *pv = st->priv_;
  if (pv) {
    nnl_json_free(pv->doc);
    free(pv->owned);
    free(pv);
  }
  free(st->entries);
  free(st->meta);
  free(st);
}

static int get_u64(const nnl_json *v, uint64_t *out) {
  if (!v || v->type != NNL_JSON_NUMBER || !v->is_int || v->i < 0) return -1;
  *out = (uint64_t)v->i;
  return 0;
}

/* One tensor's header entry: dtype, shape, data_offsets and their agreement. */
static int parse_info(const char *file, const nnl_json *m, nnl_st_entry *e, span *sp, size_t dlen) {
  char nb[72], sb[200];
  const char *tn = shown(m->key, nb, sizeof nb);
  e->name = m->key;
  if (m->type != NNL_JSON_OBJECT) {
    nnl_set_error("%s: tensor '%s': expected an object with dtype, shape and data_offsets, got %s",
                  file, tn, nnl_json_type_name(m->type));
    return -1;
  }
  const nnl_json *dt = nnl_json_get(m, "dtype"), *sh = nnl_json_get(m, "shape"),
                 *off = nnl_json_get(m, "data_offsets");
  if (!dt || !sh || !off) {
    nnl_set_error("%s: tensor '%s': missing \"%s\"", file, tn,
                  !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    return -1;
  }
  if (dt->type != NNL_JSON_STRING) {
    nnl_set_error("%s: tensor '%s': \"dtype\" must be a string", file, tn);
    return -1;
  }
  e->dtype = nnl_st_dtype_from_name(dt->str);
  if (e->dtype < 0) {
    nnl_set_error("%s: tensor '%s': unknown dtype \"%s\"", file, tn, shown(dt->str, sb, sizeof sb));
    return -1;
  }
  if (sh->type != NNL_JSON_ARRAY) {
    nnl_set_error("%s: tensor '%s': \"shape\" must be an array", file, tn);
    return -1;
  }
  if (sh->len > NNL_IO_MAXDIM) {
    nnl_set_error("%s: tensor '%s': shape has %zu dimensions (at most %d supported)", file, tn, sh->len,
                  NNL_IO_MAXDIM);
    return -1;
  }
  e->ndim = (int)sh->len;
  for (int i = 0; i < e->ndim; i++) {
    const nnl_json *d = &sh->items[i];
    if (d->type != NNL_JSON_NUMBER || !d->is_int || d->i < 0) {
      nnl_set_error("%s: tensor '%s': shape dimension %d is not a non-negative integer", file, tn, i + 1);
      return -1;
    }
    e->shape[i] = d->i;
  }
  uint64_t want;
  if (entry_bytes(e->shape, e->ndim, e->dtype, &want)) {
    nnl_set_error("%s: tensor '%s': shape %s of %s is too large (byte size overflows)", file, tn,
                  shape_str(e->shape, e->ndim, sb, sizeof sb), dtypes[e->dtype].name);
    return -1;
  }
  if (off->type != NNL_JSON_ARRAY || off->len != 2 || get_u64(&off->items[0], &sp->begin) ||
      get_u64(&off->items[1], &sp->end) || sp->begin > sp->end) {
    nnl_set_error("%s: tensor '%s': \"data_offsets\" must be [begin, end] with 0 <= begin <= end", file, tn);
    return -1;
  }
  if (sp->end - sp->begin != want) {
    nnl_set_error("%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] do not match shape %s of %s"
                  " (%" PRIu64 " bytes)",
                  file, tn, sp->begin, sp->end, shape_str(e->shape, e->ndim, sb, sizeof sb),
                  dtypes[e->dtype].name, want);
    return -1;
  }
  if (sp->end > dlen) {
    nnl_set_error("%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] are outside the data buffer"
                  " (%zu bytes; truncated file?)",
                  file, tn, sp->begin, sp->end, dlen);
    return -1;
  }
  e->nbytes = (size_t)want;
  return 0;
}

static int parse_metadata(const char *file, const nnl_json *m, nnl_safetensors *st) {
  char kb[72];
  if (m->type != NNL_JSON_OBJECT) {
    nnl_set_error("%s: \"__metadata__\" must be an object of strings", file);
    return -1;
  }
  st->meta = calloc(m->len ? m->len : 1, sizeof *st->meta);
  if (!st->meta) { nnl_set_error("%s: out of memory", file); return -1; }
  for (size_t i = 0; i < m->len; i++) {
    const nnl_json *v = &m->items[i];
    if (v->type != NNL_JSON_STRING || strlen(v->str) != v->len) {
      nnl_set_error("%s: \"__metadata__\" value of '%s' must be a string without NUL bytes, got %s", file,
                    shown(v->key, kb, sizeof kb), nnl_json_type_name(v->type));
      return -1;
    }
    st->meta[i].key = v->key;
    st->meta[i].value = v->str;
  }
  st->nmeta = m->len;
  return 0;
}

/* Sorted by begin, the spans must tile [0, dlen) exactly (empty tensors may sit anywhere on it). */
static int check_coverage(const char *file, nnl_safetensors *st, span *sp, size_t n, size_t dlen) {
  char a[72], b[72];
  qsort(sp, n, sizeof *sp, span_cmp);
  uint64_t at = 0;
  const span *prev = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *tn = shown(st->entries[sp[i].idx].name, a, sizeof a);
    if (sp[i].begin > at) {
      nnl_set_error("%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] leave a gap: bytes"
                    " [%" PRIu64 ",%" PRIu64 ") belong to no tensor",
                    file, tn, sp[i].begin, sp[i].end, at, sp[i].begin);
      return -1;
    }
    if (sp[i].begin < at) {
      nnl_set_error("%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] overlap tensor '%s'"
                    " [%" PRIu64 ",%" PRIu64 "]",
                    file, tn, sp[i].begin, sp[i].end, shown(st->entries[prev->idx].name, b, sizeof b),
                    prev->begin, prev->end);
      return -1;
    }
    if (sp[i].end > sp[i].begin) prev = &sp[i];
    at = sp[i].end;
  }
  if (at != dlen) {
    nnl_set_error("%s: %" PRIu64 " bytes at the end of the data buffer belong to no tensor", file,
                  (uint64_t)dlen - at);
    return -1;
  }
  return 0;
}

nnl_safetensors *nnl_st_parse(const void *buf, size_t len, const char *name, int copy) {
  const char *file = name ? name : "<memory>";
  if (!buf && len) { nnl_set_error("%s: NULL buffer", file); return NULL; }
  if (len < 8) {
    nnl_set_error("%s: file too short (%zu bytes) to hold the 8-byte header length:"
                  " truncated or not safetensors",
                  file, len);
    return NULL;
  }
  const uint8_t *b = buf;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
  if (hlen > NNL_ST_MAX_HEADER) {
    nnl_set_error("%s: header length %" PRIu64 " is over the %u-byte limit: corrupt or not safetensors", file,
                  hlen, NNL_ST_MAX_HEADER);
    return NULL;
  }
  if (hlen > len - 8) {
    nnl_set_error("%s: header length %" PRIu64 " is larger than the %zu bytes that follow it:"
                  " truncated or not safetensors",
                  file, hlen, len - 8);
    return NULL;
  }
  nnl_safetensors *st = calloc(1, sizeof *st);
  st_priv *pv = calloc(1, sizeof *pv);
  span *sp = NULL;
  if (!st || !pv) goto oom;
  st->priv_ = pv;
  if (copy) {
    pv->owned = malloc(len);
    if (!pv->owned) goto oom;
    memcpy(pv->owned, buf, len);
    b = pv->owned;
  }
  pv->doc = nnl_json_parse((const char *)b + 8, (size_t)hlen, 16);
  if (!pv->doc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nnl_last_error());
    nnl_set_error("%s: header is not valid JSON: %s", file, msg);
    goto fail;
  }
  const nnl_json *root = nnl_json_root(pv->doc);
  if (root->type != NNL_JSON_OBJECT) {
    nnl_set_error("%s: header must be a JSON object, got %s", file, nnl_json_type_name(root->type));
    goto fail;
  }
  const uint8_t *data = b + 8 + hlen;
  size_t dlen = len - 8 - (size_t)hlen;
  st->entries = calloc(root->len ? root->len : 1, sizeof *st->entries);
  sp = calloc(root->len ? root->len : 1, sizeof *sp);
  if (!st->entries || !sp) goto oom;
  size_t n = 0;
  for (size_t i = 0; i < root->len; i++) {
    const nnl_json *m = &root->items[i];
    if (!strcmp(m->key, "__metadata__")) {
      if (parse_metadata(file, m, st)) goto fail;
      continue;
    }
    if (parse_info(file, m, &st->entries[n], &sp[n], dlen)) goto fail;
    sp[n].idx = n;
    n++;
  }
  if (check_coverage(file, st, sp, n, dlen)) goto fail;
  /* entries in the order of their bytes */
  nnl_st_entry *sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (!sorted) goto oom;
  for (size_t i = 0; i < n; i++) {
    sorted[i] = st->entries[sp[i].idx];
    sorted[i].data = data + sp[i].begin;
  }
  free(st->entries);
  st->entries = sorted;
  st->n = n;
  free(sp);
  return st;
oom:
  nnl_set_error("%s: out of memory", file);
fail:
  free(sp);
  nnl_st_free(st);
  if (!st) free(pv);
  return NULL;
}

nnl_safetensors *nnl_st_load(const char *path) {
  size_t len;
  void *bytes = nnl_io_read_file(path, &len);
  if (!bytes) return NULL;
  nnl_safetensors *st = nnl_st_parse(bytes, len, path, 0);
  if (!st) { free(bytes); return NULL; }
  ((st_priv *)st->priv_)->owned = bytes;
  return st;
}

const nnl_st_entry *nnl_st_find(const nnl_safetensors *st, const char *name) {
  for (size_t i = 0; st && name && i < st->n; i++)
    if (!strcmp(st->entries[i].name, name)) return &st->entries[i];
  return NULL;
}

const char *nnl_st_meta_get(const nnl_safetensors *st, const char *key) {
  for (size_t i = 0; st && key && i < st->nmeta; i++)
    if (!strcmp(st->meta[i].key, key)) return st->meta[i].value;
  return NULL;
}

/* ---- writing ---- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *s, const char *t, size_t n) {
  if (s->oom) return;
  if (s->n + n + 1 > s->cap) {
    size_t c = s->cap ? s->cap : 256;
    while (c < s->n + n + 1) c *= 2;
    char *np = realloc(s->p, c);
    if (!np) { s->oom = 1; return; }
    s->p = np;
    s->cap = c;
  }
  memcpy(s->p + s->n, t, n);
  s->n += n;
  s->p[s->n] = 0;
}
static void sb_str(sbuf *s, const char *t) { sb_add(s, t, strlen(t)); }

static int sb_quoted(sbuf *s, const char *file, const char *what, const char *t) {
  char *q = nnl_json_quote(t, strlen(t), NULL);
  if (!q) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", nnl_last_error());
    nnl_set_error("%s: %s: %s", file, what, msg);
    return -1;
  }
  sb_str(s, q);
  free(q);
  return 0;
}

/* Tensors by descending alignment then name, as the reference lays them out. */
static int order_cmp(const void *a, const void *b) {
  const nnl_st_entry *x = *(const nnl_st_entry *const *)a, *y = *(const nnl_st_entry *const *)b;
  if (x->dtype != y->dtype) return y->dtype - x->dtype;
  return strcmp(x->name, y->name);
}
static int name_cmp(const void *a, const void *b) {
  return strcmp((*(const nnl_st_entry *const *)a)->name, (*(const nnl_st_entry *const *)b)->name);
}
static int kv_cmp(const void *a, const void *b) {
  return strcmp((*(const nnl_st_kv *const *)a)->key, (*(const nnl_st_kv *const *)b)->key);
}

typedef struct {
  const nnl_st_entry **order;
  char *header; /* padded to a multiple of 8 */
  size_t hlen;
  uint64_t dlen;
} plan;

static int plan_make(plan *pl, const char *file, const nnl_st_entry *e, size_t n, const nnl_st_kv *meta,
                     size_t nmeta) {
  char nb[72], sb[200];
  memset(pl, 0, sizeof *pl);
  if ((n && !e) || (nmeta && !meta)) { nnl_set_error("%s: NULL entries or metadata", file); return -1; }
  const nnl_st_kv **kv = NULL;
  sbuf h = {0};
  pl->order = malloc((n ? n : 1) * sizeof *pl->order);
  kv = malloc((nmeta ? nmeta : 1) * sizeof *kv);
  if (!pl->order || !kv) goto oom;
  for (size_t i = 0; i < n; i++) {
    const nnl_st_entry *t = &e[i];
    if (!t->name) { nnl_set_error("%s: tensor %zu has no name", file, i + 1); goto fail; }
    const char *tn = shown(t->name, nb, sizeof nb);
    uint64_t want;
    if (!strcmp(t->name, "__metadata__")) {
      nnl_set_error("%s: tensor name \"__metadata__\" is reserved", file);
      goto fail;
    }
    if (t->dtype < 0 || t->dtype >= NNL_ST_NDTYPES) {
      nnl_set_error("%s: tensor '%s': unknown dtype code %d", file, tn, t->dtype);
      goto fail;
    }
    if (t->ndim < 0 || t->ndim > NNL_IO_MAXDIM) {
      nnl_set_error("%s: tensor '%s': ndim %d is not in 0..%d", file, tn, t->ndim, NNL_IO_MAXDIM);
      goto fail;
    }
    for (int d = 0; d < t->ndim; d++)
      if (t->shape[d] < 0) {
        nnl_set_error("%s: tensor '%s': negative size in shape %s", file, tn,
                      shape_str(t->shape, t->ndim, sb, sizeof sb));
        goto fail;
      }
    if (entry_bytes(t->shape, t->ndim, t->dtype, &want)) {
      nnl_set_error("%s: tensor '%s': shape %s is too large", file, tn,
                    shape_str(t->shape, t->ndim, sb, sizeof sb));
      goto fail;
    }
    if (t->nbytes != want) {
      nnl_set_error("%s: tensor '%s': %zu bytes of data do not match shape %s of %s (%" PRIu64 " bytes)",
                    file, tn, t->nbytes, shape_str(t->shape, t->ndim, sb, sizeof sb), dtypes[t->dtype].name,
                    want);
      goto fail;
    }
    if (want && !t->data) { nnl_set_error("%s: tensor '%s': NULL data", file, tn); goto fail; }
    if (pl->dlen > UINT64_MAX - want) { nnl_set_error("%s: total size overflows", file); goto fail; }
    pl->dlen += want;
    pl->order[i] = t;
  }
  qsort(pl->order, n, sizeof *pl->order, name_cmp);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(pl->order[i - 1]->name, pl->order[i]->name)) {
      nnl_set_error("%s: tensor name '%s' appears twice", file, shown(pl->order[i]->name, nb, sizeof nb));
      goto fail;
    }
  qsort(pl->order, n, sizeof *pl->order, order_cmp);
  for (size_t i = 0; i < nmeta; i++) {
    if (!meta[i].key || !meta[i].value) {
      nnl_set_error("%s: metadata entry %zu has a NULL key or value", file, i + 1);
      goto fail;
    }
    kv[i] = &meta[i];
  }
  qsort(kv, nmeta, sizeof *kv, kv_cmp);
  for (size_t i = 1; i < nmeta; i++)
    if (!strcmp(kv[i - 1]->key, kv[i]->key)) {
      nnl_set_error("%s: metadata key '%s' appears twice", file, shown(kv[i]->key, nb, sizeof nb));
      goto fail;
    }
  sb_str(&h, "{");
  if (nmeta) {
    sb_str(&h, "\"__metadata__\":{");
    for (size_t i = 0; i < nmeta; i++) {
      if (i) sb_str(&h, ",");
      if (sb_quoted(&h, file, "metadata key", kv[i]->key)) goto fail;
      sb_str(&h, ":");
      if (sb_quoted(&h, file, "metadata value", kv[i]->value)) goto fail;
    }
    sb_str(&h, "}");
  }
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const nnl_st_entry *t = pl->order[i];
    char num[64];
    if (i || nmeta) sb_str(&h, ",");
    if (sb_quoted(&h, file, "tensor name", t->name)) goto fail;
    sb_str(&h, ":{\"dtype\":\"");
    sb_str(&h, dtypes[t->dtype].name);
    sb_str(&h, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
      sb_str(&h, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + t->nbytes);
    sb_str(&h, num);
    off += t->nbytes;
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8) sb_str(&h, " ");
  if (h.oom) goto oom;
  pl->header = h.p;
  pl->hlen = h.n;
  free(kv);
  return 0;
oom:
  nnl_set_error("%s: out of memory", file);
fail:
  free(h.p);
  free(kv);
  free(pl->order);
  pl->order = NULL;
  return -1;
}

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void *nnl_st_serialize(const nnl_st_entry *e, size_t n, const nnl_st_kv *meta, size_t nmeta, size_t *len) {
  plan pl;
  if (plan_make(&pl, "safetensors", e, n, meta, nmeta)) return NULL;
  uint8_t *out = NULL;
  if (pl.dlen <= SIZE_MAX - 8 - pl.hlen) out = malloc(8 + pl.hlen + (size_t)pl.dlen);
  if (!out) {
    nnl_set_error("safetensors: out of memory (%" PRIu64 " bytes)", 8 + pl.hlen + pl.dlen);
  } else {
    put_le64(out, pl.hlen);
    memcpy(out + 8, pl.header, pl.hlen);
    size_t at = 8 + pl.hlen;
    for (size_t i = 0; i < n; i++) {
      if (pl.order[i]->nbytes) memcpy(out + at, pl.order[i]->data, pl.order[i]->nbytes);
      at += pl.order[i]->nbytes;
    }
    *len = at;
  }
  free(pl.header);
  free(pl.order);
  return out;
}

typedef struct {
  const plan *pl;
  size_t n;
} save_ctx;

static int save_write(FILE *f, void *ctx) {
  const save_ctx *c = ctx;
  uint8_t le[8];
  put_le64(le, c->pl->hlen);
  fwrite(le, 1, 8, f);
  fwrite(c->pl->header, 1, c->pl->hlen, f);
  for (size_t i = 0; i < c->n && !ferror(f); i++)
    if (c->pl->order[i]->nbytes) fwrite(c->pl->order[i]->data, 1, c->pl->order[i]->nbytes, f);
  return 0; /* the atomic writer checks ferror() */
}

int nnl_st_save(const char *path, const nnl_st_entry *e, size_t n, const nnl_st_kv *meta, size_t nmeta) {
  plan pl;
  if (plan_make(&pl, path ? path : "safetensors", e, n, meta, nmeta)) return -1;
  save_ctx c = {&pl, n};
  int rc = nnl_io_write_atomic(path, save_write, &c);
  free(pl.header);
  free(pl.order);
  return rc;
}

/* ---- conversion ---- */

float nnl_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0 && man == 0) bits = sign;
  else if (exp == 0) { /* subnormal: renormalise */
    exp = 113;
    while (!(man & 0x400)) { man <<= 1; exp--; }
    bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
  } else if (exp == 31) bits = sign | 0x7f800000 | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

float nnl_bf16_to_f32(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t nnl_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff); /* NaN stays NaN */
  if (ax >= 0x477ff000) return sign | 0x7c00;                                /* >= 65520: inf */
  if (ax >= 0x38800000) {                                                   /* normal half */
    ax -= 112u << 23;
    ax += 0xfff + ((ax >> 13) & 1);
    return sign | (uint16_t)(ax >> 13);
  }
  uint32_t e = ax >> 23;
  if (e < 102) return sign; /* below half the smallest subnormal */
  uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e, r = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) r++;
  return sign | (uint16_t)r;
}

uint16_t nnl_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static float e4m3_to_f32(uint8_t b) {
  float s = (b & 0x80) ? -1.0f : 1.0f;
  unsigned exp = (b >> 3) & 0xf, man = b & 7;
  if (exp == 15 && man == 7) return s * NAN;
  if (exp == 0) return s * (float)man * 0x1p-9f;
  uint32_t bits = ((uint32_t)(b & 0x80) << 24) | ((exp + 120) << 23) | (man << 20);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Element loads from buffers that need not be aligned. */
static inline uint16_t ld16(const uint8_t *p, size_t i) { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
static inline uint32_t ld32(const uint8_t *p, size_t i) { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
static inline uint64_t ld64(const uint8_t *p, size_t i) { uint64_t v; memcpy(&v, p + 8 * i, 8); return v; }
static inline double ldf64(const uint8_t *p, size_t i) { double v; memcpy(&v, p + 8 * i, 8); return v; }

int nnl_st_to_f32(float *dst, const void *src, int dt, size_t n) {
  if (n && (!dst || !src)) { nnl_set_error("safetensors: NULL buffer in conversion"); return -1; }
  const uint8_t *s = src;
  switch (dt) {
  case NNL_ST_F32: if (n) memcpy(dst, src, n * 4); break;
  case NNL_ST_F16: for (size_t i = 0; i < n; i++) dst[i] = nnl_f16_to_f32(ld16(s, i)); break;
  case NNL_ST_BF16: for (size_t i = 0; i < n; i++) dst[i] = nnl_bf16_to_f32(ld16(s, i)); break;
  case NNL_ST_F64: for (size_t i = 0; i < n; i++) dst[i] = (float)ldf64(s, i); break;
  case NNL_ST_F8_E5M2: for (size_t i = 0; i < n; i++) dst[i] = nnl_f16_to_f32((uint16_t)(s[i] << 8)); break;
  case NNL_ST_F8_E4M3: for (size_t i = 0; i < n; i++) dst[i] = e4m3_to_f32(s[i]); break;
  case NNL_ST_BOOL: for (size_t i = 0; i < n; i++) dst[i] = s[i] ? 1.0f : 0.0f; break;
  case NNL_ST_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)s[i]; break;
  case NNL_ST_I8: for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)s[i]; break;
  case NNL_ST_I16: for (size_t i = 0; i < n; i++) dst[i] = (float)(int16_t)ld16(s, i); break;
  case NNL_ST_U16: for (size_t i = 0; i < n; i++) dst[i] = (float)ld16(s, i); break;
  case NNL_ST_I32: for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)ld32(s, i); break;
  case NNL_ST_U32: for (size_t i = 0; i < n; i++) dst[i] = (float)ld32(s, i); break;
  case NNL_ST_I64: for (size_t i = 0; i < n; i++) dst[i] = (float)(int64_t)ld64(s, i); break;
  case NNL_ST_U64: for (size_t i = 0; i < n; i++) dst[i] = (float)ld64(s, i); break;
  default: nnl_set_error("safetensors: unknown dtype code %d", dt); return -1;
  }
  return 0;
}

int nnl_st_to_i64(int64_t *dst, const void *src, int dt, size_t n) {
  if (n && (!dst || !src)) { nnl_set_error("safetensors: NULL buffer in conversion"); return -1; }
  const uint8_t *s = src;
  switch (dt) {
  case NNL_ST_I64: if (n) memcpy(dst, src, n * 8); break;
  case NNL_ST_BOOL: for (size_t i = 0; i < n; i++) dst[i] = s[i] != 0; break;
  case NNL_ST_U8: for (size_t i = 0; i < n; i++) dst[i] = s[i]; break;
  case NNL_ST_I8: for (size_t i = 0; i < n; i++) dst[i] = (int8_t)s[i]; break;
  case NNL_ST_I16: for (size_t i = 0; i < n; i++) dst[i] = (int16_t)ld16(s, i); break;
  case NNL_ST_U16: for (size_t i = 0; i < n; i++) dst[i] = ld16(s, i); break;
  case NNL_ST_I32: for (size_t i = 0; i < n; i++) dst[i] = (int32_t)ld32(s, i); break;
  case NNL_ST_U32: for (size_t i = 0; i < n; i++) dst[i] = ld32(s, i); break;
  case NNL_ST_U64:
    for (size_t i = 0; i < n; i++) {
      uint64_t v = ld64(s, i);
      if (v > INT64_MAX) {
        nnl_set_error("safetensors: U64 value %" PRIu64 " at element %zu does not fit in int64", v, i);
        return -1;
      }
      dst[i] = (int64_t)v;
    }
    break;
  default:
    nnl_set_error("safetensors: cannot convert %s to int64 (not an integer dtype)", nnl_st_dtype_name(dt));
    return -1;
  }
  return 0;
}
