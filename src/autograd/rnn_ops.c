/* rnn_ops.c — the recurrent layers as single autograd nodes: rnn (tanh, relu), lstm and gru over
 * a whole sequence (backpropagation through time in the kernel), and their one-step cells. */
#include <limits.h>
#include <string.h>

#include "../core/tensor.h"
#include "../kernels/rnn.h"
#include "autograd.h"
#include "layers.h"

enum { K_TANH, K_RELU, K_LSTM, K_GRU };
static const int n_gates[] = {1, 1, 4, 3};
static const char *const fn_seq[] = {"rnn", "rnn", "lstm", "gru"};
static const char *const fn_cell[] = {"rnn_cell", "rnn_cell", "lstm_cell", "gru_cell"};
static const char *const node_seq[] = {"RnnTanhBackward", "RnnReluBackward", "LstmBackward",
                                       "GruBackward"};
static const char *const node_cell[] = {"RnnTanhCellBackward", "RnnReluCellBackward",
                                        "LstmCellBackward", "GruCellBackward"};

/* The node's inputs, in this order. */
enum { IN_X, IN_H0, IN_C0, IN_WIH, IN_WHH, IN_BIH, IN_BHH, N_IN };
/* Its saved tensors: time-major X, h0, c0, the weights, every h_t, the gates, and the LSTM's
 * cell states or the GRU's h W_hn^T + b_hn. */
enum { SV_X, SV_H0, SV_C0, SV_WIH, SV_WHH, SV_Y, SV_GATES, SV_AUX };
/* Its integer parameters. */
enum { P_KIND, P_CELL, P_BF, P_T, P_N, P_D, P_H, P_XND, P_XSHAPE };

typedef struct {
  int kind, cell, batched, bf; /* bf: batch_first on a batched sequence */
  int64_t T, N, D, H, G;
  const char *fn;
} rnn_dims;

static float *fdata(const nnl_tensor *t) { return t ? nnl_tensor_data(t) : NULL; }

/* ---- argument checks ---- */

static int check_float(const rnn_dims *k, nnl_tensor *t, const char *what) {
  if (!t || t->dtype == NNL_F32) return 0;
  nnl_set_error("%s: %s must be a float32 tensor, got %s", k->fn, what, nnl_dtype_name(t->dtype));
  return -1;
}

/* A state (h0 or c0): (N, H), or (H) for an unbatched input. */
static int check_state(const rnn_dims *k, nnl_tensor *s, const char *what) {
  char a[160], b[160];
  if (!s) return 0;
  int64_t want[2] = {k->N, k->H};
  int nd = k->batched ? 2 : 1;
  if (s->ndim == nd && !memcmp(s->shape, want + 2 - nd, nd * sizeof *want)) return 0;
  nnl_set_error("%s: %s must have size %s (%s), got %s", k->fn, what,
                nnl_shape_fmt(nd, want + 2 - nd, a, sizeof a),
                k->batched ? "batch, hidden_size" : "hidden_size", nnl_shape_str(s, b, sizeof b));
  return -1;
}

static int check_bias(const rnn_dims *k, nnl_tensor *b, const char *what) {
  char a[160];
  if (!b || (b->ndim == 1 && b->shape[0] == k->G * k->H)) return 0;
  nnl_set_error("%s: %s must have size [%lld] (%s), got %s", k->fn, what,
                (long long)(k->G * k->H), k->G > 1 ? "gates * hidden_size" : "hidden_size",
                nnl_shape_str(b, a, sizeof a));
  return -1;
}

static const char *x_layout(const rnn_dims *k, int batch_first) {
  if (k->cell) return "(batch, input_size) or (input_size)";
  return batch_first ? "(batch, seq_len, input_size) or (seq_len, input_size)"
                     : "(seq_len, batch, input_size) or (seq_len, input_size)";
}

