package sshdial

import (
	"io"
	"net"
	"sync"
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
// A Conn tells a clean end from a broken one, as TCP does with FIN and RST:
// Read returns a bare io.EOF only when the SSH server sent EOF for the
// channel and the SSH connection was still up after it; when the SSH
// connection was lost, Read and Write return an error wrapping
// ErrSSHConnectionLost (or ErrSSHConnectionClosed when the client was closed here).
//
// While open, a Conn runs one goroutine that answers requests the server
// might send on the channel; the first Read, WriteTo or CloseRead starts
// two more (a reader, and a drain for extended data), and the first Write, CloseWrite
// or Close one more (the writer). All of them exit after Close, as soon as
// the SSH server acknowledges the close or the SSH connection ends. Buffers
// are taken from shared pools while data flows and returned when the
// connection is idle. A Conn dialed through a ControlMaster
// (WithControlPath) runs none of these: its calls go straight to the
// socket the master reads and writes (see conn_direct.go).
type Conn struct {
	// Concurrency contract.
	//
	// Goroutines and what each owns on the channel:
	//   - serviceRequests: the channel's request stream, until it closes.
	//   - readLoop (conn_read.go): ch.Read. It hands each filled buffer to
	//     Read through chunks, or, while a WriteTo waits, writes it to
	//     WriteTo's writer itself; when the channel's data ends, it sets
	//     readErr, then dataEnded, then closes chunks.
	//   - discardExtended: ch.Stderr().Read.
	//   - writeLoop (conn_write.go): ch.Write, ch.CloseWrite and ch.Close,
	//     so they never run concurrently, EOF never overtakes data, and the
	//     close goes last. Nothing else calls them.
	//
	// Blocked callers and what wakes them:
	//   - Read selects on chunks, its deadline, done and readShut. Each is a
	//     channel that is sent on or closed by the state change itself.
	//   - WriteTo, and readLoop holding a chunk, wait for the sink's state,
	//     which lives under sinkMu, the same way, with signalSink().
	//   - Write and the idle writer wait for the write half's state, which
	//     lives under mu. Every change of that state is followed, still
	//     under mu, by signal(), which wakes both. A waiter re-checks the
	//     state after every wake, so a wake without a change is harmless,
	//     and one with a change is never lost.
	//
	// Locks: readMu serializes Read and WriteTo; writeMu serializes Write
	// and CloseWrite; mu guards the write half; sinkMu the sink. Order:
	// readMu before sinkMu, readMu or writeMu before mu; a deadline's own
	// lock is taken alone or inside those. No lock is held across a call on
	// the channel, a call on the sink or a channel wait.
	ch      ssh.Channel
	link    *link  // the SSH connection, asked whether it was lost; nil in unit tests
	network string // "tcp" or "unix", for errors
	laddr   net.Addr
	raddr   net.Addr
	onClose func(*Conn) // tells the Dialer; set before the Conn is shared
	stats   *stats      // the Dialer's byte counts; nil in unit tests
	direct  *directConn // a ControlMaster's forward: the methods go to it (conn_direct.go)

	done      chan struct{} // closed by shutdown (Close or fail), under mu, before the writer may send the close
	closeOnce sync.Once
	failErr   error         // why the Conn was failed; set under mu before done is closed
	closeSent chan struct{} // closed by the writer once ch.Close was called

	// Read half: see conn_read.go.
	readMu       sync.Mutex
	readerOnce   sync.Once  // starts readLoop, on the first Read, WriteTo or CloseRead
	chunks       chan chunk // unbuffered; closed by readLoop after readErr is set
	readErr      error      // nil for a clean EOF; written only by readLoop
	cur          chunk      // the chunk being consumed; readMu
	readShut     chan struct{}
	readShutOnce sync.Once
	readDeadline deadline

	// WriteTo's delegation (conn_read.go): while a WriteTo waits, readLoop
	// writes what it receives to the WriteTo's writer, the sink. Every
	// change of the state under sinkMu is followed, still under sinkMu, by
	// signalSink(), which wakes readLoop waiting to hand off a chunk and the
	// waiting WriteTo.
	sinkMu    sync.Mutex
	sink      io.Writer     // the waiting WriteTo's writer; nil when none
	sinkBusy  bool          // readLoop is in sink.Write
	sinkN     int64         // bytes readLoop wrote to the sink since it was set
	sinkErr   error         // why sink.Write failed; the sink is unset then
	dataEnded bool          // readLoop set readErr and is about to close chunks
	sinkSet   chan struct{} // capacity 1; sent on by signalSink, for readLoop
	sinkEvent chan struct{} // capacity 1; sent on by signalSink, for WriteTo

	// Write half: see conn_write.go.
	writeMu       sync.Mutex
	writeDeadline deadline
	wakeWriter    chan struct{} // capacity 1; sent on by signal
	wakeWrite     chan struct{} // capacity 1; sent on by signal

	mu       sync.Mutex
	pending  *[]byte     // committed bytes the writer has not taken; nil when none
	bulk     bool        // a Write waited for the writer since the writer was last idle
	eof      eofState    // where CloseWrite's EOF is
	closing  bool        // Close or fail was called: the writer closes the channel after the data
	writer   writerState // the writer goroutine's state
	writeErr error       // why nothing more can be sent; set once, never cleared
}

var _ net.Conn = (*Conn)(nil)

func newConn(ch ssh.Channel, reqs <-chan *ssh.Request, l *link, network string, laddr, raddr net.Addr) *Conn {
	c := &Conn{
		ch:         ch,
		link:       l,
		network:    network,
		laddr:      laddr,
		raddr:      raddr,
		done:       make(chan struct{}),
		closeSent:  make(chan struct{}),
		chunks:     make(chan chunk),
		readShut:   make(chan struct{}),
		wakeWriter: make(chan struct{}, 1),
		wakeWrite:  make(chan struct{}, 1),
		sinkSet:    make(chan struct{}, 1),
		sinkEvent:  make(chan struct{}, 1),
	}
	go serviceRequests(reqs)
	return c
}

// serviceRequests refuses the requests the server sends on the channel
// until the channel is gone: none are defined for forwarding channels, but
// x/crypto stalls the whole SSH connection when they go unread.
func serviceRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}

