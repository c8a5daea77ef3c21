/* graph.c — graph nodes, reference counting and the backward engine.
 * Reverse mode, define-by-run: ops record nodes; backward visits them in topological order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../core/tensor.h"
#include "anomaly.h"
#include "autograd.h"

static _Thread_local int grad_on = 1;

int nnl_grad_enabled(void) { return grad_on; }

int nnl_set_grad_enabled(int on) {
  int prev = grad_on;
  grad_on = on != 0;
  return prev;
}

int nnl_ag_needed(nnl_tensor *const *inputs, int n) {
  if (!grad_on) return 0;
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->requires_grad) return 1;
  return 0;
}

nnl_node *nnl_node_new(const char *name, nnl_backward_fn bw, nnl_tensor *const *inputs, int n) {
  nnl_node *nd = calloc(1, sizeof *nd);
  if (!nd) {
    nnl_set_error("out of memory");
    return NULL;
  }
  nd->refcount = 1;
  nd->name = name;
  nd->backward = bw;
  nd->n_inputs = n;
  nd->next = nd->next_small;
  if (n > NNL_MAX_INPUTS && !(nd->next = calloc(n, sizeof *nd->next))) {
    free(nd);
    nnl_set_error("out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    nnl_tensor *t = inputs[i];
    if (!t || !t->requires_grad) continue;
    if (t->grad_fn) {
      nd->next[i].fn = t->grad_fn;
      nnl_node_retain(t->grad_fn);
      nd->next[i].output_nr = t->output_nr;
    } else {
      nd->next[i].leaf = nnl_tensor_retain(t);
    }
  }
  return nd;
}

int nnl_node_save(nnl_node *n, nnl_tensor *t) {
  int k = n->n_saved++;
  n->saved[k] = t ? nnl_raw_alias(t, t->ndim, t->shape, t->stride, t->offset) : NULL;
  return k;
}

void nnl_node_set_output(nnl_node *n, nnl_tensor *out, int k) {
  nnl_node_retain(n);
  if (out->grad_fn) nnl_node_release(out->grad_fn);
  out->grad_fn = n;
  out->requires_grad = 1;
  out->output_nr = k;
  n->out_ndim[k] = out->ndim;
  memcpy(n->out_shape[k], out->shape, sizeof out->shape);
  if (n->n_outputs < k + 1) n->n_outputs = k + 1;
}

void nnl_node_retain(nnl_node *n) { n->refcount++; }

int nnl_node_input_needs(const nnl_node *n, int i) {
  return n->next[i].fn != NULL || n->next[i].leaf != NULL;
}

static void free_saved(nnl_node *n) {
  for (int i = 0; i < n->n_saved; i++) {
    nnl_tensor_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  if (n->free_ctx && n->ctx) n->free_ctx(n->ctx);
  n->ctx = NULL;
  n->released = 1;
}

/* Iterative, so a graph thousands of nodes deep cannot overflow the C stack. */
void nnl_node_release(nnl_node *n) {
  nnl_node *stack_small[64], **stack = stack_small;
  int top = 0, cap = 64;
  stack[top++] = n;
  while (top) {
    nnl_node *x = stack[--top];
    if (--x->refcount > 0) continue;
    free_saved(x);
    for (int k = 0; k < NNL_MAX_OUTPUTS; k++) nnl_tensor_release(x->acc[k]);
    for (int i = 0; i < x->n_inputs; i++) {
      nnl_tensor_release(x->next[i].leaf);
      if (!x->next[i].fn) continue;
      if (top == cap) {
        nnl_node **bigger = malloc(2 * cap * sizeof *bigger);
        if (!bigger) { /* give up freeing the rest rather than crash */
          x->next[i].fn = NULL;
          continue;
        }
        memcpy(bigger, stack, top * sizeof *stack);
        if (stack != stack_small) free(stack);
        stack = bigger;
        cap *= 2;
      }
      stack[top++] = x->next[i].fn;
    }
    if (x->next != x->next_small) free(x->next);
    free(x);
  }
  if (stack != stack_small) free(stack);
}

