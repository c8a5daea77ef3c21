-- Parameter.lua: nn.Parameter(t), the marker that makes `self.name = nn.Parameter(t)` register a
-- parameter of a module (requires_grad set). Defined in Module.lua.
return require("nnlua.nn.Module").Parameter
