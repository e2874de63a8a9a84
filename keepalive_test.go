package sshdial_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestKeepaliveFailsConnsOfStalledServer checks that a stalled server is
// noticed: blocked calls fail with ErrServerNotResponding, new dials fail at
// once, and all is well again once the server answers.
func TestKeepaliveFailsConnsOfStalledServer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	d := sshdial.New(client, sshdial.WithKeepalive(50*time.Millisecond, 200*time.Millisecond))
	conn, err := d.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, testutil.RoundTrip(conn, "ping"))

	readErr := backgroundRead(conn)
	srv.Stall()
	var err2 error
	testutil.Within(t, 3*time.Second, "Read on a stalled server", func() { err2 = <-readErr })
	require.ErrorIs(t, err2, sshdial.ErrServerNotResponding)
	require.ErrorIs(t, err2, syscall.ETIMEDOUT)
	var opErr *net.OpError
	require.ErrorAs(t, err2, &opErr)
	require.Equal(t, "read", opErr.Op)

	_, err = conn.Write([]byte("x"))
	require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
	start := time.Now()
	_, err = d.Dial("tcp", l.Addr().String())
	require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
	require.Less(t, time.Since(start), time.Second, "dials fail at once while the server is silent")

	srv.Resume()
	require.Eventually(t, func() bool {
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		if err != nil {
			return false
		}
		_, err = io.ReadFull(c, make([]byte, 4))
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
}

// TestKeepaliveWithOpenSSH checks that OpenSSH's failure reply counts as an
// answer: connections stay up.
func TestKeepaliveWithOpenSSH(t *testing.T) {
	_, client := newOpenSSH(t)
	l := testutil.EchoServer(t, "tcp")
	d := sshdial.New(client, sshdial.WithKeepalive(20*time.Millisecond, time.Second))
	conn, err := d.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	// On purpose: 15 keepalive intervals pass against a real sshd; that
	// the connection survives them is what is under test.
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	_, err = conn.Write([]byte("x"))
	require.False(t, errors.Is(err, sshdial.ErrServerNotResponding))
}

// TestKeepaliveOff checks that an interval of zero or less turns the
// keepalive off: the server gets no keepalive@openssh.com request, where a
// Dialer with keepalive on sends several in the same time.
func TestKeepaliveOff(t *testing.T) {
	const interval = 20 * time.Millisecond
	const keepalive = "keepalive@openssh.com"
	// dialAndWait dials through a new server in a synctest bubble b with
	// opts, and returns the keepalives the server got once the Conn has
	// worked for 15 intervals of the bubble's time: the wait is what is
	// under test (nothing is sent), and fake time makes it exact and
	// instant. They are counted before the Conn closes, since the end of
	// a channel may send one probe of the link (link.go), the same
	// request, which is no keepalive.
	dialAndWait := func(t *testing.T, b *bubble, opts ...sshdial.Option) int {
		conn, err := sshdial.New(b.client(t), opts...).Dial("tcp", b.serve(echo))
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, testutil.RoundTrip(conn, "ping"))
		time.Sleep(15 * interval)
		require.NoError(t, testutil.RoundTrip(conn, "ping"))
		synctest.Wait() // every request sent has been counted
		return b.srv.GlobalRequests(keepalive)
	}

	t.Run("on", func(t *testing.T) {
		inBubbleNet(t, func(t *testing.T, b *bubble) {
			require.GreaterOrEqual(t, dialAndWait(t, b, sshdial.WithKeepalive(interval, time.Second)), 14,
				"the observation works: a keepalive each interval")
		})
	})
	// Every duration is short, so that an option misread as "on" would
	// send keepalives within the wait.
	for _, tc := range []struct {
		name string
		opts []sshdial.Option
	}{
		{"default", nil},
		{"zero interval", []sshdial.Option{sshdial.WithKeepalive(0, interval)}},
		{"negative interval", []sshdial.Option{sshdial.WithKeepalive(-interval, 0)}},
		{"negative interval with timeout", []sshdial.Option{sshdial.WithKeepalive(-interval, interval)}},
		{"turned off after on", []sshdial.Option{sshdial.WithKeepalive(interval, interval), sshdial.WithKeepalive(0, interval)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inBubbleNet(t, func(t *testing.T, b *bubble) {
				require.Zero(t, dialAndWait(t, b, tc.opts...))
			})
		})
	}
}
