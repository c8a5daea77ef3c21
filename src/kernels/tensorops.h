/* tensorops.h — tensor compute kernels: elementwise, reductions, indexing, plus the printer.
 * Kernels take already-allocated tensors (no allocation, no autograd, no Lua); dims are 0-based. */
#ifndef NNL_TENSOROPS_H
#define NNL_TENSOROPS_H

#include "../nnlua.h"

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

static inline int64_t nnl_k_itemsize(nnl_dtype dt) {
  return dt == NNL_F32 ? 4 : dt == NNL_I64 ? 8 : 1;
}
static inline int64_t nnl_k_numel(const nnl_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}
/* Row-major dense; strides of size-1 dims do not matter. */
static inline int nnl_k_is_contiguous(const nnl_tensor *t) {
  int64_t expect = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != expect) return 0;
    expect *= t->shape[d];
  }
  return 1;
}

/* Conventions shared by every kernel below.
 * - Inputs may be any strided view. Broadcasting is the caller's job: inputs arrive
 *   with out's ndim and shape, broadcast dims having stride 0. out may be strided too
 *   (in-place ops pass a view), but must not partially overlap an input.
 * - Functions returning int give 0, or -1 after nnl_set_error() on a dtype/shape the
 *   kernel does not handle or an out-of-range index; nothing is written on failure.
 *   Messages start with the kernel's short name: "binary: ...", "gather: ...". */

/* ---- elementwise (elementwise.c) ---- */

/* out = a op b. F32: all ops. I64: ADD SUB MUL POW MAXIMUM MINIMUM (DIV is refused:
 * convert to float first). out, a, b share one dtype. MAXIMUM/MINIMUM propagate NaN. */
int nnl_k_binary(nnl_binop op, nnl_tensor *out, const nnl_tensor *a, const nnl_tensor *b);
/* out = a op s, or s op a when scalar_first. s is converted to a's dtype (F32/I64). */
int nnl_k_binary_scalar(nnl_binop op, nnl_tensor *out, const nnl_tensor *a, double s,
                        int scalar_first);
/* out = op(a). F32: every op. I64: NEG ABS SQUARE SIGN FLOOR CEIL ROUND. */
int nnl_k_unary(nnl_unop op, nnl_tensor *out, const nnl_tensor *a);
/* gin += gout * d op(x)/dx on contiguous buffers of n floats. x is the input, y = op(x)
 * the saved output; an op reads only one of them, the other may be NULL:
 * x for LOG ABS RELU SIN COS SQUARE, y for EXP SQRT TANH SIGMOID RSQRT RECIP,
 * neither for NEG SIGN FLOOR CEIL ROUND (the last four have zero gradient). */
void nnl_k_unary_backward(nnl_unop op, float *gin, const float *gout, const float *x,
                          const float *y, int64_t n);
/* out = min(max(a, lo), hi) (F32, I64); +-inf leave an end open; NaN stays NaN. */
int nnl_k_clamp(nnl_tensor *out, const nnl_tensor *a, double lo, double hi);
/* out (U8) = a op b as 0/1; a and b of any dtypes, compared as double. */
int nnl_k_compare(nnl_cmpop op, nnl_tensor *out, const nnl_tensor *a, const nnl_tensor *b);
int nnl_k_compare_scalar(nnl_cmpop op, nnl_tensor *out, const nnl_tensor *a, double s);
/* out = cond ? a : b; cond U8; out, a, b share one dtype (any). */
int nnl_k_where(nnl_tensor *out, const nnl_tensor *cond, const nnl_tensor *a,
                const nnl_tensor *b);
/* out[mask != 0] = v, where out already holds a copy of the input; mask U8. */
int nnl_k_masked_fill(nnl_tensor *out, const nnl_tensor *mask, double v);
/* every element of out = v converted to out's dtype (any dtype, any strides). */
void nnl_k_fill(nnl_tensor *out, double v);

/* ---- reductions (reduce.c) ---- */

/* Reduce all of a to one value. F32: every op. I64/U8: SUM PROD MAX MIN ARGMAX ARGMIN.
 * *result gets the value (for ARGMAX/ARGMIN: the index). *index (may be NULL) gets:
 * for MAX MIN ARGMAX ARGMIN the row-major position of the first extreme (a NaN counts
 * as the extreme, as in PyTorch); for SUM/PROD of integer inputs the exact int64 result
 * (wrapping on overflow); else 0. Sums accumulate in double per thread and combine in
 * thread order: deterministic for a given thread count. STD/VAR divide by
 * max(0, n - correction). Fails on an empty a for MAX MIN ARGMAX ARGMIN. */
int nnl_k_reduce_all(nnl_redop op, const nnl_tensor *a, double *result, int64_t *index,
                     int correction);
