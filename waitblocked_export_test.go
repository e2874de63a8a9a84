package sshdial

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// WaitBlockedIn waits until n goroutines (one when n is omitted) are
// parked with fn on their stacks (fn as stack traces print it, e.g.
// "sshdial.(*Conn).Read"): calls started in the background have reached
// the point where they wait. It is for tests over real sockets (OpenSSH's
// sshd, a ProxyCommand, TCP), where synctest.Wait cannot be used; tests in
// a synctest bubble use synctest.Wait. It is exported, in a test file, for
// the tests of package sshdial_test.
func WaitBlockedIn(t testing.TB, fn string, n ...int) {
	t.Helper()
	want := 1
	if len(n) > 0 {
		want = n[0]
	}
	require.Eventually(t, func() bool { return blockedIn(fn) >= want }, 20*time.Second, time.Millisecond,
		"waiting for %d goroutines blocked in %s", want, fn)
}

// blockedIn counts the goroutines that are neither running nor runnable
// and have fn on their stacks.
func blockedIn(fn string) int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, stack, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[running]") || strings.Contains(header, "[runnable]") {
			continue
		}
		if strings.Contains(stack, fn+"(") {
			count++
		}
	}
	return count
}
