package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/handover"
)

// forward is one -L, -R, -D or --http-proxy, with its counters.
type forward struct {
	kind string      // "-L", "-R", "-D", "--http-proxy"
	text string      // as given on the command line
	spec forwardSpec // for -D and --http-proxy, listen only

	open, total, failed atomic.Int64
	sent, received      atomic.Int64 // toward the target, and back

	mu    sync.Mutex
	addr  string // what it listens on
	state string // "listening", or why it is not
	stop  func() // closes its listener
	proxy *proxyServer
}

func (f *forward) setState(addr, state string) {
	f.mu.Lock()
	if addr != "" {
		f.addr = addr
	}
	f.state = state
	f.mu.Unlock()
}

// target describes where the forward's tunnels go.
func (f *forward) target() string {
	switch f.kind {
	case "-D":
		return "SOCKS"
	case "--http-proxy":
		return "HTTP CONNECT"
	}
	if f.spec.dynamic {
		return "SOCKS, dialed from here"
	}
	return f.spec.target.String()
}

// session is a running sshdial: the Dialer and the forwards.
type session struct {
	o        *options
	d        *sshdial.Dialer
	log      *slog.Logger
	dialWait time.Duration
	started  time.Time

	stopping atomic.Bool
	hardCtx  context.Context // ends when open tunnels must close
	hardStop context.CancelFunc

	forwards []*forward
	wg       sync.WaitGroup // accept loops and retries
	tunnels  sync.WaitGroup

	// failed receives the first forward lost for good while the session
	// runs, with ExitOnForwardFailure: the command then ends (exit 3).
	failed chan *forwardError

	mu     sync.Mutex
	active map[io.Closer]struct{} // the client side of open -L and -R tunnels
}

func newSession(o *options, d *sshdial.Dialer, log *slog.Logger) *session {
	s := &session{
		o:        o,
		d:        d,
		log:      log,
		dialWait: 30 * time.Second,
		started:  time.Now(),
		active:   map[io.Closer]struct{}{},
		failed:   make(chan *forwardError, 1),
	}
	if o.connectTimeout > 0 {
		s.dialWait = o.connectTimeout
	}
	s.hardCtx, s.hardStop = context.WithCancel(context.Background())
	for _, f := range o.local {
		s.forwards = append(s.forwards, &forward{kind: "-L", text: f.text, spec: f})
	}
	for _, f := range o.remote {
		s.forwards = append(s.forwards, &forward{kind: "-R", text: f.text, spec: f})
	}
	for _, f := range o.dynamic {
		s.forwards = append(s.forwards, &forward{kind: "-D", text: f.text, spec: f})
	}
	for _, f := range o.httpPx {
		s.forwards = append(s.forwards, &forward{kind: "--http-proxy", text: f.text, spec: f})
	}
	return s
}

// forwardError is the error of a forward that could not be set up.
type forwardError struct {
	f   *forward
	err error
}

func (e *forwardError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.f.kind, e.f.text, e.err)
}

func (e *forwardError) Unwrap() error { return e.err }

// start sets up every forward. With ExitOnForwardFailure (the default) the
// first that fails is returned; otherwise failures are logged and retried
// in the background.
func (s *session) start(ctx context.Context) error {
	for _, f := range s.forwards {
		err := s.startForward(ctx, f)
		if err == nil {
			continue
		}
		ferr := &forwardError{f, err}
		if s.o.exitOnFwdFail {
			return ferr
		}
		s.log.Error("forward failed; retrying in the background (ExitOnForwardFailure=no)", "forward", f.kind+" "+f.text, "err", err)
		f.setState("", "retrying: "+err.Error())
		s.wg.Go(func() { s.retryForward(f) })
	}
	return nil
}

// retryForward tries to set f up again, with backoff, until it works, the
// session stops, or the Dialer is closed.
func (s *session) retryForward(f *forward) {
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		if !s.sleep(b.Fail()) {
			return
		}
		ctx, cancel := context.WithTimeout(s.hardCtx, s.dialWait)
		err := s.startForward(ctx, f)
		cancel()
		switch {
		case err == nil:
			s.log.Info("forward set up after retrying", "forward", f.kind+" "+f.text)
			return
		case errors.Is(err, sshdial.ErrDialerClosed):
			s.forwardFailed(f, err)
			return
		}
		f.setState("", "retrying: "+err.Error())
		s.log.Warn("forward still failing", "forward", f.kind+" "+f.text, "err", err, "retry_in", b.Wait().Round(time.Millisecond))
	}
}

