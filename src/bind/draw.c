/* draw.c (bind) — pictures from Lua: nn.image.load / save (C x H x W tensors), nn.image.grid (a
 * captioned sheet of images) and nn.image.canvas, the raster that nn.plot draws charts with. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../io/draw.h"
#include "../io/io.h"
#include "args.h"
#include "bind.h"


#define CANVAS_MT "nnlua.Canvas"

/* A contiguous version of t, anchored on the Lua stack (one slot pushed either way). */
static nnl_tensor *anchored_contiguous(lua_State *L, nnl_tensor *t) {
  if (nnl_tensor_is_contiguous(t)) {
    lua_pushnil(L);
    return t;
  }
  nnl_tensor *c = nnl_raw_contiguous(t);
  nnlb_push(L, c);
  return c;
}

static nnl_tensor *push_empty(lua_State *L, nnl_dtype dt, int ndim, const int64_t *shape) {
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, NNL_TENSOR_MT);
  *ud = nnl_tensor_empty(dt, ndim, shape);
  if (!*ud) nnlb_fail(L);
  nnlb_account(L, *ud);
  return *ud;
}

static uint8_t to_byte(double v, int is_float) {
  if (is_float) v *= 255.0;
  if (!(v > 0)) return 0; /* NaN too */
  return v >= 255 ? 255 : (uint8_t)lrint(v);
}

/* Pixels of n images (n, c, h, w) of any dtype as interleaved bytes (n, h, w, c) in a new userdata
 * on the stack. Floats are taken as [0, 1] (or, with normalize, each image's min..max); integers
 * as 0..255; both are clamped. */
static uint8_t *to_hwc(lua_State *L, nnl_tensor *t, int64_t n, int64_t c, int64_t h, int64_t w,
                       int normalize) {
  nnl_tensor *ct = anchored_contiguous(L, t);
  size_t per = (size_t)(c * h * w);
  uint8_t *out = lua_newuserdatauv(L, n * per > 0 ? n * per : 1, 0);
  const void *src = nnl_tensor_data(ct);
  for (int64_t k = 0; k < n; k++) {
    double lo = 0, scale = 1;
    if (normalize && per) {
      double mn = INFINITY, mx = -INFINITY;
      for (size_t i = 0; i < per; i++) {
        size_t j = k * per + i;
        double v = ct->dtype == NNL_F32 ? ((const float *)src)[j]
                   : ct->dtype == NNL_I64 ? (double)((const int64_t *)src)[j] : ((const uint8_t *)src)[j];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      lo = mn;
      scale = mx > mn ? 255.0 / (mx - mn) : 0;
    }
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        for (int64_t ch = 0; ch < c; ch++) {
          size_t j = (size_t)(((k * c + ch) * h + y) * w + x);
          uint8_t *d = out + (size_t)(((k * h + y) * w + x) * c + ch);
          if (normalize) {
            double v = ct->dtype == NNL_F32 ? ((const float *)src)[j]
                       : ct->dtype == NNL_I64 ? (double)((const int64_t *)src)[j] : ((const uint8_t *)src)[j];
            *d = to_byte((v - lo) * scale, 0);
          } else if (ct->dtype == NNL_U8) {
            *d = ((const uint8_t *)src)[j];
          } else if (ct->dtype == NNL_F32) {
            *d = to_byte(((const float *)src)[j], 1);
          } else {
            *d = to_byte((double)((const int64_t *)src)[j], 0);
          }
        }
  }
  lua_remove(L, -2); /* the anchor: out is the only thing left on the stack */
  return out;
}

/* An image tensor's geometry: H x W (one channel) or C x H x W with C = 1..4. */
static void image_dims(lua_State *L, int arg, nnl_tensor *t, const char *fn, int64_t *c, int64_t *h,
                       int64_t *w) {
  char sb[96];
  if (t->ndim == 2) {
    *c = 1, *h = t->shape[0], *w = t->shape[1];
  } else if (t->ndim == 3 && t->shape[0] >= 1 && t->shape[0] <= 4) {
    *c = t->shape[0], *h = t->shape[1], *w = t->shape[2];
  } else {
    nnlb_argerror(L, arg, lua_pushfstring(L, "%s: expected an image of shape H x W or C x H x W "
                  "with C = 1..4, got %s", fn, nnl_shape_str(t, sb, sizeof sb)));
  }
  if (*h < 1 || *w < 1 || *h > NNL_CANVAS_MAX || *w > NNL_CANVAS_MAX)
    nnlb_argerror(L, arg, lua_pushfstring(L, "%s: image size %s is empty or too large", fn,
                  nnl_shape_str(t, sb, sizeof sb)));
}

/* ---- nn.image.load(path, {channels = 0..4}) -> uint8 C x H x W ---- */

static int opt_int_field(lua_State *L, int arg, const char *key, int def) {
  if (!lua_istable(L, arg)) return def;
  lua_getfield(L, arg, key);
  int isnum, v = (int)lua_tointegerx(L, -1, &isnum);
  int nil = lua_isnil(L, -1);
  lua_pop(L, 1);
  if (nil) return def;
  if (!isnum) return luaL_error(L, "option '%s' must be an integer", key);
  return v;
}

static int l_image_load(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  int channels = lua_isnumber(L, 2) ? (int)lua_tointeger(L, 2) : opt_int_field(L, 2, "channels", 0);
  if (channels < 0 || channels > 4) return nnlb_argerror(L, 2, "channels must be 0..4");
  /* the userdata first: between the decode and the copy nothing may raise while px is held */
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, NNL_TENSOR_MT);
  int h, w, c;
  uint8_t *px = nnl_image_load(path, channels, &h, &w, &c); /* px: (h, w, c) */
  if (!px) return luaL_error(L, "nn.image.load: %s", nnl_last_error());
  int64_t shape[3] = {c, h, w};
  *ud = nnl_tensor_empty(NNL_U8, 3, shape);
  if (!*ud) {
    free(px);
    return luaL_error(L, "nn.image.load: %s: %s", path, nnl_last_error());
  }
  uint8_t *dst = nnl_tensor_data(*ud); /* dst: (c, h, w) */
  size_t hw = (size_t)h * w;
  for (size_t i = 0; i < hw; i++)
    for (int k = 0; k < c; k++) dst[k * hw + i] = px[i * c + k];
  free(px);
  nnlb_account(L, *ud);
  return 1;
}

