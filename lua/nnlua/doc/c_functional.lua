-- doc/c_functional.lua: documentation of nn.F, the layer ops written in C with analytic backward
-- (src/bind/functional*.c), merged into doc/c_functions.lua.
local D = {}

D["nn.F"] = { summary = [[The layer ops as functions (C kernels, one autograd node each, analytic backward):
the nn modules (nn.Linear, nn.Conv2d, ...) call these with their parameters. Dimensions, labels and
indices are 1-based; optional arguments come in an option table, and a misspelt option is an error.]] }

local function f(name, sig, summary, params, returns, example)
  D["nn.F." .. name] = { signature = sig, summary = summary, params = params, returns = returns,
                         example = example }
end

local X = { "x", "Tensor", "float32 input" }
local REDUCTION = { "opts.reduction?", "string", '"mean" (default), "sum" or "none" (per element)' }

-- ---- dense ----

f("linear", "nn.F.linear(x, weight, bias?) -> Tensor",
  "y = x Wᵀ + b over the last dimension. Backward: dX = dY W, dW = dYᵀ X, db = Σ dY.",
  { { "x", "Tensor", "(..., in_features)" }, { "weight", "Tensor", "(out_features, in_features), PyTorch's layout" },
    { "bias?", "Tensor", "(out_features) or nil" } }, "Tensor: (..., out_features)",
  "local y = nn.F.linear(nn.randn(4, 3), nn.randn(2, 3), nn.zeros(2))   -- 4 x 2")
f("linear_relu", "nn.F.linear_relu(x, weight, bias?) -> Tensor",
  [[relu(linear(x, weight, bias)). When no gradient is recorded (nn.no_grad, or no input requires
grad) it is one pass: bias and ReLU are applied to each tile of the product while it is in
registers, and no intermediate is allocated. When one is, it runs as nn.F.linear then nn.F.relu,
with their two nodes. nn.Sequential uses it for a Linear followed by a ReLU.]],
  { { "x", "Tensor", "(..., in_features)" }, { "weight", "Tensor", "(out_features, in_features)" },
    { "bias?", "Tensor", "(out_features) or nil" } }, "Tensor: (..., out_features), >= 0",
  "nn.no_grad(function() print(nn.F.linear_relu(nn.randn(4, 3), nn.randn(2, 3))) end)")
f("flatten", "nn.F.flatten(x, start_dim?, end_dim?) -> Tensor",
  "Merge dimensions start_dim..end_dim into one; start_dim defaults to 2 (keep the batch), end_dim to the last.",
  { X, { "start_dim?", "integer", "default 2 (1 for a 1-D x)" }, { "end_dim?", "integer", "default the last" } },
  "Tensor", "print(nn.F.flatten(nn.zeros(8, 3, 4, 4)):size()[2])   -- 48")

-- ---- activations ----

f("relu", "nn.F.relu(x) -> Tensor", "max(0, x) elementwise (NaN stays NaN, as torch.relu).", { X }, "Tensor: x's size",
  "print(nn.F.relu(nn.tensor{-1, 2}))")
f("sigmoid", "nn.F.sigmoid(x) -> Tensor", "1 / (1 + e^-x) elementwise.", { X }, "Tensor: x's size",
  "print(nn.F.sigmoid(nn.tensor{0}))")
f("tanh", "nn.F.tanh(x) -> Tensor", "tanh elementwise.", { X }, "Tensor: x's size",
  "print(nn.F.tanh(nn.tensor{0, 1}))")
f("leaky_relu", "nn.F.leaky_relu(x, negative_slope?) | nn.F.leaky_relu(x, {negative_slope =}) -> Tensor",
  "x where x > 0, else negative_slope * x (default 0.01).",
  { X, { "negative_slope?", "number", "slope for x < 0 (default 0.01)" } }, "Tensor: x's size",
  "print(nn.F.leaky_relu(nn.tensor{-1, 1}, 0.2))")
f("gelu", 'nn.F.gelu(x, approximate?) | nn.F.gelu(x, {approximate = "tanh"}) -> Tensor',
  "x Φ(x) with Φ the standard normal CDF (exact, with erf), or its tanh approximation.",
  { X, { "approximate?", "string", '"none" (default) or "tanh"' } }, "Tensor: x's size",
  'print(nn.F.gelu(nn.tensor{-1, 0, 1}, "tanh"))')
f("softmax", "nn.F.softmax(x, dim?) -> Tensor",
  "exp(x) / Σ exp(x) along dim (default the last), computed stably.",
  { X, { "dim?", "integer", "1-based; default the last" } }, "Tensor: x's size, rows summing to 1",
  "print(nn.F.softmax(nn.tensor{{1, 2, 3}}, 2))")
