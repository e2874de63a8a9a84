package sshdial_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

// chain is a set of OpenSSH servers that the key of HOME's id_ed25519 logs
// in to, with a config naming them j1, j2 and dest: dest through j1,j2
// (ProxyJump), and direct aliases d1, d2, ddest.
type chain struct {
	home         *home
	j1, j2, dest *opensshd.Server
}

func newChain(t *testing.T) *chain {
	c := &chain{j1: opensshd.Start(t), j2: opensshd.Start(t), dest: opensshd.Start(t)}
	for _, s := range []*opensshd.Server{c.j1, c.j2, c.dest} {
		t.Cleanup(func() { s.Signal(syscall.SIGCONT, true) })
	}
	c.home = newHome(t)
	c.home.writeKey(t, c.j1, "id_ed25519", "")
	for _, s := range []*opensshd.Server{c.j2, c.dest} {
		f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		f.Write(ssh.MarshalAuthorizedKey(c.j1.ClientKey.PublicKey()))
		f.Close()
	}
	c.home.write(t, "known_hosts", keyscan(t, c.j1.Addr, "ed25519")+keyscan(t, c.j2.Addr, "ed25519")+keyscan(t, c.dest.Addr, "ed25519"))
	var b strings.Builder
	for _, h := range []struct {
		name string
		s    *opensshd.Server
	}{{"j1", c.j1}, {"j2", c.j2}, {"dest", c.dest}} {
		fmt.Fprintf(&b, "Host %s\n  HostName 127.0.0.1\n  Port %s\n  User %s\n", h.name, portOf(h.s.Addr), h.s.User)
		if h.name == "dest" {
			b.WriteString("  ProxyJump j1,j2\n")
		}
	}
	fmt.Fprintf(&b, "Host ddest\n  HostName 127.0.0.1\n  Port %s\n  User %s\n", portOf(c.dest.Addr), c.dest.User)
	c.home.write(t, "config", b.String())
	return c
}

// fdCount is the number of open file descriptors of this process.
func fdCount(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// fdTargets lists this process's file descriptors and what they are, for
// the message of a leak; a pidfd also names its process (from fdinfo) and
// that process's command line, or "gone".
func fdTargets() string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fmt.Fprintf(&b, "%s->%s ", e.Name(), target)
		if !strings.Contains(target, "pidfd") {
			continue
		}
		info, _ := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		for _, line := range strings.Split(string(info), "\n") {
			if pid, ok := strings.CutPrefix(line, "Pid:"); ok {
				pid = strings.TrimSpace(pid)
				cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
				what := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
				if err != nil {
					what = "gone"
				}
				fmt.Fprintf(&b, "(pid %s: %q) ", pid, what)
			}
		}
	}
	return b.String()
}

// children are the processes whose parent is this process.
func children() []int {
	var out []int
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == self {
			pid, _ := strconv.Atoi(e.Name())
			out = append(out, pid)
		}
	}
	return out
}

// noLeak checks, within a generous bound, that the goroutines, file
// descriptors and child processes are back to what they were: no more
// children than the sshd servers, as many fds as before.
func noLeak(t *testing.T, what string, ignore goleak.Option, fds int, kids int) {
	t.Helper()
	// io.Copy between TCP connections (the echo target's) splices
	// through pipes that Go keeps in a pool, closed by a finalizer once
	// the pool lets go of them: collections free them, not leaks.
	if !assert.Eventually(t, func() bool { runtime.GC(); return fdCount(t) <= fds }, 10*time.Second, 20*time.Millisecond,
		"%s: file descriptors: %d, were %d", what, fdCount(t), fds) {
		t.Fatalf("%s: open now: %s", what, fdTargets())
	}
	require.Eventually(t, func() bool { return len(children()) <= kids }, 10*time.Second, 20*time.Millisecond,
		"%s: child processes: %v", what, children())
	require.NoError(t, goleak.Find(ignore), what)
}

// sessionsGone waits for srv to serve no SSH connection: the client's
// connection to it was closed.
func sessionsGone(t *testing.T, what string, srv *opensshd.Server) {
	t.Helper()
	require.Eventually(t, func() bool { return len(srv.Sessions()) == 0 }, 10*time.Second, 20*time.Millisecond,
		"%s: the server still serves %d processes", what, len(srv.Sessions()))
}