/* ---- gradient helpers ---- */

int nnl_same_shape(const nnl_tensor *a, const nnl_tensor *b) {
  return a->ndim == b->ndim && !memcmp(a->shape, b->shape, a->ndim * sizeof a->shape[0]);
}

nnl_tensor *nnl_ag_contig(nnl_tensor *t) {
  if (t->dtype == NNL_F32) return nnl_raw_contiguous(t);
  return nnl_raw_to_dtype(t, NNL_F32);
}

nnl_tensor *nnl_sum_to(nnl_tensor *g, int ndim, const int64_t *shape) {
  if (g->ndim == ndim && !memcmp(g->shape, shape, ndim * sizeof *shape)) return nnl_tensor_retain(g);
  nnl_tensor *out = nnl_tensor_zeros(NNL_F32, ndim, shape);
  nnl_tensor *gc = out ? nnl_ag_contig(g) : NULL;
  if (!gc) {
    nnl_tensor_release(out);
    return NULL;
  }
  /* out viewed with g's rank, broadcast dims stride 0: accumulate every g element */
  int64_t ost[NNL_MAXDIM];
  int off = g->ndim - ndim;
  for (int d = 0; d < g->ndim; d++) {
    int j = d - off;
    ost[d] = (j < 0 || shape[j] == 1) ? 0 : out->stride[j];
  }
  const float *gp = nnl_tensor_data(gc);
  float *op = out->storage->data;
  int64_t n = nnl_tensor_numel(gc), inner = g->ndim ? g->shape[g->ndim - 1] : 1;
  int64_t idx[NNL_MAXDIM] = {0}, o = 0, is = g->ndim ? ost[g->ndim - 1] : 0;
  for (int64_t i = 0; i < n; i += inner) {
    if (is == 0) {
      double s = 0;
      for (int64_t k = 0; k < inner; k++) s += gp[i + k];
      op[o] += (float)s;
    } else {
      for (int64_t k = 0; k < inner; k++) op[o + k * is] += gp[i + k];
    }
    for (int d = g->ndim - 2; d >= 0; d--) {
      o += ost[d];
      if (++idx[d] < g->shape[d]) break;
      o -= idx[d] * ost[d];
      idx[d] = 0;
    }
  }
  nnl_tensor_release(gc);
  return out;
}

/* g is a float32 tensor over all of its storage, referenced from nowhere else: it can become a
 * leaf's .grad without a copy. */
static int owned_f32(const nnl_tensor *g) {
  return g->dtype == NNL_F32 && nnl_tensor_is_contiguous(g) && g->refcount == 1 &&
         g->storage->refcount == 1 && g->offset == 0 &&
         g->storage->nbytes == (size_t)nnl_tensor_numel(g) * sizeof(float);
}

/* acc += g (both float32, same shape); acc becomes a fresh contiguous tensor if NULL. */
static int accumulate(nnl_tensor **acc, nnl_tensor *g) {
  if (!*acc) {
    *acc = g->dtype == NNL_F32 && nnl_tensor_is_contiguous(g) && g->refcount == 1 &&
                   g->storage->refcount == 1
               ? nnl_tensor_retain(g)
               : nnl_raw_to_dtype(g, NNL_F32);
    return *acc ? 0 : -1;
  }
  nnl_tensor *gc = nnl_ag_contig(g);
  if (!gc) return -1;
  if (!nnl_tensor_is_contiguous(*acc) || (*acc)->refcount > 1 || (*acc)->storage->refcount > 1) {
    nnl_tensor *c = nnl_raw_clone(*acc); /* never write into memory someone else sees */
    if (!c) {
      nnl_tensor_release(gc);
      return -1;
    }
    nnl_tensor_release(*acc);
    *acc = c;
  }
  float *a = nnl_tensor_data(*acc);
  const float *b = nnl_tensor_data(gc);
  int64_t n = nnl_tensor_numel(gc);
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) a[i] += b[i];
  nnl_tensor_release(gc);
  return 0;
}