/* ---- nn.image.save(tensor, path, {quality = 90}) ---- */

static int l_image_save(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  const char *path = nnlb_checkstring(L, 2);
  int quality = lua_isnumber(L, 3) ? (int)lua_tointeger(L, 3) : opt_int_field(L, 3, "quality", 90);
  lua_settop(L, 3);
  int64_t c, h, w;
  image_dims(L, 1, t, "nn.image.save", &c, &h, &w);
  const uint8_t *px = to_hwc(L, t, 1, c, h, w, 0);
  if (nnl_image_save(path, px, (int)h, (int)w, (int)c, quality) != 0)
    return luaL_error(L, "nn.image.save: %s", nnl_last_error());
  return 0;
}

/* ---- colours: 0xRRGGBB or "#rrggbb" ---- */

static uint32_t check_color(lua_State *L, int arg, uint32_t def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) == LUA_TNUMBER) return (uint32_t)(nnlb_checkinteger(L, arg) & 0xFFFFFF);
  const char *s = lua_tostring(L, arg);
  if (s && *s == '#') s++;
  char *end = NULL;
  unsigned long v = s ? strtoul(s, &end, 16) : 0;
  if (!s || strlen(s) != 6 || *end)
    nnlb_argerror(L, arg, "colour expected (0xRRGGBB or \"#rrggbb\")");
  return (uint32_t)v;
}

/* ---- the canvas ---- */

typedef struct {
  nnl_canvas c;
  uint8_t px[]; /* px: (h, w, 3) */
} canvas_ud;

/* A pixel coordinate or extent: floored, and kept where int arithmetic cannot overflow. */
static int coord(lua_State *L, int arg) {
  double v = floor(nnlb_checknumber(L, arg));
  if (!(v > -1e7)) return v != v ? nnlb_argerror(L, arg, "coordinate is NaN") : -10000000;
  return v > 1e7 ? 10000000 : (int)v;
}

static nnl_canvas *check_canvas(lua_State *L) {
  return &((canvas_ud *)nnlb_checkudata(L, 1, CANVAS_MT))->c;
}

static int check_size(lua_State *L, int arg, const char *what) {
  lua_Integer v = nnlb_checkinteger(L, arg);
  if (v < 1 || v > NNL_CANVAS_MAX)
    nnlb_argerror(L, arg, lua_pushfstring(L, "%s must be 1..%d, got %d", what, NNL_CANVAS_MAX, (int)v));
  return (int)v;
}

