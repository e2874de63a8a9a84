//go:build unix

package testproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// helperEnv makes the test binary act as a helper process instead of
// running tests: "listen" listens on the address in listenEnv, "parent"
// (Linux) starts a long-running child and prints its PID.
const (
	helperEnv = "TESTPROC_HELPER"
	listenEnv = "TESTPROC_LISTEN"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "listen":
		// Listen a little late, so that WaitListening has to poll.
		time.Sleep(200 * time.Millisecond)
		l, err := net.Listen("tcp", os.Getenv(listenEnv))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening")
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		time.Sleep(5 * time.Minute) // the test kills it long before
		os.Exit(0)
	case "parent":
		runParentHelper()
	default:
		fmt.Println("unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// runParentHelper is the "parent" helper: it starts sleep, prints its PID
// and waits to be killed.
func runParentHelper() {
	p, err := Launch(Options{}, "sleep", "300")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	time.Sleep(5 * time.Minute) // the test kills it long before
	p.Stop()
	os.Exit(0)
}

// waitFor polls cond every 10ms for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func TestWaitListening(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv(helperEnv, "listen")
	t.Setenv(listenEnv, addr)
	p := Start(t, Options{}, os.Args[0])
	if err := p.WaitListening(addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The helper prints once it listens, so the line may reach the
	// output a moment after the port answers.
	for deadline := time.Now().Add(10 * time.Second); p.Output() != "listening\n" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.Output(); got != "listening\n" {
		t.Errorf("output %q, want %q", got, "listening\n")
	}
	p.Stop()
	if err := p.Wait(); err == nil {
		t.Error("Wait after Stop: nil error, want the process killed")
	}
}

func TestWaitListeningFailsWhenProcessExits(t *testing.T) {
	p := Start(t, Options{}, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
	begin := time.Now()
	err := p.WaitListening(freeAddr(t), time.Minute)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("error %v, want ErrExited", err)
	}
	if d := time.Since(begin); d > 20*time.Second {
		t.Errorf("WaitListening took %v, want it to return when the process exits", d)
	}
	for _, want := range []string{"to-stdout", "to-stderr", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var exit *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
}

func TestWaitListeningTimeout(t *testing.T) {
	p := Start(t, Options{}, "sh", "-c", "echo waiting; exec sleep 300")
	begin := time.Now()
	err := p.WaitListening(freeAddr(t), 300*time.Millisecond)
	if err == nil || errors.Is(err, ErrExited) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond || d > 10*time.Second {
		t.Errorf("WaitListening took %v, want about 300ms", d)
	}
	if !strings.Contains(err.Error(), "waiting") {
		t.Errorf("error %q does not contain the output", err)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Launch(Options{}, ""); err == nil {
		t.Error("Launch with no command: nil error")
	}
	if _, err := Launch(Options{}, "/nonexistent/testproc-command"); err == nil {
		t.Error("Launch of a missing command: nil error")
	}
	if _, err := Launch(Options{User: "no-such-user-testproc"}, "true"); err == nil {
		t.Error("Launch as an unknown user: nil error")
	}
	p := Start(t, Options{}, "sleep", "300")
	for _, addr := range []string{"", "127.0.0.1", "localhost:1:2"} {
		if err := p.WaitListening(addr, time.Second); err == nil {
			t.Errorf("WaitListening(%q): nil error", addr)
		}
	}
	if err := p.WaitListening(freeAddr(t), 0); err == nil {
		t.Error("WaitListening with timeout 0: nil error")
	}
}

func TestUser(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Launch(Options{User: "nobody"}, "id", "-u")
	if os.Geteuid() != 0 {
		// Only root may change user.
		if err == nil {
			p.Stop()
			t.Fatal("Launch as nobody without root: nil error")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatalf("id -u: %v: %s", err, p.Output())
	}
	if got := strings.TrimSpace(p.Output()); got != nobody.Uid {
		t.Errorf("uid %s, want nobody's %s", got, nobody.Uid)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	p, err := Launch(Options{}, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for range 3 {
		go func() {
			p.Stop()
			done <- struct{}{}
		}()
	}
	for range 3 {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Stop did not return")
		}
	}
	p.Stop()

	// Stop of a process that exited by itself only waits.
	q, err := Launch(Options{}, "true")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Wait(); err != nil {
		t.Fatal(err)
	}
	q.Stop()
	if err := q.Wait(); err != nil {
		t.Errorf("Wait after Stop of an exited process: %v, want its own status", err)
	}
}

// fakeTB records what Start does with a test.
type fakeTB struct {
	testing.TB
	failed   bool
	cleanups []func()
	logs     []string
	fatals   []string
}

func (f *fakeTB) Helper()                 {}
func (f *fakeTB) Failed() bool            { return f.failed }
func (f *fakeTB) Cleanup(fn func())       { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Logf(s string, a ...any) { f.logs = append(f.logs, fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fatal(a ...any) {
	f.fatals = append(f.fatals, fmt.Sprint(a...))
	runtime.Goexit()
}

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartCleanup(t *testing.T) {
	for _, failed := range []bool{false, true} {
		t.Run(fmt.Sprint("failed=", failed), func(t *testing.T) {
			f := &fakeTB{failed: failed}
			p := Start(f, Options{}, "sh", "-c", "echo hello-from-proc; exec sleep 300")
			waitFor(t, 10*time.Second, "printed hello", func() bool {
				return strings.Contains(p.Output(), "hello-from-proc")
			})
			f.runCleanups()
			select {
			case <-p.Exited():
			default:
				t.Fatal("the process still runs after the test's cleanup")
			}
			logged := strings.Contains(strings.Join(f.logs, ""), "hello-from-proc")
			if logged != failed {
				t.Errorf("output logged: %v, want %v (logs %q)", logged, failed, f.logs)
			}
		})
	}
}

func TestStartFailsTheTest(t *testing.T) {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, Options{}, "/nonexistent/testproc-command")
		t.Error("Start returned after a failed start")
	}()
	<-done
	if len(f.fatals) != 1 || len(f.cleanups) != 0 {
		t.Errorf("fatals %q, %d cleanups; want one fatal, no cleanup", f.fatals, len(f.cleanups))
	}
}

// TestWaitListeningPortTakenByAnother checks that a port held by another
// program's listener does not count as the process listening: here the
// process never listens, and then exits, as a server does when it cannot
// bind its port.
func TestWaitListeningPortTakenByAnother(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux tells which process holds a listening socket")
	}
	l := testutil.Serve(t, "tcp", func(net.Conn) {})
	p := Start(t, Options{}, "sh", "-c", "sleep 0.5; echo cannot bind; exit 1")
	err := p.WaitListening(l.Addr().String(), time.Minute)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "cannot bind") {
		t.Fatalf("error %v, want ErrExited with the process's output", err)
	}
}

// TestWaitListeningWildcard checks that a process listening on all
// addresses (in Go, one IPv6 socket that takes IPv4 too) counts as
// listening on 127.0.0.1.
func TestWaitListeningWildcard(t *testing.T) {
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	t.Setenv(helperEnv, "listen")
	t.Setenv(listenEnv, ":"+port)
	p := Start(t, Options{}, os.Args[0])
	if err := p.WaitListening(addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
