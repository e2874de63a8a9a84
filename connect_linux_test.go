package sshdial_test

// Connect against sshd processes that are killed, stopped and restarted:
// signals, so Linux only.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestConnectSurvivesServerRestart: kill -9 of sshd (the listener and
// every session) fails the Conns in flight promptly; once sshd is back,
// the next dial reconnects, and 200 parallel dials during the reconnect
// make one SSH handshake.
func TestConnectSurvivesServerRestart(t *testing.T) {
	srv := opensshd.Start(t)
	h := homeFor(t, srv)
	front, accepted := countingProxy(t, srv.Addr)
	h.write(t, "config", fmt.Sprintf("Host front\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  HostKeyAlias 127.0.0.1\n  CheckHostIP no\n", portOf(front), srv.User))
	// known_hosts names the server by its real port: HostKeyAlias makes
	// the check use that name.
	h.write(t, "known_hosts", strings.Replace(keyscan(t, srv.Addr, "ed25519"), "[127.0.0.1]:"+portOf(srv.Addr), "127.0.0.1", 1))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "front")
	require.NoError(t, err)
	defer d.Close()
	target := serve(t, "tcp", echo).Addr().String()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))
	require.EqualValues(t, 1, accepted.Load())

	res := backgroundRead(c)
	waitBlockedIn(t, "sshdial.(*Conn).Read")
	srv.Signal(syscall.SIGKILL, true)
	err = await(t, 10*time.Second, "Read after kill -9 of sshd", res)
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost)
	c.Close()

	require.NoError(t, srv.Restart())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, accepted.Load(), "200 dials during the reconnect share one SSH connection")
	require.EqualValues(t, 1, d.Stats().Reconnects)
}

// TestConnectDetectsStalledLink: with ServerAliveInterval 1 and
// ServerAliveCountMax 2, a stalled sshd fails the Conns in flight within
// interval × (count+1), and a Dial without a context does not hang.
func TestConnectDetectsStalledLink(t *testing.T) {
	srv := opensshd.Start(t)
	t.Cleanup(func() { srv.Signal(syscall.SIGCONT, true) })
	h := homeFor(t, srv)
	h.write(t, "config", "Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	d := connectTo(t, srv)
	target := serve(t, "tcp", echo).Addr().String()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))
	read := backgroundRead(c)
	waitBlockedIn(t, "sshdial.(*Conn).Read")

	srv.Signal(syscall.SIGSTOP, true)
	stalled := time.Now()
	dial := make(chan error, 1)
	go func() {
		_, err := d.Dial("tcp", target)
		dial <- err
	}()
	err = await(t, 20*time.Second, "Read on a stalled link", read)
	took := time.Since(stalled)
	require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
	// interval × (count+1) = 3 s, with room for a loaded machine.
	require.Less(t, took, 3*time.Second+2*time.Second)
	require.ErrorIs(t, await(t, 20*time.Second, "Dial on a stalled link", dial), sshdial.ErrServerNotResponding)
}

// TestCloseDuringReconnect: Close while a reconnect to a stalled server is
// under way returns promptly, fails the waiting dial, and leaves no
// goroutine behind.
func TestCloseDuringReconnect(t *testing.T) {
	srv := opensshd.Start(t)
	t.Cleanup(func() { srv.Signal(syscall.SIGCONT, true) })
	homeFor(t, srv)
	target := serve(t, "tcp", echo).Addr().String()
	ignore := goleak.IgnoreCurrent()
	d := connectTo(t, srv)

	srv.Signal(syscall.SIGKILL, false) // the SSH connection is lost
	require.Eventually(t, func() bool { return d.Stats().SSHConnections == 0 }, 10*time.Second, 10*time.Millisecond)
	srv.Signal(syscall.SIGSTOP, true) // and the server hangs in the next handshake
	dial := make(chan error, 1)
	go func() {
		_, err := d.Dial("tcp", target)
		dial <- err
	}()
	waitBlockedIn(t, "sshdial.(*Dialer).DialContext") // waiting for the reconnect
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	require.NoError(t, await(t, 5*time.Second, "Close during a reconnect", closed))
	require.ErrorIs(t, await(t, 5*time.Second, "the waiting Dial", dial), net.ErrClosed)
	goleak.VerifyNone(t, ignore)
}
