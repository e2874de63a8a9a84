package sshdial

import (
	"fmt"
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
			c.handOff(ck)
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
			c.sinkMu.Lock()
			c.dataEnded = true
			c.signalSink()
			c.sinkMu.Unlock()
			close(c.chunks)
			return
		}
	}
}

// handOff passes ck on: to the writer of a waiting WriteTo if there is one,
// else to Read through chunks. Once the Conn is closed or its read side
// shut, ck is discarded.
func (c *Conn) handOff(ck chunk) {
	for {
		if c.writeToSink(&ck) {
			return
		}
		select {
		case c.chunks <- ck:
			return
		case <-c.sinkSet: // a WriteTo may be waiting now
		case <-c.done:
			ck.release()
			return
		case <-c.readShut:
			ck.release()
			return
		}
	}
}

// writeToSink writes ck to the writer of a waiting WriteTo, and reports
// whether ck is used up: written, or discarded because the Conn was closed
// or its read side shut. It returns false without writing when no WriteTo
// waits, and leaves the unwritten rest of ck for Read when the write fails.
func (c *Conn) writeToSink(ck *chunk) bool {
	if isClosed(c.done) || isClosed(c.readShut) {
		ck.release()
		return true
	}
	c.sinkMu.Lock()
	w := c.sink
	if w == nil {
		c.sinkMu.Unlock()
		return false
	}
	c.sinkBusy = true
	c.sinkMu.Unlock()

	n, err := sinkWrite(w, ck.data)
	n, err = c.took(ck, n, err)

	c.sinkMu.Lock()
	c.sinkBusy = false
	c.sinkN += int64(n)
	if err != nil {
		c.sinkErr = err
		c.sink = nil
	}
	c.signalSink()
	c.sinkMu.Unlock()
	if len(ck.data) == 0 {
		ck.release()
		return true
	}
	return false
}

// took takes the result of a writer's Write of ck.data: the bytes it took
// (kept within 0 and len(ck.data), whatever the writer returned) leave ck
// and are counted, and a short write without an error is
// io.ErrShortWrite, as io.Copy has it.
func (c *Conn) took(ck *chunk, n int, err error) (int, error) {
	if err == nil && n < len(ck.data) {
		err = io.ErrShortWrite
	}
	n = max(0, min(n, len(ck.data)))
	ck.data = ck.data[n:]
	c.stats.addReceived(n)
	return n, err
}

// sinkWrite calls w.Write(p) and turns a panic in it into a *sinkPanic
// error, which WriteTo panics with again on its caller's goroutine: a
// panic in the caller's writer must stay the caller's to recover, as it is
// when io.Copy calls the writer itself.
func sinkWrite(w io.Writer, p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, &sinkPanic{v}
		}
	}()
	return w.Write(p)
}

// sinkPanic carries a panic of WriteTo's writer to WriteTo.
type sinkPanic struct{ value any }

func (p *sinkPanic) Error() string {
	return fmt.Sprint("sshdial: WriteTo's writer panicked: ", p.value)
}

// signalSink wakes readLoop waiting to hand off a chunk and a waiting
// WriteTo, so that they look at the sink's state again. Every change of
// that state calls it, with c.sinkMu held.
func (c *Conn) signalSink() {
	select {
	case c.sinkSet <- struct{}{}:
	default:
	}
	select {
	case c.sinkEvent <- struct{}{}:
	default:
	}
}

