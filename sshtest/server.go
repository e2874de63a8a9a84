// Package sshtest provides an in-process SSH server for tests, in the way
// net/http/httptest provides an HTTP server.
//
// The server listens on a loopback port chosen by the system and serves what
// a tunnel needs: direct-tcpip and direct-streamlocal@openssh.com channels
// (local forwarding, what `ssh -L` uses) with half-close in each direction,
// tcpip-forward and streamlocal-forward@openssh.com requests and their
// cancellations (remote forwarding of ports and unix sockets, `ssh -R`), and
// keepalive@openssh.com. Sessions (shells, exec) are not served.
//
// Any SSH client can use it: ClientConfig returns a configuration for
// golang.org/x/crypto/ssh with a pinned host key and a working key, and
// HostKey and ClientSigner give the keys to other clients.
//
// Tests can decide which targets may be reached (Permit), replace how the
// server reaches targets (DialTarget), count open channels and global
// requests (keepalives, say), and inject faults: Stall freezes every
// connection like a dead network, and CloseClientConnections drops them.
package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshdial/sshdial/internal/wire"
	"golang.org/x/crypto/ssh"
)

// User is the user name in ClientConfig.
const User = "sshtest"

// A Server is an SSH server listening on a system-chosen port on the local
// loopback interface, for use in end-to-end tests.
//
// Fields may be set after NewUnstartedServer and before Start or ServeConn;
// after that they must not be changed.
type Server struct {
	// Listener is where the server accepts SSH connections.
	Listener net.Listener

	// Config is the server configuration. NewUnstartedServer sets a host key
	// and public key authentication for ClientSigner's key.
	Config *ssh.ServerConfig

	// Permit, when set, is asked before each direct-tcpip ("tcp") or
	// direct-streamlocal@openssh.com ("unix") channel is opened, with the
	// target address. A non-nil error rejects the channel as
	// administratively prohibited, with the error's text as the message.
	Permit func(network, address string) error

	// DialTarget, when set, replaces the net.Dialer with which the server
	// connects to targets. Its error text becomes the message of the
	// "connect failed" rejection.
	DialTarget func(ctx context.Context, network, address string) (net.Conn, error)

	hostKey   ssh.Signer
	clientKey ssh.Signer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	// wg counts every goroutine the server starts. A goroutine is added
	// either under mu while !closed (acceptLoop, and each connection's in
	// track), or by a goroutine that wg already counts (everything started
	// while serving a connection), so that wg is never added to once Close's
	// wg.Wait may have returned.
	wg sync.WaitGroup

	channels atomic.Int64

	requestsMu sync.Mutex
	requests   map[string]int // global requests received, by type

	mu      sync.Mutex
	started bool
	closed  bool
	conns   map[*stallConn]struct{}
	stalled chan struct{} // non-nil while stalled; closed by Resume
	client  *ssh.Client   // shared by Client
}

// NewServer starts and returns a new Server. The caller should call Close
// when finished, to shut it down.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewUnstartedServer returns a new Server that is listening but not yet
// accepting connections. The caller should set any fields it needs, then
// call Start (or ServeConn) and, when finished, Close.
func NewUnstartedServer() *Server {
	hostKey := newSigner()
	clientKey := newSigner()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientKey.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("sshtest: unknown public key for %q", meta.User())
		},
	}
	cfg.AddHostKey(hostKey)
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		Listener:  newLocalListener(),
		Config:    cfg,
		hostKey:   hostKey,
		clientKey: clientKey,
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*stallConn]struct{}),
		requests:  make(map[string]int),
	}
}

func newSigner() ssh.Signer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("sshtest: generating a key: " + err.Error())
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		panic("sshtest: generating a key: " + err.Error())
	}
	return signer
}

func newLocalListener() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if l, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic("sshtest: failed to listen on a port: " + err.Error())
		}
	}
	return l
}

// Start starts accepting connections on Listener.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("sshtest: Server already started")
	}
	if s.closed {
		panic("sshtest: Start after Close")
	}
	s.started = true
	s.wg.Go(s.acceptLoop)
}

// Addr returns the address the server listens on, as host:port.
func (s *Server) Addr() string {
	return s.Listener.Addr().String()
}

// HostKey returns the server's public host key.
func (s *Server) HostKey() ssh.PublicKey {
	return s.hostKey.PublicKey()
}

// ClientSigner returns the private key that the server accepts for any user.
func (s *Server) ClientSigner() ssh.Signer {
	return s.clientKey
}