static int check_args(rnn_dims *k, nnl_tensor *const *in, int batch_first) {
  char a[160], b[160];
  static const char *const names[N_IN] = {"input", "h0", "c0", "weight_ih", "weight_hh",
                                          "bias_ih", "bias_hh"};
  for (int i = 0; i < N_IN; i++)
    if (check_float(k, in[i], names[i])) return -1;
  nnl_tensor *x = in[IN_X], *wih = in[IN_WIH], *whh = in[IN_WHH];
  const char *gh = k->G > 1 ? (k->G == 4 ? "4*hidden_size" : "3*hidden_size") : "hidden_size";
  if (whh->ndim != 2 || whh->shape[0] != k->G * whh->shape[1]) {
    nnl_set_error("%s: weight_hh must be 2-D [%s, hidden_size], got %s", k->fn, gh,
                  nnl_shape_str(whh, a, sizeof a));
    return -1;
  }
  k->H = whh->shape[1];
  if (wih->ndim != 2 || wih->shape[0] != k->G * k->H) {
    nnl_set_error("%s: weight_ih must be 2-D [%s, input_size] = [%lld, input_size] to match "
                  "weight_hh %s, got %s", k->fn, gh, (long long)(k->G * k->H),
                  nnl_shape_str(whh, b, sizeof b), nnl_shape_str(wih, a, sizeof a));
    return -1;
  }
  k->D = wih->shape[1];
  int full = k->cell ? 2 : 3;
  if (x->ndim != full && x->ndim != full - 1) {
    nnl_set_error("%s: input must be %s, got %s", k->fn, x_layout(k, batch_first),
                  nnl_shape_str(x, a, sizeof a));
    return -1;
  }
  k->batched = x->ndim == full;
  k->bf = batch_first && k->batched && !k->cell;
  if (x->shape[x->ndim - 1] != k->D) {
    nnl_set_error("%s: input %s has %lld features but weight_ih %s expects input_size = %lld",
                  k->fn, nnl_shape_str(x, a, sizeof a), (long long)x->shape[x->ndim - 1],
                  nnl_shape_str(wih, b, sizeof b), (long long)k->D);
    return -1;
  }
  k->T = k->cell ? 1 : x->shape[k->bf ? 1 : 0];
  k->N = !k->batched ? 1 : x->shape[k->cell || k->bf ? 0 : 1];
  if (k->T < 1) {
    nnl_set_error("%s: sequence length must be at least 1, got input %s", k->fn,
                  nnl_shape_str(x, a, sizeof a));
    return -1;
  }
  if (check_state(k, in[IN_H0], k->cell ? "hx" : "h0") ||
      check_state(k, in[IN_C0], k->cell ? "cx" : "c0") ||
      check_bias(k, in[IN_BIH], "bias_ih") || check_bias(k, in[IN_BHH], "bias_hh"))
    return -1;
  if (k->T * k->N > INT_MAX || k->G * k->H > INT_MAX || k->D > INT_MAX) {
    nnl_set_error("%s: input %s or weight_ih %s too large for BLAS (sizes must fit in int)",
                  k->fn, nnl_shape_str(x, a, sizeof a), nnl_shape_str(wih, b, sizeof b));
    return -1;
  }
  return 0;
}

/* ---- backward ---- */

static nnl_tensor *zeros_of(int ndim, const int64_t *shape) {
  return nnl_tensor_zeros(NNL_F32, ndim, shape);
}

