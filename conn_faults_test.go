package sshdial_test

// The Conn under faults: every blocked call must return after a fault,
// errors must say what happened (a clean EOF is bare io.EOF, a lost
// connection never matches io.EOF, a local close is ErrSSHConnectionClosed), data
// must arrive intact, and nothing may be left behind.
// Loops are bounded in count and time; timing assertions are generous and
// measured from the event.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/memconn"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestManyConnsEndAtOnce: 200 Conns on one SSH connection whose targets
// all send a byte and close at the same moment. Each reader must get its
// byte and a bare io.EOF (io.ReadAll returns nil), all of them within a few
// seconds of the targets closing: the round trip that proves the EOF clean
// is shared, not queued per Conn.
func TestManyConnsEndAtOnce(t *testing.T) {
	const n = 200
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		gate := make(chan struct{})
		l := serve(t, "tcp", func(c net.Conn) {
			<-gate
			c.Write([]byte("x"))
		})
		d := sshdial.New(client)
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := d.Dial("tcp", l.Addr().String())
			require.NoError(t, err)
			conns[i] = c
			defer c.Close()
		}
		type result struct {
			data    []byte
			err     error
			after   error
			elapsed time.Time
		}
		results := make(chan result, n)
		for _, c := range conns {
			go func() {
				b, err := io.ReadAll(c)
				_, after := c.Read(make([]byte, 1))
				results <- result{b, err, after, time.Now()}
			}()
		}
		waitBlockedIn(t, "sshdial.(*Conn).Read", n) // every reader is blocked
		start := time.Now()
		close(gate)
		var slowest time.Duration
		for i := range n {
			r := await(t, 30*time.Second, "reader "+string(rune('0'+i%10)), results)
			require.NoError(t, r.err)
			require.Equal(t, "x", string(r.data))
			require.True(t, r.after == io.EOF, "want io.EOF itself after the end, got %#v", r.after)
			slowest = max(slowest, r.elapsed.Sub(start))
		}
		t.Logf("slowest of %d: %v after the targets closed", n, slowest)
		require.Less(t, slowest, 15*time.Second)
	})
}

// TestServerStallsRightAfterEOF: the server sends the data and EOF of a
// channel, then stalls before it can answer the round trip that proves the
// EOF clean. Read must then neither report EOF nor a lost connection: it
// waits, its deadline and Close wake it, and a keepalive check fails it
// with ErrServerNotResponding. Once the server resumes, the EOF reads as a
// bare io.EOF.
func TestServerStallsRightAfterEOF(t *testing.T) {
	// Each subtest runs in a synctest bubble (inFaultBubble): synctest.Wait
	// knows when the data and EOF have reached the client.
	setup := func(t *testing.T, srv *faultServer, opts ...sshdial.Option) net.Conn {
		target := srv.target(t, func(c net.Conn) { c.Write([]byte("hello")) })
		client := srv.dial(t)
		conn, err := sshdial.New(client, opts...).Dial("tcp", target)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		synctest.Wait() // the data and EOF reach the client
		srv.stall()
		t.Cleanup(srv.resume)
		got := make([]byte, 5)
		_, err = io.ReadFull(conn, got)
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		return conn
	}

	t.Run("deadline then resume", inFaultBubble(func(t *testing.T, srv *faultServer) {
		conn := setup(t, srv)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		_, err := conn.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the EOF is not proven yet")
		require.False(t, errors.Is(err, io.EOF))
		srv.resume()
		require.NoError(t, conn.SetReadDeadline(time.Time{}))
		res := make(chan error, 1)
		go func() { _, err := conn.Read(make([]byte, 1)); res <- err }()
		err = await(t, 10*time.Second, "Read after the resume", res)
		require.True(t, err == io.EOF, "want io.EOF itself, got %#v", err)
	}))

	t.Run("close", inFaultBubble(func(t *testing.T, srv *faultServer) {
		conn := setup(t, srv)
		res := make(chan error, 1)
		go func() { _, err := conn.Read(make([]byte, 1)); res <- err }()
		synctest.Wait() // the Read waits for the EOF's proof
		require.Empty(t, res, "the Read returned before Close")
		conn.Close()
		err := await(t, 2*time.Second, "Read after Close", res)
		require.ErrorIs(t, err, net.ErrClosed)
		require.False(t, errors.Is(err, io.EOF))
	}))

	t.Run("keepalive", inFaultBubble(func(t *testing.T, srv *faultServer) {
		conn := setup(t, srv, sshdial.WithKeepalive(100*time.Millisecond, 400*time.Millisecond))
		res := make(chan error, 1)
		go func() { _, err := conn.Read(make([]byte, 1)); res <- err }()
		err := await(t, 10*time.Second, "Read on the stalled server", res)
		require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
		require.False(t, errors.Is(err, io.EOF))
	}))
}

