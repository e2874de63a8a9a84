//go:build !unix

package main

import "time"

// cpuTime is 0 where getrusage does not exist: the CPU columns of a run
// there read 0, and the benchmarks are run on Linux (BENCHMARKS.md).
func cpuTime() time.Duration { return 0 }

// raiseFileLimit does nothing where there is no RLIMIT_NOFILE.
func raiseFileLimit() {}
