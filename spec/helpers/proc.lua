-- helpers/proc.lua — running the nnlua executable and scripts from specs: shell quoting, a command's
-- stdout, stderr and exit code, whether a file exists.
local M = {}

M.BIN = os.getenv("NNLUA_BIN") or "build/nnlua"

--- s quoted for sh.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- True when path can be opened for reading.
function M.exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

--- The whole file, and remove it.
local function take(name)
  local f = assert(io.open(name))
  local s = f:read("a")
  f:close()
  os.remove(name)
  return s
end

--- Run cmd under sh with input (a string) on stdin, or /dev/null; returns stdout, stderr and the
--- exit code.
function M.run(cmd, input)
  local out, err, inp = os.tmpname(), os.tmpname(), "/dev/null"
  if input then
    inp = os.tmpname()
    local f = assert(io.open(inp, "w"))
    f:write(input)
    f:close()
  end
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " <" .. inp)
  if input then os.remove(inp) end
  return take(out), take(err), code
end

return M