// localCloseOverTransport dials an sshtest server through transport, makes
// an SSH client over it, starts an endless download through that client
// and then closes the client here: the download must end with
// ErrSSHConnectionClosed (net.ErrClosed), as the contract promises "when the
// client was closed here", never with io.EOF or ErrSSHConnectionLost.
func localCloseOverTransport(t *testing.T, inner *sshtest.Server, transport net.Conn, exact bool) {
	sc, chans, reqs, err := ssh.NewClientConn(transport, inner.Addr(), inner.ClientConfig())
	require.NoError(t, err)
	client := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { client.Close() })
	_, r := cutDownload(t, client, viaRead, "client.Close", func() { client.Close() })
	var opErr *net.OpError
	require.ErrorAs(t, r.err, &opErr, "Read's errors are *net.OpError values")
	require.False(t, errors.Is(r.err, io.EOF), "%v", r.err)
	if !exact {
		require.True(t, errors.Is(r.err, sshdial.ErrSSHConnectionClosed) || errors.Is(r.err, sshdial.ErrSSHConnectionLost), "%v", r.err)
		return
	}
	require.ErrorIs(t, r.err, sshdial.ErrSSHConnectionClosed, "the client was closed here, so not %v", r.err)
	require.ErrorIs(t, r.err, net.ErrClosed)
}

// TestLocalCloseOfTunnelledClient: an SSH client whose transport is an
// sshdial Conn (a jump host, as ProxyFromURL chains them), closed by the
// caller: its Conns report ErrSSHConnectionClosed. Over an in-memory connection
// they may report ErrSSHConnectionLost instead (the limit described below),
// never io.EOF.
func TestLocalCloseOfTunnelledClient(t *testing.T) {
	inner := sshtest.NewServer()
	t.Cleanup(inner.Close)
	_, outer := newSSHTest(t)
	t.Run("sshdial", func(t *testing.T) {
		c, err := sshdial.New(outer).Dial("tcp", inner.Addr())
		require.NoError(t, err)
		localCloseOverTransport(t, inner, c, true)
	})
	t.Run("memconn", func(t *testing.T) {
		a, b := memconn.Pipe()
		inner.ServeConn(b)
		localCloseOverTransport(t, inner, a, false) // memconn may report its own Close as EOF: the same limit as below
	})
}

// TestLocalCloseOfClientOverXCryptoTunnel: the same through a jump host
// written the usual way, with x/crypto's own client.Dial conn as the
// transport of the second client. The Conns fail, never with io.EOF; but
// they may say ErrSSHConnectionLost rather than ErrSSHConnectionClosed: the library
// learns how the connection ended from client.Wait, and over that
// transport a local Close makes it return io.EOF, as a lost connection
// does (a known limit, noted on issue #9).
func TestLocalCloseOfClientOverXCryptoTunnel(t *testing.T) {
	inner := sshtest.NewServer()
	t.Cleanup(inner.Close)
	_, outer := newSSHTest(t)
	c, err := outer.Dial("tcp", inner.Addr())
	require.NoError(t, err)
	localCloseOverTransport(t, inner, c, false)
}

