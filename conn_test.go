package sshdial_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/nettest"
)

// TestConformance runs x/net's net.Conn conformance suite on Conns through
// each SSH server, over TCP and over unix sockets.
func TestConformance(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		t.Run("tcp", func(t *testing.T) { nettest.TestConn(t, pipeMaker(client, "tcp")) })
		t.Run("unix", func(t *testing.T) { nettest.TestConn(t, pipeMaker(client, "unix")) })
	})
}

// TestCloseWriteThenReadReply checks the half-close that request/response
// protocols rely on: the target reads to EOF, then answers and closes.
func TestCloseWriteThenReadReply(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := testutil.Serve(t, "tcp", func(c net.Conn) {
			h := sha256.New()
			n, err := io.Copy(h, c) // to EOF
			if err != nil {
				return
			}
			c.Write([]byte("got "))
			c.Write(h.Sum(nil))
			c.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
		})
		conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()

		payload := bytes.Repeat([]byte("half-close "), 50_000) // several windows' worth of packets
		_, err = conn.Write(payload)
		require.NoError(t, err)
		require.NoError(t, conn.(*sshdial.Conn).CloseWrite())

		_, err = conn.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.EPIPE, "Write after CloseWrite")

		reply, err := io.ReadAll(conn)
		require.NoError(t, err, "reading the reply to EOF")
		sum := sha256.Sum256(payload)
		n := len(payload)
		want := append(append([]byte("got "), sum[:]...), byte(n>>16), byte(n>>8), byte(n))
		require.Equal(t, want, reply)
	})
}

// TestCloseRead checks that CloseRead wakes a blocked Read with io.EOF,
// discards later input, and leaves writing working.
func TestCloseRead(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		client := b.client(t)
		got := make(chan []byte, 1)
		addr := b.serve(func(c net.Conn) {
			buf := make([]byte, 5)
			io.ReadFull(c, buf)
			got <- buf
			c.Write([]byte("ignored"))
			io.Copy(io.Discard, c)
		})
		conn, err := sshdial.New(client).Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		sc := conn.(*sshdial.Conn)

		readErr := make(chan error, 1)
		go func() {
			_, err := sc.Read(make([]byte, 10))
			readErr <- err
		}()
		synctest.Wait() // the Read waits for data
		require.Empty(t, readErr, "the Read returned before CloseRead")
		require.NoError(t, sc.CloseRead())
		select {
		case err := <-readErr:
			require.Equal(t, io.EOF, err)
		case <-time.After(5 * time.Second):
			t.Fatal("CloseRead did not wake Read")
		}
		_, err = sc.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, []byte("hello"), <-got)
		_, err = sc.Read(make([]byte, 10))
		require.Equal(t, io.EOF, err)
	})
}

// stalledConn returns a Conn through an sshtest server that is then
// stalled, with the connection's target.
func stalledConn(t *testing.T) (*sshdial.Conn, func()) {
	srv, client := newSSHTest(t)
	l := testutil.Serve(t, "tcp", func(c net.Conn) { io.Copy(io.Discard, c) })
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	srv.Stall()
	return conn.(*sshdial.Conn), srv.Resume
}

// stalledBubbleConn is stalledConn in a bubble (inBubbleNet).
func stalledBubbleConn(t *testing.T, b *bubble) *sshdial.Conn {
	addr := b.serve(func(c net.Conn) { io.Copy(io.Discard, c) })
	conn, err := sshdial.New(b.client(t)).Dial("tcp", addr)
	require.NoError(t, err)
	b.srv.Stall()
	t.Cleanup(b.srv.Resume)
	return conn.(*sshdial.Conn)
}

func TestCloseWakesReadWhileServerStalled(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		conn := stalledBubbleConn(t, b)
		errc := make(chan error, 1)
		go func() {
			_, err := conn.Read(make([]byte, 100))
			errc <- err
		}()
		synctest.Wait() // the Read waits for the stalled server
		require.Empty(t, errc, "the Read returned before Close")
		var closeErr, readErr error
		testutil.Within(t, time.Second, "Close", func() { closeErr = conn.Close() })
		require.NoError(t, closeErr)
		testutil.Within(t, time.Second, "Read after Close", func() { readErr = <-errc })
		require.ErrorIs(t, readErr, net.ErrClosed)
		var opErr *net.OpError
		require.ErrorAs(t, readErr, &opErr)
		require.Equal(t, "read", opErr.Op)
		require.NoError(t, conn.Close(), "a second Close")
	})
}

