package sshdial_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// countingDial returns a Pool dial function for addr and config that counts
// its calls.
func countingDial(addr string, config *ssh.ClientConfig, calls *atomic.Int32) func(context.Context) (*ssh.Client, error) {
	return func(ctx context.Context) (*ssh.Client, error) {
		calls.Add(1)
		return sshdial.DialSSH(ctx, addr, config)
	}
}

// poolPeers are the SSH servers the Pool tests run against, as dial
// functions.
var poolPeers = []struct {
	name  string
	start func(t *testing.T) (addr string, config *ssh.ClientConfig)
}{
	{"sshtest", func(t *testing.T) (string, *ssh.ClientConfig) {
		srv := sshtest.NewServer()
		t.Cleanup(srv.Close)
		return srv.Addr(), srv.ClientConfig()
	}},
	{"openssh", func(t *testing.T) (string, *ssh.ClientConfig) {
		srv := opensshd.Start(t)
		return srv.Addr, srv.ClientConfig()
	}},
}

// newTestPool returns a Pool of size SSH connections to an sshtest server,
// the count of SSH connections it made, and an echo target.
func newTestPool(t *testing.T, size int) (*sshdial.Dialer, *sshtest.Server, *atomic.Int32, string) {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	calls := new(atomic.Int32)
	pool := sshdial.NewPool(size, countingDial(srv.Addr(), srv.ClientConfig(), calls))
	t.Cleanup(func() { pool.Close() })
	return pool, srv, calls, testutil.EchoServer(t, "tcp").Addr().String()
}

// TestPoolSpreadsConcurrentConns holds six connections open at once through
// a Pool of three: three SSH connections are made, two Conns on each.
func TestPoolSpreadsConcurrentConns(t *testing.T) {
	for _, peer := range poolPeers {
		t.Run(peer.name, func(t *testing.T) {
			addr, config := peer.start(t)
			var calls atomic.Int32
			pool := sshdial.NewPool(3, countingDial(addr, config, &calls))
			defer pool.Close()
			l := testutil.EchoServer(t, "tcp")

			perSSHConn := map[string]int{}
			var conns []net.Conn
			for range 6 {
				c, err := pool.Dial("tcp", l.Addr().String())
				require.NoError(t, err)
				conns = append(conns, c)
				require.NoError(t, testutil.RoundTrip(c, "hello"))
				// LocalAddr is the SSH connection's own address.
				perSSHConn[c.LocalAddr().String()]++
			}
			require.EqualValues(t, 3, calls.Load())
			require.Len(t, perSSHConn, 3)
			for a, n := range perSSHConn {
				require.Equal(t, 2, n, "Conns on the SSH connection from %s", a)
			}
			for _, c := range conns {
				require.NoError(t, c.Close())
			}
		})
	}
}

// TestPoolConcurrentDials dials from many goroutines at once: the Pool makes
// no more SSH connections than its size and every dial succeeds.
func TestPoolConcurrentDials(t *testing.T) {
	pool, _, calls, target := newTestPool(t, 2)

	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			c, err := pool.Dial("tcp", target)
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			assert.NoError(t, err)
			_, err = io.ReadFull(c, make([]byte, 1))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, calls.Load(), int32(2))
}

// TestPoolSequentialUseKeepsOneSSHConn dials and closes one at a time: one
// SSH connection serves them all.
func TestPoolSequentialUseKeepsOneSSHConn(t *testing.T) {
	pool, _, calls, target := newTestPool(t, 4)
	for range 5 {
		c, err := pool.Dial("tcp", target)
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c, "one"))
		require.NoError(t, c.Close())
	}
	require.EqualValues(t, 1, calls.Load())
}

// TestPoolReconnects checks that a lost SSH connection is made again by the
// next dial that needs it.
func TestPoolReconnects(t *testing.T) {
	pool, srv, calls, target := newTestPool(t, 1)

	c, err := pool.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "before"))
	srv.CloseClientConnections()
	_, err = io.ReadAll(c) // ends with the SSH connection
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost)
	c.Close()

	// The condition runs on a goroutine of its own: it leaves the round
	// trip's error to be checked here.
	var roundTripErr error
	require.Eventually(t, func() bool {
		c, err := pool.Dial("tcp", target)
		if err != nil {
			return false
		}
		defer c.Close()
		roundTripErr = testutil.RoundTrip(c, "after")
		return true
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, roundTripErr)
	require.EqualValues(t, 2, calls.Load())
}

// TestPoolDialRightAfterLoss dials at once after the SSH connection was
// closed under the Pool, before it may have noticed: the dial must not fail.
func TestPoolDialRightAfterLoss(t *testing.T) {
	srv := sshtest.NewServer()
	defer srv.Close()
	clients := make(chan *ssh.Client, 10)
	pool := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		c, err := sshdial.DialSSH(ctx, srv.Addr(), srv.ClientConfig())
		if err == nil {
			clients <- c
		}
		return c, err
	})
	defer pool.Close()
	target := testutil.EchoServer(t, "tcp").Addr().String()
	for range 5 {
		c, err := pool.Dial("tcp", target)
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c, "x"))
		c.Close()
		(<-clients).Close()
	}
}

