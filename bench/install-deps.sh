#!/usr/bin/env bash
# Install the load generator and reference proxies used by bench/run.py when they are missing:
# wrk, nginx (nginx-light when available, else nginx), haproxy. Debian/Ubuntu (apt-get) only.
# Runs apt-get as root, or through sudo when not root. Does nothing when all are present.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
need_nginx=0
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_nginx=1

if (( ${#missing[@]} == 0 && need_nginx == 0 )); then
  echo "bench deps present: wrk, nginx, haproxy"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]} $( ((need_nginx)) && echo nginx) — no apt-get here; install them with your package manager" >&2
  exit 1
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "not root and no sudo: install ${missing[*]} $( ((need_nginx)) && echo nginx) manually" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
if (( need_nginx )); then
  if apt-cache show nginx-light >/dev/null 2>&1; then missing+=(nginx-light); else missing+=(nginx); fi
fi
echo "installing: ${missing[*]}"
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

# The distribution packages may start system services; the bench starts its own instances
# on free ports and does not need them.
for t in wrk nginx haproxy; do
  command -v "$t" >/dev/null 2>&1 || [[ -x "/usr/sbin/$t" ]] || { echo "still missing: $t" >&2; exit 1; }
done
echo "bench deps installed"