// forwardFailed reports f lost for good while the session runs: the
// library gave up on a -R forward (the server refused it after a
// reconnect) or the Dialer was closed. Nothing tries it again. With
// ExitOnForwardFailure the session ends (exit 3), as when a forward fails
// at start; without, f shows as failed and the other forwards go on.
func (s *session) forwardFailed(f *forward, err error) {
	if s.stopping.Load() {
		return
	}
	f.setState("", "failed: "+err.Error())
	if s.o.exitOnFwdFail {
		select {
		case s.failed <- &forwardError{f, err}:
		default: // another forward's failure ends the session already
		}
		return
	}
	s.log.Error("forward failed; not retried (ExitOnForwardFailure=no)", "forward", f.kind+" "+f.text, "err", err)
}

// sleep waits for d, or returns false when the session stops first.
func (s *session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for !s.stopping.Load() {
		select {
		case <-t.C:
			return !s.stopping.Load()
		case <-time.After(100 * time.Millisecond):
		case <-s.hardCtx.Done():
			return false
		}
	}
	return false
}

func (s *session) startForward(ctx context.Context, f *forward) error {
	switch f.kind {
	case "-L":
		l, err := s.listenLocal(f.spec.listen)
		if err != nil {
			return err
		}
		s.serveLocal(f, l)
	case "-R":
		network, addr := remoteListenAddr(f.spec.listen)
		l, err := s.d.Listen(ctx, network, addr)
		if err != nil {
			return err
		}
		s.serveRemote(f, l)
	case "-D", "--http-proxy":
		l, err := s.listenLocal(f.spec.listen)
		if err != nil {
			return err
		}
		s.serveProxy(f, l)
	}
	return nil
}

// listenLocal listens for -L, -D and --http-proxy: on 127.0.0.1 unless a
// bind address is given ("*" or empty: every interface) or -g. A unix
// socket is made mode 0600 whatever the umask, as OpenSSH makes it.
func (s *session) listenLocal(e endpoint) (net.Listener, error) {
	if e.path != "" {
		return listenUnixPrivate(e.path)
	}
	host := e.host
	switch {
	case host == "" && s.o.gatewayPorts, host == "*":
		host = ""
	case host == "" && s.o.family == "inet6":
		host = "::1"
	case host == "":
		host = "127.0.0.1"
	}
	return net.Listen(familyNetwork(s.o.family), net.JoinHostPort(host, strconv.Itoa(e.port)))
}

// familyNetwork is the network of -4 ("inet") and -6 ("inet6").
func familyNetwork(family string) string {
	switch family {
	case "inet":
		return "tcp4"
	case "inet6":
		return "tcp6"
	}
	return "tcp"
}

// remoteListenAddr is what -R asks the SSH server to listen on: loopback
// unless a bind address is given (the server's GatewayPorts decides).
func remoteListenAddr(e endpoint) (network, addr string) {
	if e.path != "" {
		return "unix", e.path
	}
	host := e.host
	switch host {
	case "":
		host = "localhost"
	case "*":
		host = ""
	}
	return "tcp", net.JoinHostPort(host, strconv.Itoa(e.port))
}

// dialThrough dials address through the SSH server, waiting up to dialWait
// for the SSH connection while it is being made again.
func (s *session) dialThrough(ctx context.Context, network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.dialWait)
	defer cancel()
	for {
		c, err := s.d.DialContext(ctx, network, address)
		if err == nil {
			return c, nil
		}
		var oe *sshdial.OpenError
		var ae *net.AddrError
		if errors.As(err, &oe) || errors.As(err, &ae) || errors.Is(err, sshdial.ErrDialerClosed) || ctx.Err() != nil {
			return nil, err
		}
		s.log.Debug("waiting for the SSH connection", "target", address, "err", err)
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// track registers the client side of a tunnel, to be closed when the grace
// period ends; it returns false when that has happened already.
func (s *session) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hardCtx.Err() != nil {
		return false
	}
	s.active[c] = struct{}{}
	s.tunnels.Add(1)
	return true
}

func (s *session) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.active, c)
	s.mu.Unlock()
	s.tunnels.Done()
}

