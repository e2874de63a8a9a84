#!/usr/bin/env bash
# Runs the benchmark harness and writes BENCHMARKS.md and docs/bench.png at
# the repository root. Installs OpenSSH's server and client when missing
# (as root, Debian); the harness starts its own sshd on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
need=()
command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bench/run.sh: missing ${need[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go build -o "${TMPDIR:-/tmp}/sshdial-bench" .
exec "${TMPDIR:-/tmp}/sshdial-bench" -out ../BENCHMARKS.md -png ../docs/bench.png "$@"