static nnl_canvas *push_canvas(lua_State *L, int w, int h, uint32_t bg) {
  if ((long long)w * h > NNL_IMAGE_MAX_PIXELS)
    luaL_error(L, "nn.image.canvas: %d x %d pixels is over the limit", w, h);
  canvas_ud *u = lua_newuserdatauv(L, sizeof *u + (size_t)w * h * 3, 0);
  luaL_setmetatable(L, CANVAS_MT);
  nnl_canvas_init(&u->c, u->px, w, h, bg);
  return &u->c;
}

/* nn.image.canvas(width, height, background = 0xFFFFFF); coordinates are pixels from the top-left
 * corner (0, 0); a pixel's centre is at +0.5. */
static int l_canvas(lua_State *L) {
  int w = check_size(L, 1, "width"), h = check_size(L, 2, "height");
  push_canvas(L, w, h, check_color(L, 3, 0xFFFFFF));
  return 1;
}

static int c_size(lua_State *L) {
  nnl_canvas *c = check_canvas(L);
  lua_pushinteger(L, c->w);
  lua_pushinteger(L, c->h);
  return 2;
}

static int c_fill(lua_State *L) { /* fill(x, y, w, h, colour) */
  nnl_canvas *c = check_canvas(L);
  nnl_draw_fill(c, coord(L, 2), coord(L, 3), coord(L, 4), coord(L, 5), check_color(L, 6, 0));
  return 0;
}

static int c_rect(lua_State *L) { /* rect(x, y, w, h, colour, thickness = 1): an outline inside the box */
  nnl_canvas *c = check_canvas(L);
  int x = coord(L, 2), y = coord(L, 3), w = coord(L, 4), h = coord(L, 5);
  uint32_t col = check_color(L, 6, 0);
  lua_Integer t = nnlb_optinteger(L, 7, 1);
  if (t < 1 || t > 1000) return nnlb_argerror(L, 7, "thickness must be 1..1000");
  nnl_draw_fill(c, x, y, w, t, col);
  nnl_draw_fill(c, x, y + h - t, w, t, col);
  nnl_draw_fill(c, x, y, t, h, col);
  nnl_draw_fill(c, x + w - t, y, t, h, col);
  return 0;
}

static int c_line(lua_State *L) { /* line(x0, y0, x1, y1, colour, width = 1) */
  nnl_canvas *c = check_canvas(L);
  nnl_draw_line(c, nnlb_checknumber(L, 2), nnlb_checknumber(L, 3), nnlb_checknumber(L, 4),
                nnlb_checknumber(L, 5), nnlb_optnumber(L, 7, 1), check_color(L, 6, 0));
  return 0;
}

/* polyline(xs, ys, colour, width = 1): xs, ys are lists of numbers; nil/NaN breaks the line */
static int c_polyline(lua_State *L) {
  nnl_canvas *c = check_canvas(L);
  nnlb_checktype(L, 2, LUA_TTABLE);
  nnlb_checktype(L, 3, LUA_TTABLE);
  uint32_t col = check_color(L, 4, 0);
  double width = nnlb_optnumber(L, 5, 1);
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n) return luaL_error(L, "polyline: xs has %d points, ys %d", (int)n, (int)luaL_len(L, 3));
  double *xy = lua_newuserdatauv(L, (size_t)(n ? n : 1) * 2 * sizeof(double), 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    lua_geti(L, 3, i + 1);
    xy[i] = lua_isnumber(L, -2) ? lua_tonumber(L, -2) : NAN;
    xy[n + i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
    lua_pop(L, 2);
  }
  nnl_draw_polyline(c, xy, xy + n, (size_t)n, width, col);
  return 0;
}

/* text(x, y, s, colour, scale = 1, up = false): (x, y) is the top-left corner (bottom-left when up) */
static int c_text(lua_State *L) {
  nnl_canvas *c = check_canvas(L);
  size_t n;
  const char *s = nnlb_checklstring(L, 4, &n);
  lua_Integer scale = nnlb_optinteger(L, 6, 1);
  if (scale < 1 || scale > 64) return nnlb_argerror(L, 6, "scale must be 1..64");
  nnl_draw_text(c, coord(L, 2), coord(L, 3), s, n, (int)scale, lua_toboolean(L, 7), check_color(L, 5, 0));
  return 0;
}

