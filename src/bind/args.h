/* args.h (bind) — argument checks for the Lua face, as lauxlib's luaL_check* but with errors that
 * name the function however it was called (pcall(nn.zeros, "x") too, where Lua would say '?'). */
#ifndef NNL_BIND_ARGS_H
#define NNL_BIND_ARGS_H

#include <lauxlib.h>
#include <lua.h>

/* "bad argument #arg to 'name' (msg)", or "calling 'name' on bad self (msg)": luaL_argerror's
 * wording. The name is the call site's ("zeros", "view") when Lua knows it, else where the
 * function lives: "nn.zeros", "nn.F.relu", "nn.Tensor.view", "nnlua.Canvas.line". */
int nnlb_argerror(lua_State *L, int arg, const char *msg);
/* "<tname> expected, got <type of arg>" (a userdata's __name when it has one). */
int nnlb_typeerror(lua_State *L, int arg, const char *tname);

lua_Integer nnlb_checkinteger(lua_State *L, int arg);
lua_Integer nnlb_optinteger(lua_State *L, int arg, lua_Integer def);
lua_Number nnlb_checknumber(lua_State *L, int arg);
lua_Number nnlb_optnumber(lua_State *L, int arg, lua_Number def);
const char *nnlb_checklstring(lua_State *L, int arg, size_t *len);
void nnlb_checktype(lua_State *L, int arg, int t);
void *nnlb_checkudata(lua_State *L, int arg, const char *tname);
int nnlb_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]);

#define nnlb_checkstring(L, arg) nnlb_checklstring(L, (arg), NULL)
#define nnlb_argcheck(L, cond, arg, msg) ((void)((cond) || nnlb_argerror(L, (arg), (msg))))
#define nnlb_argexpected(L, cond, arg, tname) ((void)((cond) || nnlb_typeerror(L, (arg), (tname))))

#endif