// TestParallelTransfersIntact: 32 Conns on one SSH connection each send
// 2 MiB of random bytes through an echo target and read them back at the
// same time; every echo must match by SHA-256 and end in a clean EOF after
// CloseWrite.
func TestParallelTransfersIntact(t *testing.T) {
	const conns, size = 32, 2 << 20
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := serve(t, "tcp", echo)
		d := sshdial.New(client)
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for range conns {
			wg.Go(func() {
				c, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				p := make([]byte, size)
				rand.Read(p)
				want := sha256.Sum256(p)
				werr := make(chan error, 1)
				go func() {
					// Uneven writes, to cross buffer boundaries.
					for off := 0; off < len(p); {
						k := min(len(p)-off, 1+mrand.IntN(300<<10))
						if _, err := c.Write(p[off : off+k]); err != nil {
							werr <- err
							return
						}
						off += k
					}
					werr <- c.(*sshdial.Conn).CloseWrite()
				}()
				h := sha256.New()
				n, err := io.Copy(h, c)
				if err == nil {
					err = <-werr
				}
				switch {
				case err != nil:
					errs <- err
				case n != size || !bytes.Equal(h.Sum(nil), want[:]):
					errs <- errors.New("echo differs")
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		await(t, 120*time.Second, "32 parallel transfers", done)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}

// TestWriteThenCloseParallel: 32 Conns each write 1 MiB and close at
// once; every target must receive exactly the bytes (SHA-256) and then EOF:
// committed bytes go before the channel's close.
func TestWriteThenCloseParallel(t *testing.T) {
	const conns, size = 32, 1 << 20
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		got := make(chan [32]byte, conns)
		l := serve(t, "tcp", func(c net.Conn) {
			h := sha256.New()
			io.Copy(h, c)
			got <- [32]byte(h.Sum(nil))
		})
		d := sshdial.New(client)
		want := map[[32]byte]int{}
		var wg sync.WaitGroup
		for range conns {
			p := make([]byte, size)
			rand.Read(p)
			want[sha256.Sum256(p)]++
			wg.Go(func() {
				c, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				n, err := c.Write(p)
				if err != nil || n != size {
					t.Errorf("Write: %d, %v", n, err)
				}
				c.Close()
			})
		}
		wg.Wait()
		for range conns {
			sum := await(t, 60*time.Second, "a target's data", got)
			require.Positive(t, want[sum], "a target received other bytes than were written")
			want[sum]--
		}
	})
}

// TestConcurrentCallsDuringDrop: while 8 Conns are busy (a writer, a
// reader, a goroutine moving deadlines, and half-closes), the SSH
// connection is dropped. Every call must return promptly, no reader may see
// a clean end of an endless stream, every error must be a lost connection
// (or a timeout from the moved deadlines), and Close, CloseWrite, CloseRead
// and SetDeadline afterwards must not block.
func TestConcurrentCallsDuringDrop(t *testing.T) {
	forEachFaultPeer(t, func(t *testing.T, srv *faultServer) {
		client := srv.dial(t)
		l := serve(t, "tcp", func(c net.Conn) {
			// Echo, and send without end besides.
			go io.Copy(io.Discard, c)
			buf := make([]byte, 16<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		})
		d := sshdial.New(client)
		const conns = 8
		var wg sync.WaitGroup
		var stop atomic.Bool
		var cleanEnds, otherErrs atomic.Int32
		var firstOther atomic.Value
		isTimeout := func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
		bad := func(err error) {
			if otherErrs.Add(1) == 1 {
				firstOther.Store(err)
			}
		}
		cs := make([]*sshdial.Conn, conns)
		for i := range cs {
			c, err := d.Dial("tcp", l.Addr().String())
			require.NoError(t, err)
			cs[i] = c.(*sshdial.Conn)
			defer c.Close()
		}
		for i, c := range cs {
			wg.Go(func() { // reader
				buf := make([]byte, 32<<10)
				for {
					_, err := c.Read(buf)
					switch {
					case err == nil || isTimeout(err):
						if stop.Load() && err != nil {
							return
						}
						continue
					case err == io.EOF:
						if i%4 != 3 { // only CloseRead ends those cleanly
							cleanEnds.Add(1)
						}
					case !errors.Is(err, sshdial.ErrSSHConnectionLost):
						bad(err)
					}
					return
				}
			})
			wg.Go(func() { // writer
				p := make([]byte, 40<<10)
				for {
					_, err := c.Write(p)
					switch {
					case err == nil || isTimeout(err):
						if stop.Load() && err != nil {
							return
						}
						continue
					case errors.Is(err, sshdial.ErrSSHConnectionLost):
					case i%4 == 2 && errors.Is(err, syscall.EPIPE): // after CloseWrite
					default:
						bad(err)
					}
					return
				}
			})
			wg.Go(func() { // deadline mover, and half-closes
				for k := 0; !stop.Load() && k < 1000; k++ {
					c.SetDeadline(time.Now().Add(time.Duration(mrand.IntN(30)) * time.Millisecond))
					time.Sleep(5 * time.Millisecond) // the mover's pace: the calls under test run meanwhile
					if k == 20 && i%4 == 2 {
						c.CloseWrite()
					}
					if k == 20 && i%4 == 3 {
						c.CloseRead()
					}
				}
				c.SetDeadline(time.Time{})
			})
		}
		// Real-time sleeps on purpose: they are the load phases, before and
		// after the drop, during which the calls under test run (endless
		// streams never let a synctest bubble's clock move).
		time.Sleep(500 * time.Millisecond)
		srv.drop()
		dropped := time.Now()
		time.Sleep(100 * time.Millisecond)
		stop.Store(true)
		for _, c := range cs {
			c.SetDeadline(time.Now()) // wake the loops waiting for data
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		await(t, 20*time.Second, "every call after the drop", done)
		t.Logf("all returned %v after the drop", time.Since(dropped))
		require.Zero(t, cleanEnds.Load(), "a reader saw io.EOF on a dropped connection")
		if e := firstOther.Load(); e != nil {
			t.Fatalf("%d unexpected errors, first: %v", otherErrs.Load(), e)
		}
		for _, c := range cs {
			var closeErr error
			testutil.Within(t, 2*time.Second, "CloseWrite, CloseRead, SetDeadline, Close after the drop", func() {
				c.CloseWrite()
				c.CloseRead()
				c.SetDeadline(time.Now())
				closeErr = c.Close()
			})
			require.NoError(t, closeErr)
		}
	})
}

// TestUnixSocketEnds: through OpenSSH to a unix socket, a complete
// transfer ends in a bare io.EOF and one cut by a killed sshd in
// ErrSSHConnectionLost.
func TestUnixSocketEnds(t *testing.T) {
	if len(faultPeers) < 2 {
		t.Skip("needs OpenSSH")
	}
	srv := faultPeers[len(faultPeers)-1].start(t)
	l := serve(t, "unix", func(c net.Conn) {
		buf := make([]byte, 64<<10)
		var b [1]byte
		c.Read(b[:]) // b[0] says how much to send: 0 a little, else endless
		for sent := 0; b[0] != 0 || sent < 1<<20; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	client := srv.dial(t)
	d := sshdial.New(client)

	c, err := d.Dial("unix", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.Write([]byte{0})
	n, err := io.Copy(io.Discard, c)
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, n)
	_, err = c.Read(make([]byte, 1))
	require.True(t, err == io.EOF, "want io.EOF itself, got %#v", err)

	c, err = d.Dial("unix", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.Write([]byte{1})
	_, err = io.CopyN(io.Discard, c, 1<<20)
	require.NoError(t, err)
	res := backgroundDrain(c)
	srv.drop()
	r := await(t, 20*time.Second, "io.Copy after the drop", res)
	require.ErrorIs(t, r.err, sshdial.ErrSSHConnectionLost)
	require.False(t, errors.Is(r.err, io.EOF))
	var opErr *net.OpError
	require.ErrorAs(t, r.err, &opErr)
	require.Equal(t, "unix", opErr.Net)
}

// TestCloseReadDuringFaults: CloseRead wakes a Read blocked on a stalled
// server with io.EOF (as shutdown(SHUT_RD) does), leaves writing usable,
// and after a drop Writes report the lost connection while Reads keep
// reporting io.EOF.
func TestCloseReadDuringFaults(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		srv := b.faultServer()
		client := srv.dial(t)
		c, err := sshdial.New(client).Dial("tcp", srv.target(t, echo))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, testutil.RoundTrip(c, "ping"))
		sc := c.(*sshdial.Conn)

		srv.stall()
		t.Cleanup(srv.resume)
		res := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 1)); res <- err }()
		synctest.Wait() // the Read waits for the stalled server
		require.Empty(t, res, "the Read returned before CloseRead")
		require.NoError(t, sc.CloseRead())
		err = await(t, 2*time.Second, "Read after CloseRead", res)
		require.True(t, err == io.EOF, "got %#v", err)
		srv.resume()
		_, err = c.Write([]byte("still writable"))
		require.NoError(t, err)

		srv.drop()
		synctest.Wait() // the client has seen the connection end
		_, err = c.Write([]byte("x"))
		require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost)
		_, err = c.Read(make([]byte, 1))
		require.True(t, err == io.EOF, "got %#v", err)
	})
}

