/* fuzz_safetensors.c — libFuzzer target: a safetensors file, read from memory by the core
 * (every entry converted, the result written back and re-read the same) and loaded by nn.load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_lua.h"
#include "io/io.h"
#include "nnlua.h"

static lua_State *L;
static int lua_check;

/* nn.load, nn.save and nn.load again: the same names, dtypes, shapes and values. Then the file as a
 * training checkpoint: restored into a small model, optimizer, scheduler and loader, which must
 * still train one step (or fail with an error message). */
static const char *lua_side =
    "local ckpt = require 'nnlua.utils.checkpoint'\n"
    "local function resume(path)\n"
    "  nn.manual_seed(1)\n"
    "  local model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))\n"
    "  local opt = nn.optim.Adam(model:parameters(), {lr = 1e-2})\n"
    "  local sched = nn.optim.StepLR(opt, {step_size = 2})\n"
    "  local loader = nn.data.DataLoader(nn.data.TensorDataset(nn.randn(6, 3)), {batch_size = 2, shuffle = true})\n"
    "  local ok = pcall(ckpt.load_checkpoint, path, {model = model, optimizer = opt, scheduler = sched,\n"
    "                                                loader = loader, strict = false})\n"
    "  if not ok then return end\n"
    "  for batch in loader:iter() do end\n"
    "  local loss = model:forward(nn.randn(4, 3)):sum()\n"
    "  loss:backward(); opt:step(); sched:step()\n"
    "end\n"
    "return function(path)\n"
    "  local ok, err = pcall(resume, path)\n"
    "  fuzz_check(ok or type(err) == 'string', 'checkpoint: error is not a string')\n"
    "  local t, meta = nn.load(path)\n"
    "  for k, v in pairs(t) do\n"
    "    local n = 1\n"
    "    for d = 1, v:dim() do n = n * v:size(d) end\n"
    "    fuzz_check(n == v:numel(), 'numel of ' .. k)\n"
    "    if v:numel() > 0 and v:numel() < 4096 then v:float():sum() end\n"
    "  end\n"
    "  nn.save('copy.safetensors', t, meta)\n"
    "  local t2, meta2 = nn.load('copy.safetensors')\n"
    "  for k, v in pairs(t) do\n"
    "    local w = t2[k]\n"
    "    fuzz_check(w and w:dtype() == v:dtype() and w:dim() == v:dim(), 'round trip of ' .. k)\n"
    "    for d = 1, v:dim() do fuzz_check(w:size(d) == v:size(d), 'shape of ' .. k) end\n"
    "    if v:numel() > 0 then\n"
    "      local diff = v:dtype() == 'float32' and (v - w):abs():gt(0) or v:ne(w)\n"
    "      fuzz_check(diff:long():sum():item() == 0, 'values of ' .. k)\n"
    "    end\n"
    "  end\n"
    "  for k, v in pairs(meta) do fuzz_check(meta2[k] == v, 'metadata ' .. k) end\n"
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
  lua_check = fz_lua_ref_chunk(L, lua_side, "=safetensors");
  return 0;
}

static size_t itemsize(int dt) { return nnl_st_dtype_size(dt); }

/* Every entry: shape and size agree, the bytes lie inside the input, every value converts. */
static void check_entries(const nnl_safetensors *st, const uint8_t *data, size_t size, int borrowed) {
  for (size_t i = 0; i < st->n; i++) {
    const nnl_st_entry *e = &st->entries[i];
    if (e->ndim < 0 || e->ndim > NNL_IO_MAXDIM) fz_fail("entry %zu: ndim %d", i, e->ndim);
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] < 0) fz_fail("entry %zu: negative dim", i);
      numel *= (uint64_t)e->shape[d];
    }
    if (numel * itemsize(e->dtype) != e->nbytes) fz_fail("entry %zu: nbytes %zu", i, e->nbytes);
    if (borrowed && e->nbytes &&
        ((const uint8_t *)e->data < data || (const uint8_t *)e->data + e->nbytes > data + size))
      fz_fail("entry %zu: data outside the input", i);
    if (nnl_st_find(st, e->name) == NULL) fz_fail("entry %zu: nnl_st_find misses its name", i);
    if (numel == 0) continue;
    float *f = malloc(numel * sizeof *f);
    int64_t *l = malloc(numel * sizeof *l);
    if (!f || !l) fz_fail("out of memory");
    if (nnl_st_to_f32(f, e->data, e->dtype, numel) != 0) fz_fail("to_f32 failed: %s", nnl_last_error());
    int is_int = e->dtype != NNL_ST_F16 && e->dtype != NNL_ST_BF16 && e->dtype != NNL_ST_F32 &&
                 e->dtype != NNL_ST_F64 && e->dtype != NNL_ST_F8_E4M3 && e->dtype != NNL_ST_F8_E5M2;
    int rc = nnl_st_to_i64(l, e->data, e->dtype, numel);
    if (is_int && rc != 0 && e->dtype != NNL_ST_U64) fz_fail("to_i64 failed: %s", nnl_last_error());
    if (!is_int && rc == 0) fz_fail("to_i64 accepted float dtype %s", nnl_st_dtype_name(e->dtype));
    free(f);
    free(l);
  }
  for (size_t i = 0; i < st->nmeta; i++)
    if (!st->meta[i].key || !st->meta[i].value || nnl_st_meta_get(st, st->meta[i].key) == NULL)
      fz_fail("metadata %zu broken", i);
}

/* Serialize the parsed file and parse it again: the same entries and metadata come back. */
static void round_trip(const nnl_safetensors *st) {
  size_t len;
  void *out = nnl_st_serialize(st->entries, st->n, st->meta, st->nmeta, &len);
  if (!out) return; /* e.g. two names equal up to a \u0000, which C strings cannot tell apart */
  nnl_safetensors *back = nnl_st_parse(out, len, "round trip", 0);
  if (!back) fz_fail("re-reading our own output failed: %s", nnl_last_error());
  if (back->n != st->n || back->nmeta != st->nmeta) fz_fail("round trip changed the counts");
  for (size_t i = 0; i < st->n; i++) {
    const nnl_st_entry *a = &st->entries[i], *b = nnl_st_find(back, a->name);
    if (!b || b->dtype != a->dtype || b->ndim != a->ndim || b->nbytes != a->nbytes ||
        memcmp(a->shape, b->shape, a->ndim * sizeof *a->shape) ||
        (a->nbytes && memcmp(a->data, b->data, a->nbytes)))
      fz_fail("round trip changed tensor '%s'", a->name);
  }
  for (size_t i = 0; i < st->nmeta; i++) {
    const char *v = nnl_st_meta_get(back, st->meta[i].key);
    if (!v || strcmp(v, st->meta[i].value)) fz_fail("round trip changed metadata '%s'", st->meta[i].key);
  }
  nnl_st_free(back);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nnl_safetensors *st = nnl_st_parse(data, size, "fuzz", 0);
  nnl_safetensors *copy = nnl_st_parse(data, size, "fuzz", 1);
  if (!st != !copy) fz_fail("copy and borrow disagree");
  if (st) {
    check_entries(st, data, size, 1);
    check_entries(copy, data, size, 0);
    round_trip(st);
  } else if (!nnl_last_error()[0]) {
    fz_fail("failed without an error message");
  }
  nnl_st_free(st);
  nnl_st_free(copy);

  const char *path = fz_write_tmp("in.safetensors", data, size);
  lua_pushstring(L, path);
  fz_lua_call(L, lua_check, 1, "nn.load");
  fz_lua_collect(L);
  return 0;
}