// tunnel connects client to the target dial returns, and copies between
// them until both ends are done. When hand is not nil it is tried first:
// it gives client to the ControlMaster the Dialer dials through, which then
// reads and writes client itself (see handedTunnel), and reports false
// when there is none to give it to.
func (s *session) tunnel(f *forward, client net.Conn, from string, dial func(ctx context.Context) (net.Conn, error), hand func(ctx context.Context) (handover.Forward, bool, error)) {
	end := &tunnelEnd{c: client}
	if !s.track(end) {
		client.Close()
		return
	}
	f.open.Add(1)
	f.total.Add(1)
	go func() {
		defer s.untrack(end)
		defer f.open.Add(-1)
		if hand != nil {
			fw, handled, err := hand(s.hardCtx)
			if handled {
				if err != nil {
					s.tunnelFailed(f, client, from, err)
					return
				}
				s.handedTunnel(f, end, fw, from)
				return
			}
		}
		target, err := dial(s.hardCtx)
		if err != nil {
			s.tunnelFailed(f, client, from, err)
			return
		}
		s.log.Debug("tunnel open", "forward", f.kind+" "+f.text, "from", from, "target", f.target())
		start := time.Now()
		sent, received, err := pipe(client, client, &countedConn{Conn: target, sent: &f.sent, received: &f.received})
		attrs := []any{"forward", f.kind + " " + f.text, "from", from, "sent", sent, "received", received, "duration", time.Since(start).Round(time.Millisecond)}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			attrs = append(attrs, "err", err)
		}
		s.log.Debug("tunnel closed", attrs...)
	}()
}

func (s *session) tunnelFailed(f *forward, client net.Conn, from string, err error) {
	f.failed.Add(1)
	s.log.Warn("tunnel failed", "forward", f.kind+" "+f.text, "from", from, "target", f.target(), "err", err)
	client.Close()
}

// handedTunnel waits for a tunnel whose client connection the ControlMaster
// reads and writes itself: no copy here, so the tunnel is as fast as
// `ssh -L`'s. The Forward closes the client connection when the master
// ends the tunnel (a reset when the master died), and its byte counts,
// from the kernel, reach the forward's totals only then.
func (s *session) handedTunnel(f *forward, end *tunnelEnd, fw handover.Forward, from string) {
	end.set(fw)
	s.log.Debug("tunnel open", "forward", f.kind+" "+f.text, "from", from, "target", f.target(), "through", "the ControlMaster, which reads and writes the connection itself")
	start := time.Now()
	sent, received, err := fw.Wait()
	attrs := []any{"forward", f.kind + " " + f.text, "from", from}
	if sent >= 0 {
		f.sent.Add(sent)
		f.received.Add(received)
		attrs = append(attrs, "sent", sent, "received", received)
	}
	attrs = append(attrs, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		attrs = append(attrs, "err", err)
	}
	s.log.Debug("tunnel closed", attrs...)
}

// tunnelEnd is what closes an open tunnel when the grace period ends: its
// client connection, with a reset when it is TCP (the tunnel was cut
// short: a clean close would look complete), or, once the connection was
// handed over to the ControlMaster, the Forward (closing only this
// process's descriptor of the connection would not end it; the Forward
// resets it).
type tunnelEnd struct {
	mu     sync.Mutex
	c      io.Closer
	closed bool // Close was called: a closer set later is closed at once
}

func (e *tunnelEnd) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if tc, ok := e.c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return e.c.Close()
}

// set makes c what Close closes; it closes c at once when Close came
// first.
func (e *tunnelEnd) set(c io.Closer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.c = c
	if e.closed {
		c.Close()
	}
}

// serveLocal accepts -L's local connections and forwards each through the
// SSH server.
func (s *session) serveLocal(f *forward, l net.Listener) {
	f.mu.Lock()
	f.stop = func() { l.Close() }
	f.mu.Unlock()
	f.setState(l.Addr().String(), "listening")
	s.log.Info("forwarding", "forward", "-L "+f.text, "listen", l.Addr().String(), "target", f.target())
	target := f.spec.target
	s.wg.Go(func() {
		acceptLoop(s, f, l, func(c net.Conn) {
			s.tunnel(f, c, c.RemoteAddr().String(), func(ctx context.Context) (net.Conn, error) {
				return s.dialThrough(ctx, target.network(), target.String())
			}, func(ctx context.Context) (handover.Forward, bool, error) {
				ctx, cancel := context.WithTimeout(ctx, s.dialWait)
				defer cancel()
				return handover.Func(s.d, ctx, c, target.network(), target.String(), nil)
			})
		})
	})
}

// acceptLoop accepts until l is closed or lost for good (a remote forward
// the server refused after a reconnect), pausing after other errors (such
// as EMFILE) with backoff.
func acceptLoop(s *session, f *forward, l net.Listener, handle func(net.Conn)) error {
	b := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	for {
		c, err := l.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, sshdial.ErrForwardRefused) {
				return err
			}
			delay := b.Fail()
			s.log.Warn("accept failed", "forward", f.kind+" "+f.text, "err", err, "retry_in", delay)
			if !s.sleep(delay) {
				return err
			}
			continue
		}
		b.Reset()
		handle(c)
	}
}

