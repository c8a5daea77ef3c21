/* fuzz_idx.c — libFuzzer target: an IDX file, plain and gzip. The core parses the input from memory
 * and from a file, as is and gzipped by the harness (all must agree); nn.io.read_idx loads it. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_lua.h"
#include "io/io.h"
#include "nnlua.h"

static lua_State *L;
static int lua_check;

/* nn.io.read_idx in each mode, then write_idx (plain and gzip) and read back the same. */
static const char *lua_side =
    "return function(path)\n"
    "  local t = nn.io.read_idx(path)\n"
    "  for _, as in ipairs{'uint8', 'float32', 'int64'} do pcall(nn.io.read_idx, path, as, 0.5) end\n"
    "  for _, gz in ipairs{false, true} do\n"
    "    local ok, err = pcall(nn.io.write_idx, 'copy.idx', t, {gz = gz})\n"
    "    if ok then\n"
    "      local back = nn.io.read_idx('copy.idx', t:dtype())\n"
    "      fuzz_check(back:dim() == t:dim(), 'round trip dims')\n"
    "      for d = 1, t:dim() do fuzz_check(back:size(d) == t:size(d), 'round trip size') end\n"
    "      if t:numel() > 0 then\n"
    "        local diff = t:dtype() == 'float32' and (t - back):abs():gt(0) or t:ne(back)\n"
    "        fuzz_check(diff:long():sum():item() == 0, 'round trip values')\n"
    "      end\n"
    "    else\n"
    "      fuzz_check(type(err) == 'string', 'error message')\n"
    "    end\n"
    "  end\n"
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
  lua_check = fz_lua_ref_chunk(L, lua_side, "=idx");
  return 0;
}

static uint8_t *gzip(const uint8_t *data, size_t size, size_t *outlen) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fz_fail("deflateInit2");
  size_t cap = deflateBound(&zs, size) + 32;
  uint8_t *out = malloc(cap);
  if (!out) fz_fail("out of memory");
  zs.next_in = (Bytef *)(uintptr_t)data;
  zs.avail_in = (uInt)size;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) fz_fail("deflate");
  *outlen = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

static void check_one(const nnl_idx *x, int as) {
  if (x->ndim < 0 || x->ndim > NNL_IO_MAXDIM || x->as != as || !nnl_idx_type_size(x->type))
    fz_fail("bad header fields");
  size_t n = 1;
  for (int i = 0; i < x->ndim; i++) n *= (size_t)x->dims[i];
  if (n != x->numel) fz_fail("numel %zu, dims say %zu", x->numel, n);
  if (x->numel && !x->data) fz_fail("no data");
}

static int same(const nnl_idx *a, const nnl_idx *b) {
  if (!a || !b) return !a && !b;
  size_t esz = a->as == NNL_IDX_AS_U8 ? 1 : a->as == NNL_IDX_AS_F32 ? 4 : 8;
  return a->type == b->type && a->ndim == b->ndim && a->numel == b->numel &&
         !memcmp(a->dims, b->dims, a->ndim * sizeof *a->dims) &&
         (!a->numel || !memcmp(a->data, b->data, a->numel * esz));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t zlen;
  uint8_t *z = gzip(data, size, &zlen);
  const char *path = fz_write_tmp("in.idx", data, size);
  int is_gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  for (int as = NNL_IDX_AS_U8; as <= NNL_IDX_AS_I64; as++) {
    nnl_idx *mem = nnl_idx_parse(data, size, "fuzz", as);
    nnl_idx *file = nnl_idx_load(path, as);
    nnl_idx *zmem = nnl_idx_parse(z, zlen, "fuzz.gz", as);
    if (mem) check_one(mem, as);
    if (zmem) check_one(zmem, as);
    if (!same(mem, file)) fz_fail("memory and file reads disagree (as %d)", as);
    if (!is_gz && !same(mem, zmem)) fz_fail("plain and gzip reads disagree (as %d)", as);
    nnl_idx_free(mem);
    nnl_idx_free(file);
    nnl_idx_free(zmem);
  }
  free(z);

  lua_pushstring(L, path);
  fz_lua_call(L, lua_check, 1, "nn.io.read_idx");
  fz_lua_collect(L);
  return 0;
}
