-- module_spec.lua — nn.Module and the layer classes: user classes with extend, registration
-- order, state_dict keys and round trips, strict loading errors, train/eval, freeze, replacing
-- children, printing, containers naming the failing child, default initialisation, nn.init.
local nn = require "nnlua"

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(e)
end

local function keys_of(sd)
  local ks = {}
  for k in pairs(sd) do ks[#ks + 1] = k end
  return ks
end

local function names_of(iter)
  local ns = {}
  for n in iter do ns[#ns + 1] = n end
  return ns
end

local function max_diff(a, b)
  local x, y = a:reshape(-1):totable(), b:reshape(-1):totable()
  local m = 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end

-- A user-defined module: parameters, a buffer and children, assigned in this order.
local Block = nn.Module:extend("Block")
function Block:init(n)
  self.scale = nn.Parameter(nn.ones(n))
  self.fc = nn.Linear(n, n)
  self:register_buffer("count", nn.zeros(1))
  self.act = nn.ReLU()
  self.shift = nn.Parameter(nn.zeros(n))
  self.note = "plain field"
end
function Block:forward(x)
  return self.act(self.fc(x * self.scale) + self.shift)
end

local Net = nn.Module:extend("Net")
function Net:init()
  self.layer1 = nn.Sequential{ Block(3), Block(3) }
  self.head = nn.Linear(3, 2)
end
function Net:forward(x) return self.head(self.layer1(x)) end

describe("user-defined modules", function()
  it("construct with init, run forward through __call, keep plain fields", function()
    local b = Block(3)
    assert.are.equal("Block", b.__name)
    assert.are.equal("plain field", b.note)
    assert.is_true(b.training)
    local y = b(nn.randn(5, 3))
    assert.are.same({ 5, 3 }, y:size())
    assert.is_true(nn.Module.is_module(b))
    assert.are.equal("class Block", tostring(Block))
  end)

  it("register parameters, buffers and children in definition order", function()
    local b = Block(3)
    assert.are.same({ "scale", "shift", "fc.weight", "fc.bias" }, names_of(b:named_parameters()))
    assert.are.same({ "count" }, names_of(b:named_buffers()))
    assert.are.same({ "fc", "act" }, names_of(b:named_children()))
    assert.are.equal(4, #b:parameters())
    assert.are.equal(b.scale, b:parameters()[1])
    assert.are.equal(2, #b:children())
    assert.is_true(b.scale:is_requires_grad())
    assert.are.same({ "scale", "shift" }, names_of(b:named_parameters({ recurse = false })))
  end)

  it("subclass other modules", function()
    local Wide = nn.Linear:extend("Wide")
    function Wide:init(n) nn.Linear.init(self, n, 2 * n) end
    local w = Wide(3)
    assert.are.same({ 6, 3 }, w.weight:size())
    assert.are.same({ 4, 6 }, w(nn.randn(4, 3)):size())
    assert.are.equal(nn.Linear, Wide.super)
  end)

  it("refuses a child named like a method, and a bad assignment to a child", function()
    local M = nn.Module:extend("M")
    function M:init() self.train = nn.ReLU() end
    assert.matches('M: cannot register "train": it is already a method', errmsg(M))
    local b = Block(2)
    assert.matches('Block: cannot assign a number to child module "fc"', errmsg(function() b.fc = 3 end))
    assert.matches("forward is not implemented", errmsg(function() nn.Module()(1) end))
  end)

  it("dedups shared parameters and modules", function()
    local shared = nn.Linear(2, 2)
    local m = nn.Sequential{ shared, nn.ReLU(), shared }
    assert.are.equal(2, #m:parameters())
    assert.are.equal(3, #m:modules()) -- the Sequential, the Linear (once), the ReLU
    assert.are.same({ "0.weight", "0.bias", "2.weight", "2.bias" }, keys_of(m:state_dict()))
  end)

  it("apply visits children before the parent", function()
    local seen = {}
    Net():apply(function(m) seen[#seen + 1] = m.__name end)
    assert.are.same({ "Linear", "ReLU", "Block", "Linear", "ReLU", "Block", "Sequential", "Linear", "Net" }, seen)
  end)
end)

describe("state_dict", function()
  it("has PyTorch's keys in definition order", function()
    local m = nn.Sequential{ nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2) }
    assert.are.same({ "0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var",
                      "2.num_batches_tracked", "3.weight", "3.bias" }, keys_of(m:state_dict()))
    assert.are.same({ "layer1.0.scale", "layer1.0.shift", "layer1.0.count", "layer1.0.fc.weight", "layer1.0.fc.bias",
                      "layer1.1.scale", "layer1.1.shift", "layer1.1.count", "layer1.1.fc.weight", "layer1.1.fc.bias",
                      "head.weight", "head.bias" }, keys_of(Net():state_dict()))
    assert.are.same(keys_of(m:state_dict()), getmetatable(m:state_dict()).keys)
    assert.are.equal("int64", m:state_dict()["2.num_batches_tracked"]:dtype())
  end)

  it("holds views of the model's tensors without requires_grad", function()
    local m = nn.Linear(2, 2)
    local sd = m:state_dict()
    assert.is_false(sd.weight:is_requires_grad())
    sd.bias:fill_(7)
    assert.are.same({ 7, 7 }, m.bias:totable())
  end)

  it("round-trips into a fresh model", function()
    local a, b = Net(), Net()
    local x = nn.randn(4, 3)
    assert(max_diff(a(x), b(x)) > 0)
    local r = b:load_state_dict(a:state_dict())
    assert.are.same({}, r.missing_keys)
    assert.are.same({}, r.unexpected_keys)
    assert.are.equal(0, max_diff(a(x), b(x)))
    assert.is_true(b.head.weight:is_requires_grad())
  end)

  it("round-trips through nn.save / nn.load", function()
    if not nn.save then return pending("nn.save is not available yet") end
    local a, b = Net(), Net()
    local path = os.tmpname()
    nn.save(path, a:state_dict())
    b:load_state_dict(nn.load(path))
    os.remove(path)
    local x = nn.randn(2, 3)
    assert.are.equal(0, max_diff(a(x), b(x)))
  end)

  it("strict loading reports missing keys, unexpected keys and size mismatches in one error", function()
    local m = nn.Sequential{ nn.Linear(3, 2), nn.Linear(2, 2) }
    local sd = nn.Sequential{ nn.Linear(4, 2), nn.Linear(2, 2) }:state_dict()
    sd["1.bias"] = nil
    sd["extra.weight"] = nn.zeros(1)
    local before = m[1].bias:totable()
    local e = errmsg(m.load_state_dict, m, sd)
    assert.matches("Error%(s%) in loading state_dict for Sequential:", e)
    assert.matches('\n\tMissing key%(s%) in state_dict: "1.bias".', e)
    assert.matches('\n\tUnexpected key%(s%) in state_dict: "extra.weight".', e)
    assert.matches("\n\tsize mismatch for 0.weight: copying a tensor of size %[2,4%] from the state dict, "
                   .. "the size in the current model is %[2,3%].", e)
    assert.are.same(before, m[1].bias:totable()) -- nothing copied
  end)

  it("non-strict loading returns the key lists but still refuses size mismatches", function()
    local m = nn.Sequential{ nn.Linear(3, 2) }
    local src = nn.Linear(3, 2)
    local r = m:load_state_dict({ ["0.weight"] = src.weight, other = nn.zeros(1) }, { strict = false })
    assert.are.same({ "0.bias" }, r.missing_keys)
    assert.are.same({ "other" }, r.unexpected_keys)
    assert.are.equal(0, max_diff(m[1].weight, src.weight))
    assert.matches("size mismatch for 0.weight",
                   errmsg(m.load_state_dict, m, { ["0.weight"] = nn.zeros(3, 3) }, { strict = false }))
  end)

  it("keeps non-persistent buffers out", function()
    local m = nn.Module()
    m:register_buffer("tmp", nn.zeros(1), { persistent = false })
    m:register_buffer("kept", nn.zeros(1))
    assert.are.same({ "kept" }, keys_of(m:state_dict()))
    assert.are.equal(2, #m:buffers())
  end)
end)

describe("modes and gradients", function()
  it("train/eval set training on every module", function()
    local m = Net()
    assert.are.equal(m, m:eval())
    for _, c in ipairs(m:modules()) do assert.is_false(c.training) end
    m:train()
    for _, c in ipairs(m:modules()) do assert.is_true(c.training) end
    m.layer1:train(false)
    assert.is_true(m.training)
    assert.is_false(m.layer1[2].fc.training)
  end)

  it("Dropout is the identity in eval mode", function()
    local d = nn.Dropout(0.5)
    local x = nn.ones(1000)
    local y = d(x)
    local zeros = 0
    for _, v in ipairs(y:totable()) do if v == 0 then zeros = zeros + 1 end end
    assert(zeros > 350 and zeros < 650, "about half dropped, got " .. zeros)
    d:eval()
    assert.are.equal(0, max_diff(d(x), x))
    assert.matches("Dropout: probability has to be between 0 and 1, but got 2", errmsg(nn.Dropout, 2))
  end)

  it("freeze stops gradients; unfreeze brings them back", function()
    local m = nn.Sequential{ nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2) }
    m[1]:freeze()
    assert.is_false(m[1].weight:is_requires_grad())
    assert.is_true(m[3].weight:is_requires_grad())
    m(nn.randn(4, 3)):sum():backward()
    assert.is_nil(m[1].weight.grad)
    assert.is_not_nil(m[3].weight.grad)
    assert.matches("20 params %(8 trainable%)", tostring(m):match("[^\n]*"))
    assert.matches("12 params, frozen", tostring(m[1]))
    m:unfreeze()
    assert.is_true(m[1].weight:is_requires_grad())
  end)

  it("zero_grad sets gradients to nil (or zeroes them)", function()
    local m = nn.Linear(2, 2)
    m(nn.randn(3, 2)):sum():backward()
    m:zero_grad({ set_to_none = false })
    assert.are.same({ 0, 0 }, m.bias.grad:totable())
    m:zero_grad()
    assert.is_nil(m.bias.grad)
    assert.is_nil(m.weight.grad)
  end)
end)

describe("containers", function()
  it("replace children by name or index, keeping their place", function()
    local m = Net()
    m.head = nn.Linear(3, 5)
    assert.are.same({ 4, 5 }, m(nn.randn(4, 3)):size())
    assert.are.same({ "layer1", "head" }, names_of(m:named_children()))
    local s = nn.Sequential{ nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2) }
    s[3] = nn.Linear(2, 7)
    assert.are.same({ 1, 7 }, s(nn.randn(1, 2)):size())
    assert.are.same({ "0.weight", "0.bias", "2.weight", "2.bias" }, keys_of(s:state_dict()))
    m.head = nil
    assert.are.same({ "layer1" }, names_of(m:named_children()))
    assert.matches("index 4 out of range", errmsg(function() s[4] = nn.ReLU() end))
  end)

  it("Sequential: 1-based access, #, ipairs, add, named children", function()
    local s = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert.are.equal(2, #s)
    assert.are.equal("ReLU", s[2].__name)
    assert.are.equal("ReLU", s[-1].__name)
    assert.is_nil(s[3])
    s:add(nn.Linear(3, 1))
    local n = 0
    for i, m in ipairs(s) do n = i assert.is_true(nn.Module.is_module(m)) end
    assert.are.equal(3, n)
    local named = nn.Sequential{ { "fc", nn.Linear(2, 2) }, { "act", nn.Tanh() } }
    assert.are.same({ "fc.weight", "fc.bias" }, keys_of(named:state_dict()))
    assert.matches("element 2 is a number", errmsg(nn.Sequential, { nn.ReLU(), 3 }))
  end)

  it("Sequential names the failing child in errors", function()
    local s = nn.Sequential{ nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2) }
    local e = errmsg(s, nn.randn(2, 4))
    assert.matches("^in module 3 %(Linear%) of Sequential: ", e)
    local outer = nn.Sequential{ nn.Identity(), s }
    e = errmsg(outer, nn.randn(2, 4))
    assert.matches("^in module 2 %(Sequential%) of Sequential: in module 3 %(Linear%) of Sequential: ", e)
    if not nn.F.conv2d then return pending("nn.F.conv2d is not available yet") end
    local cnn = nn.Sequential{ nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.Conv2d(3, 8, 3) }
    assert.are.equal("in module 3 (Conv2d) of Sequential: conv2d: input has 4 channels but weight expects 3 "
                     .. "(weight [8,3,3,3], groups 1, input [2,4,8,8])", errmsg(cnn, nn.randn(2, 1, 8, 8)))
  end)

  it("Sequential fuses a Linear then ReLU without a graph, and gives the same answers", function()
    local s = nn.Sequential{ nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 20), nn.ReLU(), nn.Linear(20, 3) }
    local x = nn.randn(300, 30)
    local want = s[5](nn.F.relu(s[3](nn.F.relu(s[1](x)))))
    local y = s(x)
    assert.are.equal("LinearBackward", y.grad_fn) -- recording: the usual nodes
    assert.is_true((y - want):abs():max():item() < 1e-5)
    local z = nn.no_grad(function() return s(x) end)
    assert.is_nil(z.grad_fn)
    assert.is_true((z - want):abs():max():item() < 1e-5)
    assert.matches("out %[300,40%]", tostring(s)) -- both modules record their output size
    assert.are.same({ 300, 40 }, s[2]._out_size)
    -- without a graph, the fused activation read by a stock Linear is freed at once: only the
    -- input, the output and the parameters stay allocated (with a graph it is saved for backward)
    collectgarbage(); collectgarbage()
    local big = nn.Sequential{ nn.Linear(100, 1000), nn.ReLU(), nn.Linear(1000, 5) }
    local xb = nn.randn(500, 100)
    collectgarbage("stop")
    local base = nn.memory_allocated()
    local ok, out = pcall(nn.no_grad, function() return big(xb) end)
    local grew = nn.memory_allocated() - base
    collectgarbage("restart")
    assert(ok, out)
    assert.is_true(grew < 500 * 1000 * 4, "the 500 x 1000 activation is still allocated: " .. grew)
    assert.is_true((out - big[3](nn.F.relu(big[1](xb)))):abs():max():item() < 1e-5)
    -- errors still name the Linear, fused or not
    local bad = nn.Sequential{ nn.Identity(), nn.Linear(5, 3), nn.ReLU() }
    assert.matches("^in module 2 %(Linear%) of Sequential: linear: input %[2,4%]",
                   nn.no_grad(function() return errmsg(bad, nn.randn(2, 4)) end))
    -- a wrapped nn.F.linear sees every call, and what it keeps stays usable
    local F_linear, kept = nn.F.linear, {}
    nn.F.linear = function(v, w, b) kept[#kept + 1] = v; return F_linear(v, w, b) end
    local ok2, err = pcall(nn.no_grad, function() return big(xb) end)
    nn.F.linear = F_linear
    assert(ok2, err)
    assert.are.equal(2, #kept)
    assert.are.same({ 500, 1000 }, kept[2]:size()) -- not closed
    -- a subclass with its own forward is left alone
    local Shifted = nn.ReLU:extend("Shifted")
    function Shifted:forward(v) return nn.F.relu(v) + 1 end
    local t = nn.Sequential{ nn.Linear(3, 2), Shifted() }
    local v = nn.randn(4, 3)
    assert.is_true(nn.no_grad(function() return t(v) end):min():item() >= 1)
  end)

  it("ModuleList registers and indexes its modules", function()
    local Stack = nn.Module:extend("Stack")
    function Stack:init() self.layers = nn.ModuleList{ nn.Linear(2, 2), nn.Linear(2, 2) } end
    function Stack:forward(x)
      for _, l in ipairs(self.layers) do x = l(x) end
      return x
    end
    local m = Stack()
    m.layers:append(nn.Linear(2, 4))
    assert.are.equal(3, #m.layers)
    assert.are.same({ 1, 4 }, m(nn.randn(1, 2)):size())
    assert.are.same({ "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight",
                      "layers.2.bias" }, keys_of(m:state_dict()))
    m.layers:insert(1, nn.Identity())
    assert.are.equal("Identity", m.layers[1].__name)
    assert.are.same({ "layers.1.weight" }, { keys_of(m:state_dict())[1] })
    assert.matches("ModuleList has no forward", errmsg(m.layers, nn.zeros(1)))
  end)
end)

describe("printing", function()
  it("shows the tree with parameter counts, and output sizes after a forward", function()
    local m = nn.Sequential{ nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.25), nn.Linear(3, 2, { bias = false }) }
    local s = tostring(m)
    assert.are.equal(table.concat({
      "Sequential(  -- 21 params",
      "  (0): Linear(in_features=4, out_features=3, bias=true)  -- 15 params",
      "  (1): ReLU()",
      "  (2): Dropout(p=0.25)",
      "  (3): Linear(in_features=3, out_features=2, bias=false)  -- 6 params",
      ")" }, "\n"), s)
    m(nn.randn(5, 4))
    s = tostring(m)
    assert.matches("Sequential%(  %-%- out %[5,2%], 21 params", s)
    assert.matches("%(1%): ReLU%(%)  %-%- out %[5,3%]\n", s)
    local n = tostring(Net())
    assert.matches("^Net%(  %-%- 44 params\n  %(layer1%): Sequential%(  %-%- 36 params\n    %(0%): Block%(", n)
    assert.matches("\n      %(fc%): Linear%(in_features=3, out_features=3, bias=true%)  %-%- 12 params\n", n)
  end)

  it("shows layer options", function()
    assert.are.equal("LeakyReLU(negative_slope=0.2)", tostring(nn.LeakyReLU(0.2)))
    assert.are.equal("Softmax(dim=2)", tostring(nn.Softmax(2)))
    assert.are.equal("Flatten(start_dim=2, end_dim=-1)", tostring(nn.Flatten()))
    assert.are.equal("BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)  -- 6 params",
                     tostring(nn.BatchNorm1d(3)))
    assert.are.equal("Conv2d(1, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=false)  -- 72 params",
                     tostring(nn.Conv2d(1, 8, 3, { stride = 2, padding = 1, bias = false })))
    assert.are.equal("MaxPool2d(kernel_size=2, stride=2, padding=0)", tostring(nn.MaxPool2d(2)))
    assert.are.equal("CrossEntropyLoss(reduction=mean)", tostring(nn.CrossEntropyLoss()))
  end)
end)

describe("layers", function()
  it("Linear: PyTorch layout and default initialisation bounds", function()
    local l = nn.Linear(50, 20)
    assert.are.same({ 20, 50 }, l.weight:size())
    local bound = 1 / math.sqrt(50)
    assert(l.weight:abs():max():item() <= bound)
    assert(l.weight:abs():max():item() > 0.8 * bound)
    assert(l.bias:abs():max():item() <= bound)
    local x = nn.randn(3, 50)
    local want = nn.matmul(x, l.weight:t()) + l.bias
    assert(max_diff(l(x), want) < 1e-5)
  end)

  it("Conv2d: weight layout, groups, forward size, initialisation", function()
    local c = nn.Conv2d(4, 6, { 3, 5 }, { padding = { 1, 2 }, groups = 2 })
    assert.are.same({ 6, 2, 3, 5 }, c.weight:size())
    assert(c.weight:abs():max():item() <= 1 / math.sqrt(2 * 15))
    assert.matches("divisible by groups", errmsg(nn.Conv2d, 3, 6, 3, { groups = 2 }))
    if not nn.F.conv2d then return pending("nn.F.conv2d is not available yet") end
    assert.are.same({ 2, 6, 7, 9 }, c(nn.randn(2, 4, 7, 9)):size())
    local s = nn.Conv2d(1, 2, 3, { stride = 2 })
    assert.are.same({ 1, 2, 3, 3 }, s(nn.randn(1, 1, 7, 7)):size())
  end)

  it("pooling and flatten sizes", function()
    if not nn.F.max_pool2d then return pending("spatial nn.F ops are not available yet") end
    local x = nn.randn(2, 3, 8, 8)
    assert.are.same({ 2, 3, 4, 4 }, nn.MaxPool2d(2)(x):size())
    assert.are.same({ 2, 3, 3, 3 }, nn.MaxPool2d(3, { stride = 2 })(x):size())
    assert.are.same({ 2, 3, 4, 4 }, nn.AvgPool2d(2)(x):size())
    assert.are.same({ 2, 3, 1, 1 }, nn.AdaptiveAvgPool2d(1)(x):size())
    assert.are.same({ 2, 192 }, nn.Flatten()(x):size())
    assert.are.same({ 2, 3, 64 }, nn.Flatten(3)(x):size())
  end)

  it("BatchNorm: buffers, running statistics, eval mode", function()
    if not nn.F.batch_norm then return pending("nn.F.batch_norm is not available yet") end
    local bn = nn.BatchNorm2d(2)
    assert.are.same({ "running_mean", "running_var", "num_batches_tracked" }, names_of(bn:named_buffers()))
    local x = nn.randn(4, 2, 3, 3) * 2 + 1
    local y = bn(x)
    assert.are.equal(1, bn.num_batches_tracked:item())
    bn(x)
    assert.are.equal(2, bn.num_batches_tracked:item())
    assert.are.equal("int64", bn.num_batches_tracked:dtype())
    -- per channel: mean 0 in training; running_mean after two updates = (1 - 0.9^2) * batch mean
    local mean = x:transpose(1, 2):reshape(2, -1):mean(2)
    assert(y:transpose(1, 2):reshape(2, -1):mean(2):abs():max():item() < 1e-5)
    assert(max_diff(bn.running_mean, mean * 0.19) < 1e-5)
    bn:eval()
    local before = bn.running_mean:clone()
    bn(x)
    assert.are.equal(2, bn.num_batches_tracked:item())
    assert.are.equal(0, max_diff(before, bn.running_mean))
    assert.matches("BatchNorm2d: expected 4D input %(got 2D input%)", errmsg(bn, nn.randn(2, 2)))
    -- momentum = false: the running mean is the plain average of the batch means
    local cum = nn.BatchNorm1d(2, { momentum = false })
    local x1, x2 = nn.randn(5, 2), nn.randn(5, 2) + 3
    cum(x1)
    cum(x2)
    assert(max_diff(cum.running_mean, (x1:mean(1) + x2:mean(1)) * 0.5) < 1e-5)
    assert.matches("momentum=false", tostring(cum))
  end)

  it("activations and losses run through nn.F", function()
    local x = nn.tensor({ { -1, 2 }, { 3, -4 } })
    assert.are.same({ { 0, 2 }, { 3, 0 } }, nn.ReLU()(x):totable())
    assert(max_diff(nn.LeakyReLU(0.1)(x), nn.tensor({ { -0.1, 2 }, { 3, -0.4 } })) < 1e-6)
    assert(max_diff(nn.Sigmoid()(x), x:sigmoid()) < 1e-6)
    assert(max_diff(nn.Tanh()(x), x:tanh()) < 1e-6)
    assert.are.same({ 2, 2 }, nn.GELU()(x):size())
    assert(max_diff(nn.Softmax(2)(x):sum(2), nn.ones(2)) < 1e-6)
    assert(max_diff(nn.LogSoftmax(2)(x):exp(), nn.Softmax(2)(x)) < 1e-6)
    assert.are.equal(x, nn.Identity()(x))
    local labels = nn.tensor({ 2, 1 }, "int64")
    local ce = nn.CrossEntropyLoss()(x, labels)
    assert(math.abs(ce:item() - nn.F.cross_entropy(x, labels):item()) < 1e-7)
    assert.are.same({ 2 }, nn.CrossEntropyLoss{ reduction = "none" }(x, labels):size())
    local w = nn.tensor({ 1, 3 })
    local wce = nn.CrossEntropyLoss{ weight = w }
    assert.are.same({ "weight" }, keys_of(wce:state_dict()))
    assert(math.abs(wce(x, labels):item() - nn.F.cross_entropy(x, labels, { weight = w }):item()) < 1e-7)
    assert(math.abs(nn.MSELoss()(x, nn.zeros(2, 2)):item() - 7.5) < 1e-6)
    assert.matches("unknown option foo", errmsg(nn.CrossEntropyLoss, { foo = 1 }))
  end)
end)

describe("nn.init", function()
  it("computes fans and gains as PyTorch", function()
    local fan_in, fan_out = nn.init.calculate_fan_in_and_fan_out(nn.empty(8, 3, 5, 5))
    assert.are.same({ 75, 200 }, { fan_in, fan_out })
    assert.are.equal(5 / 3, nn.init.calculate_gain("tanh"))
    assert.are.equal(math.sqrt(2), nn.init.calculate_gain("relu"))
    assert.are.equal(1, nn.init.calculate_gain("conv2d"))
    assert.are.equal(math.sqrt(2 / (1 + 0.2 ^ 2)), nn.init.calculate_gain("leaky_relu", 0.2))
    assert.matches("fewer than 2 dimensions", errmsg(nn.init.kaiming_uniform_, nn.empty(4)))
    assert.matches("unsupported nonlinearity", errmsg(nn.init.calculate_gain, "swish"))
  end)

  it("fills with the right ranges and spreads", function()
    local w = nn.empty(200, 100)
    local b = math.sqrt(6 / 100)
    nn.init.kaiming_uniform_(w, { nonlinearity = "relu" })
    assert(w:abs():max():item() <= b and w:abs():max():item() > 0.95 * b)
    nn.init.kaiming_normal_(w, { mode = "fan_out", nonlinearity = "relu" })
    assert(math.abs(w:std():item() - math.sqrt(2 / 200)) < 0.01)
    nn.init.xavier_uniform_(w, 2)
    local a = 2 * math.sqrt(6 / 300)
    assert(w:abs():max():item() <= a and w:abs():max():item() > 0.95 * a)
    nn.init.xavier_normal_(w)
    assert(math.abs(w:std():item() - math.sqrt(2 / 300)) < 0.01)
    nn.init.normal_(w, { mean = 3, std = 0.5 })
    assert(math.abs(w:mean():item() - 3) < 0.02)
    nn.init.uniform_(w, -2, -1)
    assert(w:max():item() <= -1 and w:min():item() >= -2)
    nn.init.constant_(w, 0.5)
    assert.are.equal(0.5, w:min():item())
    nn.init.zeros_(w)
    assert.are.equal(0, w:abs():max():item())
    nn.init.ones_(w)
    assert.are.equal(1, w:min():item())
  end)

  it("fills parameters that require grad", function()
    local l = nn.Linear(3, 3)
    nn.init.zeros_(l.weight)
    assert.are.equal(0, l.weight:abs():max():item())
    assert.is_true(l.weight:is_requires_grad())
  end)
end)
