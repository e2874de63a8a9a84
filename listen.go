package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	policy "github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/wire"
	"golang.org/x/crypto/ssh"
)

// Remote forwarding (`ssh -R`): the SSH server listens, and each connection
// to its port arrives as a channel the server opens.
//
// Concurrency contract.
//
// x/crypto hands those channels to whoever called HandleChannelOpen for
// their type, through a small buffer that the connection's packet loop
// fills with a blocking send: a program that does not Accept fast enough
// stops the whole SSH connection. Here one router goroutine per channel type
// and SSH connection (started by the first Listen on it, ended when the SSH
// connection ends) drains them at once into each Listener's bounded backlog,
// so that a Listener nobody Accepts from stops nothing else.
//
// What the router cannot hand on (no listener for the address and port the
// server reports, a full backlog, a closed listener) it refuses itself, in
// its own goroutine: while that refusal cannot be written, the router takes
// no more channels, and the server's next opens wait in x/crypto's buffers
// and then in TCP. That is the backpressure that keeps a hostile server's
// flood of opens from growing goroutines or memory here; x/crypto refuses
// channel types nobody handles the same way. (A server that never reads
// the refusals stalls its own SSH connection, which it could end anyway;
// keepalives then find it silent.) Refusals that come from a
// caller's goroutine (Close with tunnels in its backlog, a Listen reply
// that releases parked tunnels, the end of the SSH connection) are sent by
// one goroutine per batch, never one per tunnel; each batch is bounded by a
// backlog.
//
// Locks: router.mu guards the routes and the parked tunnels; Listener.mu
// guards a listener's backlog and state; Dialer.mu its listener set. The
// router holds router.mu while it calls nothing else, and takes
// Listener.mu (in enqueue) only after releasing it; no lock is held while a
// channel is accepted, refused or a request sent.

// listenBacklog bounds the tunnels a Listener holds for Accept.
const listenBacklog = 128

// Listener is a listener on the SSH server's side, made by Dialer.Listen.
// Its methods may be called concurrently.
type Listener struct {
	// Concurrency contract.
	//
	// Goroutines that act on a Listener:
	//   - The two routers of its SSH connection (see the contract above,
	//     shared by every listener of the connection): enqueue appends to
	//     backlog and wakes Accept; when the connection ends, lose takes sc
	//     away.
	//   - reforward, on a Dialer that owns its SSH connections: started by
	//     lose, with the port the server had given as its argument, and
	//     counted in Dialer.wg. It makes the forward again (forward sets sc
	//     and addr) or sets lost, and ends then, or when the listener or
	//     the Dialer closes. lose starts it only for the sc the listener
	//     holds, which only reforward gives it back, so there is one at a
	//     time (a second may start while the first returns, having
	//     nothing left to do).
	//   - cancel's goroutine (one per Close, counted in Dialer.wg): the
	//     cancel request, bounded to 10 s. refuseAll's: one per batch of
	//     refusals.
	//   - Accept and accept run in the caller's goroutine: they take
	//     tunnels off backlog and accept them; Close, in the caller's or in
	//     the Dialer's Close.
	//
	// Who closes what: Close records why (closeErr), closes done (once),
	// takes sc and backlog, refuses the backlog, unregisters the listener
	// from the Dialer, cancels the forward on the server and releases sc.
	// Whoever sets sc to nil releases the load the listener counted on it:
	// Close or lose. A forward that the server grants after Close (its
	// request was on the wire) is cancelled by forward itself: it checks
	// done under mu before it sets sc, and again after it routes. The
	// Dialer's Close calls Close on every listener. A Conn that Accept
	// returned belongs to the caller.
	//
	// Locks: mu guards sc, addr, backlog, lost and closeErr. No other lock
	// (router.mu, Dialer.mu) is held while mu is taken or taken while mu
	// is held, and none is held across a request, an accept or a refusal.
	// d, network and spec are set before the Listener is shared and never
	// change (the port a forward asks for is an argument of forward, not a
	// field). done is closed once, by Close. wake has room for one signal:
	// every change of the state under mu is followed by signal(), and
	// Accept re-checks the state after each wake, so a change made after
	// its check leaves a signal for its wait and is never missed.
	d       *Dialer
	network string      // "tcp" or "unix"
	spec    forwardSpec // as Listen was asked: port 0 stays 0 after the server chose

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wake      chan struct{} // capacity 1: the backlog or the state changed

	mu       sync.Mutex
	sc       *sshConn         // the SSH connection of the forward; nil while it is being made again
	addr     net.Addr         // what the server listens on
	backlog  []ssh.NewChannel // tunnels waiting for Accept
	lost     error            // why the forward is gone for good
	closeErr error            // what Accept reports after Close; set before done is closed
}

