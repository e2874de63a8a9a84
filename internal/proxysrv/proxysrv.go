// Package proxysrv serves local proxies whose outgoing connections are made
// by a DialFunc, in cmd/sshdial through an SSH server: SOCKS5 and SOCKS4/4a
// (as `ssh -D` does) and HTTP CONNECT.
//
// Each accepted connection reads one request within HandshakeTimeout, dials
// its target within DialTimeout, answers, and then copies bytes both ways;
// or, with Server.HandOver set, a SOCKS request may be answered at once and
// its connection given to another process that copies by itself.
// An end of file in one direction is passed on as a half-close (CloseWrite)
// when the other side supports it; the tunnel is closed when both directions
// have ended, or at once when a direction ends with an error or its
// destination cannot be half-closed.
//
// # Reply codes
//
// A failed dial is answered according to its error (socks5Reply and
// httpStatus; ErrTargetUnreachable is sshdial's, matched with the message of
// its *sshdial.OpenError):
//
//	error                                   SOCKS5                     SOCKS4  HTTP
//	sshdial.ErrProhibited                   0x02 not allowed           91      403
//	ECONNREFUSED; ErrTargetUnreachable
//	  saying "refused"                      0x05 refused               91      502
//	ENETUNREACH; ErrTargetUnreachable
//	  saying "network is unreachable"       0x03 network unreachable   91      502
//	other ErrTargetUnreachable, EHOSTUNREACH,
//	  a DNS error                           0x04 host unreachable      91      502
//	a timeout (DialTimeout, ETIMEDOUT,
//	  ErrTargetUnreachable "timed out")      0x04 host unreachable      91      504
//	a *net.AddrError (an address the dialer
//	  will not send, such as one with a NUL)  0x04 host unreachable      91      400
//	sshdial.ErrResourceShortage             0x01 general failure       91      503
//	the SSH connection lost, closed or not
//	  answering; anything else              0x01 general failure       91      502
//
// A timeout is answered as host unreachable, not 0x06 (TTL expired, which
// some servers use for it): clients such as curl show 0x04 as "host
// unreachable", which is what a target that does not answer looks like,
// whereas TTL expiry means something else. A timeout of the SSH connection
// itself (sshdial.ErrServerNotResponding) is the proxy's own failure, 0x01.
//
// # Requests refused
//
// A refused request is answered, and never dialed nor handed over.
//
// A host name with a NUL byte or longer than DNS allows (255 bytes) is not
// dialed at all: OpenSSH's sshd would drop the whole SSH connection for the
// NUL. Nor is a name with '[' or ']', which no host:port address can carry,
// or with another ASCII control character (C0 or DEL), which no host name
// has and which would reach the logs that show the target. SOCKS5 answers
// it with 0x04 (host unreachable), SOCKS4a with 91, HTTP with 400.
//
// A SOCKS request for port 0 (no TCP service has it) or, in SOCKS5 or
// SOCKS4a, an empty name is malformed: SOCKS5 answers 0x01 (general
// failure; RFC 1928 has no code for a bad request), SOCKS4 91.
//
// An HTTP CONNECT target must be host:port, without user information; the
// port 1-65535 written in canonical decimal (no sign, no leading zero:
// "x:0080" gets 400); the host a name or IPv4 address without brackets, or
// an IPv6 address in brackets, whose zone, if any, is written as RFC 6874
// says, "[fe80::1%25eth0]:80", with unreserved characters only. That
// target is dialed as "[fe80::1%eth0]:80"; a zone written raw,
// "[fe80::1%eth0]", and anything else gets 400.
//
// Requests the servers do not support: SOCKS5 BIND and UDP ASSOCIATE (and
// any other command) get 0x07, an unknown address type 0x08, a client that
// offers no "no authentication" method 0xFF; SOCKS4 BIND gets 91; an HTTP
// method other than CONNECT gets 405, and anything unparsable 400.
package proxysrv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/handover"
)