// TestPoolKeepaliveStallCycles: a Pool of two SSH connections with
// keepalive, its server stalled and resumed three times while four workers
// dial and round-trip with bounded contexts. Nothing may hang; every error
// must be one a stall explains (ErrServerNotResponding, a context's end, a
// lost or closed connection); once the server is back, dials succeed; and
// Close leaves no goroutine (goleak in TestMain).
func TestPoolKeepaliveStallCycles(t *testing.T) {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	cfg := srv.ClientConfig()
	cfg.Timeout = 0 // the dials' contexts bound the handshakes
	pool := sshdial.NewPool(2, func(ctx context.Context) (*ssh.Client, error) {
		return sshdial.DialSSH(ctx, srv.Addr(), cfg)
	}, sshdial.WithKeepalive(50*time.Millisecond, 200*time.Millisecond))
	target := serve(t, "tcp", echo).Addr().String()

	var stop atomic.Bool
	var ok, failed atomic.Int32
	var wg sync.WaitGroup
	unexpected := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for k := 0; !stop.Load() && k < 2000; k++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := func() error {
					c, err := pool.DialContext(ctx, "tcp", target)
					if err != nil {
						return err
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(time.Second))
					if _, err := c.Write([]byte("ping")); err != nil {
						return err
					}
					_, err = io.ReadFull(c, make([]byte, 4))
					return err
				}()
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, sshdial.ErrServerNotResponding),
					errors.Is(err, context.DeadlineExceeded),
					errors.Is(err, os.ErrDeadlineExceeded),
					errors.Is(err, sshdial.ErrSSHConnectionLost),
					errors.Is(err, sshdial.ErrSSHConnectionClosed):
					failed.Add(1)
				default:
					select {
					case unexpected <- err:
					default:
					}
				}
				if errors.Is(err, io.EOF) {
					select {
					case unexpected <- err:
					default:
					}
				}
			}
		})
	}
	// Real-time sleeps on purpose: they are the phases of the stall cycle,
	// through which the workers under test go on dialing over real sockets.
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		srv.Stall()
		time.Sleep(700 * time.Millisecond)
		srv.Resume()
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, 20*time.Second, "the workers", done)
	close(unexpected)
	for err := range unexpected {
		t.Errorf("unexpected error: %v", err)
	}
	t.Logf("%d round trips, %d failed during stalls", ok.Load(), failed.Load())
	// Both must have happened, or the test proved nothing: round trips
	// between the stalls, and failures that the stalls explain.
	require.Positive(t, ok.Load(), "no round trip succeeded between the stalls")
	require.Positive(t, failed.Load(), "no dial or round trip failed during the stalls: the stalls were not seen")

	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pool.DialContext(ctx, "tcp", target)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 4))
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the Pool works again after the last resume")
	testutil.Within(t, 10*time.Second, "pool.Close", func() { pool.Close() })
}

