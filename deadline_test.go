package sshdial_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/memconn"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// inBubble runs f inside a synctest bubble with a Conn through an sshtest
// server over in-memory pipes, and the target end of that Conn. Time in the
// bubble is fake: it moves only when every goroutine waits, so deadlines
// are tested to the nanosecond and without sleeping.
func inBubble(t *testing.T, f func(t *testing.T, conn *sshdial.Conn, target net.Conn)) {
	synctest.Test(t, func(t *testing.T) {
		srv := sshtest.NewUnstartedServer()
		targets := make(chan net.Conn, 1)
		srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
			ours, theirs := memconn.Pipe()
			targets <- theirs
			return ours, nil
		}
		clientEnd, serverEnd := memconn.Pipe()
		srv.ServeConn(serverEnd)
		sc, chans, reqs, err := ssh.NewClientConn(clientEnd, "memory", srv.ClientConfig())
		require.NoError(t, err)
		client := ssh.NewClient(sc, chans, reqs)

		c, err := sshdial.New(client).Dial("tcp", "backend.internal:5432")
		require.NoError(t, err)
		target := <-targets

		f(t, c.(*sshdial.Conn), target)

		c.Close()
		target.Close()
		client.Close()
		srv.Close()
	})
}

func TestDeadlineFiresOnTime(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		start := time.Now()
		conn.SetReadDeadline(start.Add(3 * time.Second))
		_, err := conn.Read(make([]byte, 10))
		requireTimeout(t, err, "read")
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestDeadlineSetWhileBlocked(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		errc := make(chan error, 1)
		go func() {
			_, err := conn.Read(make([]byte, 10))
			errc <- err
		}()
		synctest.Wait() // the Read is blocked
		start := time.Now()
		time.Sleep(time.Minute)
		conn.SetReadDeadline(time.Now().Add(time.Second))
		requireTimeout(t, <-errc, "read")
		require.Equal(t, time.Minute+time.Second, time.Since(start))

		// A past deadline set while blocked wakes at once.
		go func() {
			_, err := conn.Read(make([]byte, 10))
			errc <- err
		}()
		conn.SetReadDeadline(time.Time{})
		synctest.Wait()
		before := time.Now()
		conn.SetReadDeadline(before.Add(-time.Second))
		requireTimeout(t, <-errc, "read")
		require.Equal(t, before, time.Now())
	})
}

func TestDeadlineRefreshedAfterFiring(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err := conn.Read(make([]byte, 10))
		requireTimeout(t, err, "read")

		// Data that arrives while the deadline has passed is not returned.
		target.Write([]byte("hello"))
		synctest.Wait()
		n, err := conn.Read(make([]byte, 10))
		require.Zero(t, n)
		requireTimeout(t, err, "read")

		// Moving the deadline makes Read work again, with nothing lost.
		conn.SetReadDeadline(time.Now().Add(time.Hour))
		buf := make([]byte, 5)
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "hello", string(buf))

		// Moving a pending deadline later keeps Read blocked until then.
		start := time.Now()
		conn.SetReadDeadline(start.Add(time.Second))
		conn.SetReadDeadline(start.Add(5 * time.Second))
		_, err = conn.Read(buf)
		requireTimeout(t, err, "read")
		require.Equal(t, 5*time.Second, time.Since(start))

		// Clearing it removes it.
		conn.SetReadDeadline(time.Now().Add(time.Second))
		conn.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(time.Hour)
			target.Write([]byte("late!"))
		}()
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "late!", string(buf))
	})
}

func TestWriteDeadlineReportsCommittedBytes(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		// The target reads nothing, so the channel window, the pipe and
		// the send buffer fill up.
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i % 251)
		}
		start := time.Now()
		conn.SetWriteDeadline(start.Add(2 * time.Second))
		n, err := conn.Write(big)
		requireTimeout(t, err, "write")
		require.Equal(t, 2*time.Second, time.Since(start))
		require.Positive(t, n)
		require.Less(t, n, len(big))

		// A past deadline commits nothing.
		m, err := conn.Write(big[n:])
		require.Zero(t, m)
		requireTimeout(t, err, "write")

		// After moving the deadline, the rest follows in order.
		conn.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := conn.Write(big[n:])
			if err == nil {
				err = conn.CloseWrite()
			}
			done <- err
		}()
		got, err := io.ReadAll(target)
		require.NoError(t, err)
		require.NoError(t, <-done)
		require.Equal(t, len(big), len(got))
		require.Equal(t, big, got)
	})
}