// DialFunc opens a connection to address ("host:port"; host may be a name,
// which the dialer resolves — through sshdial that is the SSH server). It
// must return soon after ctx ends.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Server serves one proxy protocol on listeners. Zero values of the
// optional fields are fine. A Server must not be copied after first use.
type Server struct {
	Dial   DialFunc
	Logger *slog.Logger // nil: no logs. Never logs secrets.
	// HandshakeTimeout bounds reading the client's request (default 10s);
	// DialTimeout bounds Dial (default 30s).
	HandshakeTimeout, DialTimeout time.Duration
	// OnTunnel, if set, is called when a tunnel opens and when it ends with
	// bytes each way, for stats. It is called only for tunnels whose dial
	// succeeded, on the tunnel's goroutine: it must not block.
	OnTunnel func(ev TunnelEvent)
	// HandOver, if set, is tried first for each SOCKS request whose
	// client sent nothing past it: it may give the client connection to
	// another process that then reads and writes it itself (in
	// cmd/sshdial, the OpenSSH ControlMaster the Dialer dials through),
	// with handover.Func's contract; before is the proxy's success
	// answer. So through it a request is answered as soon as the
	// connection can be handed over, before the target is reached, as
	// `ssh -D` answers: a target that cannot be reached then closes the
	// connection with a reset (SO_LINGER 0), and the client gets no
	// error code. Only when HandOver reports handled false before it
	// called before is the request dialed and answered as usual. HTTP
	// CONNECT does not use it: HTTP proxies answer after the dial.
	HandOver func(ctx context.Context, c net.Conn, address string, before func() error) (handover.Forward, bool, error)

	mu       sync.Mutex
	serves   map[*serveState]struct{}
	sessions int           // accepted connections not yet finished, all Serves
	idle     chan struct{} // closed when sessions drops to 0, if someone waits
	draining bool          // Shutdown was called
	open     atomic.Int64  // tunnels
}

// TunnelEvent is a tunnel opening (Open true) or ending (Open false, with
// the bytes sent to the target and received from it, and the error that
// ended it, nil when both directions ended with EOF). For a tunnel given
// to HandOver, Sent and Received are -1 when the system does not tell.
type TunnelEvent struct {
	// Proto is "socks5", "socks4" or "http-connect"; Target is host:port
	// as the client asked and Dial was given (for HTTP CONNECT, an IPv6
	// zone written %25zone is given as %zone).
	Proto, Target  string
	Open           bool
	Sent, Received int64
	Err            error
	HandedOver     bool // the tunnel was given to HandOver
}

const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultDialTimeout      = 30 * time.Second
)

// errClosedByProxy ends a tunnel that Shutdown, a closed listener or the
// Serve context closed.
var errClosedByProxy = fmt.Errorf("proxysrv: tunnel closed by the proxy: %w", net.ErrClosed)

// serveState is one Serve call.
type serveState struct {
	l      net.Listener
	cancel context.CancelFunc // closes every connection of this Serve
}

// ServeSOCKS accepts on l until l is closed or ctx ends, serving SOCKS5
// (RFC 1928, CONNECT only, no-auth method; ATYP domain names passed to Dial
// unresolved, IPv4, IPv6) and SOCKS4/4a (CONNECT), told apart by their first
// byte.
//
// It returns nil after ctx ended or l was closed (and closes l when ctx
// ends), or the error of an Accept that is neither temporary nor caused by
// the close. When it returns, every tunnel it started is closed and its
// goroutines have exited, unless graceful: after Shutdown, it waits for its
// tunnels to end by themselves or for Shutdown's context to end (or for
// ctx to end). Called after Shutdown, it returns nil at once.
func (s *Server) ServeSOCKS(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.socksConn)
}

// ServeHTTPConnect accepts on l and serves HTTP CONNECT (RFC 9110 9.3.6):
// 200 then a raw tunnel. It answers other methods with 405 (or 400 for junk)
// and never proxies plain HTTP requests. It returns as ServeSOCKS does.
func (s *Server) ServeHTTPConnect(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.httpConn)
}

// Shutdown stops accepting, by closing the listeners the Serve methods are
// accepting on (the caller may close them too, before or after; but a
// listener closed before Shutdown is a hard stop of its Serve), and waits
// until the open tunnels and handshakes finish or ctx ends; then it closes
// what is left, waits for its goroutines and returns ctx's error. It returns
// nil when everything finished by itself. Safe to call concurrently with the
// Serve methods and more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for st := range s.serves {
		st.l.Close()
	}
	idle := s.idleLocked()
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for st := range s.serves {
		st.cancel()
	}
	idle = s.idleLocked()
	s.mu.Unlock()
	<-idle
	return ctx.Err()
}

