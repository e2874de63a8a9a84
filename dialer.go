package sshdial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	policy "github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/wire"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// A Dialer opens connections through an SSH server, as `ssh -L` does: each
// connection is an SSH channel, and the server connects to the target.
//
// A Dialer gets its SSH connections in one of two ways. New uses the
// caller's *ssh.Client, which the Dialer never closes. Connect (and
// NewPool) make them, own them, keep them alive and make them again when
// they are lost. Every method works the same on both.
//
// A Dialer is safe for concurrent use. Close closes every Conn dialed
// through it and the SSH connections it owns.
type Dialer struct {
	// Concurrency: settings are fixed once New, Connect or NewPool
	// returns. mu guards the SSH connections (slots, closed, backoff),
	// the listeners and each sshConn's load; an sshConn's own mu guards its Conns and
	// keepalive state. Order: Dialer.mu before sshConn.mu; neither is
	// held across a network call.

	// Settings.
	originator *net.TCPAddr // nil: 0.0.0.0:0
	optionErr  error        // a bad Option, reported by every dial

	keepaliveInterval, keepaliveTimeout time.Duration
	keepaliveSet                        bool // WithKeepalive was given

	logger   *slog.Logger     // never nil once made
	connect  *connectSettings // set by Connect's options; nil otherwise
	hostKeys hostKeyMemory    // keys accepted by accept-new or no, across reconnects (hostkeys.go)
	control  *controlState    // connection sharing (control.go); nil: none

	// The SSH connections: fixed, the caller's (New), or slots filled by
	// dialSSH (Connect, NewPool), which the Dialer owns.
	fixed   *sshConn
	dialSSH func(ctx context.Context) (*ssh.Client, error)

	ctx    context.Context // ends with Close; bounds owned connects
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines of owned connections

	mu        sync.Mutex
	slots     []*slot
	closed    bool
	backoff   policy.Backoff // spaces out connects (pool.go): from 250 ms to 30 s; reset only by a connection that stayed up backoffStable
	listeners map[*Listener]struct{}

	stats stats
}

var (
	_ proxy.ContextDialer = (*Dialer)(nil)
	_ proxy.Dialer        = (*Dialer)(nil)
)

// An Option configures a Dialer however it is made: New, NewPool and
// Connect take it. Every Option is also a ConnectOption.
type Option interface {
	ConnectOption
	dialerOption()
}

// A ConnectOption configures how Connect makes and checks SSH connections
// (config files, authentication, host keys, jump hosts, pool size); DialClient
// and ResolveConfig take the ones that apply to them. New and NewPool take
// none: the caller makes their connections, so passing one there does not
// compile.
type ConnectOption interface {
	apply(d *Dialer)
}

// option is an Option: it sets up any Dialer.
type option func(*Dialer)

func (o option) apply(d *Dialer) { o(d) }
func (option) dialerOption()     {}

// connectOption is a ConnectOption only.
type connectOption func(*Dialer)

func (o connectOption) apply(d *Dialer) { o(d) }

// WithOriginator sets the originator address sent with each TCP channel
// request: the address the connection is said to come from, which the SSH
// server may log or check. `ssh -L` sends the address of the local client it
// forwards; without this option the Dialer sends 0.0.0.0:0. The originator is
// also what the connections' LocalAddr returns.
func WithOriginator(addr netip.AddrPort) Option {
	return option(func(d *Dialer) {
		if !addr.IsValid() {
			d.optionErr = errors.New("sshdial: WithOriginator: invalid address")
			return
		}
		d.originator = net.TCPAddrFromAddrPort(addr)
	})
}

// WithLogger makes the Dialer log what happens to its SSH connections
// (connects, the authentication method and host key used, keepalives
// missed, reconnects and their delay, Close) to logger. No secret is ever
// logged. Without it, nothing is logged.
func WithLogger(logger *slog.Logger) Option {
	return option(func(d *Dialer) {
		if logger != nil {
			d.logger = logger
		}
	})
}