func TestReadAndWriteDeadlinesAreIndependent(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		conn.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := conn.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(target, buf)
		require.NoError(t, err)

		conn.SetReadDeadline(time.Time{})
		conn.SetWriteDeadline(time.Now().Add(-time.Second))
		target.Write([]byte("pong"))
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf))
	})
}

// stuckWriter is an io.Writer for WriteTo whose Write waits for a value on
// release before it takes p, and records what it took.
type stuckWriter struct {
	release chan error // nil error: take all of p
	entered chan struct{}
	got     []byte
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{release: make(chan error), entered: make(chan struct{}, 16)}
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	if err := <-w.release; err != nil {
		w.got = append(w.got, p[:1]...)
		return 1, err
	}
	w.got = append(w.got, p...)
	return len(p), nil
}

// WriteTo (what io.Copy calls) hands data straight to its writer from the
// reader goroutine. What a Read left over goes first, and the clean end of
// the data ends it with a nil error.
func TestWriteToLeftoverFirstThenEOF(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		target.Write([]byte("hello, world"))
		buf := make([]byte, 5)
		_, err := io.ReadFull(conn, buf)
		require.NoError(t, err)

		var got bytes.Buffer
		res := backgroundWriteTo(conn, &got)
		synctest.Wait()
		target.Write([]byte(" and more"))
		target.Close()
		r := <-res
		require.NoError(t, r.err)
		require.Equal(t, ", world and more", got.String())
		require.EqualValues(t, got.Len(), r.n)
	})
}

// A read deadline ends a waiting WriteTo, but only once a Write of its
// writer in progress has returned: after WriteTo returns, the writer is
// never written to again, and later data goes to Read.
func TestWriteToDeadlineWaitsForItsWriter(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		w := newStuckWriter()
		res := backgroundWriteTo(conn, w)
		target.Write([]byte("first"))
		<-w.entered // the reader is in w.Write

		start := time.Now()
		conn.SetReadDeadline(start.Add(time.Second))
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("WriteTo returned %v while its writer was in Write", r.err)
		default:
		}
		w.release <- nil
		r := <-res
		requireTimeout(t, r.err, "read")
		require.EqualValues(t, 5, r.n)
		require.Equal(t, "first", string(w.got))

		conn.SetReadDeadline(time.Time{})
		target.Write([]byte("second"))
		buf := make([]byte, 6)
		_, err := io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "second", string(buf))
		require.Equal(t, "first", string(w.got), "written to after WriteTo returned")
	})
}

// A failing writer ends WriteTo with its error, and the bytes it did not
// take are left for Read.
func TestWriteToWriterErrorKeepsTheRest(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		w := newStuckWriter()
		res := backgroundWriteTo(conn, w)
		target.Write([]byte("abcdefgh"))
		<-w.entered
		boom := errors.New("disk full")
		w.release <- boom
		r := <-res
		require.ErrorIs(t, r.err, boom)
		require.EqualValues(t, 1, r.n)
		require.Equal(t, "a", string(w.got))

		buf := make([]byte, 7)
		_, err := io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "bcdefgh", string(buf))
	})
}

// Close and CloseRead wake a waiting WriteTo, as they wake Read.
func TestWriteToWokenByCloseAndCloseRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(conn *sshdial.Conn)
		wantErr error
	}{
		{"CloseRead", func(conn *sshdial.Conn) { conn.CloseRead() }, nil},
		{"Close", func(conn *sshdial.Conn) { conn.Close() }, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
				res := backgroundWriteTo(conn, io.Discard)
				synctest.Wait()
				tc.stop(conn)
				r := <-res
				if tc.wantErr == nil {
					require.NoError(t, r.err)
				} else {
					require.ErrorIs(t, r.err, tc.wantErr)
				}
			})
		})
	}
}

// A panic in WriteTo's writer, which the reader goroutine calls, reaches
// WriteTo's caller, who can recover it as with io.Copy's own writes.
func TestWriteToWriterPanicReachesTheCaller(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		type boom struct{ msg string }
		res := make(chan any, 1)
		go func() {
			defer func() { res <- recover() }()
			conn.WriteTo(writerFunc(func(p []byte) (int, error) { panic(boom{"in Write"}) }))
		}()
		target.Write([]byte("data"))
		require.Equal(t, boom{"in Write"}, <-res)

		buf := make([]byte, 4)
		_, err := io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "data", string(buf), "the bytes the writer did not take are left for Read")
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