static int bw_recurrent(nnl_node *n, nnl_tensor **gout, nnl_tensor **gin) {
  int kind = (int)n->ip[P_KIND], cell = (int)n->ip[P_CELL], bf = (int)n->ip[P_BF];
  int T = (int)n->ip[P_T], N = (int)n->ip[P_N], D = (int)n->ip[P_D], H = (int)n->ip[P_H];
  int64_t GH = n_gates[kind] * (int64_t)H, NH = (int64_t)N * H, TN = (int64_t)T * N;
  int64_t wih_shape[2] = {GH, D}, whh_shape[2] = {GH, H};
  nnl_tensor **sv = n->saved;
  nnl_tensor *dy_tm = NULL, *dx_tm = NULL, *work = NULL;
  int rc = -1;

  /* gradients of the outputs: every h_t, then h_n and c_n (a cell's h' is its only h_t) */
  const float *dY = fdata(gout[0]), *dhT = NULL, *dcT = NULL;
  if (!cell) dhT = fdata(gout[1]);
  if (kind == K_LSTM) dcT = fdata(gout[cell ? 1 : 2]);
  if (bf) {
    nnl_tensor *v = nnl_raw_transpose(gout[0], 0, 1);
    dy_tm = v ? nnl_raw_clone(v) : NULL;
    nnl_tensor_release(v);
    if (!dy_tm) goto done;
    dY = fdata(dy_tm);
  }

  if (nnl_node_input_needs(n, IN_X)) {
    int64_t tm[3] = {T, N, D};
    if (!(dx_tm = bf ? zeros_of(3, tm) : zeros_of((int)n->ip[P_XND], &n->ip[P_XSHAPE])))
      goto done;
    if (!(gin[IN_X] = bf ? nnl_raw_transpose(dx_tm, 0, 1) : nnl_tensor_retain(dx_tm))) goto done;
  }
  if (nnl_node_input_needs(n, IN_H0) && !(gin[IN_H0] = nnl_tensor_zeros_like(sv[SV_H0])))
    goto done;
  if (nnl_node_input_needs(n, IN_C0) && !(gin[IN_C0] = nnl_tensor_zeros_like(sv[SV_C0])))
    goto done;
  if (nnl_node_input_needs(n, IN_WIH) && !(gin[IN_WIH] = zeros_of(2, wih_shape))) goto done;
  if (nnl_node_input_needs(n, IN_WHH) && !(gin[IN_WHH] = zeros_of(2, whh_shape))) goto done;
  if (nnl_node_input_needs(n, IN_BIH) && !(gin[IN_BIH] = zeros_of(1, &GH))) goto done;
  if (nnl_node_input_needs(n, IN_BHH) && !(gin[IN_BHH] = zeros_of(1, &GH))) goto done;

  /* one workspace: the gate gradients of every step (two sets for the GRU) and the running
   * state gradients */
  int64_t dg = TN * GH, wsize = (kind == K_GRU ? 2 * dg : dg) + 2 * NH;
  if (!(work = nnl_tensor_empty(NNL_F32, 1, &wsize))) goto done;
  float *w = fdata(work);
  float *dX = fdata(dx_tm), *dh0 = fdata(gin[IN_H0]), *dc0 = fdata(gin[IN_C0]);
  float *dWih = fdata(gin[IN_WIH]), *dWhh = fdata(gin[IN_WHH]);
  float *dbih = fdata(gin[IN_BIH]), *dbhh = fdata(gin[IN_BHH]);
  const float *X = fdata(sv[SV_X]), *h0 = fdata(sv[SV_H0]), *c0 = fdata(sv[SV_C0]);
  const float *Wih = fdata(sv[SV_WIH]), *Whh = fdata(sv[SV_WHH]), *Y = fdata(sv[SV_Y]);
  const float *gates = fdata(sv[SV_GATES]), *aux = fdata(sv[SV_AUX]);
  switch (kind) {
  case K_LSTM:
    nnl_lstm_backward(dX, dh0, dc0, dWih, dWhh, dbih, dbhh, w, w + dg, w + dg + NH, Y, aux, gates,
                      X, h0, c0, Wih, Whh, dY, dhT, dcT, T, N, D, H);
    break;
  case K_GRU:
    nnl_gru_backward(dX, dh0, dWih, dWhh, dbih, dbhh, w, w + dg, w + 2 * dg, Y, gates, aux, X, h0,
                     Wih, Whh, dY, dhT, T, N, D, H);
    break;
  default:
    nnl_rnn_backward(dX, dh0, dWih, dWhh, dbih, dbhh, w, w + dg, Y, X, h0, Wih, Whh, dY, dhT, T,
                     N, D, H, kind == K_RELU);
  }
  rc = 0;
done:
  nnl_tensor_release(dy_tm), nnl_tensor_release(dx_tm), nnl_tensor_release(work);
  return rc;
}

/* ---- forward ---- */

/* Row T-1 of a time-major sequence (T, ...) as a new tensor. */
static nnl_tensor *last_step(nnl_tensor *seq, int64_t T) {
  nnl_tensor *v = nnl_raw_select(seq, 0, T - 1);
  nnl_tensor *c = v ? nnl_raw_clone(v) : NULL;
  nnl_tensor_release(v);
  return c;
}

/* in: N_IN tensors (h0, c0, biases may be NULL). out[0]: the output (or h'), out[1], out[2]:
 * h_n and c_n (or the LSTM cell's c'); entries past the op's outputs stay NULL. */