/* Leaf .grad: accumulate in place into the existing buffer (optimizers hold it). */
static int accumulate_leaf(nnl_tensor *leaf, nnl_tensor *g) {
  if (!leaf->grad) {
    /* always private: a gradient nobody else holds (a backward's fresh buffer) is taken as it
     * is, anything else is copied */
    leaf->grad = owned_f32(g) ? nnl_tensor_retain(g) : nnl_raw_to_dtype(g, NNL_F32);
    return leaf->grad ? 0 : -1;
  }
  if (!nnl_tensor_is_contiguous(leaf->grad)) {
    nnl_tensor *c = nnl_raw_clone(leaf->grad);
    if (!c) return -1;
    nnl_tensor_release(leaf->grad);
    leaf->grad = c;
  }
  nnl_tensor *gc = nnl_ag_contig(g);
  if (!gc) return -1;
  float *a = nnl_tensor_data(leaf->grad);
  const float *b = nnl_tensor_data(gc);
  int64_t n = nnl_tensor_numel(gc);
#pragma omp parallel for simd if (parallel : n > NNL_PAR_MIN)
  for (int64_t i = 0; i < n; i++) a[i] += b[i];
  nnl_tensor_release(gc);
  return 0;
}

const char *nnl_grad_fn_name(const nnl_tensor *t) { return t->grad_fn ? t->grad_fn->name : NULL; }

typedef struct {
  nnl_node **v;
  int n, cap;
} nodevec;

static int push(nodevec *s, nnl_node *n) {
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    nnl_node **v = realloc(s->v, cap * sizeof *v);
    if (!v) {
      nnl_set_error("backward: out of memory");
      return -1;
    }
    s->v = v, s->cap = cap;
  }
  s->v[s->n++] = n;
  return 0;
}

static int visit_epoch = 0;

/* detect_anomaly: name the node whose backward made a NaN or Inf (inputs counted from 1). */
static int anomalous_grad(const nnl_node *x, int input, const nnl_tensor *g) {
  char what[160];
  snprintf(what, sizeof what, "in the gradient computed by %s (input %d)", x->name, input + 1);
  return nnl_anomaly_check(g, what) != 0;
}

