/* imgproc.h — image kernels on planar (C, H, W) pixels (bilinear resize, crop, flip, to float,
 * normalize) and the compiled transform pipeline that runs them on one image with its own draws. */
#ifndef NNL_IMGPROC_H
#define NNL_IMGPROC_H

#include <stddef.h>
#include <stdint.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif
/* No transform may make an image of more pixels than this (per channel). */
#define NNL_IMG_MAX_PIXELS (1LL << 27)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- kernels: serial per image, parallel over planes x rows when the work is large ---- */

/* Bilinear resize as torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 * antialias=False), float32 arithmetic in PyTorch's order. `in` points at the top-left pixel of an
 * ih x iw window inside planes of row stride ld and plane stride ps (elements), so a crop and a
 * resize are one pass. The uint8 version interpolates the same way and rounds half to even, as
 * torchvision does for uint8 tensors. No antialiasing: downscaling by more than 2x aliases. */
void nnl_img_resize_f32(float *out /* (c, oh, ow) */, const float *in /* (c, ih, iw) window */,
                        int c, int ih, int iw, int64_t ld, int64_t ps, int oh, int ow);
void nnl_img_resize_u8(uint8_t *out /* (c, oh, ow) */, const uint8_t *in /* (c, ih, iw) window */,
                       int c, int ih, int iw, int64_t ld, int64_t ps, int oh, int ow);

/* The h x w window at (top, left) (0-based; may reach outside the image, which reads as 0). */
void nnl_img_crop_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (c, ih, iw) */, int c, int ih,
                     int iw, int top, int left, int h, int w);
void nnl_img_crop_f32(float *out /* (c, h, w) */, const float *in /* (c, ih, iw) */, int c, int ih,
                      int iw, int top, int left, int h, int w);

/* Mirror left-right; out == in is allowed. */
void nnl_img_hflip_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (c, h, w) */, int c, int h, int w);
void nnl_img_hflip_f32(float *out /* (c, h, w) */, const float *in /* (c, h, w) */, int c, int h, int w);

/* v / 255 in float32 (torchvision's ToTensor). */
void nnl_img_to_float(float *out /* (n,) */, const uint8_t *in /* (n,) */, int64_t n);
/* (x - mean[k]) / std[k] per channel k, in float32 (torchvision's Normalize); out == in allowed. */
void nnl_img_normalize(float *out /* (c, hw) */, const float *in /* (c, hw) */, int c, int64_t hw,
                       const float *mean /* (c,) */, const float *std /* (c,) */);
/* Interleaved to planar. */
void nnl_img_hwc_to_chw_u8(uint8_t *out /* (c, h, w) */, const uint8_t *in /* (h, w, c) */, int h,
                           int w, int c);

/* ---- random draws of one image: u_j = hash(key, j), j = 0, 1, ... (counter-based) ---- */

typedef struct {
  uint64_t key, counter;
} nnl_imgrng;

/* The key of sample `index` in `epoch` of a loader seeded with `seed`; index 0 is the epoch's
 * shuffle. Same inputs, same key: what an image gets never depends on threads or batch layout. */
uint64_t nnl_imgrng_key(uint64_t seed, uint64_t epoch, uint64_t index);
/* The next draw, uniform in [0, 1) with 53 random bits. */
double nnl_imgrng_uniform(nnl_imgrng *r);
/* uniform in [0, 1) of draw `counter` of stream `key` (what nnl_imgrng_uniform returns). */
double nnl_imgrng_at(uint64_t key, uint64_t counter);

/* torchvision's RandomResizedCrop.get_params: up to 10 tries of (area, log-ratio, top, left), 4
 * draws per accepted try and 2 per rejected one, then the central fallback. Outputs 0-based. */
void nnl_img_rrc_params(int h, int w, const double scale[2], const double ratio[2], nnl_imgrng *r,
                        int *top, int *left, int *ch, int *cw);
/* torchvision's CenterCrop origin (0-based; negative where the crop is larger: zero padding). */
void nnl_img_center_origin(int h, int w, int ch, int cw, int *top, int *left);
/* torchvision's Resize output for a single size: shorter side to `size`, the longer scaled and
 * truncated; max_size > 0 caps the longer side. Returns -1 (error set) if max_size <= size. */
int nnl_img_resize_short(int h, int w, int size, int max_size, int *oh, int *ow);

/* ---- the pipeline: what Compose{...} of compilable transforms becomes ---- */

typedef enum {
  NNL_IMGOP_RESIZE,       /* h, w; or h = 0: shorter side to w (size), longer capped at max_size */
  NNL_IMGOP_CENTER_CROP,  /* h, w */
  NNL_IMGOP_RRC,          /* h, w, scale, ratio: RandomResizedCrop */
  NNL_IMGOP_HFLIP,        /* p: RandomHorizontalFlip */
  NNL_IMGOP_TO_FLOAT,     /* ToTensor */
  NNL_IMGOP_NORMALIZE     /* nch values of mean and std (1 = all channels) */
} nnl_imgop_kind;

#define NNL_IMGPIPE_MAXOPS 32
#define NNL_IMGPIPE_MAXCH 4

typedef struct {
  int kind;
  int h, w, max_size;
  double scale[2], ratio[2], p;
  int nch;
  float mean[NNL_IMGPIPE_MAXCH], std[NNL_IMGPIPE_MAXCH];
} nnl_imgop;

typedef struct {
  int n;
  nnl_imgop ops[NNL_IMGPIPE_MAXOPS];
} nnl_imgpipe;

/* An image in flight: planar pixels, uint8 or float32, in malloc'd memory the pipeline replaces. */
typedef struct {
  int is_float, c, h, w;
  void *data;
} nnl_img;

/* Check the ops' parameters and order for a uint8 image of c channels (ToTensor once, Normalize
 * after it, channel counts): 0, or -1 with the error set. */
int nnl_imgpipe_check(const nnl_imgpipe *p, int c);
/* The output size when it does not depend on the input's (a fixed-size op and only
 * size-determined ops after it): 0, or -1 if it varies. *is_float: the output dtype. */
int nnl_imgpipe_out_size(const nnl_imgpipe *p, int *is_float, int *h, int *w);
/* Run p on img (replacing img->data) with draws from r. 0, or -1 with the (thread-local) error set;
 * img stays valid (freeable) either way. Serial (no OpenMP team of its own): one thread per image. */
int nnl_imgpipe_apply(const nnl_imgpipe *p, nnl_img *img, nnl_imgrng *r);

#ifdef __cplusplus
}
#endif

#endif
