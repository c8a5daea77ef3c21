# scripts/lib/common.sh: shell helpers shared by scripts/setup and scripts/get-data.
# Source it (bash only); it defines functions and NNL_ROOT, and changes no shell options.
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the scripts that source this file
NNL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

nnl_say()  { printf '%s\n' "$*"; }
nnl_warn() { printf '%s: warning: %s\n' "${0##*/}" "$*" >&2; }
nnl_die()  { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
nnl_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    nnl_die "need root to run '$*' (not root and sudo is not installed)"
  fi
}

# Print the packages among "$@" that dpkg does not report as installed.
nnl_missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "installed" ] || printf '%s\n' "$pkg"
  done
}

# Install the packages among "$@" that are missing; do nothing (and never call
# apt-get) when all are installed, so repeated runs stay fast and offline.
nnl_apt_ensure() {
  local missing
  missing="$(nnl_missing_packages "$@" | tr '\n' ' ')"
  missing="${missing% }"
  if [ -z "$missing" ]; then
    return 0
  fi
  nnl_say "installing Debian packages: $missing"
  # -o DPkg::Lock::Timeout waits for another apt run instead of failing at once.
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600)
  # A fresh machine has empty package lists: update once, then install.
  nnl_as_root "${apt[@]}" update
  # shellcheck disable=SC2086  # $missing is a list of package names
  nnl_as_root "${apt[@]}" install --no-install-recommends $missing
}

# Node.js and npm: a machine may already have them from elsewhere (e.g. a
# nodesource build whose nodejs package bundles npm). Only ask Debian for what
# is missing; installing Debian's npm next to a nodejs that bundles npm would
# conflict.
nnl_node_packages() {
  command -v node >/dev/null 2>&1 || echo nodejs
  command -v npm  >/dev/null 2>&1 || echo npm
}