static int recurrent(int kind, int cell, int batch_first, nnl_tensor *const *in,
                     nnl_tensor **out) {
  rnn_dims k = {.kind = kind, .cell = cell, .G = n_gates[kind]};
  k.fn = cell ? fn_cell[kind] : fn_seq[kind];
  out[0] = out[1] = out[2] = NULL;
  if (check_args(&k, in, batch_first)) return -1;
  int T = (int)k.T, N = (int)k.N, D = (int)k.D, H = (int)k.H;
  nnl_tensor *c[N_IN] = {0}, *y = NULL, *gates = NULL, *aux = NULL, *work = NULL;
  int ok = 1;
  if (k.bf) {
    nnl_tensor *v = nnl_raw_transpose(in[IN_X], 0, 1);
    c[IN_X] = v ? nnl_raw_contiguous(v) : NULL;
    nnl_tensor_release(v);
    ok = c[IN_X] != NULL;
  }
  for (int i = 0; i < N_IN && ok; i++)
    if (in[i] && !c[i]) ok = (c[i] = nnl_raw_contiguous(in[i])) != NULL;

  /* every h_t: in the output's own shape unless batch_first reorders it */
  int64_t tnh[3] = {k.T, k.N, k.H}, th[2] = {k.T, k.H}, gshape[3] = {k.T, k.N, k.G * k.H};
  int64_t wshape[2] = {k.N, 3 * k.H};
  int ynd = 3;
  const int64_t *yshape = tnh;
  if (cell || !k.batched) ynd = 2, yshape = cell ? tnh + 1 : th;
  if (cell && !k.batched) ynd = 1, yshape = tnh + 2;
  if (ok) ok = (y = nnl_tensor_empty(NNL_F32, ynd, yshape)) != NULL;
  if (ok) ok = (gates = nnl_tensor_empty(NNL_F32, 3, gshape)) != NULL;
  if (ok && kind >= K_LSTM) ok = (aux = nnl_tensor_empty(NNL_F32, ynd, yshape)) != NULL;
  if (ok && kind == K_GRU) ok = (work = nnl_tensor_empty(NNL_F32, 2, wshape)) != NULL;
  if (ok) {
    const float *X = fdata(c[IN_X]), *h0 = fdata(c[IN_H0]), *Wih = fdata(c[IN_WIH]);
    const float *Whh = fdata(c[IN_WHH]), *bih = fdata(c[IN_BIH]), *bhh = fdata(c[IN_BHH]);
    if (kind == K_LSTM)
      nnl_lstm_forward(fdata(y), fdata(aux), fdata(gates), X, h0, fdata(c[IN_C0]), Wih, Whh, bih,
                       bhh, T, N, D, H);
    else if (kind == K_GRU)
      nnl_gru_forward(fdata(y), fdata(gates), fdata(aux), fdata(work), X, h0, Wih, Whh, bih, bhh,
                      T, N, D, H);
    else
      nnl_rnn_forward(fdata(y), X, h0, Wih, Whh, bih, bhh, T, N, D, H, kind == K_RELU);
  }

  /* the outputs: a cell's are its buffers; a sequence's are every h_t and copies of the last */
  int n_out = 0;
  if (ok && cell) {
    out[n_out++] = nnl_tensor_retain(y);
    if (kind == K_LSTM) out[n_out++] = nnl_tensor_retain(aux);
  } else if (ok) {
    nnl_tensor *v = k.bf ? nnl_raw_transpose(y, 0, 1) : NULL;
    ok = (out[n_out++] = k.bf ? (v ? nnl_raw_clone(v) : NULL) : nnl_tensor_retain(y)) != NULL;
    nnl_tensor_release(v);
    if (ok) ok = (out[n_out++] = last_step(y, k.T)) != NULL;
    if (ok && kind == K_LSTM) ok = (out[n_out++] = last_step(aux, k.T)) != NULL;
  }

  nnl_node *n = NULL;
  if (ok && nnl_ag_needed(in, N_IN)) {
    n = nnl_node_new(cell ? node_cell[kind] : node_seq[kind], bw_recurrent, in, N_IN);
    ok = n != NULL;
  }
  if (n) {
    n->ip[P_KIND] = kind, n->ip[P_CELL] = cell, n->ip[P_BF] = k.bf;
    n->ip[P_T] = T, n->ip[P_N] = N, n->ip[P_D] = D, n->ip[P_H] = H;
    n->ip[P_XND] = in[IN_X]->ndim;
    memcpy(&n->ip[P_XSHAPE], in[IN_X]->shape, in[IN_X]->ndim * sizeof(int64_t));
    /* X only feeds dW_ih, W_ih only dX */
    nnl_node_save(n, nnl_node_input_needs(n, IN_WIH) ? c[IN_X] : NULL);
    nnl_node_save(n, c[IN_H0]);
    nnl_node_save(n, c[IN_C0]);
    nnl_node_save(n, nnl_node_input_needs(n, IN_X) ? c[IN_WIH] : NULL);
    nnl_node_save(n, c[IN_WHH]);
    nnl_node_save(n, y);
    nnl_node_save(n, gates);
    nnl_node_save(n, aux);
    for (int i = 0; i < n_out; i++) nnl_node_set_output(n, out[i], i);
    nnl_node_release(n);
  }
  for (int i = 0; i < N_IN; i++) nnl_tensor_release(c[i]);
  nnl_tensor_release(y), nnl_tensor_release(gates), nnl_tensor_release(aux);
  nnl_tensor_release(work);
  if (!ok)
    for (int i = 0; i < 3; i++) nnl_tensor_release(out[i]), out[i] = NULL;
  return ok ? 0 : -1;
}