// New returns a Dialer that opens its connections through client. The caller
// keeps ownership of client: the Dialer's Close closes the Conns dialed
// through it, not client.
func New(client *ssh.Client, opts ...Option) *Dialer {
	d := newDialer(opts)
	if client != nil && client.Conn != nil {
		d.fixed = d.newSSHConn(client, nil)
	}
	return d
}

// newDialer makes a Dialer with opts applied and no SSH connection yet.
func newDialer[O ConnectOption](opts []O) *Dialer {
	d := &Dialer{logger: discardLogger}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, opt := range opts {
		if ConnectOption(opt) == nil {
			d.optionErr = errors.New("sshdial: nil option")
			continue
		}
		opt.apply(d)
	}
	return d
}

var discardLogger = slog.New(slog.DiscardHandler)

// log returns the Dialer's logger; a zero Dialer logs nothing.
func (d *Dialer) log() *slog.Logger {
	if d.logger == nil {
		return discardLogger
	}
	return d.logger
}

// Dial connects to address through the SSH server. It is DialContext with
// context.Background().
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address through the SSH server and returns a
// *Conn.
//
// Networks "tcp", "tcp4" and "tcp6" open a direct-tcpip channel (RFC 4254
// 7.2); address is host:port, and a host name is resolved by the SSH server,
// not here, which is what makes names that only exist behind the server
// work. For "tcp4" and "tcp6" an IP address must be of that family; a name is
// passed on as it is. Network "unix" opens a direct-streamlocal@openssh.com
// channel to the socket path given as address.
//
// ctx bounds the dial only, including the wait for an SSH connection when
// the Dialer has to make one; once DialContext has returned, cancelling ctx
// does not affect the connection. A dial whose ctx ends returns at once; a
// channel the server opens after that is closed.
//
// An address that OpenSSH's sshd would take as a fatal protocol error,
// ending the SSH connection with every Conn on it, fails with a
// *net.AddrError before anything is sent: a NUL byte, a host longer than
// DNS allows (255 bytes), a socket path longer than 4096 bytes.
//
// Errors are *net.OpError values with Op "dial". A refusal by the server is
// an *OpenError carrying the server's message; errors.Is matches it against
// ErrProhibited, ErrTargetUnreachable, ErrUnknownChannelType and
// ErrResourceShortage. Dialing through a closed client fails with
// ErrSSHConnectionClosed, and through a closed Dialer with ErrDialerClosed; both
// wrap net.ErrClosed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dial opens the Conn, on the least loaded SSH connection. A dial that
// finds an owned SSH connection ended, or silent, before the Dialer noticed
// drops it and tries once more, on another one or a new one.
func (d *Dialer) dial(ctx context.Context, network, address string) (*Conn, error) {
	if d == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: ErrNilDialer}
	}
	t, err := d.target(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.stats.dials.Add(1)
	if c, err, handled := d.dialViaMaster(ctx, network, t); handled {
		if err != nil {
			d.stats.dialFailures.Add(1)
		}
		return c, err
	}
	c, err := d.dialOnce(ctx, network, t, true)
	switch {
	case errors.Is(err, ErrSSHConnectionClosed):
		// The SSH connection ended before the Dialer noticed: another
		// one, or a new one.
		c, err = d.dialOnce(ctx, network, t, true)
	case errors.Is(err, ErrServerNotResponding):
		// Another SSH connection, if one is up; a new one would most
		// likely wait for the same silent network.
		if c2, err2 := d.dialOnce(ctx, network, t, false); !errors.Is(err2, errNoSSHConn) {
			c, err = c2, err2
		}
	}
	if err != nil {
		d.stats.dialFailures.Add(1)
		return nil, err
	}
	return c, nil
}

// errNoSSHConn is dialOnce's error when it may not connect and no SSH
// connection is up.
var errNoSSHConn = errors.New("sshdial: no SSH connection is up")

