// Package testproc starts and stops the server processes that tests and the
// benchmark harness run: sshd, database servers, ssh -L.
//
// A process started here writes its stdout and stderr into one buffer, for
// error messages. On Unix it runs in its own process group, and Stop kills
// that group; a process it forks that starts a session of its own (as sshd
// does for each connection) is outside the group and lives on until it ends
// by itself.
//
// On Linux the kernel also kills the started process with SIGKILL when the
// program that started it dies, even by SIGKILL, so that a killed test run
// leaves no server behind. That parent-death signal reaches only the
// started process, not what it forks, and a process that changes its own
// user loses it (such as a server started as root that switches to another
// user): start such a server with Options.User instead.
package testproc

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// Options says how Launch and Start run a command. The zero value runs it
// as the current user.
type Options struct {
	// User, if not empty, names the system user the process runs as, with
	// that user's primary group and no supplementary groups. Changing user
	// needs root; otherwise starting fails. On systems without Unix user
	// credentials (Windows) Launch returns an error when User is set.
	User string
}

// waitDelay is how long a process's exit waits for processes it forked to
// close its stdout and stderr.
const waitDelay = 5 * time.Second

// ErrExited is wrapped by the error of WaitListening when the process
// exited before it accepted connections.
var ErrExited = errors.New("the process exited before it accepted connections")

// Process is a running (or exited) command. Its methods are safe for
// concurrent use.
type Process struct {
	name   string // the command's base name, for messages
	cmd    *exec.Cmd
	output testutil.SyncBuffer
	exited chan struct{} // closed when cmd.Wait has returned
	err    error         // cmd.Wait's result, set before exited is closed
	stop   sync.Once
}

// Launch starts the command name with args and returns once it has
// started. The caller must call Stop when done with it.
func Launch(opts Options, name string, args ...string) (*Process, error) {
	if name == "" {
		return nil, errors.New("testproc: no command given")
	}
	cmd := exec.Command(name, args...)
	p := &Process{name: filepath.Base(name), cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout = &p.output
	cmd.Stderr = &p.output
	// A process that left the group may still hold the output pipe; Wait
	// gives up on it after this long.
	cmd.WaitDelay = waitDelay
	if err := setSysProcAttr(cmd, opts); err != nil {
		return nil, fmt.Errorf("testproc: starting %s: %w", name, err)
	}
	started := make(chan error)
	go p.run(started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("testproc: starting %s: %w", name, err)
	}
	return p, nil
}

// run starts the command and waits for it, on a goroutine locked to its OS
// thread for the whole life of the process. Linux sends the parent-death
// signal when the thread that started the process exits, not the whole
// program (https://go.dev/issue/27505), and the Go runtime ends a thread
// when a goroutine that locked it returns without unlocking it. While this
// goroutine keeps the starting thread locked, no other goroutine runs on it
// and so none can end it.
func (p *Process) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := p.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	p.err = p.cmd.Wait()
	close(p.exited)
}

// Start is Launch for tests: it fails the test if the command does not
// start, and when the test ends it stops the process and, if the test
// failed, logs the process's output.
func Start(t testing.TB, opts Options, name string, args ...string) *Process {
	t.Helper()
	p, err := Launch(opts, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.Output())
		}
	})
	return p
}

// Pid returns the process ID, which is also its process group ID on Unix.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Cmd returns the started command, for reading its fields (Path, Args,
// Process, and ProcessState once Exited is closed). The caller must not
// change, start or wait for it.
func (p *Process) Cmd() *exec.Cmd { return p.cmd }

// Output returns what the process has written to stdout and stderr so far.
// Once Exited is closed, it is all of it.
func (p *Process) Output() string { return p.output.String() }

// Exited returns a channel that is closed when the process has exited and
// its output is collected: once no process holds its stdout and stderr
// open, or at most 5 seconds after it exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits until Exited is closed and returns what exec.Cmd.Wait
// returned: nil after exit status 0, an *exec.ExitError after another
// status or a signal (also after Stop), or exec.ErrWaitDelay when it exited
// with status 0 but processes it forked kept its output open.
func (p *Process) Wait() error {
	<-p.exited
	return p.err
}

// Stop kills the process and its process group with SIGKILL (on Windows,
// only the process) and waits until Exited is closed. If the process has
// already exited by itself, Stop kills nothing, not even what is left of
// its group: its PID and process group ID may belong to others by then.
// Stop may be called more than once and from several goroutines; every
// call returns once Exited is closed.
func (p *Process) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.exited:
		default:
			// Not reaped when we looked, so the PID, and with it the
			// process group ID, is still ours. If Wait reaps it right
			// now, the PID comes free microseconds before the kill,
			// much too soon for the kernel to hand it out again.
			killGroup(p.cmd.Process)
		}
	})
	<-p.exited
}

// WaitListening waits until addr (host:port) accepts TCP connections, for
// at most timeout plus one connection attempt (at most a second). It fails
// at once if the process exits first: that error wraps ErrExited. Its
// errors include the process's output.
//
// On Linux, a connection counts only when the socket that listens on addr
// is the process's own: a port taken by another program before the process
// could bind it does not (the process then usually exits, and the error
// says so). Elsewhere, and for an addr whose host is a name, any listener
// counts.
func (p *Process) WaitListening(addr string, timeout time.Duration) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("testproc: %w", err)
	}
	if timeout <= 0 {
		return fmt.Errorf("testproc: timeout %v is not positive", timeout)
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			status := "exit status 0"
			if p.err != nil {
				status = p.err.Error()
			}
			return fmt.Errorf("%s (%s) did not listen on %s: %w; output:\n%s", p.name, status, addr, ErrExited, p.Output())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			// Another program may have taken the port before the
			// process could: then the process fails to listen and
			// exits, and the next turn says so.
			owned, known := listensOn(p.cmd.Process.Pid, addr)
			if owned || !known {
				return nil
			}
			err = errors.New("the port answers, but another process listens on it")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: nothing listens on %s after %v: %v; output:\n%s", p.name, addr, timeout, err, p.Output())
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago, for a
// process to listen on. Another process may take it in the meantime, so
// callers that start a server on it should retry with another port when
// the server cannot listen.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
