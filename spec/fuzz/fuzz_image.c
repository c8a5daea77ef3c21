/* fuzz_image.c — libFuzzer target: PNG/JPEG/BMP bytes through nnl_image_decode (every channel count),
 * small results re-encoded and decoded again (PNG and BMP exactly), and loaded by nn.image.load. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_lua.h"
#include "io/io.h"
#include "nnlua.h"

static lua_State *L;
static int lua_check;

/* nn.image.load, a PNG round trip of small images, and the batch loader with its transforms. */
static const char *lua_side =
    "local pipe = nn.image.pipeline{{kind = 'resize', h = 9, w = 7},\n"
    "  {kind = 'random_resized_crop', h = 5, w = 6}, {kind = 'hflip', p = 0.5}, {kind = 'to_tensor'},\n"
    "  {kind = 'normalize', mean = {0.5, 0.4, 0.3}, std = {0.2, 0.2, 0.2}}}\n"
    "local crop = nn.image.pipeline{{kind = 'resize', w = 6}, {kind = 'center_crop', h = 4, w = 4}}\n"
    "return function(path, channels)\n"
    "  local b = nn.image.load_batch({path, path}, pipe, {channels = 3, seed = channels})\n"
    "  fuzz_check(b:dim() == 4 and b:size(1) == 2 and b:size(2) == 3, 'batch size')\n"
    "  nn.image.load_batch({path}, crop, {channels = 1})\n"
    "  local img = nn.image.load(path, {channels = channels})\n"
    "  fuzz_check(img:dim() == 3 and img:dtype() == 'uint8', 'image tensor')\n"
    "  if img:numel() <= 4096 then\n"
    "    local f = nn.image.to_float(img)\n"
    "    nn.image.save(img, 'copy.png')\n"
    "    local back = nn.image.load('copy.png', {channels = img:size(1)})\n"
    "    fuzz_check(back:ne(img):long():sum():item() == 0, 'PNG round trip')\n"
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
  lua_check = fz_lua_ref_chunk(L, lua_side, "=image");
  return 0;
}

static void round_trip(const uint8_t *px, int h, int w, int c) {
  for (int fmt = NNL_IMG_PNG; fmt <= NNL_IMG_BMP; fmt++) {
    size_t len;
    void *enc = nnl_image_encode(px, h, w, c, fmt, 75, &len);
    if (!enc) fz_fail("encoding a decoded %dx%dx%d image failed: %s", h, w, c, nnl_last_error());
    int h2, w2, c2;
    uint8_t *back = nnl_image_decode(enc, len, "round trip", c, &h2, &w2, &c2);
    if (!back) fz_fail("decoding our own encoding failed: %s", nnl_last_error());
    if (h2 != h || w2 != w || c2 != c) fz_fail("round trip changed the size");
    /* BMP keeps RGB(A) only: grey and grey+alpha come back through RGB, still exact for grey */
    if (fmt == NNL_IMG_PNG && memcmp(back, px, (size_t)h * w * c)) fz_fail("PNG round trip changed pixels");
    free(back);
    free(enc);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int first_c = -1;
  for (int channels = 0; channels <= 4; channels++) {
    int h = -1, w = -1, c = -1;
    uint8_t *px = nnl_image_decode(data, size, "fuzz", channels, &h, &w, &c);
    if (!px) {
      if (!nnl_last_error()[0]) fz_fail("failed without an error message");
      if (channels == 0) break; /* the header is the same for every channel count */
      continue;
    }
    if (h < 1 || w < 1 || c < 1 || c > 4 || (channels && c != channels)) fz_fail("bad size %dx%dx%d", h, w, c);
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)h * w * c; i++) sum += px[i]; /* every byte is addressable */
    (void)sum;
    if (channels == 0) first_c = c;
    if ((size_t)h * w <= 4096 && (channels == 0 || channels == 4)) round_trip(px, h, w, c);
    free(px);
  }
  if (first_c < 0) return 0;
  const char *path = fz_write_tmp("in.img", data, size);
  lua_pushstring(L, path);
  lua_pushinteger(L, (lua_Integer)(size % 5));
  fz_lua_call(L, lua_check, 2, "nn.image.load");
  fz_lua_collect(L);
  return 0;
}
