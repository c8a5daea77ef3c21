/* cli.h — what the two halves of the nnlua executable share: running a chunk
 * with a traceback and Ctrl-C handling (main.c), and the interactive loop (repl.c). */
#ifndef NNL_CLI_H
#define NNL_CLI_H

#include <lua.h>

/* Program name put in front of error messages; NULL inside the REPL, as lua.c does. */
extern const char *nnl_cli_progname;

/* Call the function below narg arguments under a traceback message handler, with
 * SIGINT turned into a Lua error "interrupted!" while it runs. Returns the status. */
int nnl_cli_docall(lua_State *L, int narg, int nres);

/* If status is an error, print the message on the stack top to stderr and pop it. */
int nnl_cli_report(lua_State *L, int status);

/* Print "pname: msg" (or just msg when pname is NULL) to stderr. */
void nnl_cli_message(const char *pname, const char *msg);

/* The one-line version banner: "nnlua 0.1.0 (Lua 5.4.x, OpenBLAS ..., N threads)". */
void nnl_cli_print_version(void);

/* Read-eval-print loop over stdin: line editing, history and completion when stdin
 * is a terminal, plain lines with printed prompts otherwise. Returns at end of input. */
void nnl_cli_repl(lua_State *L);

#endif
