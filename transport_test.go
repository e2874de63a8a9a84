package sshdial_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/net/proxy"
)

func TestHTTPConcurrentRequestsReuseConnections(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		var newConns atomic.Int32
		origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.URL.Path)
		}))
		origin.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		}
		origin.Start()
		defer origin.Close()

		tr := sshdial.New(client).HTTPTransport()
		tr.MaxIdleConnsPerHost = 8
		defer tr.CloseIdleConnections()
		require.Nil(t, tr.Proxy, "environment proxies must be off")
		hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}

		const workers, perWorker = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					path := fmt.Sprintf("/%d/%d", w, i)
					resp, err := hc.Get(origin.URL + path)
					if err != nil {
						errs <- err
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(body) != path {
						errs <- fmt.Errorf("%s: got %q, %v", path, body, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.LessOrEqual(t, int(newConns.Load()), 2*workers, "connections are reused")
	})
}

func TestHTTP2OverTLS(t *testing.T) {
	_, client := newSSHTest(t)
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	origin.EnableHTTP2 = true
	origin.StartTLS()
	defer origin.Close()

	tr := sshdial.New(client).HTTPTransport()
	defer tr.CloseIdleConnections()
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Get(origin.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 2, resp.ProtoMajor)
	require.Equal(t, "HTTP/2.0", string(body))
}

func TestHTTPClientTimeoutWithStalledServer(t *testing.T) {
	srv, client := newSSHTest(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer origin.Close()
	hc := sshdial.New(client).HTTPClient()
	defer hc.CloseIdleConnections()
	hc.Timeout = 300 * time.Millisecond

	resp, err := hc.Get(origin.URL) // a warm connection first
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	srv.Stall()
	defer srv.Resume()
	start := time.Now()
	_, err = hc.Get(origin.URL)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "%v", err)
	require.Less(t, time.Since(start), 3*time.Second)
}

// TestTLSOverConn runs crypto/tls directly over a Conn: a handshake, a read,
// and a Close on a stalled server. tls.Conn.Close sends close_notify under a
// write deadline of 5 s that it sets with SetWriteDeadline: once the server
// has stopped reading and the Conn holds all it can, that deadline is all
// that keeps Close from hanging.
func TestTLSOverConn(t *testing.T) {
	srv, client := newSSHTest(t)
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	origin.StartTLS() // for its certificate
	defer origin.Close()
	serverConfig := origin.TLS.Clone()

	stopReading := make(chan struct{})
	defer close(stopReading)
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		tc := tls.Server(c, serverConfig)
		if tc.Handshake() != nil {
			return
		}
		io.WriteString(tc, "hello over tls")
		<-stopReading
	})
	conn, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "example.com"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tc.HandshakeContext(ctx))
	buf := make([]byte, len("hello over tls"))
	_, err = io.ReadFull(tc, buf)
	require.NoError(t, err)
	require.Equal(t, "hello over tls", string(buf))

	// Nobody reads any more. Fill the Conn: a Write that times out having
	// committed part of its bytes was blocked because the Conn was full.
	// SetDeadline sets that deadline and clears it again, so that the
	// SetWriteDeadline of tls.Conn.Close is the only one that can end the
	// close_notify below.
	srv.Stall()
	defer srv.Resume()
	const slack = 10 * time.Second
	big := make([]byte, 32<<20)
	var n int
	var writeErr error
	require.NoError(t, tc.SetDeadline(time.Now().Add(time.Second)))
	testutil.Within(t, time.Second+slack, "tls.Conn.Write with a deadline", func() { n, writeErr = tc.Write(big) })
	require.ErrorIs(t, writeErr, os.ErrDeadlineExceeded)
	require.Less(t, n, len(big))
	require.NoError(t, tc.SetDeadline(time.Time{}))

	var closeErr error
	took := testutil.Within(t, 5*time.Second+slack, "tls.Conn.Close", func() { closeErr = tc.Close() })
	require.ErrorIs(t, closeErr, os.ErrDeadlineExceeded, "close_notify ended at its write deadline")
	require.GreaterOrEqual(t, took, 5*time.Second, "close_notify waited for its deadline")
}

func TestDialTimeoutAndDialTCPContext(t *testing.T) {
	srv, client := newSSHTest(t)
	l := testutil.EchoServer(t, "tcp")
	d := sshdial.New(client)

	conn, err := d.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()
	conn, err = d.DialTimeout("tcp", l.Addr().String(), 0)
	require.NoError(t, err)
	conn.Close()
	conn, err = d.DialTCPContext(context.Background(), l.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()

	srv.Stall()
	defer srv.Resume()
	start := time.Now()
	_, err = d.DialTimeout("tcp", l.Addr().String(), 200*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)
}

// proxyFixture writes a known_hosts file and an identity file for an
// OpenSSH server and returns the ssh:// URL that names them.
func proxyFixture(t *testing.T) (u *url.URL, knownHostsPath string, target net.Listener) {
	srv, _ := newOpenSSH(t)
	dir := t.TempDir()
	knownHostsPath = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostKey)
	require.NoError(t, os.WriteFile(knownHostsPath, []byte(line+"\n"), 0o600))
	identity := filepath.Join(dir, "id")
	block, err := ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(identity, pem.EncodeToMemory(block), 0o600))
	u = &url.URL{
		Scheme:   "ssh",
		User:     url.User(srv.User),
		Host:     srv.Addr,
		RawQuery: url.Values{"known_hosts": {knownHostsPath}, "identity": {identity}, "agent": {"no"}}.Encode(),
	}
	return u, knownHostsPath, testutil.EchoServer(t, "tcp")
}

