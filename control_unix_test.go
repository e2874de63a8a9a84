//go:build unix

package sshdial_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// sshdWithMaster starts sshd logging logins and a ControlMaster on it.
func sshdWithMaster(t *testing.T) (*opensshd.Server, *opensshd.Master) {
	t.Helper()
	srv := opensshd.Start(t, "LogLevel INFO")
	return srv, srv.StartMaster(t)
}

func logins(srv *opensshd.Server) int { return strings.Count(srv.Stderr(), "Accepted publickey") }

// A Dialer with no SSH connection of its own dials through the master: one
// login in sshd's log for any number of dials, and *Conn values.
func TestControlPathDials(t *testing.T) {
	srv, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	target := serve(t, "tcp", echo)
	for i := 0; i < 20; i++ {
		c, err := d.Dial("tcp", target.Addr().String())
		require.NoError(t, err)
		require.IsType(t, &sshdial.Conn{}, c)
		require.NoError(t, testutil.RoundTrip(c, "ping"))
		require.Equal(t, target.Addr().String(), c.RemoteAddr().String())
		require.Equal(t, m.Sock, c.LocalAddr().String())
		c.Close()
	}
	// 200 at once.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(ctx, "tcp", target.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			errs <- testutil.RoundTrip(c, "parallel")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, logins(srv), "sshd's log:\n%s", srv.Stderr())
	require.EqualValues(t, 220, d.Stats().Dials)
	require.Equal(t, m.Sock, d.Stats().ControlPath)
	require.Zero(t, d.Stats().SSHConnections)
	require.Zero(t, d.Stats().OpenConns)
	c, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	require.Equal(t, 1, d.Stats().OpenConns)
	require.NoError(t, testutil.RoundTrip(c, "counted"))
	require.Positive(t, d.Stats().BytesReceived)
	c.Close()
	require.Zero(t, d.Stats().OpenConns)
}

// Unix sockets behind the server, through the master
// (direct-streamlocal@openssh.com).
func TestControlPathUnixTarget(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	target := serve(t, "unix", echo)
	c, err := d.Dial("unix", target.Addr().String())
	if err != nil && strings.Contains(err.Error(), "OpenSSH 9.4") {
		// ssh -W to a socket path came with OpenSSH 9.4; older
		// masters send a TCP connect to a host named by the path.
		out, _ := exec.Command("ssh", "-V").CombinedOutput()
		require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
		t.Skipf("the master (%s) is older than OpenSSH 9.4: %v", strings.TrimSpace(string(out)), err)
	}
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, testutil.RoundTrip(c, "over a unix socket"))
	require.Equal(t, target.Addr().String(), c.RemoteAddr().String())
}

func TestControlPathDeadlinesAndHalfClose(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	target := serve(t, "tcp", func(c net.Conn) {
		b, _ := io.ReadAll(c)
		fmt.Fprintf(c, "got %d bytes", len(b))
	})
	c, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	defer c.Close()

	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "Read past its deadline: %v", err)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))

	_, err = c.Write(bytes.Repeat([]byte("x"), 300000))
	require.NoError(t, err)
	require.NoError(t, c.(*sshdial.Conn).CloseWrite())
	b, err := io.ReadAll(c)
	require.NoError(t, err, "a clean EOF after the answer")
	require.Equal(t, "got 300000 bytes", string(b))
}

// A master killed in the middle of a download: the Conn's Read fails with
// ErrSSHConnectionLost, never a clean EOF; the next dial falls back to the
// Dialer's own SSH connection, and says so in the log.
func TestControlPathMasterLostAndFallback(t *testing.T) {
	srv, m := sshdWithMaster(t)
	homeFor(t, srv)
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	d := connectTo(t, srv, sshdial.WithControlPath(m.Sock), sshdial.WithLogger(logger))
	require.Equal(t, 1, logins(srv), "Connect logged in although a master answers")
	require.Equal(t, sshdial.Stats{ControlPath: m.Sock}, d.Stats(), "Connect found the master")

	source := serve(t, "tcp", testutil.Flood)
	c, err := d.Dial("tcp", source.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadFull(c, make([]byte, 1<<20))
	require.NoError(t, err)
	m.Kill()
	n, err := io.Copy(io.Discard, c)
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost, "after %d more bytes from a killed master (nil is a clean EOF)", n)
	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost)
	require.Empty(t, d.Stats().ControlPath, "Stats still names the master that the Conn found gone")

	// Fallback: the Dialer's own SSH connection, a second login.
	requireEchoThrough(t, d)
	waitLogins(t, srv, 2, "the fallback logs in once")
	require.Contains(t, logs.String(), "the ControlMaster is gone")
	st := d.Stats()
	require.Empty(t, st.ControlPath, "dials no longer go through the master")
	require.Equal(t, 1, st.SSHConnections)
}