var _ net.Listener = (*Listener)(nil)

// forwardSpec is what a Listener asks the server for.
type forwardSpec struct {
	host string // tcp: the bind address as given
	port uint32 // tcp: the port; 0 lets the server choose
	path string // unix: the socket path
}

// listen is Listen.
func (d *Dialer) listen(ctx context.Context, network, address string) (net.Listener, error) {
	fail := func(err error) (net.Listener, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	switch {
	case d == nil:
		return fail(ErrNilDialer)
	case d.optionErr != nil:
		return fail(d.optionErr)
	case ctx == nil:
		return fail(errors.New("sshdial: nil context"))
	}
	spec, netName, err := parseListenAddress(network, address)
	if err != nil {
		return fail(err)
	}
	l := &Listener{
		d:       d,
		network: netName,
		spec:    spec,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	sc, err := d.acquire(ctx, true)
	if err != nil {
		return fail(err)
	}
	if err := l.forward(ctx, sc, spec.port); err != nil {
		d.release(sc)
		return fail(err)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		l.Close()
		return fail(ErrDialerClosed)
	}
	if d.listeners == nil {
		d.listeners = make(map[*Listener]struct{})
	}
	d.listeners[l] = struct{}{}
	d.mu.Unlock()
	return l, nil
}

// parseListenAddress checks a Listen address.
func parseListenAddress(network, address string) (forwardSpec, string, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		host, portText, err := net.SplitHostPort(address)
		if err != nil {
			return forwardSpec{}, "", err
		}
		if strings.ContainsAny(host, "\r\n") {
			return forwardSpec{}, "", &net.AddrError{Err: "malformed host", Addr: shortAddr(address)}
		}
		if err := checkHost(host, address); err != nil {
			return forwardSpec{}, "", err
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return forwardSpec{}, "", &net.AddrError{Err: "port out of range (0-65535)", Addr: address}
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			switch {
			case network == "tcp4" && !ip.Unmap().Is4():
				return forwardSpec{}, "", &net.AddrError{Err: "not an IPv4 address", Addr: address}
			case network == "tcp6" && !ip.Is6():
				return forwardSpec{}, "", &net.AddrError{Err: "not an IPv6 address", Addr: address}
			}
		}
		return forwardSpec{host: host, port: uint32(port)}, "tcp", nil
	case "unix":
		if address == "" {
			return forwardSpec{}, "", &net.AddrError{Err: "missing socket path", Addr: address}
		}
		if err := checkPath(address); err != nil {
			return forwardSpec{}, "", err
		}
		return forwardSpec{path: address}, "unix", nil
	}
	return forwardSpec{}, "", net.UnknownNetworkError(network)
}

// forward asks the server of sc to listen on port (tcp; 0 lets the server
// choose) or on l's path (unix), and routes the tunnels to l. On success sc
// carries l (its load counts l). When l was closed meanwhile, it cancels
// the forward and fails with net.ErrClosed.
func (l *Listener) forward(ctx context.Context, sc *sshConn, port uint32) error {
	r, err := sc.router()
	if err != nil {
		return err
	}
	r.begin()
	defer r.end()

	reqType, payload := l.forwardRequest("", port)
	ok, reply, err := sc.request(ctx, reqType, payload)
	if err != nil {
		return err
	}
	if !ok {
		return l.refused(port)
	}
	var addr net.Addr
	if l.network == "unix" {
		addr = &net.UnixAddr{Name: l.spec.path, Net: "unix"}
	} else {
		if port == 0 {
			var msg wire.TCPIPForwardReply
			if err := ssh.Unmarshal(reply, &msg); err != nil || msg.Port == 0 || msg.Port > 65535 {
				return errors.New("sshdial: the SSH server's reply names no port")
			}
			port = msg.Port
		}
		addr = listenAddr(l.spec.host, port)
	}
	// sc is published before the route, so that Accept never takes a
	// tunnel without it. A Close before that cancels nothing: this
	// forward cancels itself. A Close after it cancels the forward, and
	// its route is removed by whichever of Close and the check below
	// comes after r.add.
	l.mu.Lock()
	if isClosed(l.done) {
		l.mu.Unlock()
		l.cancel(sc, port)
		return net.ErrClosed
	}
	moved := l.addr != nil && l.addr.String() != addr.String()
	l.sc, l.addr = sc, addr
	l.mu.Unlock()
	r.add(l, port)
	if isClosed(l.done) {
		r.remove(l)
	}
	if moved {
		l.d.log().Warn("sshdial: the SSH server listens on another port after a reconnect", "addr", addr.String())
	}
	return nil
}

// forwardRequest returns the global request that starts (prefix "") or
// stops (prefix "cancel-") l's forward on port (tcp) or l's path (unix).
func (l *Listener) forwardRequest(prefix string, port uint32) (string, []byte) {
	if l.network == "unix" {
		return prefix + "streamlocal-forward@openssh.com", ssh.Marshal(&wire.StreamLocalForward{SocketPath: l.spec.path})
	}
	return prefix + "tcpip-forward", ssh.Marshal(&wire.TCPIPForward{BindAddr: l.spec.host, BindPort: port})
}

// refused is the error of a forward on port the server refused.
func (l *Listener) refused(port uint32) error {
	what := "listen on " + net.JoinHostPort(l.spec.host, strconv.Itoa(int(port)))
	hint := "OpenSSH: AllowTcpForwarding must allow remote forwarding, the port must be free, and a bind address beyond loopback needs GatewayPorts clientspecified"
	if l.network == "unix" {
		what = "listen on unix socket " + l.spec.path
		hint = "OpenSSH: AllowStreamLocalForwarding must allow remote forwarding, and a socket file that exists needs StreamLocalBindUnlink yes"
	}
	return fmt.Errorf("%w: %s (%s)", ErrForwardRefused, what, hint)
}

// listenAddr is the Addr of a TCP forward.
func listenAddr(host string, port uint32) net.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
	}
	return hostAddr(net.JoinHostPort(host, strconv.Itoa(int(port))))
}

