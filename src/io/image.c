/* image.c — PNG/JPEG/BMP decode and PNG/JPEG/BMP encode of uint8 H x W x C pixels, via stb.
 * The stb implementations are compiled here, static, limited to these formats and to a pixel cap. */
#define _POSIX_C_SOURCE 200809L
#include "io.h"
#include "../nnlua.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* PNG compression through zlib: smaller files and faster than stb's own deflate. */
static unsigned char *png_deflate(unsigned char *data, int len, int *out_len, int quality) {
  uLongf n = compressBound((uLong)len);
  unsigned char *out = malloc(n);
  if (!out) return NULL;
  int level = quality < 1 ? 1 : quality > 9 ? 9 : quality;
  if (compress2(out, &n, data, (uLong)len, level) != Z_OK || n > INT_MAX) {
    free(out);
    return NULL;
  }
  *out_len = (int)n;
  return out;
}

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 16)
/* calloc: stb 2.27 can read Huffman tables a corrupt JPEG never defined from memory it never set
 * (fixed upstream in 2.28); zeroed, such a table decodes harmlessly. Callers free() our results. */
#define STBI_MALLOC(n) calloc(1, n)
#define STBI_REALLOC(p, n) realloc(p, n)
#define STBI_FREE(p) free(p)
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STBIW_ZLIB_COMPRESS png_deflate
#define STBIW_MALLOC(n) malloc(n)
#define STBIW_REALLOC(p, n) realloc(p, n)
#define STBIW_FREE(p) free(p)

/* stb declares static functions it never defines under these options; GCC reports those at the
 * end of the file, so this one warning stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include "stb_image.h"
#include "stb_image_write.h"
#pragma GCC diagnostic pop

static const char *reason(void) {
  const char *r = stbi_failure_reason();
  if (!r) return "unknown error";
  if (!strcmp(r, "unknown image type")) return "not a PNG, JPEG or BMP image (or corrupt)";
  return r;
}

/* Byte i of p, or 0 past the end, as stb's reader returns. */
static unsigned byte_at(const uint8_t *p, size_t n, size_t i) { return i < n ? p[i] : 0; }

/* stb_image 2.27 (the one in Debian 12) writes past its Huffman tables when a DHT segment declares
 * more than 256 codes; 2.28 rejects that. Walk the markers the way stb does (skip junk and fill
 * bytes, segments by their length, entropy-coded data up to the next non-RST marker) and check every
 * table stb would build. Where this walk and stb's part ways, stb has already failed. */
static int jpeg_tables_ok(const uint8_t *p, size_t n) {
  size_t i = 2; /* after SOI */
  while (i < n) {
    while (i < n && p[i] != 0xFF) i++;
    while (i < n && p[i] == 0xFF) i++;
    if (i >= n) break;
    unsigned m = p[i++];
    if (m == 0xD9) break; /* EOI: stb reads no further */
    if ((m >= 0xD0 && m <= 0xD8) || m == 0x01) continue; /* markers without a length */
    size_t len = (byte_at(p, n, i) << 8) | byte_at(p, n, i + 1);
    if (m == 0xC4) {
      long left = (long)len - 2;
      size_t q = i + 2;
      while (left > 0) {
        unsigned tc = byte_at(p, n, q) >> 4, th = byte_at(p, n, q) & 15, total = 0;
        if (tc > 1 || th > 3) break; /* stb rejects this table itself */
        for (size_t k = 1; k <= 16; k++) total += byte_at(p, n, q + k);
        if (total > 256) return 0;
        q += 17 + total;
        left -= 17 + (long)total;
      }
    }
    i += len;
    if (m == 0xDA) /* entropy-coded data: FF 00 is a data byte, RST markers sit inside it */
      while (i + 1 < n) {
        if (p[i] != 0xFF) { i++; continue; }
        size_t k = i + 1;
        while (k < n && p[k] == 0xFF) k++;
        if (k < n && p[k] != 0 && (p[k] < 0xD0 || p[k] > 0xD7)) break;
        i = k + 1;
      }
  }
  return 1;
}

