-- doc/c_tensor.lua: documentation of the tensor methods written in C (src/bind/tensor.c, math.c,
-- optim.c), merged into doc/c_functions.lua. Methods that are also nn.* functions are documented there.
local D = {}

D["nn.Tensor"] = { summary = [[The methods of tensors: x:view(2, 3), x:sum(2), ... (x.matmul is nn.Tensor.matmul).
A tensor is a strided view on shared storage; dtypes float32, int64 and uint8; indices are 1-based.
Fields: x.grad (gradient after backward, assignable), x.grad_fn (name of the op that made x),
x.is_leaf, x.shape (= x:size()). x[i] is row i (a view; a number for 1-D), x[i] = v assigns;
#x is the size of dimension 1; operators + - * / ^ and unary - broadcast as in NumPy.]] }

local function m(name, sig, summary, params, returns, example)
  D["nn.Tensor." .. name] = { signature = sig, summary = summary, params = params, returns = returns,
                              example = example }
end

local X = { "x", "Tensor", "the tensor (self)" }

-- ---- inspection ----

m("size", "x:size(dim?) -> integer[] | integer",
  "The size of every dimension as a table, or of one dimension (1-based, negative from the end).",
  { X, { "dim?", "integer", "one dimension" } }, "integer[] (without dim) or integer",
  "local x = nn.zeros(2, 3)\nprint(x:size(2), #x:size(), x:size(-1))")
m("stride", "x:stride(dim?) -> integer[] | integer",
  "The step in elements between neighbours along each dimension (or one dimension).",
  { X, { "dim?", "integer", "one dimension" } }, "integer[] or integer",
  "print(nn.zeros(2, 3):stride(1), nn.zeros(2, 3):t():stride(1))")
m("dim", "x:dim() -> integer", "The number of dimensions (0 for a scalar tensor).", { X }, "integer",
  "print(nn.zeros(2, 3):dim())")
m("numel", "x:numel() -> integer   (also x:nelement())", "The number of elements.", { X }, "integer",
  "print(nn.zeros(2, 3):numel())")
m("dtype", "x:dtype() -> string", 'The element type: "float32", "int64" or "uint8".', { X }, "string",
  'print(nn.zeros(2):dtype(), nn.arange(3):dtype())')
m("is_contiguous", "x:is_contiguous() -> boolean",
  "Whether the elements lie in row-major order without gaps (a transpose is not contiguous).",
  { X }, "boolean", "print(nn.zeros(2, 3):is_contiguous(), nn.zeros(2, 3):t():is_contiguous())")
m("data_ptr", "x:data_ptr() -> lightuserdata",
  "The address of x's first element (to tell whether two tensors share memory; for host C code).",
  { X }, "lightuserdata", "local x = nn.zeros(4)\nprint(x:view(2, 2):data_ptr() == x:data_ptr())")

-- ---- elements ----

m("get", "x:get(i, j, ...) -> number",
  "The element at 1-based indices, one per dimension (negative counts from the end).",
  { X, { "...", "integer", "one index per dimension" } }, "number (an integer for int64 tensors)",
  "print(nn.tensor{{1, 2}, {3, 4}}:get(2, 1))")
m("set", "x:set(value, i, j, ...) -> x",
  "Write one element at 1-based indices. Not allowed on a tensor that requires grad (use nn.no_grad).",
  { X, { "value", "number", "the new value" }, { "...", "integer", "one index per dimension" } }, "Tensor: x",
  "local x = nn.zeros(2, 2)\nx:set(5, 1, 2)")
m("item", "x:item() -> number",
  "The value of a one-element tensor as a Lua number (an integer for int64).",
  { X }, "number", "print(nn.tensor{1, 2, 3}:sum():item())")
m("totable", "x:totable() -> table",
  "The elements as nested Lua tables (a number for a 0-d tensor).", { X }, "table|number",
  "print(nn.tensor{{1, 2}, {3, 4}}:totable()[2][1])")

-- ---- views (share memory with x) ----

m("view", "x:view(size...) -> Tensor",
  "The same elements with another size, sharing memory (one size may be -1: inferred). x must be\n"
  .. "laid out compatibly (contiguous always is); otherwise use reshape.",
  { X, { "size...", "integer...|integer[]", "the new size" } }, "Tensor: a view",
  "local x = nn.arange(6)\nprint(x:view(2, 3), x:view(-1, 2):size(1))")
m("reshape", "x:reshape(size...) -> Tensor",
  "As view, but copies when the layout does not allow a view.",
  { X, { "size...", "integer...|integer[]", "the new size (one may be -1)" } }, "Tensor",
  "local y = nn.arange(6):view(2, 3):t():reshape(6)")
m("transpose", "x:transpose(dim1, dim2) -> Tensor",
  "Swap two dimensions (a view). For a 2-D tensor the dimensions may be left out.",
  { X, { "dim1", "integer", "1-based" }, { "dim2", "integer", "1-based" } }, "Tensor: a view",
  "print(nn.zeros(2, 3, 4):transpose(1, 3):size()[1])")
m("t", "x:t() -> Tensor", "The transpose of a matrix (a view); 0-d and 1-d tensors come back as they are.",
  { X }, "Tensor: a view", "print(nn.zeros(2, 3):t():size()[1])")
m("permute", "x:permute(dims...) -> Tensor",
  "Reorder all dimensions (a view): x:permute(3, 1, 2) puts dimension 3 first.",
  { X, { "dims...", "integer...|integer[]", "a permutation of 1..x:dim()" } }, "Tensor: a view",
  "local img = nn.zeros(3, 8, 8):permute(2, 3, 1)   -- H x W x C")
m("narrow", "x:narrow(dim, start, length) -> Tensor",
  "Elements start .. start + length - 1 along dim (a view).",
  { X, { "dim", "integer", "1-based" }, { "start", "integer", "1-based first position (negative from the end)" },
    { "length", "integer", "how many" } }, "Tensor: a view",
  "print(nn.arange(10):narrow(1, 3, 4))")
m("select", "x:select(dim, index) -> Tensor",
  "The slice at index along dim, without that dimension (a view); x[i] is x:select(1, i).",
  { X, { "dim", "integer", "1-based" }, { "index", "integer", "1-based (negative from the end)" } },
  "Tensor: a view with one dimension less", "print(nn.tensor{{1, 2}, {3, 4}}:select(2, 1))")
m("squeeze", "x:squeeze(dim?) -> Tensor",
  "Remove dimensions of size 1 (all of them, or only dim).",
  { X, { "dim?", "integer", "1-based" } }, "Tensor: a view", "print(nn.zeros(1, 3, 1):squeeze():size()[1])")
m("unsqueeze", "x:unsqueeze(dim) -> Tensor",
  "Insert a dimension of size 1 at dim (1 .. x:dim() + 1).",
  { X, { "dim", "integer", "where the new dimension goes" } }, "Tensor: a view",
  "print(nn.zeros(3):unsqueeze(1):size()[1])")
m("expand", "x:expand(size...) -> Tensor   (also x:expand_as(other))",
  "Repeat dimensions of size 1 to a larger size without copying (stride 0); -1 keeps a size.\n"
  .. "With a tensor argument, expands to that tensor's size.",
  { X, { "size...", "integer...|integer[]|Tensor", "the new size, or a tensor whose size to take" } },
  "Tensor: a view (do not write to it)", "print(nn.tensor{{1}, {2}}:expand(2, 3))")
m("flatten", "x:flatten(start_dim?, end_dim?) -> Tensor",
  "Merge dimensions start_dim..end_dim (default: all) into one.",
  { X, { "start_dim?", "integer", "default 1" }, { "end_dim?", "integer", "default the last" } },
  "Tensor: a view when possible", "print(nn.zeros(2, 3, 4):flatten(2):size()[2])")
m("contiguous", "x:contiguous() -> Tensor",
  "x itself when contiguous, else a contiguous copy.", { X }, "Tensor",
  "local c = nn.zeros(2, 3):t():contiguous()")
m("clone", "x:clone() -> Tensor", "A copy with its own memory (differentiable).", { X }, "Tensor",
  "local y = nn.ones(2):clone()")
m("detach", "x:detach() -> Tensor",
  "The same memory without autograd history: a leaf that does not require grad.", { X }, "Tensor",
  "local w = nn.randn(2):requires_grad()\nprint(w:detach():is_requires_grad())")

-- ---- dtypes ----

m("to", 'x:to(dtype) -> Tensor   (also x:type(dtype))',
  "x converted to dtype (x itself when it already is). float to int truncates toward zero.",
  { X, { "dtype", "string", '"float32", "int64" or "uint8" (also "float", "long", "byte")' } }, "Tensor",
  'print(nn.tensor{1.7, -1.7}:to("int64"))')
m("float", "x:float() -> Tensor", "x as float32 (x itself when it already is).", { X }, "Tensor",
  'print(nn.tensor({1, 2}, "int64"):float())')
m("long", "x:long() -> Tensor", "x as int64 (x itself when it already is).", { X }, "Tensor",
  "print(nn.tensor{1.5, 2.5}:long())")
m("byte", "x:byte() -> Tensor", "x as uint8 (x itself when it already is).", { X }, "Tensor",
  "print(nn.tensor{0, 255}:byte())")

-- ---- in place (no autograd) ----

m("fill_", "x:fill_(value) -> x", "Set every element to value, in place.",
  { X, { "value", "number", "the value" } }, "Tensor: x", "local x = nn.empty(3):fill_(2)")
m("zero_", "x:zero_() -> x", "Set every element to 0, in place.", { X }, "Tensor: x",
  "local x = nn.ones(3):zero_()")
m("copy_", "x:copy_(src) -> x", "Copy src's elements into x in place (src broadcasts; dtypes convert).",
  { X, { "src", "Tensor", "the values" } }, "Tensor: x", "local x = nn.zeros(2, 2):copy_(nn.tensor{1, 2})")
m("uniform_", "x:uniform_(from?, to?) -> x", "Fill x in place with uniform draws from [from, to) (default [0, 1)).",
  { X, { "from?", "number", "default 0" }, { "to?", "number", "default 1" } }, "Tensor: x",
  "local w = nn.empty(3, 3):uniform_(-0.1, 0.1)")
m("normal_", "x:normal_(mean?, std?) -> x", "Fill x in place with normal draws (default mean 0, std 1).",
  { X, { "mean?", "number", "default 0" }, { "std?", "number", "default 1" } }, "Tensor: x",
  "local w = nn.empty(3, 3):normal_(0, 0.01)")
m("mul_", "x:mul_(y) -> x",
  "Multiply x in place by a number or a tensor (broadcast to x). Not allowed on a tensor that requires\n"
  .. "grad while recording (use nn.no_grad).",
  { X, { "y", "number|Tensor", "the factor" } }, "Tensor: x", "local g = nn.ones(3):mul_(0.5)")

-- ---- elementwise (differentiable where it makes sense) ----

local function unary(name, what)
  m(name, ("x:%s() -> Tensor"):format(name), what, { X }, "Tensor: x's size",
    ("print(nn.tensor{-1.5, 0.25, 2}:%s())"):format(name))
end
unary("neg", "Elementwise -x (also the operator -x). Differentiable.")
unary("sin", "Elementwise sine. Differentiable.")
unary("cos", "Elementwise cosine. Differentiable.")
unary("rsqrt", "Elementwise 1 / sqrt(x). Differentiable.")
unary("square", "Elementwise x * x. Differentiable.")
unary("reciprocal", "Elementwise 1 / x. Differentiable.")
unary("sign", "Elementwise -1, 0 or 1 (zero gradient).")
unary("floor", "Elementwise rounding down (zero gradient).")
unary("ceil", "Elementwise rounding up (zero gradient).")
unary("round", "Elementwise rounding to the nearest integer, halves to even as PyTorch (zero gradient).")

local function compare(name, op)
  m(name, ("x:%s(y) -> Tensor"):format(name),
    ("Elementwise x %s y as a uint8 mask (1 where true); y is a tensor (broadcast) or a number."):format(op),
    { X, { "y", "Tensor|number", "the other side" } }, "Tensor: uint8",
    ("local x = nn.tensor{1, 2, 3}\nprint(x:%s(2), x:%s(2):sum():item())"):format(name, name))
end
compare("eq", "==")
compare("ne", "~=")
compare("lt", "<")
compare("le", "<=")
compare("gt", ">")
compare("ge", ">=")

m("prod", "x:prod(dim?, keepdim?) -> Tensor",
  "The product of the elements (all, or along dim; keepdim keeps it with size 1).",
  { X, { "dim?", "integer", "1-based" }, { "keepdim?", "boolean", "default false" } }, "Tensor",
  "print(nn.tensor{1, 2, 3, 4}:prod():item())")

-- ---- autograd ----

m("requires_grad", "x:requires_grad(flag?) -> x   (also x:requires_grad_(flag?))",
  "Mark a float32 leaf tensor as a parameter whose gradient backward computes (flag defaults to\n"
  .. "true; false clears it).",
  { X, { "flag?", "boolean", "default true" } }, "Tensor: x",
  "local w = nn.randn(3):requires_grad()\nlocal loss = (w * w):sum()\nloss:backward()\nprint(w.grad)")
m("is_requires_grad", "x:is_requires_grad() -> boolean",
  "Whether x records operations for backward (a parameter, or computed from one).", { X }, "boolean",
  "print(nn.zeros(1):is_requires_grad())")
m("backward", "x:backward(gradient?, opts?)",
  "Backpropagate from x: accumulate d x / d leaf into each leaf's .grad (leaves that require grad).\n"
  .. "x must be a one-element tensor unless gradient (x's size) is given. The graph is freed afterwards\n"
  .. "unless opts.retain_graph = true.",
  { X, { "gradient?", "Tensor", "d loss / d x, for a non-scalar x" },
    { "opts?", "{retain_graph?: boolean}", "keep the graph for a second backward" } }, "nothing",
  "local w = nn.tensor{1, 2, 3}:requires_grad()\nlocal loss = (w * w):sum()\nloss:backward()\nprint(w.grad)   -- 2 * w")

return D