// request sends a global request on sc, giving up when ctx ends or the
// keepalive check fails; the reply of an abandoned request is dropped.
func (sc *sshConn) request(ctx context.Context, typ string, payload []byte) (bool, []byte, error) {
	type answer struct {
		ok    bool
		reply []byte
		err   error
	}
	res := make(chan answer, 1)
	go func() {
		ok, reply, err := sc.client.SendRequest(typ, true, payload)
		res <- answer{ok, reply, err}
	}()
	select {
	case a := <-res:
		if a.err != nil {
			return false, nil, ErrSSHConnectionClosed
		}
		return a.ok, a.reply, nil
	case <-ctx.Done():
		return false, nil, ctx.Err()
	case <-sc.deadSignal():
		return false, nil, ErrServerNotResponding
	}
}

// Accept waits for the next connection to the listener and returns it as a
// *Conn. After Close it fails with an error wrapping net.ErrClosed, and
// ErrDialerClosed too when the Dialer's Close closed the listener. When the
// forward was lost for good (the server refused it after a reconnect), it
// fails with an error wrapping ErrForwardRefused: the Dialer tries no more.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		var nc ssh.NewChannel
		sc := l.sc
		if len(l.backlog) > 0 {
			nc = l.backlog[0]
			l.backlog[0] = nil
			l.backlog = l.backlog[1:]
		}
		lost, addr := l.lost, l.addr
		l.mu.Unlock()

		switch {
		case isClosed(l.done):
			if nc != nil {
				go nc.Reject(ssh.ConnectionFailed, "listener closed")
			}
			l.mu.Lock()
			err := l.closeErr
			l.mu.Unlock()
			return nil, l.opError(err)
		case nc != nil:
			if c := l.accept(sc, nc, addr); c != nil {
				return c, nil
			}
			continue
		case lost != nil:
			return nil, l.opError(lost)
		}
		select {
		case <-l.wake:
		case <-l.done:
		}
	}
}