// Open returns the number of open tunnels.
func (s *Server) Open() int { return int(s.open.Load()) }

// idleLocked returns a channel closed once no connection is being served.
func (s *Server) idleLocked() <-chan struct{} {
	if s.sessions == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	return s.idle
}

func (s *Server) sessionDone() {
	s.mu.Lock()
	s.sessions--
	if s.sessions == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

func (s *Server) serve(ctx context.Context, l net.Listener, handle func(*session)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &serveState{l: l, cancel: cancel}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	if s.serves == nil {
		s.serves = map[*serveState]struct{}{}
	}
	s.serves[st] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.serves, st)
		s.mu.Unlock()
	}()
	stopClosing := context.AfterFunc(sctx, func() { l.Close() })
	defer stopClosing()

	var wg sync.WaitGroup
	var err error
	pause := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second} // the command's accept loops' policy
	for {
		c, aerr := l.Accept()
		if aerr != nil {
			if sctx.Err() != nil || errors.Is(aerr, net.ErrClosed) {
				break
			}
			var te interface{ Temporary() bool }
			if errors.As(aerr, &te) && te.Temporary() { // EMFILE and the like
				delay := pause.Fail()
				s.logger().Warn("proxy: accept", "err", aerr, "retry_in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-sctx.Done():
				}
				break
			}
			err = aerr
			break
		}
		pause.Reset()
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.sessions++
		s.mu.Unlock()
		wg.Go(func() {
			defer s.sessionDone()
			ss := newSession(sctx, c)
			defer ss.finish()
			handle(ss)
		})
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	s.mu.Lock()
	graceful := s.draining && err == nil
	s.mu.Unlock()
	if graceful {
		select {
		case <-done:
		case <-sctx.Done(): // ctx ended, or Shutdown's did
		}
	}
	cancel()
	<-done
	return err
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return discard
	}
	return s.Logger
}

var discard = slog.New(slog.DiscardHandler)

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return defaultHandshakeTimeout
}

func (s *Server) dialTimeout() time.Duration {
	if s.DialTimeout > 0 {
		return s.DialTimeout
	}
	return defaultDialTimeout
}

// session is one accepted connection: its handshake, then its tunnel.
type session struct {
	parent context.Context // the Serve's: ends when the proxy closes everything
	ctx    context.Context // ends when the connection must be closed
	cancel context.CancelFunc
	stop   func() bool // stops the close-on-cancel
	c      net.Conn
	br     *bufio.Reader // reads c during the handshake

	mu     sync.Mutex
	up     io.Closer // the target, once dialed, or the Forward of a hand-over
	closed bool
}

// handshakeBuffer is the size of the buffered reader of a handshake, and
// the bound of an HTTP CONNECT request's head.
const handshakeBuffer = 4 << 10

func newSession(parent context.Context, c net.Conn) *session {
	ctx, cancel := context.WithCancel(parent)
	ss := &session{parent: parent, ctx: ctx, cancel: cancel, c: c}
	ss.br = bufio.NewReaderSize(&limitedConn{c: c, n: handshakeBuffer * 4}, handshakeBuffer)
	ss.stop = context.AfterFunc(ctx, ss.closeAll)
	return ss
}

// closeAll closes the client connection and the target's.
func (ss *session) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	up := ss.up
	ss.mu.Unlock()
	ss.c.Close()
	if up != nil {
		up.Close()
	}
}

// setUp records the dialed target connection (or the Forward of a
// hand-over); it returns false (having closed up) if the session was
// closed meanwhile.
func (ss *session) setUp(up io.Closer) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		up.Close()
		return false
	}
	ss.up = up
	return true
}

func (ss *session) finish() {
	ss.stop()
	ss.cancel()
	ss.closeAll()
}

// limitedConn reads at most n bytes from c: the bound of a handshake,
// whose reads go through a bufio.Reader. The tunnel reads c itself.
type limitedConn struct {
	c net.Conn
	n int
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHandshakeTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	k, err := l.c.Read(p)
	l.n -= k
	return k, err
}

var errHandshakeTooLong = errors.New("proxysrv: handshake too long")

