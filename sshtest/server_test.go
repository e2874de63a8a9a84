package sshtest_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

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

func echoListener(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l
}

func TestListensOnLoopback(t *testing.T) {
	srv, _ := newServer(t)
	host, _, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), srv.Addr())
}

func TestDirectTCPIPAndChannelCount(t *testing.T) {
	srv, client := newServer(t)
	l := echoListener(t)
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

func TestRemoteForward(t *testing.T) {
	srv, client := newServer(t)
	l, err := client.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NotZero(t, port, "port 0 allocates")

	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
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
	l := echoListener(t)
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
	l := echoListener(t)
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