// ClientConfig returns a new client configuration that logs in as User with
// ClientSigner's key and accepts only this server's host key.
func (s *Server) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.clientKey)},
		HostKeyCallback: ssh.FixedHostKey(s.hostKey.PublicKey()),
		Timeout:         10 * time.Second,
	}
}

// Dial opens a new SSH connection to the server with ClientConfig. The
// caller owns the client; Close ends its connection too.
func (s *Server) Dial() (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr(), s.ClientConfig())
}

// Client returns an SSH client connected to the server, the same one on
// every call. Close closes it. Client panics if it cannot connect, which
// only happens when the server was closed or never started.
func (s *Server) Client() *ssh.Client {
	s.mu.Lock()
	c, running := s.client, s.started && !s.closed
	s.mu.Unlock()
	if c != nil {
		return c
	}
	if !running {
		panic("sshtest: Client called on a server that is not running")
	}
	// Dial without s.mu: serving the new connection takes it.
	c, err := s.Dial()
	if err != nil {
		panic("sshtest: Client: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		c.Close()
	case s.client != nil: // another caller won
		c.Close()
		return s.client
	default:
		s.client = c
	}
	return c
}

// OpenChannels returns the number of forwarding channels the server has
// open: those it accepted and those it opened for remote forwards. A channel
// counts until both sides have closed it and the server has closed its
// target connection.
func (s *Server) OpenChannels() int {
	return int(s.channels.Load())
}

// GlobalRequests returns how many global requests of type typ the server
// has received, on all its connections: "keepalive@openssh.com" counts a
// client's keepalives, say. A request is counted before it is answered, so a
// client that has its reply sees it counted.
func (s *Server) GlobalRequests(typ string) int {
	s.requestsMu.Lock()
	defer s.requestsMu.Unlock()
	return s.requests[typ]
}

func (s *Server) countRequest(typ string) {
	s.requestsMu.Lock()
	s.requests[typ]++
	s.requestsMu.Unlock()
}

// Stall freezes every connection of the server, present and future, like a
// network that stopped delivering packets: the server neither reads nor
// writes them until Resume. Data already in flight waits in the kernel.
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled == nil {
		s.stalled = make(chan struct{})
	}
}

// Resume ends a Stall.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
}

// CloseClientConnections closes every SSH connection to the server at once,
// without a goodbye, as if the network dropped them.
func (s *Server) CloseClientConnections() {
	s.mu.Lock()
	conns := make([]*stallConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Close shuts the server down: it stops listening, closes the client made by
// Client, every SSH connection and every target connection, and waits until
// all of the server's goroutines have returned.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	client := s.client
	s.mu.Unlock()

	if client != nil {
		client.Close()
	}
	s.Listener.Close()
	s.cancel()
	s.CloseClientConnections()
	s.wg.Wait()
}

// ServeConn serves one SSH connection over c, which need not come from
// Listener: an in-memory pipe, say. It returns at once; Close ends the
// connection.
func (s *Server) ServeConn(c net.Conn) {
	sc := s.track(c) // counts the goroutine below in s.wg
	if sc == nil {
		return
	}
	if testHookServeConnTracked != nil {
		testHookServeConnTracked()
	}
	go func() {
		defer s.wg.Done()
		s.serve(sc)
	}()
}

// testHookServeConnTracked, when set by a test, runs in ServeConn after the
// connection is tracked and before the goroutine serving it starts.
var testHookServeConnTracked func()

func (s *Server) acceptLoop() {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A failed accept (such as too many open files) must not end
			// the test server; wait a little, like net/http does.
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		s.ServeConn(c)
	}
}

// track wraps c so that Stall and Close reach it, and adds the goroutine
// that will serve it to s.wg; or it closes c and returns nil if the server
// is closed.
//
// As in net/http/httptest, the goroutine is added under the lock with which
// Close sets closed: either Close comes first and c is refused, or Close
// comes after and its wg.Wait waits for the goroutine, even one that has not
// started yet.
func (s *Server) track(c net.Conn) *stallConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil
	}
	sc := &stallConn{Conn: c, server: s, closed: make(chan struct{})}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	return sc
}

