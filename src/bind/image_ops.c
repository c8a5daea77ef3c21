/* image_ops.c (bind) — image transforms from Lua: nn.image.resize / crop / hflip / to_float /
 * normalize, compiled transform pipelines, nn.image.load_batch (files to a batch in C), listdir. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/tensor.h"
#include "../io/image_batch.h"
#include "../kernels/imgproc.h"
#include "args.h"
#include "bind.h"


#define PIPE_MT "nnlua.ImagePipeline"
#define DIR_MT "nnlua.io.dir"

static nnl_tensor *push_empty(lua_State *L, nnl_dtype dt, int ndim, const int64_t *shape) {
  nnl_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, NNL_TENSOR_MT);
  *ud = nnl_tensor_empty(dt, ndim, shape);
  if (!*ud) nnlb_fail(L);
  nnlb_account(L, *ud);
  return *ud;
}

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

/* An image argument: uint8 or float32 with at least `mindim` dims, the last two H x W (non-empty,
 * at most 65535); *planes gets the product of the others. */
static nnl_tensor *check_image(lua_State *L, int arg, const char *fn, int mindim, int float_only,
                               int *planes) {
  nnl_tensor *t = nnlb_check(L, arg);
  char sb[96];
  if (t->dtype == NNL_I64 || (float_only && t->dtype != NNL_F32))
    luaL_error(L, "%s: expected a %s image, got %s", fn, float_only ? "float32" : "uint8 or float32",
               nnl_dtype_name(t->dtype));
  if (t->ndim < mindim)
    luaL_error(L, "%s: expected an image of shape %s, got %s", fn,
               mindim == 3 ? "C x H x W (or N x C x H x W)" : "H x W, C x H x W or N x C x H x W",
               nnl_shape_str(t, sb, sizeof sb));
  int64_t h = t->shape[t->ndim - 2], w = t->shape[t->ndim - 1];
  if (h < 1 || w < 1 || h > 65535 || w > 65535)
    luaL_error(L, "%s: image size %s is empty or larger than 65535", fn, nnl_shape_str(t, sb, sizeof sb));
  int64_t p = nnl_tensor_numel(t) / (h * w);
  if (p < 1 || p > INT_MAX) luaL_error(L, "%s: image %s is empty or too large", fn, nnl_shape_str(t, sb, sizeof sb));
  *planes = (int)p;
  return t;
}

static int check_size(lua_State *L, int arg, const char *fn, const char *what) {
  lua_Integer v = nnlb_checkinteger(L, arg);
  if (v < 1 || v > 65535) luaL_error(L, "%s: %s must be in 1..65535, got %d", fn, what, (int)v);
  return (int)v;
}

/* Push a tensor shaped like t but with last two dims h x w. */
static nnl_tensor *push_like(lua_State *L, const nnl_tensor *t, nnl_dtype dt, int h, int w) {
  int64_t shape[NNL_MAXDIM];
  for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
  shape[t->ndim - 2] = h;
  shape[t->ndim - 1] = w;
  return push_empty(L, dt, t->ndim, shape);
}

/* ---- nn.image.resize(img, h, w): bilinear, align_corners = false, no antialias ---- */

static int l_resize(lua_State *L) {
  int planes;
  nnl_tensor *t = check_image(L, 1, "nn.image.resize", 2, 0, &planes);
  int oh = check_size(L, 2, "nn.image.resize", "height"), ow = check_size(L, 3, "nn.image.resize", "width");
  lua_settop(L, 3);
  nnl_tensor *c = anchored_contiguous(L, t);
  int ih = (int)t->shape[t->ndim - 2], iw = (int)t->shape[t->ndim - 1];
  nnl_tensor *o = push_like(L, t, t->dtype, oh, ow);
  if (t->dtype == NNL_F32)
    nnl_img_resize_f32(nnl_tensor_data(o), nnl_tensor_data(c), planes, ih, iw, iw, (int64_t)ih * iw, oh, ow);
  else
    nnl_img_resize_u8(nnl_tensor_data(o), nnl_tensor_data(c), planes, ih, iw, iw, (int64_t)ih * iw, oh, ow);
  return 1;
}

/* ---- nn.image.crop(img, top, left, h, w): 1-based corner; outside the image reads as 0 ---- */

