/* repl.c — the interactive loop of nnlua: libedit line editing, history and tab
 * completion of names and methods; expressions echoed, multi-line input, ?help. */
#define _GNU_SOURCE /* getline, pselect */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lua.h>
#include <lauxlib.h>

#include "cli.h"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 1000
#define HISTORY_NAME ".nnlua_history"
#define EOFMARK "<eof>" /* ends the syntax error of an unfinished chunk */
#define TENSOR_MT "nnlua.Tensor"

enum { LINE_OK, LINE_EOF, LINE_INTERRUPTED };
enum { INPUT_EOF = -1, INPUT_NONE = -2 }; /* besides the status of a load */

static int use_edit;         /* stdin is a terminal: read through libedit */
static char *history_file;   /* NULL: no history kept */
static char *last_saved;     /* last history entry, to skip repeats */
static lua_State *complete_L;

/* ---- reading a line ---- */

static volatile sig_atomic_t got_sigint;
static char *edit_line;
static int edit_done;

static void on_prompt_sigint(int sig)
{
  (void)sig;
  got_sigint = 1;
}

static void on_edit_line(char *line)
{
  edit_line = line;
  edit_done = 1;
}

/* libedit's callback interface, so Ctrl-C at the prompt can drop the line: SIGINT
 * is only let through while pselect waits, and the handler just sets a flag. */
static int read_edit(const char *prompt, char **line)
{
  struct sigaction sa, old_sa;
  sigset_t block, old_mask, wait_mask;
  int status = LINE_EOF;

  sa.sa_handler = on_prompt_sigint;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old_mask);
  sigaction(SIGINT, &sa, &old_sa);
  wait_mask = old_mask;
  sigdelset(&wait_mask, SIGINT);

  got_sigint = 0;
  edit_done = 0;
  edit_line = NULL;
  rl_callback_handler_install(prompt, on_edit_line);
  for (;;) {
    fd_set fds;
    int avail = 0;
    if (got_sigint) {
      status = LINE_INTERRUPTED;
      break;
    }
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    if (pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, &wait_mask) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (ioctl(STDIN_FILENO, FIONREAD, &avail) == 0 && avail == 0)
      break; /* readable with nothing to read: the terminal hung up */
    rl_callback_read_char();
    if (edit_done) {
      status = edit_line ? LINE_OK : LINE_EOF;
      break;
    }
  }
  rl_callback_handler_remove();
  sigaction(SIGINT, &old_sa, NULL);
  sigprocmask(SIG_SETMASK, &old_mask, NULL);

  if (status == LINE_INTERRUPTED) {
    fputs("^C\n", stdout);
    fflush(stdout);
  } else if (status == LINE_EOF) {
    free(edit_line);
    edit_line = NULL;
  }
  *line = edit_line;
  return status;
}

/* Not a terminal (tests drive the REPL through a pipe): print the prompt, read a line. */
static int read_plain(const char *prompt, char **line)
{
  size_t cap = 0;
  ssize_t n;
  fputs(prompt, stdout);
  fflush(stdout);
  *line = NULL;
  n = getline(line, &cap, stdin);
  if (n < 0) {
    free(*line);
    *line = NULL;
    return LINE_EOF;
  }
  if (n > 0 && (*line)[n - 1] == '\n')
    (*line)[n - 1] = '\0';
  return LINE_OK;
}

/* The prompt comes from _PROMPT / _PROMPT2 when they are set, as in lua. */
static int read_line(lua_State *L, int first, char **line)
{
  const char *prompt;
  int status;
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  prompt = lua_tostring(L, -1);
  if (prompt == NULL)
    prompt = first ? PROMPT1 : PROMPT2;
  status = use_edit ? read_edit(prompt, line) : read_plain(prompt, line);
  lua_pop(L, 1);
  return status;
}

/* ---- history ---- */