// accept takes a tunnel on; nil if it went away meanwhile.
func (l *Listener) accept(sc *sshConn, nc ssh.NewChannel, laddr net.Addr) *Conn {
	var raddr net.Addr
	if l.network == "unix" {
		raddr = &net.UnixAddr{Net: "unix"} // OpenSSH names no originator
	} else {
		var msg wire.ForwardedTCPIP
		if ssh.Unmarshal(nc.ExtraData(), &msg) == nil {
			raddr = listenAddr(msg.OriginAddr, msg.OriginPort)
		}
		if raddr == nil {
			raddr = hostAddr("0.0.0.0:0")
		}
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return nil
	}
	c := newConn(ch, reqs, sc.link, l.network, laddr, raddr)
	c.stats = &l.d.stats
	l.d.mu.Lock()
	sc.load++
	l.d.mu.Unlock()
	if err := sc.track(c); err != nil {
		c.Close()
		l.d.release(sc)
		return nil
	}
	return c
}

// enqueue adds a tunnel to the backlog and reports true, or reports false
// when the backlog is full or the listener closed; the caller refuses it
// then. It never blocks.
func (l *Listener) enqueue(nc ssh.NewChannel) bool {
	l.mu.Lock()
	full := len(l.backlog) >= listenBacklog || isClosed(l.done)
	if !full {
		l.backlog = append(l.backlog, nc)
	}
	l.mu.Unlock()
	if full {
		return false
	}
	l.signal()
	return true
}

func (l *Listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close stops the listener: the server is asked to stop listening, tunnels
// waiting for Accept are refused, and Accept returns an error wrapping
// net.ErrClosed. Connections already accepted stay open. Close does not
// wait for the server's answer.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.d.mu.Lock()
		byDialer := l.d.closed
		delete(l.d.listeners, l)
		l.d.mu.Unlock()
		l.mu.Lock()
		l.closeErr = net.ErrClosed
		if byDialer {
			l.closeErr = ErrDialerClosed // wraps net.ErrClosed
		}
		l.mu.Unlock()
		close(l.done)
		l.mu.Lock()
		sc, backlog, port := l.sc, l.backlog, l.port()
		l.sc, l.backlog = nil, nil
		l.mu.Unlock()
		refuseAll(backlog, ssh.ConnectionFailed, "listener closed")
		if sc != nil {
			l.cancel(sc, port)
			l.d.release(sc)
		}
	})
	return nil
}

// cancel unroutes l and asks the server of sc to stop listening on port
// (tcp) or l's path (unix), in the background.
func (l *Listener) cancel(sc *sshConn, port uint32) {
	r, err := sc.router()
	if err != nil {
		return
	}
	r.remove(l)
	reqType, payload := l.forwardRequest("cancel-", port)
	d := l.d
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		sc.request(ctx, reqType, payload)
	}()
}

// Addr returns the address the server listens on: the port it chose for a
// request of port 0.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addr
}

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: err}
}

// lose is called when the SSH connection of l has ended. On a Dialer that
// makes its SSH connections, the forward is made again in the background;
// otherwise Accept fails from now on with err.
func (l *Listener) lose(sc *sshConn, err error) {
	l.mu.Lock()
	if l.sc != sc {
		l.mu.Unlock()
		return
	}
	l.sc = nil
	owned := sc.slot != nil
	if !owned {
		l.lost = err
	}
	port := l.port()
	l.mu.Unlock()
	l.d.release(sc)
	l.signal()
	if owned {
		l.d.wg.Add(1)
		go func() {
			defer l.d.wg.Done()
			l.reforward(port)
		}()
	}
}

// port returns the TCP port the server listens on, 0 if none; l.mu is
// held.
func (l *Listener) port() uint32 {
	switch a := l.addr.(type) {
	case *net.TCPAddr:
		return uint32(a.Port)
	case hostAddr:
		if _, p, err := net.SplitHostPort(string(a)); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				return uint32(n)
			}
		}
	}
	return 0
}

