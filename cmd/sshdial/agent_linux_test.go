package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// stuckSigner is an agent holding the key that logs in, which never
// answers a signature request (a confirmation nobody gives) until the test
// ends.
type stuckSigner struct {
	agent.Agent
	release chan struct{}
	signs   chan struct{} // gets a value per signature request, if room
}

func (a *stuckSigner) Sign(ssh.PublicKey, []byte) (*ssh.Signature, error) {
	select {
	case a.signs <- struct{}{}:
	default:
	}
	<-a.release
	return nil, errors.New("released")
}

// serveAgentSocket serves handle on a unix socket until the test ends.
func serveAgentSocket(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(testutil.ShortTempDir(t), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeListener(t, l, handle)
	return sock
}

// The command started with an agent that never answers, at the listing of
// its keys or at a signature, ends on ^C (SIGINT) within a few seconds,
// and on its own at ConnectTimeout (#17 item 4).
func TestStuckAgentCommand(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")

	// mute accepts the agent connection and never reads or answers.
	done := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(done) }) }
	muted := make(chan struct{}, 1) // an agent connection reached mute
	mute := serveAgentSocket(t, func(c net.Conn) {
		select {
		case muted <- struct{}{}:
		default:
		}
		<-done
	})

	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: f.srv.ClientPrivateKey}); err != nil {
		t.Fatal(err)
	}
	signer := &stuckSigner{Agent: keyring, release: done, signs: make(chan struct{}, 1)}
	signing := serveAgentSocket(t, func(c net.Conn) { agent.ServeAgent(signer, c) })
	t.Cleanup(release) // before the agents' cleanups, which wait for their handlers

	start := func(t *testing.T, sock string, extra ...string) (*testutil.SyncBuffer, *exec.Cmd, chan error) {
		args := append([]string{"-N", "-L", "0:" + echo.Addr().String(), "-o", "IdentityAgent=" + sock,
			"-o", "UserKnownHostsFile=" + f.knownHosts, "-o", "StrictHostKeyChecking=yes"}, extra...)
		args = append(args, "-p", f.port, f.srv.User+"@127.0.0.1")
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1")
		stderr := &testutil.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		waited := make(chan struct{})
		go func() { exited <- cmd.Wait(); close(waited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-waited
			if t.Failed() {
				t.Logf("sshdial stderr:\n%s", stderr)
			}
		})
		return stderr, cmd, exited
	}
	exitsWithin := func(t *testing.T, exited chan error, limit time.Duration, what string) {
		t.Helper()
		select {
		case err := <-exited:
			// ^C while connecting is exit code 0 (main.go); ConnectTimeout
			// a failure.
			t.Logf("%s: exit %v", what, err)
		case <-time.After(limit):
			t.Errorf("%s: still running after %v", what, limit)
		}
	}

	t.Run("mute-sigint", func(t *testing.T) {
		_, cmd, exited := start(t, mute, "-o", "ConnectTimeout=60")
		select { // in the listing of the agent's keys
		case <-muted:
		case <-time.After(30 * time.Second):
			t.Fatal("the command did not connect to the agent within 30s")
		}
		begin := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		exitsWithin(t, exited, 3500*time.Millisecond, "^C while the agent lists nothing")
		t.Logf("exited %v after SIGINT", time.Since(begin))
	})
	t.Run("sign-sigint", func(t *testing.T) {
		_, cmd, exited := start(t, signing, "-o", "ConnectTimeout=60")
		select {
		case <-signer.signs:
		case <-time.After(20 * time.Second):
			t.Fatal("the agent was never asked to sign")
		}
		begin := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		exitsWithin(t, exited, 3500*time.Millisecond, "^C while the agent does not sign")
		t.Logf("exited %v after SIGINT", time.Since(begin))
	})
	t.Run("sign-timeout", func(t *testing.T) {
		begin := time.Now()
		stderr, _, exited := start(t, signing, "-o", "ConnectTimeout=2")
		exitsWithin(t, exited, 15*time.Second, "ConnectTimeout=2 while the agent does not sign")
		if !strings.Contains(stderr.String(), "sshdial: connecting to SSH server") {
			t.Errorf("no error message after ConnectTimeout: %q", stderr)
		}
		t.Logf("exited %v after start: %s", time.Since(begin), stderr)
	})
}