f("log_softmax", "nn.F.log_softmax(x, dim?) -> Tensor",
  "log(softmax(x)) along dim (default the last), computed stably (x - logsumexp(x)).",
  { X, { "dim?", "integer", "1-based; default the last" } }, "Tensor: x's size",
  "print(nn.F.log_softmax(nn.tensor{{1, 2, 3}}))")

-- ---- losses ----

f("cross_entropy", "nn.F.cross_entropy(logits, labels, opts?) -> Tensor",
  "Softmax cross-entropy: -log softmax(logits)[label], averaged over the samples (one fused node).\n"
  .. "Labels are class numbers 1..C; a label equal to ignore_index is skipped.",
  { { "logits", "Tensor", "(N, C), (N, C, d...) or (C): unnormalised scores" },
    { "labels", "Tensor", "int64 (N), (N, d...) or 0-d: class numbers 1..C" },
    { "opts.weight?", "Tensor", "(C): a weight per class" },
    { "opts.ignore_index?", "integer", "labels to skip (default -100)" },
    { "opts.label_smoothing?", "number", "in [0, 1]: mix the target with the uniform distribution" },
    REDUCTION }, "Tensor: 0-d (or (N, d...) with reduction none)",
  'local logits = nn.randn(4, 10):requires_grad()\nlocal loss = nn.F.cross_entropy(logits, nn.tensor({1, 5, 10, 2}, "int64"))\nloss:backward()')
f("nll_loss", "nn.F.nll_loss(log_probs, labels, opts?) -> Tensor",
  "Negative log-likelihood: -log_probs[label] (pair it with log_softmax); options as cross_entropy\n"
  .. "without label_smoothing.",
  { { "log_probs", "Tensor", "(N, C), (N, C, d...) or (C)" }, { "labels", "Tensor", "int64 class numbers 1..C" },
    { "opts.weight?", "Tensor", "(C)" }, { "opts.ignore_index?", "integer", "default -100" }, REDUCTION },
  "Tensor: 0-d (or per sample)",
  'local lp = nn.F.log_softmax(nn.randn(3, 4))\nprint(nn.F.nll_loss(lp, nn.tensor({1, 2, 4}, "int64")))')
f("mse_loss", "nn.F.mse_loss(x, target, opts?) -> Tensor",
  "Mean squared error (x - target)², averaged (or summed, or per element).",
  { X, { "target", "Tensor", "x's size" }, REDUCTION }, "Tensor: 0-d (or x's size with none)",
  "print(nn.F.mse_loss(nn.tensor{1, 2}, nn.tensor{1, 4}))   -- 2")
f("binary_cross_entropy_with_logits", "nn.F.binary_cross_entropy_with_logits(logits, target, opts?) -> Tensor",
  "Sigmoid + binary cross-entropy in one stable op: -[y log σ(x) + (1 - y) log(1 - σ(x))].",
  { { "logits", "Tensor", "any shape" }, { "target", "Tensor", "logits' size, values in [0, 1]" },
    { "opts.weight?", "Tensor", "broadcast to logits: a weight per element" },
    { "opts.pos_weight?", "Tensor", "weight of the positive term, per class (last dimension)" }, REDUCTION },
  "Tensor", "print(nn.F.binary_cross_entropy_with_logits(nn.tensor{0, 2}, nn.tensor{0, 1}))")

-- ---- regularisation, lookup ----

f("dropout", "nn.F.dropout(x, p?, training?) | nn.F.dropout(x, {p =, training =}) -> Tensor",
  "Zero each element with probability p and scale the rest by 1 / (1 - p) (inverted dropout); the\n"
  .. "identity when training is false. Draws from the global generator.",
  { X, { "p?", "number", "drop probability (default 0.5)" }, { "training?", "boolean", "default true" } },
  "Tensor: x's size", "local y = nn.F.dropout(nn.ones(10), 0.5)\nlocal same = nn.F.dropout(nn.ones(10), {training = false})")
f("dropout2d", "nn.F.dropout2d(x, p?, training?) | nn.F.dropout2d(x, {p =, training =}) -> Tensor",
  "As dropout, but whole channels are dropped: x is (N, C, H, W) (or (C, H, W)).",
  { { "x", "Tensor", "(N, C, H, W) or (C, H, W)" }, { "p?", "number", "default 0.5" },
    { "training?", "boolean", "default true" } }, "Tensor: x's size",
  "local y = nn.F.dropout2d(nn.ones(2, 4, 3, 3), 0.25)")