func TestCloseWakesWriteWhileServerStalled(t *testing.T) {
	inBubbleNet(t, func(t *testing.T, b *bubble) {
		conn := stalledBubbleConn(t, b)
		big := make([]byte, 32<<20) // far more than the window and buffers hold
		type result struct {
			n   int
			err error
		}
		res := make(chan result, 1)
		go func() {
			n, err := conn.Write(big)
			res <- result{n, err}
		}()
		synctest.Wait() // every buffer and window is full: the Write waits
		require.Empty(t, res, "the Write returned before Close")
		testutil.Within(t, time.Second, "Close", func() { conn.Close() })
		var r result
		testutil.Within(t, time.Second, "Write after Close", func() { r = <-res })
		require.ErrorIs(t, r.err, net.ErrClosed)
		require.Less(t, r.n, len(big))
	})
}

// collector serves a target that reads a connection to its end and sends
// what it read.
func collector(t *testing.T) (net.Listener, <-chan []byte) {
	got := make(chan []byte, 1)
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	})
	return l, got
}

// TestTimedOutWriteCommitsExactly checks the contract of a Write that times
// out on a stalled server: the n bytes it reports are sent, they are p[:n],
// nothing after them is, and the caller may reuse p at once.
func TestTimedOutWriteCommitsExactly(t *testing.T) {
	srv, client := newSSHTest(t)
	l, got := collector(t)
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	srv.Stall()

	p := make([]byte, 16<<20) // more than the window and buffers hold
	for i := range p {
		p[i] = byte(i % 251)
	}
	want := bytes.Clone(p)
	require.NoError(t, conn.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	n, err := conn.Write(p)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Greater(t, n, 0)
	require.Less(t, n, len(p))
	for i := range p {
		p[i] = 0xEE // what the writer must no longer read
	}

	srv.Resume()
	require.NoError(t, conn.SetWriteDeadline(time.Time{}))
	require.NoError(t, conn.(*sshdial.Conn).CloseWrite())
	select {
	case b := <-got:
		require.Equal(t, n, len(b), "the target got other than the committed bytes")
		require.True(t, bytes.Equal(want[:n], b), "the committed bytes arrived changed")
	case <-time.After(20 * time.Second):
		t.Fatal("the target did not get EOF")
	}
}

// TestDeadlinesFireWhileServerStalled checks real-time deadlines against a
// server that stopped answering. Each deadline is set just before its call,
// after any slow preparation, and the time is measured from there: the call
// returns no earlier than the deadline, and within generous bounds after it,
// even on a loaded machine.
func TestDeadlinesFireWhileServerStalled(t *testing.T) {
	conn, _ := stalledConn(t)
	defer conn.Close()
	const slack = 5 * time.Second

	const readAfter = 100 * time.Millisecond
	buf := make([]byte, 100)
	var n int
	var err error
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(readAfter)))
	testutil.Within(t, readAfter+slack, "Read with a deadline", func() { n, err = conn.Read(buf) })
	require.GreaterOrEqual(t, time.Since(start), readAfter, "Read returned before its deadline")
	require.Zero(t, n)
	requireTimeout(t, err, "read")

	// The Write must commit bytes before its deadline, so the deadline
	// leaves time for that even when the machine is slow to schedule it.
	const writeAfter = 500 * time.Millisecond
	big := make([]byte, 32<<20) // far more than the window and buffers hold
	start = time.Now()
	require.NoError(t, conn.SetWriteDeadline(start.Add(writeAfter)))
	testutil.Within(t, writeAfter+slack, "Write with a deadline", func() { n, err = conn.Write(big) })
	require.GreaterOrEqual(t, time.Since(start), writeAfter, "Write returned before its deadline")
	requireTimeout(t, err, "write")
	require.Positive(t, n, "bytes committed before the deadline")
	require.Less(t, n, len(big))
}

// requireTimeout checks the timeout error contract.
func requireTimeout(t *testing.T, err error, op string) {
	t.Helper()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	ne, ok := err.(net.Error) // a plain assertion, as nettest and many clients do
	require.True(t, ok, "%T is not a net.Error", err)
	require.True(t, ne.Timeout())
	// crypto/tls keeps a connection usable only after Temporary errors.
	tmp, ok := err.(interface{ Temporary() bool })
	require.True(t, ok && tmp.Temporary(), "crypto/tls needs Temporary() == true")
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.Equal(t, op, opErr.Op)
}

func TestEOFIsBare(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := testutil.Serve(t, "tcp", func(c net.Conn) { c.Write([]byte("bye")) })
		conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		got, err := io.ReadAll(conn)
		require.NoError(t, err)
		require.Equal(t, "bye", string(got))
		_, err = conn.Read(make([]byte, 1))
		require.True(t, err == io.EOF, "want io.EOF itself, got %#v", err)
	})
}

