package sshtest_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newServer(t *testing.T) (*sshtest.Server, *ssh.Client) {
	t.Helper()
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Dial()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestListensOnLoopback(t *testing.T) {
	srv, _ := newServer(t)
	host, _, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), srv.Addr())
}

func TestDirectTCPIPAndChannelCount(t *testing.T) {
	srv, client := newServer(t)
	l := testutil.EchoServer(t, "tcp")
	c, err := client.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	require.Equal(t, 1, srv.OpenChannels())
	_, err = c.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf))
	c.Close()
	require.Eventually(t, func() bool { return srv.OpenChannels() == 0 }, 5*time.Second, time.Millisecond)
}

func TestRejectsUnknownChannelTypes(t *testing.T) {
	_, client := newServer(t)
	for _, typ := range []string{"session", "x11", "no-such-type"} {
		_, _, err := client.OpenChannel(typ, nil)
		var openErr *ssh.OpenChannelError
		require.ErrorAs(t, err, &openErr, typ)
		require.Equal(t, ssh.UnknownChannelType, openErr.Reason, typ)
	}
}

func TestMalformedRequestIsRejected(t *testing.T) {
	_, client := newServer(t)
	_, _, err := client.OpenChannel("direct-tcpip", []byte{1, 2})
	var openErr *ssh.OpenChannelError
	require.ErrorAs(t, err, &openErr)
	require.Equal(t, ssh.ConnectionFailed, openErr.Reason)
}

func TestKeepaliveIsAnswered(t *testing.T) {
	_, client := newServer(t)
	ok, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
	require.NoError(t, err)
	require.False(t, ok, "answered with a failure, like OpenSSH")
}

func TestGlobalRequests(t *testing.T) {
	srv, client := newServer(t)
	other, err := srv.Dial()
	require.NoError(t, err)
	defer other.Close()
	require.Zero(t, srv.GlobalRequests("keepalive@openssh.com"))

	for i := range 3 {
		_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
		require.NoError(t, err)
		require.Equal(t, i+1, srv.GlobalRequests("keepalive@openssh.com"), "counted by the time the reply arrives")
	}
	_, _, err = other.SendRequest("keepalive@openssh.com", true, nil)
	require.NoError(t, err)
	require.Equal(t, 4, srv.GlobalRequests("keepalive@openssh.com"), "all connections count")

	l, err := client.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.Equal(t, 1, srv.GlobalRequests("tcpip-forward"))
	require.NoError(t, l.Close())
	require.Equal(t, 1, srv.GlobalRequests("cancel-tcpip-forward"))
	require.Zero(t, srv.GlobalRequests("no-such-request"))
}

func TestRemoteForward(t *testing.T) {
	srv, client := newServer(t)
	l, err := client.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NotZero(t, port, "port 0 allocates")

	testutil.ServeListener(t, l, testutil.Echo)
	for i := range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		msg := bytes.Repeat([]byte{byte(i)}, 100_000)
		go c.Write(msg)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, msg, got)
		c.Close()
	}
	require.Eventually(t, func() bool { return srv.OpenChannels() == 0 }, 5*time.Second, time.Millisecond)

	// cancel-tcpip-forward stops the listener on the server.
	require.NoError(t, l.Close())
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, 5*time.Millisecond)
}

func TestRemoteForwardRefusesNonLoopback(t *testing.T) {
	_, client := newServer(t)
	_, err := client.Listen("tcp", "192.0.2.1:0")
	require.Error(t, err)
}

func TestStallAndResume(t *testing.T) {
	srv, client := newServer(t)
	l := testutil.EchoServer(t, "tcp")
	c, err := client.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()

	srv.Stall()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		got <- string(buf)
	}()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	select {
	case s := <-got:
		t.Fatalf("got %q through a stalled server", s)
	case <-time.After(200 * time.Millisecond):
	}
	srv.Resume()
	select {
	case s := <-got:
		require.Equal(t, "ping", s)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing after Resume")
	}
}