// dialOnce opens a Conn through one SSH connection, made first if connect
// allows; an owned SSH connection that has ended is dropped.
func (d *Dialer) dialOnce(ctx context.Context, network string, t *target, connect bool) (*Conn, error) {
	sc, err := d.acquire(ctx, connect)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: t.raddr, Err: err}
	}
	c, err := sc.dialTarget(ctx, network, t)
	if err != nil {
		d.release(sc)
		if sc.slot != nil && (errors.Is(err, ErrSSHConnectionClosed) || errors.Is(err, ErrServerNotResponding)) {
			d.drop(sc)
		}
		return nil, err
	}
	return c, nil
}

// target is a parsed dial address.
type target struct {
	chanType string
	payload  []byte
	netName  string // "tcp" or "unix", for Conn errors
	raddr    net.Addr
}

// hostAddr is the RemoteAddr of a connection dialed by host name.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// target checks d's options and ctx and parses the address, before anything
// goes to the SSH server. Its errors are dial errors.
func (d *Dialer) target(ctx context.Context, network, address string) (*target, error) {
	if d.optionErr != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: d.optionErr}
	}
	if ctx == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("sshdial: nil context")}
	}
	t, err := d.parseTarget(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return t, nil
}

// sshConn is one SSH connection of a Dialer, with the Conns dialed through
// it and its keepalive state.
type sshConn struct {
	d      *Dialer
	client *ssh.Client
	link   *link
	slot   *slot // nil for the caller's client (New)
	load   int   // Conns open or being dialed through it; guarded by d.mu

	keepaliveOnce sync.Once

	routerOnce sync.Once // starts the router of remote forwards (listen.go)
	routes     *router
	routerErr  error

	mu     sync.Mutex
	conns  map[*Conn]struct{} // open Conns
	dead   error              // set while keepalives go unanswered
	deadCh chan struct{}      // closed while dead is set, for dials in flight
}

func (d *Dialer) newSSHConn(client *ssh.Client, s *slot) *sshConn {
	sc := &sshConn{
		d:      d,
		client: client,
		link:   newLink(client),
		slot:   s,
		conns:  make(map[*Conn]struct{}),
		deadCh: make(chan struct{}),
	}
	// The link watches the connection from the start, so that Stats sees
	// it end whether or not a Conn or keepalive has waited on it yet.
	sc.link.wait()
	return sc
}

// dialTarget opens a Conn to a parsed target through sc.
func (sc *sshConn) dialTarget(ctx context.Context, network string, t *target) (*Conn, error) {
	d := sc.d
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: t.raddr, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(err)
	}
	if d.keepaliveInterval > 0 {
		sc.startKeepalive()
		if err := sc.deadErr(); err != nil {
			return nil, fail(err)
		}
	}

	ch, reqs, err := sc.open(ctx, t)
	if err != nil {
		var refused *ssh.OpenChannelError
		switch {
		case errors.As(err, &refused):
			err = &OpenError{Reason: refused.Reason, Message: refused.Message}
		case err == io.EOF:
			err = ErrSSHConnectionClosed
		case err == ErrServerNotResponding:
		case ctx.Err() == nil:
			// Besides a refusal, opening fails only when the SSH
			// connection is gone; keep the transport's reason.
			err = fmt.Errorf("%w (%w)", ErrSSHConnectionClosed, err)
		}
		return nil, fail(err)
	}
	laddr := net.Addr(d.originator)
	if d.originator == nil {
		laddr = sc.client.LocalAddr()
	}
	c := newConn(ch, reqs, sc.link, t.netName, laddr, t.raddr)
	c.stats = &d.stats
	if err := sc.track(c); err != nil {
		c.Close()
		return nil, fail(err)
	}
	return c, nil
}