func TestUseAfterClose(t *testing.T) {
	_, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	sc := conn.(*sshdial.Conn)
	require.NoError(t, sc.Close())
	_, err = sc.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = sc.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, sc.CloseWrite(), net.ErrClosed)
	assert.ErrorIs(t, sc.CloseRead(), net.ErrClosed)
	assert.ErrorIs(t, sc.SetDeadline(time.Now()), net.ErrClosed)
	assert.ErrorIs(t, sc.SetReadDeadline(time.Now()), net.ErrClosed)
	assert.ErrorIs(t, sc.SetWriteDeadline(time.Now()), net.ErrClosed)
	assert.NoError(t, sc.Close())
}

// TestWriteThenClose checks that Close sends what was written before it, as
// closing a TCP socket does.
func TestWriteThenClose(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l, got := collector(t)
		conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		payload := bytes.Repeat([]byte{7}, 3<<20)
		_, err = conn.Write(payload)
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		select {
		case b := <-got:
			require.Equal(t, len(payload), len(b))
		case <-time.After(20 * time.Second):
			t.Fatal("the target did not receive the data")
		}
	})
}

// TestCloseUnusedConn checks that closing a Conn that was never read or
// written closes its channel (no writer exists to do it), and that the
// target sees the end of the connection.
func TestCloseUnusedConn(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		ended := make(chan error, 1)
		l := testutil.Serve(t, "tcp", func(c net.Conn) {
			_, err := c.Read(make([]byte, 1))
			ended <- err
		})
		conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		select {
		case err := <-ended:
			require.ErrorIs(t, err, io.EOF)
		case <-time.After(10 * time.Second):
			t.Fatal("the target's connection stayed open after Close")
		}
	})
}

// TestLargeTransfer moves 128 MiB each way at once through an echo target
// and compares checksums, receiving through Read and through WriteTo.
func TestLargeTransfer(t *testing.T) {
	size := int64(128 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		for _, via := range []struct {
			name string
			src  func(c net.Conn) io.Reader
		}{
			{"Read", func(c net.Conn) io.Reader { return struct{ io.Reader }{c} }},
			{"WriteTo", func(c net.Conn) io.Reader { return c }},
		} {
			t.Run(via.name, func(t *testing.T) {
				l := testutil.EchoServer(t, "tcp")
				conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
				require.NoError(t, err)
				defer conn.Close()

				var wg sync.WaitGroup
				var sent [32]byte
				var writeErr error
				wg.Go(func() {
					h := sha256.New()
					src := io.TeeReader(io.LimitReader(newRandReader(1), size), h)
					_, writeErr = io.CopyBuffer(conn, src, make([]byte, 100_000)) // not a power of two
					if writeErr == nil {
						writeErr = conn.(*sshdial.Conn).CloseWrite()
					}
					copy(sent[:], h.Sum(nil))
				})
				h := sha256.New()
				n, err := io.CopyBuffer(h, via.src(conn), make([]byte, 77_777))
				wg.Wait()
				require.NoError(t, writeErr)
				require.NoError(t, err)
				require.Equal(t, size, n)
				require.Equal(t, sent[:], h.Sum(nil))
			})
		}
	})
}

// randReader is a fast deterministic source of bytes.
type randReader struct{ r *rand.ChaCha8 }

func newRandReader(seed byte) io.Reader {
	return randReader{rand.NewChaCha8([32]byte{seed})}
}

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func TestConcurrentMethodsAndDeadlineChurn(t *testing.T) {
	_, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				conn.SetDeadline(time.Now().Add(time.Duration(i%5) * time.Millisecond))
				conn.SetReadDeadline(time.Time{})
				conn.SetWriteDeadline(time.Now().Add(time.Hour))
			}
		})
	}
	// Round trips keep working while deadlines churn: a call that times out
	// is repeated for what is left, and no byte is lost or repeated.
	msg := []byte("ping")
	buf := make([]byte, len(msg))
	for i := range 200 {
		for n := 0; n < len(msg); {
			k, err := conn.Write(msg[n:])
			n += k
			if err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded, "round %d", i)
			}
		}
		for n := 0; n < len(buf); {
			k, err := conn.Read(buf[n:])
			n += k
			if err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded, "round %d", i)
			}
		}
		require.Equal(t, msg, buf)
	}
	close(stop)
	wg.Wait()
}

// TestCloseReadBeforeReading checks that input is discarded after CloseRead
// even when Read was never called, so the server is not left blocked on a
// full window.
func TestCloseReadBeforeReading(t *testing.T) {
	_, client := newSSHTest(t)
	sent := make(chan error, 1)
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		_, err := c.Write(make([]byte, 32<<20)) // far more than the window and socket buffers
		sent <- err
	})
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*sshdial.Conn).CloseRead())
	select {
	case err := <-sent:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the target is still blocked: input after CloseRead is not discarded")
	}
}
