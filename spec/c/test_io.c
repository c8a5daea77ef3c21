/* test_io.c — tests of src/io: JSON, safetensors, IDX and images; round trips, files made by
 * PyTorch/gzip/PIL (spec/fixtures/io), and corrupt inputs with their messages. Run from the repo root. */
#define _POSIX_C_SOURCE 200809L
#include "io/io.h"
#include "nnlua.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NNL_IO_STANDALONE /* stand-in for src/core's error slot, to build without the core */
static _Thread_local char err_buf[1024];
const char *nnl_last_error(void) { return err_buf; }
void nnl_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
}
#endif

#define FIX "spec/fixtures/io/"
static int fails, checks;
static char tmpdir[256];

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    checks++;                                                              \
    if (!(cond)) {                                                         \
      fails++;                                                             \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);               \
      printf(__VA_ARGS__);                                                 \
      printf("\n");                                                        \
    }                                                                      \
  } while (0)

/* A failed call (ok == 0) whose message contains frag. */
static void expect_err(int line, int ok, const char *frag) {
  checks++;
  const char *e = nnl_last_error();
  if (ok || !e || !strstr(e, frag)) {
    fails++;
    printf("FAIL %s:%d: expected an error containing \"%s\", got %s \"%s\"\n", __FILE__, line, frag,
           ok ? "success and" : "", e ? e : "(null)");
  }
}
#define EXPECT_ERR(ok, frag) expect_err(__LINE__, (ok), (frag))

static char *tmp(const char *name) {
  static char buf[8][512];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 512, "%s/%s", tmpdir, name);
  return b;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int tmp_leftover(const char *path) {
  char t[600];
  snprintf(t, sizeof t, "%s.tmp.%ld", path, (long)getpid());
  return file_exists(t);
}

/* ---------------- JSON ---------------- */

