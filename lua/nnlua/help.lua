-- help.lua: nn.help, the documentation browser (the nnlua executable also makes it the global
-- `help`, which the REPL's ?expr calls). The texts come from nnlua.doc.text.

---Print the documentation of x: for a function its signature, parameters, returns and example; for
---a class (nn.Conv2d) its description, constructor, options and methods; for a namespace
---(nn.optim) its members; for a string, what has that name ("matmul", "nn.F.conv2d", "x:view").
---help() lists the topics. In the nnlua REPL, `?x` is help(x).
---@param ... any the thing to explain (nothing: the list of topics)
local function help(...)
  local text = require("nnlua.doc.text").describe((...), select("#", ...) > 0)
  io.stdout:write(text, "\n")
end

return help