// reforward makes the forward again after a reconnect, first on port (the
// one the server had given), with backoff between tries, until it works,
// the server has refused it for RefusedPatience in a row, or the listener
// or Dialer closes.
func (l *Listener) reforward(port uint32) {
	d := l.d
	b := policy.Backoff{}      // the defaults, as the SSH connection's
	var refusedSince time.Time // the first of the refusals in a row
	for {
		select {
		case <-l.done:
			return
		case <-d.ctx.Done():
			return
		default:
		}
		ctx, cancel := context.WithTimeout(d.ctx, defaultConnectTimeout)
		sc, err := d.acquire(ctx, true)
		if err == nil {
			err = l.reforwardOn(ctx, sc, port)
			if err != nil {
				d.release(sc)
			}
		}
		cancel()
		switch {
		case isClosed(l.done) || d.ctx.Err() != nil:
			return
		case err == nil:
			d.log().Info("sshdial: remote forward made again", "addr", l.Addr().String())
			return
		case errors.Is(err, ErrForwardRefused):
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			}
			if left := policy.RefusedPatience() - time.Since(refusedSince); left > 0 {
				delay := b.Fail()
				d.log().Warn("sshdial: the SSH server refused the remote forward after a reconnect; asking again, "+
					"since the lost connection's session on the server may still hold the port",
					"err", err, "retry_in", delay, "gives_up_in", left.Round(time.Second))
				if !l.pause(delay) {
					return
				}
				continue
			}
			d.log().Error("sshdial: the SSH server refused the remote forward after a reconnect; giving up",
				"err", err, "refused_for", time.Since(refusedSince).Round(time.Second))
			l.mu.Lock()
			l.lost = err
			l.mu.Unlock()
			l.signal()
			return
		}
		refusedSince = time.Time{} // only refusals in a row count
		delay := b.Fail()
		d.log().Warn("sshdial: making the remote forward again failed", "err", err, "retry_in", delay)
		if !l.pause(delay) {
			return
		}
	}
}

// pause waits delay before the next try of reforward; false when the
// listener or the Dialer closed meanwhile.
func (l *Listener) pause(delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
	case <-l.d.ctx.Done():
	}
	return false
}

// reforwardOn asks for port, the one the server gave before, and for any
// port if that one is refused and the listener asked for any.
func (l *Listener) reforwardOn(ctx context.Context, sc *sshConn, port uint32) error {
	err := l.forward(ctx, sc, port)
	if errors.Is(err, ErrForwardRefused) && l.spec.port == 0 && port != 0 {
		err = l.forward(ctx, sc, 0)
	}
	return err
}

// router routes the tunnels of one SSH connection to its listeners.
type router struct {
	mu       sync.Mutex
	tcp      map[tcpRoute]*Listener
	unix     map[string]*Listener
	inflight int              // forward requests waiting for their reply
	parked   []ssh.NewChannel // tunnels that came before their listener was routed
}

// tcpRoute is what a forwarded-tcpip channel names: the bind address as
// the tcpip-forward request gave it (OpenSSH reports that string back, not
// the address it bound), and the port the server listens on.
type tcpRoute struct {
	host string
	port uint32
}

// refusal is a tunnel to refuse, with the reason given to the server.
type refusal struct {
	nc     ssh.NewChannel
	reason ssh.RejectionReason
	msg    string
}

func (f refusal) send() { f.nc.Reject(f.reason, f.msg) }

// refuseAll refuses tunnels in one goroutine, so that a caller never waits
// for the SSH connection to take the refusals.
func refuseAll(ncs []ssh.NewChannel, reason ssh.RejectionReason, msg string) {
	if len(ncs) == 0 {
		return
	}
	go func() {
		for _, nc := range ncs {
			nc.Reject(reason, msg)
		}
	}()
}

// router returns sc's router, starting it on first use. It fails when
// another user of the client took the channel types already (for example
// the client's own Listen).
func (sc *sshConn) router() (*router, error) {
	sc.routerOnce.Do(func() {
		tcp := sc.client.HandleChannelOpen("forwarded-tcpip")
		unix := sc.client.HandleChannelOpen("forwarded-streamlocal@openssh.com")
		if tcp == nil || unix == nil {
			sc.routerErr = errors.New("sshdial: this SSH client's forwarded channels are taken by another listener (its own Listen?)")
			return
		}
		r := &router{tcp: make(map[tcpRoute]*Listener), unix: make(map[string]*Listener)}
		sc.routes = r
		// The routers drain the channels for as long as the SSH
		// connection lives, even after the Dialer's Close: undrained, they
		// would stop the connection. Close waits for them only when it
		// closes the connection itself (an owned one).
		owned := sc.slot != nil
		for _, in := range []<-chan ssh.NewChannel{tcp, unix} {
			if owned {
				sc.d.wg.Add(1)
			}
			go func() {
				if owned {
					defer sc.d.wg.Done()
				}
				for nc := range in {
					if f, ok := r.route(nc); ok {
						f.send() // here, not in a goroutine: see the contract
					}
				}
				// The SSH connection ended.
				r.mu.Lock()
				parked := r.parked
				r.parked = nil
				r.mu.Unlock()
				refuseAll(parked, ssh.ConnectionFailed, "connection ended")
				sc.d.lostListeners(sc)
			}()
		}
	})
	return sc.routes, sc.routerErr
}

