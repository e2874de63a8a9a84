package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"
)

// deadLink is an SSH server kind with a client connected to it and a way to
// stall either kind: sshtest's Stall, or SIGSTOP of sshd and the processes
// serving its connections.
type deadLink struct {
	name   string
	client *ssh.Client
	stall  func() (resume func())
	sshd   *opensshd.Server // nil for sshtest
}

func deadLinks(t *testing.T) []deadLink {
	srv, _ := namingServer(t)
	c, err := srv.Dial()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	links := []deadLink{{"sshtest", c, func() func() { srv.Stall(); return srv.Resume }, nil}}
	return append(links, openSSHDeadLinks(t)...)
}

// natsDialer records how each of nats.go's dials ended. nats.go calls
// Dial(network, address) without a context, so nothing but the Dialer can
// end a dial on a dead link.
type natsDialer struct {
	d     *sshdial.Dialer
	dials chan error
}

func (n *natsDialer) Dial(network, address string) (net.Conn, error) {
	c, err := n.d.Dial(network, address)
	select {
	case n.dials <- err:
	default:
	}
	return c, err
}

func TestNATS(t *testing.T) {
	addr := behind("queue.internal", startNATS(t))
	for _, tn := range deadLinks(t) {
		t.Run(tn.name, func(t *testing.T) {
			// Keepalive: a dead link fails the connection and the dials,
			// which nats.go could not bound.
			d := sshdial.New(tn.client, sshdial.WithKeepalive(100*time.Millisecond, 300*time.Millisecond))
			nd := &natsDialer{d: d, dials: make(chan error, 100)}
			disconnected := make(chan error, 10)
			reconnected := make(chan struct{}, 10)
			nc, err := nats.Connect("nats://"+addr,
				nats.SetCustomDialer(nd),
				nats.SkipHostLookup(), // the name is the SSH server's to resolve
				nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { disconnected <- err }),
				nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
			)
			require.NoError(t, err)
			defer nc.Close()
			require.NoError(t, <-nd.dials)

			sub, err := nc.SubscribeSync("greetings")
			require.NoError(t, err)
			require.NoError(t, nc.Publish("greetings", []byte("hello over ssh")))
			msg, err := sub.NextMsg(5 * time.Second)
			require.NoError(t, err)
			require.Equal(t, "hello over ssh", string(msg.Data))

			// A stalled link: nats.go pings every two minutes by default;
			// the keepalive fails the connection within a second.
			resume := tn.stall()
			stalled := time.Now()
			defer resume()
			select {
			case err := <-disconnected:
				require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
				t.Logf("disconnected %v after the stall: %v", time.Since(stalled), err)
			case <-time.After(10 * time.Second):
				t.Fatal("nats.go did not notice the stalled link within 10s")
			}
			// Its reconnect dials (every 2s by default) fail at once
			// instead of hanging.
			select {
			case err := <-nd.dials:
				require.ErrorIs(t, err, sshdial.ErrServerNotResponding)
				t.Logf("a reconnect dial failed %v after the stall", time.Since(stalled))
			case <-time.After(15 * time.Second):
				t.Fatal("no reconnect dial returned within 15s of the stall")
			}

			// A new connection while the link is dead: nats.Connect's
			// dial returns an error.
			var cerr error
			testutil.Within(t, 10*time.Second, "nats.Connect on a stalled link", func() {
				var nc2 *nats.Conn
				nc2, cerr = nats.Connect("nats://"+addr, nats.SkipHostLookup(),
					nats.SetCustomDialer(sshdial.New(tn.client, sshdial.WithKeepalive(100*time.Millisecond, 300*time.Millisecond))))
				if nc2 != nil {
					nc2.Close()
				}
			})
			require.ErrorIs(t, cerr, sshdial.ErrServerNotResponding)

			// The link comes back: nats.go reconnects and resubscribes.
			resume()
			select {
			case <-reconnected:
			case <-time.After(20 * time.Second):
				t.Fatal("nats.go did not reconnect within 20s of the end of the stall")
			}
			require.NoError(t, nc.Publish("greetings", []byte("back")))
			msg, err = sub.NextMsg(5 * time.Second)
			require.NoError(t, err)
			require.Equal(t, "back", string(msg.Data))
		})
	}
}