/* nn.image.text_width(s, scale = 1) -> width, height in pixels (also a canvas method) */
static int l_text_width(lua_State *L) {
  int arg = luaL_testudata(L, 1, CANVAS_MT) ? 2 : 1;
  size_t n;
  const char *s = nnlb_checklstring(L, arg, &n);
  lua_Integer sc = nnlb_optinteger(L, arg + 1, 1);
  if (sc < 1 || sc > 64) return nnlb_argerror(L, arg + 1, "scale must be 1..64");
  int scale = (int)sc, lines;
  lua_pushinteger(L, nnl_text_width(s, n, scale, &lines));
  lua_pushinteger(L, lines ? (lines * NNL_FONT_CH - 1) * scale : 0);
  return 2;
}

/* blit(image, x, y, zoom = 1): image is H x W or C x H x W (uint8 0..255 or float [0, 1]) */
static int c_blit(lua_State *L) {
  nnl_canvas *c = check_canvas(L);
  nnl_tensor *t = nnlb_check(L, 2);
  int x = coord(L, 3), y = coord(L, 4);
  lua_Integer zoom = nnlb_optinteger(L, 5, 1);
  if (zoom < 1 || zoom > 64) return nnlb_argerror(L, 5, "zoom must be 1..64");
  int64_t ch, h, w;
  image_dims(L, 2, t, "blit", &ch, &h, &w);
  const uint8_t *px = to_hwc(L, t, 1, ch, h, w, 0);
  nnl_draw_blit(c, x, y, px, (int)h, (int)w, (int)ch, (int)zoom);
  return 0;
}

static int c_clip(lua_State *L) { /* clip(x, y, w, h), or clip() for the whole canvas */
  nnl_canvas *c = check_canvas(L);
  if (lua_isnoneornil(L, 2))
    nnl_canvas_clip(c, 0, 0, -1, -1);
  else
    nnl_canvas_clip(c, coord(L, 2), coord(L, 3), coord(L, 4), coord(L, 5));
  return 0;
}

static nnl_tensor *canvas_tensor(lua_State *L, const nnl_canvas *c) {
  int64_t shape[3] = {3, c->h, c->w};
  nnl_tensor *t = push_empty(L, NNL_U8, 3, shape);
  uint8_t *dst = nnl_tensor_data(t); /* dst: (3, h, w) */
  size_t hw = (size_t)c->h * c->w;
  for (size_t i = 0; i < hw; i++)
    for (int k = 0; k < 3; k++) dst[k * hw + i] = c->px[i * 3 + k];
  return t;
}

static int c_tensor(lua_State *L) { /* tensor() -> uint8 3 x H x W copy */
  canvas_tensor(L, check_canvas(L));
  return 1;
}

static int c_save(lua_State *L) { /* save(path, quality = 90): PNG or JPEG by extension */
  nnl_canvas *c = check_canvas(L);
  const char *path = nnlb_checkstring(L, 2);
  if (nnl_image_save(path, c->px, c->h, c->w, 3, (int)nnlb_optinteger(L, 3, 90)) != 0)
    return luaL_error(L, "canvas:save: %s", nnl_last_error());
  return 0;
}

static int c_tostring(lua_State *L) {
  nnl_canvas *c = check_canvas(L);
  lua_pushfstring(L, "Canvas(%d x %d)", c->w, c->h);
  return 1;
}

/* ---- nn.image.grid(images, {nrow, padding, zoom, labels, background, color, scale, normalize}) ---- */

