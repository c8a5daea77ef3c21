/* rnn.h — kernels of the recurrent layers: Elman RNN (tanh or relu), LSTM and GRU over a whole
 * sequence, forward and backpropagation through time. Plain float pointers, forward above backward. */
#ifndef NNL_RNN_H
#define NNL_RNN_H

#include <stdint.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

/* Conventions (as in dense.h):
 * - sequences are time-major: X (T, N, D), Y (T, N, H); weights in PyTorch's layout, G gates
 *   stacked along the rows: W_ih (G*H, D), W_hh (G*H, H), b_ih and b_hh (G*H). G = 1 for the
 *   RNN, 4 for the LSTM (i, f, g, o), 3 for the GRU (r, z, n);
 * - h0 and c0 may be NULL (zeros), biases may be NULL (zeros);
 * - per layer: ONE sgemm projects the inputs of all timesteps, then ONE sgemm per step applies
 *   W_hh to h_{t-1} for all gates; the gate arithmetic is fused in one pass over (N, H);
 * - the final states are the last rows of the sequence outputs: h_n = Y[T-1], c_n = C[T-1];
 * - a backward ACCUMULATES (+=) into its gradient buffers (NULL: not needed, the work that only
 *   feeds it is skipped) and takes its scratch buffers from the caller: kernels never allocate;
 * - dY is the gradient of every h_t; dhT (dcT) the extra gradient of the final h_T (c_T) that
 *   reached it through h_n (c_n), or NULL for none;
 * - sizes T*N, G*H, D and H must fit in int (sgemm); results do not depend on the thread count. */

/* ---- Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu ---- */
void nnl_rnn_forward(float *Y,         /* (T, N, H) out: h_1..h_T */
                     const float *X,   /* (T, N, D) */
                     const float *h0,  /* (N, H) or NULL */
                     const float *Wih, /* (H, D) */
                     const float *Whh, /* (H, H) */
                     const float *bih, /* (H) or NULL */
                     const float *bhh, /* (H) or NULL */
                     int T, int N, int D, int H, int relu);
void nnl_rnn_backward(float *dX,        /* (T, N, D) or NULL */
                      float *dh0,       /* (N, H) or NULL */
                      float *dWih,      /* (H, D) or NULL */
                      float *dWhh,      /* (H, H) or NULL */
                      float *dbih,      /* (H) or NULL */
                      float *dbhh,      /* (H) or NULL */
                      float *dA,        /* (T, N, H) scratch: gradients of the pre-activations */
                      float *dh,        /* (N, H) scratch */
                      const float *Y,   /* (T, N, H) from forward */
                      const float *X,   /* (T, N, D); may be NULL when dWih is NULL */
                      const float *h0,  /* (N, H) or NULL */
                      const float *Wih, /* (H, D); may be NULL when dX is NULL */
                      const float *Whh, /* (H, H) */
                      const float *dY,  /* (T, N, H) */
                      const float *dhT, /* (N, H) or NULL */
                      int T, int N, int D, int H, int relu);

/* ---- LSTM (PyTorch's gates i, f, g, o):
 * i, f, o = sigmoid(.), g = tanh(.) of x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
 * c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t) ---- */
void nnl_lstm_forward(float *Y,         /* (T, N, H) out: h_1..h_T */
                      float *C,         /* (T, N, H) out: c_1..c_T */
                      float *gates,     /* (T, N, 4H) out: activated gates, saved for backward */
                      const float *X,   /* (T, N, D) */
                      const float *h0,  /* (N, H) or NULL */
                      const float *c0,  /* (N, H) or NULL */
                      const float *Wih, /* (4H, D) */
                      const float *Whh, /* (4H, H) */
                      const float *bih, /* (4H) or NULL */
                      const float *bhh, /* (4H) or NULL */
                      int T, int N, int D, int H);
void nnl_lstm_backward(float *dX,          /* (T, N, D) or NULL */
                       float *dh0,         /* (N, H) or NULL */
                       float *dc0,         /* (N, H) or NULL */
                       float *dWih,        /* (4H, D) or NULL */
                       float *dWhh,        /* (4H, H) or NULL */
                       float *dbih,        /* (4H) or NULL */
                       float *dbhh,        /* (4H) or NULL */
                       float *dG,          /* (T, N, 4H) scratch: gradients of the gate inputs */
                       float *dh,          /* (N, H) scratch */
                       float *dc,          /* (N, H) scratch */
                       const float *Y,     /* (T, N, H) from forward */
                       const float *C,     /* (T, N, H) from forward */
                       const float *gates, /* (T, N, 4H) from forward */
                       const float *X,     /* (T, N, D); may be NULL when dWih is NULL */
                       const float *h0,    /* (N, H) or NULL */
                       const float *c0,    /* (N, H) or NULL */
                       const float *Wih,   /* (4H, D); may be NULL when dX is NULL */
                       const float *Whh,   /* (4H, H) */
                       const float *dY,    /* (T, N, H) */
                       const float *dhT,   /* (N, H) or NULL */
                       const float *dcT,   /* (N, H) or NULL */
                       int T, int N, int D, int H);

/* ---- GRU (PyTorch's gates r, z, n):
 * r, z = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z});
 * n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn));  h_t = (1 - z) * n + z * h_{t-1} ---- */
void nnl_gru_forward(float *Y,         /* (T, N, H) out: h_1..h_T */
                     float *gates,     /* (T, N, 3H) out: r, z, n, saved for backward */
                     float *ghn,       /* (T, N, H) out: h_{t-1} W_hn^T + b_hn, saved */
                     float *work,      /* (N, 3H) scratch */
                     const float *X,   /* (T, N, D) */
                     const float *h0,  /* (N, H) or NULL */
                     const float *Wih, /* (3H, D) */
                     const float *Whh, /* (3H, H) */
                     const float *bih, /* (3H) or NULL */
                     const float *bhh, /* (3H) or NULL */
                     int T, int N, int D, int H);
void nnl_gru_backward(float *dX,          /* (T, N, D) or NULL */
                      float *dh0,         /* (N, H) or NULL */
                      float *dWih,        /* (3H, D) or NULL */
                      float *dWhh,        /* (3H, H) or NULL */
                      float *dbih,        /* (3H) or NULL */
                      float *dbhh,        /* (3H) or NULL */
                      float *dGx,         /* (T, N, 3H) scratch: gradients of x W_ih^T + b_ih */
                      float *dGh,         /* (T, N, 3H) scratch: gradients of h W_hh^T + b_hh */
                      float *dh,          /* (N, H) scratch */
                      const float *Y,     /* (T, N, H) from forward */
                      const float *gates, /* (T, N, 3H) from forward */
                      const float *ghn,   /* (T, N, H) from forward */
                      const float *X,     /* (T, N, D); may be NULL when dWih is NULL */
                      const float *h0,    /* (N, H) or NULL */
                      const float *Wih,   /* (3H, D); may be NULL when dX is NULL */
                      const float *Whh,   /* (3H, H) */
                      const float *dY,    /* (T, N, H) */
                      const float *dhT,   /* (N, H) or NULL */
                      int T, int N, int D, int H);

#endif
