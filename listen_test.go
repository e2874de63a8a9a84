package sshdial_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/memconn"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/internal/wire"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

// serveHTTP runs http.Serve on l until the test ends.
func serveHTTP(t *testing.T, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// get fetches url with a client that does not keep connections.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestListenHTTPServe: http.Serve on a remote forward; requests made on the
// server's side reach it, including one whose handler hijacks the
// connection (http.Server then calls SetReadDeadline in abortPendingRead,
// which hangs on x/crypto's listener, golang/go#67152).
func TestListenHTTPServe(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		d := sshdial.New(client)
		defer d.Close()
		l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().(*net.TCPAddr)
		require.NotZero(t, addr.Port, "Addr reports the port the server chose")

		mux := http.NewServeMux()
		mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s", r.RemoteAddr)
		})
		mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
			c, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			buf.Flush()
		})
		serveHTTP(t, l, mux)

		body, err := get(fmt.Sprintf("http://%s/hello", addr))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(body, "hello 127.0.0.1:"), "RemoteAddr is the originator: %q", body)
		for range 3 {
			res := make(chan error, 1)
			go func() {
				body, err := get(fmt.Sprintf("http://%s/hijack", addr))
				if err == nil && body != "hijacked" {
					err = fmt.Errorf("body %q", body)
				}
				res <- err
			}()
			require.NoError(t, await(t, 20*time.Second, "a hijacked request", res))
		}
	})
}

// TestListenNeverFreezesTheConnection: 200 connections to a listener
// nobody accepts from. x/crypto's own listener stops the whole SSH
// connection after a few dozen; here dials and keepalives on the same SSH
// connection go on, and the tunnels past the backlog are refused.
func TestListenNeverFreezesTheConnection(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		d := sshdial.New(client, sshdial.WithKeepalive(100*time.Millisecond, 2*time.Second))
		defer d.Close()
		target := serve(t, "tcp", echo).Addr().String()
		c, err := d.Dial("tcp", target) // starts the keepalive check
		require.NoError(t, err)
		defer c.Close()
		l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()

		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 200 {
			c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
			require.NoError(t, err)
			conns = append(conns, c)
		}
		// Meanwhile the SSH connection carries on.
		for range 20 {
			c2, err := d.Dial("tcp", target)
			require.NoError(t, err)
			require.NoError(t, testutil.RoundTrip(c2, "still alive"))
			c2.Close()
		}
		require.NoError(t, testutil.RoundTrip(c, "and the old one"))
		time.Sleep(500 * time.Millisecond) // several keepalive rounds
		require.NoError(t, testutil.RoundTrip(c, "keepalives answered"))

		// The ones the backlog kept are accepted now.
		accepted := make(chan int, 1)
		go func() {
			n := 0
			for {
				c, err := l.Accept()
				if err != nil {
					break
				}
				c.Close()
				n++
			}
			accepted <- n
		}()
		time.Sleep(time.Second)
		l.Close()
		n := await(t, 10*time.Second, "Accept after Close", accepted)
		require.Greater(t, n, 0)
		require.LessOrEqual(t, n, 200)
	})
}

// TestListenCloseWakesAccept: Close while Accept blocks returns Accept with
// net.ErrClosed and leaves nothing behind; the server stops listening.
func TestListenCloseWakesAccept(t *testing.T) {
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		ignore := goleak.IgnoreCurrent()
		d := sshdial.New(client)
		l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		res := backgroundAccept(l)
		waitBlockedIn(t, "sshdial.(*Listener).Accept")
		require.NoError(t, l.Close())
		err = await(t, 5*time.Second, "Accept after Close", res)
		require.ErrorIs(t, err, net.ErrClosed)
		require.NotErrorIs(t, err, sshdial.ErrDialerClosed, "the listener's Close is not the Dialer's")
		_, err = l.Accept()
		require.ErrorIs(t, err, net.ErrClosed)
		require.NoError(t, l.Close(), "a second Close")
		require.Eventually(t, func() bool {
			c, err := net.Dial("tcp", l.Addr().String())
			if err == nil {
				c.Close()
			}
			return err != nil
		}, 10*time.Second, 20*time.Millisecond, "the server stops listening")
		require.NoError(t, d.Close())
		// The routers of the client's tunnels live as long as the client
		// (undrained, they would stop it): with it, nothing is left.
		client.Close()
		goleak.VerifyNone(t, ignore)
	})
}