// TestPoolConnectFailure checks that a failure to make an SSH connection is
// the dial's error, and that a Pool with a working SSH connection uses it
// instead.
func TestPoolConnectFailure(t *testing.T) {
	srv := sshtest.NewServer()
	defer srv.Close()
	refuse := errors.New("no more SSH connections today")
	var calls atomic.Int32
	pool := sshdial.NewPool(2, func(ctx context.Context) (*ssh.Client, error) {
		if calls.Add(1) > 1 {
			return nil, refuse
		}
		return sshdial.DialSSH(ctx, srv.Addr(), srv.ClientConfig())
	})
	defer pool.Close()
	l := testutil.EchoServer(t, "tcp")

	first, err := pool.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer first.Close()
	// The second SSH connection fails to connect: the first one carries it.
	second, err := pool.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer second.Close()
	require.NoError(t, testutil.RoundTrip(second, "fallback"))
	require.Equal(t, first.LocalAddr().String(), second.LocalAddr().String())

	failing := sshdial.NewPool(1, func(context.Context) (*ssh.Client, error) { return nil, refuse })
	defer failing.Close()
	_, err = failing.Dial("tcp", l.Addr().String())
	require.ErrorIs(t, err, refuse)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.Equal(t, "dial", opErr.Op)
}

// TestPoolDialContextBoundsConnect checks that ctx bounds the making of the
// SSH connection.
func TestPoolDialContextBoundsConnect(t *testing.T) {
	pool := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := pool.DialContext(ctx, "tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestPoolClose checks that Close ends the connections and that later dials
// fail with ErrPoolClosed.
func TestPoolClose(t *testing.T) {
	srv := sshtest.NewServer()
	defer srv.Close()
	var calls atomic.Int32
	pool := sshdial.NewPool(2, countingDial(srv.Addr(), srv.ClientConfig(), &calls))
	l := testutil.EchoServer(t, "tcp")
	c, err := pool.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()

	require.NoError(t, pool.Close())
	var readErr error
	testutil.Within(t, 5*time.Second, "Read after Pool.Close", func() { _, readErr = c.Read(make([]byte, 1)) })
	require.ErrorIs(t, readErr, sshdial.ErrDialerClosed, "Close's doc: blocked and later calls fail with ErrDialerClosed")
	_, err = pool.Dial("tcp", l.Addr().String())
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, pool.Close(), "a second Close")
}

func TestPoolBadInput(t *testing.T) {
	var calls atomic.Int32
	dial := func(context.Context) (*ssh.Client, error) {
		calls.Add(1)
		return nil, errors.New("should not be called")
	}
	var nilPool *sshdial.Dialer
	_, err := nilPool.Dial("tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, sshdial.ErrNilDialer)
	require.NoError(t, nilPool.Close())

	for _, tc := range []struct {
		p    *sshdial.Dialer
		want string
	}{
		{sshdial.NewPool(0, dial), "NewPool: size 0, want 1 or more"},
		{sshdial.NewPool(-1, dial), "NewPool: size -1, want 1 or more"},
		{sshdial.NewPool(1, nil), "NewPool: nil dial function"},
	} {
		_, err := tc.p.Dial("tcp", "127.0.0.1:1")
		require.ErrorContains(t, err, tc.want)
		require.NoError(t, tc.p.Close())
	}
	require.Zero(t, calls.Load(), "a pool made with bad arguments called its dial function")

	pool := sshdial.NewPool(1, dial)
	defer pool.Close()
	// DialContext's errors are *net.OpError values with Op "dial"; no
	// sentinel is documented for bad input, so the text is checked.
	requireDialError := func(t *testing.T, err error, want string) {
		t.Helper()
		var opErr *net.OpError
		require.ErrorAs(t, err, &opErr)
		require.Equal(t, "dial", opErr.Op)
		require.ErrorContains(t, err, want)
	}
	for _, tc := range []struct{ network, address, want string }{
		{"udp", "127.0.0.1:53", "unknown network udp"},
		{"tcp", "127.0.0.1", "missing port"},
		{"tcp", "127.0.0.1:70000", "port out of range"},
		{"tcp", ":80", "missing host"},
	} {
		_, err := pool.Dial(tc.network, tc.address)
		requireDialError(t, err, tc.want)
	}
	//lint:ignore SA1012 a nil context is bad input under test
	_, err = pool.DialContext(nil, "tcp", "127.0.0.1:1") //nolint:staticcheck
	requireDialError(t, err, "nil context")
	badOption := sshdial.NewPool(1, dial, sshdial.WithOriginator(netip.AddrPort{}))
	defer badOption.Close()
	_, err = badOption.Dial("tcp", "127.0.0.1:1")
	requireDialError(t, err, "WithOriginator: invalid address")
	require.Zero(t, calls.Load(), "bad input must fail before an SSH connection is made")
}