// TestBreakDialClientJumpChain: through two jump hosts (ProxyJump j1,j2),
// the client runs commands and forwards ports, after its context and its
// ConnectTimeout have ended; Close closes the jump
// hosts' connections (their sshd serves nobody after), and nothing is
// left: no goroutine, no fd.
func TestBreakDialClientJumpChain(t *testing.T) {
	c := newChain(t)
	target := serve(t, "tcp", echo).Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	warm, err := sshdial.DialClient(ctx, "ddest")
	require.NoError(t, err)
	warm.Close()
	sessionsGone(t, "warm-up", c.dest)
	ignore, fds, kids := goleak.IgnoreCurrent(), fdCount(t), len(children())

	// The context ends right after, and so does the ConnectTimeout: the
	// client is not bound by either.
	dctx, dcancel := context.WithCancel(ctx)
	client, err := sshdial.DialClient(dctx, "dest", sshdial.WithConnectTimeout(2*time.Second))
	dcancel()
	require.NoError(t, err)
	require.NotEmpty(t, c.j1.Sessions())
	require.NotEmpty(t, c.j2.Sessions())
	time.Sleep(2500 * time.Millisecond)
	s, err := client.NewSession()
	require.NoError(t, err)
	out, err := s.Output("echo two-jumps")
	require.NoError(t, err)
	require.Equal(t, "two-jumps\n", string(out))
	conn, err := client.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "through"))
	conn.Close()
	// A Dialer over the client works too, and its Close leaves the client.
	d := sshdial.New(client)
	dc, err := d.DialContext(ctx, "tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(dc, "dialer"))
	require.NoError(t, d.Close())
	s, err = client.NewSession()
	require.NoError(t, err, "the Dialer's Close must not close the caller's client")
	s.Close()

	require.NoError(t, client.Close())
	sessionsGone(t, "after Close, j1", c.j1)
	sessionsGone(t, "after Close, j2", c.j2)
	sessionsGone(t, "after Close, dest", c.dest)
	noLeak(t, "after Close", ignore, fds, kids)
}

// TestBreakDialClientFailuresLeakNothing: a DialClient that fails at the
// destination after its jump hosts are up (auth refused, a stalled server,
// a context that ends) closes their connections and leaves no goroutine,
// fd or child process.
func TestBreakDialClientFailuresLeakNothing(t *testing.T) {
	c := newChain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	warm, err := sshdial.DialClient(ctx, "dest")
	require.NoError(t, err)
	warm.Close()
	for _, s := range []*opensshd.Server{c.j1, c.j2, c.dest} {
		sessionsGone(t, "warm-up", s)
	}
	ignore, fds, kids := goleak.IgnoreCurrent(), fdCount(t), len(children())

	// Auth refused at the destination: no key it takes.
	_, err = sshdial.DialClient(ctx, "dest", sshdial.WithConfigLines("IdentitiesOnly yes", "IdentityFile "+filepath.Join(c.home.dir, "nokey")))
	require.ErrorIs(t, err, sshdial.ErrAuthFailed)
	require.ErrorContains(t, err, "hop 3 of 3")
	sessionsGone(t, "auth refused, j1", c.j1)
	sessionsGone(t, "auth refused, j2", c.j2)
	noLeak(t, "auth refused", ignore, fds, kids)
	// The same through Connect.
	_, err = sshdial.Connect(ctx, "dest", sshdial.WithConfigLines("IdentitiesOnly yes", "IdentityFile "+filepath.Join(c.home.dir, "nokey")))
	require.ErrorIs(t, err, sshdial.ErrAuthFailed)
	sessionsGone(t, "Connect: auth refused, j1", c.j1)
	sessionsGone(t, "Connect: auth refused, j2", c.j2)
	noLeak(t, "Connect: auth refused", ignore, fds, kids)

	// The destination's sshd is stopped: the TCP connection is taken by
	// the kernel, no banner comes; ctx ends it.
	c.dest.Signal(syscall.SIGSTOP, true)
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	_, err = sshdial.DialClient(short, "dest")
	cancelShort()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 15*time.Second)
	c.dest.Signal(syscall.SIGCONT, true)
	sessionsGone(t, "stalled, j1", c.j1)
	sessionsGone(t, "stalled, j2", c.j2)
	noLeak(t, "stalled destination", ignore, fds, kids)

	// A stalled jump host: the first hop never answers.
	c.j2.Signal(syscall.SIGSTOP, true)
	short, cancelShort = context.WithTimeout(ctx, time.Second)
	_, err = sshdial.DialClient(short, "dest")
	cancelShort()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	c.j2.Signal(syscall.SIGCONT, true)
	sessionsGone(t, "stalled j2, j1", c.j1)
	noLeak(t, "stalled jump host", ignore, fds, kids)

	// ctx cancelled mid-login: the passphrase of the destination's key is
	// asked once the server would take the key, after the jump hosts and
	// the key exchange.
	block, err := ssh.MarshalPrivateKeyWithPassphrase(c.j1.ClientPrivateKey, "", []byte("pw"))
	require.NoError(t, err)
	enc := filepath.Join(c.home.dir, "enc")
	require.NoError(t, os.WriteFile(enc, pem.EncodeToMemory(block), 0o600))
	mid, cancelMid := context.WithCancel(ctx)
	asked := 0
	_, err = sshdial.DialClient(mid, "dest", sshdial.WithConfigLines("IdentitiesOnly yes", "IdentityFile "+enc),
		sshdial.WithPassphrase(func(context.Context, string) ([]byte, error) {
			asked++
			cancelMid()
			time.Sleep(100 * time.Millisecond)
			return []byte("pw"), nil
		}))
	cancelMid()
	require.Equal(t, 1, asked, "the passphrase was asked mid-login")
	require.ErrorIs(t, err, context.Canceled)
	sessionsGone(t, "cancelled, j1", c.j1)
	sessionsGone(t, "cancelled, dest", c.dest)
	noLeak(t, "cancelled mid-login", ignore, fds, kids)

	// ctx already cancelled: nothing starts.
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	_, err = sshdial.DialClient(done, "dest")
	require.ErrorIs(t, err, context.Canceled)
	noLeak(t, "cancelled before", ignore, fds, kids)
}