static int l_crop(lua_State *L) {
  int planes;
  nnl_tensor *t = check_image(L, 1, "nn.image.crop", 2, 0, &planes);
  lua_Integer top = nnlb_checkinteger(L, 2), left = nnlb_checkinteger(L, 3);
  int h = check_size(L, 4, "nn.image.crop", "height"), w = check_size(L, 5, "nn.image.crop", "width");
  if (top < -65535 || top > 65536 || left < -65535 || left > 65536)
    return luaL_error(L, "nn.image.crop: corner (%d, %d) is too far outside the image", (int)top, (int)left);
  lua_settop(L, 5);
  nnl_tensor *c = anchored_contiguous(L, t);
  int ih = (int)t->shape[t->ndim - 2], iw = (int)t->shape[t->ndim - 1];
  nnl_tensor *o = push_like(L, t, t->dtype, h, w);
  if (t->dtype == NNL_F32)
    nnl_img_crop_f32(nnl_tensor_data(o), nnl_tensor_data(c), planes, ih, iw, (int)top - 1, (int)left - 1, h, w);
  else
    nnl_img_crop_u8(nnl_tensor_data(o), nnl_tensor_data(c), planes, ih, iw, (int)top - 1, (int)left - 1, h, w);
  return 1;
}

/* ---- nn.image.hflip(img) ---- */

static int l_hflip(lua_State *L) {
  int planes;
  nnl_tensor *t = check_image(L, 1, "nn.image.hflip", 2, 0, &planes);
  lua_settop(L, 1);
  nnl_tensor *c = anchored_contiguous(L, t);
  int h = (int)t->shape[t->ndim - 2], w = (int)t->shape[t->ndim - 1];
  nnl_tensor *o = push_like(L, t, t->dtype, h, w);
  if (t->dtype == NNL_F32) nnl_img_hflip_f32(nnl_tensor_data(o), nnl_tensor_data(c), planes, h, w);
  else nnl_img_hflip_u8(nnl_tensor_data(o), nnl_tensor_data(c), planes, h, w);
  return 1;
}

/* ---- nn.image.to_float(img): uint8 -> float32 / 255 (ToTensor) ---- */

static int l_to_float(lua_State *L) {
  nnl_tensor *t = nnlb_check(L, 1);
  if (t->dtype != NNL_U8)
    return luaL_error(L, "nn.image.to_float: expected a uint8 image, got %s (already converted?)",
                      nnl_dtype_name(t->dtype));
  lua_settop(L, 1);
  nnl_tensor *c = anchored_contiguous(L, t);
  nnl_tensor *o = push_empty(L, NNL_F32, t->ndim, t->shape);
  nnl_img_to_float(nnl_tensor_data(o), nnl_tensor_data(c), nnl_tensor_numel(t));
  return 1;
}

/* ---- nn.image.normalize(img, mean, std): per channel (dim -3), float32 ---- */

/* A number or a list of 1..4 numbers into v; returns the count. */
static int number_list(lua_State *L, int arg, const char *fn, const char *what, float *v) {
  if (lua_type(L, arg) == LUA_TNUMBER) {
    v[0] = (float)lua_tonumber(L, arg);
    return 1;
  }
  if (!lua_istable(L, arg)) luaL_error(L, "%s: %s must be a number or a list of numbers, got %s", fn, what,
                                       luaL_typename(L, arg));
  int n = (int)luaL_len(L, arg);
  if (n < 1 || n > NNL_IMGPIPE_MAXCH) luaL_error(L, "%s: %s must hold 1 to 4 numbers, got %d", fn, what, n);
  for (int i = 0; i < n; i++) {
    lua_geti(L, arg, i + 1);
    int ok;
    lua_Number x = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: %s[%d] must be a number, got %s", fn, what, i + 1, luaL_typename(L, -1));
    v[i] = (float)x;
    lua_pop(L, 1);
  }
  return n;
}

