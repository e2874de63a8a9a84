package sshdial

import (
	"testing"
	"time"
)

// SetDrainStall sets how long a handed-over connection's reset waits for a
// peer that takes nothing, until t ends. It is exported, in a test file,
// for the tests of package sshdial_test.
func SetDrainStall(t testing.TB, d time.Duration) {
	old := drainStall
	drainStall = d
	t.Cleanup(func() { drainStall = old })
}