static void history_open(void)
{
  const char *env = getenv("NNLUA_HISTORY"), *home = getenv("HOME");
  if (env && env[0])
    history_file = strdup(env);
  else if (home && home[0]) {
    size_t n = strlen(home) + sizeof(HISTORY_NAME) + 1;
    if ((history_file = malloc(n)) != NULL)
      snprintf(history_file, n, "%s/%s", home, HISTORY_NAME);
  }
  using_history();
  stifle_history(HISTORY_MAX);
  if (history_file && read_history(history_file) == 0 && history_length > 0) {
    HIST_ENTRY *last = history_get(history_base + history_length - 1);
    if (last && last->line)
      last_saved = strdup(last->line);
  }
}

/* Written after every entry: a crash in a kernel under development should not cost
 * the session's history. The file is capped by the stifled history. */
static void history_add(const char *line)
{
  if (!use_edit || line[0] == '\0' || (last_saved && strcmp(last_saved, line) == 0))
    return;
  add_history(line);
  free(last_saved);
  last_saved = strdup(line);
  if (history_file)
    write_history(history_file);
}

/* ---- completion ---- */

static const char *const keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    NULL};

/* Everything that cannot be part of a dotted name, so "x:si" or "nn.Conv" is one word. */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(}[]),+-*/%^#~!?";

static int is_keyword(const char *s, size_t n)
{
  int i;
  for (i = 0; keywords[i]; i++)
    if (strlen(keywords[i]) == n && memcmp(keywords[i], s, n) == 0)
      return 1;
  return 0;
}

static int is_name(const char *s, size_t n)
{
  size_t i;
  if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return !is_keyword(s, n);
}

static int is_callable(lua_State *L, int idx)
{
  if (lua_isfunction(L, idx))
    return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL)
    return 0;
  lua_pop(L, 1);
  return 1;
}

/* Put in the set the names among the keys of table t that start with the prefix
 * (only those holding something callable when completing a method). */
static void add_keys(lua_State *L, int t, int set, const char *prefix, size_t plen,
                     int methods)
{
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING && (!methods || is_callable(L, -1))) {
      size_t n;
      const char *k = lua_tolstring(L, -2, &n);
      /* metamethods and other "__" names only when the prefix asks for them */
      if (n >= plen && memcmp(k, prefix, plen) == 0 && is_name(k, n) &&
          (prefix[0] == '_' || strncmp(k, "__", 2) != 0)) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
      }
    }
    lua_pop(L, 1);
  }
}

/* The fields of the value at obj: its own keys when it is a table, then along the
 * chain of metatables whose __index is a table (Lua classes, strings). A metatable
 * whose __index is a function can list its methods in __methods; tensors also
 * complete from nn.Tensor, the tensor method table. */
static void add_fields(lua_State *L, int obj, int set, const char *prefix, size_t plen,
                       int methods)
{
  int depth, top = lua_gettop(L);
  if (luaL_testudata(L, obj, TENSOR_MT) && lua_getglobal(L, "nn") == LUA_TTABLE &&
      lua_getfield(L, -1, "Tensor") == LUA_TTABLE)
    add_keys(L, lua_gettop(L), set, prefix, plen, methods);
  lua_settop(L, top);
  lua_pushvalue(L, obj);
  for (depth = 0; depth < 16; depth++) {
    int v = lua_gettop(L);
    if (lua_type(L, v) == LUA_TTABLE)
      add_keys(L, v, set, prefix, plen, methods);
    if (!lua_getmetatable(L, v))
      break;
    lua_pushliteral(L, "__methods");
    if (lua_rawget(L, -2) == LUA_TTABLE)
      add_keys(L, lua_gettop(L), set, prefix, plen, methods);
    lua_pop(L, 1);
    lua_pushliteral(L, "__index");
    if (lua_rawget(L, -2) != LUA_TTABLE)
      break;
    lua_replace(L, v); /* follow __index; drop the metatable */
    lua_settop(L, v);
  }
  lua_settop(L, top);
}