f("embedding", "nn.F.embedding(indices, weight, opts?) -> Tensor",
  "Rows of weight at 1-based indices (a lookup table). The gradient of weight accumulates per row;\n"
  .. "the padding_idx row gets none.",
  { { "indices", "Tensor", "int64 of any shape, values 1..num_embeddings" },
    { "weight", "Tensor", "(num_embeddings, embedding_dim)" },
    { "opts.padding_idx?", "integer", "a row that gets no gradient (negative: from the end)" } },
  "Tensor: indices' size x embedding_dim",
  'local words = nn.F.embedding(nn.tensor({{1, 3}}, "int64"), nn.randn(5, 4))   -- 1 x 2 x 4')

-- ---- spatial ----

f("conv2d", "nn.F.conv2d(x, weight, bias?, opts?) | nn.F.conv2d(x, weight, opts) -> Tensor",
  "2-d convolution (cross-correlation, as PyTorch) by im2col + sgemm (1x1 stride-1 kernels skip im2col).\n"
  .. "Sizes are integers or {h, w} pairs. Backward: dX = Σ_f K ∗full dY, dK = X ∗ dY, db = Σ dY.",
  { { "x", "Tensor", "(N, C_in, H, W)" }, { "weight", "Tensor", "(C_out, C_in / groups, kH, kW)" },
    { "bias?", "Tensor", "(C_out) or nil" }, { "opts.stride?", "integer|{h, w}", "default 1" },
    { "opts.padding?", 'integer|{h, w}|"same"|"valid"', "zeros on each side (default 0); same needs stride 1" },
    { "opts.dilation?", "integer|{h, w}", "default 1" }, { "opts.groups?", "integer", "default 1" } },
  "Tensor: (N, C_out, H_out, W_out), H_out = (H + 2 pad - dil (kH - 1) - 1) // stride + 1",
  "local y = nn.F.conv2d(nn.randn(1, 3, 8, 8), nn.randn(4, 3, 3, 3), nil, {padding = 1})   -- 1 x 4 x 8 x 8")
f("max_pool2d", "nn.F.max_pool2d(x, kernel_size, opts?) -> Tensor, Tensor?",
  "Max over kernel windows of each channel. The position of each maximum is kept in C for backward.",
  { { "x", "Tensor", "(N, C, H, W) or (C, H, W)" }, { "kernel_size", "integer|{h, w}", "window size" },
    { "opts.stride?", "integer|{h, w}", "default kernel_size" }, { "opts.padding?", "integer|{h, w}", "default 0" },
    { "opts.dilation?", "integer|{h, w}", "default 1" }, { "opts.ceil_mode?", "boolean", "only false" },
    { "opts.return_indices?", "boolean", "also return each maximum's 1-based flat position h*W + w + 1" } },
  "Tensor (and int64 indices with return_indices)",
  "local y = nn.F.max_pool2d(nn.randn(1, 1, 4, 4), 2)   -- 1 x 1 x 2 x 2")
f("avg_pool2d", "nn.F.avg_pool2d(x, kernel_size, opts?) -> Tensor",
  "Mean over kernel windows of each channel.",
  { { "x", "Tensor", "(N, C, H, W) or (C, H, W)" }, { "kernel_size", "integer|{h, w}", "window size" },
    { "opts.stride?", "integer|{h, w}", "default kernel_size" }, { "opts.padding?", "integer|{h, w}", "default 0" },
    { "opts.count_include_pad?", "boolean", "count padded zeros in the mean (default true)" },
    { "opts.divisor_override?", "integer", "divide by this instead" }, { "opts.ceil_mode?", "boolean", "only false" } },
  "Tensor", "local y = nn.F.avg_pool2d(nn.ones(1, 1, 4, 4), 2)")
f("adaptive_avg_pool2d", "nn.F.adaptive_avg_pool2d(x, output_size) -> Tensor",
  "Average pooling to a fixed output size (windows as PyTorch computes them); 1 gives global pooling.",
  { { "x", "Tensor", "(N, C, H, W) or (C, H, W)" }, { "output_size", "integer|{h, w}", "the output's H x W" } },
  "Tensor: (N, C, oh, ow)", "local g = nn.F.adaptive_avg_pool2d(nn.randn(2, 8, 7, 7), 1)   -- 2 x 8 x 1 x 1")
f("batch_norm",
  "nn.F.batch_norm(x, running_mean, running_var, weight?, bias?, training?, momentum?, eps?) | (..., bias, opts)",
  "Batch normalisation per channel (dimension 2). Training: normalise with the batch statistics and\n"
  .. "update the running ones in place (PyTorch's momentum rule, unbiased running variance); else use the\n"
  .. "running statistics. Options may come as a table {training =, momentum =, eps =} in place of\n"
  .. "argument 6.",
  { { "x", "Tensor", "(N, C) , (N, C, L) or (N, C, H, W)" }, { "running_mean", "Tensor", "(C) or nil" },
    { "running_var", "Tensor", "(C) or nil" }, { "weight?", "Tensor", "(C) scale γ" }, { "bias?", "Tensor", "(C) shift β" },
    { "training?", "boolean", "default false" }, { "momentum?", "number", "default 0.1" },
    { "eps?", "number", "default 1e-5" } }, "Tensor: x's size",
  "local rm, rv = nn.zeros(3), nn.ones(3)\nlocal y = nn.F.batch_norm(nn.randn(4, 3), rm, rv, nil, nil, true)")