// TestListenClosedByDialer: the Dialer's Close closes its listeners, and
// Accept says so: its error wraps ErrDialerClosed (and net.ErrClosed).
func TestListenClosedByDialer(t *testing.T) {
	_, client := newSSHTest(t)
	d := sshdial.New(client)
	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	res := backgroundAccept(l)
	waitBlockedIn(t, "sshdial.(*Listener).Accept")
	require.NoError(t, d.Close())
	err = await(t, 5*time.Second, "Accept after the Dialer's Close", res)
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
}

// TestListenUnixSocket: a unix socket remote forward through OpenSSH.
func TestListenUnixSocket(t *testing.T) {
	_, client := newOpenSSH(t)
	d := sshdial.New(client)
	defer d.Close()
	path := filepath.Join(testutil.ShortTempDir(t), "remote.sock")
	l, err := d.Listen(context.Background(), "unix", path)
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, path, l.Addr().String())
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, testutil.RoundTrip(c, "over a unix socket on the server"))
}

// TestListenBadInputAndRefusal: bad addresses are errors before anything
// is sent; a server that refuses says so, with OpenSSH's likely cause.
func TestListenBadInputAndRefusal(t *testing.T) {
	_, client := newSSHTest(t)
	d := sshdial.New(client)
	defer d.Close()
	for _, c := range []struct{ network, address string }{
		{"udp", "127.0.0.1:0"}, {"tcp", "127.0.0.1"}, {"tcp", "127.0.0.1:65536"}, {"tcp", "127.0.0.1:-1"},
		{"tcp4", "[::1]:0"}, {"tcp6", "127.0.0.1:0"}, {"unix", ""}, {"unix", "a\x00b"},
	} {
		_, err := d.Listen(context.Background(), c.network, c.address)
		var opErr *net.OpError
		require.ErrorAs(t, err, &opErr, "%s %q", c.network, c.address)
		require.Equal(t, "listen", opErr.Op)
		var addrErr *net.AddrError
		var unknown net.UnknownNetworkError
		require.True(t, errors.As(err, &addrErr) || errors.As(err, &unknown), "%s %q: %v is no address or network error", c.network, c.address, err)
	}
	_, err := (*sshdial.Dialer)(nil).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.ErrorIs(t, err, sshdial.ErrNilDialer)
	//lint:ignore SA1012 a nil context is the bad input under test
	_, err = d.Listen(nil, "tcp", "127.0.0.1:0") //nolint:staticcheck
	require.ErrorContains(t, err, "nil context")

	srv := opensshd.Start(t, "AllowTcpForwarding local")
	od := sshdial.New(srv.Dial(t))
	defer od.Close()
	_, err = od.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.ErrorIs(t, err, sshdial.ErrForwardRefused)
	require.Contains(t, err.Error(), "AllowTcpForwarding")
}

