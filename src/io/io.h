/* io.h — file formats with no Lua and no tensors: safetensors, IDX (.gz), PNG/JPEG/BMP, JSON.
 * Raw buffers in and out; every failure returns -1 or NULL and leaves a message in nnl_set_error. */
#ifndef NNL_IO_H
#define NNL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNL_IO_MAXDIM 8                      /* same as NNL_MAXDIM in nnlua.h */
#define NNL_ST_MAX_HEADER 100000000u         /* safetensors header limit, as the reference */
#ifndef NNL_IMAGE_MAX_PIXELS
#define NNL_IMAGE_MAX_PIXELS (1LL << 27)     /* 134 Mpixel: a crafted header cannot ask for GBs */
#endif

/* ---- shared file helpers (safetensors.c) ---- */

/* Read a whole file into malloc'd memory (a NUL byte is appended, not counted in *len). */
void *nnl_io_read_file(const char *path, size_t *len);
/* Write a file atomically: fn(f, ctx) writes "<path>.tmp.<pid>", which is flushed, fsync'ed and
 * renamed over path. fn returns 0, or -1 after nnl_set_error. On any failure the temp file is
 * removed and path is left untouched. */
typedef int (*nnl_io_writer)(FILE *f, void *ctx);
int nnl_io_write_atomic(const char *path, nnl_io_writer fn, void *ctx);

/* ---- JSON (json.c): strict RFC 8259, UTF-8 validated, duplicate keys rejected ---- */

typedef enum {
  NNL_JSON_NULL, NNL_JSON_FALSE, NNL_JSON_TRUE, NNL_JSON_NUMBER,
  NNL_JSON_STRING, NNL_JSON_ARRAY, NNL_JSON_OBJECT
} nnl_json_type;

typedef struct nnl_json {
  nnl_json_type type;
  int is_int;              /* NUMBER written without fraction/exponent that fits in int64 */
  int64_t i;               /* NUMBER: the value when is_int */
  double num;              /* NUMBER: the value as a double */
  const char *str;         /* STRING: NUL-terminated; may hold \u0000, so use len */
  size_t len;              /* STRING: bytes; ARRAY, OBJECT: number of items */
  struct nnl_json *items;  /* ARRAY: elements; OBJECT: member values, in file order */
  const char *key;         /* member of an OBJECT: its key (NUL-terminated) */
  size_t keylen;
} nnl_json;

typedef struct nnl_json_doc nnl_json_doc; /* owns every node and string of one parse */

#define NNL_JSON_DEFAULT_DEPTH 64
/* Parse text[0..len) (need not be NUL-terminated). max_depth <= 0 means 64; at most 1024.
 * Errors read "line L, column C: what was wrong". */
nnl_json_doc *nnl_json_parse(const char *text, size_t len, int max_depth);
nnl_json_doc *nnl_json_load(const char *path, int max_depth); /* errors start with "path: " */
const nnl_json *nnl_json_root(const nnl_json_doc *doc);
void nnl_json_free(nnl_json_doc *doc); /* NULL-safe */
/* Member of an object by key (NULL if absent or obj is not an object). */
const nnl_json *nnl_json_get(const nnl_json *obj, const char *key);
const char *nnl_json_type_name(nnl_json_type t); /* "null", "number", "object", ... */
/* s[0..len) as a quoted JSON string (malloc'd, NUL-terminated, length in *outlen if non-NULL).
 * Escapes '"', '\\' and control characters; NULL if s is not valid UTF-8. */
char *nnl_json_quote(const char *s, size_t len, size_t *outlen);

/* ---- safetensors (safetensors.c) ---- */

/* Codes in the reference implementation's order (increasing alignment), which the writer uses to
 * lay tensors out largest-alignment first. */
typedef enum {
  NNL_ST_BOOL, NNL_ST_U8, NNL_ST_I8, NNL_ST_F8_E5M2, NNL_ST_F8_E4M3, NNL_ST_I16, NNL_ST_U16,
  NNL_ST_F16, NNL_ST_BF16, NNL_ST_I32, NNL_ST_U32, NNL_ST_F32, NNL_ST_F64, NNL_ST_I64, NNL_ST_U64,
  NNL_ST_NDTYPES
} nnl_st_dtype;

const char *nnl_st_dtype_name(int dtype);   /* "F32"...; "?" if out of range */
int nnl_st_dtype_from_name(const char *s);  /* -1 if unknown */
size_t nnl_st_dtype_size(int dtype);        /* 0 if out of range */

typedef struct {
  const char *name;
  int dtype;                      /* nnl_st_dtype */
  int ndim;                       /* 0..8; 0 is a scalar */
  int64_t shape[NNL_IO_MAXDIM];
  const void *data;               /* little-endian, row-major; NOT necessarily aligned */
  size_t nbytes;                  /* numel * itemsize */
} nnl_st_entry;

typedef struct {
  const char *key, *value;
} nnl_st_kv;

