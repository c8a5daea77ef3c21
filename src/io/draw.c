/* draw.c — the raster behind nn.plot and nn.image.grid: clipped fills, antialiased lines (coverage
 * from the distance to the segment), a 5x7 bitmap font for ASCII 32..126, and blits. */
#include "draw.h"

#include <math.h>
#include <string.h>

/* One glyph is 5 columns, bit 0 the top row; printable ASCII from ' ' to '~'. */
static const uint8_t font5x7[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, /* ' ' */
    {0x00, 0x00, 0x5F, 0x00, 0x00}, /* !   */
    {0x00, 0x07, 0x00, 0x07, 0x00}, /* "   */
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, /* #   */
    {0x24, 0x2A, 0x7F, 0x2A, 0x12}, /* $   */
    {0x23, 0x13, 0x08, 0x64, 0x62}, /* %   */
    {0x36, 0x49, 0x55, 0x22, 0x50}, /* &   */
    {0x00, 0x00, 0x07, 0x00, 0x00}, /* '   */
    {0x00, 0x1C, 0x22, 0x41, 0x00}, /* (   */
    {0x00, 0x41, 0x22, 0x1C, 0x00}, /* )   */
    {0x08, 0x2A, 0x1C, 0x2A, 0x08}, /* *   */
    {0x08, 0x08, 0x3E, 0x08, 0x08}, /* +   */
    {0x00, 0x50, 0x30, 0x00, 0x00}, /* ,   */
    {0x08, 0x08, 0x08, 0x08, 0x08}, /* -   */
    {0x00, 0x60, 0x60, 0x00, 0x00}, /* .   */
    {0x20, 0x10, 0x08, 0x04, 0x02}, /* /   */
    {0x3E, 0x51, 0x49, 0x45, 0x3E}, /* 0   */
    {0x00, 0x42, 0x7F, 0x40, 0x00}, /* 1   */
    {0x42, 0x61, 0x51, 0x49, 0x46}, /* 2   */
    {0x21, 0x41, 0x45, 0x4B, 0x31}, /* 3   */
    {0x18, 0x14, 0x12, 0x7F, 0x10}, /* 4   */
    {0x27, 0x45, 0x45, 0x45, 0x39}, /* 5   */
    {0x3C, 0x4A, 0x49, 0x49, 0x30}, /* 6   */
    {0x01, 0x71, 0x09, 0x05, 0x03}, /* 7   */
    {0x36, 0x49, 0x49, 0x49, 0x36}, /* 8   */
    {0x06, 0x49, 0x49, 0x29, 0x1E}, /* 9   */
    {0x00, 0x36, 0x36, 0x00, 0x00}, /* :   */
    {0x00, 0x56, 0x36, 0x00, 0x00}, /* ;   */
    {0x08, 0x14, 0x22, 0x41, 0x00}, /* <   */
    {0x14, 0x14, 0x14, 0x14, 0x14}, /* =   */
    {0x00, 0x41, 0x22, 0x14, 0x08}, /* >   */
    {0x02, 0x01, 0x51, 0x09, 0x06}, /* ?   */
    {0x32, 0x49, 0x79, 0x41, 0x3E}, /* @   */
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, /* A   */
    {0x7F, 0x49, 0x49, 0x49, 0x36}, /* B   */
    {0x3E, 0x41, 0x41, 0x41, 0x22}, /* C   */
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, /* D   */
    {0x7F, 0x49, 0x49, 0x49, 0x41}, /* E   */
    {0x7F, 0x09, 0x09, 0x09, 0x01}, /* F   */
    {0x3E, 0x41, 0x49, 0x49, 0x7A}, /* G   */
    {0x7F, 0x08, 0x08, 0x08, 0x7F}, /* H   */
    {0x00, 0x41, 0x7F, 0x41, 0x00}, /* I   */
    {0x20, 0x40, 0x41, 0x3F, 0x01}, /* J   */
    {0x7F, 0x08, 0x14, 0x22, 0x41}, /* K   */
    {0x7F, 0x40, 0x40, 0x40, 0x40}, /* L   */
    {0x7F, 0x02, 0x0C, 0x02, 0x7F}, /* M   */
    {0x7F, 0x04, 0x08, 0x10, 0x7F}, /* N   */
    {0x3E, 0x41, 0x41, 0x41, 0x3E}, /* O   */
    {0x7F, 0x09, 0x09, 0x09, 0x06}, /* P   */
    {0x3E, 0x41, 0x51, 0x21, 0x5E}, /* Q   */
    {0x7F, 0x09, 0x19, 0x29, 0x46}, /* R   */
    {0x46, 0x49, 0x49, 0x49, 0x31}, /* S   */
    {0x01, 0x01, 0x7F, 0x01, 0x01}, /* T   */
    {0x3F, 0x40, 0x40, 0x40, 0x3F}, /* U   */
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, /* V   */
    {0x3F, 0x40, 0x38, 0x40, 0x3F}, /* W   */
    {0x63, 0x14, 0x08, 0x14, 0x63}, /* X   */
    {0x07, 0x08, 0x70, 0x08, 0x07}, /* Y   */
    {0x61, 0x51, 0x49, 0x45, 0x43}, /* Z   */
    {0x00, 0x7F, 0x41, 0x41, 0x00}, /* [   */
    {0x02, 0x04, 0x08, 0x10, 0x20}, /* \   */
    {0x00, 0x41, 0x41, 0x7F, 0x00}, /* ]   */
    {0x04, 0x02, 0x01, 0x02, 0x04}, /* ^   */
    {0x40, 0x40, 0x40, 0x40, 0x40}, /* _   */
    {0x00, 0x01, 0x02, 0x04, 0x00}, /* `   */
    {0x20, 0x54, 0x54, 0x54, 0x78}, /* a   */
    {0x7F, 0x48, 0x44, 0x44, 0x38}, /* b   */
    {0x38, 0x44, 0x44, 0x44, 0x20}, /* c   */
    {0x38, 0x44, 0x44, 0x48, 0x7F}, /* d   */
    {0x38, 0x54, 0x54, 0x54, 0x18}, /* e   */
    {0x08, 0x7E, 0x09, 0x01, 0x02}, /* f   */
    {0x08, 0x54, 0x54, 0x54, 0x3C}, /* g   */
    {0x7F, 0x08, 0x04, 0x04, 0x78}, /* h   */
    {0x00, 0x44, 0x7D, 0x40, 0x00}, /* i   */
    {0x20, 0x40, 0x44, 0x3D, 0x00}, /* j   */
    {0x7F, 0x10, 0x28, 0x44, 0x00}, /* k   */
    {0x00, 0x41, 0x7F, 0x40, 0x00}, /* l   */
    {0x7C, 0x04, 0x18, 0x04, 0x78}, /* m   */
    {0x7C, 0x08, 0x04, 0x04, 0x78}, /* n   */
    {0x38, 0x44, 0x44, 0x44, 0x38}, /* o   */
    {0x7C, 0x14, 0x14, 0x14, 0x08}, /* p   */
    {0x08, 0x14, 0x14, 0x18, 0x7C}, /* q   */
    {0x7C, 0x08, 0x04, 0x04, 0x08}, /* r   */
    {0x48, 0x54, 0x54, 0x54, 0x20}, /* s   */
    {0x04, 0x3F, 0x44, 0x40, 0x20}, /* t   */
    {0x3C, 0x40, 0x40, 0x20, 0x7C}, /* u   */
    {0x1C, 0x20, 0x40, 0x20, 0x1C}, /* v   */
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, /* w   */
    {0x44, 0x28, 0x10, 0x28, 0x44}, /* x   */
    {0x0C, 0x50, 0x50, 0x50, 0x3C}, /* y   */
    {0x44, 0x64, 0x54, 0x4C, 0x44}, /* z   */
    {0x00, 0x08, 0x36, 0x41, 0x00}, /* {   */
    {0x00, 0x00, 0x7F, 0x00, 0x00}, /* |   */
    {0x00, 0x41, 0x36, 0x08, 0x00}, /* }   */
    {0x08, 0x04, 0x08, 0x10, 0x08}, /* ~   */
};

