package sshdial

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// The write half of a Conn.
//
// Data moves from Write into c.pending (the send buffer), from there to the
// writer goroutine, and from the writer into the channel. Everything a
// Write or the writer waits for is state under c.mu, and every change of it
// calls c.signal (see the contract on Conn).

// writerState is where the writer goroutine is. It only moves forward,
// except between idle and busy.
type writerState uint8

const (
	writerNone writerState = iota // not started: nothing was written and Close was not called
	writerIdle                    // parked until signal
	writerBusy                    // taking work or in a call on the channel
	writerDone                    // exited: the channel is closed, or failed; nothing more is sent
)

// eofState is where CloseWrite's EOF is.
type eofState uint8

const (
	eofNone   eofState = iota // CloseWrite not called
	eofQueued                 // CloseWrite called: EOF goes after the pending bytes
	eofSent                   // handed to the channel
)

const (
	// sendBufferSize bounds the bytes a Write may commit before the writer
	// takes them, while another buffer may be in flight. Once a Write has
	// had to wait for the writer, the Conn is streaming and takes bulk
	// buffers until the writer goes idle, so that each wait parks and
	// wakes the caller less often (BENCHMARKS.md has the measurements
	// behind the sizes).
	sendBufferSize     = 256 << 10
	bulkSendBufferSize = 1 << 20
)

var (
	sendBufs     = sync.Pool{New: func() any { b := make([]byte, 0, sendBufferSize); return &b }}
	bulkSendBufs = sync.Pool{New: func() any { b := make([]byte, 0, bulkSendBufferSize); return &b }}
)

// errWriteClosed is returned by Write after CloseWrite.
var errWriteClosed = fmt.Errorf("sshdial: write after CloseWrite: %w", syscall.EPIPE)

// errChannelClosed is returned by Write once the server has closed the
// channel while the SSH connection stayed up.
var errChannelClosed = fmt.Errorf("sshdial: the SSH server closed the channel: %w", syscall.EPIPE)