/* Hand out[0] to the caller and the other outputs through the pointers (NULL: dropped). */
static nnl_tensor *give(nnl_tensor **out, nnl_tensor **a, nnl_tensor **b) {
  if (a) *a = out[1];
  else nnl_tensor_release(out[1]);
  if (b) *b = out[2];
  else nnl_tensor_release(out[2]);
  return out[0];
}

nnl_tensor *nnl_rnn(nnl_tensor **h_n, nnl_tensor *x, nnl_tensor *h0, nnl_tensor *w_ih,
                    nnl_tensor *w_hh, nnl_tensor *b_ih, nnl_tensor *b_hh, int relu,
                    int batch_first) {
  nnl_tensor *in[N_IN] = {x, h0, NULL, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(relu ? K_RELU : K_TANH, 0, batch_first, in, out)) return NULL;
  return give(out, h_n, NULL);
}

nnl_tensor *nnl_lstm(nnl_tensor **h_n, nnl_tensor **c_n, nnl_tensor *x, nnl_tensor *h0,
                     nnl_tensor *c0, nnl_tensor *w_ih, nnl_tensor *w_hh, nnl_tensor *b_ih,
                     nnl_tensor *b_hh, int batch_first) {
  nnl_tensor *in[N_IN] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(K_LSTM, 0, batch_first, in, out)) return NULL;
  return give(out, h_n, c_n);
}

nnl_tensor *nnl_gru(nnl_tensor **h_n, nnl_tensor *x, nnl_tensor *h0, nnl_tensor *w_ih,
                    nnl_tensor *w_hh, nnl_tensor *b_ih, nnl_tensor *b_hh, int batch_first) {
  nnl_tensor *in[N_IN] = {x, h0, NULL, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(K_GRU, 0, batch_first, in, out)) return NULL;
  return give(out, h_n, NULL);
}

nnl_tensor *nnl_rnn_cell(nnl_tensor *x, nnl_tensor *h, nnl_tensor *w_ih, nnl_tensor *w_hh,
                         nnl_tensor *b_ih, nnl_tensor *b_hh, int relu) {
  nnl_tensor *in[N_IN] = {x, h, NULL, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(relu ? K_RELU : K_TANH, 1, 0, in, out)) return NULL;
  return give(out, NULL, NULL);
}

nnl_tensor *nnl_lstm_cell(nnl_tensor **c_new, nnl_tensor *x, nnl_tensor *h, nnl_tensor *c,
                          nnl_tensor *w_ih, nnl_tensor *w_hh, nnl_tensor *b_ih,
                          nnl_tensor *b_hh) {
  nnl_tensor *in[N_IN] = {x, h, c, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(K_LSTM, 1, 0, in, out)) return NULL;
  return give(out, c_new, NULL);
}

nnl_tensor *nnl_gru_cell(nnl_tensor *x, nnl_tensor *h, nnl_tensor *w_ih, nnl_tensor *w_hh,
                         nnl_tensor *b_ih, nnl_tensor *b_hh) {
  nnl_tensor *in[N_IN] = {x, h, NULL, w_ih, w_hh, b_ih, b_hh}, *out[3];
  if (recurrent(K_GRU, 1, 0, in, out)) return NULL;
  return give(out, NULL, NULL);
}