// TestListenKeepsEarlyTunnels: a server may open a tunnel right after it
// starts listening, before its reply to the request has been read
// (golang/go#64094); here one opens it before it even replies. The tunnel
// must reach Accept, not be refused for want of a listener.
func TestListenKeepsEarlyTunnels(t *testing.T) {
	keys := sshtest.NewUnstartedServer()
	t.Cleanup(keys.Close)
	cconn, sconn := memconn.Pipe()
	served := make(chan error, 1)
	go func() {
		conn, chans, reqs, err := ssh.NewServerConn(sconn, keys.Config)
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		go func() {
			for nc := range chans {
				nc.Reject(ssh.Prohibited, "no")
			}
		}()
		for req := range reqs {
			if req.Type != "tcpip-forward" {
				req.Reply(false, nil)
				continue
			}
			// The open goes out first; OpenChannel then waits for the
			// client's answer, which comes only once the listener takes
			// the tunnel, after the reply below.
			const port = 4242
			go func() {
				ch, chReqs, err := conn.OpenChannel("forwarded-tcpip", ssh.Marshal(&wire.ForwardedTCPIP{
					Addr: "127.0.0.1", Port: port, OriginAddr: "192.0.2.1", OriginPort: 5555,
				}))
				if err != nil {
					return
				}
				go ssh.DiscardRequests(chReqs)
				io.WriteString(ch, "early")
				ch.Close()
			}()
			time.Sleep(200 * time.Millisecond)
			req.Reply(true, ssh.Marshal(&wire.TCPIPForwardReply{Port: port}))
		}
		served <- nil
	}()
	c, chans, reqs, err := ssh.NewClientConn(cconn, "pipe", keys.ClientConfig())
	require.NoError(t, err)
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()

	d := sshdial.New(client)
	defer d.Close()
	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, "127.0.0.1:4242", l.Addr().String())
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	conn := await(t, 10*time.Second, "Accept of the early tunnel", accepted)
	require.NotNil(t, conn)
	defer conn.Close()
	require.Equal(t, "192.0.2.1:5555", conn.RemoteAddr().String())
	require.Equal(t, "127.0.0.1:4242", conn.LocalAddr().String())
	got, err := io.ReadAll(conn)
	require.NoError(t, err)
	require.Equal(t, "early", string(got))
}

// TestListenRoutesByAddressAndPort: listeners on 127.0.0.1:P and [::1]:P
// of one SSH connection each get the connections made to their own
// address, as OpenSSH's client routes them (by the address and port the
// server names), not all of them to the one routed last.
func TestListenRoutesByAddressAndPort(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no ::1: %v", err)
	}
	probe.Close()
	forEachPeer(t, func(t *testing.T, client *ssh.Client) {
		d := sshdial.New(client)
		defer d.Close()
		ctx := context.Background()
		l4, err := d.Listen(ctx, "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l4.Close()
		port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
		l6, err := d.Listen(ctx, "tcp", net.JoinHostPort("::1", port))
		require.NoError(t, err, "the server listens on [::1]:%s too", port)
		defer l6.Close()
		for _, l := range []net.Listener{l4, l6} {
			testutil.ServeListener(t, l, func(c net.Conn) {
				io.WriteString(c, l.Addr().String()+" from "+c.RemoteAddr().String())
			})
		}
		for range 5 {
			for _, want := range []struct{ addr, listener, from string }{
				{"127.0.0.1:" + port, l4.Addr().String(), "127.0.0.1:"},
				{"[::1]:" + port, l6.Addr().String(), "[::1]:"},
			} {
				c, err := net.DialTimeout("tcp", want.addr, 10*time.Second)
				require.NoError(t, err)
				c.SetDeadline(time.Now().Add(20 * time.Second))
				b, err := io.ReadAll(c)
				c.Close()
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(string(b), want.listener+" from "+want.from),
					"a connection to %s reached %q, want the listener %s", want.addr, b, want.listener)
			}
		}
	})
}

// TestListenClosedWhileForwardMadeAgain (NewPool): a listener closed while
// its forward is being made again after a reconnect, its request on the
// wire, does not come back to life when the server then says yes: the
// forward is cancelled and the server stops listening.
func TestListenClosedWhileForwardMadeAgain(t *testing.T) {
	srv := sshtest.NewServer()
	defer srv.Close()
	var stallNext atomic.Bool
	stalled := make(chan struct{}, 1)
	d := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		c, err := sshdial.DialSSH(ctx, srv.Addr(), srv.ClientConfig())
		if err == nil && stallNext.Load() {
			// Logged in: the server now takes nothing more, so the
			// forward's request waits for its reply.
			srv.Stall()
			stalled <- struct{}{}
		}
		return c, err
	})
	defer d.Close()
	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()

	stallNext.Store(true)
	srv.CloseClientConnections()
	await(t, 10*time.Second, "the reconnect", stalled)
	require.NoError(t, l.Close())
	srv.Resume()

	require.Eventually(t, func() bool {
		return srv.GlobalRequests("cancel-tcpip-forward") >= 1
	}, 10*time.Second, 20*time.Millisecond, "the forward made after Close is cancelled")
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "the server stops listening")
	_, err = l.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}