// Write writes p to the connection. It returns when all of p is committed to
// the send buffer, with len(p) and a nil error, or else with the number of
// bytes committed and an error: when the write deadline passes (a
// *net.OpError wrapping os.ErrDeadlineExceeded), the Conn is closed
// (wrapping net.ErrClosed), the server closed the channel (wrapping
// syscall.EPIPE), the SSH connection was lost (ErrSSHConnectionLost) or the
// Dialer's keepalive failed (ErrServerNotResponding). Write after
// CloseWrite fails. The caller may reuse p as soon as Write returns.
func (c *Conn) Write(p []byte) (int, error) {
	if c.direct != nil {
		return c.direct.write(c, p)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	n := 0
	for {
		c.mu.Lock()
		// A Write that committed everything succeeded, whatever happened
		// meanwhile: its bytes are sent before the close (TCP reports no
		// error for a write that is in the send buffer either).
		if n == len(p) && n > 0 {
			c.mu.Unlock()
			return n, nil
		}
		if err := c.writeStateErr(); err != nil {
			c.mu.Unlock()
			return n, c.opError("write", err)
		}
		if c.writeDeadline.passed() {
			c.mu.Unlock()
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		if c.pending == nil {
			c.pending = getSendBuf(c.bulk)
		}
		if free := cap(*c.pending) - len(*c.pending); free > 0 {
			k := min(free, len(p)-n)
			*c.pending = append(*c.pending, p[n:n+k]...)
			n += k
			c.stats.addSent(k)
			c.startWriter()
			c.mu.Unlock()
			continue
		}
		c.bulk = true
		c.mu.Unlock()

		select {
		case <-c.wakeWrite:
		case <-c.writeDeadline.wait():
		}
	}
}

// writeStateErr reports why no more data may be written; c.mu is held.
func (c *Conn) writeStateErr() error {
	switch {
	case c.closing:
		return c.closedErr()
	case c.writeErr != nil:
		return c.writeErr
	case c.eof != eofNone:
		return errWriteClosed
	}
	return nil
}

// startWriter starts the writer if it was never started, and signals; c.mu
// is held. The writer is kept until Close: waking a parked goroutine costs
// less latency than starting one per Write.
func (c *Conn) startWriter() {
	if c.writer == writerNone {
		c.writer = writerBusy
		go c.writeLoop()
	}
	c.signal()
}

// CloseWrite shuts down the writing side: the server receives EOF after all
// data written before, and passes it on to the target as a TCP half-close
// (OpenSSH's sshd does). Reading still works. CloseWrite does not wait for the
// data to be sent; it waits only for a Write in progress to return.
func (c *Conn) CloseWrite() error {
	if c.direct != nil {
		return c.direct.closeWrite(c)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		return c.opError("close", c.closedErr())
	case c.writeErr != nil && c.writeErr != errChannelClosed:
		return c.opError("close", c.writeErr)
	case c.eof == eofNone:
		c.eof = eofQueued
		c.startWriter()
	}
	return nil
}

// writeLoop sends committed data, then the EOF of CloseWrite, then the close
// of Close, in that order; it parks when idle and exits after the close or
// a failure of the channel.
func (c *Conn) writeLoop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.writeErr != nil || (c.closing && c.pending == nil && c.eof != eofQueued):
			c.writer = writerDone
			c.releasePending()
			c.signal()
			c.mu.Unlock()
			c.ch.Close() // after a failure, the channel is gone and this sends nothing
			close(c.closeSent)
			c.mu.Lock()
			return

		case c.pending != nil:
			buf := c.pending
			c.pending = nil
			c.writer = writerBusy
			c.signal() // the send buffer is free again
			c.mu.Unlock()
			_, err := c.ch.Write(*buf)
			*buf = (*buf)[:0]
			putSendBuf(buf)
			err = c.sendErr(err)
			c.mu.Lock()
			c.recordWriteErr(err)

		case c.eof == eofQueued:
			c.eof = eofSent
			c.writer = writerBusy
			c.mu.Unlock()
			err := c.sendErr(c.ch.CloseWrite())
			c.mu.Lock()
			c.recordWriteErr(err)

		default:
			// Idle: leave bulk mode; the buffer went back to the pool.
			c.writer = writerIdle
			c.bulk = false
			c.mu.Unlock()
			<-c.wakeWriter
			c.mu.Lock()
		}
	}
}

// sendErr says why a call on the channel failed with err, nil for nil:
// the server closed the channel (errChannelClosed), or the SSH connection
// was lost. Telling the two apart may take a round trip to the server, so
// c.mu must not be held.
func (c *Conn) sendErr(err error) error {
	if err == nil {
		return nil
	}
	return c.link.classify(err, c.done, errChannelClosed)
}

// recordWriteErr records why the channel takes nothing more, unless a
// reason is known already; c.mu is held.
func (c *Conn) recordWriteErr(err error) {
	if err != nil && c.writeErr == nil {
		c.writeErr = err
		c.signal()
	}
}

// connectionLost records that the SSH connection is gone, for the write
// half, as the reader found out.
func (c *Conn) connectionLost(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recordWriteErr(err)
}

// getSendBuf takes an empty send buffer, a bulk one if bulk.
func getSendBuf(bulk bool) *[]byte {
	if bulk {
		return bulkSendBufs.Get().(*[]byte)
	}
	return sendBufs.Get().(*[]byte)
}

// putSendBuf gives an emptied send buffer back to its pool.
func putSendBuf(b *[]byte) {
	if cap(*b) == bulkSendBufferSize {
		bulkSendBufs.Put(b)
	} else {
		sendBufs.Put(b)
	}
}

// releasePending drops the bytes not yet taken by the writer and returns
// their buffer, emptied: a buffer from the pool must never carry bytes into
// another Conn. c.mu is held.
func (c *Conn) releasePending() {
	if c.pending != nil {
		*c.pending = (*c.pending)[:0]
		putSendBuf(c.pending)
		c.pending = nil
	}
}
