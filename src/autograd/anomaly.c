/* anomaly.c — detect_anomaly: the scan for NaN and Inf behind nn.detect_anomaly, used by the
 * backward engine on every gradient a node produces and by the Lua face on every op result. */
#include <math.h>
#include <stdio.h>

#include "../core/parallel.h"
#include "../core/tensor.h"
#include "anomaly.h"

int nnl_anomaly_mode = 0;

int nnl_set_anomaly_enabled(int on) {
  int prev = nnl_anomaly_mode;
  nnl_anomaly_mode = on != 0;
  return prev;
}

int nnl_anomaly_enabled(void) { return nnl_anomaly_mode; }

int64_t nnl_anomaly_find(const nnl_tensor *t, float *value) {
  if (t->dtype != NNL_F32) return -1;
  nnl_tensor *c = nnl_raw_contiguous((nnl_tensor *)t); /* retained when already contiguous */
  if (!c) return -2;
  const float *x = nnl_tensor_data(c); /* x: (numel) */
  int64_t n = nnl_tensor_numel(c), first = -1;
  int bad = 0;
  /* the common case is "all finite": a parallel any-test, then a serial search for the first */
#pragma omp parallel for reduction(| : bad) if (n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
  if (bad) {
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(x[i])) {
        first = i;
        if (value) *value = x[i];
        break;
      }
    }
  }
  nnl_tensor_release(c);
  return first;
}

int nnl_anomaly_check(const nnl_tensor *t, const char *what) {
  float v = 0;
  int64_t pos = nnl_anomaly_find(t, &v);
  if (pos == -1) return 0;
  if (pos == -2) {
    nnl_set_error("detect_anomaly: out of memory while checking the result %s", what);
    return -1;
  }
  if (t->ndim == 0) {
    nnl_set_error("detect_anomaly: %s %s: the value of a 0-d tensor",
                  isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf", what);
    return -1;
  }
  int64_t idx[NNL_MAXDIM];
  for (int d = t->ndim - 1; d >= 0; d--) { /* flat position -> 1-based index */
    idx[d] = pos % t->shape[d] + 1;
    pos /= t->shape[d];
  }
  char at[160], size[160];
  nnl_shape_fmt(t->ndim, idx, at, sizeof at);
  nnl_shape_fmt(t->ndim, t->shape, size, sizeof size);
  nnl_set_error("detect_anomaly: %s %s: element %s of a tensor of size %s",
                isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf", what, at, size);
  return -1;
}
