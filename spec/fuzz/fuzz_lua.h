/* fuzz_lua.h — what the libFuzzer targets share: sanitizer defaults, a Lua state with nnlua loaded
 * (memory-capped), a private temp directory for files the targets write, and error checks. */
#ifndef NNL_FUZZ_LUA_H
#define NNL_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh Lua state with the standard libraries and nnlua required as global `nn`; Lua's own heap
 * is capped (NNL_FUZZ_LUA_MB, default 256 MB) so a runaway table is a Lua error, not an OOM.
 * Aborts on failure. */
lua_State *fz_lua_open(void);
void fz_lua_close(lua_State *L);
/* The per-process temp directory (created on first use, removed at exit). */
const char *fz_tmpdir(void);
/* Write data to <tmpdir>/<name> (replacing it) and return the full path (static buffer). */
const char *fz_write_tmp(const char *name, const uint8_t *data, size_t size);
/* Make the temp dir the working directory (so relative paths land there), and go back. */
void fz_enter_tmp(void);
void fz_leave_tmp(void);
/* Remove every file in the temp directory (not the directory itself). */
void fz_clean_tmp(void);
/* Compile chunk (which must return a function) and leave that function in the registry; returns
 * its reference. Aborts on a syntax error: the harness is broken, not the code under test. */
int fz_lua_ref_chunk(lua_State *L, const char *chunk, const char *name);
/* Call the function `ref` with nargs arguments already pushed, under pcall, in the temp dir. A Lua error is fine
 * when it is a string; anything else (an error object that is not a string) aborts, which
 * libFuzzer reports as a crash. Returns 1 on success, 0 on a Lua error; pops everything. */
int fz_lua_call(lua_State *L, int ref, int nargs, const char *what);
/* A full collection, so tensor memory from one input is gone before the next. */
void fz_lua_collect(lua_State *L);
/* Abort with a message (libFuzzer reports the input as a crash). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
