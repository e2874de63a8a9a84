package sshdial

import (
	"io"
	"os"
	"sync"
)

// The read half of a Conn.
//
// readLoop owns ch.Read and hands each filled buffer to Read through the
// unbuffered c.chunks, so the SSH window only opens as fast as the caller
// reads. When the channel's data ends, readLoop finds out whether the end
// was a clean EOF or a lost SSH connection, sets c.readErr and closes
// c.chunks. Read is one select over chunks, its deadline, done and
// readShut.

const (
	// Reads start small, so an idle connection holds little memory, and
	// grow once a read fills its buffer.
	smallReadSize = 2 << 10
	largeReadSize = 64 << 10
)

var (
	smallReadBufs = sync.Pool{New: func() any { b := make([]byte, smallReadSize); return &b }}
	largeReadBufs = sync.Pool{New: func() any { b := make([]byte, largeReadSize); return &b }}
)

// chunk is a buffer of received bytes handed from readLoop to Read.
type chunk struct {
	buf  *[]byte
	data []byte // the unread part of *buf
}

func (c *chunk) release() {
	if c.buf == nil {
		return
	}
	if cap(*c.buf) == largeReadSize {
		largeReadBufs.Put(c.buf)
	} else {
		smallReadBufs.Put(c.buf)
	}
	*c = chunk{}
}

// startReader starts readLoop, and the drain of extended data: until the
// Conn reads, nothing frees window space anyway.
func (c *Conn) startReader() {
	go c.readLoop()
	go discardExtended(c.ch.Stderr())
}

// discardExtended drains extended data (stderr) so that it cannot use up the
// channel's window. Servers do not send it on forwarding channels, so the
// buffer is small.
func discardExtended(r io.Reader) {
	var buf [256]byte
	for {
		if _, err := r.Read(buf[:]); err != nil {
			return
		}
	}
}

// readLoop reads the channel until it ends, handing each filled buffer to
// Read. Once the Conn is closed or its read side shut, data is discarded, so
// the server is never left blocked on a full window.
func (c *Conn) readLoop() {
	large := false
	for {
		pool := &smallReadBufs
		if large {
			pool = &largeReadBufs
		}
		buf := pool.Get().(*[]byte)
		n, err := c.ch.Read(*buf)
		large = n == len(*buf)
		ck := chunk{buf: buf, data: (*buf)[:n]}
		if n > 0 {
			select {
			case c.chunks <- ck:
			case <-c.done:
				ck.release()
			case <-c.readShut:
				ck.release()
			}
		} else {
			ck.release()
		}
		if err != nil {
			// x/crypto ends a channel's data with io.EOF both when the
			// server sent EOF and when the SSH connection was lost.
			c.readErr = c.link.classify(err, c.done, nil)
			if c.readErr != nil {
				c.connectionLost(c.readErr)
			}
			close(c.chunks)
			return
		}
	}
}

// Read reads data from the connection. It returns io.EOF, unwrapped, once
// the server has sent EOF and all data before it was read, and after
// CloseRead. Otherwise its errors are *net.OpError values: wrapping
// os.ErrDeadlineExceeded when the read deadline passes; net.ErrClosed after
// Close; ErrConnectionLost when the SSH connection was lost, so that data
// cut short never looks complete; ErrClientClosed when the SSH client was
// closed; ErrServerNotResponding after the Dialer's keepalive check failed.
//
// The end of the data is reported once the SSH connection is known to have
// been up after it, which takes one round trip to the SSH server (shared by
// all the Conns that end at once): until then, Read waits, and its deadline
// and Close still wake it.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()

	switch {
	case isClosed(c.done):
		c.cur.release()
		return 0, c.opError("read", c.closedErr())
	case isClosed(c.readShut):
		c.cur.release()
		return 0, io.EOF
	case c.readDeadline.passed():
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	case len(p) == 0:
		return 0, nil
	}

	// Started on first use: until then the channel's own buffer holds what
	// arrives, and a Conn that is never read costs no goroutine.
	c.readerOnce.Do(c.startReader)
	if len(c.cur.data) == 0 {
		var ok bool
		select {
		case c.cur, ok = <-c.chunks: // the fast path: data is there
		default:
			select {
			case c.cur, ok = <-c.chunks:
			case <-c.readDeadline.wait():
				return 0, c.opError("read", os.ErrDeadlineExceeded)
			case <-c.done:
				return 0, c.opError("read", c.closedErr())
			case <-c.readShut:
				return 0, io.EOF
			}
		}
		if !ok {
			// readLoop gives up finding out how the data ended when the
			// Conn is closed meanwhile: its nil readErr then proves
			// nothing, and the close is what Read reports (done is
			// closed before chunks in that case).
			switch {
			case isClosed(c.done):
				return 0, c.opError("read", c.closedErr())
			case c.readErr == nil:
				return 0, io.EOF
			}
			return 0, c.opError("read", c.readErr)
		}
	}

	n := copy(p, c.cur.data)
	c.cur.data = c.cur.data[n:]
	c.stats.addReceived(n)
	if len(c.cur.data) == 0 {
		c.cur.release()
	}
	return n, nil
}

// CloseRead shuts down the reading side: a blocked Read returns io.EOF, as do
// later ones, and data that arrives afterwards is discarded. Writing still
// works.
func (c *Conn) CloseRead() error {
	if isClosed(c.done) {
		return c.opError("close", c.closedErr())
	}
	c.readShutOnce.Do(func() { close(c.readShut) })
	c.readerOnce.Do(c.startReader) // it discards what arrives
	return nil
}
