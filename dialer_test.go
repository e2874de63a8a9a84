package sshdial_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestBadInput(t *testing.T) {
	_, client := newSSHTest(t)
	d := sshdial.New(client)
	cases := []struct {
		network, address, want string
	}{
		{"udp", "127.0.0.1:53", "unknown network udp"},
		{"", "127.0.0.1:80", "unknown network"},
		{"unixgram", "/tmp/x", "unknown network unixgram"},
		{"tcp", "127.0.0.1", "missing port"},
		{"tcp", "", "missing port"},
		{"tcp", "[::1:80", "missing ']'"},
		{"tcp", ":80", "missing host"},
		{"tcp", "db:", "missing port"},
		{"tcp", "db:0", "port out of range"},
		{"tcp", "db:65536", "port out of range"},
		{"tcp", "db:99999999999999999999", "port out of range"},
		{"tcp", "db:-1", "unknown port"},
		{"tcp", "db:no-such-service", "unknown port"},
		{"tcp4", "[::1]:80", "not an IPv4 address"},
		{"tcp6", "127.0.0.1:80", "not an IPv6 address"},
		{"unix", "", "missing socket path"},
		{"unix", "/tmp/a\x00b", "NUL"},
	}
	for _, tc := range cases {
		t.Run(tc.network+" "+tc.address, func(t *testing.T) {
			conn, err := d.Dial(tc.network, tc.address)
			require.Nil(t, conn)
			require.ErrorContains(t, err, tc.want)
			var opErr *net.OpError
			require.ErrorAs(t, err, &opErr)
			require.Equal(t, "dial", opErr.Op)
		})
	}
}

func TestNilClientAndNilDialer(t *testing.T) {
	for name, tc := range map[string]struct {
		d    *sshdial.Dialer
		want error
	}{
		"New(nil)":        {sshdial.New(nil), sshdial.ErrNilClient},
		"zero ssh.Client": {sshdial.New(&ssh.Client{}), sshdial.ErrNilClient},
		"nil *Dialer":     {nil, sshdial.ErrNilDialer},
		"zero Dialer":     {&sshdial.Dialer{}, sshdial.ErrNilDialer},
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := tc.d.Dial("tcp", "127.0.0.1:80")
			require.Nil(t, conn)
			require.ErrorIs(t, err, tc.want)
			_, err = tc.d.Listen(context.Background(), "tcp", "127.0.0.1:0")
			require.ErrorIs(t, err, tc.want)
			require.NoError(t, tc.d.Close())
		})
	}
}

func TestNilContext(t *testing.T) {
	_, client := newSSHTest(t)
	var ctx context.Context
	conn, err := sshdial.New(client).DialContext(ctx, "tcp", "127.0.0.1:80")
	require.Nil(t, conn)
	require.ErrorContains(t, err, "nil context")
}

func TestDialAfterClientClosed(t *testing.T) {
	_, client := newSSHTest(t)
	client.Close()
	conn, err := sshdial.New(client).Dial("tcp", "127.0.0.1:80")
	require.Nil(t, conn)
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionClosed)
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestConnsEndWithClient checks that closing the SSH client ends the
// connections dialed through it instead of leaving Reads blocked.
func TestConnsEndWithClient(t *testing.T) {
	_, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	errc := backgroundRead(conn)
	client.Close()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, sshdial.ErrSSHConnectionClosed, "the client was closed here, not lost")
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after the SSH client was closed")
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestServerRefusals(t *testing.T) {
	t.Run("sshtest prohibited", func(t *testing.T) {
		srv := sshtest.NewUnstartedServer()
		srv.Permit = func(network, address string) error {
			return errors.New("no " + network + " to " + address + " for you")
		}
		srv.Start()
		t.Cleanup(srv.Close)
		_, err := sshdial.New(srv.Client()).Dial("tcp", "db.internal:5432")
		require.ErrorIs(t, err, sshdial.ErrProhibited)
		require.NotErrorIs(t, err, sshdial.ErrTargetUnreachable)
		require.ErrorContains(t, err, "no tcp to db.internal:5432 for you")
		require.ErrorContains(t, err, "dial tcp db.internal:5432")
		var openErr *sshdial.OpenError
		require.ErrorAs(t, err, &openErr)
		require.Equal(t, ssh.Prohibited, openErr.Reason)
		var xErr *ssh.OpenChannelError
		require.ErrorAs(t, err, &xErr)
	})
	t.Run("sshtest connect failed", func(t *testing.T) {
		_, client := newSSHTest(t)
		addr := closedPort(t)
		_, err := sshdial.New(client).Dial("tcp", addr)
		require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
		require.ErrorContains(t, err, "connection refused")
		require.ErrorContains(t, err, addr)
	})
	t.Run("openssh connect failed", func(t *testing.T) {
		_, client := newOpenSSH(t)
		_, err := sshdial.New(client).Dial("tcp", closedPort(t))
		require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
		require.ErrorContains(t, err, "Connection refused")
	})
	t.Run("openssh prohibited", func(t *testing.T) {
		_, client := newOpenSSH(t, "PermitOpen 127.0.0.1:1")
		_, err := sshdial.New(client).Dial("tcp", closedPort(t))
		require.ErrorIs(t, err, sshdial.ErrProhibited)
	})
	t.Run("openssh unix forwarding disabled", func(t *testing.T) {
		// OpenSSH 9 reports a disabled feature as a failed connect.
		_, client := newOpenSSH(t, "AllowStreamLocalForwarding no")
		l := testutil.EchoServer(t, "unix") // a socket that exists: the refusal is the setting's
		_, err := sshdial.New(client).Dial("unix", l.Addr().String())
		require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
		require.ErrorContains(t, err, "open failed")
	})
}

