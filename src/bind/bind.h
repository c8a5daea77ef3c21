/* bind.h — helpers shared by the files of the Lua face: tensor userdata, argument checks,
 * turning core failures into Lua errors. Only src/bind includes Lua headers. */
#ifndef NNL_BIND_H
#define NNL_BIND_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define NNLUA_WITH_LUA_API
#include "../nnlua.h"
#include "../autograd/anomaly.h"

#define NNL_TENSOR_MT "nnlua.Tensor"

/* Push t (takes over the caller's reference). If t is NULL, raise the core's last error. */
int nnlb_push(lua_State *L, nnl_tensor *t);
/* Raise the core's last error as a Lua error. */
int nnlb_fail(lua_State *L);
nnl_tensor *nnlb_check(lua_State *L, int arg);
nnl_tensor *nnlb_test(lua_State *L, int arg); /* NULL if not a tensor */
/* A tensor argument, or a number made into a 0-d float tensor (new reference either way). */
nnl_tensor *nnlb_tensor_or_number(lua_State *L, int arg, nnl_dtype dt);
/* A 1-based (or negative, from the end) dim of a tensor with ndim dims (+extra) -> 0-based. */
int nnlb_dim(lua_State *L, int arg, int ndim, int extra);
int nnlb_optdim(lua_State *L, int arg, int ndim, int def);
/* Sizes from varargs (2, 3) or one table {2, 3} starting at arg; returns ndim.
 * Stops at the first string (a dtype). */
int nnlb_sizes(lua_State *L, int arg, int64_t *shape, int *next);
nnl_dtype nnlb_dtype(lua_State *L, int arg, nnl_dtype def);
/* Tensor of 1-based int64 indices -> 0-based int64 copy (new reference); raises on
 * wrong dtype. */
nnl_tensor *nnlb_index0(lua_State *L, int arg, const char *fn);
/* Tell the collector about memory the userdata owns outside Lua. */
void nnlb_account(lua_State *L, const nnl_tensor *t);
/* nn.detect_anomaly's forward check of the tensor just pushed (anomaly.c): a Lua error naming
 * the op when an op's result holds a NaN or Inf. Call only when nnl_anomaly_mode is set. */
void nnlb_anomaly_forward(lua_State *L, const nnl_tensor *t);
/* Register functions into the table on top of the stack. */
void nnlb_setfuncs(lua_State *L, const luaL_Reg *l);

/* Each file adds its functions: methods go into the method table (on the stack top),
 * module functions into the module table. */
void nnlb_open_tensor(lua_State *L, int methods, int module);     /* tensor.c */
void nnlb_open_math(lua_State *L, int methods, int module);       /* math.c */
void nnlb_open_functional(lua_State *L, int methods, int module); /* functional.c: nn.F */
void nnlb_open_F_spatial(lua_State *L, int F);                    /* functional_spatial.c */
void nnlb_open_F_rnn(lua_State *L, int F);                        /* functional_rnn.c */
void nnlb_open_optim(lua_State *L, int methods, int module);      /* optim.c: nn._C */
void nnlb_open_io(lua_State *L, int methods, int module);         /* io.c: save/load, IDX */
void nnlb_open_image(lua_State *L, int module);                   /* draw.c: nn.image, canvas */
void nnlb_open_image_ops(lua_State *L, int module);               /* image_ops.c: transforms */
void nnlb_open_json(lua_State *L, int module);                    /* json.c: nn.io.read_json */
void nnlb_open_anomaly(lua_State *L, int module);                 /* anomaly.c */
void nnlb_open_signal(lua_State *L, int module);                  /* signal.c: nn.interrupt */

#endif
