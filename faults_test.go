package sshdial_test

// Faults while Conns are in use: a dying link must wake every waiter with an
// error that says what happened. Each test runs against every faultPeer:
// sshtest always, OpenSSH's sshd where the platform can stop and kill its
// processes (failure_linux_test.go).

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// faultServer is a running SSH server with the faults the tests inject.
type faultServer struct {
	addr   string
	config *ssh.ClientConfig
	stall  func() // freeze every connection, present and future, like a dead network
	resume func() // end the stall
	drop   func() // kill every SSH connection without a goodbye

	// In a synctest bubble (bubble.faultServer), the clients and targets
	// are in-memory: these replace ssh.Dial to addr and TCP targets.
	dialClient  func(t *testing.T) *ssh.Client
	serveTarget func(t *testing.T, handle func(net.Conn)) string
}

// dial connects a new client, closed when the test ends.
func (s *faultServer) dial(t *testing.T) *ssh.Client {
	t.Helper()
	if s.dialClient != nil {
		return s.dialClient(t)
	}
	c, err := ssh.Dial("tcp", s.addr, s.config)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// target serves handle as a target the server can reach and returns its
// address: a TCP listener, or in a bubble an in-memory one.
func (s *faultServer) target(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	if s.serveTarget != nil {
		return s.serveTarget(t, handle)
	}
	return serve(t, "tcp", handle).Addr().String()
}

// faultPeers are the server kinds the fault tests run against.
var faultPeers = []struct {
	name  string
	start func(t *testing.T) *faultServer
}{
	{"sshtest", func(t *testing.T) *faultServer {
		srv := sshtest.NewServer()
		t.Cleanup(srv.Close)
		return &faultServer{
			addr:   srv.Addr(),
			config: srv.ClientConfig(),
			stall:  srv.Stall,
			resume: srv.Resume,
			drop:   srv.CloseClientConnections,
		}
	}},
}

func forEachFaultPeer(t *testing.T, f func(t *testing.T, srv *faultServer)) {
	for _, p := range faultPeers {
		t.Run(p.name, func(t *testing.T) { f(t, p.start(t)) })
	}
}

// await returns what ch delivers, failing the test if nothing comes within
// d. It runs on the test goroutine, so assertions stay there too.
func await[T any](t *testing.T, d time.Duration, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

type ioResult struct {
	n   int64
	err error
}

// backgroundWrite writes p to c in a goroutine and reports the result.
func backgroundWrite(c net.Conn, p []byte) <-chan ioResult {
	res := make(chan ioResult, 1)
	go func() {
		n, err := c.Write(p)
		res <- ioResult{int64(n), err}
	}()
	return res
}

// backgroundDrain copies c to its end in a goroutine with io.Copy, which
// takes the Conn's WriteTo, and reports the result.
func backgroundDrain(c net.Conn) <-chan ioResult {
	return drainVia(c, viaWriteTo)
}

// A drain reads a connection to its end: through Read, or through WriteTo.
type drain struct {
	name string
	copy func(c net.Conn) (int64, error)
}

var (
	viaRead    = drain{"Read", func(c net.Conn) (int64, error) { return io.Copy(io.Discard, struct{ io.Reader }{c}) }}
	viaWriteTo = drain{"WriteTo", func(c net.Conn) (int64, error) { return c.(io.WriterTo).WriteTo(io.Discard) }}
	drains     = []drain{viaRead, viaWriteTo}
)

// drainVia drains c with d in a goroutine and reports the result.
func drainVia(c net.Conn, d drain) <-chan ioResult {
	res := make(chan ioResult, 1)
	go func() {
		n, err := d.copy(c)
		res <- ioResult{n, err}
	}()
	return res
}

// backgroundWriteTo runs c.WriteTo(w) in a goroutine and reports the result.
func backgroundWriteTo(c io.WriterTo, w io.Writer) <-chan ioResult {
	res := make(chan ioResult, 1)
	go func() {
		n, err := c.WriteTo(w)
		res <- ioResult{n, err}
	}()
	return res
}

// backgroundRead reads one byte from c in a goroutine and reports the error.
func backgroundRead(c net.Conn) <-chan error {
	res := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		res <- err
	}()
	return res
}

// backgroundDial dials target through d in a goroutine, closes what it
// got, and reports the error.
func backgroundDial(d interface {
	Dial(network, address string) (net.Conn, error)
}, target string) <-chan error {
	res := make(chan error, 1)
	go func() {
		c, err := d.Dial("tcp", target)
		if err == nil {
			c.Close()
		}
		res <- err
	}()
	return res
}

// backgroundAccept accepts from l in a goroutine and reports the error.
func backgroundAccept(l net.Listener) <-chan error {
	res := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		res <- err
	}()
	return res
}

// sink serves a target that reads nothing until the test ends, so that a
// Write through the tunnel fills every buffer and window and then waits.
func sink(t *testing.T, srv *faultServer) string {
	stop := make(chan struct{})
	addr := srv.target(t, func(c net.Conn) { <-stop })
	t.Cleanup(func() { close(stop) })
	return addr
}