func TestControlRequiredWithoutMaster(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	d := sshdial.New(nil, sshdial.WithControl(filepath.Join(dir, "none"), sshdial.ControlRequired))
	defer d.Close()
	start := time.Now()
	_, err := d.Dial("tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, sshdial.ErrNoControlMaster)
	require.Less(t, time.Since(start), 2*time.Second)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "dial", oe.Op)

	// A path too long for a Unix socket says so.
	d2 := sshdial.New(nil, sshdial.WithControl(filepath.Join(dir, strings.Repeat("x", 150)), sshdial.ControlRequired))
	defer d2.Close()
	_, err = d2.Dial("tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, sshdial.ErrNoControlMaster)
	require.Contains(t, err.Error(), "too long")

	// Fallback without an own SSH connection to fall back to.
	d3 := sshdial.New(nil, sshdial.WithControlPath(filepath.Join(dir, "none")))
	defer d3.Close()
	_, err = d3.Dial("tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, sshdial.ErrNilClient)
}

// A refused target through the master is an *OpenError matching
// ErrTargetUnreachable; the master does not pass on the server's words.
func TestControlPathRefused(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	_, err = d.Dial("tcp", addr)
	require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
	var oe *sshdial.OpenError
	require.ErrorAs(t, err, &oe)
}

// The Dialer's Close closes the Conns dialed through the master.
func TestControlPathDialerClose(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	c, err := d.Dial("tcp", serve(t, "tcp", echo).Addr().String())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, d.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, sshdial.ErrDialerClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after the Dialer's Close")
	}
	_, err = d.Dial("tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
}

func TestControlPathNettest(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		c1, err = d.Dial("tcp", l.Addr().String())
		if err != nil {
			l.(*net.TCPListener).SetDeadline(time.Now())
			if c := <-accepted; c != nil {
				c.Close()
			}
			l.(*net.TCPListener).SetDeadline(time.Time{})
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("target accepted nothing")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// Connect with ControlRequired and no master fails without logging in.
func TestControlRequiredConnectWithoutMaster(t *testing.T) {
	srv := opensshd.Start(t, "LogLevel INFO")
	homeFor(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := sshdial.Connect(ctx, fmt.Sprintf("%s@%s", srv.User, srv.Addr),
		sshdial.WithControl(filepath.Join(testutil.ShortTempDir(t), "none"), sshdial.ControlRequired))
	require.ErrorIs(t, err, sshdial.ErrNoControlMaster)
	require.Equal(t, 0, logins(srv))
}

// Under ControlFallback a Unix socket target that the master cannot reach
// (masters before OpenSSH 9.4 cannot) goes through the Dialer's own SSH
// connection; "none" turns sharing off.
func TestControlFallbackUnixAndNone(t *testing.T) {
	srv, m := sshdWithMaster(t)
	homeFor(t, srv)
	d := connectTo(t, srv, sshdial.WithControlPath(m.Sock))
	target := serve(t, "unix", echo)
	c, err := d.Dial("unix", target.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "unix"))
	c.Close()

	before := logins(srv)
	off := connectTo(t, srv, sshdial.WithControlPath("none"))
	// sshd may write its "Accepted" line just after the client sees the
	// login succeed.
	waitLogins(t, srv, before+1, "with ControlPath none, Connect logs in")
	requireEchoThrough(t, off)
}

func TestWithControlBadPolicy(t *testing.T) {
	d := sshdial.New(nil, sshdial.WithControl("/x", sshdial.ControlPolicy(7)))
	defer d.Close()
	_, err := d.Dial("tcp", "127.0.0.1:1")
	require.ErrorContains(t, err, "unknown policy")
}

// CloseRead through the master: Read returns io.EOF at once, writing goes
// on.
func TestControlPathCloseRead(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	got := make(chan string, 1)
	target := serve(t, "tcp", func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	c, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	conn := c.(*sshdial.Conn)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, conn.CloseRead())
	select {
	case err := <-done:
		require.Equal(t, io.EOF, err)
	case <-time.After(10 * time.Second):
		t.Fatal("CloseRead did not wake a blocked Read")
	}
	_, err = conn.Read(make([]byte, 1))
	require.Equal(t, io.EOF, err)
	_, err = conn.Write([]byte("still writing"))
	require.NoError(t, err)
	require.NoError(t, conn.CloseWrite())
	select {
	case s := <-got:
		require.Equal(t, "still writing", s)
	case <-time.After(20 * time.Second):
		t.Fatal("the target got no EOF")
	}
}
