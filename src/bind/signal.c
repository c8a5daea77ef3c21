/* signal.c (bind) — nn.interrupt: cooperative Ctrl-C for training loops (nnlua and stock lua5.4): the
 * first SIGINT sets a flag polled between steps, the second goes to the handler that was there before. */
#define _GNU_SOURCE /* SA_SIGINFO declarations with -std=c11 */
#include <signal.h>
#include <string.h>

#include "bind.h"

/* Touched by the handler: only sig_atomic_t flags and the saved action, which is written
 * only while our handler is not installed. */
static volatile sig_atomic_t requested;
static struct sigaction previous;

static void on_sigint(int sig, siginfo_t *info, void *uctx) {
  if (!requested) {
    requested = 1;
    return;
  }
  /* second Ctrl-C: the loop did not stop in time (a long step, or none polls): hand over */
  sigaction(SIGINT, &previous, NULL);
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(sig, info, uctx);
  } else if (previous.sa_handler == SIG_DFL) {
    raise(sig); /* blocked until we return, then the default action ends the process */
  } else if (previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
  }
}

static int ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigint;
}

/* The interpreter restores its own handler after each chunk (nnlua and lua.c do), so whether
 * we are installed is read from the kernel, never remembered. */
static int installed(void) {
  struct sigaction cur;
  return sigaction(SIGINT, NULL, &cur) == 0 && ours(&cur);
}

/* nn.interrupt.install() -> true. Idempotent; clears an earlier request. */
static int l_install(lua_State *L) {
  requested = 0;
  if (!installed()) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigint;
    sa.sa_flags = SA_SIGINFO | SA_RESTART; /* a read() in the loop is not cut short */
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    if (sigaction(SIGINT, &sa, &old) != 0) return luaL_error(L, "interrupt.install: sigaction failed");
    previous = old;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* nn.interrupt.uninstall(): the handler from before install() is back; the flag is cleared. */
static int l_uninstall(lua_State *L) {
  if (installed()) sigaction(SIGINT, &previous, NULL);
  requested = 0;
  (void)L;
  return 0;
}

/* nn.interrupt.requested() -> true once Ctrl-C came after install() (until clear()). */
static int l_requested(lua_State *L) {
  lua_pushboolean(L, requested != 0);
  return 1;
}

static int l_clear(lua_State *L) {
  (void)L;
  requested = 0;
  return 0;
}

static int l_installed(lua_State *L) {
  lua_pushboolean(L, installed());
  return 1;
}

void nnlb_open_signal(lua_State *L, int module) {
  static const luaL_Reg fns[] = {{"install", l_install},     {"uninstall", l_uninstall},
                                 {"requested", l_requested}, {"clear", l_clear},
                                 {"installed", l_installed}, {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, module, "interrupt");
}