/* lua_CFunction, run protected (indexing may call __index): the set of names that
 * complete the word (arg 1), without the word's "a.b." or "x:" head. */
static int collect_names(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len), *sep = NULL, *p;
  int set;
  for (p = text; *p; p++)
    if (*p == '.' || *p == ':')
      sep = p;
  lua_newtable(L);
  set = lua_gettop(L);
  lua_pushglobaltable(L);
  if (sep == NULL) {
    int i;
    add_fields(L, set + 1, set, text, len, 0);
    for (i = 0; keywords[i]; i++)
      if (strncmp(keywords[i], text, len) == 0) {
        lua_pushboolean(L, 1);
        lua_setfield(L, set, keywords[i]);
      }
    lua_settop(L, set);
    return 1;
  }
  for (p = text; p < sep;) { /* walk "a.b" from the globals */
    const char *dot = memchr(p, '.', (size_t)(sep - p)), *end = dot ? dot : sep;
    int t = lua_type(L, -1);
    if (!is_name(p, (size_t)(end - p)) || (t != LUA_TTABLE && t != LUA_TUSERDATA))
      return 1; /* nothing to offer: an empty set */
    lua_pushlstring(L, p, (size_t)(end - p));
    lua_gettable(L, -2);
    lua_remove(L, -2);
    p = end + (dot ? 1 : 0);
  }
  add_fields(L, lua_gettop(L), set, sep + 1, strlen(sep + 1), *sep == ':');
  lua_settop(L, set);
  return 1;
}

static char **candidates;
static size_t ncandidates, next_candidate;

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *candidate_generator(const char *text, int state)
{
  (void)text;
  if (state == 0)
    next_candidate = 0;
  return next_candidate < ncandidates ? strdup(candidates[next_candidate++]) : NULL;
}

/* Collect "head" .. name for each name in the set at the stack top, sorted. */
static void fill_candidates(lua_State *L, const char *text)
{
  size_t cap = 16, headlen = 0;
  const char *p;
  for (p = text; *p; p++)
    if (*p == '.' || *p == ':')
      headlen = (size_t)(p - text) + 1;
  ncandidates = 0;
  if ((candidates = malloc(cap * sizeof *candidates)) == NULL)
    return;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    size_t n;
    const char *name = lua_tolstring(L, -2, &n);
    char *full = malloc(headlen + n + 1);
    lua_pop(L, 1);
    if (full == NULL)
      continue;
    memcpy(full, text, headlen);
    memcpy(full + headlen, name, n + 1);
    if (ncandidates == cap) {
      char **grown = realloc(candidates, 2 * cap * sizeof *candidates);
      if (grown == NULL) {
        free(full);
        continue;
      }
      candidates = grown;
      cap *= 2;
    }
    candidates[ncandidates++] = full;
  }
  qsort(candidates, ncandidates, sizeof *candidates, compare_names);
}

static char **complete(const char *text, int start, int end)
{
  lua_State *L = complete_L;
  int top = lua_gettop(L);
  char **matches = NULL;
  size_t i;
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file names when nothing matches */
  lua_pushcfunction(L, collect_names);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    fill_candidates(L, text);
    if (ncandidates > 0)
      matches = rl_completion_matches(text, candidate_generator);
    for (i = 0; i < ncandidates; i++)
      free(candidates[i]);
    free(candidates);
    candidates = NULL;
    ncandidates = 0;
  }
  lua_settop(L, top);
  return matches;
}

static void edit_open(lua_State *L)
{
  complete_L = L;
  rl_readline_name = "nnlua"; /* for ~/.editrc */
  rl_initialize();
  rl_basic_word_break_characters = word_breaks;
  rl_completer_word_break_characters = word_breaks;
  rl_attempted_completion_function = complete;
  rl_completion_append_character = '\0';
  history_open();
}

/* ---- reading a chunk ---- */

