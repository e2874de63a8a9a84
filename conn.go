package sshdial

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Conn is a connection through an SSH channel that behaves like a
// *net.TCPConn: deadlines work and can be moved while a call is blocked,
// CloseWrite and CloseRead half-close it, Close wakes every blocked call at
// once, and RemoteAddr is the address that was dialed.
//
// All methods may be called concurrently.
//
// Written data is copied into a send buffer and Write returns once all of it
// is there, like a TCP send buffer: a Write that times out reports how many
// bytes it committed, and committed bytes are sent in order, before the EOF
// of CloseWrite and before the channel is closed by Close.
//
// While open, a Conn runs one goroutine that answers requests the server
// might send on the channel; the first Read or CloseRead starts two more (a
// reader, and a drain for extended data), and the first Write one more (the
// writer). All of them exit after Close, as soon as the SSH server
// acknowledges the close or the SSH connection ends. Buffers are taken from
// shared pools while data flows and returned when the connection is idle.
type Conn struct {
	ch      ssh.Channel
	network string // "tcp" or "unix", for errors
	laddr   net.Addr
	raddr   net.Addr

	done      chan struct{} // closed by Close or fail
	closeSent chan struct{} // closed once CHANNEL_CLOSE is handed to the SSH connection
	closeOnce sync.Once
	failErr   error       // why the Conn was failed; set before done is closed
	onClose   func(*Conn) // tells the Dialer or Pool, if they track the Conn; set before it is shared

	// Read side. readLoop owns ch.Read and hands over filled buffers.
	readMu       sync.Mutex // serializes Read
	readerOnce   sync.Once  // calls startReader, on the first Read or CloseRead
	chunks       chan chunk // closed by readLoop after readErr is set
	readErr      error
	cur          chunk         // the chunk being consumed, guarded by readMu
	readShut     chan struct{} // closed by CloseRead
	readShutOnce sync.Once
	readDeadline deadline

	// Write side. writeLoop owns ch.Write, ch.CloseWrite and ch.Close, so
	// they never run concurrently and EOF never overtakes data.
	writeMu       sync.Mutex // serializes Write and CloseWrite
	writeDeadline deadline
	space         chan struct{} // signalled when the send buffer was emptied

	mu        sync.Mutex    // guards the fields below
	pending   *[]byte       // committed bytes that writeLoop has not taken yet
	writing   bool          // writeLoop has been started
	kick      chan struct{} // wakes an idle writeLoop
	writeErr  error         // the first error of the channel's Write or CloseWrite
	eofQueued bool          // CloseWrite was called
	eofSent   bool
	sending   bool // writeLoop is in the channel's Write
	bulk      bool // a Write waited for the writer since it was last idle
	closing   bool // Close was called
	chClosed  bool // ch.Close was called or is under way
	chGone    bool // the channel was closed by the server or the SSH connection
}

var _ net.Conn = (*Conn)(nil)

const (
	// Reads start small, so an idle connection holds little memory, and
	// grow once a read fills its buffer.
	smallReadSize = 2 << 10
	largeReadSize = 64 << 10
	// sendBufferSize bounds the bytes a Write may commit before the writer
	// takes them, while another buffer may be in flight. Once a Write has
	// had to wait for the writer, the Conn is streaming and takes bulk
	// buffers until the writer goes idle: each wait parks and wakes the
	// caller, and on a 2-core machine shared with sshd, 1 MiB buffers cut
	// an upload's context switches per GiB by a fifth and brought its CPU
	// per GiB closer to x/crypto's own conn (4 MiB did worse).
	sendBufferSize     = 256 << 10
	bulkSendBufferSize = 1 << 20
)