func TestOpenErrorIs(t *testing.T) {
	for reason, want := range map[ssh.RejectionReason]error{
		ssh.Prohibited:         sshdial.ErrProhibited,
		ssh.ConnectionFailed:   sshdial.ErrTargetUnreachable,
		ssh.UnknownChannelType: sshdial.ErrUnknownChannelType,
		ssh.ResourceShortage:   sshdial.ErrResourceShortage,
	} {
		err := error(&sshdial.OpenError{Reason: reason, Message: "m"})
		assert.ErrorIs(t, err, want)
		for _, other := range []error{sshdial.ErrProhibited, sshdial.ErrTargetUnreachable, sshdial.ErrUnknownChannelType, sshdial.ErrResourceShortage} {
			if other != want {
				assert.NotErrorIs(t, err, other)
			}
		}
	}
	assert.Equal(t, "sshdial: the SSH server refused: resource shortage", (&sshdial.OpenError{Reason: ssh.ResourceShortage}).Error())
}

func TestAddresses(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := testutil.EchoServer(t, "tcp")
		port := l.Addr().(*net.TCPAddr).Port
		d := sshdial.New(client)

		conn, err := d.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		require.Equal(t, l.Addr().String(), conn.RemoteAddr().String())
		require.IsType(t, &net.TCPAddr{}, conn.RemoteAddr())
		require.Equal(t, client.LocalAddr().String(), conn.LocalAddr().String())
		conn.Close()

		// A host name is resolved by the server and kept as dialed; the
		// address can be dialed again, as pgx does for cancel requests.
		name := net.JoinHostPort("localhost", strconv.Itoa(port))
		conn, err = d.Dial("tcp4", name)
		require.NoError(t, err)
		ra := conn.RemoteAddr()
		require.Equal(t, "tcp", ra.Network())
		require.Equal(t, name, ra.String())
		again, err := d.Dial(ra.Network(), ra.String())
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(again, "ping"))
		again.Close()
		conn.Close()

	})
}

// TestServicePort checks that a service name is turned into its number
// here, since the protocol carries numbers only.
func TestServicePort(t *testing.T) {
	srv := sshtest.NewUnstartedServer()
	asked := make(chan string, 1)
	srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
		asked <- address
		return nil, errors.New("not really")
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, err := sshdial.New(srv.Client()).Dial("tcp", "db.internal:https")
	require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
	require.ErrorContains(t, err, "not really")
	require.Equal(t, "db.internal:443", <-asked)
}

func TestOriginator(t *testing.T) {
	// sshd logs the originator of each direct-tcpip request at DEBUG1.
	srv, client := newOpenSSH(t, "LogLevel DEBUG1")
	l := testutil.EchoServer(t, "tcp")
	orig := netip.MustParseAddrPort("192.0.2.7:4321")
	conn, err := sshdial.New(client, sshdial.WithOriginator(orig)).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, "192.0.2.7:4321", conn.LocalAddr().String())
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	require.Contains(t, srv.Stderr(), "originator 192.0.2.7 port 4321")
}

func TestInvalidOriginator(t *testing.T) {
	_, client := newSSHTest(t)
	_, err := sshdial.New(client, sshdial.WithOriginator(netip.AddrPort{})).Dial("tcp", "127.0.0.1:80")
	require.ErrorContains(t, err, "WithOriginator: invalid address")
}

func TestIPv6Target(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine")
	}
	l.Close()
	_, client := newSSHTest(t)
	l6 := testutil.EchoServer(t, "tcp6").Addr().String()
	conn, err := sshdial.New(client).Dial("tcp6", l6)
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, l6, conn.RemoteAddr().String())
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
}

// TestCancelledDial checks that a dial whose context ends returns at once
// even when the server does not answer, and that a channel the server opens
// afterwards is closed, leaving nothing behind.
func TestCancelledDial(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after every other cleanup
	var asked atomic.Int32
	srv := sshtest.NewUnstartedServer()
	srv.Permit = func(string, string) error { asked.Add(1); return nil }
	srv.Start()
	t.Cleanup(srv.Close)
	client, err := srv.Dial()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	l := testutil.EchoServer(t, "tcp")
	d := sshdial.New(client)

	// Already cancelled: nothing is sent.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.DialContext(ctx, "tcp", l.Addr().String())
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, asked.Load())

	// Times out while the server is stalled.
	srv.Stall()
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", l.Addr().String())
	require.Nil(t, conn)
	require.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// The server answers late: the channel opens, then is closed.
	srv.Resume()
	require.Eventually(t, func() bool {
		return asked.Load() == 1 && srv.OpenChannels() == 0
	}, 5*time.Second, 5*time.Millisecond)

	// The client still works.
	conn, err = d.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()
}

// TestContextOutlivesDial checks that the context bounds the dial only.
func TestContextOutlivesDial(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		ctx, cancel := context.WithCancel(context.Background())
		conn, err := sshdial.New(b.client(t)).DialContext(ctx, "tcp", b.serve(echo))
		require.NoError(t, err)
		defer conn.Close()
		cancel()
		synctest.Wait() // whatever the cancel would set off has run
		require.NoError(t, testutil.RoundTrip(conn, "ping"))
	})
}

func TestUnixSocket(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := testutil.EchoServer(t, "unix")
		conn, err := sshdial.New(client).Dial("unix", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		require.Equal(t, "unix", conn.RemoteAddr().Network())
		require.Equal(t, l.Addr().String(), conn.RemoteAddr().String())
		require.NoError(t, testutil.RoundTrip(conn, "ping"))
	})
}
