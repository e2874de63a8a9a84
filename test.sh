#!/usr/bin/env bash
# Runs every check and test of the project. On a fresh Debian machine with
# Go on PATH it installs what the tests need first (OpenSSH's sshd,
# PostgreSQL, Redis, MariaDB); it starts no system service: the tests run
# their own throwaway servers on 127.0.0.1 and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"

# Servers and clients for the tests: sshd, ssh-keyscan and ssh-agent for
# the core, the databases and nats-server for integration/, curl and psql
# for cmd/sshdial.
scripts/ensure-packages.sh openssh-server:sshd openssh-client:ssh openssh-client:ssh-keyscan openssh-client:ssh-agent \
  'postgresql:/usr/lib/postgresql/*/bin/postgres' redis-server:redis-server mariadb-server:mariadbd nats-server:nats-server \
  curl:curl postgresql-client:psql

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== builds and vet for darwin and windows (library, sshtest, commands, integration, bench)"
for goos in windows darwin; do
  GOOS=$goos go build ./...
  GOOS=$goos go vet ./...
  (cd integration && GOOS=$goos go vet ./...)
  (cd bench && GOOS=$goos go vet ./...)
done

echo "== go test -race"
export SSHDIAL_REQUIRE_SSHD=1 # a missing sshd fails the tests instead of skipping them
go test -race -count=1 -timeout 10m ./...

echo "== integration (pgx, lib/pq, mysql, go-redis, gRPC, NATS, unix-socket HTTP against real servers)"
(cd integration && go vet ./... && go test -race -count=1 -timeout 10m ./...)

echo "== bench harness (a smoke run; figures come from a full run, see BENCHMARKS.md)"
(cd bench && go vet ./...)
if ! out=$(cd bench && go run . -quick 2>&1); then
  echo "$out" >&2
  exit 1
fi

echo "== demo"
go run ./cmd/sshdial demo >/dev/null
echo "all checks passed"