func (s *Server) untrack(c *stallConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// stallGate returns a channel to wait on while the server is stalled, or nil.
func (s *Server) stallGate() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// stallConn is a server-side connection that Stall can freeze.
type stallConn struct {
	net.Conn
	server    *Server
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallConn) waitUnstalled() error {
	for {
		gate := c.server.stallGate()
		if gate == nil {
			return nil
		}
		select {
		case <-gate:
		case <-c.closed:
			return net.ErrClosed
		}
	}
}

func (c *stallConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	// Data that arrives during a stall is held back, as if still on the wire.
	if werr := c.waitUnstalled(); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *stallConn) Write(p []byte) (int, error) {
	if err := c.waitUnstalled(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// serve runs one SSH connection until it ends.
func (s *Server) serve(c *stallConn) {
	defer s.untrack(c)
	defer c.Close()

	conn, chans, reqs, err := ssh.NewServerConn(c, s.Config)
	if err != nil {
		return
	}
	fwd := &forwards{listeners: make(map[forwardKey]net.Listener)}
	s.wg.Go(func() { s.handleGlobalRequests(conn, reqs, fwd) })
	for nc := range chans {
		s.wg.Go(func() { s.handleChannel(nc) })
	}
	conn.Wait()
	fwd.closeAll()
}

// forwards are the remote-forward listeners of one SSH connection.
type forwards struct {
	mu        sync.Mutex
	closed    bool
	listeners map[forwardKey]net.Listener
}

// forwardKey names a remote forward as the cancel request names it: "tcp"
// and host:port as requested, with the port allocated, or "unix" and the
// socket path.
type forwardKey struct{ network, address string }

func (f *forwards) add(key forwardKey, l net.Listener) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.listeners[key] != nil {
		return false
	}
	f.listeners[key] = l
	return true
}

func (f *forwards) remove(key forwardKey) bool {
	f.mu.Lock()
	l := f.listeners[key]
	delete(f.listeners, key)
	f.mu.Unlock()
	if l == nil {
		return false
	}
	l.Close()
	return true
}

func (f *forwards) closeAll() {
	f.mu.Lock()
	f.closed = true
	ls := f.listeners
	f.listeners = nil
	f.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

func (s *Server) handleGlobalRequests(conn *ssh.ServerConn, reqs <-chan *ssh.Request, fwd *forwards) {
	for req := range reqs {
		s.countRequest(req.Type)
		switch req.Type {
		case "tcpip-forward":
			var msg wire.TCPIPForward
			if ssh.Unmarshal(req.Payload, &msg) != nil {
				req.Reply(false, nil)
				continue
			}
			port, ok := s.listenForward(conn, msg, fwd)
			if !ok {
				req.Reply(false, nil)
				continue
			}
			var reply []byte
			if msg.BindPort == 0 {
				reply = ssh.Marshal(&wire.TCPIPForwardReply{Port: port})
			}
			req.Reply(true, reply)
		case "cancel-tcpip-forward":
			var msg wire.TCPIPForward
			ok := ssh.Unmarshal(req.Payload, &msg) == nil &&
				fwd.remove(forwardKey{"tcp", net.JoinHostPort(msg.BindAddr, strconv.Itoa(int(msg.BindPort)))})
			req.Reply(ok, nil)
		case "streamlocal-forward@openssh.com":
			var msg wire.StreamLocalForward
			ok := ssh.Unmarshal(req.Payload, &msg) == nil &&
				s.listenStreamLocalForward(conn, msg.SocketPath, fwd)
			req.Reply(ok, nil)
		case "cancel-streamlocal-forward@openssh.com":
			var msg wire.StreamLocalForward
			ok := ssh.Unmarshal(req.Payload, &msg) == nil &&
				fwd.remove(forwardKey{"unix", msg.SocketPath})
			req.Reply(ok, nil)
		default:
			// Like OpenSSH, answer keepalive@openssh.com and anything
			// unknown with a failure: any answer is proof of life.
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// forwardBindHost maps a requested bind address to a loopback one: a test
// server never listens beyond this machine.
func forwardBindHost(host string) (string, bool) {
	switch host {
	case "", "0.0.0.0", "localhost", "127.0.0.1":
		return "127.0.0.1", true
	case "::", "::1":
		return "::1", true
	}
	ip := net.ParseIP(host)
	return host, ip != nil && ip.IsLoopback()
}

// listenForward starts a remote forward and returns the port it listens on.
func (s *Server) listenForward(conn *ssh.ServerConn, msg wire.TCPIPForward, fwd *forwards) (uint32, bool) {
	host, ok := forwardBindHost(msg.BindAddr)
	if !ok || msg.BindPort > 65535 {
		return 0, false
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(msg.BindPort))))
	if err != nil {
		return 0, false
	}
	port := uint32(l.Addr().(*net.TCPAddr).Port)
	// Registered under the address as requested with the port allocated:
	// that is what cancel-tcpip-forward names (OpenSSH's clients and
	// x/crypto's send the allocated port).
	if !fwd.add(forwardKey{"tcp", net.JoinHostPort(msg.BindAddr, strconv.Itoa(int(port)))}, l) {
		l.Close()
		return 0, false
	}
	s.serveForward(conn, l, "forwarded-tcpip", func(c net.Conn) any {
		origin := c.RemoteAddr().(*net.TCPAddr)
		return &wire.ForwardedTCPIP{
			Addr:       msg.BindAddr,
			Port:       port,
			OriginAddr: origin.IP.String(),
			OriginPort: uint32(origin.Port),
		}
	})
	return port, true
}

// listenStreamLocalForward starts a unix socket remote forward. Like
// OpenSSH with its default StreamLocalBindUnlink=no, it does not replace a
// file that exists at path.
func (s *Server) listenStreamLocalForward(conn *ssh.ServerConn, path string, fwd *forwards) bool {
	l, err := net.Listen("unix", path)
	if err != nil {
		return false
	}
	if !fwd.add(forwardKey{"unix", path}, l) {
		l.Close()
		return false
	}
	s.serveForward(conn, l, "forwarded-streamlocal@openssh.com", func(net.Conn) any {
		return &wire.ForwardedStreamLocal{SocketPath: path}
	})
	return true
}

// serveForward accepts connections on the remote-forward listener l until
// it is closed, and opens a channel of chanType to the client for each,
// with the extra data that extra returns for it.
func (s *Server) serveForward(conn *ssh.ServerConn, l net.Listener, chanType string, extra func(net.Conn) any) {
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.forwardToClient(conn, chanType, ssh.Marshal(extra(c)), c) })
		}
	})
}

