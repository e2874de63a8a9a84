package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/opensshd"
)

// runCLI starts the command in-process like startCLI, for a test that
// expects it to end by itself: the caller checks the exit code (stop
// returns it), and the command is stopped when the test ends.
func runCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	return launchCLI(t, false, args...)
}

// exited waits for the command to end by itself and returns its exit code.
func (c *cli) exited(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case code := <-c.done:
		c.done <- code
		return code
	case <-time.After(within):
		t.Fatalf("sshdial did not exit within %v:\n%s", within, c.stderr)
		return -1
	}
}

// state returns the status state of the n-th forward of kind.
func (c *cli) state(kind string, n int) string {
	for _, f := range c.s.forwards {
		if f.kind == kind {
			if n == 0 {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.state
			}
			n--
		}
	}
	return ""
}

// refuseAfterRestart starts sshdial with a -R on a fixed port of
// 127.0.0.1 and a -L, checks -R, and then makes the server refuse that
// forward after a reconnect: sshd is killed, the port taken, sshd started
// again. It returns the command, the -R's port and the squatter that holds
// it.
func refuseAfterRestart(t *testing.T, extra ...string) (c *cli, port string, squatter net.Listener, srv *opensshd.Server) {
	// The library asks a refused forward again for this long before it
	// gives up (three minutes by default).
	old := backoff.SetRefusedPatience(3 * time.Second)
	t.Cleanup(func() { backoff.SetRefusedPatience(old) })
	f := newFixture(t)
	o := origin(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ = net.SplitHostPort(free.Addr().String())
	free.Close()
	args := append(extra, "-R", "127.0.0.1:"+port+":"+o.Listener.Addr().String(), "-L", "0:"+o.Listener.Addr().String())
	c = runCLI(t, f.args(args...)...)
	if got, err := httpGet("http://127.0.0.1:" + port + "/before"); err != nil || got != "origin:/before" {
		t.Fatalf("-R before the restart: %q %v", got, err)
	}
	if p, _ := strconv.Atoi(port); !sshdListensOn(t, f.srv, p) {
		t.Fatalf("sshdListensOn does not see sshd's -R listener on %s", port)
	}

	f.srv.Signal(syscall.SIGKILL, true) // sshd and its sessions
	deadline := time.Now().Add(10 * time.Second)
	for {
		squatter, err = net.Listen("tcp", "127.0.0.1:"+port) // free once sshd's session is gone
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the -R port %s not free 10s after sshd was killed: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { squatter.Close() })
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	return c, port, squatter, f.srv
}

// A -R forward the server refuses after a reconnect is lost for good (the
// library gave up): with ExitOnForwardFailure (the default) the command
// ends with exit 3 and says why, as when a forward fails at start.
func TestRemoteForwardRefusedAfterReconnectExits(t *testing.T) {
	c, port, _, _ := refuseAfterRestart(t)
	if code := c.exited(t, 60*time.Second); code != exitForward {
		t.Fatalf("exit %d, want %d:\n%s", code, exitForward, c.stderr)
	}
	for _, w := range []string{"-R 127.0.0.1:" + port + ":", "refused", "ExitOnForwardFailure=no"} {
		if !strings.Contains(c.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, c.stderr)
		}
	}
}