/* stb grows its IDAT buffer to a chunk's declared length before reading it, so a 100-byte file can
 * make it ask for 2 GB. Every chunk stb reads must lie inside the file; it reads nothing after IEND. */
static int png_chunks_ok(const uint8_t *p, size_t n) {
  for (size_t i = 8; i + 8 <= n;) {
    uint32_t clen = (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
    if (!memcmp(p + i + 4, "IEND", 4)) return 1;
    if (clen > n - i - 8) return 0;
    i += 12 + (size_t)clen;
  }
  return 1; /* a cut chunk header: stb fails on its own without allocating */
}

/* The format by signature, then that decoder's header. (stbi_info_from_memory tries every decoder in
 * turn, so its failure reason is always "unknown image type"; these static stb functions exist here
 * because the implementation is compiled into this file.) */
static int header_info(const uint8_t *buf, int len, int *w, int *h, int *c) {
  stbi__context s;
  stbi__start_mem(&s, buf, len);
  if (stbi__png_test(&s)) {
    if (!png_chunks_ok(buf, (size_t)len))
      return stbi__err("chunk extends past the end of the file", "Corrupt PNG");
    return stbi__png_info(&s, w, h, c);
  }
  if (stbi__jpeg_test(&s)) {
    if (!jpeg_tables_ok(buf, (size_t)len))
      return stbi__err("bad DHT header (more than 256 codes)", "Corrupt JPEG");
    return stbi__jpeg_info(&s, w, h, c);
  }
  if (stbi__bmp_test(&s)) return stbi__bmp_info(&s, w, h, c);
  return stbi__err("unknown image type", "Image not of any known type, or corrupt");
}

uint8_t *nnl_image_decode(const void *buf, size_t len, const char *name, int channels, int *h, int *w,
                          int *c) {
  const char *file = name ? name : "<memory>";
  if (!buf && len) { nnl_set_error("%s: NULL buffer", file); return NULL; }
  if (!h || !w || !c) { nnl_set_error("%s: NULL size output", file); return NULL; }
  if (channels < 0 || channels > 4) {
    nnl_set_error("%s: channels must be 0..4, got %d", file, channels);
    return NULL;
  }
  if (len == 0) { nnl_set_error("%s: cannot decode image: empty file", file); return NULL; }
  if (len > INT_MAX) {
    nnl_set_error("%s: cannot decode image: file too large (%zu bytes)", file, len);
    return NULL;
  }
  int iw, ih, ic;
  /* read the header first so a crafted size cannot make the decoder allocate gigabytes */
  if (!header_info(buf, (int)len, &iw, &ih, &ic)) {
    nnl_set_error("%s: cannot decode image: %s", file, reason());
    return NULL;
  }
  if (iw <= 0 || ih <= 0 || (long long)iw * ih > NNL_IMAGE_MAX_PIXELS) {
    nnl_set_error("%s: image of %d x %d pixels is over the %lld-pixel limit", file, iw, ih,
                  (long long)NNL_IMAGE_MAX_PIXELS);
    return NULL;
  }
  /* stb reads missing BMP pixels as zeros; BMP is never compressed here, so a file too short for its
   * size (at 1 bit per pixel) is corrupt and would only make us allocate for nothing */
  if (((const uint8_t *)buf)[0] == 'B' && (uint64_t)iw * (uint64_t)ih > 8 * (uint64_t)len) {
    nnl_set_error("%s: cannot decode image: file too short for a %d x %d BMP", file, iw, ih);
    return NULL;
  }
  int want = channels ? channels : ic <= 2 ? 1 : 3;
  int dw, dh, dc;
  uint8_t *px = stbi_load_from_memory(buf, (int)len, &dw, &dh, &dc, want);
  if (!px) { nnl_set_error("%s: cannot decode image: %s", file, reason()); return NULL; }
  if (dw != iw || dh != ih) {
    free(px);
    nnl_set_error("%s: cannot decode image: size changed between header and data", file);
    return NULL;
  }
  *h = dh;
  *w = dw;
  *c = want;
  return px;
}

uint8_t *nnl_image_load(const char *path, int channels, int *h, int *w, int *c) {
  size_t len;
  void *bytes = nnl_io_read_file(path, &len);
  if (!bytes) return NULL;
  uint8_t *px = nnl_image_decode(bytes, len, path, channels, h, w, c);
  free(bytes);
  return px;
}

typedef struct {
  uint8_t *p;
  size_t n, cap;
  int oom;
} membuf;

static void mem_write(void *ctx, void *data, int size) {
  membuf *m = ctx;
  if (m->oom || size <= 0) return;
  if (m->n + (size_t)size > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->n + (size_t)size) cap *= 2;
    uint8_t *np = realloc(m->p, cap);
    if (!np) { m->oom = 1; return; }
    m->p = np;
    m->cap = cap;
  }
  memcpy(m->p + m->n, data, (size_t)size);
  m->n += (size_t)size;
}

