package sshdial_test

// (*Conn).WriteTo under stress: while WriteTo waits, the Conn's
// reader goroutine writes to WriteTo's writer, so the contract to break is
// that no byte is lost, duplicated or reordered however WriteTo, Read,
// deadlines, Close and odd writers interleave; that WriteTo's count is what
// its writer took; and that the writer is never called after WriteTo
// returned, nor by two goroutines at once. Loops are bounded in count and
// time.

import (
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

var errAdvWriter = errors.New("adversarial writer failed")

// advWriter is a WriteTo writer that misbehaves at random: it takes all of
// p, takes part of p and says nothing (a short write), takes part of p and
// fails, or dawdles first. It hashes what it took, counts it, and records
// calls made while no WriteTo of its own was running, and calls that
// overlapped.
type advWriter struct {
	mu       sync.Mutex // guards rng and hash; not what makes calls sequential
	rng      *mrand.Rand
	hash     io.Writer
	took     atomic.Int64
	active   atomic.Bool  // a WriteTo with this writer is running
	late     atomic.Int32 // calls while no WriteTo was running
	inWrite  atomic.Int32
	overlaps atomic.Int32 // calls that began while another was in progress
}

func (w *advWriter) Write(p []byte) (int, error) {
	if !w.active.Load() {
		w.late.Add(1)
	}
	if w.inWrite.Add(1) > 1 {
		w.overlaps.Add(1)
	}
	defer w.inWrite.Add(-1)
	w.mu.Lock()
	mode := w.rng.IntN(10)
	cut := 0
	if len(p) > 0 {
		cut = w.rng.IntN(len(p))
	}
	pause := time.Duration(w.rng.IntN(300)) * time.Microsecond
	w.mu.Unlock()

	n, err := len(p), error(nil)
	switch mode {
	case 0: // a short write
		n = cut
	case 1: // a partial write that fails
		n, err = cut, errAdvWriter
	case 2:
		time.Sleep(pause) // a slow writer is the behaviour under test
	}
	w.mu.Lock()
	w.hash.Write(p[:n])
	w.mu.Unlock()
	w.took.Add(int64(n))
	return n, err
}

// TestWriteToStreamIntactUnderChurn receives a 16 MiB random stream
// through a random mix of WriteTo (with advWriter) and Read of random
// sizes, while another goroutine moves the read deadline every millisecond
// or so, often into the past. The bytes received must hash as the bytes
// sent; each WriteTo must report exactly what its writer took; the writer
// must never be called outside a WriteTo, nor twice at once.
func TestWriteToStreamIntactUnderChurn(t *testing.T) {
	size := 16 << 20
	if testing.Short() {
		size = 4 << 20
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(newRandReader(9), int64(size)))

	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := serve(t, "tcp", func(c net.Conn) {
			io.Copy(c, io.LimitReader(newRandReader(9), int64(size)))
		})
		nc, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer nc.Close()
		conn := nc.(*sshdial.Conn)

		got := sha256.New()
		w := &advWriter{rng: mrand.New(mrand.NewPCG(1, 2)), hash: got}

		stop := make(chan struct{})
		var churn sync.WaitGroup
		churn.Go(func() {
			rng := mrand.New(mrand.NewPCG(3, 4))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(200+rng.IntN(1500)) * time.Microsecond):
				}
				conn.SetReadDeadline(time.Now().Add(time.Duration(rng.IntN(4000)-1000) * time.Microsecond))
			}
		})
		defer churn.Wait()
		defer close(stop)

		rng := mrand.New(mrand.NewPCG(5, 6))
		buf := make([]byte, 100_000)
		var received int64
		var writeTos, reads, timeouts, writerErrs int
		start := time.Now()
		for done := false; !done; {
			require.Less(t, time.Since(start), 90*time.Second, "the stream did not end (received %d of %d)", received, size)
			if rng.IntN(3) == 0 {
				reads++
				n, err := conn.Read(buf[:1+rng.IntN(len(buf))])
				w.mu.Lock()
				got.Write(buf[:n])
				w.mu.Unlock()
				received += int64(n)
				switch {
				case err == io.EOF:
					done = true
				case errors.Is(err, os.ErrDeadlineExceeded):
					timeouts++
				default:
					require.NoError(t, err)
				}
				continue
			}
			writeTos++
			before := w.took.Load()
			w.active.Store(true)
			n, err := conn.WriteTo(w)
			w.active.Store(false)
			require.Equal(t, w.took.Load()-before, n, "WriteTo's count is not what its writer took")
			received += n
			switch {
			case err == nil:
				done = true
			case errors.Is(err, os.ErrDeadlineExceeded):
				timeouts++
			case errors.Is(err, errAdvWriter), errors.Is(err, io.ErrShortWrite):
				writerErrs++
			default:
				require.NoError(t, err)
			}
		}
		t.Logf("%d WriteTo, %d Read, %d timeouts, %d writer errors", writeTos, reads, timeouts, writerErrs)
		require.Zero(t, w.late.Load(), "the writer was called after its WriteTo returned")
		require.Zero(t, w.overlaps.Load(), "the writer was called by two goroutines at once")
		require.EqualValues(t, size, received)
		require.Equal(t, want.Sum(nil), got.Sum(nil), "bytes lost, duplicated or reordered")
	})
}

