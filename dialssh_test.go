package sshdial_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestDialSSH(t *testing.T) {
	t.Run("sshtest", func(t *testing.T) {
		srv := sshtest.NewServer()
		t.Cleanup(srv.Close)
		dialSSHThrough(t, srv.Addr(), srv.ClientConfig())
	})
	t.Run("openssh", func(t *testing.T) {
		srv, _ := newOpenSSH(t)
		dialSSHThrough(t, srv.Addr, srv.ClientConfig())
	})
}

// dialSSHThrough connects with DialSSH and uses the client for a tunnel.
func dialSSHThrough(t *testing.T, addr string, config *ssh.ClientConfig) {
	t.Helper()
	client, err := sshdial.DialSSH(context.Background(), addr, config)
	require.NoError(t, err)
	defer client.Close()
	require.Empty(t, config.Ciphers, "the caller's config is not modified")
	l := testutil.EchoServer(t, "tcp")
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
}

func TestDialSSHBoundedByContext(t *testing.T) {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	srv.Stall()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sshdial.DialSSH(ctx, srv.Addr(), srv.ClientConfig())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)

	_, err = sshdial.DialSSH(context.Background(), srv.Addr(), nil)
	require.ErrorContains(t, err, "ClientConfig")
}

func TestQuickAckKeepsTCPMethods(t *testing.T) {
	l := testutil.EchoServer(t, "tcp")
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	q := sshdial.QuickAck(c)
	require.NoError(t, testutil.RoundTrip(q, "ping"))
	_, ok := q.(interface{ CloseWrite() error })
	require.True(t, ok, "half-close survives the wrapper")
}