func (s *Server) forwardToClient(conn *ssh.ServerConn, chanType string, payload []byte, c net.Conn) {
	s.channels.Add(1) // before the client can see the channel, as in handleChannel
	ch, reqs, err := conn.OpenChannel(chanType, payload)
	if err != nil {
		s.channels.Add(-1)
		c.Close()
		return
	}
	s.pipe(ch, reqs, c)
}

func (s *Server) handleChannel(nc ssh.NewChannel) {
	var network, address string
	switch nc.ChannelType() {
	case "direct-tcpip":
		var msg wire.DirectTCPIP
		if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil || msg.Port > 65535 {
			nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
			return
		}
		network, address = "tcp", net.JoinHostPort(msg.Host, strconv.Itoa(int(msg.Port)))
	case "direct-streamlocal@openssh.com":
		var msg wire.DirectStreamLocal
		if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
			nc.Reject(ssh.ConnectionFailed, "malformed direct-streamlocal request")
			return
		}
		network, address = "unix", msg.SocketPath
	default:
		nc.Reject(ssh.UnknownChannelType, "unknown channel type: "+nc.ChannelType())
		return
	}

	if s.Permit != nil {
		if err := s.Permit(network, address); err != nil {
			nc.Reject(ssh.Prohibited, err.Error())
			return
		}
	}
	target, err := s.dialTarget(network, address)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	// Counted before the confirmation goes out, so a client that sees the
	// channel open also sees it counted.
	s.channels.Add(1)
	ch, reqs, err := nc.Accept()
	if err != nil {
		s.channels.Add(-1)
		target.Close()
		return
	}
	s.pipe(ch, reqs, target)
}

func (s *Server) dialTarget(network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if s.DialTarget != nil {
		return s.DialTarget(ctx, network, address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// pipe copies between a channel and its target until both directions end,
// passing each direction's EOF on as a half-close, then closes both.
func (s *Server) pipe(ch ssh.Channel, reqs <-chan *ssh.Request, target net.Conn) {
	defer s.channels.Add(-1)
	closedByServer := make(chan struct{})
	stop := context.AfterFunc(s.ctx, func() {
		defer close(closedByServer)
		ch.Close()
		target.Close()
	})
	defer func() {
		// If Close started the function, it runs in a goroutine of its
		// own: wait for it, so that Close waits for it too.
		if !stop() {
			<-closedByServer
		}
	}()

	var copies sync.WaitGroup
	copies.Go(func() {
		io.Copy(target, ch)
		closeWrite(target)
	})
	copies.Go(func() {
		io.Copy(ch, target)
		ch.CloseWrite()
	})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		ssh.DiscardRequests(reqs)
		// The client closed the channel (or the connection ended): nothing
		// read from the target can be delivered any more.
		closeRead(target)
	}()
	copies.Wait()
	ch.Close()
	<-drained
	target.Close()
}

func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
		return
	}
	c.Close()
}

func closeRead(c net.Conn) {
	if hc, ok := c.(interface{ CloseRead() error }); ok {
		hc.CloseRead()
		return
	}
	c.Close()
}