// open opens the channel, giving up when ctx ends or the keepalive check
// finds the server silent. A channel that opens after that is closed.
func (sc *sshConn) open(ctx context.Context, t *target) (ssh.Channel, <-chan *ssh.Request, error) {
	dead := sc.deadSignal()
	if ctx.Done() == nil && dead == nil {
		return sc.client.OpenChannel(t.chanType, t.payload)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type opened struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	result := make(chan opened) // unbuffered: a result is either taken or abandoned
	go func() {
		ch, reqs, err := sc.client.OpenChannel(t.chanType, t.payload)
		select {
		case result <- opened{ch, reqs, err}:
		case <-ctx.Done():
			if err == nil {
				ch.Close()
				ssh.DiscardRequests(reqs)
			}
		}
	}()
	select {
	case r := <-result:
		return r.ch, r.reqs, r.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-dead:
		return nil, nil, ErrServerNotResponding
	}
}

// track registers c as open through sc, to be failed when keepalives go
// unanswered and closed by the Dialer's Close; it returns the keepalive
// error instead when the server is known not to answer.
func (sc *sshConn) track(c *Conn) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.dead != nil {
		return sc.dead
	}
	sc.conns[c] = struct{}{}
	c.onClose = func(c *Conn) {
		sc.mu.Lock()
		_, open := sc.conns[c]
		delete(sc.conns, c)
		sc.mu.Unlock()
		if open {
			sc.d.release(sc)
		}
	}
	return nil
}

// failConns fails every open Conn of sc with err and forgets them.
func (sc *sshConn) failConns(err error) {
	sc.mu.Lock()
	conns := make([]*Conn, 0, len(sc.conns))
	for c := range sc.conns {
		conns = append(conns, c)
	}
	sc.mu.Unlock()
	for _, c := range conns {
		c.fail(err)
	}
}

func (d *Dialer) parseTarget(ctx context.Context, network, address string) (*target, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return d.parseTCP(ctx, network, address)
	case "unix":
		if address == "" {
			return nil, &net.AddrError{Err: "missing socket path", Addr: address}
		}
		if err := checkPath(address); err != nil {
			return nil, err
		}
		return &target{
			chanType: "direct-streamlocal@openssh.com",
			payload:  ssh.Marshal(&wire.DirectStreamLocal{SocketPath: address}),
			netName:  "unix",
			raddr:    &net.UnixAddr{Name: address, Net: "unix"},
		}, nil
	}
	return nil, net.UnknownNetworkError(network)
}

func (d *Dialer) parseTCP(ctx context.Context, network, address string) (*target, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return nil, &net.AddrError{Err: "missing host", Addr: address}
	}
	if err := checkHost(host, address); err != nil {
		return nil, err
	}
	port, err := parsePort(ctx, network, portText)
	if err != nil {
		return nil, &net.AddrError{Err: err.Error(), Addr: address}
	}

	var raddr net.Addr = hostAddr(net.JoinHostPort(host, strconv.Itoa(port)))
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case network == "tcp4" && !ip.Unmap().Is4():
			return nil, &net.AddrError{Err: "not an IPv4 address", Addr: address}
		case network == "tcp6" && !ip.Is6():
			return nil, &net.AddrError{Err: "not an IPv6 address", Addr: address}
		}
		raddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
	}

	msg := wire.DirectTCPIP{Host: host, Port: uint32(port), OrigHost: "0.0.0.0"}
	if o := d.originator; o != nil {
		msg.OrigHost = o.IP.String()
		msg.OrigPort = uint32(o.Port)
	}
	return &target{
		chanType: "direct-tcpip",
		payload:  ssh.Marshal(&msg),
		netName:  "tcp",
		raddr:    raddr,
	}, nil
}

// Limits on the strings a dial or Listen sends. OpenSSH's sshd reads them
// with sshpkt_get_cstring, for which an embedded NUL is a fatal protocol
// error, and drops a packet over 256 kB (PACKET_MAX_SIZE) just as fatally:
// either ends the whole SSH connection with every channel on it. A host
// name longer than DNS allows (255 bytes) or a path longer than PATH_MAX
// can name nothing, so they are refused here with the NUL byte, before
// anything is sent.
const (
	maxHostLen = 255
	maxPathLen = 4096
)