int nnl_backward(nnl_tensor *root, nnl_tensor *gradient, int retain_graph) {
  char a[160], b[160];
  if (!root->requires_grad) {
    nnl_set_error("backward: tensor does not require grad and has no grad_fn");
    return -1;
  }
  nnl_tensor *g0;
  if (!gradient) {
    if (nnl_tensor_numel(root) != 1) {
      nnl_set_error("backward: grad can be implicitly created only for scalar outputs, "
                    "got size %s; pass a gradient of the same size",
                    nnl_shape_str(root, a, sizeof a));
      return -1;
    }
    g0 = nnl_tensor_full(NNL_F32, root->ndim, root->shape, 1.0);
  } else {
    if (!nnl_same_shape(root, gradient)) {
      nnl_set_error("backward: gradient has size %s but the tensor has size %s",
                    nnl_shape_str(gradient, a, sizeof a), nnl_shape_str(root, b, sizeof b));
      return -1;
    }
    g0 = nnl_ag_contig(gradient);
  }
  if (!g0) return -1;
  if (!root->grad_fn) {
    int rc = accumulate_leaf(root, g0);
    nnl_tensor_release(g0);
    return rc;
  }
  int prev = nnl_set_grad_enabled(0);
  int rc = -1;
  nodevec all = {0}, ready = {0};
  /* collect the graph and count, for each node, the edges that point at it */
  int epoch = ++visit_epoch;
  if (push(&all, root->grad_fn)) goto done;
  root->grad_fn->visit = epoch;
  root->grad_fn->deps = 0;
  for (int i = 0; i < all.n; i++) {
    nnl_node *x = all.v[i];
    if (x->released) {
      nnl_set_error("backward: trying to backward through the graph a second time (%s's saved "
                    "tensors were freed); pass retain_graph = true to the first backward",
                    x->name);
      goto done;
    }
    for (int k = 0; k < x->n_inputs; k++) {
      nnl_node *y = x->next[k].fn;
      if (!y) continue;
      if (y->visit != epoch) {
        y->visit = epoch;
        y->deps = 0;
        if (push(&all, y)) goto done;
      }
      y->deps++;
    }
  }
  for (int i = 0; i < all.n; i++) nnl_node_retain(all.v[i]);
  if (accumulate(&root->grad_fn->acc[root->output_nr], g0)) goto release;
  if (push(&ready, root->grad_fn)) goto release;
  while (ready.n) {
    nnl_node *x = ready.v[--ready.n];
    nnl_tensor *gout[NNL_MAX_OUTPUTS] = {0}, *gin_small[NNL_MAX_INPUTS] = {0}, **gin = gin_small;
    int err = 0;
    if (x->n_inputs > NNL_MAX_INPUTS && !(gin = calloc(x->n_inputs, sizeof *gin))) {
      nnl_set_error("backward: out of memory");
      goto release;
    }
    for (int k = 0; k < x->n_outputs && !err; k++) {
      gout[k] = x->acc[k] ? x->acc[k] : nnl_tensor_zeros(NNL_F32, x->out_ndim[k], x->out_shape[k]);
      x->acc[k] = NULL;
      if (!gout[k]) err = 1;
    }
    if (!err && x->backward(x, gout, gin) != 0) err = 1;
    for (int k = 0; k < x->n_outputs; k++) nnl_tensor_release(gout[k]);
    for (int i = 0; i < x->n_inputs && !err; i++) {
      if (!gin[i]) continue;
      nnl_edge *e = &x->next[i];
      const nnl_tensor *want = e->leaf;
      int wnd = want ? want->ndim : (e->fn ? e->fn->out_ndim[e->output_nr] : gin[i]->ndim);
      const int64_t *wsh = want ? want->shape : (e->fn ? e->fn->out_shape[e->output_nr] : gin[i]->shape);
      if (gin[i]->ndim != wnd || memcmp(gin[i]->shape, wsh, wnd * sizeof *wsh)) {
        nnl_set_error("backward: %s produced a gradient of size %s for input %d of size %s",
                      x->name, nnl_shape_str(gin[i], a, sizeof a), i + 1,
                      nnl_shape_fmt(wnd, wsh, b, sizeof b));
        err = 1;
      } else if (nnl_anomaly_mode && anomalous_grad(x, i, gin[i])) {
        err = 1;
      } else if (e->leaf) {
        err = accumulate_leaf(e->leaf, gin[i]) != 0;
      } else if (e->fn) {
        err = accumulate(&e->fn->acc[e->output_nr], gin[i]) != 0;
      }
    }
    for (int i = 0; i < x->n_inputs; i++) nnl_tensor_release(gin[i]);
    if (gin != gin_small) free(gin);
    if (err) goto release;
    if (!retain_graph) free_saved(x);
    for (int i = 0; i < x->n_inputs; i++) {
      nnl_node *y = x->next[i].fn;
      if (y && --y->deps == 0 && push(&ready, y)) goto release;
    }
  }
  rc = 0;
release:
  for (int i = 0; i < all.n; i++) {
    for (int k = 0; k < NNL_MAX_OUTPUTS; k++) {
      nnl_tensor_release(all.v[i]->acc[k]);
      all.v[i]->acc[k] = NULL;
    }
    nnl_node_release(all.v[i]);
  }
done:
  nnl_tensor_release(g0);
  free(all.v);
  free(ready.v);
  nnl_set_grad_enabled(prev);
  return rc;
}
