/* error.c — the thread-local last-error message and dtype facts.
 * The core never exits on bad input: it fails with a message that src/bind raises in Lua. */
#include <stdarg.h>
#include <stdio.h>

#include "../nnlua.h"

static _Thread_local char errbuf[512];

const char *nnl_last_error(void) { return errbuf[0] ? errbuf : "unknown error"; }

void nnl_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
}

const char *nnl_dtype_name(nnl_dtype dt) {
  switch (dt) {
  case NNL_F32: return "float32";
  case NNL_I64: return "int64";
  case NNL_U8: return "uint8";
  }
  return "?";
}

size_t nnl_dtype_size(nnl_dtype dt) {
  switch (dt) {
  case NNL_F32: return 4;
  case NNL_I64: return 8;
  case NNL_U8: return 1;
  }
  return 0;
}
