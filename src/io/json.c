/* json.c — a small strict JSON parser (RFC 8259) for safetensors headers, captions and vocabularies.
 * Recursive descent with a depth limit; nodes and strings live in one arena freed at once. */
#include "io.h"
#include "../nnlua.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
  struct block *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} block;

struct nnl_json_doc {
  block *blocks;
  nnl_json root;
};

typedef struct {
  const char *s, *p, *end;
  int depth, max_depth;
  nnl_json_doc *doc;
  nnl_json *stack; /* values of the arrays and objects still open */
  size_t sn, scap;
  char *buf;       /* the string being decoded */
  size_t bn, bcap;
  int failed;
} parser;

static void fail(parser *P, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *P, const char *at, const char *fmt, ...) {
  if (P->failed) return;
  P->failed = 1;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!at) { nnl_set_error("%s", msg); return; }
  long line = 1;
  const char *bol = P->s;
  for (const char *q = P->s; q < at; q++)
    if (*q == '\n') { line++; bol = q + 1; }
  nnl_set_error("line %ld, column %ld: %s", line, (long)(at - bol) + 1, msg);
}

static void *arena_alloc(parser *P, size_t n) {
  n = (n + 15) & ~(size_t)15;
  block *b = P->doc->blocks;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    b = malloc(sizeof(block) + cap);
    if (!b) { fail(P, NULL, "out of memory"); return NULL; }
    b->cap = cap;
    b->used = 0;
    b->next = P->doc->blocks;
    P->doc->blocks = b;
  }
  void *r = b->data + b->used;
  b->used += n;
  return r;
}

static int grow(parser *P, void **ptr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *np = realloc(*ptr, c * elem);
  if (!np) { fail(P, NULL, "out of memory"); return -1; }
  *ptr = np;
  *cap = c;
  return 0;
}

static void skip_ws(parser *P) {
  while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r')) P->p++;
}

static void fail_char(parser *P, const char *what) {
  if (P->p >= P->end) { fail(P, P->p, "unexpected end of input, expected %s", what); return; }
  unsigned char c = (unsigned char)*P->p;
  if (c >= 0x20 && c < 0x7f) fail(P, P->p, "unexpected '%c', expected %s", c, what);
  else fail(P, P->p, "unexpected byte 0x%02x, expected %s", c, what);
}

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is invalid: overlong forms, surrogates
 * and code points above U+10FFFF are rejected. */
static int utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n;
  unsigned cp, min;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (end - p < n) return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

static int put(parser *P, const void *src, size_t n) {
  if (grow(P, (void **)&P->buf, &P->bcap, P->bn + n + 1, 1)) return -1;
  memcpy(P->buf + P->bn, src, n);
  P->bn += n;
  return 0;
}

static int hex4(const char *p, const char *end, unsigned *out) {
  if (end - p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static int put_codepoint(parser *P, unsigned cp) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (unsigned char)cp; n = 1; }
  else if (cp < 0x800) {
    u[0] = (unsigned char)(0xC0 | (cp >> 6));
    u[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  }
  else if (cp < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (cp >> 12)); u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (unsigned char)(0xF0 | (cp >> 18)); u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return put(P, u, n);
}

/* P->p is at the opening quote. The decoded string is copied into the arena. */
static int parse_string(parser *P, const char **out, size_t *outlen) {
  const char *start = P->p++;
  P->bn = 0;
  for (;;) {
    if (P->p >= P->end) { fail(P, start, "unterminated string"); return -1; }
    unsigned char c = (unsigned char)*P->p;
    if (c == '"') { P->p++; break; }
    if (c < 0x20) { fail(P, P->p, "control character 0x%02x in string (must be escaped)", c); return -1; }
    if (c == '\\') {
      const char *esc = P->p;
      if (P->end - P->p < 2) { fail(P, start, "unterminated string"); return -1; }
      char e = P->p[1];
      P->p += 2;
      char simple = 0;
      switch (e) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (hex4(P->p, P->end, &cp)) { fail(P, esc, "bad \\u escape (need 4 hex digits)"); return -1; }
        P->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) { fail(P, esc, "unpaired surrogate \\u%04X", cp); return -1; }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (P->end - P->p < 6 || P->p[0] != '\\' || P->p[1] != 'u' || hex4(P->p + 2, P->end, &lo) ||
              lo < 0xDC00 || lo > 0xDFFF) {
            fail(P, esc, "unpaired surrogate \\u%04X", cp);
            return -1;
          }
          P->p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (put_codepoint(P, cp)) return -1;
        continue;
      }
      default:
        if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f) fail(P, esc, "bad escape '\\%c'", e);
        else fail(P, esc, "bad escape (byte 0x%02x)", (unsigned char)e);
        return -1;
      }
      if (put(P, &simple, 1)) return -1;
      continue;
    }
    /* a run of plain bytes */
    const char *run = P->p;
    while (P->p < P->end) {
      unsigned char d = (unsigned char)*P->p;
      if (d == '"' || d == '\\' || d < 0x20) break;
      if (d < 0x80) { P->p++; continue; }
      int n = utf8_seq((const unsigned char *)P->p, (const unsigned char *)P->end);
      if (!n) { fail(P, P->p, "invalid UTF-8 in string"); return -1; }
      P->p += n;
    }
    if (put(P, run, (size_t)(P->p - run))) return -1;
  }
  char *s = arena_alloc(P, P->bn + 1);
  if (!s) return -1;
  if (P->bn) memcpy(s, P->buf, P->bn);
  s[P->bn] = 0;
  *out = s;
  *outlen = P->bn;
  return 0;
}

