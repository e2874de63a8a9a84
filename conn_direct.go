package sshdial

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sshdial/sshdial/internal/sshmux"
)

// directConn is the backend of a Conn whose stream is a forward of an
// OpenSSH ControlMaster (control.go) instead of an SSH channel of this
// process. The forward is a socketpair whose other end the master holds,
// which already has deadlines, half-close and blocking calls that Close
// wakes: so a Conn's methods go straight to it, on the caller's goroutine,
// with no reader or writer goroutine and no copy, and directConn only
// turns its errors into the Conn's (ErrSSHConnectionLost for a lost master,
// ErrDialerClosed after the Dialer's Close, the Conn's addresses).
//
// Concurrency: the stream's methods are safe for concurrent use; closed,
// readShut and failErr are set once and read without a lock (failErr
// before closed is set, under closeMu).
type directConn struct {
	s    *sshmux.Conn
	path string // the control path, for messages
	lost func() // told when the master is found gone; set before use

	closeMu  sync.Mutex
	closed   atomic.Bool
	failErr  error // why the Conn was failed (Dialer's Close); nil for Close
	readShut atomic.Bool
}

// newDirectConn makes a Conn on a forward of the master at path.
func newDirectConn(s *sshmux.Conn, path, network string, laddr, raddr net.Addr) *Conn {
	return &Conn{
		direct:  &directConn{s: s, path: path},
		network: network,
		laddr:   laddr,
		raddr:   raddr,
		done:    make(chan struct{}),
	}
}

// closedErr is the error of calls after Close or fail.
func (d *directConn) closedErr() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.failErr != nil {
		return d.failErr
	}
	return net.ErrClosed
}

// convert turns an error of the stream into the Conn's.
func (d *directConn) convert(c *Conn, op string, err error) error {
	switch {
	case err == nil || err == io.EOF:
		return err
	case d.closed.Load():
		return c.opError(op, d.closedErr())
	case errors.Is(err, sshmux.ErrMasterLost):
		if d.lost != nil {
			d.lost()
		}
		return c.opError(op, &masterLostError{path: d.path})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.opError(op, os.ErrDeadlineExceeded)
	case op == "write" && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)):
		// The master ended the forward: the target closed.
		return c.opError(op, errChannelClosed)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return c.opError(op, err)
}

// masterLostError matches ErrSSHConnectionLost and says which master.
type masterLostError struct{ path string }

func (e *masterLostError) Error() string {
	return ErrSSHConnectionLost.Error() + " (the ControlMaster at " + e.path + " is gone)"
}

func (e *masterLostError) Unwrap() error { return ErrSSHConnectionLost }

func (d *directConn) read(c *Conn, p []byte) (int, error) {
	if d.closed.Load() {
		return 0, c.opError("read", d.closedErr())
	}
	if d.readShut.Load() {
		return 0, io.EOF
	}
	n, err := d.s.Read(p)
	if err != nil && d.readShut.Load() && !d.closed.Load() {
		return n, io.EOF
	}
	if n > 0 && c.stats != nil {
		c.stats.addReceived(n)
	}
	return n, d.convert(c, "read", err)
}

func (d *directConn) writeTo(c *Conn, w io.Writer) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := d.read(c, buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr == nil && k < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (d *directConn) write(c *Conn, p []byte) (int, error) {
	if d.closed.Load() {
		return 0, c.opError("write", d.closedErr())
	}
	n, err := d.s.Write(p)
	if n > 0 && c.stats != nil {
		c.stats.addSent(n)
	}
	return n, d.convert(c, "write", err)
}

func (d *directConn) closeWrite(c *Conn) error {
	if d.closed.Load() {
		return c.opError("close", d.closedErr())
	}
	return d.convert(c, "close", d.s.CloseWrite())
}

func (d *directConn) closeRead(c *Conn) error {
	if d.closed.Load() {
		return c.opError("close", d.closedErr())
	}
	if !d.readShut.Swap(true) {
		d.s.CloseRead()
	}
	return nil
}

// shutdown closes the stream, with err as the error of later calls (nil:
// net.ErrClosed), and tells the Dialer; later calls do nothing.
func (d *directConn) shutdown(c *Conn, err error) {
	d.closeMu.Lock()
	if d.closed.Load() {
		d.closeMu.Unlock()
		return
	}
	d.failErr = err
	d.closed.Store(true)
	d.closeMu.Unlock()
	close(c.done)
	d.s.Close() // wakes blocked calls; what was written is still delivered
	if c.onClose != nil {
		c.onClose(c)
	}
}

func (d *directConn) setDeadline(c *Conn, t time.Time, read, write bool) error {
	if d.closed.Load() {
		return c.opError("set", d.closedErr())
	}
	var err error
	switch {
	case read && write:
		err = d.s.SetDeadline(t)
	case read:
		err = d.s.SetReadDeadline(t)
	default:
		err = d.s.SetWriteDeadline(t)
	}
	return d.convert(c, "set", err)
}