static int l_normalize(lua_State *L) {
  int planes;
  nnl_tensor *t = check_image(L, 1, "nn.image.normalize", 3, 1, &planes);
  float mean[NNL_IMGPIPE_MAXCH], std[NNL_IMGPIPE_MAXCH];
  int nm = number_list(L, 2, "nn.image.normalize", "mean", mean);
  int ns = number_list(L, 3, "nn.image.normalize", "std", std);
  int c = (int)t->shape[t->ndim - 3];
  if (nm != ns || (nm != 1 && nm != c))
    return luaL_error(L, "nn.image.normalize: %d mean and %d std values for %d channels", nm, ns, c);
  if (c > NNL_IMGPIPE_MAXCH && nm != 1)
    return luaL_error(L, "nn.image.normalize: at most 4 channels, got %d", c);
  for (int k = 0; k < nm; k++)
    if (std[k] == 0) return luaL_error(L, "nn.image.normalize: std[%d] is zero", k + 1);
  for (int k = nm; k < NNL_IMGPIPE_MAXCH; k++) mean[k] = mean[0], std[k] = std[0];
  lua_settop(L, 3);
  nnl_tensor *src = anchored_contiguous(L, t);
  nnl_tensor *o = push_empty(L, NNL_F32, t->ndim, t->shape);
  int64_t hw = t->shape[t->ndim - 2] * t->shape[t->ndim - 1];
  const float *x = nnl_tensor_data(src);
  float *y = nnl_tensor_data(o);
  if (c > NNL_IMGPIPE_MAXCH) { /* one value for every channel: all planes alike */
    nnl_img_normalize(y, x, 1, (int64_t)planes * hw, mean, std);
    return 1;
  }
  for (int n = 0; n < planes / c; n++)
    nnl_img_normalize(y + (int64_t)n * c * hw, x + (int64_t)n * c * hw, c, hw, mean, std);
  return 1;
}

/* ---- nn.image.pipeline{steps} -> a compiled pipeline ---- */

static const char *const kinds[] = {"resize", "center_crop", "random_resized_crop", "hflip",
                                    "to_tensor", "normalize", NULL};

static int int_field(lua_State *L, int t, const char *k, int def) {
  lua_getfield(L, t, k);
  int ok = 1, v = lua_isnil(L, -1) ? def : (int)lua_tointegerx(L, -1, &ok);
  if (!lua_isnil(L, -1) && !ok) luaL_error(L, "nn.image.pipeline: field '%s' must be an integer", k);
  lua_pop(L, 1);
  return v;
}

static double num_field(lua_State *L, int t, const char *k, double def) {
  lua_getfield(L, t, k);
  int ok = 1;
  double v = lua_isnil(L, -1) ? def : lua_tonumberx(L, -1, &ok);
  if (!ok) luaL_error(L, "nn.image.pipeline: field '%s' must be a number", k);
  lua_pop(L, 1);
  return v;
}

static void pair_field(lua_State *L, int t, const char *k, double *v) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) {
    int ok0 = 0, ok1 = 0;
    if (lua_istable(L, -1) && luaL_len(L, -1) == 2) {
      lua_geti(L, -1, 1);
      v[0] = lua_tonumberx(L, -1, &ok0);
      lua_geti(L, -2, 2);
      v[1] = lua_tonumberx(L, -1, &ok1);
      lua_pop(L, 2);
    }
    if (!ok0 || !ok1) luaL_error(L, "nn.image.pipeline: field '%s' must be a pair of numbers {lo, hi}", k);
  }
  lua_pop(L, 1);
}

static int l_pipeline(lua_State *L) {
  nnlb_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  if (n > NNL_IMGPIPE_MAXOPS)
    return luaL_error(L, "nn.image.pipeline: %d steps (at most %d)", n, NNL_IMGPIPE_MAXOPS);
  nnl_imgpipe *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PIPE_MT);
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "nn.image.pipeline: step %d must be a table", i + 1);
    int s = lua_gettop(L);
    nnl_imgop *o = &p->ops[i];
    lua_getfield(L, s, "kind");
    const char *kind = lua_tostring(L, -1);
    for (o->kind = 0; kind && kinds[o->kind] && strcmp(kinds[o->kind], kind); o->kind++) {}
    if (!kind || !kinds[o->kind])
      return luaL_error(L, "nn.image.pipeline: step %d: unknown kind '%s'", i + 1, kind ? kind : "nil");
    lua_pop(L, 1);
    o->h = int_field(L, s, "h", 0);
    o->w = int_field(L, s, "w", 0);
    o->max_size = int_field(L, s, "max_size", 0);
    o->scale[0] = 0.08, o->scale[1] = 1.0, o->ratio[0] = 3.0 / 4.0, o->ratio[1] = 4.0 / 3.0;
    pair_field(L, s, "scale", o->scale);
    pair_field(L, s, "ratio", o->ratio);
    o->p = num_field(L, s, "p", 0.5);
    if (o->kind == NNL_IMGOP_NORMALIZE) {
      lua_getfield(L, s, "mean");
      lua_getfield(L, s, "std");
      int nm = number_list(L, s + 1, "nn.image.pipeline", "mean", o->mean);
      int ns = number_list(L, s + 2, "nn.image.pipeline", "std", o->std);
      if (nm != ns) return luaL_error(L, "nn.image.pipeline: step %d: %d mean and %d std values", i + 1, nm, ns);
      o->nch = nm;
      lua_pop(L, 2);
    }
    lua_settop(L, s - 1);
    p->n = i + 1;
  }
  int c = 3; /* checked here for the common case; load_batch checks its own channel count */
  for (int i = 0; i < n; i++)
    if (p->ops[i].kind == NNL_IMGOP_NORMALIZE && p->ops[i].nch != 1) c = p->ops[i].nch;
  if (nnl_imgpipe_check(p, c)) return luaL_error(L, "nn.image.pipeline: %s", nnl_last_error());
  return 1;
}