static int parse_number(parser *P, nnl_json *v) {
  const char *start = P->p, *q = P->p, *end = P->end;
  int neg = 0, plain = 1, overflow = 0;
  uint64_t mag = 0;
  if (q < end && *q == '-') { neg = 1; q++; }
  if (q >= end || *q < '0' || *q > '9') { P->p = q; fail_char(P, "a digit"); return -1; }
  if (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9') {
    fail(P, q, "leading zero in number");
    return -1;
  }
  while (q < end && *q >= '0' && *q <= '9') {
    unsigned d = (unsigned)(*q++ - '0');
    if (mag > (UINT64_MAX - d) / 10) overflow = 1;
    else mag = mag * 10 + d;
  }
  if (q < end && *q == '.') {
    plain = 0;
    q++;
    if (q >= end || *q < '0' || *q > '9') { P->p = q; fail_char(P, "a digit after '.'"); return -1; }
    while (q < end && *q >= '0' && *q <= '9') q++;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    plain = 0;
    q++;
    if (q < end && (*q == '+' || *q == '-')) q++;
    if (q >= end || *q < '0' || *q > '9') { P->p = q; fail_char(P, "a digit in the exponent"); return -1; }
    while (q < end && *q >= '0' && *q <= '9') q++;
  }
  size_t n = (size_t)(q - start);
  char small[64], *tmp = n < sizeof small ? small : malloc(n + 1);
  if (!tmp) { fail(P, NULL, "out of memory"); return -1; }
  memcpy(tmp, start, n);
  tmp[n] = 0;
  /* strtod follows LC_NUMERIC; JSON always uses '.' */
  const char *dp = localeconv()->decimal_point;
  if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
    char *dot = strchr(tmp, '.');
    if (dot) *dot = dp[0];
  }
  v->num = strtod(tmp, NULL);
  if (tmp != small) free(tmp);
  if (!isfinite(v->num)) { fail(P, start, "number out of range"); return -1; }
  v->type = NNL_JSON_NUMBER;
  if (plain && !overflow && (neg ? mag <= (uint64_t)1 << 63 : mag <= (uint64_t)INT64_MAX)) {
    v->is_int = 1;
    v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
  }
  P->p = q;
  return 0;
}

static int parse_value(parser *P, nnl_json *v);

static int keycmp(const void *a, const void *b) {
  const nnl_json *x = *(const nnl_json *const *)a, *y = *(const nnl_json *const *)b;
  size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

/* Objects and arrays collect their values on P->stack and move them to the arena when closed. */
static int parse_container(parser *P, nnl_json *v, int is_object) {
  const char *open = P->p;
  char close = is_object ? '}' : ']';
  if (++P->depth > P->max_depth) { fail(P, open, "nesting deeper than %d levels", P->max_depth); return -1; }
  P->p++;
  size_t base = P->sn;
  skip_ws(P);
  if (P->p < P->end && *P->p == close) {
    P->p++;
  } else {
    for (;;) {
      nnl_json item;
      memset(&item, 0, sizeof item);
      skip_ws(P);
      if (is_object) {
        const char *kpos = P->p;
        if (P->p >= P->end || *P->p != '"') { fail_char(P, "a string key"); return -1; }
        if (parse_string(P, &item.key, &item.keylen)) return -1;
        if (strlen(item.key) != item.keylen) { fail(P, kpos, "object key contains \\u0000"); return -1; }
        skip_ws(P);
        if (P->p >= P->end || *P->p != ':') { fail_char(P, "':' after the key"); return -1; }
        P->p++;
      }
      const char *k = item.key;
      size_t kl = item.keylen;
      if (parse_value(P, &item)) return -1;
      item.key = k;
      item.keylen = kl;
      if (grow(P, (void **)&P->stack, &P->scap, P->sn + 1, sizeof(nnl_json))) return -1;
      P->stack[P->sn++] = item;
      skip_ws(P);
      if (P->p < P->end && *P->p == ',') { P->p++; continue; }
      if (P->p < P->end && *P->p == close) { P->p++; break; }
      fail_char(P, is_object ? "',' or '}'" : "',' or ']'");
      return -1;
    }
  }
  size_t n = P->sn - base;
  v->type = is_object ? NNL_JSON_OBJECT : NNL_JSON_ARRAY;
  v->len = n;
  v->items = NULL;
  if (n) {
    if (n > SIZE_MAX / sizeof(nnl_json)) { fail(P, NULL, "out of memory"); return -1; }
    v->items = arena_alloc(P, n * sizeof(nnl_json));
    if (!v->items) return -1;
    memcpy(v->items, P->stack + base, n * sizeof(nnl_json));
  }
  P->sn = base;
  if (is_object && n > 1) {
    const nnl_json **idx = malloc(n * sizeof *idx);
    if (!idx) { fail(P, NULL, "out of memory"); return -1; }
    for (size_t i = 0; i < n; i++) idx[i] = &v->items[i];
    qsort(idx, n, sizeof *idx, keycmp);
    for (size_t i = 1; i < n; i++)
      if (!keycmp(&idx[i - 1], &idx[i])) {
        const char *key = idx[i]->key;
        free(idx);
        fail(P, open, "duplicate key \"%.80s\" in object", key);
        return -1;
      }
    free(idx);
  }
  P->depth--;
  return 0;
}

static int literal(parser *P, const char *word, nnl_json_type t, nnl_json *v) {
  size_t n = strlen(word);
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n)) {
    fail(P, P->p, "invalid literal (expected %s)", word);
    return -1;
  }
  P->p += n;
  v->type = t;
  return 0;
}

