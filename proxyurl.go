package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/net/proxy"
)

// FromURL returns a dialer that connects through the SSH server named by u,
// reaching that server through forward. Its signature is the one
// proxy.RegisterDialerType takes; registration is the caller's choice:
//
//	proxy.RegisterDialerType("ssh", sshdial.FromURL)
//	d, err := proxy.FromURL(u, proxy.Direct) // u: ssh://deploy@bastion.example.com:2222
//
// The URL has the form
//
//	ssh://user[:password]@host[:port][?known_hosts=PATH][&identity=PATH]...[&agent=no]
//
// The port defaults to 22 and the user to $USER. The server's host key is
// always verified, against the known_hosts files given (comma-separated or
// repeated), or else ~/.ssh/known_hosts; there is no way to skip the check.
// Authentication tries, in order, each identity file given (an unencrypted
// private key in OpenSSH or PEM form), the keys of the ssh-agent at
// $SSH_AUTH_SOCK unless agent=no, and the password if the URL has one.
// A URL that names anything else is an error.
//
// The returned value is a *URLDialer. It connects to the SSH server on its
// first dial and again after the connection is lost; Close closes it.
func FromURL(u *url.URL, forward proxy.Dialer) (proxy.Dialer, error) {
	return NewURLDialer(u, forward)
}

var _ proxy.ContextDialer = (*URLDialer)(nil)

// A URLDialer dials through an SSH server that it connects to itself, as
// described by a URL (see FromURL). It is safe for concurrent use and owns
// its SSH connection.
type URLDialer struct {
	addr    string
	config  *ssh.ClientConfig
	agent   bool // ask $SSH_AUTH_SOCK's agent for keys
	forward proxy.Dialer

	mu         sync.Mutex
	client     *ssh.Client
	closed     bool
	agentConns []net.Conn // open during a connect's handshake
}

// NewURLDialer is FromURL returning the concrete type. forward may be nil
// for proxy.Direct.
func NewURLDialer(u *url.URL, forward proxy.Dialer) (*URLDialer, error) {
	if u == nil {
		return nil, errors.New("sshdial: nil URL")
	}
	fail := func(format string, args ...any) (*URLDialer, error) {
		return nil, fmt.Errorf("sshdial: URL %s: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.Scheme != "ssh" {
		return fail("scheme must be ssh")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return fail("only ssh://user@host:port with options in the query is understood")
	}
	host := u.Hostname()
	if host == "" {
		return fail("missing host")
	}
	port := 22
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail("port out of range (1-65535)")
		}
		port = n
	}

	query := u.Query()
	for key := range query {
		switch key {
		case "known_hosts", "identity", "agent":
		default:
			return fail("unknown option %q", key)
		}
	}

	knownHostsFiles := splitList(query["known_hosts"])
	if len(knownHostsFiles) == 0 {
		home, err := os.UserHomeDir()
		if err != nil {
			return fail("no known_hosts given and no home directory: %v", err)
		}
		knownHostsFiles = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	hostKeyCallback, err := knownhosts.New(knownHostsFiles...)
	if err != nil {
		return fail("known_hosts: %v", err)
	}

	var auth []ssh.AuthMethod
	var signers []ssh.Signer
	for _, path := range splitList(query["identity"]) {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fail("identity: %v", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return fail("identity %s: %v", path, err)
		}
		signers = append(signers, signer)
	}
	if len(signers) > 0 {
		auth = append(auth, ssh.PublicKeys(signers...))
	}
	d := &URLDialer{forward: forward}
	switch query.Get("agent") {
	case "", "yes":
		d.agent = os.Getenv("SSH_AUTH_SOCK") != ""
	case "no":
	default:
		return fail("agent must be yes or no")
	}
	if d.agent {
		auth = append(auth, ssh.PublicKeysCallback(d.agentSigners))
	}
	if password, ok := u.User.Password(); ok {
		auth = append(auth, ssh.Password(password))
	}
	if len(auth) == 0 {
		return fail("no way to authenticate: name an identity file, run an ssh-agent or give a password")
	}

	user := u.User.Username()
	if user == "" {
		user = os.Getenv("USER")
	}
	if user == "" {
		return fail("missing user")
	}
	if d.forward == nil {
		d.forward = proxy.Direct
	}
	d.addr = net.JoinHostPort(host, strconv.Itoa(port))
	d.config = &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: hostKeyCallback,
		Timeout:         30 * time.Second,
	}
	d.config = withPreferredCiphers(d.config)
	return d, nil
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// agentSigners asks the agent for its keys. The agent connection is kept only
// for the handshake that asked.
func (d *URLDialer) agentSigners() ([]ssh.Signer, error) {
	conn, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		return nil, fmt.Errorf("sshdial: ssh-agent: %w", err)
	}
	// The signers call the agent while signing, later in the handshake;
	// the connection closes when the dialer's connect returns.
	d.agentConns = append(d.agentConns, conn)
	return agent.NewClient(conn).Signers()
}

// Dial connects to address through the SSH server.
func (d *URLDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address through the SSH server, connecting to the
// server first if needed. ctx bounds both. See Dialer.DialContext.
func (d *URLDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	client, err := d.sshClient(ctx)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return New(client).DialContext(ctx, network, address)
}

// Close closes the SSH connection, which ends every connection dialed
// through it. Later dials fail with ErrClientClosed.
func (d *URLDialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.client != nil {
		err := d.client.Close()
		d.client = nil
		return err
	}
	return nil
}

func (d *URLDialer) sshClient(ctx context.Context) (*ssh.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClientClosed
	}
	if d.client != nil {
		return d.client, nil
	}
	client, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	d.client = client
	go func() {
		client.Wait()
		d.mu.Lock()
		if d.client == client {
			d.client = nil // the next dial reconnects
		}
		d.mu.Unlock()
	}()
	return client, nil
}

// connect dials the SSH server through forward and logs in; d.mu is held.
func (d *URLDialer) connect(ctx context.Context) (*ssh.Client, error) {
	var conn net.Conn
	var err error
	if cd, ok := d.forward.(proxy.ContextDialer); ok {
		conn, err = cd.DialContext(ctx, "tcp", d.addr)
	} else {
		conn, err = d.forward.Dial("tcp", d.addr)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range d.agentConns {
			c.Close()
		}
		d.agentConns = nil
	}()
	return handshake(ctx, QuickAck(conn), d.addr, d.config)
}
