#!/usr/bin/env bash
# Runs every check and test of the project. On a fresh Debian machine with
# Go on PATH it installs what the tests need first (OpenSSH's sshd,
# PostgreSQL, Redis, MariaDB); it starts no system service: the tests run
# their own throwaway servers on 127.0.0.1 and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"

need=()
command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
# Servers for the integration tests (integration/), run as throwaway processes.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "== installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends and policy-rc.d keep the package from starting
  # a system sshd: the tests run their own.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
export SSHDIAL_REQUIRE_SSHD=1 # a missing sshd fails the tests instead of skipping them
go test -race -count=1 -timeout 10m ./...

echo "== integration (pgx, lib/pq, mysql, go-redis, gRPC against real servers)"
(cd integration && go vet ./... && go test -race -count=1 -timeout 10m ./...)

echo "== bench harness (a smoke run; figures come from a full run, see BENCHMARKS.md)"
(cd bench && go vet ./...)
if ! out=$(cd bench && go run . -quick 2>&1); then
  echo "$out" >&2
  exit 1
fi

echo "== demo"
go run ./cmd/sshdial-demo >/dev/null
echo "all checks passed"
