package sshdial_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
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

	readErr := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		readErr <- err
	}()
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
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	_, err = conn.Write([]byte("x"))
	require.False(t, errors.Is(err, sshdial.ErrServerNotResponding))
}

func TestKeepaliveOff(t *testing.T) {
	_, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	for _, opt := range []sshdial.Option{sshdial.WithKeepalive(0, time.Second), sshdial.WithKeepalive(-time.Second, 0)} {
		conn, err := sshdial.New(client, opt).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(conn, "ping"))
		conn.Close()
	}
}