func TestCloseClientConnections(t *testing.T) {
	srv, client := newServer(t)
	done := make(chan error, 1)
	go func() { done <- client.Wait() }()
	srv.CloseClientConnections()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still up")
	}
	// The server still accepts new connections.
	c, err := srv.Dial()
	require.NoError(t, err)
	c.Close()
}

// TestCloseWhileStalled checks that Close ends a stalled server with open
// channels and returns only once its goroutines are gone.
func TestCloseWhileStalled(t *testing.T) {
	srv := sshtest.NewServer()
	client, err := srv.Dial()
	require.NoError(t, err)
	defer client.Close()
	l := testutil.EchoServer(t, "tcp")
	c, err := client.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	srv.Stall()
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a stalled server")
	}
	require.Zero(t, srv.OpenChannels())
}

func TestClientConfigPinsHostKey(t *testing.T) {
	a := sshtest.NewServer()
	defer a.Close()
	b := sshtest.NewServer()
	defer b.Close()
	_, err := ssh.Dial("tcp", a.Addr(), b.ClientConfig())
	require.ErrorContains(t, err, "host key mismatch")
}

func TestUnixTarget(t *testing.T) {
	_, client := newServer(t)
	dir := t.TempDir()
	if len(dir) > 90 {
		dir = "/tmp"
	}
	l, err := net.Listen("unix", dir+"/sshtest.sock")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("unix"))
			c.Close()
		}
	}()
	c, err := client.Dial("unix", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "unix", string(got))
}

// slowCloseConn is a target connection whose first Close takes a while
// after closing the socket, and which counts the Close calls in progress.
// Its CloseRead does nothing, so that only a Close ends a Read.
type slowCloseConn struct {
	*net.TCPConn
	first   *atomic.Bool
	closing *atomic.Int32
}

func (c slowCloseConn) CloseRead() error { return nil }

func (c slowCloseConn) Close() error {
	c.closing.Add(1)
	defer c.closing.Add(-1)
	slow := c.first.CompareAndSwap(false, true)
	err := c.TCPConn.Close()
	if slow {
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// TestCloseWaitsForTargetClose is a regression test: Close closes the
// target connections of open channels in a goroutine of its own, and
// returned without waiting for it.
func TestCloseWaitsForTargetClose(t *testing.T) {
	var first atomic.Bool
	var closing atomic.Int32
	srv := sshtest.NewUnstartedServer()
	srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return slowCloseConn{c.(*net.TCPConn), &first, &closing}, nil
	}
	srv.Start()
	client, err := srv.Dial()
	require.NoError(t, err)
	defer client.Close()
	// A target that never closes its end: only the server's Close ends
	// the channel.
	hold := make(chan struct{})
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-hold
	})
	defer close(hold)
	c, err := client.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, 1, srv.OpenChannels())

	srv.Close()
	require.True(t, first.Load(), "Close closed the target")
	require.Zero(t, closing.Load(), "a Close of the target still runs after the server's Close returned")
}

func TestRemoteForwardUnix(t *testing.T) {
	srv, client := newServer(t)
	path := testutil.ShortTempDir(t) + "/fwd.sock"
	l, err := client.ListenUnix(path)
	require.NoError(t, err)
	testutil.ServeListener(t, l, testutil.Echo)

	for range 2 {
		c, err := net.Dial("unix", path)
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c, "through a unix remote forward"))
		c.Close()
	}
	require.Eventually(t, func() bool { return srv.OpenChannels() == 0 }, 5*time.Second, time.Millisecond)

	// A second forward of the same path is refused.
	_, err = client.ListenUnix(path)
	require.Error(t, err)

	// cancel-streamlocal-forward@openssh.com stops the listener, and the
	// socket is gone.
	require.NoError(t, l.Close())
	_, err = net.Dial("unix", path)
	require.Error(t, err)
	require.NoFileExists(t, path)
}