-- ---- recurrent ----

local SEQ = { "x", "Tensor", "(T, N, D); (N, T, D) with batch_first; (T, D) unbatched" }
local W = {
  { "w_ih", "Tensor", "(G*H, D): PyTorch's weight_ih_l0 (gates stacked)" },
  { "w_hh", "Tensor", "(G*H, H): weight_hh_l0" },
  { "b_ih?", "Tensor", "(G*H) or nil" }, { "b_hh?", "Tensor", "(G*H) or nil" },
}
local function with(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, p in ipairs(list) do out[#out + 1] = p end
  end
  return out
end

f("rnn", "nn.F.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, opts?) -> output, h_n",
  "An Elman RNN layer over a whole sequence, h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), as one\n"
  .. "node (backpropagation through time in C). G = 1.",
  with({ SEQ, { "h0", "Tensor", "(N, H) ((H) unbatched) or nil for zeros" } }, W,
    { { "opts.nonlinearity?", "string", '"tanh" (default) or "relu"' },
      { "opts.batch_first?", "boolean", "x and output are (N, T, ...)" } }),
  "Tensor, Tensor: every h_t laid out as x ((T, N, H)), and the last state (N, H)",
  "local out, h = nn.F.rnn(nn.randn(5, 2, 3), nil, nn.randn(4, 3), nn.randn(4, 4), nil, nil)")
f("lstm", "nn.F.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, opts?) -> output, h_n, c_n",
  "An LSTM layer over a whole sequence, gates in PyTorch's order i, f, g, o (G = 4), as one node.",
  with({ SEQ, { "h0", "Tensor", "(N, H) or nil" }, { "c0", "Tensor", "(N, H) or nil" } }, W,
    { { "opts.batch_first?", "boolean", "x and output are (N, T, ...)" } }),
  "Tensor, Tensor, Tensor: every h_t, the last h and the last c",
  "local H = 4\nlocal out, h, c = nn.F.lstm(nn.randn(5, 2, 3), nil, nil, nn.randn(4 * H, 3), nn.randn(4 * H, H), nil, nil)")
f("gru", "nn.F.gru(x, h0, w_ih, w_hh, b_ih, b_hh, opts?) -> output, h_n",
  "A GRU layer over a whole sequence, gates in PyTorch's order r, z, n (G = 3), as one node.",
  with({ SEQ, { "h0", "Tensor", "(N, H) or nil" } }, W, { { "opts.batch_first?", "boolean", "(N, T, ...) layout" } }),
  "Tensor, Tensor: every h_t and the last state",
  "local H = 4\nlocal out, h = nn.F.gru(nn.randn(5, 2, 3), nil, nn.randn(3 * H, 3), nn.randn(3 * H, H), nil, nil)")
f("rnn_cell", "nn.F.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, opts?) -> Tensor",
  "One step of an Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh).",
  with({ { "x", "Tensor", "(N, D) or (D)" }, { "h", "Tensor", "(N, H) or nil for zeros" } }, W,
    { { "opts.nonlinearity?", "string", '"tanh" (default) or "relu"' } }), "Tensor: h' (N, H)",
  "local h = nn.F.rnn_cell(nn.randn(2, 3), nil, nn.randn(4, 3), nn.randn(4, 4), nil, nil)")
f("lstm_cell", "nn.F.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) -> h', c'",
  "One LSTM step (gates i, f, g, o).",
  with({ { "x", "Tensor", "(N, D) or (D)" }, { "h", "Tensor", "(N, H) or nil" }, { "c", "Tensor", "(N, H) or nil" } }, W),
  "Tensor, Tensor: the new h and c",
  "local h, c = nn.F.lstm_cell(nn.randn(2, 3), nil, nil, nn.randn(16, 3), nn.randn(16, 4), nil, nil)")
f("gru_cell", "nn.F.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh) -> Tensor",
  "One GRU step (gates r, z, n).",
  with({ { "x", "Tensor", "(N, D) or (D)" }, { "h", "Tensor", "(N, H) or nil" } }, W), "Tensor: h'",
  "local h = nn.F.gru_cell(nn.randn(2, 3), nil, nn.randn(12, 3), nn.randn(12, 4), nil, nil)")

return D
