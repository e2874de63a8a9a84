//go:build unix

package sshmux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Timeouts of the background work a Conn does on its own.
var (
	// checkTimeout bounds how long a Conn that read EOF (or failed a
	// write) waits for the master's answer to "are you alive?"; no answer
	// in that time counts as a lost master.
	checkTimeout = 5 * time.Second
	// HelloTimeout bounds the wait for the master's hello on a new
	// control connection: a running master sends it as soon as it
	// accepts, so a longer silence means a stopped or hung master
	// (ErrMasterSilent), whatever the request's context allows for the
	// rest (a forward waits for the SSH server, which may take long).
	HelloTimeout = 5 * time.Second
	// lingerTimeout bounds how long a closed Conn keeps its control
	// connection open so that the master can still send what was written
	// before Close (closing the control connection makes the master drop
	// what it has not read yet).
	lingerTimeout = 10 * time.Second
	// exitWait bounds how long a master that no longer answers on its
	// control path is watched for its exit before it is taken for alive
	// (it stopped listening: `ssh -O stop`). A dead master's descriptors
	// close a moment before its process is seen gone.
	exitWait = time.Second
	// pokeTimeout bounds the alive check that wakes the master after a
	// Forward's Close.
	pokeTimeout = time.Second
)

// sendBuffer is the SO_SNDBUF asked for the sending ends of a forward's
// socketpairs.
const sendBuffer = 1 << 20

// Client is a ControlMaster found on a control path. It holds no
// connection of its own: every request opens a control connection. Its
// methods are safe for concurrent use.
type Client struct {
	path string // as given, for messages
	addr string // what is dialed: path, or "./"+path when it starts with '@'
	pid  int
}

// Dial connects to the master listening on the Unix socket path, exchanges
// hellos and makes an alive check, then closes the connection again. It
// returns an error wrapping ErrNoMaster when nothing listens there,
// ErrPathTooLong when path cannot be a socket address, ErrProtocol when
// the answer is not the master's hello and MUX_S_ALIVE with a valid PID
// (a refusal included: the master never refuses an alive check), and
// ctx's error when ctx ends first. A master that accepts but never
// answers (a stopped process) makes Dial wait until ctx ends.
func Dial(ctx context.Context, path string) (*Client, error) {
	addr, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	c := &Client{path: path, addr: addr}
	pid, err := c.aliveCheck(ctx)
	if err != nil {
		return nil, err
	}
	c.pid = pid
	return c, nil
}

// Path returns the control path given to Dial.
func (c *Client) Path() string { return c.path }

// PID returns the master's process ID, as its alive check reported it
// when Dial ran.
func (c *Client) PID() int { return c.pid }

// Check makes an alive check on a new control connection and returns the
// master's process ID; the error is as Dial's.
func (c *Client) Check(ctx context.Context) (int, error) { return c.aliveCheck(ctx) }

func (c *Client) aliveCheck(ctx context.Context) (int, error) {
	ctl, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	var pid int
	err = withContext(ctx, ctl, func() error {
		if _, err := ctl.Write(append(helloMsg(), aliveMsg(1)...)); err != nil {
			return err
		}
		if err := readHelloWithin(ctx, ctl); err != nil {
			return err
		}
		m, err := readPacket(ctl)
		if err != nil {
			return err
		}
		pid, err = parseAlive(m, 1)
		return err
	})
	if err != nil {
		return 0, c.wrap("alive check", err)
	}
	return pid, nil
}

// OpenStdioFwd asks the master to open a TCP connection to host:port
// through its SSH connection, as `ssh -W host:port` does, and returns the
// stream. Each call uses a control connection of its own, which the Conn
// keeps until it is closed. The error wraps ErrNoMaster when the master is
// gone, is a *RefusedError when the master or the SSH server refused the
// forward, or wraps ctx's error when ctx ended first (the master then
// drops the forward once it is open).
func (c *Client) OpenStdioFwd(ctx context.Context, host string, port int) (*Conn, error) {
	if err := checkTarget(host, port); err != nil {
		return nil, err
	}
	return c.openStdioFwd(ctx, host, uint32(port), targetAddr(host, port))
}

