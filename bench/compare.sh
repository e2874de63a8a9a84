#!/usr/bin/env bash
# Compares the library at another revision ("before") with the working tree
# ("after") in one run, taking turns so that a slow spell of the machine
# falls on both: the library's testing.B benchmarks (through benchstat) and
# the harness's throughput and ping-pong ratios against raw x/crypto.
#
#   bench/compare.sh REV [ROUNDS]
#
# REV is checked out in a temporary git worktree, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:$(go env GOPATH)/bin"
rev=${1:?usage: bench/compare.sh REV [ROUNDS]}
rounds=${2:-4}
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest

out=$(mktemp -d)
before=$(mktemp -d)/before
git worktree add -q --detach "$before" "$rev"
trap 'git worktree remove --force "$before"; rm -rf "$out"' EXIT
# Each side runs its own bench/ harness (it may use internal packages of
# its revision); check with git diff REV -- bench/ that the measuring code
# is the same.

for i in $(seq "$rounds"); do
  for side in before after; do
    dir=.
    [ "$side" = before ] && dir=$before
    (cd "$dir" && go test -run '^$' -bench . -benchmem -count 2 -benchtime 200ms . >>"$out/$side.gobench")
    (cd "$dir/bench" && go run . -only throughput,ping -reps 1 -maxtime 2s 2>&1 | grep -v GOGC | sed "s/^/$side /" >>"$out/harness.txt")
  done
done

echo "== go test -bench (before = $rev, after = working tree)"
benchstat "$out/before.gobench" "$out/after.gobench"
echo
echo "== harness: sshdial / raw x/crypto in the same run, median over $rounds rounds"
# Lines: SIDE bench: CIPHER DIR MODE... N MB/s ... | SIDE bench: ping MODE... p50 N µs ...
awk '
  function med(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $3 == "ping" {
    mode = ($4 == "sshdial") ? "sshdial" : ($4 == "x/crypto") ? "raw" : ""
    for (i = 1; i <= NF; i++) if ($i == "p50") v = $(i + 1)
    if (mode != "") val[$1 SUBSEP "ping p50 (lower is better)" SUBSEP mode, ++cnt[$1 SUBSEP "ping p50 (lower is better)" SUBSEP mode]] = v
    next
  }
  $5 == "sshdial" || $5 == "x/crypto" {
    mode = ($5 == "sshdial") ? "sshdial" : "raw"
    for (i = 1; i <= NF; i++) if ($i == "MB/s") v = $(i - 1)
    what = $3 " " $4 " MB/s"
    val[$1 SUBSEP what SUBSEP mode, ++cnt[$1 SUBSEP what SUBSEP mode]] = v
    whats[what] = 1
  }
  END {
    whats["ping p50 (lower is better)"] = 1
    printf "%-50s %10s %10s\n", "figure", "before", "after"
    for (w in whats) {
      line = sprintf("%-50s", w)
      for (s = 0; s < 2; s++) {
        side = s ? "after" : "before"
        r = ""
        for (k = 1; k <= cnt[side SUBSEP w SUBSEP "sshdial"] && k <= cnt[side SUBSEP w SUBSEP "raw"]; k++)
          r = r " " val[side SUBSEP w SUBSEP "sshdial", k] / val[side SUBSEP w SUBSEP "raw", k]
        line = line sprintf(" %9.2fx", med(r))
      }
      print line
    }
  }' "$out/harness.txt"
