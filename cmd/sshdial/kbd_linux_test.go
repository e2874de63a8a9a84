package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// waitCount waits until text shows count times.
func waitCount(t *testing.T, out *testutil.SyncBuffer, text string, count int, timeout time.Duration) {
	t.Helper()
	if !eventually(timeout, 20*time.Millisecond, func() bool { return strings.Count(out.String(), text) >= count }) {
		t.Fatalf("%q not shown %d times after %v", text, count, timeout)
	}
}

// The command with a server that asks for a one-time code: asked on the
// terminal without echo, again after a wrong one, and the forward works.
// After the connection is lost, the reconnect asks nothing: it fails, the
// log says a code is needed, and each later dial tries again.
func TestKeyboardInteractiveOnTerminal(t *testing.T) {
	var answered atomic.Int32 // rounds of answers received
	srv := sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no keys")
	}
	srv.Config.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		ans, err := client("", "Duo two-factor login", []string{"Passcode: "}, []bool{false})
		if err != nil {
			return nil, err
		}
		answered.Add(1)
		if len(ans) == 1 && ans[0] == "135790" {
			return nil, nil
		}
		return nil, errors.New("wrong code")
	}
	srv.Start()
	t.Cleanup(srv.Close)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	kh := filepath.Join(home, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr())
	echo := testutil.EchoServer(t, "tcp")

	term := onTerminal(t, nil, execLine(os.Args[0], "-N", "-v", "-L", "0:"+echo.Addr().String(), "-F", "none",
		"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
		"-p", port, "kbduser@"+host))
	out, typing := term.out, term.in
	waitCount(t, out, "Passcode: ", 1, 30*time.Second)
	if !strings.Contains(out.String(), "Duo two-factor login") {
		t.Fatal("the server's instruction was not shown")
	}
	io.WriteString(typing, "999999\r")
	waitCount(t, out, "Passcode: ", 2, 30*time.Second)
	io.WriteString(typing, "135790\r")
	addr := waitFor(t, out, "listen=", 30*time.Second)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.RoundTrip(conn, "after a one-time code"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if s := out.String(); strings.Contains(s, "999999") || strings.Contains(s, "135790") {
		t.Fatal("a code was echoed or logged")
	}
	if !strings.Contains(out.String(), "auth=keyboard-interactive") {
		t.Fatal("the log does not say keyboard-interactive logged in")
	}

	// The connection is lost; a new tunnel needs a reconnect, which would
	// need a code.
	before := answered.Load()
	srv.CloseClientConnections()
	const needed = "asks for keyboard-interactive answers (a one-time code?)"
	for i := 1; i <= 2; i++ {
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(out.String(), needed) < i {
			if time.Now().After(deadline) {
				t.Fatalf("no log line %d saying a code is needed", i)
			}
			// Each dial through the forward makes a reconnect happen (after
			// the backoff); it fails, and the forward closes the tunnel.
			if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
			time.Sleep(100 * time.Millisecond) // the pace of the dials that set off the reconnects
		}
	}
	if n := strings.Count(out.String(), "Passcode: "); n != 2 {
		t.Fatalf("asked %d times, want only the 2 of the first connection", n)
	}
	if answered.Load() != before {
		t.Fatalf("the reconnect sent answers: %d rounds answered, %d before", answered.Load(), before)
	}
}