func TestProxyFromURL(t *testing.T) {
	u, _, target := proxyFixture(t)
	proxy.RegisterDialerType("ssh", sshdial.FromURL)
	d, err := proxy.FromURL(u, proxy.Direct)
	require.NoError(t, err)
	defer d.(*sshdial.Dialer).Close()

	conn, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()

	// The context form, as proxy.Dial uses it.
	conn, err = d.(proxy.ContextDialer).DialContext(context.Background(), "tcp", target.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()
}

func TestProxyFromURLRejectsWrongHostKey(t *testing.T) {
	u, knownHostsPath, target := proxyFixture(t)
	otherKey, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	other, err := ssh.NewPublicKey(otherKey)
	require.NoError(t, err)
	line := knownhosts.Line([]string{knownhosts.Normalize(u.Host)}, other)
	require.NoError(t, os.WriteFile(knownHostsPath, []byte(line+"\n"), 0o600))

	d, err := sshdial.FromURL(u, nil)
	require.NoError(t, err)
	defer d.(*sshdial.Dialer).Close()
	_, err = d.Dial("tcp", target.Addr().String())
	require.ErrorIs(t, err, sshdial.ErrHostKeyChanged, "a known key that does not match")

	// An unknown host is rejected too.
	require.NoError(t, os.WriteFile(knownHostsPath, nil, 0o600))
	d2, err := sshdial.FromURL(u, nil)
	require.NoError(t, err)
	defer d2.(*sshdial.Dialer).Close()
	_, err = d2.Dial("tcp", target.Addr().String())
	require.ErrorIs(t, err, sshdial.ErrHostKeyUnknown, "no known key")
}

func TestProxyFromURLWithAgent(t *testing.T) {
	u, _, target := proxyFixture(t)
	q := u.Query()
	identity := q.Get("identity")
	q.Del("identity")
	q.Set("agent", "yes")
	u.RawQuery = q.Encode()

	keyPEM, err := os.ReadFile(identity)
	require.NoError(t, err)
	raw, err := ssh.ParseRawPrivateKey(keyPEM)
	require.NoError(t, err)
	keyring := agent.NewKeyring()
	require.NoError(t, keyring.Add(agent.AddedKey{PrivateKey: raw}))
	sock := filepath.Join(testutil.ShortTempDir(t), "agent")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { agent.ServeAgent(keyring, c); c.Close() })
		}
	})
	defer func() { l.Close(); wg.Wait() }()
	t.Setenv("SSH_AUTH_SOCK", sock)

	d, err := sshdial.FromURL(u, nil)
	require.NoError(t, err)
	defer d.(*sshdial.Dialer).Close()
	conn, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	conn.Close()
}

func TestProxyFromURLBadInput(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(kh, nil, 0o600))
	t.Setenv("SSH_AUTH_SOCK", "")
	for raw, want := range map[string]string{
		"http://host":                                        "scheme must be ssh",
		"ssh://u:p@:22?known_hosts=" + kh:                    "missing host",
		"ssh://u:p@host:0?known_hosts=" + kh:                 "port out of range",
		"ssh://u:p@host:70000?known_hosts=" + kh:             "port out of range",
		"ssh://u:p@host?known_hosts=" + kh + "&x=1":          "unknown option",
		"ssh://u:p@host?known_hosts=/nonexistent/kh":         "known_hosts",
		"ssh://u@host?known_hosts=" + kh + "&identity=" + kh: "identity",
		"ssh://u:p@host?known_hosts=" + kh + "&agent=maybe":  "agent must be yes or no",
		"ssh://u:p@host/some/path?known_hosts=" + kh:         "only ssh://",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = sshdial.FromURL(u, nil)
		require.ErrorContains(t, err, want, raw)
	}
	_, err := sshdial.FromURL(nil, nil)
	require.ErrorContains(t, err, "nil URL")

	// A password URL is accepted, and its password never shows in errors.
	u, _ := url.Parse("ssh://u:secret@host:0?known_hosts=" + kh)
	_, err = sshdial.FromURL(u, nil)
	require.NotContains(t, err.Error(), "secret")
}

func TestFromURLClose(t *testing.T) {
	u, _, target := proxyFixture(t)
	pd, err := sshdial.FromURL(u, nil)
	require.NoError(t, err)
	d := pd.(*sshdial.Dialer)
	conn, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	require.NoError(t, d.Close())
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, sshdial.ErrDialerClosed, "connections end with the Dialer")
	conn.Close()
	_, err = d.Dial("tcp", target.Addr().String())
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestProxyFromURLChained reaches the OpenSSH server through another SSH
// server: FromURL's forward dialer is an sshdial Dialer over sshtest.
func TestProxyFromURLChained(t *testing.T) {
	u, _, target := proxyFixture(t)
	var hops atomic.Int32
	jump := sshtest.NewUnstartedServer()
	jump.Permit = func(network, address string) error {
		if address == u.Host {
			hops.Add(1)
		}
		return nil
	}
	jump.Start()
	t.Cleanup(jump.Close)

	d, err := sshdial.FromURL(u, sshdial.New(jump.Client()))
	require.NoError(t, err)
	defer d.(*sshdial.Dialer).Close()
	conn, err := d.Dial("tcp", target.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, testutil.RoundTrip(conn, "ping"))
	require.Equal(t, int32(1), hops.Load(), "the SSH server was reached through the jump server")
}