var (
	smallReadBufs = sync.Pool{New: func() any { b := make([]byte, smallReadSize); return &b }}
	largeReadBufs = sync.Pool{New: func() any { b := make([]byte, largeReadSize); return &b }}
	sendBufs      = sync.Pool{New: func() any { b := make([]byte, 0, sendBufferSize); return &b }}
	bulkSendBufs  = sync.Pool{New: func() any { b := make([]byte, 0, bulkSendBufferSize); return &b }}
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

// errWriteClosed is returned by Write after CloseWrite.
var errWriteClosed = fmt.Errorf("sshdial: write after CloseWrite: %w", syscall.EPIPE)

// errChannelClosed is returned by Write once the server has closed the channel.
var errChannelClosed = fmt.Errorf("sshdial: the SSH server closed the channel: %w", syscall.EPIPE)

func newConn(ch ssh.Channel, reqs <-chan *ssh.Request, network string, laddr, raddr net.Addr) *Conn {
	c := &Conn{
		ch:        ch,
		network:   network,
		laddr:     laddr,
		raddr:     raddr,
		done:      make(chan struct{}),
		closeSent: make(chan struct{}),
		chunks:    make(chan chunk),
		readShut:  make(chan struct{}),
		space:     make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
	}
	go c.serviceRequests(reqs)
	return c
}

// serviceRequests refuses the requests the server sends on the channel (none
// are defined for forwarding channels, but x/crypto stalls the whole SSH
// connection when they go unread) until the channel is gone. On Close it
// also closes a channel that was never written to, so that dialing and
// closing a Conn starts a single goroutine; otherwise the writer closes it,
// after the data.
func (c *Conn) serviceRequests(reqs <-chan *ssh.Request) {
	done := c.done
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				c.mu.Lock()
				c.chGone = true
				c.mu.Unlock()
				if done != nil && isClosed(done) {
					c.closeUnwritten() // Close may be waiting for it
				}
				return
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		case <-done:
			done = nil
			c.closeUnwritten()
		}
	}
}

// closeUnwritten closes the channel after Close if no writer was started.
func (c *Conn) closeUnwritten() {
	c.mu.Lock()
	closeHere := !c.writing && !c.chClosed
	c.chClosed = c.chClosed || closeHere
	c.mu.Unlock()
	if closeHere {
		c.ch.Close()
		close(c.closeSent)
	}
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
			c.readErr = err
			close(c.chunks)
			return
		}
	}
}

// Read reads data from the connection. It returns io.EOF, unwrapped, once
// the server has sent EOF and all data before it was read, and after
// CloseRead. When the read deadline passes, it returns a *net.OpError that
// wraps os.ErrDeadlineExceeded; after Close, one that wraps net.ErrClosed;
// after the Dialer's keepalive check failed, one that wraps
// ErrServerNotResponding.
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
		case c.cur, ok = <-c.chunks:
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
			if c.readErr == io.EOF {
				return 0, io.EOF
			}
			return 0, c.opError("read", c.readErr)
		}
	}

	n := copy(p, c.cur.data)
	c.cur.data = c.cur.data[n:]
	if len(c.cur.data) == 0 {
		c.cur.release()
	}
	return n, nil
}

// Write writes p to the connection. It returns when all of p is committed to
// the send buffer, or with the number of bytes committed and an error when
// the write deadline passes (a *net.OpError wrapping
// os.ErrDeadlineExceeded), the Conn is closed (wrapping net.ErrClosed), or the
// channel failed. Write after CloseWrite fails.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	n := 0
	for {
		if isClosed(c.done) {
			return n, c.opError("write", c.closedErr())
		}
		if c.writeDeadline.passed() {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		c.mu.Lock()
		if err := c.writeStateErr(); err != nil {
			c.mu.Unlock()
			return n, c.opError("write", err)
		}
		if n == len(p) {
			c.mu.Unlock()
			return n, nil
		}
		if c.pending == nil {
			c.pending = getSendBuf(c.bulk)
		}
		if free := cap(*c.pending) - len(*c.pending); free > 0 {
			k := min(free, len(p)-n)
			*c.pending = append(*c.pending, p[n:n+k]...)
			n += k
			c.startWriter()
			c.mu.Unlock()
			continue
		}
		c.bulk = true
		c.mu.Unlock()

		select {
		case <-c.space:
		case <-c.writeDeadline.wait():
			return n, c.opError("write", os.ErrDeadlineExceeded)
		case <-c.done:
			return n, c.opError("write", c.closedErr())
		}
	}
}

// writeStateErr reports why no more data may be written; c.mu is held.
func (c *Conn) writeStateErr() error {
	switch {
	case c.closing:
		return c.closedErr()
	case c.writeErr == io.EOF:
		return errChannelClosed
	case c.writeErr != nil:
		return c.writeErr
	case c.eofQueued:
		return errWriteClosed
	}
	return nil
}

