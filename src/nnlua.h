/* nnlua.h — the public C API: tensors, autograd, ops, and the Lua entry point.
 * Everything here works without Lua except luaopen_nnlua and the nnl_lua_* helpers. */
#ifndef NNLUA_H
#define NNLUA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNL_VERSION "0.1.0"
#define NNL_MAXDIM 8

typedef enum { NNL_F32 = 0, NNL_I64 = 1, NNL_U8 = 2 } nnl_dtype;

/* Errors: a function that fails returns NULL (or -1) and leaves a message here.
 * The message is thread-local and stays until the next failure. */
const char *nnl_last_error(void);
void nnl_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *nnl_dtype_name(nnl_dtype dt); /* "float32", "int64", "uint8" */
size_t nnl_dtype_size(nnl_dtype dt);

/* Refcounted memory, 64-byte aligned unless wrapped from a host. */
typedef struct nnl_storage {
  void *data;
  size_t nbytes;
  size_t capacity; /* bytes actually allocated (ours only) */
  int refcount;
  void (*release)(void *ctx, void *data); /* NULL: we own data (aligned free) */
  void *ctx;
} nnl_storage;

struct nnl_node;

/* A strided view on a storage. Shapes, strides and offset count elements. */
typedef struct nnl_tensor {
  int refcount;
  nnl_dtype dtype;
  int ndim;
  int64_t shape[NNL_MAXDIM];
  int64_t stride[NNL_MAXDIM];
  int64_t offset;
  nnl_storage *storage;
  /* autograd */
  int requires_grad;       /* leaf flag set by the user, or "has a grad_fn" */
  struct nnl_tensor *grad; /* accumulated gradient of a leaf (or retained) */
  struct nnl_node *grad_fn;
  int output_nr;           /* which output of grad_fn this is */
  int retains_grad;
} nnl_tensor;

/* ---- lifetime ---- */
nnl_tensor *nnl_tensor_retain(nnl_tensor *t);
void nnl_tensor_release(nnl_tensor *t); /* NULL-safe */
size_t nnl_tensor_nbytes_total(void);   /* live storage bytes, for the GC */
void nnl_storage_trim(void);            /* return cached free blocks to the system */

/* ---- creation (all return a new reference or NULL) ---- */
nnl_tensor *nnl_tensor_empty(nnl_dtype dt, int ndim, const int64_t *shape);
nnl_tensor *nnl_tensor_zeros(nnl_dtype dt, int ndim, const int64_t *shape);
nnl_tensor *nnl_tensor_full(nnl_dtype dt, int ndim, const int64_t *shape, double v);
nnl_tensor *nnl_tensor_empty_like(const nnl_tensor *t);
nnl_tensor *nnl_tensor_zeros_like(const nnl_tensor *t);
nnl_tensor *nnl_tensor_scalar(nnl_dtype dt, double v); /* 0-d */
/* Wrap host memory without copying; release(ctx, data) runs when the last view dies
 * (release may be NULL when the host keeps the memory alive itself). */
nnl_tensor *nnl_tensor_wrap(void *data, nnl_dtype dt, int ndim, const int64_t *shape,
                            const int64_t *strides, void (*release)(void *, void *), void *ctx);
nnl_tensor *nnl_tensor_from_buffer(const void *data, nnl_dtype dt, int ndim,
                                   const int64_t *shape); /* copies */
nnl_tensor *nnl_arange(double start, double end, double step, nnl_dtype dt);
nnl_tensor *nnl_linspace(double start, double end, int64_t n);
nnl_tensor *nnl_eye(int64_t n, int64_t m);

/* ---- inspection ---- */
int64_t nnl_tensor_numel(const nnl_tensor *t);
int nnl_tensor_is_contiguous(const nnl_tensor *t);
void *nnl_tensor_data(const nnl_tensor *t); /* pointer to element 0 of the view */
/* Format a shape as "[2,3]" into buf (returns buf). */
char *nnl_shape_str(const nnl_tensor *t, char *buf, size_t n);
double nnl_tensor_get(const nnl_tensor *t, const int64_t *idx); /* 0-based, unchecked */
void nnl_tensor_set(nnl_tensor *t, const int64_t *idx, double v);
/* Copy out into a dense buffer of the same dtype (numel elements). */
int nnl_tensor_copy_out(const nnl_tensor *t, void *dst);

/* ---- views (share storage; dims are 0-based in C) ---- */
nnl_tensor *nnl_view(nnl_tensor *t, int ndim, const int64_t *shape); /* -1 infers */
nnl_tensor *nnl_reshape(nnl_tensor *t, int ndim, const int64_t *shape);
nnl_tensor *nnl_transpose(nnl_tensor *t, int d0, int d1);
nnl_tensor *nnl_permute(nnl_tensor *t, const int *perm);
nnl_tensor *nnl_narrow(nnl_tensor *t, int dim, int64_t start, int64_t len);
nnl_tensor *nnl_select(nnl_tensor *t, int dim, int64_t index);
nnl_tensor *nnl_squeeze(nnl_tensor *t, int dim); /* dim -1: all size-1 dims */
nnl_tensor *nnl_unsqueeze(nnl_tensor *t, int dim);
nnl_tensor *nnl_expand(nnl_tensor *t, int ndim, const int64_t *shape);
nnl_tensor *nnl_contiguous(nnl_tensor *t); /* same tensor retained if already */
nnl_tensor *nnl_clone(nnl_tensor *t);
nnl_tensor *nnl_detach(nnl_tensor *t); /* shares storage, no grad_fn */
nnl_tensor *nnl_to_dtype(nnl_tensor *t, nnl_dtype dt);
nnl_tensor *nnl_cat(nnl_tensor **ts, int n, int dim);
nnl_tensor *nnl_stack(nnl_tensor **ts, int n, int dim);
/* dst[...] = src (broadcast src to dst's shape; dtype converted). No autograd. */
int nnl_copy_(nnl_tensor *dst, const nnl_tensor *src);
int nnl_fill_(nnl_tensor *dst, double v);

