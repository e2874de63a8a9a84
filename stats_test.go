package sshdial_test

import (
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestCloseOfNewDialer: Close of a Dialer made by New closes its Conns
// (blocked calls return ErrDialerClosed) and leaves the caller's client
// open; later dials fail with ErrDialerClosed.
func TestCloseOfNewDialer(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		client := b.client(t)
		target := b.serve(echo)
		d := sshdial.New(client)
		c, err := d.Dial("tcp", target)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, testutil.RoundTrip(c, "ping"))

		res := backgroundRead(c)
		synctest.Wait() // the Read waits for data
		require.Empty(t, res, "the Read returned before Close")
		require.NoError(t, d.Close())
		err = await(t, 5*time.Second, "Read after Dialer.Close", res)
		require.ErrorIs(t, err, sshdial.ErrDialerClosed)
		require.ErrorIs(t, err, net.ErrClosed)

		_, err = d.Dial("tcp", target)
		require.ErrorIs(t, err, sshdial.ErrDialerClosed)
		require.NoError(t, d.Close(), "a second Close")

		// The client is still the caller's, and works.
		c2, err := sshdial.New(client).Dial("tcp", target)
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c2, "ping"))
		c2.Close()
	})
}

// TestStats: dials, failures, bytes each way and open Conns are counted.
func TestStats(t *testing.T) {
	_, client := newSSHTest(t)
	target := serve(t, "tcp", echo).Addr().String()
	d := sshdial.New(client)
	defer d.Close()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 5))
	require.NoError(t, err)
	_, err = d.Dial("tcp", "127.0.0.1:1") // refused by the server
	require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)

	st := d.Stats()
	require.EqualValues(t, 2, st.Dials)
	require.EqualValues(t, 1, st.DialFailures)
	require.EqualValues(t, 5, st.BytesSent)
	require.EqualValues(t, 5, st.BytesReceived)
	require.Equal(t, 1, st.OpenConns)
	require.Equal(t, 1, st.SSHConnections)
	c.Close()
	require.Equal(t, 0, d.Stats().OpenConns)
}

// A Dialer from New without keepalive stops counting the caller's client
// as up once it is closed, with no Conn or dial to notice it.
func TestStatsClientClosed(t *testing.T) {
	for _, closeFirst := range []bool{false, true} {
		_, client := newSSHTest(t)
		if closeFirst {
			client.Close()
		}
		d := sshdial.New(client)
		if !closeFirst {
			require.Equal(t, 1, d.Stats().SSHConnections)
			client.Close()
		}
		require.Eventually(t, func() bool { return d.Stats().SSHConnections == 0 }, 10*time.Second, 10*time.Millisecond,
			"a closed client is counted as up (closed before New: %v)", closeFirst)
		d.Close()
	}
}

// TestLookupHostLeavesNamesToTheServer: a name only the server knows is
// returned as it is, for the dial to pass on.
func TestLookupHostLeavesNamesToTheServer(t *testing.T) {
	d := sshdial.New(nil)
	addrs, err := d.LookupHost(context.Background(), "db.internal")
	require.NoError(t, err)
	require.Equal(t, []string{"db.internal"}, addrs)
}