// serveRemote accepts -R's connections from the SSH server and connects
// each to the local target. The library makes the forward again after a
// reconnect; when it gives up (the server refused the forward then) or the
// Dialer is closed, the forward has failed for good: forwardFailed reports
// it, and nothing here asks again.
func (s *session) serveRemote(f *forward, l net.Listener) {
	f.mu.Lock()
	f.stop = func() { l.Close() }
	f.mu.Unlock()
	f.setState(l.Addr().String(), "listening")
	s.log.Info("forwarding", "forward", "-R "+f.text, "listen", "remote "+l.Addr().String(), "target", f.target())
	var serve func() error
	if f.spec.dynamic {
		ps := s.newProxy(f, func(ctx context.Context, network, address string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, address)
		})
		f.mu.Lock()
		f.proxy = ps
		f.mu.Unlock()
		serve = func() error { return ps.ServeSOCKS(context.Background(), l) }
	} else {
		target := f.spec.target
		handle := func(c net.Conn) {
			s.tunnel(f, c, c.RemoteAddr().String(), func(ctx context.Context) (net.Conn, error) {
				var nd net.Dialer
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return nd.DialContext(ctx, target.network(), target.String())
			}, nil)
		}
		serve = func() error { return acceptLoop(s, f, l, handle) }
	}
	s.wg.Go(func() {
		err := serve()
		if s.stopping.Load() {
			return
		}
		l.Close()
		if err == nil || (errors.Is(err, net.ErrClosed) && !errors.Is(err, sshdial.ErrDialerClosed)) {
			// Only the Dialer's Close closes it while the session runs.
			err = sshdial.ErrDialerClosed
		}
		s.forwardFailed(f, err)
	})
}

// serveProxy serves -D (SOCKS) or --http-proxy (HTTP CONNECT) on l.
func (s *session) serveProxy(f *forward, l net.Listener) {
	ps := s.newProxy(f, s.dialThrough)
	if f.kind == "-D" {
		// Through a ControlMaster the client connection is handed to
		// it, answered at once as ssh -D answers (see proxysrv).
		ps.HandOver = func(ctx context.Context, c net.Conn, address string, before func() error) (handover.Forward, bool, error) {
			fw, handled, err := handover.Func(s.d, ctx, c, "tcp", address, before)
			if handled && err != nil {
				f.failed.Add(1)
				s.log.Warn("tunnel failed", "forward", f.kind+" "+f.text, "target", address, "err", err)
			}
			return fw, handled, err
		}
	}
	f.mu.Lock()
	f.proxy = ps
	f.stop = func() { l.Close() }
	f.mu.Unlock()
	f.setState(l.Addr().String(), "listening")
	what := "SOCKS4/5"
	serve := ps.ServeSOCKS
	if f.kind == "--http-proxy" {
		what, serve = "HTTP CONNECT", ps.ServeHTTPConnect
	}
	s.log.Info("forwarding", "forward", f.kind+" "+f.text, "listen", l.Addr().String(), "proxy", what)
	s.wg.Go(func() {
		if err := serve(context.Background(), l); err != nil && !s.stopping.Load() && !errors.Is(err, net.ErrClosed) {
			s.log.Error("proxy stopped", "forward", f.kind+" "+f.text, "err", err)
			f.setState("", "stopped: "+err.Error())
		}
	})
}

// newProxy makes f's proxy server, whose tunnels dial, counted into f's
// totals and logged.
func (s *session) newProxy(f *forward, dial func(ctx context.Context, network, address string) (net.Conn, error)) *proxyServer {
	ps := &proxyServer{
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := dial(ctx, network, address)
			if err != nil {
				f.failed.Add(1)
				s.log.Warn("tunnel failed", "forward", f.kind+" "+f.text, "target", address, "err", err)
				return nil, err
			}
			return &countedConn{Conn: c, sent: &f.sent, received: &f.received}, nil
		},
		HandshakeTimeout: 10 * time.Second,
		DialTimeout:      s.dialWait,
		OnTunnel: func(ev proxyTunnelEvent) {
			attrs := []any{"forward", f.kind + " " + f.text, "proto", ev.Proto, "target", ev.Target}
			if ev.Open {
				f.total.Add(1)
				s.log.Debug("tunnel open", attrs...)
				return
			}
			if ev.HandedOver && ev.Sent >= 0 {
				// Counted by the kernel, known at the end only.
				f.sent.Add(ev.Sent)
				f.received.Add(ev.Received)
			}
			if ev.Sent >= 0 {
				attrs = append(attrs, "sent", ev.Sent, "received", ev.Received)
			}
			if ev.HandedOver {
				attrs = append(attrs, "through", "the ControlMaster, which reads and writes the connection itself")
			}
			if ev.Err != nil {
				attrs = append(attrs, "err", ev.Err)
			}
			s.log.Debug("tunnel closed", attrs...)
		},
	}
	if s.o.verbose >= 2 {
		ps.Logger = s.log
	}
	return ps
}