// TestWriteWaitingForBufferWakesOnFailure: a Write larger than every buffer
// waits for the writer; when the channel or the SSH connection fails, it
// must return with an error that says which, not hang until Close.
func TestWriteWaitingForBufferWakesOnFailure(t *testing.T) {
	big := make([]byte, 64<<20)
	faults := []struct {
		name   string
		target func(t *testing.T, srv *faultServer) (addr string, closeTarget func())
		fault  func(srv *faultServer, client *ssh.Client, closeTarget func())
		want   error
	}{
		{
			name: "target closes",
			target: func(t *testing.T, srv *faultServer) (string, func()) {
				closeIt := make(chan struct{})
				addr := srv.target(t, func(c net.Conn) { <-closeIt })
				var once sync.Once
				f := func() { once.Do(func() { close(closeIt) }) }
				t.Cleanup(f)
				return addr, f
			},
			fault: func(_ *faultServer, _ *ssh.Client, closeTarget func()) { closeTarget() },
			want:  syscall.EPIPE,
		},
		{
			name:   "client closed",
			target: func(t *testing.T, srv *faultServer) (string, func()) { return sink(t, srv), nil },
			fault:  func(_ *faultServer, client *ssh.Client, _ func()) { client.Close() },
			want:   sshdial.ErrSSHConnectionClosed,
		},
		{
			name:   "connection dropped",
			target: func(t *testing.T, srv *faultServer) (string, func()) { return sink(t, srv), nil },
			fault:  func(srv *faultServer, _ *ssh.Client, _ func()) { srv.drop() },
			want:   sshdial.ErrSSHConnectionLost,
		},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			inBubbleNet(t, func(t *testing.T, b *bubble) {
				srv := b.faultServer()
				client := srv.dial(t)
				addr, closeTarget := f.target(t, srv)
				conn, err := sshdial.New(client).Dial("tcp", addr)
				require.NoError(t, err)
				defer conn.Close()

				res := backgroundWrite(conn, big)
				synctest.Wait() // every buffer and window is full: the Write waits
				require.Empty(t, res, "the Write returned before the fault")
				f.fault(srv, client, closeTarget)
				r := await(t, 20*time.Second, "Write after the fault", res)
				require.ErrorIs(t, r.err, f.want)
				require.Less(t, r.n, int64(len(big)))
				var opErr *net.OpError
				require.ErrorAs(t, r.err, &opErr)
				require.Equal(t, "write", opErr.Op)
			})
		})
	}
}

// cutDownload starts a download of far more than moves before cut through
// client, lets 1 MiB arrive, runs cut, and returns the Conn (closed when
// the test ends) and how the rest of the copy ended.
func cutDownload(t *testing.T, client *ssh.Client, d drain, what string, cut func()) (net.Conn, ioResult) {
	t.Helper()
	conn, err := sshdial.New(client).Dial("tcp", source(t, 256<<20))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.CopyN(io.Discard, conn, 1<<20) // the download is under way
	require.NoError(t, err)
	res := drainVia(conn, d)
	cut()
	return conn, await(t, 20*time.Second, d.name+" after "+what, res)
}

// source serves a target that sends size bytes and then closes.
func source(t *testing.T, size int) string {
	l := serve(t, "tcp", func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf[:min(len(buf), size-sent)]); err != nil {
				return
			}
		}
	})
	return l.Addr().String()
}

// TestLostConnectionIsNotEOF: a download cut short by a lost SSH connection
// must end in an error, never in the io.EOF of a complete body; a complete
// one still ends in io.EOF itself. It holds for a Dialer made with New from
// the caller's own client, with no help from the TCP connection under it.
func TestLostConnectionIsNotEOF(t *testing.T) {
	forEachFaultPeer(t, func(t *testing.T, srv *faultServer) {
		for _, d := range drains {
			t.Run("dropped/"+d.name, func(t *testing.T) {
				conn, r := cutDownload(t, srv.dial(t), d, "the drop", srv.drop)
				require.ErrorIs(t, r.err, sshdial.ErrSSHConnectionLost, "a cut download must not look complete (%d bytes)", r.n)
				require.ErrorIs(t, r.err, syscall.ECONNRESET)
				require.False(t, errors.Is(r.err, io.EOF), "must not match io.EOF: %v", r.err)
				var opErr *net.OpError
				require.ErrorAs(t, r.err, &opErr)
				require.Equal(t, "read", opErr.Op)

				_, err := conn.Read(make([]byte, 1))
				require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost, "and so do later Reads")
				_, err = conn.Write([]byte("x"))
				require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost, "and Writes")
			})

			t.Run("client closed/"+d.name, func(t *testing.T) {
				client := srv.dial(t)
				_, r := cutDownload(t, client, d, "client.Close", func() { client.Close() })
				require.ErrorIs(t, r.err, sshdial.ErrSSHConnectionClosed)
				require.ErrorIs(t, r.err, net.ErrClosed)
			})

			t.Run("complete/"+d.name, func(t *testing.T) {
				client := srv.dial(t)
				const small = 8 << 20
				conn, err := sshdial.New(client).Dial("tcp", source(t, small))
				require.NoError(t, err)
				defer conn.Close()
				n, err := d.copy(conn)
				require.NoError(t, err)
				require.EqualValues(t, small, n)
				_, err = conn.Read(make([]byte, 1))
				require.True(t, err == io.EOF, "want io.EOF itself, got %#v", err)
			})
		}
	})
}