const uint8_t *nnl_font_glyph(int ch) {
  if (ch < 32 || ch > 126) ch = '?';
  return font5x7[ch - 32];
}

/* ---- canvas ---- */

void nnl_canvas_init(nnl_canvas *c, uint8_t *px, int w, int h, uint32_t bg) {
  c->w = w;
  c->h = h;
  c->px = px;
  nnl_canvas_clip(c, 0, 0, -1, -1);
  nnl_draw_fill(c, 0, 0, w, h, bg);
}

void nnl_canvas_clip(nnl_canvas *c, int x, int y, int w, int h) {
  if (w < 0 || h < 0) {
    c->cx0 = c->cy0 = 0;
    c->cx1 = c->w;
    c->cy1 = c->h;
    return;
  }
  c->cx0 = x < 0 ? 0 : x > c->w ? c->w : x;
  c->cy0 = y < 0 ? 0 : y > c->h ? c->h : y;
  long long x1 = (long long)x + w, y1 = (long long)y + h;
  c->cx1 = x1 < c->cx0 ? c->cx0 : x1 > c->w ? c->w : (int)x1;
  c->cy1 = y1 < c->cy0 ? c->cy0 : y1 > c->h ? c->h : (int)y1;
}

void nnl_draw_fill(nnl_canvas *c, int x, int y, int w, int h, uint32_t rgb) {
  long long x0 = x, y0 = y, x1 = x0 + w, y1 = y0 + h;
  if (x0 < c->cx0) x0 = c->cx0;
  if (y0 < c->cy0) y0 = c->cy0;
  if (x1 > c->cx1) x1 = c->cx1;
  if (y1 > c->cy1) y1 = c->cy1;
  uint8_t r = rgb >> 16, g = rgb >> 8, b = rgb;
  for (long long j = y0; j < y1; j++) {
    uint8_t *p = c->px + ((size_t)j * c->w + x0) * 3; /* p: (x1 - x0, 3) */
    for (long long i = x0; i < x1; i++, p += 3) {
      p[0] = r;
      p[1] = g;
      p[2] = b;
    }
  }
}