// shutdown stops accepting, lets open tunnels finish within the grace
// period (or until hurry), then closes the rest and the SSH connection.
func (s *session) shutdown(hurry <-chan struct{}) {
	s.stopping.Store(true)
	graceCtx, cancel := context.WithTimeout(context.Background(), s.o.grace)
	defer cancel()
	// A proxy's listener is closed by its Shutdown: closed before, it
	// would be a hard stop of the proxy's tunnels (see proxysrv).
	var proxies sync.WaitGroup
	for _, f := range s.forwards {
		f.mu.Lock()
		stop, ps := f.stop, f.proxy
		f.mu.Unlock()
		switch {
		case ps != nil:
			proxies.Go(func() { ps.Shutdown(graceCtx) })
		case stop != nil:
			stop()
		}
	}
	open := s.openTunnels()
	if open > 0 {
		msg := "shutting down: waiting for open tunnels"
		if hurry != nil {
			msg += "; a second ^C (or SIGTERM) closes them at once"
		}
		s.log.Info(msg, "open", open, "grace", s.o.grace)
	}
	var hurried atomic.Bool // the grace period was cut short by hurry
	if hurry != nil {
		go func() {
			select {
			case <-hurry:
				hurried.Store(true)
				cancel()
			case <-graceCtx.Done():
			}
		}()
	}
	done := make(chan struct{})
	go func() { s.tunnels.Wait(); close(done) }()
	select {
	case <-done:
	case <-graceCtx.Done():
		s.mu.Lock()
		n := len(s.active)
		for c := range s.active {
			c.Close()
		}
		s.mu.Unlock()
		switch {
		case n == 0:
		case hurried.Load():
			s.log.Warn("second signal: closing open tunnels", "open", n)
		default:
			s.log.Warn("grace period over: closing open tunnels", "open", n)
		}
	}
	s.mu.Lock()
	s.hardStop()
	s.mu.Unlock()
	proxies.Wait()
	for _, f := range s.forwards {
		f.mu.Lock()
		stop := f.stop
		f.mu.Unlock()
		if stop != nil {
			stop() // closed already, unless a proxy was not serving it yet
		}
	}
	<-done
	s.d.Close()
	s.wg.Wait()
}

func (s *session) openTunnels() int64 {
	var n int64
	for _, f := range s.forwards {
		n += f.open.Load()
		f.mu.Lock()
		if f.proxy != nil {
			n += int64(f.proxy.Open())
		}
		f.mu.Unlock()
	}
	return n
}

// writeStatus writes the summary: the SSH connection and each forward.
func (s *session) writeStatus(w io.Writer) {
	st := s.d.Stats()
	link := "up"
	switch {
	case st.ControlPath != "":
		link = "through the ControlMaster at " + st.ControlPath
		if st.SSHConnections > 0 {
			link += ", and an own connection up" // -R, or tunnels from before the master
		}
	case st.SSHConnections == 0:
		link = "down (made again on the next connection)"
	}
	fmt.Fprintf(w, "sshdial status %s: ssh %s, destination %s, up %v, reconnects %d, tunnels through ssh %d (failed %d), bytes sent %d, received %d\n",
		time.Now().Format(time.RFC3339), link, s.o.destination, time.Since(s.started).Round(time.Second),
		st.Reconnects, st.Dials, st.DialFailures, st.BytesSent, st.BytesReceived)
	for _, f := range s.forwards {
		f.mu.Lock()
		addr, state, ps := f.addr, f.state, f.proxy
		f.mu.Unlock()
		open := f.open.Load()
		if ps != nil {
			open = int64(ps.Open())
		}
		if addr == "" {
			addr = "-"
		}
		if f.kind == "-R" {
			addr = "the server's " + addr
		}
		fmt.Fprintf(w, "  %s %s: %s on %s -> %s; open %d, total %d, failed %d, bytes sent %d, received %d\n",
			f.kind, f.text, state, addr, f.target(), open, f.total.Load(), f.failed.Load(), f.sent.Load(), f.received.Load())
	}
}