// Read reads data from the connection. It returns io.EOF, unwrapped, once
// the server has sent EOF and all data before it was read, and after
// CloseRead. Otherwise its errors are *net.OpError values: wrapping
// os.ErrDeadlineExceeded when the read deadline passes; net.ErrClosed after
// Close; ErrSSHConnectionLost when the SSH connection was lost, so that data
// cut short never looks complete; ErrSSHConnectionClosed when the SSH client was
// closed; ErrServerNotResponding after the Dialer's keepalive check failed.
//
// The end of the data is reported once the SSH connection is known to have
// been up after it, which takes one round trip to the SSH server (shared by
// all the Conns that end at once): until then, Read waits, and its deadline
// and Close still wake it.
func (c *Conn) Read(p []byte) (int, error) {
	if c.direct != nil {
		return c.direct.read(c, p)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()

	if err := c.readGate(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
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

// WriteTo writes the data read from the connection to w until the data
// ends, and returns the number of bytes written. It is what io.Copy calls
// when the Conn is its source, and it saves the copy into io.Copy's buffer:
// while WriteTo waits, the Conn's reader goroutine writes each buffer it
// receives straight to w, one w.Write at a time and in order.
//
// WriteTo ends as Read would: with a nil error at the clean end of the
// data or after CloseRead, and with Read's errors when the read deadline
// passes, the Conn is closed or the SSH connection is lost. It returns
// w.Write's error when that fails; the bytes w did not take are left for
// the next Read. Before it returns, WriteTo waits for a w.Write in
// progress to return, so w is never written to after WriteTo returns. A
// panic in w.Write is raised again by WriteTo, on the caller's goroutine.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if c.direct != nil {
		return c.direct.writeTo(c, w)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()

	if err := c.readGate(); err == io.EOF {
		return 0, nil
	} else if err != nil {
		return 0, err
	}

	// What a Read left over goes first.
	var written int64
	if len(c.cur.data) > 0 {
		n, err := w.Write(c.cur.data)
		n, err = c.took(&c.cur, n, err)
		written += int64(n)
		if err != nil {
			return written, err
		}
		c.cur.release()
	}

	c.readerOnce.Do(c.startReader)
	c.sinkMu.Lock()
	c.sink = w
	c.signalSink()
	c.sinkMu.Unlock()
	// end unsets the sink and returns err, unless a write of the sink
	// failed or panicked meanwhile: that comes first, as in io.Copy.
	end := func(err error) (int64, error) {
		n, werr := c.unsetSink()
		written += n
		if p, ok := werr.(*sinkPanic); ok {
			panic(p.value)
		}
		if werr != nil {
			return written, werr
		}
		return written, err
	}
	for {
		c.sinkMu.Lock()
		werr, ended := c.sinkErr, c.dataEnded
		c.sinkMu.Unlock()
		switch {
		case werr != nil:
			return end(nil)
		case ended:
			switch {
			case isClosed(c.done):
				return end(c.opError("read", c.closedErr()))
			case c.readErr != nil:
				return end(c.opError("read", c.readErr))
			}
			return end(nil)
		}
		select {
		case <-c.sinkEvent:
		case <-c.readDeadline.wait():
			return end(c.opError("read", os.ErrDeadlineExceeded))
		case <-c.done:
			return end(c.opError("read", c.closedErr()))
		case <-c.readShut:
			return end(nil)
		}
	}
}

// unsetSink ends WriteTo's delegation: it waits for a write in progress to
// return, and returns the bytes the reader wrote to the sink and why a
// write failed, if one did.
func (c *Conn) unsetSink() (int64, error) {
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	c.sink = nil
	for c.sinkBusy {
		c.sinkMu.Unlock()
		<-c.sinkEvent
		c.sinkMu.Lock()
	}
	n, err := c.sinkN, c.sinkErr
	c.sinkN = 0
	c.sinkErr = nil
	c.signalSink()
	return n, err
}

// readGate is the check Read and WriteTo start with, c.readMu held: the
// error of a closed Conn or a passed read deadline, io.EOF after
// CloseRead, else nil.
func (c *Conn) readGate() error {
	switch {
	case isClosed(c.done):
		c.cur.release()
		return c.opError("read", c.closedErr())
	case isClosed(c.readShut):
		c.cur.release()
		return io.EOF
	case c.readDeadline.passed():
		return c.opError("read", os.ErrDeadlineExceeded)
	}
	return nil
}

// CloseRead shuts down the reading side: a blocked Read returns io.EOF, as do
// later ones, and data that arrives afterwards is discarded. Writing still
// works.
func (c *Conn) CloseRead() error {
	if c.direct != nil {
		return c.direct.closeRead(c)
	}
	if isClosed(c.done) {
		return c.opError("close", c.closedErr())
	}
	c.readShutOnce.Do(func() { close(c.readShut) })
	c.readerOnce.Do(c.startReader) // it discards what arrives
	return nil
}