// TestBreakDialClientServerDies: a destination, or a jump host, whose
// sshd dies right after login ends the client: Wait returns, a session
// fails instead of hanging, and the jump hosts' connections close without
// the caller's Close.
func TestBreakDialClientServerDies(t *testing.T) {
	c := newChain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ignore := goleak.IgnoreCurrent()
	for _, victim := range []*opensshd.Server{c.dest, c.j2, c.j1} {
		client, err := sshdial.DialClient(ctx, "dest")
		require.NoError(t, err)
		victim.Signal(syscall.SIGKILL, false)
		waited := make(chan error, 1)
		go func() { waited <- client.Wait() }()
		select {
		case <-waited:
		case <-time.After(15 * time.Second):
			t.Fatal("the client outlived its server")
		}
		_, err = client.NewSession()
		require.Error(t, err)
		for _, s := range []*opensshd.Server{c.j1, c.j2, c.dest} {
			sessionsGone(t, "a server died", s)
		}
		client.Close()
	}
	require.NoError(t, goleak.Find(ignore))
}

// TestBreakDialClientProxyCommand: through a ProxyCommand the client
// works; a failed DialClient through one leaves no child process, fd or
// goroutine, and neither does Close.
func TestBreakDialClientProxyCommand(t *testing.T) {
	c := newChain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	self, err := os.Executable()
	require.NoError(t, err)
	relay := self + " " + testutil.RelayCommand + " %h %p"
	warm, err := sshdial.DialClient(ctx, "ddest", sshdial.WithProxyCommand(relay))
	require.NoError(t, err)
	warm.Close()
	sessionsGone(t, "warm-up", c.dest)
	require.Eventually(t, func() bool { return len(children()) <= 3 }, 10*time.Second, 20*time.Millisecond,
		"the three sshd and no ProxyCommand: %v", children())
	ignore, fds, kids := goleak.IgnoreCurrent(), fdCount(t), len(children())

	client, err := sshdial.DialClient(ctx, "ddest", sshdial.WithProxyCommand(relay))
	require.NoError(t, err)
	require.Equal(t, kids+1, len(children()), "one ProxyCommand runs")
	s, err := client.NewSession()
	require.NoError(t, err)
	out, err := s.Output("echo via-command")
	require.NoError(t, err)
	require.Equal(t, "via-command\n", string(out))
	require.NoError(t, client.Close())
	noLeak(t, "after Close", ignore, fds, kids)

	// Auth refused through the command.
	_, err = sshdial.DialClient(ctx, "ddest", sshdial.WithProxyCommand(relay),
		sshdial.WithConfigLines("IdentitiesOnly yes", "IdentityFile "+filepath.Join(c.home.dir, "nokey")))
	require.ErrorIs(t, err, sshdial.ErrAuthFailed)
	noLeak(t, "auth refused", ignore, fds, kids)

	// A command that never speaks, and ignores SIGHUP: killed.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	_, err = sshdial.DialClient(short, "ddest", sshdial.WithProxyCommand("sh -c \"trap '' HUP; exec sleep 600\""))
	cancelShort()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	noLeak(t, "silent command", ignore, fds, kids)

	// The first jump host through a ProxyCommand (the config's), then
	// the destination's sshd killed: the command goes too.
	c.home.write(t, "config", fmt.Sprintf("Host j1\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyCommand %s\n"+
		"Host dest\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyJump j1\n",
		portOf(c.j1.Addr), c.j1.User, relay, portOf(c.dest.Addr), c.dest.User))
	client, err = sshdial.DialClient(ctx, "dest")
	require.NoError(t, err)
	c.dest.Signal(syscall.SIGKILL, false)
	client.Wait()
	sessionsGone(t, "dest died, j1", c.j1)
	noLeak(t, "dest died", ignore, fds, kids)
	client.Close()
}

