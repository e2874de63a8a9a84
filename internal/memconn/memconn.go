// Package memconn provides an in-memory, buffered, full-duplex connection
// for tests. Unlike net.Pipe, a Write returns once its bytes are buffered, so
// both ends of an SSH connection can send their version line at once; and
// every wait is on a sync.Cond, so the pipe works inside a testing/synctest
// bubble, where time only moves when all goroutines wait.
package memconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// bufferSize bounds each direction, like a socket buffer.
const bufferSize = 1 << 20

// Pipe returns the two ends of a connection. Deadlines are not supported:
// the Set*Deadline methods return an error.
func Pipe() (*Conn, *Conn) {
	ab, ba := newHalf(), newHalf()
	a := &Conn{r: ba, w: ab, name: "memconn-a"}
	b := &Conn{r: ab, w: ba, name: "memconn-b"}
	return a, b
}

// half is one direction of the pipe.
type half struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	eof     bool // the writer closed
	readErr bool // the reader closed: writes fail
}

func newHalf() *half {
	h := &half{}
	h.cond.L = &h.mu
	return h
}

func (h *half) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 {
		if h.readErr {
			return 0, net.ErrClosed
		}
		if h.eof {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		h.cond.Wait()
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	if len(h.buf) == 0 {
		h.buf = nil
	}
	h.cond.Broadcast()
	return n, nil
}

func (h *half) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for n < len(p) {
		if h.eof || h.readErr {
			return n, errClosedPipe
		}
		free := bufferSize - len(h.buf)
		if free == 0 {
			h.cond.Wait()
			continue
		}
		k := min(free, len(p)-n)
		h.buf = append(h.buf, p[n:n+k]...)
		n += k
		h.cond.Broadcast()
	}
	return n, nil
}

func (h *half) closeWrite() {
	h.mu.Lock()
	h.eof = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *half) closeRead() {
	h.mu.Lock()
	h.readErr = true
	h.buf = nil
	h.cond.Broadcast()
	h.mu.Unlock()
}

var (
	errClosedPipe  = errors.New("memconn: write on closed pipe")
	errNoDeadlines = errors.New("memconn: deadlines are not supported")
)

// Conn is one end of a Pipe.
type Conn struct {
	r, w *half
	name string
}

func (c *Conn) Read(p []byte) (int, error)  { return c.r.read(p) }
func (c *Conn) Write(p []byte) (int, error) { return c.w.write(p) }

// CloseWrite makes the other end read io.EOF after the buffered data.
func (c *Conn) CloseWrite() error { c.w.closeWrite(); return nil }

// CloseRead discards buffered and later data; the other end's writes fail.
func (c *Conn) CloseRead() error { c.r.closeRead(); return nil }

// Close closes both directions: reading first, so that a Read of this end
// fails with net.ErrClosed, as on a closed socket, and never sees the
// io.EOF of a peer that reacted to this end's EOF.
func (c *Conn) Close() error {
	c.r.closeRead()
	c.w.closeWrite()
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return addr(c.name) }
func (c *Conn) RemoteAddr() net.Addr { return addr(c.name) }
func (c *Conn) SetDeadline(t time.Time) error {
	return &os.PathError{Op: "set", Path: c.name, Err: errNoDeadlines}
}
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

type addr string

func (a addr) Network() string { return "memconn" }
func (a addr) String() string  { return string(a) }