// checkHost refuses a host that cannot be a name or address and that the
// SSH server might take as a protocol error; address is the whole address,
// for the error.
func checkHost(host, address string) error {
	switch {
	case strings.IndexByte(host, 0) >= 0:
		return &net.AddrError{Err: "host contains a NUL byte", Addr: shortAddr(address)}
	case len(host) > maxHostLen:
		return &net.AddrError{Err: fmt.Sprintf("host longer than %d bytes", maxHostLen), Addr: shortAddr(address)}
	}
	return nil
}

// checkPath is checkHost for a unix socket path.
func checkPath(path string) error {
	switch {
	case strings.IndexByte(path, 0) >= 0:
		return &net.AddrError{Err: "socket path contains a NUL byte", Addr: shortAddr(path)}
	case len(path) > maxPathLen:
		return &net.AddrError{Err: fmt.Sprintf("socket path longer than %d bytes", maxPathLen), Addr: shortAddr(path)}
	}
	return nil
}

// shortAddr is a refused address as an error shows it: quoted, so that a
// NUL or a control byte is visible, and cut short.
func shortAddr(address string) string {
	const max = 64
	if len(address) > max {
		return strconv.Quote(address[:max]) + fmt.Sprintf("... (%d bytes)", len(address))
	}
	return strconv.Quote(address)
}

// parsePort accepts a port number from 1 to 65535 or a service name known
// to this machine (the SSH protocol carries numbers only).
func parsePort(ctx context.Context, network, text string) (int, error) {
	if text == "" {
		return 0, errors.New("missing port")
	}
	if strings.Trim(text, "0123456789") == "" {
		port, err := strconv.ParseUint(text, 10, 32)
		if err != nil || port < 1 || port > 65535 {
			return 0, errors.New("port out of range (1-65535)")
		}
		return int(port), nil
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, text)
	if err != nil || port < 1 {
		return 0, errors.New("unknown port")
	}
	return port, nil
}

// Close closes every Conn dialed through the Dialer (their blocked and later
// calls fail with ErrDialerClosed), its listeners, and the SSH connections
// it owns; the
// caller's client of a Dialer made by New stays open. It stops any connect
// under way and waits until the Dialer's goroutines are done. Later dials
// fail with ErrDialerClosed. Close may be called more than once.
func (d *Dialer) Close() error {
	return d.close(true)
}

// close is Close; it logs that the Dialer closed when logIt is true.
func (d *Dialer) close(logIt bool) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	var listeners []*Listener
	for l := range d.listeners {
		listeners = append(listeners, l)
	}
	var conns []*sshConn
	if d.fixed != nil {
		conns = append(conns, d.fixed)
	}
	for _, s := range d.slots {
		if s.cur != nil {
			conns = append(conns, s.cur)
		}
	}
	d.mu.Unlock()
	for _, l := range listeners {
		l.Close()
	}
	d.closeControl()
	if d.cancel != nil {
		d.cancel()
	}
	for _, sc := range conns {
		sc.failConns(ErrDialerClosed)
		if sc.slot != nil {
			sc.client.Close()
		}
	}
	d.wg.Wait()
	if logIt {
		d.log().Info("sshdial: Dialer closed")
	}
	return nil
}

// HTTPTransport returns a new *http.Transport with the settings of
// http.DefaultTransport (timeouts, idle pool, HTTP/2 attempted over TLS)
// whose connections are dialed through the SSH server. Proxies from the
// environment are not used: the SSH server is the way out. The caller owns
// the Transport and may change it before use.
func (d *Dialer) HTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	t.ForceAttemptHTTP2 = true
	return t
}

// HTTPClient returns a new *http.Client over HTTPTransport. It has no overall
// Timeout; set one if the requests need it.
func (d *Dialer) HTTPClient() *http.Client {
	return &http.Client{Transport: d.HTTPTransport()}
}

