/* image_batch.h — read, decode and transform a batch of image files in parallel (OpenMP across
 * images) into one preallocated N x C x H x W buffer; no Lua. */
#ifndef NNL_IMAGE_BATCH_H
#define NNL_IMAGE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/imgproc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNL_IMGBATCH_ERRLEN 512

/* For each i < n: read paths[i], decode it to `channels` channels (1..4), run pipe with the draws
 * of key keys[i], and write the c x h x w result to out + i * c * h * w (float32 if out_is_float,
 * else uint8). threads < 1 means OpenMP's default. Each image is one thread's job, so the result
 * does not depend on the thread count.
 * Returns the number of images that failed; errs (n * NNL_IMGBATCH_ERRLEN chars, or NULL) gets
 * each failure's message ("" for images that worked), which starts with the file's path. */
int nnl_image_batch_load(void *out /* (n, c, h, w) */, int out_is_float, int c, int h, int w,
                         const nnl_imgpipe *pipe, const char *const *paths /* (n,) */,
                         const uint64_t *keys /* (n,) */, int n, int threads, char *errs);

#ifdef __cplusplus
}
#endif

#endif