// poolDialDuringStall makes a Pool of one SSH connection with keepalive
// whose dial function uses cfgTimeout, stalls its server after one round
// trip, and returns what a Pool.Dial (no context) then returns, or fails
// the test if it has not returned within 15s of the stall.
func poolDialDuringStall(t *testing.T, cfgTimeout time.Duration) error {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	cfg := srv.ClientConfig()
	cfg.Timeout = cfgTimeout
	pool := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		return sshdial.DialSSH(ctx, srv.Addr(), cfg)
	}, sshdial.WithKeepalive(100*time.Millisecond, 300*time.Millisecond))
	t.Cleanup(func() { pool.Close() })
	target := serve(t, "tcp", echo).Addr().String()
	c, err := pool.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))
	c.Close()

	srv.Stall()
	t.Cleanup(srv.Resume) // runs before srv.Close and pool.Close
	stalled := time.Now()
	res := backgroundDial(pool, target)
	err = await(t, 15*time.Second, "Pool.Dial during the stall", res)
	t.Logf("Pool.Dial returned %v after the stall: %v", time.Since(stalled), err)
	return err
}

// TestPoolDialWithoutContextOnStalledServer: Pool.Dial (no context)
// through a Pool whose only server stalls returns once the keepalive check
// fails and the retry's handshake times out (config.Timeout).
func TestPoolDialWithoutContextOnStalledServer(t *testing.T) {
	require.ErrorIs(t, poolDialDuringStall(t, 2*time.Second), sshdial.ErrServerNotResponding)
}

// TestPoolDialWithoutContextOrTimeoutOnStalledServer: the same with a
// dial function that has no timeout of its own (config.Timeout 0, as
// ssh.ClientConfig's default). The keepalive check fails the first try with
// ErrServerNotResponding within half a second; the Pool must return that,
// as a Dialer with keepalive does, and not wait out the stall.
//
// A regression test: the Pool retried such a dial on a new SSH connection,
// whose handshake to the stalled server never ended. A dial that meets a
// silent SSH connection now retries only on another one that is up.
func TestPoolDialWithoutContextOrTimeoutOnStalledServer(t *testing.T) {
	err := poolDialDuringStall(t, 0)
	require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
}
