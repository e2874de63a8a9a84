// Package testutil holds the helpers shared by the tests of sshdial, sshtest
// and integration: targets to dial through a tunnel, an echo round trip, and
// a bound on how long a call may block.
//
// The helpers that take a testing.TB fail the test through it, so they must
// be called on the test's goroutine. The package must not import sshdial:
// the internal tests of package sshdial use it too.
package testutil

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Serve listens on network and runs handle for each connection in a
// goroutine of its own, closing the connection when handle returns. It
// listens on 127.0.0.1 for "tcp" and "tcp4", on [::1] for "tcp6", and in a
// ShortTempDir for "unix".
//
// When the test ends, the listener and every connection still open are
// closed, and the handlers have returned.
func Serve(t testing.TB, network string, handle func(net.Conn)) net.Listener {
	t.Helper()
	var addr string
	switch network {
	case "tcp", "tcp4":
		addr = "127.0.0.1:0"
	case "tcp6":
		addr = "[::1]:0"
	case "unix":
		addr = filepath.Join(ShortTempDir(t), "s")
	default:
		t.Fatalf("testutil.Serve: unknown network %q", network)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("testutil.Serve: %v", err)
	}
	ServeListener(t, l, handle)
	return l
}

// ServeListener is Serve on a listener of the caller's, such as one an SSH
// server forwards to the client. It closes l when the test ends.
func ServeListener(t testing.TB, l net.Listener, handle func(net.Conn)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ended bool // the test has ended
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if ended { // accepted as the test ended: the cleanup missed it
				mu.Unlock()
				c.Close()
				continue
			}
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		ended = true
		for c := range conns {
			c.Close() // handlers blocked on a stalled tunnel return
		}
		mu.Unlock()
		wg.Wait()
	})
}

// TCPPair returns the two ends of a TCP connection on 127.0.0.1: client,
// which is closed when the test ends, and accepted, the end a listener
// accepted, which is the caller's. The listener is closed already.
func TCPPair(t testing.TB) (client, accepted *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil.TCPPair: %v", err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("testutil.TCPPair: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	a, err := l.Accept()
	if err != nil {
		t.Fatalf("testutil.TCPPair: %v", err)
	}
	return c.(*net.TCPConn), a.(*net.TCPConn)
}

// Echo is a handler for Serve that writes back what it reads, until EOF.
func Echo(c net.Conn) { io.Copy(c, c) }

// Flood is a handler for Serve that writes 32 KiB chunks until a write
// fails: a download that never ends by itself.
func Flood(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// EchoServer is Serve(t, network, Echo).
func EchoServer(t testing.TB, network string) net.Listener {
	t.Helper()
	return Serve(t, network, Echo)
}

// ShortTempDir returns a new temporary directory, removed when the test
// ends, whose path is short enough for a unix socket: t.TempDir's can exceed
// the 108-byte limit.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sshdial")
	if err != nil {
		t.Fatalf("testutil.ShortTempDir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// RoundTrip writes msg to c and reads it back, as from an Echo target. It
// returns an error if either fails or the bytes come back changed; it does
// not touch a testing.TB, so it may run on any goroutine.
func RoundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("round trip: write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("round trip: read: %w", err)
	}
	if !bytes.Equal(got, []byte(msg)) {
		return fmt.Errorf("round trip: sent %q, got %q back", msg, got)
	}
	return nil
}

// Within runs f in a goroutine of its own and returns how long it took. If
// f has not returned after d, Within fails the test at once, naming what.
//
// f runs off the test's goroutine, so it must not call t.FailNow, t.Fatal or
// require's functions: it should leave its results in variables, which the
// caller checks after Within has returned.
func Within(t testing.TB, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return time.Since(start)
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, d)
		return 0
	}
}

// SyncBuffer is a bytes.Buffer that output written by other goroutines (a
// logger, a child process's copier) may be written to while a test reads
// it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Reset forgets everything written so far.
func (b *SyncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