// TestWriteToConcurrentCallsThenClose: two WriteTo loops (each with its
// own writer), two Read loops and a deadline churner run on one Conn while
// the target streams without end; then Close. Every loop must end with
// net.ErrClosed within a bounded time, no writer may be called after its
// WriteTo returned, and (under -race and goleak) nothing races or leaks.
func TestWriteToConcurrentCallsThenClose(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		l := serve(t, "tcp", func(c net.Conn) { io.Copy(c, newRandReader(3)) })
		nc, err := sshdial.New(client).Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		conn := nc.(*sshdial.Conn)

		var wg sync.WaitGroup
		var closed atomic.Bool
		errs := make(chan error, 8)
		var writers []*advWriter
		for i := range 2 {
			w := &advWriter{rng: mrand.New(mrand.NewPCG(uint64(i), 7)), hash: io.Discard}
			writers = append(writers, w)
			wg.Go(func() {
				for {
					w.active.Store(true)
					_, err := conn.WriteTo(w)
					w.active.Store(false)
					if errors.Is(err, net.ErrClosed) {
						errs <- nil
						return
					}
					if err == nil || !(errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errAdvWriter) || errors.Is(err, io.ErrShortWrite)) {
						errs <- err
						return
					}
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				buf := make([]byte, 3000)
				for {
					_, err := conn.Read(buf)
					if errors.Is(err, net.ErrClosed) {
						errs <- nil
						return
					}
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(8, 9))
			for !closed.Load() {
				time.Sleep(time.Duration(100+rng.IntN(1000)) * time.Microsecond) // the mover's pace
				conn.SetReadDeadline(time.Now().Add(time.Duration(rng.IntN(3000)-500) * time.Microsecond))
			}
		})

		time.Sleep(time.Second) // on purpose: the churn under test runs for a second before Close
		closeAt := time.Now()
		closed.Store(true)
		conn.Close()
		for range 4 {
			require.NoError(t, await(t, 10*time.Second, "a call after Close", errs))
		}
		wg.Wait()
		require.Less(t, time.Since(closeAt), 10*time.Second)
		for i, w := range writers {
			require.Zero(t, w.late.Load(), "writer %d was called after its WriteTo returned", i)
			require.Zero(t, w.overlaps.Load(), "writer %d was called by two goroutines at once", i)
			require.NotZero(t, w.took.Load(), "writer %d never took anything: the test did not exercise it", i)
		}
	})
}

// gateWriter blocks each Write until the test lets it through with a
// function that decides its result (it may panic); it records the calls
// made after the test declared the WriteTo over.
type gateWriter struct {
	entered chan []byte
	release chan func(p []byte) (int, error)
	over    atomic.Bool
	late    atomic.Int32
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan []byte, 16), release: make(chan func([]byte) (int, error))}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	if w.over.Load() {
		w.late.Add(1)
	}
	w.entered <- append([]byte(nil), p...)
	return (<-w.release)(p)
}

func takeAll(p []byte) (int, error) { return len(p), nil }

// TestWriteToBlockedWriterThenClose: Close while the writer is stuck in
// Write. WriteTo must not return while the writer is in Write (it would be
// written to after returning), must return net.ErrClosed once the writer
// lets go, and the writer must not be called again though the target keeps
// sending. Every goroutine of the bubble must end.
func TestWriteToBlockedWriterThenClose(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		w := newGateWriter()
		res := make(chan ioResult, 1)
		go func() {
			n, err := conn.WriteTo(w)
			w.over.Store(true)
			res <- ioResult{n, err}
		}()
		target.Write([]byte("stuck"))
		require.Equal(t, "stuck", string(<-w.entered))
		conn.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("WriteTo returned (%v) while its writer was in Write", r.err)
		default:
		}
		go target.Write([]byte("more"))
		w.release <- takeAll
		r := <-res
		require.ErrorIs(t, r.err, net.ErrClosed)
		require.EqualValues(t, 5, r.n)
		synctest.Wait()
		require.Zero(t, w.late.Load(), "the writer was called after WriteTo returned")
		require.Empty(t, w.entered)
	})
}