static int l_grid(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (!lua_isnoneornil(L, 2)) nnlb_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  char sb[96];
  int64_t n, c, h, w;
  if (t->ndim == 4 && t->shape[1] >= 1 && t->shape[1] <= 4) {
    n = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
  } else if (t->ndim == 3) {
    n = t->shape[0], c = 1, h = t->shape[1], w = t->shape[2];
  } else {
    return nnlb_argerror(L, 1, lua_pushfstring(L, "nn.image.grid: expected N x C x H x W (C = 1..4) "
                         "or N x H x W images, got %s", nnl_shape_str(t, sb, sizeof sb)));
  }
  if (n < 1 || h < 1 || w < 1 || h > NNL_CANVAS_MAX || w > NNL_CANVAS_MAX)
    return nnlb_argerror(L, 1, lua_pushfstring(L, "nn.image.grid: no images or bad size %s",
                         nnl_shape_str(t, sb, sizeof sb)));
  int nrow = opt_int_field(L, 2, "nrow", 8), pad = opt_int_field(L, 2, "padding", 2);
  int zoom = opt_int_field(L, 2, "zoom", 1), scale = opt_int_field(L, 2, "scale", 1);
  if (nrow < 1) return luaL_error(L, "nn.image.grid: nrow must be >= 1, got %d", nrow);
  if (pad < 0 || pad > 1024) return luaL_error(L, "nn.image.grid: padding must be 0..1024, got %d", pad);
  if (zoom < 1 || zoom > 64) return luaL_error(L, "nn.image.grid: zoom must be 1..64, got %d", zoom);
  if (scale < 1 || scale > 16) return luaL_error(L, "nn.image.grid: scale must be 1..16, got %d", scale);
  int normalize = 0, has_labels = 0;
  uint32_t bg = 0, fg = 0xFFFFFF;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "normalize");
    normalize = lua_toboolean(L, -1);
    lua_getfield(L, 2, "background");
    bg = check_color(L, lua_gettop(L), 0);
    lua_getfield(L, 2, "color");
    fg = check_color(L, lua_gettop(L), 0xFFFFFF);
    lua_pop(L, 3);
    lua_getfield(L, 2, "labels");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1)) return luaL_error(L, "nn.image.grid: labels must be a list of strings");
      has_labels = 1;
    }
  } else {
    lua_pushnil(L);
  }
  int labels = lua_gettop(L); /* 3: the labels table or nil */
  int64_t cols = n < nrow ? n : nrow, rows = (n + cols - 1) / cols;
  int64_t cw = w * zoom, chh = h * zoom + (has_labels ? NNL_FONT_CH * scale + 2 : 0);
  int64_t W = cols * cw + (cols + 1) * pad, H = rows * chh + (rows + 1) * pad;
  if (W > NNL_CANVAS_MAX || H > NNL_CANVAS_MAX)
    return luaL_error(L, "nn.image.grid: the sheet would be %d x %d pixels (at most %d a side)",
                      (int)W, (int)H, NNL_CANVAS_MAX);
  nnl_canvas *cv = push_canvas(L, (int)W, (int)H, bg);
  const uint8_t *px = to_hwc(L, t, n, c, h, w, normalize);
  for (int64_t k = 0; k < n; k++) {
    int x = (int)(pad + (k % cols) * (cw + pad)), y = (int)(pad + (k / cols) * (chh + pad));
    nnl_draw_blit(cv, x, y, px + (size_t)(k * h * w * c), (int)h, (int)w, (int)c, zoom);
    if (!has_labels) continue;
    lua_geti(L, labels, k + 1);
    size_t len;
    const char *s = lua_isnil(L, -1) ? NULL : luaL_tolstring(L, -1, &len);
    if (s) {
      int tw = nnl_text_width(s, len, scale, NULL);
      nnl_canvas_clip(cv, x, y, (int)cw, (int)chh); /* a long caption is cut at its cell */
      int tx = tw < cw ? x + (int)(cw - tw) / 2 : x;
      nnl_draw_text(cv, tx, y + (int)(h * zoom) + 2, s, len, scale, 0, fg);
      nnl_canvas_clip(cv, 0, 0, -1, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  canvas_tensor(L, cv);
  return 1;
}

static const luaL_Reg canvas_methods[] = {
    {"size", c_size}, {"fill", c_fill}, {"rect", c_rect}, {"line", c_line},
    {"polyline", c_polyline}, {"text", c_text}, {"text_width", l_text_width}, {"blit", c_blit},
    {"clip", c_clip}, {"tensor", c_tensor}, {"save", c_save}, {NULL, NULL}};

static const luaL_Reg image_funcs[] = {
    {"load", l_image_load}, {"save", l_image_save}, {"grid", l_grid}, {"canvas", l_canvas},
    {"text_width", l_text_width}, {NULL, NULL}};

void nnlb_open_image(lua_State *L, int module) {
  luaL_newmetatable(L, CANVAS_MT);
  lua_newtable(L);
  luaL_setfuncs(L, canvas_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, c_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_getsubtable(L, module, "image"); /* image_ops.c adds its functions to the same table */
  luaL_setfuncs(L, image_funcs, 0);
  lua_pop(L, 1);
}