static int pipe_tostring(lua_State *L) {
  const nnl_imgpipe *p = nnlb_checkudata(L, 1, PIPE_MT);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "ImagePipeline(");
  for (int i = 0; i < p->n; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, kinds[p->ops[i].kind]);
  }
  luaL_addstring(&b, ")");
  luaL_pushresult(&b);
  return 1;
}

/* pipe:out_size() -> h, w, dtype; or nil when the size depends on the input */
static int pipe_out_size(lua_State *L) {
  const nnl_imgpipe *p = nnlb_checkudata(L, 1, PIPE_MT);
  int fl, h, w;
  if (nnl_imgpipe_out_size(p, &fl, &h, &w)) return 0;
  lua_pushinteger(L, h);
  lua_pushinteger(L, w);
  lua_pushstring(L, fl ? "float32" : "uint8");
  return 3;
}

/* ---- nn.image.load_batch(paths, pipeline, {channels = 3, seed = 0, epoch = 0, indices =, threads =}) ---- */

static lua_Integer opt_field(lua_State *L, int arg, const char *k, lua_Integer def) {
  if (!lua_istable(L, arg)) return def;
  lua_getfield(L, arg, k);
  int ok = 1;
  lua_Integer v = lua_isnil(L, -1) ? def : lua_tointegerx(L, -1, &ok);
  if (!lua_isnil(L, -1) && !ok)
    luaL_error(L, "nn.image.load_batch: option '%s' must be an integer, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static int l_load_batch(lua_State *L) {
  const char *fn = "nn.image.load_batch";
  nnlb_checktype(L, 1, LUA_TTABLE);
  const nnl_imgpipe *p = nnlb_checkudata(L, 2, PIPE_MT);
  if (!lua_isnoneornil(L, 3)) nnlb_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_Integer n = luaL_len(L, 1), channels = opt_field(L, 3, "channels", 3);
  uint64_t seed = (uint64_t)opt_field(L, 3, "seed", 0), epoch = (uint64_t)opt_field(L, 3, "epoch", 0);
  lua_Integer threads = opt_field(L, 3, "threads", 0);
  if (n < 1 || n > (1 << 24)) return luaL_error(L, "%s: expected 1 to 16777216 paths, got %d", fn, (int)n);
  if (channels < 1 || channels > 4) return luaL_error(L, "%s: channels must be 1..4, got %d", fn, (int)channels);
  if (threads < 0 || threads > 1024) return luaL_error(L, "%s: threads must be 0..1024, got %d", fn, (int)threads);
  if (nnl_imgpipe_check(p, (int)channels)) return luaL_error(L, "%s: %s", fn, nnl_last_error());
  int fl, h, w;
  if (nnl_imgpipe_out_size(p, &fl, &h, &w))
    return luaL_error(L, "%s: the transforms give images whose size depends on the file; end them with "
                      "CenterCrop, RandomResizedCrop or Resize{h, w}", fn);
  /* Lua-owned arrays (4, 5, 6): an error below frees them with the rest of the stack */
  const char **paths = lua_newuserdatauv(L, (size_t)n * sizeof *paths, 0);
  uint64_t *keys = lua_newuserdatauv(L, (size_t)n * sizeof *keys, 0);
  char *errs = lua_newuserdatauv(L, (size_t)n * NNL_IMGBATCH_ERRLEN, 0);
  if (lua_istable(L, 3)) lua_getfield(L, 3, "indices"); /* 7 */
  else lua_pushnil(L);
  if (!lua_isnil(L, 7) && !lua_istable(L, 7))
    return luaL_error(L, "%s: option 'indices' must be a list of integers, got %s", fn, luaL_typename(L, 7));
  for (lua_Integer i = 0; i < n; i++) {
    if (lua_geti(L, 1, i + 1) != LUA_TSTRING)
      return luaL_error(L, "%s: path %d must be a string, got %s", fn, (int)(i + 1), luaL_typename(L, -1));
    paths[i] = lua_tostring(L, -1); /* anchored by table 1 */
    lua_pop(L, 1);
    lua_Integer index = i + 1;
    if (lua_istable(L, 7)) {
      int ok;
      lua_geti(L, 7, i + 1);
      index = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_error(L, "%s: indices[%d] must be an integer", fn, (int)(i + 1));
      lua_pop(L, 1);
    }
    keys[i] = nnl_imgrng_key(seed, epoch, (uint64_t)index);
  }
  int64_t shape[4] = {n, channels, h, w};
  nnl_tensor *out = push_empty(L, fl ? NNL_F32 : NNL_U8, 4, shape);
  int failed = nnl_image_batch_load(nnl_tensor_data(out), fl, (int)channels, h, w, p, paths, keys, (int)n,
                                    (int)threads, errs);
  if (failed) {
    lua_Integer first = 0;
    while (first < n && !errs[first * NNL_IMGBATCH_ERRLEN]) first++;
    if (failed == 1) return luaL_error(L, "%s: %s", fn, errs + first * NNL_IMGBATCH_ERRLEN);
    return luaL_error(L, "%s: %s (and %d more files failed)", fn, errs + first * NNL_IMGBATCH_ERRLEN, failed - 1);
  }
  return 1;
}

/* ---- the per-image random stream, for Lua code that must draw exactly what C draws ---- */

static int l_rng_key(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nnl_imgrng_key((uint64_t)nnlb_checkinteger(L, 1),
                                                 (uint64_t)nnlb_checkinteger(L, 2),
                                                 (uint64_t)nnlb_checkinteger(L, 3)));
  return 1;
}