func (c *Client) openStdioFwd(ctx context.Context, host string, port uint32, raddr net.Addr) (*Conn, error) {
	// in: the master reads what we write (its "stdin"); out: the master
	// writes what the target sends (its "stdout"). Two socketpairs, so
	// that the master's close of its stdout is an EOF here even while its
	// stdin is still open.
	inOurs, inTheirs, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("sshmux: socketpair: %w", err)
	}
	outOurs, outTheirs, err := socketpair()
	if err != nil {
		syscall.Close(inOurs)
		syscall.Close(inTheirs)
		return nil, fmt.Errorf("sshmux: socketpair: %w", err)
	}
	// On a Unix stream socket the sender's buffer is what bounds the data
	// in flight; the default (about 200 KiB) makes the master wait on it
	// often. 1 MiB gave downloads 25-40% more here; the kernel caps it at
	// net.core.wmem_max (often 208 KiB), and failing is harmless.
	syscall.SetsockoptInt(outTheirs, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sendBuffer)
	syscall.SetsockoptInt(inOurs, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sendBuffer)
	// Their ends are closed here once passed (or not): the master holds
	// its own copies.
	defer syscall.Close(inTheirs)
	defer syscall.Close(outTheirs)
	wr, err1 := fdConn(inOurs)
	rd, err2 := fdConn(outOurs)
	if err := errors.Join(err1, err2); err != nil {
		for _, c := range []*net.UnixConn{wr, rd} {
			if c != nil {
				c.Close()
			}
		}
		return nil, fmt.Errorf("sshmux: %w", err)
	}
	ctl, _, err := c.stdioFwd(ctx, host, port, inTheirs, outTheirs, false)
	if err != nil {
		wr.Close()
		rd.Close()
		return nil, err
	}
	conn := &Conn{
		client: c,
		ctl:    ctl,
		rd:     rd,
		wr:     wr,
		nextID: 2,
		laddr:  &net.UnixAddr{Name: c.path, Net: "unix"},
		raddr:  raddr,
	}
	return conn, nil
}

// stdioFwd makes the request of a stdio forward on a new control
// connection, with in and out as the master's "stdin" and "stdout", and
// returns the control connection, which owns the forward (request ID 1;
// later requests on it must use higher IDs), and with alive the master's
// PID, from an alive check (ID 0) sent first in the same exchange. The
// caller keeps in and out.
func (c *Client) stdioFwd(ctx context.Context, host string, port uint32, in, out int, alive bool) (*net.UnixConn, int, error) {
	ctl, err := c.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	var pid int
	err = withContext(ctx, ctl, func() error {
		// The hello, the alive check and the request go in one write;
		// the master reads them in turn, a packet at a time. Then the
		// descriptors, one per message with one byte of data each, as
		// mux.c's mm_receive_fd reads them.
		req := helloMsg()
		if alive {
			req = append(req, aliveMsg(0)...)
		}
		req = append(req, stdioFwdMsg(1, host, port)...)
		if _, err := ctl.Write(req); err != nil {
			return err
		}
		for _, fd := range []int{in, out} {
			if _, _, err := ctl.WriteMsgUnix([]byte{0}, syscall.UnixRights(fd), nil); err != nil {
				return err
			}
		}
		if err := readHelloWithin(ctx, ctl); err != nil {
			return err
		}
		if alive {
			m, err := readPacket(ctl)
			if err != nil {
				return err
			}
			if pid, err = parseAlive(m, 0); err != nil {
				return err
			}
		}
		// The reply comes once the SSH server confirmed (or refused) the
		// channel: one round trip to the server.
		m, err := readPacket(ctl)
		if err != nil {
			return err
		}
		return parseSessionOpened(m, 1)
	})
	if err != nil {
		ctl.Close()
		var refused *RefusedError
		if errors.As(err, &refused) {
			return nil, 0, err
		}
		return nil, 0, c.wrap("stdio forward", err)
	}
	return ctl, pid, nil
}

// HandOver asks the master to open a TCP connection to host:port through
// its SSH connection (port -1: to the Unix socket at path host on the
// server's side) and to read and write it through the socket fd itself,
// as `ssh -W` does with its standard input and output: the master gets
// duplicates of fd as both, and the data never passes through this
// process. fd is typically a connection this program accepted; it stays
// the caller's, who must keep it open until Wait returns (see Forward).
// The errors are those of OpenStdioFwd.
func (c *Client) HandOver(ctx context.Context, host string, port int, fd int) (*Forward, error) {
	p := uint32(port)
	if port == -1 {
		port, p = 1, portStreamLocal
	}
	if err := checkTarget(host, port); err != nil {
		return nil, err
	}
	ctl, pid, err := c.stdioFwd(ctx, host, p, fd, fd, true)
	if err != nil {
		return nil, err
	}
	return &Forward{client: c, ctl: ctl, pid: pid}, nil
}