void nnl_draw_blend(nnl_canvas *c, int x, int y, uint32_t rgb, float a) {
  if (x < c->cx0 || x >= c->cx1 || y < c->cy0 || y >= c->cy1 || !(a > 0)) return;
  if (a > 1) a = 1;
  uint8_t *p = c->px + ((size_t)y * c->w + x) * 3; /* p: (3,) */
  const int col[3] = {(int)(rgb >> 16 & 255), (int)(rgb >> 8 & 255), (int)(rgb & 255)};
  for (int k = 0; k < 3; k++) p[k] = (uint8_t)lrintf(p[k] + (col[k] - p[k]) * a);
}

/* ---- lines ---- */

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void nnl_draw_line(nnl_canvas *c, double x0, double y0, double x1, double y1, double width,
                   uint32_t rgb) {
  if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1) || !(width > 0)) return;
  double r = width < 1 ? 0.5 : width * 0.5, reach = r + 1;
  double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  /* faint widths below one pixel draw as one pixel at partial strength */
  float strength = width < 1 ? (float)width : 1.0f;
  double ylo = clampd(floor(fmin(y0, y1) - reach), c->cy0, c->cy1);
  double yhi = clampd(ceil(fmax(y0, y1) + reach), c->cy0, c->cy1);
  for (int py = (int)ylo; py < (int)yhi; py++) {
    double cy = py + 0.5;
    /* the x range of the segment where it passes within reach of this row */
    double xa = fmin(x0, x1), xb = fmax(x0, x1);
    if (dy != 0) {
      double ta = clampd((cy - reach - y0) / dy, 0, 1), tb = clampd((cy + reach - y0) / dy, 0, 1);
      xa = fmin(x0 + ta * dx, x0 + tb * dx);
      xb = fmax(x0 + ta * dx, x0 + tb * dx);
    }
    int pxa = (int)clampd(floor(xa - reach), c->cx0, c->cx1);
    int pxb = (int)clampd(ceil(xb + reach), c->cx0, c->cx1);
    for (int px = pxa; px < pxb; px++) {
      double cx = px + 0.5;
      double t = len2 > 0 ? clampd(((cx - x0) * dx + (cy - y0) * dy) / len2, 0, 1) : 0;
      double ex = cx - (x0 + t * dx), ey = cy - (y0 + t * dy);
      double a = r + 0.5 - sqrt(ex * ex + ey * ey);
      if (a > 0) nnl_draw_blend(c, px, py, rgb, (float)(a > 1 ? 1 : a) * strength);
    }
  }
}

