#!/usr/bin/env bash
# Runs the benchmark harness and writes BENCHMARKS.md and docs/bench.png at
# the repository root. Installs OpenSSH's server and client when missing
# (as root, Debian); the harness starts its own sshd on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
../scripts/ensure-packages.sh openssh-server:sshd openssh-client:ssh
go build -o "${TMPDIR:-/tmp}/sshdial-bench" .
exec "${TMPDIR:-/tmp}/sshdial-bench" -out ../BENCHMARKS.md -png ../docs/bench.png "$@"