// TestKeepaliveFailsDialInFlight: a dial with no deadline of its own (Dial,
// as nats.go calls it) that is waiting for a stalled server fails when the
// keepalive check does, instead of waiting out the stall.
func TestKeepaliveFailsDialInFlight(t *testing.T) {
	forEachFaultPeer(t, func(t *testing.T, srv *faultServer) {
		client := srv.dial(t)
		target := serve(t, "tcp", echo).Addr().String()
		d := sshdial.New(client, sshdial.WithKeepalive(100*time.Millisecond, 500*time.Millisecond))
		c, err := d.Dial("tcp", target) // starts the check
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c, "ping"))
		c.Close()

		srv.stall()
		t.Cleanup(srv.resume)
		res := backgroundDial(d, target)
		err = await(t, 20*time.Second, "Dial during the stall", res)
		require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
	})
}

// TestPoolAvoidsStalledMember: a Pool of two SSH connections, one of them
// stalled. Once keepalive finds it silent, no dial goes to it: every dial
// succeeds on the other one (or a new one), although the stalled one has
// fewer Conns.
func TestPoolAvoidsStalledMember(t *testing.T) {
	forEachFaultPeer(t, func(t *testing.T, stalled *faultServer) {
		healthy := faultPeers[0].start(t)
		var mu sync.Mutex
		calls := 0
		pool := sshdial.NewPool(2, func(ctx context.Context) (*ssh.Client, error) {
			mu.Lock()
			srv := healthy
			if calls == 0 {
				srv = stalled
			}
			calls++
			mu.Unlock()
			return sshdial.DialSSH(ctx, srv.addr, srv.config)
		}, sshdial.WithKeepalive(100*time.Millisecond, 500*time.Millisecond))
		t.Cleanup(func() { pool.Close() })
		target := serve(t, "tcp", echo).Addr().String()

		// Two Conns at once: the first SSH connection (to the server that
		// will stall) and a second one (healthy), one Conn each. Then one
		// more on the healthy one, which leaves the stalled one the least
		// loaded.
		var conns []net.Conn
		for range 3 {
			c, err := pool.Dial("tcp", target)
			require.NoError(t, err)
			require.NoError(t, testutil.RoundTrip(c, "ping"))
			conns = append(conns, c)
		}
		conns[0].Close()
		defer func() {
			for _, c := range conns[1:] {
				c.Close()
			}
		}()

		stalled.stall()
		t.Cleanup(stalled.resume)
		res := make(chan error, 1)
		go func() {
			for range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				c, err := pool.DialContext(ctx, "tcp", target)
				cancel()
				if err != nil {
					res <- err
					return
				}
				_, err = c.Write([]byte("ping"))
				if err == nil {
					_, err = io.ReadFull(c, make([]byte, 4))
				}
				c.Close()
				if err != nil {
					res <- err
					return
				}
			}
			res <- nil
		}()
		require.NoError(t, await(t, 60*time.Second, "20 dials through the Pool", res))
	})
}

// TestDialSSHReportsContextErrors: a handshake ended by the context reports
// the context's error, as net.Dialer does, whether the server stays silent
// or the context is cancelled.
func TestDialSSHReportsContextErrors(t *testing.T) {
	silent := serve(t, "tcp", func(c net.Conn) { io.Copy(io.Discard, c) }).Addr().String()
	config := sshtest.NewUnstartedServer()
	t.Cleanup(config.Close)
	cfg := config.ClientConfig()
	cfg.Timeout = 0

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := sshdial.DialSSH(ctx, silent, cfg)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = sshdial.DialSSH(ctx, silent, cfg)
	require.ErrorIs(t, err, context.Canceled)

	// Through a Pool too.
	pool := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		return sshdial.DialSSH(ctx, silent, cfg)
	})
	t.Cleanup(func() { pool.Close() })
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = pool.DialContext(ctx, "tcp", "127.0.0.1:1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestDialSSHContextErrorsOnStalledServer: the same against a real SSH
// server that stops answering during the handshake.
func TestDialSSHContextErrorsOnStalledServer(t *testing.T) {
	forEachFaultPeer(t, func(t *testing.T, srv *faultServer) {
		srv.stall()
		t.Cleanup(srv.resume)
		cfg := srv.config
		cfg.Timeout = 0

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := sshdial.DialSSH(ctx, srv.addr, cfg)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		_, err = sshdial.DialSSH(ctx, srv.addr, cfg)
		require.ErrorIs(t, err, context.Canceled)
	})
}