// route hands nc to its listener without blocking; when it cannot, it
// returns the refusal for the caller to send.
func (r *router) route(nc ssh.NewChannel) (refusal, bool) {
	r.mu.Lock()
	l := r.lookup(nc, false)
	if l == nil && r.inflight > 0 && len(r.parked) < listenBacklog {
		// Its listener may be waiting for the reply to its request
		// (golang/go#64094): keep it until the reply is routed.
		r.parked = append(r.parked, nc)
		r.mu.Unlock()
		return refusal{}, false
	}
	if l == nil {
		l = r.lookup(nc, true)
	}
	r.mu.Unlock()
	switch {
	case l == nil:
		return refusal{nc, ssh.Prohibited, "no listener for this connection"}, true
	case !l.enqueue(nc):
		return refusal{nc, ssh.ResourceShortage, "too many connections waiting to be accepted"}, true
	}
	return refusal{}, false
}

// lookup finds nc's listener; r.mu is held. A forwarded-tcpip channel goes
// to the listener of the address and port it names, as OpenSSH's client
// routes it, so that listeners on 127.0.0.1:P and [::1]:P each get their
// own. With loose set, for a server that names the address differently
// than it was asked (the address it bound, say), an IP address equal to a
// listener's on that port will do, and then the only listener on that
// port.
func (r *router) lookup(nc ssh.NewChannel, loose bool) *Listener {
	if nc.ChannelType() == "forwarded-streamlocal@openssh.com" {
		var msg wire.ForwardedStreamLocal
		if ssh.Unmarshal(nc.ExtraData(), &msg) != nil {
			return nil
		}
		return r.unix[msg.SocketPath]
	}
	var msg wire.ForwardedTCPIP
	if ssh.Unmarshal(nc.ExtraData(), &msg) != nil {
		return nil
	}
	if l := r.tcp[tcpRoute{msg.Addr, msg.Port}]; l != nil || !loose {
		return l
	}
	var only *Listener
	n := 0
	ip, ipErr := netip.ParseAddr(msg.Addr)
	for k, l := range r.tcp {
		if k.port != msg.Port {
			continue
		}
		if lip, err := netip.ParseAddr(k.host); ipErr == nil && err == nil && lip.Unmap() == ip.Unmap() {
			return l
		}
		only = l
		n++
	}
	if n == 1 {
		return only
	}
	return nil
}

// begin and end bracket a forward request, so that tunnels arriving before
// its listener is routed are kept.
func (r *router) begin() {
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
}

func (r *router) end() {
	r.mu.Lock()
	r.inflight--
	parked := r.parked
	r.parked = nil
	r.mu.Unlock()
	var refused []refusal
	for _, nc := range parked {
		if f, ok := r.route(nc); ok {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		go func() {
			for _, f := range refused {
				f.send()
			}
		}()
	}
}

// add routes the tunnels for l's bind address and port (tcp) or l's path
// (unix) to l.
func (r *router) add(l *Listener, port uint32) {
	r.mu.Lock()
	if l.network == "unix" {
		r.unix[l.spec.path] = l
	} else {
		r.tcp[tcpRoute{l.spec.host, port}] = l
	}
	r.mu.Unlock()
}

// remove unroutes l.
func (r *router) remove(l *Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l.network == "unix" {
		if r.unix[l.spec.path] == l {
			delete(r.unix, l.spec.path)
		}
		return
	}
	for k, x := range r.tcp {
		if x == l {
			delete(r.tcp, k)
		}
	}
}

// lostListeners tells the listeners on sc that its SSH connection ended.
func (d *Dialer) lostListeners(sc *sshConn) {
	d.mu.Lock()
	var ls []*Listener
	for l := range d.listeners {
		ls = append(ls, l)
	}
	d.mu.Unlock()
	<-sc.link.wait() // imminent: the connection's channel handlers are closed
	err := connectionEndErr(sc.link.endErr())
	for _, l := range ls {
		l.lose(sc, err)
	}
}