void nnl_draw_polyline(nnl_canvas *c, const double *xs, const double *ys, size_t n, double width,
                       uint32_t rgb) {
  if (n == 1) nnl_draw_line(c, xs[0], ys[0], xs[0], ys[0], width, rgb);
  for (size_t i = 1; i < n; i++) nnl_draw_line(c, xs[i - 1], ys[i - 1], xs[i], ys[i], width, rgb);
}

/* ---- text ---- */

int nnl_text_width(const char *s, size_t n, int scale, int *lines) {
  int best = 0, cur = 0, nl = n > 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\n') {
      nl++;
      cur = 0;
      continue;
    }
    cur++;
    if (cur > best) best = cur;
  }
  if (lines) *lines = nl;
  return best ? (best * NNL_FONT_CW - 1) * scale : 0;
}

void nnl_draw_text(nnl_canvas *c, int x, int y, const char *s, size_t n, int scale, int up,
                   uint32_t rgb) {
  if (scale < 1) scale = 1;
  int u0 = 0, v0 = 0; /* text-space origin of the current character */
  for (size_t k = 0; k < n; k++) {
    unsigned char ch = (unsigned char)s[k];
    if (ch == '\n') {
      u0 = 0;
      v0 += NNL_FONT_CH * scale;
      continue;
    }
    /* past any canvas: skip the glyph, and keep the offsets from overflowing */
    if (u0 > 2 * NNL_CANVAS_MAX || v0 > 2 * NNL_CANVAS_MAX) continue;
    const uint8_t *g = nnl_font_glyph(ch);
    for (int i = 0; i < NNL_FONT_W; i++)
      for (int j = 0; j < NNL_FONT_H; j++) {
        if (!(g[i] >> j & 1)) continue;
        int u = u0 + i * scale, v = v0 + j * scale;
        if (up)
          nnl_draw_fill(c, x + v, y - u - scale, scale, scale, rgb);
        else
          nnl_draw_fill(c, x + u, y + v, scale, scale, rgb);
      }
    u0 += NNL_FONT_CW * scale;
  }
}

/* ---- blit ---- */

void nnl_draw_blit(nnl_canvas *c, int x, int y, const uint8_t *src, int h, int w, int ch,
                   int zoom) {
  /* src: (h, w, ch) */
  if (zoom < 1) zoom = 1;
  for (long long j = 0; j < (long long)h * zoom; j++) {
    long long py = y + j;
    if (py < c->cy0 || py >= c->cy1) continue;
    const uint8_t *row = src + (size_t)(j / zoom) * w * ch;
    uint8_t *dst = c->px + (size_t)py * c->w * 3;
    for (long long i = 0; i < (long long)w * zoom; i++) {
      long long px = x + i;
      if (px < c->cx0 || px >= c->cx1) continue;
      const uint8_t *s = row + (size_t)(i / zoom) * ch;
      uint8_t *d = dst + px * 3;
      if (ch == 1) {
        d[0] = d[1] = d[2] = s[0];
      } else if (ch == 2) {
        for (int k = 0; k < 3; k++) d[k] = (uint8_t)((s[0] * s[1] + d[k] * (255 - s[1]) + 127) / 255);
      } else if (ch == 4) {
        for (int k = 0; k < 3; k++) d[k] = (uint8_t)((s[k] * s[3] + d[k] * (255 - s[3]) + 127) / 255);
      } else {
        d[0] = s[0];
        d[1] = s[1];
        d[2] = s[2];
      }
    }
  }
}
