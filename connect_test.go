package sshdial_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testproc"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// home is a temporary HOME with its own ~/.ssh, as a new user would have.
type home struct {
	dir    string
	sshDir string
}

// newHome makes a temporary HOME for the test, with no ssh-agent.
func newHome(t *testing.T) *home {
	dir := testutil.ShortTempDir(t)
	h := &home{dir: dir, sshDir: filepath.Join(dir, ".ssh")}
	require.NoError(t, os.Mkdir(h.sshDir, 0o700))
	t.Setenv("HOME", dir)
	t.Setenv("SSH_AUTH_SOCK", "")
	return h
}

func (h *home) write(t *testing.T, name, text string) string {
	path := filepath.Join(h.sshDir, name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// writeKey writes srv's client key to ~/.ssh/name (and name.pub),
// encrypted with passphrase when it is not empty.
func (h *home) writeKey(t *testing.T, srv *opensshd.Server, name, passphrase string) string {
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(srv.ClientPrivateKey, "", []byte(passphrase))
	}
	require.NoError(t, err)
	h.write(t, name+".pub", string(ssh.MarshalAuthorizedKey(srv.ClientKey.PublicKey())))
	return h.write(t, name, string(pem.EncodeToMemory(block)))
}

// homeFor makes a temporary HOME whose default key logs in to srv and
// whose known_hosts holds srv's ed25519 key as ssh-keyscan writes it.
func homeFor(t *testing.T, srv *opensshd.Server) *home {
	h := newHome(t)
	h.writeKey(t, srv, "id_ed25519", "")
	h.write(t, "known_hosts", keyscan(t, srv.Addr, "ed25519"))
	return h
}

// connectTo connects to srv as user@host:port with Connect, from the files
// of the current HOME; the Dialer is closed when the test ends.
func connectTo(t *testing.T, srv *opensshd.Server, opts ...sshdial.ConnectOption) *sshdial.Dialer {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, fmt.Sprintf("%s@%s", srv.User, srv.Addr), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// keyscan returns srv's host keys of the given types as known_hosts lines,
// from OpenSSH's ssh-keyscan.
func keyscan(t *testing.T, addr string, types string) string {
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	out, err := exec.Command("ssh-keyscan", "-p", port, "-t", types, host).Output()
	require.NoError(t, err)
	require.NotEmpty(t, out, "ssh-keyscan found no key")
	return string(out)
}

// portOf returns the port of a host:port address.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// countingProxy forwards TCP connections to addr and counts them: each is
// one SSH connection.
func countingProxy(t *testing.T, addr string) (string, *atomic.Int32) {
	var count atomic.Int32
	l := serve(t, "tcp", func(c net.Conn) {
		count.Add(1)
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		<-done
	})
	return l.Addr().String(), &count
}

// TestConnectAsANewUserWould: an alias from ~/.ssh/config, the default
// identity file, and a known_hosts written by ssh-keyscan that holds only
// the ed25519 key of a server that also has an RSA key (x/crypto alone
// negotiates RSA and reports a key mismatch).
func TestConnectAsANewUserWould(t *testing.T) {
	// Registered first, so it runs after every other cleanup (sshd's too).
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	srv := opensshd.StartWith(t, opensshd.Options{HostKeys: []opensshd.KeyType{opensshd.RSA, opensshd.Ed25519}})
	h := homeFor(t, srv)
	h.write(t, "config", fmt.Sprintf("Host db-bastion\n  HostName 127.0.0.1\n  Port %s\n  User %s\n", portOf(srv.Addr), srv.User))

	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "db-bastion", sshdial.WithLogger(logger))
	require.NoError(t, err)
	target := serve(t, "tcp", echo).Addr().String()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))
	require.NoError(t, d.Close())
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed, "Close closes the Dialer's Conns")

	require.Contains(t, logs.String(), "ssh-ed25519 SHA256:", "the host key is logged")
	require.Contains(t, logs.String(), "id_ed25519", "the key that logged in is logged")
}