static void test_json(void) {
  const char *text = "{\"a\": [1, -2, 3.5, 1e3, -0.25e-2, true, false, null],\n"
                     " \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\",\n"
                     " \"big\": 9223372036854775807, \"over\": 9223372036854775808,"
                     " \"min\": -9223372036854775808, \"nested\": {\"x\": {\"y\": []}}, \"e\": {}}";
  nnl_json_doc *doc = nnl_json_parse(text, strlen(text), 0);
  CHECK(doc, "%s", nnl_last_error());
  if (doc) {
    const nnl_json *r = nnl_json_root(doc), *a = nnl_json_get(r, "a"), *s = nnl_json_get(r, "s");
    CHECK(r->type == NNL_JSON_OBJECT && r->len == 7, "root");
    CHECK(a && a->type == NNL_JSON_ARRAY && a->len == 8, "array");
    if (a && a->len == 8) {
      CHECK(a->items[0].is_int && a->items[0].i == 1, "1");
      CHECK(a->items[1].is_int && a->items[1].i == -2, "-2");
      CHECK(!a->items[2].is_int && a->items[2].num == 3.5, "3.5");
      CHECK(!a->items[3].is_int && a->items[3].num == 1000, "1e3 is a number but not written as an integer");
      CHECK(a->items[4].num == -0.0025, "%g", a->items[4].num);
      CHECK(a->items[5].type == NNL_JSON_TRUE && a->items[6].type == NNL_JSON_FALSE && a->items[7].type == NNL_JSON_NULL,
            "literals");
    }
    const char *want = "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9";
    CHECK(s && s->len == strlen(want) && !memcmp(s->str, want, s->len), "escapes: %s", s ? s->str : "");
    CHECK(nnl_json_get(r, "big")->is_int && nnl_json_get(r, "big")->i == INT64_MAX, "int64 max");
    CHECK(!nnl_json_get(r, "over")->is_int && nnl_json_get(r, "over")->num > 9.2e18, "beyond int64");
    CHECK(nnl_json_get(r, "min")->is_int && nnl_json_get(r, "min")->i == INT64_MIN, "int64 min");
    const nnl_json *y = nnl_json_get(nnl_json_get(nnl_json_get(r, "nested"), "x"), "y");
    CHECK(y && y->type == NNL_JSON_ARRAY && y->len == 0, "nested empty array");
    CHECK(nnl_json_get(r, "e")->len == 0 && !nnl_json_get(r, "missing"), "empty object, missing key");
  }
  nnl_json_free(doc);

  /* a slice of a longer buffer; \u0000 inside a string value */
  doc = nnl_json_parse("[\"a\\u0000b\"]garbage", 12, 0);
  CHECK(doc && nnl_json_root(doc)->items[0].len == 3 && nnl_json_root(doc)->items[0].str[1] == 0, "%s",
        nnl_last_error());
  nnl_json_free(doc);

  static const struct { const char *text, *frag; } bad[] = {
    {"", "unexpected end of input"},
    {"[1,2,]", "line 1, column 6: unexpected ']', expected a value"},
    {"{\"a\":1,}", "expected a string key"},
    {"{\"a\" 1}", "expected ':'"},
    {"[1 2]", "expected ',' or ']'"},
    {"01", "leading zero"},
    {"1.", "digit after '.'"},
    {"-", "expected a digit"},
    {"1e", "exponent"},
    {"1e999", "number out of range"},
    {"NaN", "expected a value"},
    {"'a'", "unexpected '''"},
    {"tru", "expected true"},
    {"\"abc", "unterminated string"},
    {"\"a\nb\"", "control character 0x0a"},
    {"\"\\x\"", "bad escape '\\x'"},
    {"\"\\u12\"", "4 hex digits"},
    {"\"\\ud800\"", "unpaired surrogate \\uD800"},
    {"\"\\udc00\"", "unpaired surrogate \\uDC00"},
    {"\"\xff\"", "invalid UTF-8"},
    {"\"\xc0\xaf\"", "invalid UTF-8"},
    {"\"\xed\xa0\x80\"", "invalid UTF-8"},
    {"{\"k\":1,\"k\":2}", "duplicate key \"k\""},
    {"{\"a\\u0000\":1}", "key contains \\u0000"},
    {"{} x", "unexpected data after the JSON value"},
    {"[1,\n  @]", "line 2, column 3"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    doc = nnl_json_parse(bad[i].text, strlen(bad[i].text), 0);
    EXPECT_ERR(doc != NULL, bad[i].frag);
    nnl_json_free(doc);
  }
  char deep[300];
  memset(deep, '[', 200);
  memset(deep + 200, ']', 100);
  doc = nnl_json_parse(deep, 300, 0);
  EXPECT_ERR(doc != NULL, "nesting deeper than 64 levels");
  doc = nnl_json_parse(deep + 150, 100, 0); /* 50 deep, balanced */
  CHECK(doc, "%s", nnl_last_error());
  nnl_json_free(doc);

  size_t ql;
  char *q = nnl_json_quote("a\"b\\c\n\x01\xc3\xa9", 9, &ql);
  CHECK(q && !strcmp(q, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"") && ql == strlen(q), "quote: %s",
        q ? q : "(null)");
  doc = q ? nnl_json_parse(q, ql, 0) : NULL;
  CHECK(doc && nnl_json_root(doc)->len == 9 && !memcmp(nnl_json_root(doc)->str, "a\"b\\c\n\x01\xc3\xa9", 9),
        "quote round trip");
  nnl_json_free(doc);
  free(q);
  EXPECT_ERR(nnl_json_quote("a\xff", 2, NULL) != NULL, "not valid UTF-8");
  EXPECT_ERR(nnl_json_load(tmp("no-such.json"), 0) != NULL, "no-such.json: cannot open");
}

/* ---------------- safetensors ---------------- */

/* 8-byte length, header, data: a hand-made file. */
static uint8_t *st_bytes(const char *header, const void *data, size_t dlen, size_t *len) {
  size_t h = strlen(header);
  uint8_t *b = malloc(8 + h + dlen + 1);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
  memcpy(b + 8, header, h);
  if (dlen) memcpy(b + 8 + h, data, dlen);
  *len = 8 + h + dlen;
  return b;
}

static void test_st_reference_bytes(void) {
  /* the byte layout of the reference implementation's own tests */
  float v[6] = {0, 1, 2, 3, 4, 5};
  nnl_st_entry e = {.name = "attn.0", .dtype = NNL_ST_F32, .ndim = 3, .shape = {1, 2, 3}, .data = v, .nbytes = 24};
  size_t len;
  uint8_t *out = nnl_st_serialize(&e, 1, NULL, 0, &len);
  const char *hdr = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
  CHECK(out && len == 8 + 64 + 24 && out[0] == 64 && !memcmp(out + 8, hdr, 64) && !memcmp(out + 72, v, 24),
        "serialize attn.0");
  free(out);
  e.name = "attn0";
  e.ndim = 4;
  e.shape[0] = e.shape[1] = 1, e.shape[2] = 2, e.shape[3] = 3;
  out = nnl_st_serialize(&e, 1, NULL, 0, &len);
  CHECK(out && out[0] == 72 && !memcmp(out + 8 + 65, "       ", 7), "padded to 8 with spaces");
  free(out);
  out = nnl_st_serialize(NULL, 0, NULL, 0, &len);
  CHECK(out && len == 16 && !memcmp(out, "\x08\0\0\0\0\0\0\0{}      ", 16), "empty file");
  free(out);
  nnl_st_kv kv = {"framework", "pt"};
  out = nnl_st_serialize(NULL, 0, &kv, 1, &len);
  CHECK(out && len == 48 && out[0] == 40 && !memcmp(out + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40),
        "metadata only");
  free(out);
}

static void test_st_roundtrip(void) {
  float w[6] = {1.5f, -2, 0, 3.25f, 1e-30f, -7};
  int64_t lab[4] = {0, -1, INT64_MAX, 42};
  uint8_t px[6] = {0, 1, 2, 253, 254, 255};
  float sc = 3.5f;
  nnl_st_entry in[5] = {
    {.name = "fc.weight", .dtype = NNL_ST_F32, .ndim = 2, .shape = {2, 3}, .data = w, .nbytes = 24},
    {.name = "labels", .dtype = NNL_ST_I64, .ndim = 1, .shape = {4}, .data = lab, .nbytes = 32},
    {.name = "pixels", .dtype = NNL_ST_U8, .ndim = 2, .shape = {3, 2}, .data = px, .nbytes = 6},
    {.name = "empty", .dtype = NNL_ST_F32, .ndim = 2, .shape = {0, 5}, .data = NULL, .nbytes = 0},
    {.name = "scalar \xc3\xa9\"\n", .dtype = NNL_ST_F32, .ndim = 0, .data = &sc, .nbytes = 4},
  };
  nnl_st_kv meta[2] = {{"note", "a \"quoted\"\nline \xc3\xa9"}, {"format", "pt"}};
  size_t len;
  uint8_t *bytes = nnl_st_serialize(in, 5, meta, 2, &len);
  CHECK(bytes, "%s", nnl_last_error());
  const char *path = tmp("rt.safetensors");
  CHECK(nnl_st_save(path, in, 5, meta, 2) == 0, "%s", nnl_last_error());
  CHECK(!tmp_leftover(path), "temp file left behind");
  for (int pass = 0; pass < 3 && bytes; pass++) {
    nnl_safetensors *st = pass < 2 ? nnl_st_parse(bytes, len, "rt", pass) : nnl_st_load(path);
    CHECK(st, "pass %d: %s", pass, nnl_last_error());
    if (!st) continue;
    CHECK(st->n == 5 && st->nmeta == 2, "counts %zu %zu", st->n, st->nmeta);
    /* data order: 8-byte I64 first, then the F32s by name, U8 last; every offset aligned */
    const char *order[5] = {"labels", "empty", "fc.weight", "scalar \xc3\xa9\"\n", "pixels"};
    const uint8_t *base = (const uint8_t *)st->entries[0].data;
    for (size_t i = 0; i < st->n && i < 5; i++) {
      CHECK(!strcmp(st->entries[i].name, order[i]), "order %zu: %s", i, st->entries[i].name);
      CHECK((size_t)((const uint8_t *)st->entries[i].data - base) % nnl_st_dtype_size(st->entries[i].dtype) == 0,
            "aligned");
    }
    for (int k = 0; k < 5; k++) {
      const nnl_st_entry *e = nnl_st_find(st, in[k].name);
      CHECK(e && e->dtype == in[k].dtype && e->ndim == in[k].ndim && e->nbytes == in[k].nbytes, "entry %s",
            in[k].name);
      if (!e) continue;
      CHECK(!memcmp(e->shape, in[k].shape, sizeof(int64_t) * (size_t)in[k].ndim), "shape of %s", in[k].name);
      CHECK(!e->nbytes || !memcmp(e->data, in[k].data, e->nbytes), "data of %s", in[k].name);
    }
    CHECK(!strcmp(nnl_st_meta_get(st, "note"), meta[0].value) && !strcmp(nnl_st_meta_get(st, "format"), "pt"),
          "metadata");
    CHECK(!nnl_st_find(st, "nope") && !nnl_st_meta_get(st, "nope"), "missing lookups");
    nnl_st_free(st);
  }
  free(bytes);

  /* writer errors, and a failed save leaves the old file untouched */
  nnl_st_entry dup[2] = {in[0], in[0]};
  EXPECT_ERR(nnl_st_save(path, dup, 2, NULL, 0) == 0, "tensor name 'fc.weight' appears twice");
  nnl_st_entry e = in[0];
  e.nbytes = 20;
  EXPECT_ERR(nnl_st_save(path, &e, 1, NULL, 0) == 0,
             "tensor 'fc.weight': 20 bytes of data do not match shape [2,3] of F32 (24 bytes)");
  e = in[0];
  e.name = "__metadata__";
  EXPECT_ERR(nnl_st_save(path, &e, 1, NULL, 0) == 0, "reserved");
  e = in[0];
  e.name = "bad\xff";
  EXPECT_ERR(nnl_st_save(path, &e, 1, NULL, 0) == 0, "tensor name: string is not valid UTF-8");
  e = in[0];
  e.shape[0] = -2;
  EXPECT_ERR(nnl_st_save(path, &e, 1, NULL, 0) == 0, "negative size in shape [-2,3]");
  nnl_st_kv dupm[2] = {{"k", "1"}, {"k", "2"}};
  EXPECT_ERR(nnl_st_save(path, in, 1, dupm, 2) == 0, "metadata key 'k' appears twice");
  EXPECT_ERR(nnl_st_save(tmp("no/such/dir/x.safetensors"), in, 1, NULL, 0) == 0, "cannot create");
  nnl_safetensors *st = nnl_st_load(path);
  CHECK(st && st->n == 5 && !tmp_leftover(path), "old file intact after failed saves");
  nnl_st_free(st);
  EXPECT_ERR(nnl_st_load(tmp("missing.safetensors")) != NULL,
             "missing.safetensors: cannot open: No such file");
  EXPECT_ERR(nnl_st_load(tmpdir) != NULL, "is a directory");
}

static int write_fails(FILE *f, void *ctx) {
  (void)ctx;
  fputs("partial", f);
  nnl_set_error("writer gave up");
  return -1;
}

static void test_atomic(void) {
  const char *path = tmp("atomic.txt");
  FILE *f = fopen(path, "w");
  fputs("old", f);
  fclose(f);
  EXPECT_ERR(nnl_io_write_atomic(path, write_fails, NULL) == 0, "writer gave up");
  size_t len;
  char *s = nnl_io_read_file(path, &len);
  CHECK(s && len == 3 && !strcmp(s, "old") && !tmp_leftover(path), "file untouched, temp removed");
  free(s);
}

static void test_st_corrupt(void) {
  static const struct { const char *header; size_t dlen; const char *frag; } bad[] = {
    {"{\"a\":", 0, "bad.safetensors: header is not valid JSON: line 1, column 6: unexpected end of input"},
    {"[1]", 0, "header must be a JSON object, got array"},
    {"{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[10,3],\"data_offsets\":[0,100]}}", 100,
     "bad.safetensors: tensor 'fc.weight': data_offsets [0,100] do not match shape [10,3] of F32 (120 bytes)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "tensor 'a': data_offsets [0,8] are outside the data buffer (4 bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "tensor 'b': data_offsets [4,12] overlap tensor 'a' [0,8]"},
    {"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
     "tensor 'b': data_offsets [8,12] leave a gap: bytes [4,8) belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "leave a gap: bytes [0,4)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "4 bytes at the end of the data buffer belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': unknown dtype \"F31\""},
    {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" must be a string"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': shape dimension 1 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2.0],\"data_offsets\":[0,8]}}", 8, "shape dimension 2 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
     "shape [4294967296,4294967296,4294967296] of U8 is too large"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "shape has 9 dimensions (at most 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4, "\"shape\" must be an array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': missing \"data_offsets\""},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "with 0 <= begin <= end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "\"data_offsets\" must be [begin, end]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4, "\"data_offsets\" must be"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 4, "outside the data buffer"},
    {"{\"a\":[1]}", 0, "tensor 'a': expected an object with dtype, shape and data_offsets, got array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{}}", 4, "duplicate key \"a\""},
    {"{\"__metadata__\":{\"k\":1}}", 0, "\"__metadata__\" value of 'k' must be a string"},
    {"{\"__metadata__\":[]}", 0, "\"__metadata__\" must be an object of strings"},
    {"{\"\xff\":{}}", 0, "invalid UTF-8"},
    {"{\"a\\u0001b\":[]}", 0, "tensor 'a?b'"},
  };
  uint8_t zeros[128] = {0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len;
    uint8_t *b = st_bytes(bad[i].header, zeros, bad[i].dlen, &len);
    nnl_safetensors *st = nnl_st_parse(b, len, "bad.safetensors", 0);
    EXPECT_ERR(st != NULL, bad[i].frag);
    nnl_st_free(st);
    free(b);
  }
  /* the length field itself */
  uint8_t b[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  nnl_safetensors *st = nnl_st_parse(b, 16, "ok", 0);
  CHECK(st && st->n == 0 && st->nmeta == 0, "minimal file: %s", nnl_last_error());
  nnl_st_free(st);
  EXPECT_ERR(nnl_st_parse(b, 5, "bad.safetensors", 0) != NULL, "bad.safetensors: file too short (5 bytes)");
  EXPECT_ERR(nnl_st_parse(b, 12, "bad.safetensors", 0) != NULL,
             "header length 8 is larger than the 4 bytes that follow it");
  b[3] = 0x10; /* 256 MiB */
  EXPECT_ERR(nnl_st_parse(b, 16, "bad.safetensors", 0) != NULL,
             "header length 268435464 is over the 100000000-byte limit");
  b[3] = 0;
  b[7] = 0xff;
  EXPECT_ERR(nnl_st_parse(b, 16, "bad.safetensors", 0) != NULL, "over the 100000000-byte limit");

  /* every truncation and every single-byte corruption of a valid file: fail cleanly or parse */
  float w[6] = {1, 2, 3, 4, 5, 6};
  int64_t l[2] = {7, 8};
  nnl_st_entry in[2] = {{.name = "w", .dtype = NNL_ST_F32, .ndim = 2, .shape = {2, 3}, .data = w, .nbytes = 24},
                        {.name = "l", .dtype = NNL_ST_I64, .ndim = 1, .shape = {2}, .data = l, .nbytes = 16}};
  nnl_st_kv kv = {"k", "v"};
  size_t len;
  uint8_t *good = nnl_st_serialize(in, 2, &kv, 1, &len);
  int parsed = 0;
  for (size_t cut = 0; cut < len; cut++) {
    st = nnl_st_parse(good, cut, "cut", 0);
    parsed += st != NULL;
    nnl_st_free(st);
  }
  CHECK(parsed == 0, "%d truncated files parsed", parsed);
  uint8_t *mut = malloc(len);
  uint32_t seed = 12345;
  for (int it = 0; it < 4000; it++) {
    memcpy(mut, good, len);
    int flips = 1 + it % 3;
    for (int k = 0; k < flips; k++) {
      seed = seed * 1664525u + 1013904223u;
      size_t at = (seed >> 8) % len;
      seed = seed * 1664525u + 1013904223u;
      mut[at] = (uint8_t)(seed >> 24);
    }
    st = nnl_st_parse(mut, len, "mut", it & 1);
    CHECK(st || strstr(nnl_last_error(), "mut: "), "error without file name: %s", nnl_last_error());
    nnl_st_free(st);
  }
  free(mut);
  free(good);
}

static void test_st_torch_fixture(void) {
  nnl_safetensors *st = nnl_st_load(FIX "torch_small.safetensors");
  CHECK(st, "%s", nnl_last_error());
  if (!st) return;
  CHECK(st->n == 17 && !strcmp(nnl_st_meta_get(st, "format"), "pt"), "n %zu", st->n);
  float f[32], g[32];
  const nnl_st_entry *e = nnl_st_find(st, "fc.weight");
  CHECK(e && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 3 && !nnl_st_to_f32(f, e->data, e->dtype, 6),
        "fc.weight");
  for (int i = 0; e && i < 6; i++) CHECK(f[i] == i / 4.0f - 0.5f, "fc.weight[%d] = %g", i, f[i]);
  /* PyTorch's own widening of F16, BF16 and F64 against ours, bit for bit */
  const char *pairs[3][2] = {{"half", "half_as_f32"}, {"bf", "bf_as_f32"}, {"d", "d_as_f32"}};
  for (int p = 0; p < 3; p++) {
    const nnl_st_entry *a = nnl_st_find(st, pairs[p][0]), *b = nnl_st_find(st, pairs[p][1]);
    size_t n = a ? (size_t)a->shape[0] : 0;
    CHECK(a && b && b->dtype == NNL_ST_F32 && (size_t)b->shape[0] == n, "%s", pairs[p][0]);
    if (!a || !b) continue;
    CHECK(!nnl_st_to_f32(f, a->data, a->dtype, n), "convert %s", pairs[p][0]);
    memcpy(g, b->data, n * 4);
    for (size_t i = 0; i < n; i++)
      CHECK(!memcmp(&f[i], &g[i], 4), "%s[%zu]: %g vs torch %g", pairs[p][0], i, f[i], g[i]);
  }
  /* and narrowing F32 -> F16 / BF16 (round to nearest even) */
  const nnl_st_entry *src = nnl_st_find(st, "f32src"), *h = nnl_st_find(st, "f32src_as_f16"),
                     *bf = nnl_st_find(st, "f32src_as_bf16");
  CHECK(src && h && bf, "f32src");
  for (int64_t i = 0; src && h && bf && i < src->shape[0]; i++) {
    float x;
    uint16_t th, tb;
    memcpy(&x, (const char *)src->data + 4 * i, 4);
    memcpy(&th, (const char *)h->data + 2 * i, 2);
    memcpy(&tb, (const char *)bf->data + 2 * i, 2);
    CHECK(nnl_f32_to_f16(x) == th, "f16(%.9g) = %04x, torch %04x", x, nnl_f32_to_f16(x), th);
    CHECK(nnl_f32_to_bf16(x) == tb, "bf16(%.9g) = %04x, torch %04x", x, nnl_f32_to_bf16(x), tb);
  }
  int64_t q[4];
  e = nnl_st_find(st, "labels");
  CHECK(e && e->dtype == NNL_ST_I64 && !nnl_st_to_i64(q, e->data, e->dtype, 4) && q[0] == 1 && q[1] == -2 && q[3] == (int64_t)1 << 40,
        "labels");
  e = nnl_st_find(st, "i32");
  CHECK(e && e->dtype == NNL_ST_I32 && !nnl_st_to_i64(q, e->data, e->dtype, 3) && q[0] == -5 && q[1] == 0 && q[2] == 7,
        "I32 -> int64");
  e = nnl_st_find(st, "mask");
  CHECK(e && e->dtype == NNL_ST_BOOL && !nnl_st_to_i64(q, e->data, e->dtype, 3) && q[0] == 1 && q[1] == 0 && q[2] == 1,
        "BOOL");
  e = nnl_st_find(st, "u8");
  CHECK(e && e->dtype == NNL_ST_U8 && !memcmp(e->data, "\x00\x01\xfe\xff", 4), "U8");
  e = nnl_st_find(st, "scalar");
  CHECK(e && e->ndim == 0 && e->nbytes == 4 && !nnl_st_to_f32(f, e->data, e->dtype, 1) && f[0] == 2.5f,
        "0-d");
  e = nnl_st_find(st, "empty");
  CHECK(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3 && e->nbytes == 0, "empty");
  e = nnl_st_find(st, "fc.bias");
  EXPECT_ERR(e && !nnl_st_to_i64(q, e->data, e->dtype, 2), "cannot convert F32 to int64");
  nnl_st_free(st);
}

static void test_half_values(void) {
  static const struct { uint16_t h; float f; } hv[] = {
    {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 0x1p-24f}, {0x03FF, 0x3FFp-24f},
    {0x0400, 0x1p-14f}, {0x3555, 0.333251953125f}, {0x8000, -0.0f}, {0x7C00, INFINITY}, {0xFC00, -INFINITY},
  };
  for (size_t i = 0; i < sizeof hv / sizeof hv[0]; i++) {
    float f = nnl_f16_to_f32(hv[i].h);
    CHECK(f == hv[i].f && signbit(f) == signbit(hv[i].f), "f16 %04x -> %g", hv[i].h, f);
    CHECK(nnl_f32_to_f16(hv[i].f) == hv[i].h, "f32 %g -> f16 %04x", hv[i].f, nnl_f32_to_f16(hv[i].f));
  }
  CHECK(isnan(nnl_f16_to_f32(0x7E00)) && isnan(nnl_bf16_to_f32(0x7FC0)), "NaN");
  CHECK((nnl_f32_to_f16(NAN) & 0x7C00) == 0x7C00 && (nnl_f32_to_f16(NAN) & 0x3FF), "NaN -> f16 NaN");
  CHECK(nnl_f32_to_f16(65520.0f) == 0x7C00 && nnl_f32_to_f16(65519.0f) == 0x7BFF, "overflow boundary");
  CHECK(nnl_f32_to_f16(0x1p-25f) == 0 && nnl_f32_to_f16(0x3p-26f) == 1 && nnl_f32_to_f16(1e-10f) == 0,
        "subnormal rounding");
  CHECK(nnl_f32_to_f16(1.00048828125f) == 0x3C00 && nnl_f32_to_f16(1.00146484375f) == 0x3C02, "ties to even");
  CHECK(nnl_bf16_to_f32(0x3F80) == 1.0f && nnl_bf16_to_f32(0x4049) == 3.140625f && nnl_bf16_to_f32(0xFF80) == -INFINITY,
        "bf16 values");
  CHECK(nnl_f32_to_bf16(3.14159265f) == 0x4049 && nnl_f32_to_bf16(1.0f) == 0x3F80, "f32 -> bf16");
  uint8_t raw[8] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x7B}; /* unaligned source on purpose below */
  uint8_t un[9];
  memcpy(un + 1, raw, 8);
  float f[4];
  CHECK(!nnl_st_to_f32(f, un + 1, NNL_ST_F16, 4) && f[0] == 1 && f[1] == -2 && f[2] == 0x1p-24f && f[3] == 65504,
        "F16 buffer");
  uint8_t e4[4] = {0x38, 0xB8, 0x7E, 0x01}; /* E4M3FN: 1, -1, 448, 2^-9 */
  CHECK(!nnl_st_to_f32(f, e4, NNL_ST_F8_E4M3, 4) && f[0] == 1 && f[1] == -1 && f[2] == 448 && f[3] == 0x1p-9f,
        "E4M3");
  uint8_t e5[2] = {0x3C, 0x7B}; /* E5M2: 1, 57344 */
  CHECK(!nnl_st_to_f32(f, e5, NNL_ST_F8_E5M2, 2) && f[0] == 1 && f[1] == 57344, "E5M2");
  uint64_t big = UINT64_MAX;
  int64_t o;
  EXPECT_ERR(nnl_st_to_i64(&o, &big, NNL_ST_U64, 1) == 0, "does not fit in int64");
  CHECK(nnl_st_dtype_from_name("BF16") == NNL_ST_BF16 && nnl_st_dtype_from_name("f32") == -1 && nnl_st_dtype_size(NNL_ST_I64) == 8,
        "dtype table");
}

/* ---------------- IDX ---------------- */

static void test_idx(void) {
  uint8_t u8[60];
  for (int i = 0; i < 60; i++) u8[i] = (uint8_t)(i * 7 % 256);
  int64_t dims[3] = {3, 4, 5};
  for (int gz = 0; gz < 2; gz++) {
    const char *path = tmp(gz ? "u8.idx" : "u8.idx3-ubyte"); /* gzip whatever the name says */
    CHECK(nnl_idx_save(path, NNL_IDX_U8, 3, dims, u8, gz) == 0, "%s", nnl_last_error());
    size_t len;
    uint8_t *bytes = nnl_io_read_file(path, &len);
    CHECK(bytes && (gz ? bytes[0] == 0x1f && bytes[1] == 0x8b : len == 4 + 12 + 60 && bytes[2] == 8 && bytes[3] == 3),
          "file layout");
    nnl_idx *x = nnl_idx_load(path, NNL_IDX_AS_U8);
    CHECK(x && x->ndim == 3 && x->dims[0] == 3 && x->dims[2] == 5 && x->numel == 60 && x->type == NNL_IDX_U8 && !memcmp(x->data, u8, 60),
          "u8 gz=%d: %s", gz, nnl_last_error());
    nnl_idx_free(x);
    x = nnl_idx_parse(bytes, len, "mem", NNL_IDX_AS_F32);
    CHECK(x && x->as == NNL_IDX_AS_F32 && ((float *)x->data)[59] == (float)u8[59],
          "u8 from memory as f32 gz=%d: %s", gz, nnl_last_error());
    nnl_idx_free(x);
    /* truncated and padded versions of the same bytes */
    for (size_t cut = 0; bytes && cut < len; cut += 1 + cut / 4) {
      x = nnl_idx_parse(bytes, cut, "cut.idx", NNL_IDX_AS_U8);
      EXPECT_ERR(x != NULL, cut < 4 && !gz ? "too short" : "cut.idx: ");
      nnl_idx_free(x);
    }
    if (!gz && bytes) {
      uint8_t *more = malloc(len + 3);
      memcpy(more, bytes, len);
      memset(more + len, 0, 3);
      EXPECT_ERR(nnl_idx_parse(more, len + 3, "pad.idx", 0) != NULL,
                 "pad.idx: trailing data after the 60 bytes of 3x4x5 u8 data");
      EXPECT_ERR(nnl_idx_parse(bytes, len - 1, "short.idx", 0) != NULL,
                 "short.idx: truncated: 3x4x5 u8 data needs 60 bytes but only 59 are present");
      FILE *f = fopen(tmp("trunc.idx"), "wb");
      fwrite(bytes, 1, len - 10, f);
      fclose(f);
      EXPECT_ERR(nnl_idx_load(tmp("trunc.idx"), 0) != NULL,
                 "trunc.idx: truncated: 3x4x5 u8 data needs 60 bytes but only 50");
      free(more);
    }
    if (gz && bytes) {
      EXPECT_ERR(nnl_idx_parse(bytes, len - 4, "gz", 0) != NULL, "gz: gzip stream is truncated");
      FILE *f = fopen(tmp("trunc.gz"), "wb");
      fwrite(bytes, 1, len - 12, f);
      fclose(f);
      EXPECT_ERR(nnl_idx_load(tmp("trunc.gz"), 0) != NULL, "trunc.gz: ");
      bytes[len - 6] ^= 0xff; /* the CRC */
      EXPECT_ERR(nnl_idx_parse(bytes, len, "crc", 0) != NULL, "crc: corrupt gzip data: incorrect data check");
      f = fopen(tmp("crc.gz"), "wb");
      fwrite(bytes, 1, len, f);
      fclose(f);
      EXPECT_ERR(nnl_idx_load(tmp("crc.gz"), 0) != NULL, "crc.gz: corrupt gzip data");
    }
    free(bytes);
  }
  /* other element types */
  int32_t i32[4] = {-3, 0, 300, 2147483647};
  int64_t d1[1] = {4};
  const char *p = tmp("i32.idx.gz");
  CHECK(nnl_idx_save(p, NNL_IDX_I32, 1, d1, i32, 1) == 0, "%s", nnl_last_error());
  nnl_idx *x = nnl_idx_load(p, NNL_IDX_AS_I64);
  CHECK(x && x->type == NNL_IDX_I32 && ((int64_t *)x->data)[0] == -3 && ((int64_t *)x->data)[3] == 2147483647,
        "i32 as i64");
  nnl_idx_free(x);
  EXPECT_ERR(nnl_idx_load(p, NNL_IDX_AS_U8) != NULL,
             "i32.idx.gz: element 0 is -3, which does not fit in uint8");
  int16_t i16[3] = {-32768, 1, 32767};
  int8_t i8[3] = {-128, 5, 127};
  float f32[3] = {0.5f, -1e30f, 3};
  double f64[3] = {0.25, -2, 1e10};
  struct { int type; const void *data; float want[3]; } t[] = {
    {NNL_IDX_I16, i16, {-32768, 1, 32767}}, {NNL_IDX_I8, i8, {-128, 5, 127}},
    {NNL_IDX_F32, f32, {0.5f, -1e30f, 3}}, {NNL_IDX_F64, f64, {0.25f, -2, 1e10f}},
  };
  int64_t d3[1] = {3};
  for (int k = 0; k < 4; k++) {
    p = tmp("t.idx");
    CHECK(nnl_idx_save(p, t[k].type, 1, d3, t[k].data, k & 1) == 0, "%s", nnl_last_error());
    x = nnl_idx_load(p, NNL_IDX_AS_F32);
    CHECK(x && x->type == t[k].type && !memcmp(x->data, t[k].want, 12), "type %02x", t[k].type);
    nnl_idx_free(x);
  }
  EXPECT_ERR(nnl_idx_load(tmp("t.idx"), NNL_IDX_AS_I64) != NULL,
             "t.idx: element 0 is 0.25, which does not fit in int64");
  double f64i[2] = {-2, 1e10};
  CHECK(nnl_idx_save(tmp("t.idx"), NNL_IDX_F64, 1, (int64_t[]){2}, f64i, 0) == 0, "%s", nnl_last_error());
  x = nnl_idx_load(tmp("t.idx"), NNL_IDX_AS_I64);
  CHECK(x && ((int64_t *)x->data)[0] == -2 && ((int64_t *)x->data)[1] == 10000000000LL,
        "integral f64 -> i64: %s", nnl_last_error());
  nnl_idx_free(x);
  /* files from Python: gzip labels without a .gz name, plain images */
  x = nnl_idx_load(FIX "tiny-labels-idx1-ubyte.gz", NNL_IDX_AS_I64);
  CHECK(x && x->ndim == 1 && x->numel == 5 && ((int64_t *)x->data)[0] == 5 && ((int64_t *)x->data)[4] == 9,
        "python labels: %s", nnl_last_error());
  nnl_idx_free(x);
  x = nnl_idx_load(FIX "tiny-images-idx3-ubyte", NNL_IDX_AS_U8);
  CHECK(x && x->ndim == 3 && x->dims[0] == 2 && x->dims[1] == 3 && x->dims[2] == 4 && ((uint8_t *)x->data)[23] == 23 * 37 % 256,
        "python images");
  nnl_idx_free(x);
  /* corrupt headers */
  static const struct { const char *b; size_t n; const char *frag; } bad[] = {
    {"\x01\x00\x08\x01\0\0\0\0", 8, "h.idx: not an IDX file (starts with 01 00 08 01"},
    {"\x00\x00\x0a\x01\0\0\0\0", 8, "unknown IDX element type 0x0a"},
    {"\x00\x00\x08\x09", 4, "IDX header has 9 dimensions (at most 8"},
    {"\x00\x00\x08\x02\0\0\0\1", 8, "truncated IDX header (2 dimensions need 12 bytes)"},
    {"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16, "IDX dimensions 4294967295x4294967295x4294967295 are too large"},
    {"\x00\x00\x0d\x02\xff\xff\xff\xff\0\0\0\4\1\2\3", 15, "truncated: 4294967295x4 f32 data needs 68719476720 bytes but only 3 are present"},
    {"\x00\x00", 2, "too short (2 bytes)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    x = nnl_idx_parse(bad[i].b, bad[i].n, "h.idx", NNL_IDX_AS_U8);
    EXPECT_ERR(x != NULL, bad[i].frag);
    nnl_idx_free(x);
  }
  x = nnl_idx_parse("\x00\x00\x08\x00\x2a", 5, "scalar", NNL_IDX_AS_U8);
  CHECK(x && x->ndim == 0 && x->numel == 1 && ((uint8_t *)x->data)[0] == 42, "0-d IDX");
  nnl_idx_free(x);
  /* a deflate block of the reserved type */
  x = nnl_idx_parse("\x1f\x8b\x08\x00\0\0\0\0\0\x03\xff\xff\xff\xff", 14, "g.gz", 0);
  EXPECT_ERR(x != NULL, "g.gz: corrupt gzip data");
  EXPECT_ERR(nnl_idx_load(tmp("absent.idx"), 0) != NULL, "absent.idx: cannot open: No such file");
  EXPECT_ERR(nnl_idx_save(tmp("x.idx"), 0x0A, 1, d1, u8, 0) == 0, "unknown IDX element type 0x0a");
  int64_t neg[1] = {-1};
  EXPECT_ERR(nnl_idx_save(tmp("x.idx"), NNL_IDX_U8, 1, neg, u8, 0) == 0, "dimension 1 is -1");
}

/* ---------------- images ---------------- */

static void test_image(void) {
  enum { H = 7, W = 5 };
  uint8_t px[H * W * 4];
  uint32_t s = 99;
  for (int i = 0; i < H * W * 4; i++) { s = s * 1664525u + 1013904223u; px[i] = (uint8_t)(s >> 24); }
  for (int c = 1; c <= 4; c++) {
    size_t len;
    uint8_t *png = nnl_image_encode(px, H, W, c, NNL_IMG_PNG, 0, &len);
    CHECK(png && len > 8 && !memcmp(png, "\x89PNG", 4), "encode c=%d: %s", c, nnl_last_error());
    int h, w, cc;
    uint8_t *back = nnl_image_decode(png, len, "rt.png", c, &h, &w, &cc);
    CHECK(back && h == H && w == W && cc == c && !memcmp(back, px, (size_t)(H * W * c)),
          "png round trip c=%d", c);
    free(back);
    back = nnl_image_decode(png, len, "rt.png", 0, &h, &w, &cc);
    CHECK(back && cc == (c <= 2 ? 1 : 3), "default channels for c=%d: %d", c, cc);
    if (back && c == 4) /* alpha dropped */
      for (int i = 0; i < H * W; i++) CHECK(!memcmp(back + 3 * i, px + 4 * i, 3), "rgba -> rgb");
    free(back);
    /* every truncation fails cleanly */
    for (size_t cut = 0; png && cut < len; cut += 1 + cut / 3) {
      back = nnl_image_decode(png, cut, "cut.png", 0, &h, &w, &cc);
      EXPECT_ERR(back != NULL, "cut.png: cannot decode image: ");
      free(back);
    }
    free(png);
  }
  /* files: PNG and BMP exact, JPEG close on a smooth picture */
  uint8_t grad[32 * 48 * 3];
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 48; x++)
      for (int k = 0; k < 3; k++) grad[(y * 48 + x) * 3 + k] = (uint8_t)(x * 4 + y * 2 + k * 20);
  const char *names[3] = {"pic.png", "pic.JPG", "pic.bmp"};
  for (int k = 0; k < 3; k++) {
    const char *p = tmp(names[k]);
    CHECK(nnl_image_save(p, grad, 32, 48, 3, 95) == 0, "%s", nnl_last_error());
    CHECK(!tmp_leftover(p), "temp left");
    int h, w, c;
    uint8_t *back = nnl_image_load(p, 3, &h, &w, &c);
    CHECK(back && h == 32 && w == 48 && c == 3, "%s: %s", names[k], nnl_last_error());
    double err = 0;
    for (int i = 0; back && i < 32 * 48 * 3; i++) err += fabs((double)back[i] - grad[i]);
    err /= 32 * 48 * 3;
    CHECK(k == 1 ? err < 3 : err == 0, "%s mean abs error %g", names[k], err);
    free(back);
  }
  /* PIL-made files */
  int h, w, c;
  uint8_t *im = nnl_image_load(FIX "tiny_rgb.png", 0, &h, &w, &c);
  const uint8_t want[18] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 100, 50, 0, 0, 0};
  CHECK(im && h == 2 && w == 3 && c == 3 && !memcmp(im, want, 18), "PIL png: %s", nnl_last_error());
  free(im);
  im = nnl_image_load(FIX "tiny_rgb.bmp", 3, &h, &w, &c);
  CHECK(im && h == 2 && w == 3 && c == 3 && !memcmp(im, want, 18), "PIL bmp: %s", nnl_last_error());
  free(im);
  im = nnl_image_load(FIX "tiny_la.png", 0, &h, &w, &c);
  CHECK(im && h == 2 && w == 2 && c == 1 && im[0] == 0 && im[1] == 85 && im[3] == 255, "grey+alpha -> grey");
  free(im);
  im = nnl_image_load(FIX "tiny_la.png", 2, &h, &w, &c);
  CHECK(im && c == 2 && im[3] == 128, "grey+alpha kept");
  free(im);
  /* corrupt and hostile inputs */
  EXPECT_ERR(nnl_image_decode("hello world, not an image", 25, "x.png", 0, &h, &w, &c) != NULL,
             "x.png: cannot decode image: not a PNG, JPEG or BMP image");
  EXPECT_ERR(nnl_image_decode("", 0, "e.png", 0, &h, &w, &c) != NULL,
             "e.png: cannot decode image: empty file");
  size_t len;
  uint8_t *png = nnl_image_encode(px, H, W, 3, NNL_IMG_PNG, 0, &len);
  if (png) {
    /* IHDR claims 12000 x 12000 (stb does not check CRCs) */
    png[16] = 0; png[17] = 0; png[18] = 0x2E; png[19] = 0xE0;
    png[20] = 0; png[21] = 0; png[22] = 0x2E; png[23] = 0xE0;
    EXPECT_ERR(nnl_image_decode(png, len, "huge.png", 0, &h, &w, &c) != NULL,
               "huge.png: image of 12000 x 12000 pixels is over the");
    png[17] = 1; /* 0x12EE0 wide: beyond stb's dimension cap */
    EXPECT_ERR(nnl_image_decode(png, len, "wide.png", 0, &h, &w, &c) != NULL,
               "wide.png: cannot decode image: too large");
    png[17] = 0;
    png[33] = 0x7F; /* the IDAT chunk claims 2 GB */
    EXPECT_ERR(nnl_image_decode(png, len, "idat.png", 0, &h, &w, &c) != NULL,
               "idat.png: cannot decode image: chunk extends past the end of the file");
    free(png);
  }
  uint8_t *jpg = nnl_image_encode(grad, 32, 48, 3, NNL_IMG_JPEG, 80, &len);
  for (size_t i = 0; jpg && i + 21 < len; i++)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) { /* a Huffman table of 255 + ... codes */
      jpg[i + 20] = 255;
      EXPECT_ERR(nnl_image_decode(jpg, len, "dht.jpg", 0, &h, &w, &c) != NULL,
                 "dht.jpg: cannot decode image: bad DHT header");
      break;
    }
  free(jpg);
  /* scans that use Huffman tables the file never defines: decoded from zeroed tables, or refused */
  jpg = nnl_image_encode(grad, 32, 48, 3, NNL_IMG_JPEG, 80, &len);
  for (size_t i = 0; jpg && i + 10 < len; i++)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) {
      for (int k = 0; k < jpg[i + 4]; k++) jpg[i + 6 + 2 * k] = 0x33;
      uint8_t *im = nnl_image_decode(jpg, len, "undef.jpg", 0, &h, &w, &c);
      CHECK(im || strstr(nnl_last_error(), "undef.jpg: cannot decode image"), "%s", nnl_last_error());
      free(im);
      break;
    }
  free(jpg);
  uint8_t *bmp = nnl_image_encode(px, H, W, 3, NNL_IMG_BMP, 0, &len);
  if (bmp) {
    bmp[18] = 0x10; bmp[19] = 0x27; /* 10000 wide, 7 high: 70000 pixels in a 162-byte file */
    EXPECT_ERR(nnl_image_decode(bmp, len, "long.bmp", 0, &h, &w, &c) != NULL,
               "long.bmp: cannot decode image: file too short for a 10000 x 7 BMP");
    free(bmp);
  }
  EXPECT_ERR(nnl_image_load(tmp("nope.png"), 0, &h, &w, &c) != NULL, "nope.png: cannot open");
  EXPECT_ERR(nnl_image_save(tmp("pic.gif"), grad, 32, 48, 3, 0) == 0, "pic.gif: unknown image format");
  EXPECT_ERR(nnl_image_save(tmp("pic.png"), grad, 32, 48, 5, 0) == 0, "1 to 4 channels, got 5");
  EXPECT_ERR(nnl_image_save(tmp("pic.jpg"), grad, 32, 48, 3, 101) == 0, "JPEG quality must be 1..100");
  EXPECT_ERR(nnl_image_encode(grad, 0, 48, 3, NNL_IMG_PNG, 0, &len) != NULL, "image size 0 x 48");
  EXPECT_ERR(nnl_image_decode(grad, 10, "c.png", 7, &h, &w, &c) != NULL, "channels must be 0..4");
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nnl_test_io.%ld", (long)getpid());
  if (mkdir(tmpdir, 0700) != 0) { perror(tmpdir); return 1; }
  test_json();
  test_st_reference_bytes();
  test_st_roundtrip();
  test_atomic();
  test_st_corrupt();
  test_st_torch_fixture();
  test_half_values();
  test_idx();
  test_image();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
  printf("test_io: %d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