typedef struct nnl_safetensors {
  nnl_st_entry *entries;          /* sorted by data offset (the order of the bytes in the file) */
  size_t n;
  nnl_st_kv *meta;                /* "__metadata__", in header order */
  size_t nmeta;
  void *priv_;                    /* owned file bytes and strings */
} nnl_safetensors;

/* Parse a whole file held in memory. name is used in error messages. copy = 0: entries point into
 * buf, which must outlive the result; copy = 1: the bytes are copied first. */
nnl_safetensors *nnl_st_parse(const void *buf, size_t len, const char *name, int copy);
nnl_safetensors *nnl_st_load(const char *path);
void nnl_st_free(nnl_safetensors *st); /* NULL-safe */
const nnl_st_entry *nnl_st_find(const nnl_safetensors *st, const char *name);
const char *nnl_st_meta_get(const nnl_safetensors *st, const char *key);

/* Serialize entries (name, dtype, ndim, shape, data, nbytes) and metadata like the reference:
 * tensors sorted by descending dtype alignment then name, "__metadata__" first, compact JSON padded
 * with spaces to a multiple of 8. Names must be unique, valid UTF-8 and not "__metadata__". */
void *nnl_st_serialize(const nnl_st_entry *e, size_t n, const nnl_st_kv *meta, size_t nmeta,
                       size_t *len);
int nnl_st_save(const char *path, const nnl_st_entry *e, size_t n, const nnl_st_kv *meta,
                size_t nmeta); /* atomic */

/* Element conversion from a (possibly unaligned) little-endian safetensors buffer.
 * to_f32 takes every dtype; to_i64 takes integer and BOOL dtypes (U64 values > INT64_MAX fail). */
int nnl_st_to_f32(float *dst, const void *src, int dtype, size_t numel);
int nnl_st_to_i64(int64_t *dst, const void *src, int dtype, size_t numel);
float nnl_f16_to_f32(uint16_t h);
float nnl_bf16_to_f32(uint16_t b);
uint16_t nnl_f32_to_f16(float f);  /* round to nearest even; overflow gives inf */
uint16_t nnl_f32_to_bf16(float f); /* round to nearest even; NaN stays NaN */

/* ---- IDX, the MNIST format (idx.c): plain or gzip, detected by content ---- */

typedef enum {
  NNL_IDX_U8 = 0x08, NNL_IDX_I8 = 0x09, NNL_IDX_I16 = 0x0B, NNL_IDX_I32 = 0x0C,
  NNL_IDX_F32 = 0x0D, NNL_IDX_F64 = 0x0E
} nnl_idx_type;
typedef enum { NNL_IDX_AS_U8, NNL_IDX_AS_F32, NNL_IDX_AS_I64 } nnl_idx_as;

typedef struct {
  int type;                       /* nnl_idx_type stored in the file */
  int ndim;                       /* 0..8 */
  int64_t dims[NNL_IO_MAXDIM];
  size_t numel;
  int as;                         /* nnl_idx_as: the element type of data */
  void *data;                     /* numel elements (uint8_t, float or int64_t); owned */
} nnl_idx;

/* as = NNL_IDX_AS_U8 fails on values that are not integers in 0..255, AS_I64 on non-integers. */
nnl_idx *nnl_idx_load(const char *path, int as);
nnl_idx *nnl_idx_parse(const void *buf, size_t len, const char *name, int as);
void nnl_idx_free(nnl_idx *idx); /* NULL-safe */
/* data: numel elements of type in host order (uint8_t, int8_t, int16_t, int32_t, float, double).
 * gz != 0 writes gzip. Atomic. */
int nnl_idx_save(const char *path, int type, int ndim, const int64_t *dims, const void *data,
                 int gz);
size_t nnl_idx_type_size(int type); /* 0 if unknown */

/* ---- images (image.c, stb_image): uint8 H x W x C, row-major, interleaved ---- */

typedef enum { NNL_IMG_PNG, NNL_IMG_JPEG, NNL_IMG_BMP } nnl_img_format;

/* Decode PNG, JPEG or BMP. channels = 1..4 converts to that many; 0 keeps grey (1) or RGB (3),
 * dropping any alpha. Returns malloc'd pixels (free()) and sets *h, *w, *c. */
uint8_t *nnl_image_decode(const void *buf, size_t len, const char *name, int channels,
                          int *h, int *w, int *c);
uint8_t *nnl_image_load(const char *path, int channels, int *h, int *w, int *c);
/* Encode pixels (h x w x c, c = 1..4). quality: JPEG 1..100 (0 means 90), ignored otherwise.
 * encode returns malloc'd bytes; save picks the format from the extension (.png .jpg .jpeg .bmp,
 * any case) and writes atomically. */
void *nnl_image_encode(const uint8_t *pixels, int h, int w, int c, int format, int quality,
                       size_t *len);
int nnl_image_save(const char *path, const uint8_t *pixels, int h, int w, int c, int quality);

#ifdef __cplusplus
}
#endif

#endif