// TestConnectHostKeys: an unknown key and a changed key are refused with
// errors that say what to do; accept-new records a new key and then
// accepts it, but still refuses a changed one.
func TestConnectHostKeys(t *testing.T) {
	srv := opensshd.Start(t)
	h := newHome(t)
	h.writeKey(t, srv, "id_ed25519", "")
	dest := fmt.Sprintf("%s@%s", srv.User, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("unknown", func(t *testing.T) {
		h.write(t, "known_hosts", "")
		_, err := sshdial.Connect(ctx, dest)
		require.ErrorIs(t, err, sshdial.ErrHostKeyUnknown)
		var hkErr *sshdial.HostKeyError
		require.ErrorAs(t, err, &hkErr)
		fp := ssh.FingerprintSHA256(srv.HostKey)
		require.Contains(t, err.Error(), fp)
		require.Contains(t, err.Error(), "ssh-keyscan")
		require.Contains(t, err.Error(), filepath.Join(h.sshDir, "known_hosts"))
	})
	t.Run("changed", func(t *testing.T) {
		other := opensshd.Start(t) // another host key
		line := strings.Replace(keyscan(t, other.Addr, "ed25519"), "["+"127.0.0.1]:"+portOf(other.Addr), "[127.0.0.1]:"+portOf(srv.Addr), 1)
		h.write(t, "known_hosts", line)
		_, err := sshdial.Connect(ctx, dest)
		require.ErrorIs(t, err, sshdial.ErrHostKeyChanged)
		require.False(t, errors.Is(err, sshdial.ErrHostKeyUnknown))

		// Nothing turns checking of a changed key off: "no" in a config
		// file or in code is accept-new with a warning, which still refuses
		// it (ssh would go on with forwarding disabled).
		h.write(t, "config", "Host *\n  StrictHostKeyChecking no\n")
		defer os.Remove(filepath.Join(h.sshDir, "config"))
		_, err = sshdial.Connect(ctx, dest)
		require.ErrorIs(t, err, sshdial.ErrHostKeyChanged)
		_, err = sshdial.Connect(ctx, dest, sshdial.WithStrictHostKeyChecking("no"))
		require.ErrorIs(t, err, sshdial.ErrHostKeyChanged)
	})
	t.Run("accept-new", func(t *testing.T) {
		kh := h.write(t, "known_hosts", "")
		h.write(t, "config", "Host *\n  StrictHostKeyChecking accept-new\n")
		defer os.Remove(filepath.Join(h.sshDir, "config"))
		d, err := sshdial.Connect(ctx, dest)
		require.NoError(t, err)
		d.Close()
		recorded, err := os.ReadFile(kh)
		require.NoError(t, err)
		require.Contains(t, string(recorded), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey))))
		d, err = sshdial.Connect(ctx, dest, sshdial.WithStrictHostKeyChecking("yes"))
		require.NoError(t, err, "the recorded key is now known")
		d.Close()
	})
}