// DialTCPContext dials address over "tcp". Its signature is the one that
// grpc.WithContextDialer and go-sql-driver/mysql's RegisterDialContext take:
//
//	grpc.NewClient("passthrough:///db.internal:443", grpc.WithContextDialer(d.DialTCPContext), ...)
//	mysql.RegisterDialContext("ssh", d.DialTCPContext) // DSN "user@ssh(db.internal:3306)/app"
func (d *Dialer) DialTCPContext(ctx context.Context, address string) (net.Conn, error) {
	return d.DialContext(ctx, "tcp", address)
}

// DialTimeout is Dial bounded by timeout (zero means no bound). With Dial it
// makes a Dialer satisfy lib/pq's pq.Dialer, for pq.DialOpen.
func (d *Dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		return d.Dial(network, address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

// LookupHost returns host unchanged, so that a client that resolves names
// itself before dialing leaves them for the SSH server to resolve. Its
// signature is pgx's LookupFunc:
//
//	cfg.LookupFunc = d.LookupHost // postgres://db.internal/app: db.internal is resolved behind the server
//	cfg.DialFunc = d.DialContext
//
// It takes no time and sends nothing.
func (d *Dialer) LookupHost(ctx context.Context, host string) ([]string, error) {
	return []string{host}, nil
}

// Stats returns what the Dialer has done so far. It is safe to call at any
// time, also after Close.
func (d *Dialer) Stats() Stats {
	st := Stats{
		Dials:         d.stats.dials.Load(),
		DialFailures:  d.stats.dialFailures.Load(),
		Reconnects:    d.stats.reconnects.Load(),
		BytesSent:     d.stats.sent.Load(),
		BytesReceived: d.stats.received.Load(),
	}
	var conns []*sshConn
	d.mu.Lock()
	if d.fixed != nil {
		conns = append(conns, d.fixed)
	}
	for _, s := range d.slots {
		if s.cur != nil {
			conns = append(conns, s.cur)
		}
	}
	d.mu.Unlock()
	st.OpenConns += d.controlConns()
	st.ControlPath = d.controlPathInUse()
	for _, sc := range conns {
		sc.mu.Lock()
		st.OpenConns += len(sc.conns)
		sc.mu.Unlock()
		select {
		case <-sc.link.wait():
		default:
			st.SSHConnections++
		}
	}
	return st
}

// isClosed reports whether Close was called.
func (d *Dialer) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Listen asks the SSH server to listen on address and returns a listener
// whose Accept returns the connections made to it, as `ssh -R` does: for
// networks "tcp", "tcp4" and "tcp6" with a tcpip-forward request (port 0
// lets the server choose; Addr reports the port it chose), for "unix" with
// streamlocal-forward@openssh.com. ctx bounds the request only. A bind
// address or path the server would take as a fatal protocol error (a NUL
// byte, a host over 255 bytes, a path over 4096) fails with a
// *net.AddrError, as in DialContext.
//
// Accepted connections are *Conn values with the whole contract of a
// dialed one; RemoteAddr is the originator the server reported, LocalAddr
// the listening address. Close cancels the forward on the server, and
// Accept then fails with an error wrapping net.ErrClosed. The Dialer's
// Close closes its listeners.
//
// When nobody Accepts, at most a backlog of tunnels waits; past it the
// server's new tunnels are refused, while dials, keepalives and other
// listeners of the SSH connection go on.
//
// Listen starts two goroutines per SSH connection that route its tunnels;
// on a Dialer made by New they live as long as the caller's client, since
// x/crypto stops a client whose tunnels nobody takes.
//
// On a Dialer that owns its SSH connection (Connect), a lost connection is
// made again in the background and the forward requested again, first on
// the same port; Accept waits meanwhile. If the server gives another port
// (the listener asked for port 0 and the old one is taken), Addr reports
// the new one and the change is logged. A server that refuses the forward
// is asked again, with backoff, for three minutes (the lost connection's
// session on the server may still hold the port until the server notices
// it is gone); a forward still refused then makes Accept fail with an error
// wrapping ErrForwardRefused.
func (d *Dialer) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	return d.listen(ctx, network, address)
}