// With ExitOnForwardFailure=no, it is shown as failed and not requested
// again on top of the library's tries: once the port is free again, the
// server still does not listen on it; the other forwards go on.
func TestRemoteForwardRefusedAfterReconnectNotRetried(t *testing.T) {
	c, port, squatter, srv := refuseAfterRestart(t, "-o", "ExitOnForwardFailure=no")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.HasPrefix(c.state("-R", 0), "failed: ") {
		if time.Now().After(deadline) {
			t.Fatalf("-R state %q 60s after the restart, want failed", c.state("-R", 0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := c.state("-R", 0); !strings.Contains(st, "refused") {
		t.Errorf("-R state %q does not say the server refused it", st)
	}
	squatter.Close()
	// A retry would come within a few seconds (backoff from 1 s): watch
	// the port for 4 s. Another process of the test run may take the
	// freed port too: only a listener that sshd holds counts.
	p, _ := strconv.Atoi(port)
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		if sshdListensOn(t, srv, p) {
			t.Fatalf("the server listens on the -R port %s again: the command requested the forward on top of the library", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := httpGet("http://" + c.addr("-L", 0) + "/after"); err != nil || got != "origin:/after" {
		t.Fatalf("-L beside the failed -R: %q %v", got, err)
	}
	if st := c.state("-R", 0); !strings.HasPrefix(st, "failed: ") {
		t.Errorf("-R state %q, want failed", st)
	}
	if code := c.stop(t); code != exitOK {
		t.Errorf("exit %d after SIGINT, want %d", code, exitOK)
	}
}

// A Dialer closed while the session runs (nothing in the command does
// that but its shutdown) ends the -R forward for good: the command does
// not request it again, and with ExitOnForwardFailure it exits 3.
func TestRemoteForwardDialerClosed(t *testing.T) {
	f := newFixture(t)
	o := origin(t)
	c := runCLI(t, f.args("-R", "0:"+o.Listener.Addr().String())...)
	c.s.d.Close()
	if code := c.exited(t, 30*time.Second); code != exitForward {
		t.Fatalf("exit %d, want %d:\n%s", code, exitForward, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "Dialer is closed") {
		t.Errorf("stderr does not say the Dialer is closed:\n%s", c.stderr)
	}
}

// With ExitOnForwardFailure=no, a forward retried since the start stops
// being retried once the Dialer is closed, and shows as failed.
func TestForwardRetryStopsWhenDialerClosed(t *testing.T) {
	f := newFixture(t, "AllowTcpForwarding local")
	c := runCLI(t, f.args("-o", "ExitOnForwardFailure=no", "-R", "0:127.0.0.1:1")...)
	if st := c.state("-R", 0); !strings.HasPrefix(st, "retrying: ") {
		t.Fatalf("-R state %q, want retrying", st)
	}
	c.s.d.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(c.state("-R", 0), "failed: ") {
		if time.Now().After(deadline) {
			t.Fatalf("-R state %q 30s after the Dialer's Close, want failed", c.state("-R", 0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := c.state("-R", 0); !strings.Contains(st, "Dialer is closed") {
		t.Errorf("-R state %q does not say the Dialer is closed", st)
	}
	if code := c.stop(t); code != exitOK {
		t.Errorf("exit %d after SIGINT, want %d", code, exitOK)
	}
}

// sshdListensOn reports whether one of srv's processes holds a socket
// listening on port on the loopback (127.0.0.1 or ::1).
func sshdListensOn(t *testing.T, srv *opensshd.Server, port int) bool {
	return sshdListenAddr(t, srv, port) != ""
}

// sshdListenAddr returns the loopback address ("127.0.0.1:port" first, else
// "[::1]:port") on which one of srv's processes holds a listening socket,
// "" for none. sshd asked to listen on "localhost" may hold only one of
// them (the other family's port may be taken), and "localhost" may then
// reach another listener.
func sshdListenAddr(t *testing.T, srv *opensshd.Server, port int) string {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range append(srv.Sessions(), srv.Cmd.Process.Pid) {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, _ := os.ReadDir(dir) // a session may end meanwhile
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	for _, fam := range []struct{ file, local, addr string }{
		{"/proc/net/tcp", "0100007F", "127.0.0.1"},
		{"/proc/net/tcp6", "00000000000000000000000001000000", "::1"},
	} {
		b, err := os.ReadFile(fam.file)
		if err != nil {
			continue // no IPv6
		}
		want := fmt.Sprintf("%s:%04X", fam.local, port)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[1] == want && f[3] == "0A" && inodes[f[9]] { // 0A: TCP_LISTEN
				return net.JoinHostPort(fam.addr, strconv.Itoa(port))
			}
		}
	}
	return ""
}