// startWriter starts writeLoop, or wakes it if it is idle; c.mu is held.
// The writer is started on first use and then kept until Close: waking a
// parked goroutine costs less latency than starting one per Write.
func (c *Conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
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

// releasePending returns the send buffer to the pool, emptied: a buffer
// from the pool must never carry bytes into another Conn. c.mu is held.
func (c *Conn) releasePending() {
	if c.pending != nil {
		*c.pending = (*c.pending)[:0]
		putSendBuf(c.pending)
		c.pending = nil
	}
}

// writeLoop sends committed data, then the EOF of CloseWrite, then the close
// of Close, in that order; it waits for more when idle and exits after the
// close.
func (c *Conn) writeLoop() {
	c.mu.Lock()
	for {
		switch {
		case c.pending != nil && len(*c.pending) > 0 && c.writeErr == nil:
			buf := c.pending
			c.pending = nil
			c.sending = true
			c.mu.Unlock()
			select {
			case c.space <- struct{}{}:
			default:
			}
			_, err := c.ch.Write(*buf)
			*buf = (*buf)[:0]
			c.mu.Lock()
			c.sending = false
			if err != nil && c.writeErr == nil {
				c.writeErr = err
			}
			if c.pending == nil {
				c.pending = buf
			} else {
				putSendBuf(buf) // emptied above
			}

		case c.eofQueued && !c.eofSent && c.writeErr == nil:
			c.eofSent = true
			c.mu.Unlock()
			err := c.ch.CloseWrite()
			c.mu.Lock()
			if err != nil && c.writeErr == nil {
				c.writeErr = err
			}

		case c.closing && !c.chClosed:
			c.chClosed = true
			c.mu.Unlock()
			c.ch.Close()
			close(c.closeSent)
			c.mu.Lock()

		case c.chClosed:
			c.releasePending()
			c.mu.Unlock()
			return

		default:
			// Idle: give the buffer back, so an idle Conn holds none.
			c.releasePending()
			c.bulk = false
			c.mu.Unlock()
			<-c.kick
			c.mu.Lock()
		}
	}
}

// CloseWrite shuts down the writing side: the server receives EOF after all
// data written before, and passes it on to the target as a TCP half-close
// (OpenSSH's sshd does). Reading still works. CloseWrite does not wait for the
// data to be sent; it waits only for a Write in progress to return.
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if isClosed(c.done) {
		return c.opError("close", c.closedErr())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return c.opError("close", c.closedErr())
	}
	if c.writeErr != nil && c.writeErr != io.EOF {
		return c.opError("close", c.writeErr)
	}
	if !c.eofQueued {
		c.eofQueued = true
		c.startWriter()
	}
	return nil
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

// Close closes the connection. Every blocked Read and Write returns at once
// with an error wrapping net.ErrClosed, whether or not the SSH server
// answers. Data committed by earlier Writes is still sent, then the channel
// is closed. Close may be called any number of times; calls after the first
// do nothing and return nil.
//
// When no data is waiting to be sent, Close returns once the channel's close
// is handed to the SSH connection, as x/crypto's own conn does, so that the
// server sees it before whatever the caller sends next, such as the next
// channel open. It waits for that at most a millisecond, so a stalled server
// never holds it longer.
func (c *Conn) Close() error {
	wait := false
	c.closeOnce.Do(func() { wait = c.shutdown(nil) })
	if wait {
		t := time.NewTimer(closeWait)
		select {
		case <-c.closeSent:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// closeWait bounds how long Close waits for the channel's close to be sent.
const closeWait = time.Millisecond

// fail closes c with err as the error of later calls, as a TCP connection
// reports a dead network. It does not wait.
func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() { c.shutdown(err) })
}

// shutdown wakes every call and has the channel closed. It reports whether
// the close is the next thing to send, and so worth waiting for.
func (c *Conn) shutdown(err error) bool {
	c.failErr = err
	close(c.done)
	c.readDeadline.stop()
	c.writeDeadline.stop()
	c.mu.Lock()
	c.closing = true
	// The writer sends what is committed, then closes the channel; without
	// a writer, serviceRequests closes it, sparing a goroutine.
	if c.writing {
		c.startWriter()
	}
	closeIsNext := !c.chGone && !c.sending && (c.pending == nil || len(*c.pending) == 0)
	c.mu.Unlock()
	if c.onClose != nil {
		c.onClose(c)
	}
	return closeIsNext
}

// closedErr is the error of calls after Close or fail.
func (c *Conn) closedErr() error {
	if c.failErr != nil {
		return c.failErr
	}
	return net.ErrClosed
}

// LocalAddr returns the originator address given to the Dialer, or else the
// local address of the SSH client's connection to the server.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the address that was dialed: a *net.TCPAddr when the
// host is an IP address, a *net.UnixAddr for unix sockets, and otherwise an
// Addr whose Network is "tcp" and whose String is the host:port dialed, so
// that it can be dialed again through the same Dialer.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines. See net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", c.closedErr())
	}
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the read deadline. A Read blocked when the deadline
// passes returns at once; moving the deadline later makes Read usable again.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", c.closedErr())
	}
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline. A Write blocked when the deadline
// passes returns at once with the number of bytes it committed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", c.closedErr())
	}
	c.writeDeadline.set(t)
	return nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}