// TestDockerStyleUnixHTTP is the shape of Docker's API: HTTP on a unix
// socket of the remote machine, reached through direct-streamlocal.
func TestDockerStyleUnixHTTP(t *testing.T) {
	sock := filepath.Join(testutil.ShortTempDir(t), "docker.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"Path": r.URL.Path, "Host": r.Host})
	})}
	go hs.Serve(l)
	defer hs.Close()

	for _, tn := range deadLinks(t) {
		t.Run(tn.name, func(t *testing.T) {
			d := sshdial.New(tn.client)
			tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}

			resp, err := client.Get("http://docker/v1.43/version")
			require.NoError(t, err)
			var got map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			resp.Body.Close()
			require.Equal(t, map[string]string{"Path": "/v1.43/version", "Host": "docker"}, got)

			// A stalled link: the request's context ends it.
			resume := tn.stall()
			defer resume()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://docker/v1.43/containers/json", nil)
			took := testutil.Within(t, 5*time.Second, "a request on a stalled link", func() {
				resp, err = client.Do(req)
			})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, took, 3*time.Second)
		})
	}
}

// TestHTTP: net/http through the Dialer's Transport leaves names to the
// server; an ssh:// URL as an HTTP proxy does not work, and why.
func TestHTTP(t *testing.T) {
	web, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Host)
	})}
	go hs.Serve(web)
	defer hs.Close()
	target := "http://" + behind("web.internal", web.Addr().String()) + "/"
	for _, tn := range deadLinks(t) {
		t.Run(tn.name, func(t *testing.T) {
			client := sshdial.New(tn.client).HTTPClient()
			defer client.CloseIdleConnections()
			resp, err := client.Get(target)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, "hello "+behind("web.internal", web.Addr().String()), string(body))

			if tn.sshd == nil {
				return
			}
			// HTTP_PROXY=ssh://… : net/http's environment proxies are
			// HTTP proxies (and SOCKS5); any other scheme is spoken to
			// as an HTTP proxy, so it sends an HTTP request to sshd and
			// reads sshd's version banner as the status line.
			proxyURL := "ssh://" + tn.sshd.User + "@" + tn.sshd.Addr
			t.Setenv("HTTP_PROXY", proxyURL)
			t.Setenv("NO_PROXY", "")
			envProxy := httpproxy.FromEnvironment().ProxyFunc() // what http.ProxyFromEnvironment reads
			tr := &http.Transport{Proxy: func(r *http.Request) (*url.URL, error) { return envProxy(r.URL) }}
			defer tr.CloseIdleConnections()
			_, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(target)
			require.ErrorContains(t, err, "malformed HTTP status code") // "SSH-2.0-OpenSSH_9.2p1 Debian-2": status "Debian-2"

			// The way that works: the same URL as a dialer (x/net/proxy
			// with sshdial.FromURL), in the Transport's DialContext.
			dir := t.TempDir()
			known := filepath.Join(dir, "known_hosts")
			require.NoError(t, os.WriteFile(known,
				[]byte(knownhosts.Line([]string{knownhosts.Normalize(tn.sshd.Addr)}, tn.sshd.HostKey)+"\n"), 0o600))
			identity := filepath.Join(dir, "id")
			require.NoError(t, os.WriteFile(identity, keyPEM(t, tn.sshd), 0o600))
			u, err := url.Parse(proxyURL + "?agent=no&known_hosts=" + url.QueryEscape(known) + "&identity=" + url.QueryEscape(identity))
			require.NoError(t, err)
			proxy.RegisterDialerType("ssh", sshdial.FromURL)
			pd, err := proxy.FromURL(u, proxy.Direct)
			require.NoError(t, err)
			defer pd.(*sshdial.Dialer).Close()
			tr2 := &http.Transport{DialContext: pd.(proxy.ContextDialer).DialContext}
			defer tr2.CloseIdleConnections()
			resp, err = (&http.Client{Transport: tr2, Timeout: 10 * time.Second}).Get(target)
			require.NoError(t, err)
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, "hello "+behind("web.internal", web.Addr().String()), string(body))
		})
	}
}