static int l_uniform(lua_State *L) {
  lua_pushnumber(L, nnl_imgrng_at((uint64_t)nnlb_checkinteger(L, 1), (uint64_t)nnlb_checkinteger(L, 2)));
  return 1;
}

/* ---- nn.image._listdir(path) -> names (sorted bytewise), is_dir (symlinks followed) ---- */

static int dir_gc(lua_State *L) {
  DIR **d = nnlb_checkudata(L, 1, DIR_MT);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int l_listdir(lua_State *L) {
  const char *path = nnlb_checkstring(L, 1);
  lua_settop(L, 1);
  DIR **d = lua_newuserdatauv(L, sizeof *d, 0); /* 2: closes the directory if an error jumps out */
  *d = NULL;
  luaL_setmetatable(L, DIR_MT);
  *d = opendir(path);
  if (!*d) return luaL_error(L, "%s: cannot open directory: %s", path, strerror(errno));
  lua_newtable(L); /* 3: name -> is_dir */
  int n = 0;
  struct dirent *e;
  while ((e = readdir(*d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    int isdir = fstatat(dirfd(*d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
    lua_pushboolean(L, isdir);
    lua_setfield(L, 3, e->d_name);
    n++;
  }
  closedir(*d);
  *d = NULL;
  const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0); /* 4 */
  int k = 0;
  for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) names[k++] = lua_tostring(L, -2);
  qsort(names, (size_t)k, sizeof *names, cmp_names);
  lua_createtable(L, k, 0); /* 5 */
  lua_createtable(L, k, 0); /* 6 */
  for (int i = 0; i < k; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, 5, i + 1);
    lua_getfield(L, 3, names[i]);
    lua_rawseti(L, 6, i + 1);
  }
  return 2;
}

static const luaL_Reg pipe_methods[] = {{"out_size", pipe_out_size}, {NULL, NULL}};

static const luaL_Reg image_ops[] = {
    {"resize", l_resize}, {"crop", l_crop}, {"hflip", l_hflip}, {"to_float", l_to_float},
    {"normalize", l_normalize}, {"pipeline", l_pipeline}, {"load_batch", l_load_batch},
    {"_rng_key", l_rng_key}, {"_uniform", l_uniform}, {"_listdir", l_listdir}, {NULL, NULL}};

void nnlb_open_image_ops(lua_State *L, int module) {
  luaL_newmetatable(L, PIPE_MT);
  lua_newtable(L);
  luaL_setfuncs(L, pipe_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, pipe_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, DIR_MT);
  lua_pushcfunction(L, dir_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_getsubtable(L, module, "image"); /* nn.image from draw.c, or a new one */
  luaL_setfuncs(L, image_ops, 0);
  lua_pop(L, 1);
}