static int incomplete(lua_State *L, int status)
{
  if (status == LUA_ERRSYNTAX) {
    size_t n, m = sizeof(EOFMARK) - 1;
    const char *msg = lua_tolstring(L, -1, &n);
    if (n >= m && strcmp(msg + n - m, EOFMARK) == 0)
      return 1;
  }
  return 0;
}

/* "?expr" calls the global help(expr); whatever help returns is printed. */
static int load_help(lua_State *L, const char *expr)
{
  const char *chunk;
  int status;
  lua_getglobal(L, "help");
  if (!is_callable(L, -1)) {
    lua_pop(L, 1);
    nnl_cli_message(NULL, "no help here: '?' calls the global function help, which is not set");
    return INPUT_NONE;
  }
  lua_pop(L, 1);
  chunk = lua_pushfstring(L, "return help(%s\n)", expr);
  status = luaL_loadbuffer(L, chunk, strlen(chunk), "=stdin");
  lua_remove(L, -2);
  return status;
}

/* Leave on the stack the function compiled from the input, or an error message.
 * A line is first tried as an expression ("return <line>;"), then as a statement,
 * reading more lines while the statement is unfinished. */
static int load_input(lua_State *L)
{
  char *line;
  const char *src;
  size_t len;
  int status = read_line(L, 1, &line);
  if (status == LINE_EOF)
    return INPUT_EOF;
  if (status == LINE_INTERRUPTED)
    return INPUT_NONE;
  if (line[0] == '?') {
    history_add(line);
    status = load_help(L, line + 1);
    free(line);
    return status;
  }
  if (line[0] == '=') /* "=expr", kept from Lua 5.2 */
    lua_pushfstring(L, "return %s", line + 1);
  else
    lua_pushstring(L, line);
  free(line);

  src = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
  if (luaL_loadbuffer(L, src, strlen(src), "=stdin") == LUA_OK) {
    lua_remove(L, -2); /* the "return" text */
    history_add(lua_tostring(L, -2));
    lua_remove(L, -2); /* the line */
    return LUA_OK;
  }
  lua_pop(L, 2);
  for (;;) {
    src = lua_tolstring(L, -1, &len);
    status = luaL_loadbuffer(L, src, len, "=stdin");
    if (!incomplete(L, status))
      break;
    status = read_line(L, 0, &line);
    if (status == LINE_INTERRUPTED) { /* Ctrl-C drops the whole chunk */
      lua_pop(L, 2);
      return INPUT_NONE;
    }
    if (status == LINE_EOF) { /* report the unfinished chunk */
      status = LUA_ERRSYNTAX;
      break;
    }
    lua_pop(L, 1); /* the error message */
    lua_pushliteral(L, "\n");
    lua_pushstring(L, line);
    free(line);
    lua_concat(L, 3);
  }
  history_add(lua_tostring(L, -2));
  lua_remove(L, -2); /* the text */
  return status;
}

/* Print the results above base with the global print (so tensors go through their
 * __tostring), under the same Ctrl-C handling as the code that made them. */
static void print_results(lua_State *L, int base)
{
  int n = lua_gettop(L) - base;
  if (n <= 0)
    return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (nnl_cli_docall(L, n, 0) != LUA_OK)
    nnl_cli_message(NULL, lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

void nnl_cli_repl(lua_State *L)
{
  const char *oldname = nnl_cli_progname;
  int base = lua_gettop(L), status;
  nnl_cli_progname = NULL; /* no program name in front of errors typed at the prompt */
  use_edit = isatty(STDIN_FILENO);
  if (use_edit)
    edit_open(L);
  while ((status = load_input(L)) != INPUT_EOF) {
    if (status == LUA_OK)
      status = nnl_cli_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L, base);
    else if (status != INPUT_NONE)
      nnl_cli_report(L, status);
    lua_settop(L, base);
  }
  lua_settop(L, base);
  fputs("\n", stdout);
  fflush(stdout);
  nnl_cli_progname = oldname;
}