static int check_pixels(const char *file, const uint8_t *pixels, int h, int w, int c) {
  if (!pixels) { nnl_set_error("%s: NULL pixels", file); return -1; }
  if (h < 1 || w < 1 || h > 65535 || w > 65535) {
    nnl_set_error("%s: image size %d x %d is not in 1..65535", file, h, w);
    return -1;
  }
  if (c < 1 || c > 4) { nnl_set_error("%s: image must have 1 to 4 channels, got %d", file, c); return -1; }
  if ((long long)h * w > NNL_IMAGE_MAX_PIXELS) {
    nnl_set_error("%s: image of %d x %d pixels is over the %lld-pixel limit", file, h, w,
                  (long long)NNL_IMAGE_MAX_PIXELS);
    return -1;
  }
  return 0;
}

static void *encode(const char *file, const uint8_t *pixels, int h, int w, int c, int format, int quality,
                    size_t *len) {
  if (check_pixels(file, pixels, h, w, c)) return NULL;
  if (quality == 0) quality = 90;
  if (format == NNL_IMG_JPEG && (quality < 1 || quality > 100)) {
    nnl_set_error("%s: JPEG quality must be 1..100, got %d", file, quality);
    return NULL;
  }
  membuf m = {0};
  int ok;
  switch (format) {
  case NNL_IMG_PNG: ok = stbi_write_png_to_func(mem_write, &m, w, h, c, pixels, w * c); break;
  case NNL_IMG_JPEG: ok = stbi_write_jpg_to_func(mem_write, &m, w, h, c, pixels, quality); break;
  case NNL_IMG_BMP: ok = stbi_write_bmp_to_func(mem_write, &m, w, h, c, pixels); break;
  default: nnl_set_error("%s: unknown image format code %d", file, format); return NULL;
  }
  if (!ok || m.oom || !m.n) {
    free(m.p);
    nnl_set_error("%s: image encoding failed (out of memory?)", file);
    return NULL;
  }
  *len = m.n;
  return m.p;
}

void *nnl_image_encode(const uint8_t *pixels, int h, int w, int c, int format, int quality, size_t *len) {
  return encode("image", pixels, h, w, c, format, quality, len);
}

typedef struct {
  const void *p;
  size_t n;
} bytes_ctx;

static int write_bytes(FILE *f, void *ctx) {
  const bytes_ctx *b = ctx;
  fwrite(b->p, 1, b->n, f);
  return 0;
}

int nnl_image_save(const char *path, const uint8_t *pixels, int h, int w, int c, int quality) {
  if (!path) { nnl_set_error("image: NULL path"); return -1; }
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  int format = -1;
  if (dot && (!slash || dot > slash)) {
    if (!strcasecmp(dot, ".png")) format = NNL_IMG_PNG;
    else if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")) format = NNL_IMG_JPEG;
    else if (!strcasecmp(dot, ".bmp")) format = NNL_IMG_BMP;
  }
  if (format < 0) {
    nnl_set_error("%s: unknown image format (the name must end in .png, .jpg, .jpeg or .bmp)", path);
    return -1;
  }
  size_t len;
  void *enc = encode(path, pixels, h, w, c, format, quality, &len);
  if (!enc) return -1;
  bytes_ctx b = {enc, len};
  int rc = nnl_io_write_atomic(path, write_bytes, &b);
  free(enc);
  return rc;
}
