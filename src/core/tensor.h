/* tensor.h — core internals: raw (non-recording) views and copies that the autograd layer wraps.
 * Public functions of the same name without "raw_" live in src/autograd and record graph nodes. */
#ifndef NNL_CORE_TENSOR_H
#define NNL_CORE_TENSOR_H

#include "../nnlua.h"

/* A new tensor header over t's storage (retained) with the given geometry. */
nnl_tensor *nnl_raw_alias(const nnl_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset);
nnl_tensor *nnl_raw_view(nnl_tensor *t, int ndim, const int64_t *shape, const char *fn);
nnl_tensor *nnl_raw_transpose(nnl_tensor *t, int d0, int d1);
nnl_tensor *nnl_raw_permute(nnl_tensor *t, const int *perm);
nnl_tensor *nnl_raw_narrow(nnl_tensor *t, int dim, int64_t start, int64_t len);
nnl_tensor *nnl_raw_select(nnl_tensor *t, int dim, int64_t index);
nnl_tensor *nnl_raw_squeeze(nnl_tensor *t, int dim);
nnl_tensor *nnl_raw_unsqueeze(nnl_tensor *t, int dim);
nnl_tensor *nnl_raw_expand(nnl_tensor *t, int ndim, const int64_t *shape, const char *fn);
nnl_tensor *nnl_raw_contiguous(nnl_tensor *t); /* retains t if already contiguous */
nnl_tensor *nnl_raw_clone(const nnl_tensor *t);  /* always a fresh contiguous copy */
nnl_tensor *nnl_raw_to_dtype(const nnl_tensor *t, nnl_dtype dt);
/* Broadcast shapes of a and b into out (returns ndim, -1 on mismatch with an error
 * message naming fn). */
int nnl_broadcast_shape(const nnl_tensor *a, const nnl_tensor *b, int64_t *out, const char *fn);
/* Contiguous strides for a shape. */
void nnl_contig_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t nnl_shape_numel(int ndim, const int64_t *shape);
/* "[2,3]" for a raw shape. */
char *nnl_shape_fmt(int ndim, const int64_t *shape, char *buf, size_t n);

#endif