// TestBreakDialClientJumpRefusesForwarding: a jump host that refuses
// the channel to the next hop (AllowTcpForwarding no) fails DialClient
// with the server's refusal, naming the hop, and its connection is
// closed.
func TestBreakDialClientJumpRefusesForwarding(t *testing.T) {
	jump := opensshd.StartWith(t, opensshd.Options{Config: []string{"AllowTcpForwarding no"}})
	dest := opensshd.Start(t)
	h := newHome(t)
	h.writeKey(t, jump, "id_ed25519", "")
	h.write(t, "known_hosts", keyscan(t, jump.Addr, "ed25519")+keyscan(t, dest.Addr, "ed25519"))
	h.write(t, "config", fmt.Sprintf("Host jump\n  HostName 127.0.0.1\n  Port %s\n  User %s\nHost inner\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyJump jump\n",
		portOf(jump.Addr), jump.User, portOf(dest.Addr), dest.User))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	warm, err := sshdial.DialClient(ctx, "jump")
	require.NoError(t, err)
	warm.Close()
	sessionsGone(t, "warm-up", jump)
	ignore, fds, kids := goleak.IgnoreCurrent(), fdCount(t), len(children())

	_, err = sshdial.DialClient(ctx, "inner")
	require.ErrorIs(t, err, sshdial.ErrProhibited)
	require.ErrorContains(t, err, "hop 2 of 2")
	sessionsGone(t, "refused", jump)
	noLeak(t, "refused", ignore, fds, kids)
}

// TestBreakDialClientCancelAnywhere: a context ended at any moment of a
// login through two jump hosts fails DialClient with the context's error
// (or gives a working client when the login won), and leaves nothing
// behind.
func TestBreakDialClientCancelAnywhere(t *testing.T) {
	c := newChain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	warm, err := sshdial.DialClient(ctx, "dest")
	require.NoError(t, err)
	full := time.Since(start)
	warm.Close()
	for _, s := range []*opensshd.Server{c.j1, c.j2, c.dest} {
		sessionsGone(t, "warm-up", s)
	}
	ignore, fds, kids := goleak.IgnoreCurrent(), fdCount(t), len(children())
	const runs = 16
	for i := range runs {
		delay := full * time.Duration(i) / runs
		short, cancelShort := context.WithCancel(ctx)
		time.AfterFunc(delay, cancelShort)
		client, err := sshdial.DialClient(short, "dest")
		cancelShort()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "cancelled after %v", delay)
			continue
		}
		s, err := client.NewSession()
		require.NoError(t, err, "a client returned after %v", delay)
		s.Close()
		client.Close()
	}
	for _, s := range []*opensshd.Server{c.j1, c.j2, c.dest} {
		sessionsGone(t, "after the runs", s)
	}
	noLeak(t, "after the runs", ignore, fds, kids)
}
