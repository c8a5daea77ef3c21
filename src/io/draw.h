/* draw.h — a tiny raster for charts and image grids: RGB canvas, antialiased lines, filled boxes,
 * blits and text in a built-in 5x7 pixel font. No Lua, no allocation: the caller owns the pixels. */
#ifndef NNL_DRAW_H
#define NNL_DRAW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNL_FONT_W 5   /* glyph pixels */
#define NNL_FONT_H 7
#define NNL_FONT_CW 6  /* advance per character (one column of spacing) */
#define NNL_FONT_CH 8  /* line height (one row of spacing) */
#define NNL_CANVAS_MAX 16384 /* largest width or height */

typedef struct {
  int w, h;
  uint8_t *px;              /* px: (h, w, 3) RGB, row-major */
  int cx0, cy0, cx1, cy1;   /* drawing is clipped to [cx0, cx1) x [cy0, cy1) */
} nnl_canvas;

/* Colours are 0xRRGGBB. */
void nnl_canvas_init(nnl_canvas *c, uint8_t *px, int w, int h, uint32_t bg);
/* Clip to the rectangle (x, y, w, h) intersected with the canvas; w or h < 0 resets to all of it. */
void nnl_canvas_clip(nnl_canvas *c, int x, int y, int w, int h);

void nnl_draw_fill(nnl_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* Blend rgb into one pixel with coverage a in [0, 1] (clipped). */
void nnl_draw_blend(nnl_canvas *c, int x, int y, uint32_t rgb, float a);
/* An antialiased segment of the given width (pixel centres are at integer + 0.5). */
void nnl_draw_line(nnl_canvas *c, double x0, double y0, double x1, double y1, double width,
                   uint32_t rgb);
/* A polyline through n points; NaN coordinates break the line. */
void nnl_draw_polyline(nnl_canvas *c, const double *xs, const double *ys, size_t n, double width,
                       uint32_t rgb);

/* Text with its top-left corner at (x, y); each font pixel becomes scale x scale pixels. up != 0
 * rotates it a quarter turn counter-clockwise (reads bottom to top, (x, y) is then bottom-left).
 * Bytes outside 32..126 draw as '?'; '\n' starts a new line. */
void nnl_draw_text(nnl_canvas *c, int x, int y, const char *s, size_t n, int scale, int up,
                   uint32_t rgb);
/* Width in pixels of the longest line of s[0..n) and the number of lines. */
int nnl_text_width(const char *s, size_t n, int scale, int *lines);
/* The 5 columns of a glyph (bit 0 is the top row) for ASCII 32..126, else '?'. */
const uint8_t *nnl_font_glyph(int ch);

/* Copy src (h, w, ch) uint8 -- ch = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); alpha
 * blends -- with its top-left at (x, y), each source pixel drawn zoom x zoom. */
void nnl_draw_blit(nnl_canvas *c, int x, int y, const uint8_t *src, int h, int w, int ch,
                   int zoom);

#ifdef __cplusplus
}
#endif

#endif