/* Reduce a over dim into contiguous out (a's shape with dim removed, or kept as 1: same
 * memory). dtypes: F32 in -> F32 out for value ops; SUM/PROD of I64/U8 -> I64 out;
 * MAX/MIN of I64/U8 -> input dtype; ARGMAX/ARGMIN -> I64 out. indices (contiguous I64,
 * out's numel, or NULL) gets the argmax/argmin position along dim for MAX/MIN. A 0-d a
 * is reduced as if it had shape [1]. */
int nnl_k_reduce_dim(nnl_redop op, nnl_tensor *out, nnl_tensor *indices, const nnl_tensor *a,
                     int dim, int correction);

/* ---- indexing (index.c); indices are 0-based int64 tensors of any strides ----
 * Every index is checked before anything is written; a bad one fails with
 * "<kernel>: index <i> is out of range for dimension <d> of size <n>". */

/* out = a.index_select(dim, index): index 1-D (or 0-d); out has a's shape with
 * size(dim) = numel(index); out and a share a dtype (any). */
int nnl_k_index_select(nnl_tensor *out, const nnl_tensor *a, int dim, const nnl_tensor *index);
/* out[i][j][k] = a[i][index[i][j][k]][k] (dim 1). index has a's ndim and size <= a's in
 * every dim but dim; out has index's shape and a's dtype. */
int nnl_k_gather(nnl_tensor *out, const nnl_tensor *a, int dim, const nnl_tensor *index);
/* out[i][index[i][j][k]][k] += src[i][j][k] (dim 1); out already holds self. F32/I64.
 * index has out's ndim and size <= out's except along dim, src >= index everywhere.
 * Runs in a fixed order (threads own disjoint slices of out): deterministic. */
int nnl_k_scatter_add(nnl_tensor *out, int dim, const nnl_tensor *index, const nnl_tensor *src);
/* out.index_add_(dim, index, src): out[.., index[i], ..] += src[.., i, ..]; index 1-D;
 * src has out's shape with size(dim) = numel(index). F32/I64. Deterministic. */
int nnl_k_index_add(nnl_tensor *out, int dim, const nnl_tensor *index, const nnl_tensor *src);
/* out (I64, index's shape + [C], contiguous) = one-hot of index. Bad class:
 * "one_hot: class <i> is out of range for <C> classes". */
int nnl_k_one_hot(nnl_tensor *out, const nnl_tensor *index, int64_t num_classes);
/* Backward of max/min along dim: gin[.., indices[..], ..] += gout[..]. gin F32 (any
 * strides); gout F32 and indices I64 have gin's shape with dim removed or kept as 1. */
int nnl_k_scatter_dim(nnl_tensor *gin, const nnl_tensor *gout, const nnl_tensor *indices,
                      int dim);

/* ---- printing (src/core/print.c) ---- */

/* PyTorch-style repr: "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])".
 * Shows ", dtype=int64" / ", dtype=uint8" for non-float tensors, elides with "..." when
 * numel > max_elems (edge items kept at each end of every dim), then appends
 * ", <suffix>" when suffix is non-NULL (e.g. "requires_grad=True"), wrapping it to a new
 * line past 80 columns as PyTorch does. Returns a malloc'd string (caller frees), or
 * NULL on allocation failure. */
char *nnl_tensor_format(const nnl_tensor *t, int max_elems, int edge, const char *suffix);

/* ---- internal: strided iteration shared by the kernel files ---- */

#define NNL_ITER_MAXOPS 4
/* Up to 4 operands of one shape walked in row-major order. Size-1 dims are dropped and
 * dims contiguous in every operand merged, so a contiguous tensor becomes one run and
 * a row broadcast becomes rows of unit stride. */
typedef struct nnl_k_iter {
  int nops, ndim;
  int64_t numel;
  int64_t shape[NNL_MAXDIM];
  int64_t stride[NNL_ITER_MAXOPS][NNL_MAXDIM]; /* elements */
  char *data[NNL_ITER_MAXOPS];                 /* element 0 of each operand's view */
  int64_t itemsize[NNL_ITER_MAXOPS];
} nnl_k_iter;
/* One run of n elements: p[k] is operand k's first element, s[k] its stride (elements). */
typedef void (*nnl_k_run_fn)(void *ctx, char **p, const int64_t *s, int64_t n);
/* ops[k] must all have ops[0]'s shape (checked by the caller). */
void nnl_k_iter_init(nnl_k_iter *it, int nops, const nnl_tensor *const *ops);
/* Visit row-major positions [lo, hi) as runs, in order. */
void nnl_k_iter_range(const nnl_k_iter *it, int64_t lo, int64_t hi, nnl_k_run_fn fn,
                      void *ctx);
/* Visit everything, split into one contiguous range per thread when work > NNL_PAR_MIN.
 * fn must only write the elements it is given. */
void nnl_k_iter_run(const nnl_k_iter *it, nnl_k_run_fn fn, void *ctx, int64_t work);
/* 1 if t has exactly shape (ndim, shape); else sets "<what>: <name> has shape [..] but
 * expected [..]" and returns 0. */
int nnl_k_check_shape(const char *what, const char *name, const nnl_tensor *t, int ndim,
                      const int64_t *shape);

#endif
