package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// terminal is a shell line run under script(1), on a terminal of its own.
type terminal struct {
	script int                  // script's PID
	in     io.WriteCloser       // what is written here is typed
	out    *testutil.SyncBuffer // what the terminal shows
	done   chan struct{}        // closed once script has exited; code is set before
	code   int                  // script's exit status: the command's, with -e
}

// onTerminal runs line with /bin/sh under script(1), with env added to
// this process's environment (and SSHDIAL_TEST_MAIN=1, so that this test
// binary runs as sshdial). script uses $SHELL, so it is set: with bash a
// lone command is exec'd, with dash it is not, and a shell left waiting
// for the command dies of a ^C itself (script then exits 130, whatever
// the command did). Use execLine for one command. script, and so the
// command, is killed when the test ends.
func onTerminal(t *testing.T, env []string, line string) *terminal {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) is missing (util-linux)")
	}
	cmd := exec.Command(script, "-qfec", line, "/dev/null")
	cmd.Env = append(append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "SHELL=/bin/sh"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	term := &terminal{out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = term.out, term.out
	if term.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term.script = cmd.Process.Pid
	go func() {
		cmd.Wait()
		term.code = cmd.ProcessState.ExitCode()
		close(term.done)
	}()
	t.Cleanup(func() {
		// The command under script ends with script: its terminal hangs up.
		cmd.Process.Kill()
		<-term.done
		if t.Failed() {
			t.Logf("the terminal showed:\n%s", term.out)
		}
	})
	return term
}

// pid returns the PID of the command under script: script's child, the
// shell that exec'd it (execLine), found in /proc. Unlike a search by
// command line, it never finds another test's copy.
func (term *terminal) pid(t *testing.T) int {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/task/%d/children", term.script, term.script)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if f := strings.Fields(string(b)); err == nil && len(f) == 1 {
			pid, err := strconv.Atoi(f[0])
			if err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("script's child: %q, %v", b, err)
		}
	}
}

// exit waits for the command under script to end and returns its status.
func (term *terminal) exit(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-term.done:
		return term.code
	case <-time.After(limit):
		t.Fatalf("still running after %v:\n%s", limit, term.out)
		return -1
	}
}

// execLine is a shell line that replaces the shell with argv, so that
// the command itself is the process a ^C on the terminal reaches.
func execLine(argv ...string) string {
	return "exec " + shellQuote(argv...)
}

// shellQuote quotes each word for sh.
func shellQuote(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
