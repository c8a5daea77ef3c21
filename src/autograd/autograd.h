/* autograd.h — graph nodes and the helpers every differentiable op uses.
 * An op: compute forward with kernels; if nnl_ag_needed(), make a node, save what backward needs. */
#ifndef NNL_AUTOGRAD_H
#define NNL_AUTOGRAD_H

#include "../nnlua.h"

#define NNL_MAX_INPUTS 8
#define NNL_MAX_OUTPUTS 4
#define NNL_MAX_SAVED 8

typedef struct nnl_node nnl_node;

/* gout[k]: gradient of output k (contiguous float32, output's shape), never NULL —
 * the engine fills zeros for outputs that got no gradient.
 * gin[i]: set to a new reference with input i's shape (any strides), or leave NULL
 * for "no gradient". Only inputs with nnl_node_input_needs(n, i) need one.
 * Return 0, or -1 with nnl_set_error(). Runs with grad recording off. */
typedef int (*nnl_backward_fn)(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin);

typedef struct nnl_edge {
  nnl_node *fn;      /* the input's grad_fn (retained), or NULL */
  nnl_tensor *leaf;  /* a leaf that requires grad (retained), or NULL */
  int output_nr;
} nnl_edge;

struct nnl_node {
  int refcount;
  const char *name;          /* "AddBackward", "LinearBackward", ... */
  nnl_backward_fn backward;
  int n_inputs;
  nnl_edge *next;                   /* n_inputs edges (next_small or heap) */
  nnl_edge next_small[NNL_MAX_INPUTS];
  int n_outputs;
  int out_ndim[NNL_MAX_OUTPUTS];
  int64_t out_shape[NNL_MAX_OUTPUTS][NNL_MAXDIM];
  int n_saved;
  nnl_tensor *saved[NNL_MAX_SAVED]; /* detached aliases: no reference cycles */
  double p[8];                      /* scalar parameters of the op */
  int64_t ip[24];
  void *ctx;                        /* op-specific, freed by free_ctx */
  void (*free_ctx)(void *ctx);
  int released;                     /* saved tensors freed after backward */
  /* engine scratch */
  nnl_tensor *acc[NNL_MAX_OUTPUTS];
  int deps;
  int visit;
};

/* 1 if grad mode is on and some input requires grad. NULL entries are skipped. */
int nnl_ag_needed(nnl_tensor *const *inputs, int n);
/* A node with edges to the inputs (NULL inputs allowed: no edge). */
nnl_node *nnl_node_new(const char *name, nnl_backward_fn bw, nnl_tensor *const *inputs, int n);
/* Save a detached alias of t (NULL allowed, stored as NULL). Returns its slot. */
int nnl_node_save(nnl_node *n, nnl_tensor *t);
/* Attach out as output k of n: out->grad_fn = n, out->requires_grad = 1. */
void nnl_node_set_output(nnl_node *n, nnl_tensor *out, int k);
/* Drop the creator's reference (call once after outputs are attached). */
void nnl_node_release(nnl_node *n);
void nnl_node_retain(nnl_node *n);
int nnl_node_input_needs(const nnl_node *n, int i);

/* Sum g down to shape (undo broadcasting). New reference. */
nnl_tensor *nnl_sum_to(nnl_tensor *g, int ndim, const int64_t *shape);

/* Helpers used by ops: a float32 contiguous copy-or-retain; shape equality. */
nnl_tensor *nnl_ag_contig(nnl_tensor *t);
int nnl_same_shape(const nnl_tensor *a, const nnl_tensor *b);

#endif
