package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// TestInterruptWhileConnecting: SIGINT or SIGTERM before the connection is
// up is no clean shutdown: exit 255 and a message, so that
// `sshdial ... && next` does not go on. The server is a TCP listener that
// never speaks SSH; the signal comes once it has the connection, and a
// hanging Match exec command is interrupted the same way.
func TestInterruptWhileConnecting(t *testing.T) {
	run := func(t *testing.T, sig syscall.Signal, args []string, ready func()) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "HOME="+t.TempDir(), "SSH_AUTH_SOCK=")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stderr := &testutil.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		ready()
		cmd.Process.Signal(sig)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitConnection {
				t.Fatalf("exit: %v, want status %d\n%s", err, exitConnection, stderr)
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("stderr does not say it was interrupted:\n%s", stderr)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("sshdial did not exit 20 s after %v\n%s", sig, stderr)
		}
	}

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("banner "+sig.String(), func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := l.Accept(); err == nil {
					accepted <- c
				}
			}()
			host, port, _ := net.SplitHostPort(l.Addr().String())
			run(t, sig, []string{"-F", "none", "-D", "127.0.0.1:0", "-o", "ConnectTimeout=60", "-p", port, "u@" + host}, func() {
				select {
				case c := <-accepted:
					t.Cleanup(func() { c.Close() }) // open, and silent, until the command has exited
				case <-time.After(20 * time.Second):
					t.Fatal("sshdial never connected")
				}
			})
		})
	}

	t.Run("match exec", func(t *testing.T) {
		dir := t.TempDir()
		started := filepath.Join(dir, "started")
		cfg := filepath.Join(dir, "config")
		if err := os.WriteFile(cfg, []byte("Match exec \"touch "+started+"; sleep 60\"\n  Port 2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, syscall.SIGINT, []string{"-F", cfg, "-D", "127.0.0.1:0", "u@127.0.0.1"}, func() {
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(started); err == nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("the Match exec command never started")
				}
			}
		})
	})
}
