package sshdial

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// QuickAck returns c wrapped for use as the transport of an *ssh.Client:
// TCP_QUICKACK is armed again after every read, which keeps Linux from
// delaying ACKs on the connection (see DialSSH for why), and reads are
// batched. Use it on the TCP connection to an SSH server when building your
// own *ssh.Client. On other systems, or for a c that is not a
// *net.TCPConn, it returns c.
//
// Batched reads: x/crypto reads its transport through a 4 KiB buffer, so
// every 32 KiB data packet costs two or more read system calls. The
// wrapper takes whatever the socket already holds, up to 256 KiB, in one
// call and serves the small reads from it; the buffer comes from a shared
// pool and goes back as soon as it is drained, and a read that has to wait
// for data waits without one, so an idle connection holds none. Reads
// otherwise behave as the *net.TCPConn's: a passed read deadline fails them
// even while bytes are buffered, and errors are the same. The wrapper keeps
// the *net.TCPConn's other methods (CloseWrite, SetKeepAlive, ...).
func QuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, raw: raw}
	q.arm()
	return q
}

// batchSize bounds one batched read: a few packets' worth at the rates
// loopback and LANs reach (BENCHMARKS.md says how it was chosen).
const batchSize = 256 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, batchSize); return &b }}

// quickAckConn is a *net.TCPConn whose reads re-arm TCP_QUICKACK (the
// kernel clears it on its own after a while) and are batched.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn

	readDeadline atomic.Int64 // UnixNano; 0 for none
	closed       atomic.Bool

	mu      sync.Mutex // serializes Read, as the *net.TCPConn does
	batch   *[]byte    // from batchBufs while it holds unread bytes
	pending []byte     // the unread bytes of batch
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(p) == 0 || c.closed.Load():
		return c.TCPConn.Read(p) // 0 and nil, or the closed error
	case len(c.pending) > 0:
		if d := c.readDeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return 0, c.opError(os.ErrDeadlineExceeded)
		}
	default:
		if wait, err := c.readBatch(); wait {
			// Nothing to read yet: wait in the *net.TCPConn's Read,
			// without holding a batch buffer.
			n, err := c.TCPConn.Read(p)
			if n > 0 {
				c.arm()
			}
			return n, err
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.consumed(n)
	return n, nil
}

// consumed drops n bytes of c.pending, and gives the batch buffer back to
// the pool once it is drained; c.mu is held.
func (c *quickAckConn) consumed(n int) {
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		batchBufs.Put(c.batch)
		c.batch, c.pending = nil, nil
	}
}

// WriteTo writes the buffered bytes to w, then lets the *net.TCPConn copy
// the rest (with splice where it can); without it, io.Copy would take the
// *net.TCPConn's WriteTo and skip the buffered bytes.
func (c *quickAckConn) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var written int64
	if len(c.pending) > 0 && !c.closed.Load() {
		n, err := w.Write(c.pending)
		written += int64(n)
		c.consumed(n)
		if err != nil {
			return written, err
		}
	}
	n, err := c.TCPConn.WriteTo(w)
	return written + n, err
}

// readBatch reads what the socket holds into c.pending without waiting. It
// reports wait when the read has to wait for data (or the descriptor is
// closed, or the deadline passed: the *net.TCPConn's Read reports those),
// and otherwise io.EOF or the read's error, or nil with c.pending filled.
func (c *quickAckConn) readBatch() (wait bool, err error) {
	b := batchBufs.Get().(*[]byte)
	var n int
	var errno error
	rawErr := c.raw.Read(func(fd uintptr) bool {
		n, errno = syscall.Read(int(fd), *b)
		return true // never wait here
	})
	switch {
	case rawErr != nil || errno == syscall.EAGAIN || errno == syscall.EINTR:
		wait = true
	case errno != nil:
		err = c.opError(os.NewSyscallError("read", errno))
	case n == 0:
		err = io.EOF
	default:
		c.arm()
		c.batch, c.pending = b, (*b)[:n]
		return false, nil
	}
	batchBufs.Put(b)
	return wait, err
}

// Close closes the connection; buffered bytes are dropped, and later reads
// fail as the *net.TCPConn's do.
func (c *quickAckConn) Close() error {
	c.closed.Store(true)
	return c.TCPConn.Close()
}

func (c *quickAckConn) opError(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *quickAckConn) SetDeadline(t time.Time) error {
	if err := c.TCPConn.SetDeadline(t); err != nil {
		return err
	}
	c.readDeadline.Store(unixNano(t))
	return nil
}

func (c *quickAckConn) SetReadDeadline(t time.Time) error {
	if err := c.TCPConn.SetReadDeadline(t); err != nil {
		return err
	}
	c.readDeadline.Store(unixNano(t))
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *quickAckConn) arm() {
	c.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