// Forward is a connection handed over to the master by HandOver. The
// master reads and writes the socket directly; this side only learns when
// the forward is over, from the control connection that owns it.
//
// The master holds two descriptors of the socket and, when the target
// sends EOF, closes one of them (close(2), not shutdown): the peer of the
// socket sees nothing of that while the master (or anyone) holds another
// descriptor. The master ends the whole forward once both directions are
// done and the SSH server confirmed its close: then it closes its
// descriptors and the control connection, and Wait returns. That is when
// the caller should close its own descriptor, which is the last one, so
// that the peer reads EOF then; and when the master died instead, close
// it with a reset (SO_LINGER 0), so that the peer never takes a cut-short
// transfer for a complete one. A caller that closed its descriptor early
// would turn a lost master into a clean EOF for the peer.
//
// Wait and Close may be called concurrently.
type Forward struct {
	client *Client
	ctl    *net.UnixConn // owns the forward; the master closes it at the end
	pid    int           // the master's, for telling a new master from it
	closed atomic.Bool
}

// Wait blocks until the forward is over, and closes the control
// connection. It returns nil when the master ended it (both directions
// done, or the socket or the target failed), an error wrapping
// ErrMasterLost when the master's process is gone (it died; or it exited
// right after the forward, as one told `ssh -O stop` does with its last
// forward, which cannot be told apart from here), and net.ErrClosed after
// Close. A master that stopped listening, or whose path another master
// took, but lives on, ended the forward itself: nil.
func (f *Forward) Wait() error {
	var buf [256]byte
	for {
		if _, err := f.ctl.Read(buf[:]); err != nil {
			break
		}
	}
	f.ctl.Close()
	if f.closed.Load() {
		return net.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	pid, err := f.client.aliveCheck(ctx)
	switch {
	case err == nil && pid == f.pid:
		return nil
	case !processGone(f.pid, exitWait):
		// It no longer listens (or another master took the path)
		// but lives on: `ssh -O stop` lets a master finish its
		// forwards, and closing this one was its own doing.
		return nil
	case err == nil:
		return fmt.Errorf("%w: the master at %s is another process now (PID %d, was %d), and that one is gone", ErrMasterLost, f.client.path, pid, f.pid)
	}
	// Gone: it died, or it ended this forward and then exited (a master
	// told `ssh -O stop` exits with its last forward). The two look the
	// same from here; a reset is the safe answer.
	return fmt.Errorf("%w (%v)", ErrMasterLost, err)
}

// Close ends the forward: the master closes its descriptors of the socket
// and drops what it has not sent yet. It returns once the master was told,
// within a second. Wait then returns net.ErrClosed.
// Calling Close again returns net.ErrClosed.
func (f *Forward) Close() error {
	if f.closed.Swap(true) {
		return net.ErrClosed
	}
	f.ctl.Close() // Wait may have closed it already
	// The master tears the forward down while it handles the control
	// connection's end, but sends the EOF that ends the target's side
	// only in its next round of work, and nothing else may wake it for
	// long (OpenSSH 9.2: the channel has no descriptor left to wait on).
	// A new control connection wakes it.
	ctx, cancel := context.WithTimeout(context.Background(), pokeTimeout)
	defer cancel()
	f.client.aliveCheck(ctx)
	return nil
}

// OpenRemoteFwd asks the master to listen on listenHost:listenPort on the
// SSH server's side (listenPort 0: the server picks one) and to connect
// each connection made there to connectHost:connectPort from the master's
// side; connectPort -1 makes connectHost a Unix socket path. It returns
// the port the server listens on: listenPort itself when it is not 0,
// else the port the server picked (1-65535). The forward belongs to the
// master, not to a control connection: it stays until CloseRemoteFwd or
// the master exits, even after this program has ended.
//
// With an error the port is 0. The error is a *RefusedError when the
// master or the SSH server refused, and wraps ErrProtocol when the
// master's answer does not fit the request: for a fixed port anything but
// MUX_S_OK (a port named in the answer is never taken for the forward's),
// for port 0 anything but the allocated port. Whether the master holds the
// forward is then unknown; CloseRemoteFwd with the same arguments cancels
// it if it does.
func (c *Client) OpenRemoteFwd(ctx context.Context, listenHost string, listenPort int, connectHost string, connectPort int) (int, error) {
	return c.fwdRequest(ctx, msgCOpenFwd, listenHost, listenPort, connectHost, connectPort)
}

// CloseRemoteFwd cancels a forward made by OpenRemoteFwd; the arguments
// must be those given to OpenRemoteFwd (listenPort 0 when 0 was asked for,
// not the port it returned): the master knows its forwards only by their
// specification, as ssh -O cancel names them. Two forwards with the same
// specification cannot be told apart. It returns nil only when the master
// answered MUX_S_OK; a refusal (no such forward) is a *RefusedError, and
// any other answer an error wrapping ErrProtocol.
func (c *Client) CloseRemoteFwd(ctx context.Context, listenHost string, listenPort int, connectHost string, connectPort int) error {
	_, err := c.fwdRequest(ctx, msgCCloseFwd, listenHost, listenPort, connectHost, connectPort)
	return err
}

func (c *Client) fwdRequest(ctx context.Context, typ uint32, listenHost string, listenPort int, connectHost string, connectPort int) (int, error) {
	if listenPort < 0 || listenPort > 65535 {
		return 0, fmt.Errorf("sshmux: listen port %d out of range 0-65535", listenPort)
	}
	cport := uint32(connectPort)
	if connectPort == -1 {
		cport = portStreamLocal
	} else if connectPort < 1 || connectPort > 65535 {
		return 0, fmt.Errorf("sshmux: connect port %d out of range 1-65535", connectPort)
	}
	for _, h := range []string{listenHost, connectHost} {
		if strings.IndexByte(h, 0) >= 0 || len(h) > 1024 {
			return 0, errors.New("sshmux: forward host contains a NUL byte or is longer than 1024 bytes")
		}
	}
	if connectHost == "" {
		return 0, errors.New("sshmux: empty connect host")
	}
	ctl, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	var port int
	err = withContext(ctx, ctl, func() error {
		req := append(helloMsg(), fwdMsg(typ, 1, listenHost, uint32(listenPort), connectHost, cport)...)
		if _, err := ctl.Write(req); err != nil {
			return err
		}
		if err := readHelloWithin(ctx, ctl); err != nil {
			return err
		}
		m, err := readPacket(ctl)
		if err != nil {
			return err
		}
		port, err = parseFwdReply(m, 1, typ, uint32(listenPort))
		return err
	})
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			return 0, err
		}
		return 0, c.wrap("forward request", err)
	}
	return port, nil
}

