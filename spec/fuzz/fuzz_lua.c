/* fuzz_lua.c — the helpers of fuzz_lua.h: sanitizer defaults for every target, the capped Lua state
 * with nnlua, the private temp directory, and the pcall that tells a Lua error from a real failure. */
#define _GNU_SOURCE
#include "fuzz_lua.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NNLUA_WITH_LUA_API
#include "nnlua.h"

int luaopen_nnlua(lua_State *L);

/* Allocations over NNL_FUZZ_MAX_ALLOC_MB fail (NULL) instead of ending the run: the code under
 * test must turn them into errors, and a size taken from a file or an argument cannot exhaust the
 * machine (or, for the API target, spend seconds filling a tensor of 50M random numbers). */
#ifndef NNL_FUZZ_MAX_ALLOC_MB
#define NNL_FUZZ_MAX_ALLOC_MB 256
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1:max_allocation_size_mb=" STR(NNL_FUZZ_MAX_ALLOC_MB)
         ":detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1";
}
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "print_stacktrace=1:halt_on_error=1"; }

void fz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\n==FUZZ FAILURE== ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

/* ---- temp directory ---- */

static char tmpdir[256];

static void remove_tmp(void) {
  if (!tmpdir[0]) return;
  fz_clean_tmp();
  rmdir(tmpdir);
}

const char *fz_tmpdir(void) {
  if (!tmpdir[0]) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/nnl-fuzz.XXXXXX", base);
    if (!mkdtemp(tmpdir)) fz_fail("cannot create a temp directory under %s", base);
    atexit(remove_tmp);
  }
  return tmpdir;
}

const char *fz_write_tmp(const char *name, const uint8_t *data, size_t size) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
  FILE *f = fopen(path, "wb");
  if (!f) fz_fail("cannot write %s", path);
  if (size && fwrite(data, 1, size, f) != size) fz_fail("short write to %s", path);
  fclose(f);
  return path;
}

/* libFuzzer writes new corpus files and artifacts relative to the directory it started in, so
 * the temp dir is the working directory only while Lua runs. */
static int home_fd = -1;

void fz_enter_tmp(void) {
  if (home_fd < 0) home_fd = open(".", O_RDONLY | O_DIRECTORY);
  if (home_fd < 0 || chdir(fz_tmpdir()) != 0) fz_fail("cannot chdir to %s", fz_tmpdir());
}

void fz_leave_tmp(void) {
  if (fchdir(home_fd) != 0) fz_fail("cannot return to the starting directory");
}

void fz_clean_tmp(void) {
  DIR *d = opendir(fz_tmpdir());
  if (!d) return;
  struct dirent *e;
  char path[1024];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      if (unlink(path) != 0) rmdir(path); /* a directory the code under test made */
    }
  closedir(d);
}

/* ---- Lua ---- */

typedef struct {
  size_t used, limit;
} lua_budget;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_budget *b = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    free(ptr);
    b->used -= osize;
    return NULL;
  }
  if (nsize > osize && b->used - osize + nsize > b->limit) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) b->used = b->used - osize + nsize;
  return p;
}

static int panic(lua_State *L) {
  fz_fail("Lua panic (an error outside any pcall): %s", lua_tostring(L, -1));
}

lua_State *fz_lua_open(void) {
  const char *mb = getenv("NNL_FUZZ_LUA_MB");
  lua_budget *b = calloc(1, sizeof *b);
  if (!b) fz_fail("out of memory");
  b->limit = (size_t)(mb && atoi(mb) > 0 ? atoi(mb) : 256) << 20;
  lua_State *L = lua_newstate(capped_alloc, b);
  if (!L) fz_fail("lua_newstate failed");
  lua_atpanic(L, panic);
  nnl_set_num_threads(1); /* one thread: reproducible runs, and the machine is shared */
  luaL_openlibs(L);
  luaL_requiref(L, "nnlua", luaopen_nnlua, 0);
  lua_setglobal(L, "nn");
  return L;
}

void fz_lua_close(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_close(L);
  free(ud);
}

int fz_lua_ref_chunk(lua_State *L, const char *chunk, const char *name) {
  if (luaL_loadbuffer(L, chunk, strlen(chunk), name) != LUA_OK) fz_fail("%s", lua_tostring(L, -1));
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) fz_fail("%s: %s", name, lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) fz_fail("%s: the chunk must return a function", name);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int traceback(lua_State *L) {
  /* keep non-string error objects as they are, so the caller can see their type */
  if (lua_type(L, 1) == LUA_TSTRING) luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

int fz_lua_call(lua_State *L, int ref, int nargs, const char *what) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base + 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_insert(L, base + 2);
  fz_enter_tmp();
  int rc = lua_pcall(L, nargs, 0, base + 1);
  fz_leave_tmp();
  if (rc != LUA_OK && lua_type(L, -1) != LUA_TSTRING)
    fz_fail("%s raised a %s instead of an error message", what, luaL_typename(L, -1));
  if (rc != LUA_OK && getenv("NNL_FUZZ_VERBOSE")) fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  lua_settop(L, base);
  return rc == LUA_OK;
}

void fz_lua_collect(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }
