/* main.c — the nnlua executable: the stock Lua 5.4 command line (options, the arg
 * table, LUA_INIT, scripts, stdin) plus -t threads, -h, and a preloaded global nn. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define NNLUA_WITH_LUA_API
#include "nnlua.h"
#include "cli.h"

/* Where require finds the Lua files of nnlua: after LUA_PATH (or Lua's default path),
 * the source tree of the build, then the install prefix. CMake defines both. */
#ifdef NNL_LUA_DIR_BUILD
#define BUILD_DIR NNL_LUA_DIR_BUILD
#else
#define BUILD_DIR NULL
#endif
#ifdef NNL_LUA_DIR_INSTALL
#define INSTALL_DIR NNL_LUA_DIR_INSTALL
#else
#define INSTALL_DIR NULL
#endif

#define MAX_THREADS 4096
#define INIT_VAR "LUA_INIT"
#define IGMARK "-" /* in "-l mod-2", what follows the mark is not part of the global name */

const char *nnl_cli_progname = "nnlua";

/* ---- running chunks: tracebacks and Ctrl-C ---- */

static lua_State *running; /* the state a SIGINT should stop */
static volatile sig_atomic_t stopped; /* the last chunk was stopped by Ctrl-C: exit 128 + SIGINT */

/* Installed from the signal handler: raise the error at the next safe point of Lua
 * code. A C kernel in the middle of its work finishes that call first. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  stopped = 1;
  luaL_error(L, "interrupted!");
}

static void set_signal(int sig, void (*handler)(int), struct sigaction *old)
{
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, old);
}

/* A signal handler may not touch the Lua state beyond setting a hook (lua_sethook is
 * safe for that). A second Ctrl-C before the hook runs ends the process, so a C loop
 * that never returns can still be killed. A script that called nn.interrupt.install()
 * (src/bind/signal.c) replaced this handler for the chunk: its first Ctrl-C only sets a
 * flag the script polls, and its second comes here. */
static void on_sigint(int sig)
{
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  set_signal(sig, SIG_DFL, NULL);
  lua_sethook(running, stop_hook, mask, 1);
}

static int msghandler(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) { /* error object is not a string */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1; /* its __tostring is the message */
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int nnl_cli_docall(lua_State *L, int narg, int nres)
{
  struct sigaction old;
  int status, base = lua_gettop(L) - narg; /* function index */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  running = L;
  stopped = 0;
  set_signal(SIGINT, on_sigint, &old);
  status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &old, NULL);
  if (lua_gethook(L) == stop_hook) /* Ctrl-C came too late to stop anything */
    lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

void nnl_cli_message(const char *pname, const char *msg)
{
  fflush(stdout); /* keep stdout and stderr in order on a terminal */
  if (pname)
    fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

int nnl_cli_report(lua_State *L, int status)
{
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    nnl_cli_message(nnl_cli_progname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

static int dochunk(lua_State *L, int status)
{
  if (status == LUA_OK)
    status = nnl_cli_docall(L, 0, 0);
  return nnl_cli_report(L, status);
}

static int dofile(lua_State *L, const char *name)
{
  return dochunk(L, luaL_loadfile(L, name));
}

static int dostring(lua_State *L, const char *s, const char *name)
{
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* ---- version and usage ---- */

/* "OpenBLAS 0.3.21 Haswell" from OpenBLAS's config string, looked up at run time
 * so the executable needs no BLAS header or link of its own. */
static void blas_name(char *buf, size_t size)
{
  const char *(*get_config)(void) =
      (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
  const char *s = get_config ? get_config() : NULL, *core = NULL, *p;
  size_t n = 0, core_len = 0;
  int words = 0;
  if (s == NULL) {
    snprintf(buf, size, "no OpenBLAS");
    return;
  }
  /* name and version are the first two words; the core type is the last word that
   * is not a build flag (flags look like NO_LAPACKE or MAX_THREADS=64) */
  for (p = s; *p;) {
    size_t len;
    while (*p == ' ')
      p++;
    len = strcspn(p, " ");
    if (len == 0)
      break;
    if (++words <= 2)
      n = (size_t)(p + len - s);
    else if (memchr(p, '_', len) == NULL && memchr(p, '=', len) == NULL) {
      core = p;
      core_len = len;
    }
    p += len;
  }
  if (core)
    snprintf(buf, size, "%.*s %.*s", (int)n, s, (int)core_len, core);
  else
    snprintf(buf, size, "%.*s", (int)n, s);
}

void nnl_cli_print_version(void)
{
  char blas[128];
  int n = nnl_get_num_threads();
  blas_name(blas, sizeof blas);
  printf("nnlua %s (%s, %s, %d thread%s)\n", NNL_VERSION, LUA_RELEASE, blas, n,
         n == 1 ? "" : "s");
  fflush(stdout);
}

static void print_usage(FILE *f, const char *prog)
{
  fprintf(f,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -t N      run tensor kernels on N threads (default: OMP_NUM_THREADS or all cores)\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables (LUA_INIT, LUA_PATH, LUA_CPATH)\n"
          "  -W        turn warnings on\n"
          "  -h        show this help (also --help)\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "The module nnlua is loaded into the global 'nn'. With no script, and stdin a\n"
          "terminal, an interactive prompt starts; there '?expr' calls help(expr).\n"
          "Environment: LUA_INIT, LUA_PATH, LUA_CPATH, OMP_NUM_THREADS, NNLUA_HISTORY.\n",
          prog);
}

/* ---- options ---- */

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_NOENV = 16, HAS_HELP = 32 };

typedef struct {
  int flags;
  int script;     /* index of the script in argv (argc if none), or of the bad option */
  int threads;    /* from -t, 0 when not given */
  int needs_arg;  /* the bad option lacks its argument */
  int bad_count;  /* the -t argument is not a thread count */
} cli_options;

/* The argument of an option that takes one: the rest of argv[*i], or argv[*i + 1]
 * when that is not another option. NULL when missing. */
static const char *option_arg(char **argv, int *i)
{
  if (argv[*i][2] != '\0')
    return argv[*i] + 2;
  if (argv[*i + 1] == NULL || argv[*i + 1][0] == '-')
    return NULL;
  return argv[++*i];
}

static int parse_threads(const char *s)
{
  char *end;
  long n = strtol(s, &end, 10);
  if (end == s || *end != '\0' || n < 1 || n > MAX_THREADS)
    return 0;
  return (int)n;
}

/* Scan the options that must be known before any Lua code runs; stop at the script
 * name. Options with code (-e, -l, -W) run later, in order, in run_args. */
static void collect_args(char **argv, cli_options *o)
{
  int i;
  memset(o, 0, sizeof *o);
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    o->script = i; /* also names the option in a usage error */
    if (a[0] != '-')
      return; /* the script */
    if (strcmp(a, "--help") == 0) {
      o->flags |= HAS_HELP;
      continue;
    }
    switch (a[1]) {
    case '-': /* "--" */
      if (a[2] != '\0')
        goto bad;
      o->script = i + 1;
      return;
    case '\0': /* "-": the script is stdin */
      return;
    case 'i':
      o->flags |= HAS_I | HAS_V; /* -i shows the version, as in lua */
      if (a[2] != '\0')
        goto bad;
      break;
    case 'v':
    case 'E':
    case 'W':
    case 'h':
      if (a[2] != '\0')
        goto bad;
      o->flags |= a[1] == 'v' ? HAS_V : a[1] == 'E' ? HAS_NOENV : a[1] == 'h' ? HAS_HELP : 0;
      break;
    case 'e':
    case 'l':
    case 't': {
      const char *value = option_arg(argv, &i);
      if (value == NULL) {
        o->needs_arg = 1;
        goto bad;
      }
      if (a[1] == 'e')
        o->flags |= HAS_E;
      if (a[1] == 't' && (o->threads = parse_threads(value)) == 0) {
        o->bad_count = 1;
        goto bad;
      }
      break;
    }
    default:
      goto bad;
    }
  }
  o->script = i; /* no script */
  return;
bad:
  o->flags = HAS_ERROR;
}

static void usage_error(const char *prog, const char *opt, const cli_options *o)
{
  fflush(stdout);
  fprintf(stderr, "%s: ", prog);
  if (o->needs_arg)
    fprintf(stderr, "'%.2s' needs argument\n", opt);
  else if (o->bad_count)
    fprintf(stderr, "'-t' needs a thread count from 1 to %d\n", MAX_THREADS);
  else
    fprintf(stderr, "unrecognized option '%s'\n", opt);
  print_usage(stderr, prog);
}

/* arg[0] is the script, its arguments are arg[1..n], the interpreter and its options
 * go to negative indices; with no script, arg[0] is the interpreter. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
  int i;
  if (script == argc)
    script = 0;
  lua_createtable(L, argc - (script + 1), script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* require(mod) into a global: "-l mod" sets mod; "-l g=mod" sets g; a module name
 * with a version suffix ("mod-2") sets the name before the '-'. */
static int dolibrary(lua_State *L, const char *spec)
{
  const char *eq = strchr(spec, '='), *modname = eq ? eq + 1 : spec;
  size_t globlen = eq ? (size_t)(eq - spec) : strcspn(spec, IGMARK);
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = nnl_cli_docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushlstring(L, spec, globlen);
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return nnl_cli_report(L, status);
}

/* Run -e, -l and -W in command-line order. Returns 0 when one of them failed. */
static int run_args(lua_State *L, char **argv, int script)
{
  int i;
  for (i = 1; i < script; i++) {
    int option = argv[i][1], status = LUA_OK;
    const char *extra;
    if (argv[i][0] != '-' || option == '-' || option == '\0')
      continue; /* "--" or "-" */
    if (option == 'W') {
      lua_warning(L, "@on", 0);
      continue;
    }
    if (option != 'e' && option != 'l' && option != 't')
      continue;
    extra = argv[i][2] != '\0' ? argv[i] + 2 : argv[++i];
    if (option == 'e')
      status = dostring(L, extra, "=(command line)");
    else if (option == 'l')
      status = dolibrary(L, extra);
    if (status != LUA_OK)
      return 0;
  }
  return 1;
}

static int handle_luainit(lua_State *L)
{
  const char *name = "=" INIT_VAR LUA_VERSUFFIX;
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=" INIT_VAR;
    init = getenv(name + 1);
  }
  if (init == NULL)
    return LUA_OK;
  if (init[0] == '@')
    return dofile(L, init + 1);
  return dostring(L, init, name);
}

static int push_script_args(lua_State *L)
{
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv)
{
  const char *fname = argv[0];
  int status;
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL; /* stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = push_script_args(L);
    status = nnl_cli_docall(L, n, LUA_MULTRET);
  }
  return nnl_cli_report(L, status);
}

/* ---- the nnlua module ---- */

/* Append ";dir/?.lua;dir/?/init.lua" for each directory not yet in package.path. */
/* An installed nnlua finds its Lua files beside it (<prefix>/bin/../share/lua/5.4), wherever
 * the prefix was moved; a build-tree nnlua has none there and uses the source tree. */
static const char *installed_lua_dir(void)
{
  static char dir[4096];
  char file[4200];
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 64);
  if (n <= 0)
    return NULL;
  dir[n] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    return NULL;
  strcpy(slash, "/../share/lua/5.4");
  snprintf(file, sizeof file, "%s/nnlua/init.lua", dir);
  return access(file, R_OK) == 0 ? dir : NULL;
}

static void extend_package_path(lua_State *L)
{
  const char *const dirs[] = {installed_lua_dir(), BUILD_DIR, INSTALL_DIR};
  size_t i;
  lua_getglobal(L, "package");
  for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    const char *path;
    if (dirs[i] == NULL)
      continue;
    lua_getfield(L, -1, "path");
    path = lua_tostring(L, -1);
    lua_pushfstring(L, ";%s/?.lua;", dirs[i]);
    if (path == NULL || strstr(path, lua_tostring(L, -1) + 1) == NULL) {
      lua_pushfstring(L, "%s;%s/?.lua;%s/?/init.lua", path ? path : "", dirs[i], dirs[i]);
      lua_setfield(L, -4, "path");
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* nn = require "nnlua", with the C half linked into this executable. */
static int load_nn(lua_State *L)
{
  int status;
  extend_package_path(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_nnlua_core);
  lua_setfield(L, -2, "nnlua.core");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnlua");
  status = nnl_cli_docall(L, 1, 1);
  if (status == LUA_OK)
    lua_setglobal(L, "nn");
  return nnl_cli_report(L, status) == LUA_OK;
}

/* The REPL's '?expr' calls the global help: here it is nn.help (users of the stock lua5.4 call
 * nn.help). A help set by LUA_INIT, -e or -l comes later and wins. */
static void set_help(lua_State *L)
{
  static const char code[] = "if help == nil and type(nn) == 'table' then help = nn.help end";
  int status = luaL_loadbuffer(L, code, sizeof code - 1, "=help");
  if (status == LUA_OK)
    status = nnl_cli_docall(L, 0, 0);
  nnl_cli_report(L, status);
}

/* ---- main ---- */

static int pmain(lua_State *L)
{
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  cli_options o;
  collect_args(argv, &o);
  luaL_checkversion(L);
  if (argv[0] && argv[0][0])
    nnl_cli_progname = argv[0];
  if (o.flags & HAS_ERROR) {
    usage_error(nnl_cli_progname, argv[o.script], &o);
    return 0;
  }
  if (o.flags & HAS_HELP) {
    print_usage(stdout, nnl_cli_progname);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (o.threads > 0) /* before any kernel, or any user code, runs */
    nnl_set_num_threads(o.threads);
  if (o.flags & HAS_V)
    nnl_cli_print_version();
  if (o.flags & HAS_NOENV) { /* tells the package library to ignore LUA_PATH */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  create_arg_table(L, argv, argc, o.script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (!load_nn(L))
    return 0;
  set_help(L);
  if (!(o.flags & HAS_NOENV) && handle_luainit(L) != LUA_OK)
    return 0;
  if (!run_args(L, argv, o.script))
    return 0;
  if (o.script < argc && handle_script(L, argv + o.script) != LUA_OK)
    return 0;
  if (o.flags & HAS_I)
    nnl_cli_repl(L);
  else if (o.script == argc && !(o.flags & (HAS_E | HAS_V))) {
    if (isatty(STDIN_FILENO)) {
      nnl_cli_print_version();
      nnl_cli_repl(L);
    } else if (dofile(L, NULL) != LUA_OK) { /* lua < script */
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* libgomp's idle threads spin ~300,000 times (about 19 ms on these VMs) before sleeping; on a
 * shared machine the spinning thread steals the core its partner needs, and 2-thread training
 * runs 10-50x slower. Unless the user chose a policy, shorten the spin. libgomp reads the
 * environment while loading, before main, so the setting takes one re-exec to apply. */
static void tame_openmp_spin(char **argv)
{
  if (getenv("OMP_WAIT_POLICY") != NULL || getenv("GOMP_SPINCOUNT") != NULL)
    return;
  if (setenv("GOMP_SPINCOUNT", "1000", 0) == 0)
    execv("/proc/self/exe", argv); /* returns only on failure: carry on as we are */
}

int main(int argc, char **argv)
{
  tame_openmp_spin(argv);
  int status, ok;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    nnl_cli_message(argv[0], "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP); /* until the libraries are open */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = lua_toboolean(L, -1);
  nnl_cli_report(L, status);
  lua_close(L);
  if (ok && status == LUA_OK)
    return EXIT_SUCCESS;
  return stopped ? 128 + SIGINT : EXIT_FAILURE; /* as a shell reports a process Ctrl-C ended */
}