static int parse_value(parser *P, nnl_json *v) {
  memset(v, 0, sizeof *v);
  skip_ws(P);
  if (P->p >= P->end) { fail_char(P, "a value"); return -1; }
  switch (*P->p) {
  case '{': return parse_container(P, v, 1);
  case '[': return parse_container(P, v, 0);
  case '"':
    v->type = NNL_JSON_STRING;
    return parse_string(P, &v->str, &v->len);
  case 't': return literal(P, "true", NNL_JSON_TRUE, v);
  case 'f': return literal(P, "false", NNL_JSON_FALSE, v);
  case 'n': return literal(P, "null", NNL_JSON_NULL, v);
  default:
    if (*P->p == '-' || (*P->p >= '0' && *P->p <= '9')) return parse_number(P, v);
    fail_char(P, "a value");
    return -1;
  }
}

nnl_json_doc *nnl_json_parse(const char *text, size_t len, int max_depth) {
  if (!text && len) { nnl_set_error("json: NULL text"); return NULL; }
  nnl_json_doc *doc = calloc(1, sizeof *doc);
  if (!doc) { nnl_set_error("out of memory"); return NULL; }
  parser P;
  memset(&P, 0, sizeof P);
  P.s = P.p = text ? text : "";
  P.end = P.s + len;
  /* recursion uses the C stack: keep it bounded whatever the caller asks */
  P.max_depth = max_depth <= 0 ? NNL_JSON_DEFAULT_DEPTH : max_depth > 1024 ? 1024 : max_depth;
  P.doc = doc;
  int rc = parse_value(&P, &doc->root);
  if (!rc) {
    skip_ws(&P);
    if (P.p < P.end) { fail(&P, P.p, "unexpected data after the JSON value"); rc = -1; }
  }
  free(P.stack);
  free(P.buf);
  if (rc) { nnl_json_free(doc); return NULL; }
  return doc;
}

nnl_json_doc *nnl_json_load(const char *path, int max_depth) {
  size_t len;
  char *text = nnl_io_read_file(path, &len);
  if (!text) return NULL;
  nnl_json_doc *doc = nnl_json_parse(text, len, max_depth);
  free(text);
  if (!doc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nnl_last_error());
    nnl_set_error("%s: %s", path, msg);
  }
  return doc;
}

const nnl_json *nnl_json_root(const nnl_json_doc *doc) { return doc ? &doc->root : NULL; }

void nnl_json_free(nnl_json_doc *doc) {
  if (!doc) return;
  for (block *b = doc->blocks, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(doc);
}

const nnl_json *nnl_json_get(const nnl_json *obj, const char *key) {
  if (!obj || obj->type != NNL_JSON_OBJECT || !key) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < obj->len; i++)
    if (obj->items[i].keylen == n && !memcmp(obj->items[i].key, key, n)) return &obj->items[i];
  return NULL;
}

const char *nnl_json_type_name(nnl_json_type t) {
  static const char *names[] = {"null", "false", "true", "number", "string", "array", "object"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

char *nnl_json_quote(const char *s, size_t len, size_t *outlen) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  size_t need = 2;
  for (size_t i = 0; i < len;) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      need += 2;
      i++;
    }
    else if (c < 0x20) { need += 6; i++; }
    else if (c < 0x80) { need++; i++; }
    else {
      int n = utf8_seq(p + i, end);
      if (!n) {
        nnl_set_error("string is not valid UTF-8 (bad byte 0x%02x at offset %zu)", c, i);
        return NULL;
      }
      need += (size_t)n;
      i += (size_t)n;
    }
  }
  char *out = malloc(need + 1), *o = out;
  if (!out) { nnl_set_error("out of memory"); return NULL; }
  *o++ = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = p[i];
    const char *esc = NULL;
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default: break;
    }
    if (esc) { *o++ = esc[0]; *o++ = esc[1]; }
    else if (c < 0x20) { snprintf(o, 7, "\\u%04x", c); o += 6; }
    else *o++ = (char)c;
  }
  *o++ = '"';
  *o = 0;
  if (outlen) *outlen = (size_t)(o - out);
  return out;
}
