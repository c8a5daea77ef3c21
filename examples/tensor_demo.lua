-- examples/tensor_demo.lua: a first look at nnlua: tensors, broadcasting, views and autograd.
-- Run: nnlua examples/tensor_demo.lua
if arg and (arg[1] == "-h" or arg[1] == "--help") then
  print("usage: nnlua examples/tensor_demo.lua\nPrints a short tour of tensors and autograd.")
  return
end
local nn = nn or require "nnlua"
nn.manual_seed(42)

print("A 2x3 tensor from a Lua table:")
local x = nn.tensor{{1, 2, 3}, {4, 5, 6}}
print(x)
print("x[2][3] =", x[2][3], "  x:size() =", table.concat(x:size(), "x"))
print("\nBroadcasting x + {10, 20, 30}, and x:t() (a view):")
print(x + nn.tensor{10, 20, 30})
print(x:t())
print("\nReductions: x:sum(2) and x:max(2) (values and 1-based indices):")
print(x:sum(2))
local v, i = x:max(2)
print(v, i)

print("\nAutograd: loss = sum(relu(x @ w)); dloss/dw by backward():")
local w = nn.randn(3, 2):requires_grad()
local loss = nn.matmul(x, w):relu():sum()
loss:backward()
print("loss =", loss:item())
print(w.grad)
print("\nThe same gradient checked numerically:")
local ok, err = nn.gradcheck(function(w_) return nn.matmul(x, w_):relu() end, {w})
print(ok and string.format("gradcheck passed (worst error/tolerance %.3g)", err) or "gradcheck FAILED")
