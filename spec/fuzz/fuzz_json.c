/* fuzz_json.c — libFuzzer target: the JSON reader behind captions and vocabularies. The core parser's
 * tree is checked, written back and re-parsed to the same tree; nn.io.parse_json turns it into Lua
 * values, and the captioning data code (load_vocab, decode) takes it as a vocabulary file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_lua.h"
#include "io/io.h"
#include "nnlua.h"

static lua_State *L;
static int lua_check;

static const char *lua_side =
    "local data = require 'nnlua.models.captioning_data'\n"
    "return function(text, path)\n"
    "  pcall(nn.io.parse_json, text, 3)\n"
    "  local ok, v = pcall(nn.io.parse_json, text)\n"
    "  if not ok then fuzz_check(type(v) == 'string', 'parse_json error') return end\n"
    "  local vocab = data.load_vocab(path)\n"
    "  fuzz_check(type(vocab.word_to_idx) == 'table', 'load_vocab result')\n"
    "  data.decode({2, 5, 6, 7, 1, 4, 8, 3, 9}, vocab.idx_to_word)\n"
    "  data.decode_batch(nn.tensor({{2, 5, 6, 3}, {2, 7, 1, 3}}, 'int64'), vocab.idx_to_word)\n"
    "end\n";

static int l_check(lua_State *Ls) {
  if (!lua_toboolean(Ls, 1)) fz_fail("invariant broken: %s", luaL_optstring(Ls, 2, "?"));
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = fz_lua_open();
  lua_register(L, "fuzz_check", l_check);
  lua_check = fz_lua_ref_chunk(L, lua_side, "=json");
  return 0;
}

/* ---- a growable output buffer ---- */

typedef struct {
  char *p;
  size_t n, cap;
} obuf;

static void out(obuf *o, const char *s, size_t n) {
  if (o->n + n + 1 > o->cap) {
    size_t c = o->cap ? o->cap : 256;
    while (c < o->n + n + 1) c *= 2;
    o->p = realloc(o->p, c);
    if (!o->p) fz_fail("out of memory");
    o->cap = c;
  }
  memcpy(o->p + o->n, s, n);
  o->n += n;
  o->p[o->n] = 0;
}

static void out_quoted(obuf *o, const char *s, size_t len) {
  size_t ql;
  char *q = nnl_json_quote(s, len, &ql);
  if (!q) fz_fail("nnl_json_quote refused a string the parser accepted: %s", nnl_last_error());
  if (ql != strlen(q)) fz_fail("nnl_json_quote: length %zu, string %zu", ql, strlen(q));
  out(o, q, ql);
  free(q);
}

/* Check the node's invariants and write it as JSON. Returns 0 if it cannot be written exactly
 * (a number the parser made infinite). */
static int walk(const nnl_json *v, obuf *o, int depth) {
  char num[64];
  if (depth > 1024) fz_fail("tree deeper than any limit allows");
  switch (v->type) {
  case NNL_JSON_NULL: out(o, "null", 4); return 1;
  case NNL_JSON_FALSE: out(o, "false", 5); return 1;
  case NNL_JSON_TRUE: out(o, "true", 4); return 1;
  case NNL_JSON_NUMBER:
    if (v->is_int) {
      if ((double)v->i != v->num) fz_fail("integer %lld has double %.17g", (long long)v->i, v->num);
      snprintf(num, sizeof num, "%lld", (long long)v->i);
    } else {
      if (!isfinite(v->num)) return 0;
      snprintf(num, sizeof num, "%.17g", v->num);
      if (!strpbrk(num, ".eEn")) strcat(num, ".0"); /* stays a non-integer on the way back */
    }
    out(o, num, strlen(num));
    return 1;
  case NNL_JSON_STRING:
    if (!v->str || v->str[v->len] != 0) fz_fail("string not NUL-terminated at its length");
    out_quoted(o, v->str, v->len);
    return 1;
  case NNL_JSON_ARRAY: {
    if (v->len && !v->items) fz_fail("array without items");
    int ok = 1;
    out(o, "[", 1);
    for (size_t i = 0; i < v->len; i++) {
      if (i) out(o, ",", 1);
      ok &= walk(&v->items[i], o, depth + 1);
    }
    out(o, "]", 1);
    return ok;
  }
  case NNL_JSON_OBJECT: {
    if (v->len && !v->items) fz_fail("object without items");
    int ok = 1;
    out(o, "{", 1);
    for (size_t i = 0; i < v->len; i++) {
      const nnl_json *m = &v->items[i];
      if (!m->key || m->key[m->keylen] != 0) fz_fail("key not NUL-terminated at its length");
      if (strlen(m->key) == m->keylen && nnl_json_get(v, m->key) != m)
        fz_fail("nnl_json_get('%s') finds another member (duplicate keys are rejected)", m->key);
      if (i) out(o, ",", 1);
      out_quoted(o, m->key, m->keylen);
      out(o, ":", 1);
      ok &= walk(m, o, depth + 1);
    }
    out(o, "}", 1);
    return ok;
  }
  }
  fz_fail("unknown node type %d", (int)v->type);
}

static int equal(const nnl_json *a, const nnl_json *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case NNL_JSON_NUMBER: return a->is_int == b->is_int && (a->is_int ? a->i == b->i : a->num == b->num);
  case NNL_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
  case NNL_JSON_ARRAY:
  case NNL_JSON_OBJECT:
    if (a->len != b->len) return 0;
    for (size_t i = 0; i < a->len; i++) {
      if (a->type == NNL_JSON_OBJECT &&
          (a->items[i].keylen != b->items[i].keylen ||
           memcmp(a->items[i].key, b->items[i].key, a->items[i].keylen)))
        return 0;
      if (!equal(&a->items[i], &b->items[i])) return 0;
    }
    return 1;
  default: return 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int depth = size && data[0] == ' ' ? 1024 : 64; /* a leading space asks for the deepest limit */
  nnl_json_doc *doc = nnl_json_parse((const char *)data, size, depth);
  if (!doc) {
    if (!nnl_last_error()[0]) fz_fail("failed without an error message");
  } else {
    obuf o = {0};
    const nnl_json *root = nnl_json_root(doc);
    if (walk(root, &o, 0)) {
      nnl_json_doc *back = nnl_json_parse(o.p, o.n, 1024);
      if (!back) fz_fail("re-parsing the written tree failed: %s\n%s", nnl_last_error(), o.p);
      if (!equal(root, nnl_json_root(back))) fz_fail("write + parse changed the tree:\n%s", o.p);
      nnl_json_free(back);
    }
    free(o.p);
    nnl_json_free(doc);
  }

  const char *path = fz_write_tmp("vocab.json", data, size);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushstring(L, path);
  fz_lua_call(L, lua_check, 2, "json");
  fz_lua_collect(L);
  return 0;
}
