/* anomaly.h — detect_anomaly: find the first NaN or Inf an op produces, in forward or backward.
 * Off by default; when off, callers pay one test of nnl_anomaly_mode. */
#ifndef NNL_ANOMALY_H
#define NNL_ANOMALY_H

#include "../nnlua.h"

/* Process-wide switch (not per thread: one Lua state drives the graph). Read it directly on hot
 * paths; change it with nnl_set_anomaly_enabled. */
extern int nnl_anomaly_mode;

/* Turn the checks on (1) or off (0); returns the previous setting. */
int nnl_set_anomaly_enabled(int on);
int nnl_anomaly_enabled(void);

/* The first element of t (float32, any strides) that is NaN or +-Inf, as a flat row-major
 * position; -1 when every element is finite (and for other dtypes). -2 when out of memory. */
int64_t nnl_anomaly_find(const nnl_tensor *t, float *value);

/* 0 when t holds only finite values; otherwise -1 with the error
 * "detect_anomaly: <NaN|Inf|-Inf> <what>: element [i,j] of a tensor of size [m,n]"
 * (1-based indices), e.g. what = "produced by LogBackward's forward (log)". */
int nnl_anomaly_check(const nnl_tensor *t, const char *what);

#endif