// connect opens a control connection. A master's listen backlog is short
// (64 in OpenSSH): a full one makes a non-blocking connect fail with
// EAGAIN, so that is retried until ctx ends.
func (c *Client) connect(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	backoff := 100 * time.Microsecond
	for {
		conn, err := d.DialContext(ctx, "unix", c.addr)
		if err == nil {
			return conn.(*net.UnixConn), nil
		}
		if !errors.Is(err, syscall.EAGAIN) {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("sshmux: connecting to the ControlMaster at %s: %w", c.path, ctx.Err())
			}
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
				return nil, fmt.Errorf("%w: %s: %v", ErrNoMaster, c.path, errors.Unwrap(err))
			}
			return nil, fmt.Errorf("sshmux: connecting to the ControlMaster at %s: %w", c.path, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("sshmux: connecting to the ControlMaster at %s: %w", c.path, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}

// wrap turns an error of a request on a control connection into one that
// says what failed: a connection closed by the master without an answer
// means it is going away (ErrNoMaster).
func (c *Client) wrap(what string, err error) error {
	if errors.Is(err, ErrMasterSilent) {
		return fmt.Errorf("%w: %s: during the %s", err, c.path, what)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sshmux: %s through the ControlMaster at %s: %w", what, c.path, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %s: the master closed the control connection during the %s", ErrNoMaster, c.path, what)
	}
	return fmt.Errorf("sshmux: %s through the ControlMaster at %s: %w", what, c.path, err)
}

// readHelloWithin reads the master's hello within HelloTimeout (or ctx's
// deadline, if earlier), then puts ctx's deadline back on ctl.
func readHelloWithin(ctx context.Context, ctl *net.UnixConn) error {
	limit := time.Now().Add(HelloTimeout)
	dl, ok := ctx.Deadline()
	if !ok || limit.Before(dl) {
		ctl.SetReadDeadline(limit)
	}
	err := readHello(ctl)
	if ctx.Err() != nil {
		return err // withContext says why
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && (!ok || limit.Before(dl)) {
		return fmt.Errorf("%w within %v", ErrMasterSilent, HelloTimeout)
	}
	ctl.SetReadDeadline(dl) // the zero time when ctx has none
	return err
}

func readHello(ctl io.Reader) error {
	m, err := readPacket(ctl)
	if err != nil {
		return err
	}
	return checkHello(m)
}

// withContext runs f, which does I/O on conn, with ctx's deadline on conn
// and ctx's cancellation waking it. It returns ctx's error when ctx ended
// while f ran (f's work may then be cut short: the caller must close
// conn), else f's error, with conn's deadline cleared.
func withContext(ctx context.Context, conn net.Conn, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() {
		// The AfterFunc ran, or is running: the deadline is unusable.
		return ctx.Err()
	}
	if err != nil && hasDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
		// conn's timer can fire a moment before ctx's.
		return context.DeadlineExceeded
	}
	conn.SetDeadline(time.Time{})
	return err
}

// socketAddr checks that path can be a Unix socket address and returns
// what to dial.
func socketAddr(path string) (string, error) {
	if path == "" {
		return "", errors.New("sshmux: empty control path")
	}
	if strings.IndexByte(path, 0) >= 0 {
		return "", errors.New("sshmux: control path contains a NUL byte")
	}
	addr := path
	if path[0] == '@' {
		// Go reads a leading '@' as Linux's abstract namespace; OpenSSH
		// means a file of that name.
		addr = "./" + path
	}
	var sa syscall.RawSockaddrUnix
	if len(addr) >= len(sa.Path) {
		return "", fmt.Errorf("%w: %d bytes, at most %d fit (%.40s…)", ErrPathTooLong, len(addr), len(sa.Path)-1, path)
	}
	return addr, nil
}

// socketpair returns a connected pair of Unix stream sockets, close-on-exec.
func socketpair() (int, int, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, err
	}
	return fds[0], fds[1], nil
}