// TestConnectAgentAndPassphrase: keys from a real ssh-agent, and a
// passphrase-protected identity file through WithPassphrase; without the
// passphrase the failure lists what was tried.
func TestConnectAgentAndPassphrase(t *testing.T) {
	srv := opensshd.Start(t)
	h := newHome(t)
	h.write(t, "known_hosts", keyscan(t, srv.Addr, "ed25519"))
	dest := fmt.Sprintf("%s@%s", srv.User, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("passphrase", func(t *testing.T) {
		h.writeKey(t, srv, "id_ed25519", "open sesame")
		defer os.Remove(filepath.Join(h.sshDir, "id_ed25519"))
		asked := 0
		d, err := sshdial.Connect(ctx, dest, sshdial.WithPassphrase(func(_ context.Context, file string) ([]byte, error) {
			asked++
			return []byte("open sesame"), nil
		}))
		require.NoError(t, err)
		d.Close()
		require.Equal(t, 1, asked)

		_, err = sshdial.Connect(ctx, dest)
		require.ErrorIs(t, err, sshdial.ErrAuthFailed)
		require.Contains(t, err.Error(), "id_ed25519")
		require.NotContains(t, err.Error(), "open sesame")
	})

	t.Run("agent", func(t *testing.T) {
		keyFile := h.writeKey(t, srv, "agent_key", "")
		sock := filepath.Join(testutil.ShortTempDir(t), "agent.sock")
		testproc.Start(t, testproc.Options{}, "ssh-agent", "-D", "-a", sock)
		// The socket file exists from bind on, before ssh-agent listens.
		require.Eventually(t, func() bool {
			c, err := net.Dial("unix", sock)
			if err == nil {
				c.Close()
			}
			return err == nil
		}, 10*time.Second, 10*time.Millisecond)
		add := exec.Command("ssh-add", keyFile)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NoError(t, os.Remove(keyFile)) // only the agent has it now
		t.Setenv("SSH_AUTH_SOCK", sock)

		d, err := sshdial.Connect(ctx, dest)
		require.NoError(t, err)
		requireEchoThrough(t, d)
		d.Close()
	})
}

// TestConnectThroughJumpHost: ProxyJump from the config; the destination
// is reached through the jump host's sshd, and each hop's key is checked.
func TestConnectThroughJumpHost(t *testing.T) {
	verbose := opensshd.Options{Config: []string{"LogLevel DEBUG1"}}
	outer := opensshd.StartWith(t, verbose)
	jump := opensshd.StartWith(t, verbose)
	dest := opensshd.Start(t)
	h := newHome(t)
	// One identity serves all three: the others accept the jump's key too.
	h.writeKey(t, jump, "id_ed25519", "")
	for _, srv := range []*opensshd.Server{outer, dest} {
		f, err := os.OpenFile(filepath.Join(srv.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		f.Write(ssh.MarshalAuthorizedKey(jump.ClientKey.PublicKey()))
		f.Close()
	}
	allKeys := keyscan(t, outer.Addr, "ed25519") + keyscan(t, jump.Addr, "ed25519") + keyscan(t, dest.Addr, "ed25519")
	h.write(t, "known_hosts", allKeys)
	h.write(t, "config", fmt.Sprintf(`Host outer
  HostName 127.0.0.1
  Port %s
  User %s
Host jump
  HostName 127.0.0.1
  Port %s
  User %s
Host inner
  HostName 127.0.0.1
  Port %s
  User %s
  ProxyJump jump
`, portOf(outer.Addr), outer.User, portOf(jump.Addr), jump.User, portOf(dest.Addr), dest.User))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "inner")
	require.NoError(t, err)
	requireEchoThrough(t, d)
	d.Close()
	require.Contains(t, jump.Stderr(), "direct-tcpip", "the destination was reached through the jump host")

	// Two hops before the destination, given in code.
	d, err = sshdial.Connect(ctx, "inner", sshdial.WithJump("outer", "jump"))
	require.NoError(t, err)
	requireEchoThrough(t, d)
	d.Close()
	require.Contains(t, outer.Stderr(), "direct-tcpip", "the first hop was the outer jump host")

	// A hop whose key is unknown is refused, and the error names the hop.
	h.write(t, "known_hosts", keyscan(t, outer.Addr, "ed25519")+keyscan(t, jump.Addr, "ed25519"))
	_, err = sshdial.Connect(ctx, "inner", sshdial.WithJump("outer", "jump"))
	require.ErrorIs(t, err, sshdial.ErrHostKeyUnknown)
	require.Contains(t, err.Error(), "hop 3 of 3")
}

// TestConnectSilentServerBoundedByContext: a server that accepts TCP and
// then says nothing cannot hold Connect past its context.
func TestConnectSilentServerBoundedByContext(t *testing.T) {
	newHome(t)
	silent := serve(t, "tcp", func(c net.Conn) { io.Copy(io.Discard, c) }).Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := sshdial.Connect(ctx, "ssh://nobody@"+silent)
		res <- err
	}()
	err := await(t, 10*time.Second, "Connect to a silent server", res)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestProxyFromURLKeepsOneSSHConnection: proxy.Dial with ALL_PROXY=ssh://…
// calls proxy.FromURL on every dial; all of them share one SSH connection.
func TestProxyFromURLKeepsOneSSHConnection(t *testing.T) {
	srv := opensshd.Start(t)
	h := newHome(t)
	key := h.writeKey(t, srv, "id_ed25519", "")
	front, accepted := countingProxy(t, srv.Addr)
	kh := h.write(t, "known_hosts", strings.Replace(keyscan(t, srv.Addr, "ed25519"), portOf(srv.Addr), portOf(front), 1))
	u := &url.URL{Scheme: "ssh", User: url.User(srv.User), Host: front,
		RawQuery: url.Values{"known_hosts": {kh}, "identity": {key}}.Encode()}
	proxy.RegisterDialerType("ssh", sshdial.FromURL)
	target := serve(t, "tcp", echo).Addr().String()
	// What proxy.Dial does on every call with ALL_PROXY set (it reads the
	// variable once per process, so the test calls proxy.FromURL itself).
	for range 5 {
		pd, err := proxy.FromURL(u, proxy.Direct)
		require.NoError(t, err)
		c, err := pd.(proxy.ContextDialer).DialContext(context.Background(), "tcp", target)
		require.NoError(t, err)
		require.NoError(t, testutil.RoundTrip(c, "ping"))
		c.Close()
	}
	require.EqualValues(t, 1, accepted.Load())
	d, err := sshdial.FromURL(u, nil)
	require.NoError(t, err)
	require.NoError(t, d.(*sshdial.Dialer).Close())
}

// TestURLErrorsHoldNoSecret: a malformed URL's error never echoes what it
// may hide (a password in the opaque part or in the query).
func TestURLErrorsHoldNoSecret(t *testing.T) {
	// No sentinel is documented for a malformed URL: the text is checked.
	for raw, want := range map[string]string{
		"ssh:u:PW1@h":            "only ssh://user@host:port",
		"ssh://u@h?password=PW1": `unknown option "password"`,
		"ssh://u:PW1@h/path":     "only ssh://user@host:port",
		"ssh://u:PW1@h:99999":    "port out of range",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = sshdial.FromURL(u, nil)
		require.ErrorContains(t, err, want, raw)
		require.NotContains(t, err.Error(), "PW1", raw)
	}
	_, err := sshdial.Connect(context.Background(), "ssh://u:PW1@h")
	require.ErrorContains(t, err, "passwords are not accepted")
	require.NotContains(t, err.Error(), "PW1")
}

// TestConnectProxyCommand: a ProxyCommand in ~/.ssh/config carries the SSH
// connection over its standard input and output, with %h %p %r %n %%
// expanded; one that fails is an error that says so, without the command
// line; one that hangs is bounded by the context and stopped.
func TestConnectProxyCommand(t *testing.T) {
	srv := opensshd.Start(t)
	h := homeFor(t, srv)
	self, err := os.Executable()
	require.NoError(t, err)
	log := filepath.Join(h.dir, "relay.log")
	t.Setenv("SSHDIAL_TEST_RELAY_LOG", log)
	h.write(t, "config", fmt.Sprintf(`Host viacmd
  HostName 127.0.0.1
  Port %s
  User %s
  ProxyCommand %s %s %%h %%p %%r %%n 100%%%%
Host failing
  HostName 127.0.0.1
  Port %[1]s
  User %[2]s
  ProxyCommand sh -c 'exit 3' secret-word-in-command
Host silent
  HostName 127.0.0.1
  ProxyCommand sleep 600
`, portOf(srv.Addr), srv.User, self, testutil.RelayCommand))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "viacmd")
	require.NoError(t, err)
	requireEchoThrough(t, d)
	require.NoError(t, d.Close())
	got, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("127.0.0.1 %s %s viacmd 100%%\n", portOf(srv.Addr), srv.User), string(got),
		"one ProxyCommand, with its tokens expanded")

	_, err = sshdial.Connect(ctx, "failing")
	require.ErrorContains(t, err, "ProxyCommand for failing ended (exit status 3)")
	require.NotContains(t, err.Error(), "secret-word")

	// WithProxyCommand replaces the config's: "none" connects directly,
	// and a command of its own reaches a host whose config's fails.
	d, err = sshdial.Connect(ctx, "viacmd", sshdial.WithProxyCommand("none"))
	require.NoError(t, err)
	require.NoError(t, d.Close())
	d, err = sshdial.Connect(ctx, "failing", sshdial.WithProxyCommand(self+" "+testutil.RelayCommand+" %h %p from-option"))
	require.NoError(t, err)
	require.NoError(t, d.Close())
	got, err = os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("127.0.0.1 %s %s viacmd 100%%\n127.0.0.1 %[1]s from-option\n", portOf(srv.Addr), srv.User), string(got))
	_, err = sshdial.Connect(ctx, "viacmd", sshdial.WithProxyCommand("nc %h %p"), sshdial.WithJump("jump"))
	require.ErrorContains(t, err, "give one")

	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	_, err = sshdial.Connect(short, "silent")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second, "the hanging ProxyCommand held Connect")
}

