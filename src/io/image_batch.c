/* image_batch.c — a batch of image files to one N x C x H x W buffer: each OpenMP thread reads,
 * decodes and transforms whole images; failures are recorded per image and reported by the caller. */
#include "image_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../nnlua.h"
#include "io.h"

/* One image into dst; 0, or -1 with the thread-local error set (the path is in the message). */
static int load_one(void *dst, int out_is_float, int c, int h, int w, const nnl_imgpipe *pipe,
                    const char *path, uint64_t key) {
  int ih, iw, ic;
  uint8_t *px = nnl_image_load(path, c, &ih, &iw, &ic); /* px: (ih, iw, c) */
  if (!px) return -1;
  nnl_img img = {0, c, ih, iw, px};
  if (c > 1) {
    img.data = malloc((size_t)c * ih * iw);
    if (!img.data) {
      free(px);
      nnl_set_error("%s: out of memory for a %d x %d image", path, ih, iw);
      return -1;
    }
    nnl_img_hwc_to_chw_u8(img.data, px, ih, iw, c);
    free(px);
  }
  nnl_imgrng r = {key, 0};
  if (nnl_imgpipe_apply(pipe, &img, &r)) {
    char msg[NNL_IMGBATCH_ERRLEN];
    snprintf(msg, sizeof msg, "%s", nnl_last_error());
    nnl_set_error("%s: %s", path, msg);
    free(img.data);
    return -1;
  }
  if (img.is_float != out_is_float || img.c != c || img.h != h || img.w != w) {
    nnl_set_error("%s: transformed to a %s %d x %d x %d image, but the batch holds %s %d x %d x %d",
                  path, img.is_float ? "float32" : "uint8", img.c, img.h, img.w,
                  out_is_float ? "float32" : "uint8", c, h, w);
    free(img.data);
    return -1;
  }
  memcpy(dst, img.data, (size_t)c * h * w * (out_is_float ? sizeof(float) : 1));
  free(img.data);
  return 0;
}

int nnl_image_batch_load(void *out /* (n, c, h, w) */, int out_is_float, int c, int h, int w,
                         const nnl_imgpipe *pipe, const char *const *paths /* (n,) */,
                         const uint64_t *keys /* (n,) */, int n, int threads, char *errs) {
  if (n <= 0) return 0;
  if (threads < 1) threads = omp_get_max_threads();
  if (threads > n) threads = n;
  size_t each = (size_t)c * h * w * (out_is_float ? sizeof(float) : 1);
  int failed = 0;
  /* Decoding and transforming allocate, which a parallel region normally must not: here every
   * failure stays with its image (the error message is thread-local) and is reported afterwards.
   * dynamic: decode times vary with the files. */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : failed) if (threads > 1)
  for (int i = 0; i < n; i++) {
    int rc = load_one((char *)out + (size_t)i * each, out_is_float, c, h, w, pipe, paths[i], keys[i]);
    if (errs) {
      char *e = errs + (size_t)i * NNL_IMGBATCH_ERRLEN;
      if (rc) snprintf(e, NNL_IMGBATCH_ERRLEN, "%s", nnl_last_error());
      else e[0] = 0;
    }
    if (rc) {
      memset((char *)out + (size_t)i * each, 0, each);
      failed++;
    }
  }
  return failed;
}