// TestWriteToOddWriterCounts: writers that return counts out of range
// with a nil error. More than len(p) counts as len(p); a short or negative
// count is io.ErrShortWrite, counts only what was taken (never below
// zero), and leaves the rest for Read. Both for data from the reader
// goroutine and for what a partial Read left over.
func TestWriteToOddWriterCounts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ret       func(p []byte) int
		wantN     int64
		wantShort bool
		rest      string
	}{
		{"TooMany", func(p []byte) int { return len(p) + 100 }, 6, false, ""},
		{"Negative", func(p []byte) int { return -7 }, 0, true, "abcdef"},
		{"Short", func(p []byte) int { return 2 }, 2, true, "cdef"},
		{"Zero", func(p []byte) int { return 0 }, 0, true, "abcdef"},
	} {
		for _, leftover := range []bool{false, true} {
			name := tc.name
			if leftover {
				name += "/Leftover"
			}
			t.Run(name, func(t *testing.T) {
				inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
					if leftover {
						// Read 1 byte of "xabcdef": "abcdef" is left over.
						target.Write([]byte("xabcdef"))
						synctest.Wait()
						_, err := io.ReadFull(conn, make([]byte, 1))
						require.NoError(t, err)
					} else {
						target.Write([]byte("abcdef"))
					}
					if !tc.wantShort {
						target.Close() // the writer takes everything: run to the end
					}
					calls := 0
					n, err := conn.WriteTo(writerFunc(func(p []byte) (int, error) {
						calls++
						return tc.ret(p), nil
					}))
					if tc.wantShort {
						require.ErrorIs(t, err, io.ErrShortWrite)
						require.Equal(t, tc.wantN, n)
						require.Equal(t, 1, calls)
						buf := make([]byte, len(tc.rest))
						_, err = io.ReadFull(conn, buf)
						require.NoError(t, err)
						require.Equal(t, tc.rest, string(buf))
						return
					}
					require.NoError(t, err, "WriteTo should have run to the end")
					require.Equal(t, tc.wantN, n)
				})
			})
		}
	}
}

// TestWriteToTooManyThenEOF is TestWriteToOddWriterCounts's TooMany
// case run to the end of the data: the count stays the bytes sent.
func TestWriteToTooManyThenEOF(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		res := backgroundWriteTo(conn, writerFunc(func(p []byte) (int, error) { return len(p) * 3, nil }))
		target.Write([]byte("abc"))
		synctest.Wait()
		target.Write([]byte("defgh"))
		target.Close()
		r := <-res
		require.NoError(t, r.err)
		require.EqualValues(t, 8, r.n)
	})
}

// When WriteTo is ended by CloseRead, Close or its read deadline while
// its writer is in Write, and that Write then fails or panics, the failure
// still reaches WriteTo's caller: the panic is raised again there, and the
// error comes before the one of the stop (after CloseRead, WriteTo must not
// report success though its writer failed).
func TestWriteToWriterFailureDuringStopIsNotLost(t *testing.T) {
	stops := []struct {
		name string
		stop func(conn *sshdial.Conn)
	}{
		{"CloseRead", func(conn *sshdial.Conn) { conn.CloseRead() }},
		{"Close", func(conn *sshdial.Conn) { conn.Close() }},
		{"Deadline", func(conn *sshdial.Conn) { conn.SetReadDeadline(time.Now()) }},
	}
	for _, st := range stops {
		t.Run(st.name+"/Panic", func(t *testing.T) {
			inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
				w := newGateWriter()
				res := make(chan any, 1)
				go func() {
					defer func() { res <- recover() }()
					_, err := conn.WriteTo(w)
					res <- err
				}()
				target.Write([]byte("data"))
				<-w.entered
				st.stop(conn)
				synctest.Wait()
				w.release <- func([]byte) (int, error) { panic("writer bug") }
				assert.Equal(t, "writer bug", <-res, "the writer's panic was swallowed")
			})
		})
		t.Run(st.name+"/Error", func(t *testing.T) {
			inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
				w := newGateWriter()
				res := backgroundWriteTo(conn, w)
				target.Write([]byte("data"))
				<-w.entered
				st.stop(conn)
				synctest.Wait()
				boom := errors.New("disk full")
				w.release <- func([]byte) (int, error) { return 0, boom }
				r := <-res
				assert.ErrorIs(t, r.err, boom, "WriteTo did not return its writer's error")
			})
		})
	}
}