// fdConn makes a *net.UnixConn of a socket descriptor and closes fd (the
// conn holds a duplicate).
func fdConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "sshmux-socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socketpair gave a %T", c)
	}
	return uc, nil
}

// Conn is a connection opened by OpenStdioFwd: a TCP connection made by
// the master to the target, seen through two socketpairs whose other ends
// the master holds. It behaves like a *net.TCPConn:
//
//   - Deadlines work, and can be moved while a call is blocked; a timed-out
//     call returns a net.Error whose Timeout is true, wrapping
//     os.ErrDeadlineExceeded.
//   - CloseWrite half-closes it: the target reads EOF once it has read
//     what was written before, while Read goes on. CloseRead stops reads.
//   - Read returns io.EOF only when the target closed its side and the
//     master is still alive; when the master died, Read and Write return a
//     *net.OpError wrapping ErrMasterLost.
//   - Close wakes every blocked call with an error wrapping net.ErrClosed.
//     What was written before Close is still delivered: the control
//     connection is kept (by a goroutine) until the master has finished
//     the forward, or for at most lingerTimeout (10 s).
//
// All methods may be called concurrently. A Conn starts no goroutine until
// Close, which starts the one above.
type Conn struct {
	client       *Client
	ctl          *net.UnixConn // the control connection that owns the forward
	rd           *net.UnixConn // what the master writes: the target's data
	wr           *net.UnixConn // what the master reads: data for the target
	laddr, raddr net.Addr

	closed    atomic.Bool
	closeOnce sync.Once

	checkMu  sync.Mutex // serializes verdicts and requests on ctl
	nextID   uint32     // checkMu
	lost     bool       // checkMu: the master was found gone; never cleared
	readDone bool       // checkMu: an EOF was confirmed clean
}

var _ net.Conn = (*Conn)(nil)

// Read reads data from the target. See Conn for what its errors mean.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.rd.Read(b)
	switch {
	case err == nil:
	case err == io.EOF:
		if c.closed.Load() {
			return n, c.opError("read", net.ErrClosed)
		}
		if c.eofIsLost() {
			return n, c.opError("read", ErrMasterLost)
		}
	default:
		err = c.fixError("read", err)
	}
	return n, err
}