// signal wakes the writer and a blocked Write, so that they look at the
// write half's state again. Every change of that state calls it, with c.mu
// held.
func (c *Conn) signal() {
	select {
	case c.wakeWriter <- struct{}{}:
	default:
	}
	select {
	case c.wakeWrite <- struct{}{}:
	default:
	}
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
	if c.direct != nil {
		c.direct.shutdown(c, nil)
		return nil
	}
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
	if c.direct != nil {
		c.direct.shutdown(c, err)
		return
	}
	c.closeOnce.Do(func() { c.shutdown(err) })
}

// shutdown wakes every call and has the writer close the channel after the
// committed data. It reports whether the close is the next thing the writer
// sends, and so worth waiting for.
func (c *Conn) shutdown(err error) bool {
	// The write half learns of the close before done is closed, so that a
	// caller who saw a Read fail on done also sees Write fail. done is
	// closed before the writer can act on closing: once the channel's
	// close is sent, the server's reply may end the data, and readLoop
	// must then find done closed, or it takes the end for a clean EOF
	// and Read returns io.EOF instead of the close's error.
	c.mu.Lock()
	c.failErr = err
	c.closing = true
	closeIsNext := c.writer != writerBusy && c.pending == nil
	close(c.done)
	c.startWriter()
	c.mu.Unlock()
	c.readDeadline.stop()
	c.writeDeadline.stop()
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
	if c.direct != nil {
		return c.direct.setDeadline(c, t, true, true)
	}
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
	if c.direct != nil {
		return c.direct.setDeadline(c, t, true, false)
	}
	if isClosed(c.done) {
		return c.opError("set", c.closedErr())
	}
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline. A Write blocked when the deadline
// passes returns at once with the number of bytes it committed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.direct != nil {
		return c.direct.setDeadline(c, t, false, true)
	}
	if isClosed(c.done) {
		return c.opError("set", c.closedErr())
	}
	c.writeDeadline.set(t)
	return nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}