/* ---- RNG: counter-based, so results do not depend on thread count ---- */
void nnl_manual_seed(uint64_t seed);
void nnl_rng_get_state(uint64_t *seed, uint64_t *offset);
void nnl_rng_set_state(uint64_t seed, uint64_t offset);
/* Reserve n draws; returns the first counter. Draw i is nnl_rng_u64(seed, c + i). */
uint64_t nnl_rng_reserve(uint64_t n, uint64_t *seed);
uint64_t nnl_rng_u64(uint64_t seed, uint64_t counter);
nnl_tensor *nnl_rand(int ndim, const int64_t *shape);  /* U[0,1) */
nnl_tensor *nnl_randn(int ndim, const int64_t *shape); /* N(0,1) */
nnl_tensor *nnl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape); /* [lo,hi) */
nnl_tensor *nnl_randperm(int64_t n); /* 0..n-1 permuted, int64 */
int nnl_uniform_(nnl_tensor *t, double lo, double hi);
int nnl_normal_(nnl_tensor *t, double mean, double std);

/* ---- threads ---- */
void nnl_set_num_threads(int n);
int nnl_get_num_threads(void);

/* ---- autograd ---- */
int nnl_grad_enabled(void);
int nnl_set_grad_enabled(int on); /* returns the previous setting */
int nnl_backward(nnl_tensor *root, nnl_tensor *gradient /* NULL for scalars */,
                 int retain_graph);
const char *nnl_grad_fn_name(const nnl_tensor *t);

/* ---- differentiable ops (record a node when grad is on and an input needs it) ---- */
typedef enum {
  NNL_OP_ADD, NNL_OP_SUB, NNL_OP_MUL, NNL_OP_DIV, NNL_OP_POW, NNL_OP_MAXIMUM, NNL_OP_MINIMUM
} nnl_binop;
typedef enum {
  NNL_OP_NEG, NNL_OP_EXP, NNL_OP_LOG, NNL_OP_SQRT, NNL_OP_ABS, NNL_OP_TANH,
  NNL_OP_SIGMOID, NNL_OP_RELU, NNL_OP_SIN, NNL_OP_COS, NNL_OP_RSQRT, NNL_OP_SQUARE,
  NNL_OP_SIGN, NNL_OP_FLOOR, NNL_OP_CEIL, NNL_OP_ROUND, NNL_OP_RECIP
} nnl_unop;
typedef enum { NNL_CMP_EQ, NNL_CMP_NE, NNL_CMP_LT, NNL_CMP_LE, NNL_CMP_GT, NNL_CMP_GE } nnl_cmpop;
typedef enum {
  NNL_RED_SUM, NNL_RED_MEAN, NNL_RED_MAX, NNL_RED_MIN, NNL_RED_PROD,
  NNL_RED_ARGMAX, NNL_RED_ARGMIN, NNL_RED_STD, NNL_RED_VAR
} nnl_redop;

nnl_tensor *nnl_binary(nnl_binop op, nnl_tensor *a, nnl_tensor *b);
nnl_tensor *nnl_binary_scalar(nnl_binop op, nnl_tensor *a, double s, int scalar_first);
nnl_tensor *nnl_unary(nnl_unop op, nnl_tensor *a);
nnl_tensor *nnl_clamp(nnl_tensor *a, double lo, double hi); /* +-inf for open ends */
nnl_tensor *nnl_compare(nnl_cmpop op, nnl_tensor *a, nnl_tensor *b);        /* uint8 */
nnl_tensor *nnl_compare_scalar(nnl_cmpop op, nnl_tensor *a, double s);      /* uint8 */
nnl_tensor *nnl_where(nnl_tensor *cond, nnl_tensor *a, nnl_tensor *b);
nnl_tensor *nnl_masked_fill(nnl_tensor *a, nnl_tensor *mask, double v);
/* dim < 0: over all elements (0-d result). For max/min with a dim, *indices gets
 * the argmax (0-based int64) when non-NULL. correction: 1 for unbiased std/var. */
nnl_tensor *nnl_reduce(nnl_redop op, nnl_tensor *a, int dim, int keepdim,
                       nnl_tensor **indices);
nnl_tensor *nnl_matmul(nnl_tensor *a, nnl_tensor *b);
nnl_tensor *nnl_index_select(nnl_tensor *a, int dim, nnl_tensor *index); /* 0-based */
nnl_tensor *nnl_gather(nnl_tensor *a, int dim, nnl_tensor *index);       /* 0-based */
nnl_tensor *nnl_scatter_add(nnl_tensor *a, int dim, nnl_tensor *index, nnl_tensor *src);
nnl_tensor *nnl_one_hot(nnl_tensor *index, int64_t num_classes); /* 0-based -> int64 */

#ifdef __cplusplus
}
#endif

#ifdef NNLUA_WITH_LUA_API
/* Lua side (defined in the module): include lua.h before this header. */
int luaopen_nnlua_core(lua_State *L); /* the C module, "nnlua.core" */
int luaopen_nnlua(lua_State *L);      /* preloads nnlua.core and requires "nnlua" */
/* Push a tensor (takes a new reference); check an argument is a tensor. */
void nnl_lua_push_tensor(lua_State *L, nnl_tensor *t);
nnl_tensor *nnl_lua_check_tensor(lua_State *L, int arg);
nnl_tensor *nnl_lua_to_tensor(lua_State *L, int arg); /* NULL if not a tensor */
#endif

#endif