// Write writes data for the target. See Conn for what its errors mean.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.wr.Write(b)
	if err != nil {
		if !c.closed.Load() && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) && c.masterLost() {
			return n, c.opError("write", ErrMasterLost)
		}
		err = c.fixError("write", err)
	}
	return n, err
}

// fixError puts the Conn's addresses into an error of the socketpair.
func (c *Conn) fixError(op string, err error) error {
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		return c.opError(op, net.ErrClosed)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return c.opError(op, oe.Err)
	}
	return err
}

// eofIsLost reports whether an EOF read from the master means that the
// master is gone; a confirmed clean EOF is remembered.
func (c *Conn) eofIsLost() bool {
	c.checkMu.Lock()
	done := c.readDone
	c.checkMu.Unlock()
	if done {
		return false
	}
	lost := c.masterLost()
	if !lost {
		c.checkMu.Lock()
		c.readDone = true
		c.checkMu.Unlock()
	}
	return lost
}

// masterLost asks the master whether it is still alive: first on the
// Conn's own control connection (the master answers there while the
// forward lasts), then, as the master closes that connection once the
// forward is over, on a new one. No answer in checkTimeout is a lost
// master. A Conn closed meanwhile is never called lost.
func (c *Conn) masterLost() bool {
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	if c.lost {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	if c.ctlAlive(ctx) == nil {
		return false
	}
	if _, err := c.client.aliveCheck(ctx); err == nil {
		return false
	}
	if pid := c.client.pid; pid > 0 && !processGone(pid, exitWait) {
		// No longer listening, but alive (`ssh -O stop`): the
		// master ended the forward.
		return false
	}
	if c.closed.Load() {
		return false
	}
	c.lost = true
	return true
}

// ctlAlive makes an alive check on the Conn's control connection; the
// caller holds checkMu.
func (c *Conn) ctlAlive(ctx context.Context) error {
	id := c.nextID
	c.nextID++
	return withContext(ctx, c.ctl, func() error {
		if _, err := c.ctl.Write(aliveMsg(id)); err != nil {
			return err
		}
		m, err := readPacket(c.ctl)
		if err != nil {
			return err
		}
		_, err = parseAlive(m, id)
		return err
	})
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// CloseWrite shuts down the writing side: the target reads EOF after the
// data written before.
func (c *Conn) CloseWrite() error { return c.wr.CloseWrite() }

// CloseRead shuts down the reading side: Read returns EOF at once, and
// data the target sends from then on is discarded by the master.
func (c *Conn) CloseRead() error { return c.rd.CloseRead() }

// Close closes the connection: blocked and later calls return an error
// wrapping net.ErrClosed. The master sends the data written before, then
// EOF, to the target and ends the forward. Calling Close again returns an
// error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		c.rd.Close()
		c.wr.Close()
		go c.linger()
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// linger keeps the control connection until the master closes it (the
// forward is over: everything written was read by the master and sent) or
// lingerTimeout passes, then closes it, which ends the forward for good.
func (c *Conn) linger() {
	c.ctl.SetReadDeadline(time.Now().Add(lingerTimeout))
	var buf [256]byte
	for {
		if _, err := c.ctl.Read(buf[:]); err != nil {
			break
		}
	}
	c.ctl.Close()
}

// LocalAddr returns the control path, as a *net.UnixAddr.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the target given to OpenStdioFwd: a *net.TCPAddr when
// the host is an IP address, else an Addr with network "tcp".
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.rd.SetReadDeadline(t), c.wr.SetWriteDeadline(t))
}

// SetReadDeadline sets the deadline of Read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.rd.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Write.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.wr.SetWriteDeadline(t) }

// OpenStdioFwdUnix is OpenStdioFwd to a Unix socket at path on the SSH
// server's side (a direct-streamlocal@openssh.com channel), as
// `ssh -W /path` does.
func (c *Client) OpenStdioFwdUnix(ctx context.Context, path string) (*Conn, error) {
	if err := checkTarget(path, 1); err != nil {
		return nil, err
	}
	return c.openStdioFwd(ctx, path, portStreamLocal, &net.UnixAddr{Name: path, Net: "unix"})
}

// processGone reports whether process pid exits (or is a zombie) within
// d: kill(pid, 0) failing with ESRCH, or a zombie as the system tells
// (processDead).
func processGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || processDead(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
