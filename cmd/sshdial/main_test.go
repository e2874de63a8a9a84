package main

import (
	"context"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"go.uber.org/goleak"
)

// watchTestProcess, where set, makes the command started by a test exit
// once that test's process is gone: a command that -f put in the background
// is nobody's child, and a killed test run must leave none behind.
var watchTestProcess func()

// TestMain runs the command itself when the signal tests start this test
// binary as sshdial (SSHDIAL_TEST_MAIN=1), and checks for leaked goroutines
// after the in-process tests.
func TestMain(m *testing.M) {
	testutil.RelayMain(os.Args) // the ProxyCommand test runs this binary as a relay
	if os.Getenv("SSHDIAL_TEST_MAIN") == "1" {
		if watchTestProcess != nil {
			watchTestProcess()
		}
		main()
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("os/signal.loop"))
}

// runSync runs the command in-process to its end.
func runSync(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut testutil.SyncBuffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemo(t *testing.T) {
	start := time.Now()
	code, out, stderr := runSync(t, 30*time.Second, "demo")
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"/via-L", "/via-D", "/via-http-proxy", "/via-R", "sshdial status", "Shut down"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "-> 200 OK"); n != 4 {
		t.Errorf("want 4 fetches answered 200 OK, got %d:\n%s", n, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("demo took %v, want under 5s", d)
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runSync(t, 5*time.Second, "-h")
	if code != 0 || !strings.Contains(out, "usage: sshdial") || !strings.Contains(out, "Exit codes:") {
		t.Errorf("-h: exit %d, output:\n%s", code, out)
	}
	code, out, _ = runSync(t, 5*time.Second, "-V")
	if code != 0 || !strings.HasPrefix(out, "sshdial ") {
		t.Errorf("-V: exit %d, output %q", code, out)
	}
}

// The command collects garbage at GOGC=400 unless GOGC is set.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("without GOGC: GC percent %d, want 400", got)
	}
	t.Setenv("GOGC", "50")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GC percent %d, want it left alone (100)", got)
	}
}