// dial dials target within DialTimeout and records the connection in ss.
func (s *Server) dial(ss *session, target string) (net.Conn, error) {
	if s.Dial == nil {
		return nil, errors.New("proxysrv: Server.Dial is nil")
	}
	ctx, cancel := context.WithTimeout(ss.ctx, s.dialTimeout())
	defer cancel()
	up, err := s.Dial(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	if !ss.setUp(up) {
		return nil, errClosedByProxy
	}
	return up, nil
}

// startHandshake bounds the reading of the request; endHandshake lifts
// the bound before the dial.
func (s *Server) startHandshake(ss *session) { ss.c.SetDeadline(time.Now().Add(s.handshakeTimeout())) }
func endHandshake(ss *session)               { ss.c.SetDeadline(time.Time{}) }

// reply writes an answer to the client within HandshakeTimeout.
func (s *Server) reply(ss *session, b []byte) error {
	ss.c.SetWriteDeadline(time.Now().Add(s.handshakeTimeout()))
	_, err := ss.c.Write(b)
	ss.c.SetWriteDeadline(time.Time{})
	return err
}

// tunnel copies bytes both ways between the client and up until both
// directions end, passing on half-closes. Bytes the handshake's reader
// read past the request go first.
func (s *Server) tunnel(ss *session, proto, target string, up net.Conn) {
	s.open.Add(1)
	defer s.open.Add(-1)
	log := s.logger().With("proto", proto, "client", ss.c.RemoteAddr().String(), "target", target)
	log.Debug("proxy: tunnel open")
	if s.OnTunnel != nil {
		s.OnTunnel(TunnelEvent{Proto: proto, Target: target, Open: true})
	}
	start := time.Now()

	var errMu sync.Mutex
	var firstErr error
	ended := func(err error, dst net.Conn) {
		if err == nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return // the other direction goes on
			}
		}
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		ss.cancel() // closes both
	}
	var sent int64
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		var err error
		if k := ss.br.Buffered(); k > 0 {
			b, _ := ss.br.Peek(k)
			var n int
			n, err = up.Write(b)
			sent = int64(n)
		}
		if err == nil {
			var n int64
			n, err = io.Copy(up, ss.c)
			sent += n
		}
		ended(err, up)
	}()
	received, err := io.Copy(ss.c, up)
	ended(err, ss.c)
	<-upDone

	errMu.Lock()
	err = firstErr
	errMu.Unlock()
	if err != nil && ss.parent.Err() != nil {
		err = errClosedByProxy
	}
	log.Debug("proxy: tunnel closed", "sent", sent, "received", received, "duration", time.Since(start), "err", err)
	if s.OnTunnel != nil {
		s.OnTunnel(TunnelEvent{Proto: proto, Target: target, Sent: sent, Received: received, Err: err})
	}
}

// handOver gives the client connection to s.HandOver for target and, when
// it was handed over, waits until that tunnel is over. It reports what
// HandOver reported.
func (s *Server) handOver(ss *session, proto, target string, before func() error) (bool, error) {
	ctx, cancel := context.WithTimeout(ss.ctx, s.dialTimeout())
	fw, handled, err := s.HandOver(ctx, ss.c, target, before)
	cancel()
	if !handled || err != nil {
		return handled, err
	}
	if !ss.setUp(fw) {
		fw.Wait()
		return true, nil
	}
	s.open.Add(1)
	defer s.open.Add(-1)
	log := s.logger().With("proto", proto, "client", ss.c.RemoteAddr().String(), "target", target)
	log.Debug("proxy: tunnel open, handed over")
	if s.OnTunnel != nil {
		s.OnTunnel(TunnelEvent{Proto: proto, Target: target, Open: true, HandedOver: true})
	}
	start := time.Now()
	sent, received, werr := fw.Wait()
	if werr != nil && ss.parent.Err() != nil {
		werr = errClosedByProxy
	}
	log.Debug("proxy: tunnel closed", "sent", sent, "received", received, "duration", time.Since(start), "err", werr)
	if s.OnTunnel != nil {
		s.OnTunnel(TunnelEvent{Proto: proto, Target: target, Sent: sent, Received: received, Err: werr, HandedOver: true})
	}
	return true, nil
}

// reset closes the client connection with a reset (TCP), for a request
// answered with success whose target could not be reached after all: the
// client must not take the close for the target's.
func reset(ss *session) {
	if tc, ok := ss.c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	ss.c.Close()
}