// TestConnectAddressFamily: AddressFamily in the config and
// WithAddressFamily (ssh -4/-6) decide which addresses of the server's name
// are dialed. The server listens on 127.0.0.1 only, so "localhost" works
// over inet and fails over inet6.
func TestConnectAddressFamily(t *testing.T) {
	srv := opensshd.Start(t)
	h := homeFor(t, srv)
	h.write(t, "known_hosts", strings.Replace(keyscan(t, srv.Addr, "ed25519"), "[127.0.0.1]", "[localhost]", 1))
	h.write(t, "config", fmt.Sprintf(`Host v4
  HostName localhost
  Port %s
  User %s
  AddressFamily inet
Host v6
  HostName localhost
  Port %[1]s
  User %[2]s
  AddressFamily inet6
`, portOf(srv.Addr), srv.User))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	d, err := sshdial.Connect(ctx, "v4")
	require.NoError(t, err)
	require.NoError(t, d.Close())

	// Connect documents no error for an unreachable server: the dial's
	// *net.OpError says which network was tried.
	requireTCP6 := func(t *testing.T, err error, msg string) {
		t.Helper()
		var opErr *net.OpError
		require.ErrorAs(t, err, &opErr, msg)
		require.Equal(t, "tcp6", opErr.Net, msg)
	}
	_, err = sshdial.Connect(ctx, "v6")
	requireTCP6(t, err, "inet6 must not fall back to 127.0.0.1")

	d, err = sshdial.Connect(ctx, "v6", sshdial.WithAddressFamily("inet"))
	require.NoError(t, err, "the option wins over the config")
	require.NoError(t, d.Close())
	_, err = sshdial.Connect(ctx, "v4", sshdial.WithAddressFamily("INET6"))
	requireTCP6(t, err, "the option, in any case, wins over the config")

	_, err = sshdial.Connect(ctx, "v4", sshdial.WithAddressFamily("ipx"))
	require.ErrorContains(t, err, "want any, inet or inet6")
}

// A server that takes the TCP connection and never speaks SSH: Connect
// with context.Background() ends after ConnectTimeout, with ssh's words
// for it, and logs no "Dialer closed" that would read like the cause.
func TestConnectNoBanner(t *testing.T) {
	newHome(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	held.Add(1)
	go func() {
		defer held.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		held.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()

	var logs testutil.SyncBuffer
	start := time.Now()
	_, err = sshdial.Connect(context.Background(), "tester@"+l.Addr().String(),
		sshdial.WithConnectTimeout(time.Second), sshdial.WithStrictHostKeyChecking("yes"),
		sshdial.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "banner exchange")
	require.Contains(t, err.Error(), "sent no SSH banner")
	require.Less(t, took, 10*time.Second)
	require.NotContains(t, logs.String(), "Dialer closed")
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}
