package proxysrv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"golang.org/x/crypto/ssh"
)

func TestSOCKS5Domain(t *testing.T) {
	target := serve(t, "tcp", echo)
	d := &testDialer{}
	d.route("name.test:7", target)
	p := startProxy(t, &Server{Dial: d.dial}, "socks")
	c := connect(t, p.addr)
	reply, err := socks5(c, 1, 3, domain("name.test"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if reply[1] != 0 {
		t.Fatalf("reply %x, want success", reply)
	}
	// The bound address is the target connection's local address.
	if got := netip.AddrFrom4([4]byte(reply[4:8])); got != netip.MustParseAddr("127.0.0.1") || reply[8] == 0 && reply[9] == 0 {
		t.Errorf("bound address %v port %d, want 127.0.0.1 and a port", got, int(reply[8])<<8|int(reply[9]))
	}
	roundTrip(t, c, "hello through a name")
	if got := d.askedFor(); !slices.Equal(got, []string{"tcp name.test:7"}) {
		t.Errorf("Dial was asked for %q, want the name unresolved", got)
	}
}

func TestSOCKS5IP(t *testing.T) {
	for _, tc := range []struct {
		network string
		atyp    byte
	}{{"tcp4", 1}, {"tcp6", 4}} {
		t.Run(tc.network, func(t *testing.T) {
			target := serve(t, tc.network, echo)
			ap := netip.MustParseAddrPort(target)
			d := &testDialer{}
			p := startProxy(t, &Server{Dial: d.dial}, "socks")
			c := connect(t, p.addr)
			reply, err := socks5(c, 1, tc.atyp, ap.Addr().AsSlice(), ap.Port())
			if err != nil {
				t.Fatal(err)
			}
			if reply[1] != 0 || reply[3] != tc.atyp {
				t.Fatalf("reply %x, want success with address type %d", reply, tc.atyp)
			}
			roundTrip(t, c, "hello over "+tc.network)
			if got := d.askedFor(); !slices.Equal(got, []string{"tcp " + target}) {
				t.Errorf("Dial was asked for %q, want %q", got, target)
			}
		})
	}
}

func TestSOCKS4(t *testing.T) {
	target := serve(t, "tcp", echo)
	ap := netip.MustParseAddrPort(target)
	d := &testDialer{}
	d.route("name.test:7", target)
	p := startProxy(t, &Server{Dial: d.dial}, "socks")

	c := connect(t, p.addr)
	reply, err := socks4(c, 1, ap.Addr(), ap.Port(), "")
	if err != nil || reply[0] != 0 || reply[1] != 90 {
		t.Fatalf("SOCKS4: reply %x, %v", reply, err)
	}
	roundTrip(t, c, "hello over SOCKS4")

	c = connect(t, p.addr)
	reply, err = socks4(c, 1, netip.AddrFrom4([4]byte{0, 0, 0, 1}), 7, "name.test")
	if err != nil || reply[1] != 90 {
		t.Fatalf("SOCKS4a: reply %x, %v", reply, err)
	}
	roundTrip(t, c, "hello over SOCKS4a")
	if got := d.askedFor(); !slices.Equal(got, []string{"tcp " + target, "tcp name.test:7"}) {
		t.Errorf("Dial was asked for %q", got)
	}
}

func TestHTTPConnect(t *testing.T) {
	target := serve(t, "tcp", echo)
	d := &testDialer{}
	d.route("name.test:443", target)
	p := startProxy(t, &Server{Dial: d.dial}, "http")
	c := connect(t, p.addr)
	// Bytes sent right behind the request belong to the tunnel.
	fmt.Fprintf(c, "CONNECT name.test:443 HTTP/1.1\r\nHost: name.test:443\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\nearly bytes")
	code, err := readStatus(c)
	if err != nil || code != 200 {
		t.Fatalf("status %d, %v", code, err)
	}
	got := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "early bytes" {
		t.Fatalf("early bytes came back as %q, %v", got, err)
	}
	roundTrip(t, c, "hello through CONNECT")
	if got := d.askedFor(); !slices.Equal(got, []string{"tcp name.test:443"}) {
		t.Errorf("Dial was asked for %q", got)
	}
}

// TestHalfClose: the client's EOF reaches the target, and the target's
// answer after it still reaches the client; then the tunnel closes.
func TestHalfClose(t *testing.T) {
	target := serve(t, "tcp", counter)
	var events []TunnelEvent
	var mu sync.Mutex
	s := &Server{Dial: (&testDialer{}).dial, OnTunnel: func(ev TunnelEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}
	for _, proto := range []string{"socks", "http"} {
		t.Run(proto, func(t *testing.T) {
			p := startProxy(t, s, proto)
			c := connect(t, p.addr)
			if proto == "http" {
				if code, err := httpConnect(c, target); err != nil || code != 200 {
					t.Fatalf("status %d, %v", code, err)
				}
			} else {
				ap := netip.MustParseAddrPort(target)
				if reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port()); err != nil || reply[1] != 0 {
					t.Fatalf("reply %x, %v", reply, err)
				}
			}
			io.WriteString(c, strings.Repeat("x", 100000))
			c.(*net.TCPConn).CloseWrite()
			b, err := readAllWithin(t, c, 5*time.Second)
			if err != nil || string(b) != "got 100000" {
				t.Fatalf("after the half-close the target answered %q, %v", b, err)
			}
			waitFor(t, "the tunnel to close", func() bool { return s.Open() == 0 })
		})
	}
	mu.Lock()
	defer mu.Unlock()
	want := []TunnelEvent{
		{Proto: "socks5", Target: target, Open: true},
		{Proto: "socks5", Target: target, Sent: 100000, Received: 10},
		{Proto: "http-connect", Target: target, Open: true},
		{Proto: "http-connect", Target: target, Sent: 100000, Received: 10},
	}
	if !slices.Equal(events, want) {
		t.Errorf("OnTunnel events\n%+v, want\n%+v", events, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDialErrors: each class of dial error gets its reply code.
func TestDialErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()

	openErr := func(reason ssh.RejectionReason, msg string) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &sshdial.OpenError{Reason: reason, Message: msg}}
	}
	for _, tc := range []struct {
		name   string
		err    error  // returned by Dial; nil: dial target
		target string // when err is nil
		socks5 byte
		http   int
	}{
		{name: "prohibited", err: openErr(ssh.Prohibited, "administratively prohibited: open failed"), socks5: 2, http: 403},
		{name: "server: refused", err: openErr(ssh.ConnectionFailed, "Connection refused"), socks5: 5, http: 502},
		{name: "server: unknown name", err: openErr(ssh.ConnectionFailed, "Name or service not known"), socks5: 4, http: 502},
		{name: "server: network unreachable", err: openErr(ssh.ConnectionFailed, "Network is unreachable"), socks5: 3, http: 502},
		{name: "server: timed out", err: openErr(ssh.ConnectionFailed, "Connection timed out"), socks5: 4, http: 504},
		{name: "server: shortage", err: openErr(ssh.ResourceShortage, ""), socks5: 1, http: 503},
		{name: "server: unknown channel type", err: openErr(ssh.UnknownChannelType, ""), socks5: 1, http: 502},
		{name: "local refused", target: refusedAddr, socks5: 5, http: 502},
		{name: "ENETUNREACH", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, socks5: 3, http: 502},
		{name: "EHOSTUNREACH", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, socks5: 4, http: 502},
		{name: "DNS", err: &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, socks5: 4, http: 502},
		{name: "SSH server not responding", err: &net.OpError{Op: "dial", Err: sshdial.ErrServerNotResponding}, socks5: 1, http: 502},
		{name: "SSH connection lost", err: &net.OpError{Op: "dial", Err: sshdial.ErrSSHConnectionLost}, socks5: 1, http: 502},
		{name: "other", err: errors.New("something else"), socks5: 1, http: 502},
		{name: "address refused by the dialer", err: &net.OpError{Op: "dial", Err: &net.AddrError{Err: "host contains a NUL byte", Addr: "x"}}, socks5: 4, http: 400},
		{name: "dial timeout", target: "hang", socks5: 4, http: 504},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &testDialer{err: func(ctx context.Context, address string) error {
				if address == "hang:1" {
					<-ctx.Done() // DialTimeout
					return fmt.Errorf("dial: %w", ctx.Err())
				}
				return tc.err
			}}
			target := tc.target
			if target == "" || target == "hang" {
				target = net.JoinHostPort(cmp(target, "x.test"), "1")
			}
			s := &Server{Dial: d.dial, DialTimeout: 100 * time.Millisecond}
			host, port, _ := net.SplitHostPort(target)
			var portN uint16
			fmt.Sscan(port, &portN)

			p := startProxy(t, s, "socks")
			c := connect(t, p.addr)
			reply, err := socks5(c, 1, 3, domain(host), portN)
			if err != nil || reply[1] != tc.socks5 {
				t.Errorf("SOCKS5 reply %x, %v; want code %#02x", reply, err, tc.socks5)
			}
			readAllWithin(t, c, 5*time.Second)

			c = connect(t, p.addr)
			reply, err = socks4(c, 1, netip.AddrFrom4([4]byte{0, 0, 0, 1}), portN, host)
			if err != nil || reply[1] != 91 {
				t.Errorf("SOCKS4a reply %x, %v; want 91", reply, err)
			}
			readAllWithin(t, c, 5*time.Second)

			h := startProxy(t, s, "http")
			c = connect(t, h.addr)
			code, err := httpConnect(c, target)
			if err != nil || code != tc.http {
				t.Errorf("HTTP status %d, %v; want %d", code, err, tc.http)
			}
			readAllWithin(t, c, 5*time.Second)
			if s.Open() != 0 {
				t.Errorf("Open() = %d after failed dials", s.Open())
			}
		})
	}
}

func cmp(s, def string) string {
	if s == "hang" {
		return s
	}
	if s == "" {
		return def
	}
	return s
}

// TestUnsupported: requests the servers refuse, with their reply, and Dial
// never called.
func TestUnsupported(t *testing.T) {
	d := &testDialer{}
	s := &Server{Dial: d.dial}
	socks := startProxy(t, s, "socks")
	for _, tc := range []struct {
		name      string
		cmd, atyp byte
		addr      []byte
		want      byte
	}{
		{"BIND", 2, 1, []byte{127, 0, 0, 1}, 7},
		{"UDP ASSOCIATE", 3, 1, []byte{127, 0, 0, 1}, 7},
		{"command 9", 9, 3, domain("x.test"), 7},
		{"address type 2", 1, 2, nil, 8},
		{"empty name", 1, 3, domain(""), 1},
	} {
		c := connect(t, socks.addr)
		reply, err := socks5(c, tc.cmd, tc.atyp, tc.addr, 80)
		if tc.atyp == 2 { // the reply comes before the unparsed address
			reply, err = reply[:min(len(reply), 4)], nil
		}
		if err != nil || len(reply) < 2 || reply[1] != tc.want {
			t.Errorf("SOCKS5 %s: reply %x, %v; want code %d", tc.name, reply, err, tc.want)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	c := connect(t, socks.addr)
	if reply, err := socks4(c, 2, netip.MustParseAddr("127.0.0.1"), 80, ""); err != nil || reply[1] != 91 {
		t.Errorf("SOCKS4 BIND: reply %x, %v; want 91", reply, err)
	}

	h := startProxy(t, s, "http")
	for _, tc := range []struct {
		req  string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: x.test\r\n\r\n", 405},
		{"GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n", 405},
		{"POST http://x.test/ HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\n\r\nabc", 405},
		{"junk\r\n\r\n", 400},
		{"CONNECT x.test HTTP/1.1\r\n\r\n", 400},
		{"CONNECT :80 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT x.test:0 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT x.test:65536 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT x.test:http HTTP/1.1\r\n\r\n", 400},
		{"CONNECT /x.test:80 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT x.test:80 HTTP/1.1\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", 400},
	} {
		c := connect(t, h.addr)
		io.WriteString(c, tc.req)
		code, err := readStatus(c)
		if err != nil || code != tc.want {
			t.Errorf("%.40q: status %d, %v; want %d", tc.req, code, err, tc.want)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	if got := d.askedFor(); len(got) != 0 {
		t.Errorf("Dial was asked for %q", got)
	}
}

// TestMalformed: broken input is answered or closed, never a panic or a
// hang, and never dialed.
func TestMalformed(t *testing.T) {
	d := &testDialer{}
	s := &Server{Dial: d.dial, HandshakeTimeout: 2 * time.Second}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		proxy *proxy
		in    string
		want  string // prefix of what comes back
	}{
		{socks, "", ""},
		{socks, "\x05", ""},
		{socks, "\x05\x01", ""},
		{socks, "\x05\x00", "\x05\xff"},
		{socks, "\x05\x01\x02", "\x05\xff"}, // username/password only
		{socks, "\x05\x02\x00", ""},
		{socks, "\x05\x01\x00\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", "\x05\x00\x05\x01"}, // request version 4
		{socks, "\x05\x01\x00\x05\x01\x00\x03\x0aabc", "\x05\x00"},                          // short name
		{socks, "\x05\x01\x00\x05\x01\x00\x01\x7f\x00", "\x05\x00"},                         // short IPv4
		{socks, "\x05\x01\x00\x05\x01\x00\x04\x00\x00\x00", "\x05\x00"},                     // short IPv6
		{socks, "\x05\x01\x00\x05\x01\x00\x03\x01a\x00", "\x05\x00"},                        // short port
		{socks, "\x05\x01\x00\x05\x01\x00\xff", "\x05\x00\x05\x08"},
		{socks, "\x04", ""},
		{socks, "\x04\x01\x00\x50\x7f\x00\x00\x01", ""},                             // no user ID
		{socks, "\x04\x01\x00\x50\x7f\x00\x00\x01" + long + "\x00", "\x00\x5b"},     // user ID too long
		{socks, "\x04\x01\x00\x50\x00\x00\x00\x01\x00", ""},                         // 4a without a name
		{socks, "\x04\x01\x00\x50\x00\x00\x00\x01\x00" + long + "\x00", "\x00\x5b"}, // 4a name too long
		{socks, "\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00", "\x00\x5b"},             // 4a empty name
		{socks, "GET / HTTP/1.1\r\n\r\n", ""},
		{socks, "\x00\x01\x02\x03", ""},
		{socks, "\xff" + long, ""},
		{h, "", ""},
		{h, "CONN", ""},
		{h, "CONNECT x.test:80 HTTP/1.1\r\nHost: x", ""},
		{h, "\x05\x01\x00", ""},
		{h, "\x00\x00\r\n\r\n", "HTTP/1.1 400"},
		{h, "CONNECT x.test:80 HTTP/9.9\r\n\r\n", "HTTP/1.1 505"},
		{h, "CONNECT a@x.test:80 HTTP/1.1\r\n\r\n", "HTTP/1.1 400"},
		{h, "CONNECT x.test:80\r\n\r\n", "HTTP/1.1 400"},
		{h, strings.Repeat("CONNECT ", 5000), "HTTP/1.1 400"},
	} {
		c := connect(t, tc.proxy.addr)
		io.WriteString(c, tc.in)
		c.(*net.TCPConn).CloseWrite()
		b, _ := readAllWithin(t, c, 5*time.Second)
		if !bytes.HasPrefix(b, []byte(tc.want)) {
			t.Errorf("%.30q: got %q, want %q…", tc.in, b, tc.want)
		}
	}
	if got := d.askedFor(); len(got) != 0 {
		t.Errorf("Dial was asked for %q", got)
	}
}

// TestHandshakeTimeout: a client that sends nothing, or a request byte by
// byte too slowly, is closed after HandshakeTimeout; a tunnel is not.
func TestHandshakeTimeout(t *testing.T) {
	target := serve(t, "tcp", echo)
	d := &testDialer{}
	d.route("name.test:7", target)
	const timeout = 300 * time.Millisecond
	s := &Server{Dial: d.dial, HandshakeTimeout: timeout}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	slowRequest := map[*proxy]string{
		socks: "\x05\x01\x00\x05\x01\x00\x03\xff" + strings.Repeat("a", 255) + "\x00\x50",
		h:     "CONNECT name.test:7 HTTP/1.1\r\nX: " + strings.Repeat("a", 1000) + "\r\n\r\n",
	}
	for _, p := range []*proxy{socks, h} {
		// Silent.
		c := connect(t, p.addr)
		start := time.Now()
		readAllWithin(t, c, 5*time.Second)
		if el := time.Since(start); el < timeout-50*time.Millisecond || el > 3*time.Second {
			t.Errorf("a silent client was closed after %v, want about %v", el, timeout)
		}
		// Slowloris: a byte every 10ms never finishes within the timeout.
		c = connect(t, p.addr)
		start = time.Now()
		for _, b := range []byte(slowRequest[p]) {
			if _, err := c.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
			if time.Since(start) > 5*time.Second {
				t.Fatal("the slow client was not closed within 5s")
			}
		}
		readAllWithin(t, c, 5*time.Second)
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("a slow client was closed after %v, want about %v", el, timeout)
		}
	}
	// A tunnel lives longer than the handshake timeout.
	c := connect(t, socks.addr)
	if reply, err := socks5(c, 1, 3, domain("name.test"), 7); err != nil || reply[1] != 0 {
		t.Fatalf("reply %x, %v", reply, err)
	}
	time.Sleep(2 * timeout)
	roundTrip(t, c, "still here")
	if got := d.askedFor(); len(got) != 1 {
		t.Errorf("Dial was asked for %q, want only the tunnel", got)
	}
}

// openTunnel opens an echo tunnel through p.
func openTunnel(t *testing.T, p *proxy, target string) net.Conn {
	t.Helper()
	c := connect(t, p.addr)
	ap := netip.MustParseAddrPort(target)
	if reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port()); err != nil || reply[1] != 0 {
		t.Fatalf("reply %x, %v", reply, err)
	}
	roundTrip(t, c, "open")
	return c
}

// TestShutdownWaits: Shutdown stops accepting, lets the open tunnels work
// until they end, and then returns nil, as Serve does.
func TestShutdownWaits(t *testing.T) {
	target := serve(t, "tcp", echo)
	s := &Server{Dial: (&testDialer{}).dial}
	p := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	c1, c2 := openTunnel(t, p, target), openTunnel(t, p, target)
	if s.Open() != 2 {
		t.Fatalf("Open() = %d, want 2", s.Open())
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Shutdown closes the listeners one after the other: both refuse
	// soon after it starts.
	for _, addr := range []string{p.addr, h.addr} {
		waitFor(t, "the listener on "+addr+" to close", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
	roundTrip(t, c1, "still open")
	roundTrip(t, c2, "still open")
	c1.Close()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a tunnel open", err)
	case err := <-p.done:
		t.Fatalf("Serve returned %v with a tunnel open", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := h.wait(t, 5*time.Second); err != nil { // no tunnels of its own
		t.Errorf("ServeHTTPConnect returned %v", err)
	}
	roundTrip(t, c2, "still open")
	c2.Close()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the tunnels closed")
	}
	if err := p.wait(t, 5*time.Second); err != nil {
		t.Errorf("ServeSOCKS returned %v", err)
	}
	if s.Open() != 0 {
		t.Errorf("Open() = %d", s.Open())
	}
	// Serve after Shutdown returns at once.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	if err := s.ServeSOCKS(context.Background(), l); err != nil {
		t.Errorf("ServeSOCKS after Shutdown: %v", err)
	}
}

// TestShutdownForces: when Shutdown's context ends, it closes the tunnels
// left, and the handshakes.
func TestShutdownForces(t *testing.T) {
	target := serve(t, "tcp", echo)
	var mu sync.Mutex
	var ended []error
	s := &Server{Dial: (&testDialer{}).dial, OnTunnel: func(ev TunnelEvent) {
		if !ev.Open {
			mu.Lock()
			ended = append(ended, ev.Err)
			mu.Unlock()
		}
	}}
	p := startProxy(t, s, "socks")
	c := openTunnel(t, p, target)
	half := connect(t, p.addr) // a handshake in progress
	half.Write([]byte{5})
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown returned %v, want the context's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return 5s after its context ended")
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Errorf("Shutdown took %v, want about 200ms", el)
	}
	if s.Open() != 0 {
		t.Errorf("Open() = %d after Shutdown", s.Open())
	}
	for _, conn := range []net.Conn{c, half} {
		if b, err := readAllWithin(t, conn, 5*time.Second); len(b) != 0 {
			t.Errorf("read %q, %v", b, err)
		}
	}
	if err := p.wait(t, 5*time.Second); err != nil {
		t.Errorf("Serve returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ended) != 1 || !errors.Is(ended[0], net.ErrClosed) {
		t.Errorf("OnTunnel end errors %v, want one that is net.ErrClosed", ended)
	}
}

// TestServeEnds: Serve ends with its context or its listener, closing its
// tunnels; the Server's other Serve goes on.
func TestServeEnds(t *testing.T) {
	target := serve(t, "tcp", echo)
	var ended atomic.Int32
	s := &Server{Dial: (&testDialer{}).dial, OnTunnel: func(ev TunnelEvent) {
		if !ev.Open {
			time.Sleep(50 * time.Millisecond) // a slow end: Serve must wait for it
			ended.Add(1)
		}
	}}
	for _, how := range []string{"context", "listener"} {
		t.Run(how, func(t *testing.T) {
			other := startProxy(t, s, "socks")
			p := startProxy(t, s, "socks")
			keep := openTunnel(t, other, target)
			c := openTunnel(t, p, target)
			if how == "context" {
				p.cancel()
			} else {
				p.l.Close()
			}
			before := ended.Load()
			if err := p.wait(t, 5*time.Second); err != nil {
				t.Errorf("Serve returned %v", err)
			}
			// When Serve returns, its tunnel has ended, to the last call.
			if ended.Load() != before+1 || s.Open() != 1 {
				t.Errorf("Serve returned before its tunnel ended: %d ends, Open() = %d", ended.Load()-before, s.Open())
			}
			if b, err := readAllWithin(t, c, 5*time.Second); len(b) != 0 {
				t.Errorf("read %q, %v", b, err)
			}
			roundTrip(t, keep, "the other Serve's tunnel")
			if s.Open() != 1 {
				t.Errorf("Open() = %d, want 1", s.Open())
			}
			keep.Close()
			waitFor(t, "the other tunnel to close", func() bool { return s.Open() == 0 })
		})
	}
}

// failingListener fails Accept with a permanent error.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("broken listener") }

func TestServeAcceptError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{Dial: (&testDialer{}).dial}
	if err := s.ServeSOCKS(context.Background(), failingListener{l}); err == nil || err.Error() != "broken listener" {
		t.Errorf("ServeSOCKS returned %v", err)
	}
}

// TestUndialableHost: a host name with a NUL byte (fatal to OpenSSH's sshd:
// it drops the whole SSH connection) or longer than DNS allows is answered
// as unreachable, or 400, and never dialed; 255 bytes are dialed.
func TestUndialableHost(t *testing.T) {
	d := &testDialer{err: func(ctx context.Context, address string) error {
		return &net.OpError{Op: "dial", Err: &sshdial.OpenError{Reason: ssh.ConnectionFailed, Message: "Name or service not known"}}
	}}
	s := &Server{Dial: d.dial}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	for _, name := range []string{"a\x00b", "\x00", "a\x00"} {
		c := connect(t, socks.addr)
		reply, err := socks5(c, 1, 3, domain(name), 80)
		if err != nil || reply[1] != 0x04 {
			t.Errorf("SOCKS5 %q: reply %x, %v; want 0x04 (host unreachable)", name, reply, err)
		}
		readAllWithin(t, c, 5*time.Second)
		c = connect(t, h.addr)
		code, err := httpConnect(c, name+":80")
		if err != nil || code != 400 {
			t.Errorf("HTTP CONNECT %q: status %d, %v; want 400", name, code, err)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	c := connect(t, socks.addr)
	if reply, err := socks4(c, 1, netip.AddrFrom4([4]byte{0, 0, 0, 1}), 80, strings.Repeat("a", 256)); err != nil || reply[1] != 91 {
		t.Errorf("SOCKS4a with a 256-byte name: reply %x, %v; want 91", reply, err)
	}
	readAllWithin(t, c, 5*time.Second)
	c = connect(t, h.addr)
	if code, err := httpConnect(c, strings.Repeat("a", 256)+":80"); err != nil || code != 400 {
		t.Errorf("HTTP CONNECT to a 256-byte name: status %d, %v; want 400", code, err)
	}
	readAllWithin(t, c, 5*time.Second)
	if got := d.askedFor(); len(got) != 0 {
		t.Fatalf("Dial was asked for %.80q", got)
	}

	name := strings.Repeat("a", 255)
	c = connect(t, socks.addr)
	if reply, err := socks5(c, 1, 3, domain(name), 80); err != nil || reply[1] != 0x04 {
		t.Errorf("SOCKS5 255-byte name: reply %x, %v; want the dialer's answer 0x04", reply, err)
	}
	readAllWithin(t, c, 5*time.Second)
	c = connect(t, h.addr)
	if code, err := httpConnect(c, name+":80"); err != nil || code != 502 {
		t.Errorf("HTTP CONNECT to a 255-byte name: status %d, %v; want the dialer's answer 502", code, err)
	}
	readAllWithin(t, c, 5*time.Second)
	if got := d.askedFor(); len(got) != 2 {
		t.Errorf("Dial was asked for %d targets, want the 2 of 255 bytes", len(got))
	}
}

// TestMalformedTargets: a request for port 0, a host name with a control
// character, or an HTTP CONNECT target that is not host:port in the
// strict form (canonical port, IPv6 zone as %25zone) is refused with its
// protocol's error, and neither dialed nor handed over.
func TestMalformedTargets(t *testing.T) {
	d := &testDialer{}
	// A HandOver asked would answer "refused" (0x05, 91): each case then
	// fails on its own.
	m := &fakeMaster{mode: "refuse", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	s := &Server{Dial: d.dial, HandOver: m.handOver}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	v6 := netip.MustParseAddr("2001:db8::1").AsSlice()
	for _, tc := range []struct {
		name string
		atyp byte
		addr []byte
		port uint16
		want byte
	}{
		{"port 0, IPv4", 1, []byte{192, 0, 2, 1}, 0, 0x01},
		{"port 0, IPv6", 4, v6, 0, 0x01},
		{"port 0, name", 3, domain("x.test"), 0, 0x01},
		{"newline in the name", 3, domain("x.test\r\nforged: line"), 80, 0x04},
		{"escape sequence in the name", 3, domain("\x1bcx.test\x07"), 80, 0x04},
		{"tab in the name", 3, domain("x\t.test"), 80, 0x04},
		{"DEL in the name", 3, domain("x\x7f.test"), 80, 0x04},
	} {
		c := connect(t, socks.addr)
		reply, err := socks5(c, 1, tc.atyp, tc.addr, tc.port)
		if err != nil || reply[1] != tc.want {
			t.Errorf("SOCKS5 %s: reply %x, %v; want code %#02x", tc.name, reply, err, tc.want)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	for _, tc := range []struct {
		name string
		ip   netip.Addr
		port uint16
		host string // SOCKS4a
	}{
		{"SOCKS4, port 0", netip.MustParseAddr("192.0.2.1"), 0, ""},
		{"SOCKS4a, port 0", netip.AddrFrom4([4]byte{0, 0, 0, 1}), 0, "x.test"},
		{"SOCKS4a, newline in the name", netip.AddrFrom4([4]byte{0, 0, 0, 1}), 80, "x.test\nforged"},
		{"SOCKS4a, escape in the name", netip.AddrFrom4([4]byte{0, 0, 0, 1}), 80, "x\x1bc.test"},
	} {
		c := connect(t, socks.addr)
		if reply, err := socks4(c, 1, tc.ip, tc.port, tc.host); err != nil || reply[1] != 91 {
			t.Errorf("%s: reply %x, %v; want 91", tc.name, reply, err)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	for _, target := range []string{
		"x.test:0080", // leading zeros: was dialed as x.test:0080, which is x.test:80
		"x.test:080",
		"x.test:00",
		"x.test:065535",
		"192.0.2.1:080",
		"[2001:db8::1]:0443",
		"[::1]:080",
		"[fe80::1%eth0]:80", // a zone written raw
		"[fe80::1%lo]:80",
		"[fe80::1%25%41]:80",   // a percent-encoded zone: was dialed with zone "25%41"
		"[fe80::1%25a%25b]:80", // was dialed with zone "25a%25b"
		"[fe80::1%25a%2Fb]:80",
		"[fe80::1%25]:80", // an empty zone
		"[192.0.2.1]:80",  // brackets around IPv4
		"[x.test]:80",     // brackets around a name
		"[::1]",           // no port
		"[::1]:",
		"::1:80", // IPv6 without brackets
		"x.test:+80",
		"user@x.test:80", // user information
		"x.test:80:80",
	} {
		c := connect(t, h.addr)
		if code, err := httpConnect(c, target); err != nil || code != 400 {
			t.Errorf("HTTP CONNECT %q: status %d, %v; want 400", target, code, err)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	if got := d.askedFor(); len(got) != 0 {
		t.Errorf("Dial was asked for %q", got)
	}
	if got := m.askedFor(); len(got) != 0 {
		t.Errorf("HandOver was asked for %q", got)
	}
}

// TestTargetsPassedOn: the edges of what the servers accept reach Dial as
// the client named them, but for an HTTP CONNECT IPv6 zone, which Dial
// gets as "%zone".
func TestTargetsPassedOn(t *testing.T) {
	d := &testDialer{err: func(ctx context.Context, address string) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &sshdial.OpenError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}}
	}}
	s := &Server{Dial: d.dial}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	var want []string
	for _, tc := range []struct {
		atyp byte
		addr []byte
		port uint16
		dial string
	}{
		{1, []byte{192, 0, 2, 1}, 1, "192.0.2.1:1"},
		{1, []byte{192, 0, 2, 1}, 65535, "192.0.2.1:65535"},
		{3, domain("x.test"), 1, "x.test:1"},
		{3, domain("b\u00fccher.test"), 80, "b\u00fccher.test:80"}, // UTF-8 is not refused
		{3, domain("fe80::1%eth0"), 80, "[fe80::1%eth0]:80"},       // SOCKS has no URL syntax
	} {
		c := connect(t, socks.addr)
		if reply, err := socks5(c, 1, tc.atyp, tc.addr, tc.port); err != nil || reply[1] != 0x05 {
			t.Errorf("SOCKS5 to %s: reply %x, %v; want the dialer's 0x05", tc.dial, reply, err)
		}
		readAllWithin(t, c, 5*time.Second)
		want = append(want, "tcp "+tc.dial)
	}
	c := connect(t, socks.addr)
	if reply, err := socks4(c, 1, netip.AddrFrom4([4]byte{0, 0, 0, 1}), 65535, "x.test"); err != nil || reply[1] != 91 {
		t.Errorf("SOCKS4a to x.test:65535: reply %x, %v; want 91", reply, err)
	}
	readAllWithin(t, c, 5*time.Second)
	want = append(want, "tcp x.test:65535")
	for _, tc := range []struct{ target, dial string }{
		{"x.test:1", "x.test:1"},
		{"x.test:65535", "x.test:65535"},
		{"192.0.2.1:443", "192.0.2.1:443"},
		{"[2001:DB8::1]:443", "[2001:DB8::1]:443"},
		{"[::ffff:192.0.2.1]:80", "[::ffff:192.0.2.1]:80"},
		{"[fe80::1%25eth0]:80", "[fe80::1%eth0]:80"},
		{"[fe80::1%251]:80", "[fe80::1%1]:80"},
		{"[fe80::1%25en0.1_~-]:80", "[fe80::1%en0.1_~-]:80"},
	} {
		c := connect(t, h.addr)
		if code, err := httpConnect(c, tc.target); err != nil || code != 502 {
			t.Errorf("HTTP CONNECT %q: status %d, %v; want the dialer's 502", tc.target, code, err)
		}
		readAllWithin(t, c, 5*time.Second)
		want = append(want, "tcp "+tc.dial)
	}
	if got := d.askedFor(); !slices.Equal(got, want) {
		t.Errorf("Dial was asked for\n%q, want\n%q", got, want)
	}
}

// TestLogsNoSecrets: what a client sends as credentials (a SOCKS4 user ID,
// a Proxy-Authorization header, user information in a CONNECT target) is
// in no log line, even at the Debug level, whether the request is served,
// refused or unparsable.
func TestLogsNoSecrets(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := &testDialer{err: func(ctx context.Context, address string) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &sshdial.OpenError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}}
	}}
	s := &Server{Dial: d.dial, Logger: logger}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	const secret = "s3cret"
	for _, port := range []uint16{80, 0} {
		c := connect(t, socks.addr)
		req := binary.BigEndian.AppendUint16([]byte{4, 1}, port)
		req = append(req, 0, 0, 0, 1)
		req = append(req, secret+"\x00x.test\x00"...)
		c.Write(req)
		readAllWithin(t, c, 5*time.Second)
	}
	for _, req := range []string{
		"CONNECT x.test:80 HTTP/1.1\r\nProxy-Authorization: Basic " + secret + "\r\n\r\n",
		"CONNECT x.test:0 HTTP/1.1\r\nProxy-Authorization: Basic " + secret + "\r\n\r\n",
		"CONNECT x.test:80 HTTP/1.1\r\nProxy-Authorization Basic " + secret + "\r\n\r\n",
		"CONNECT x.test:80 HTTP/1.1\r\nProxy-Authorization: Basic " + secret + "\x01\r\n\r\n",
		"CONNECT user:" + secret + "@x.test:80 HTTP/1.1\r\n\r\n",
		"CONNECT user:" + secret + "@x.test:+80 HTTP/1.1\r\n\r\n",
		"CONNECT user:" + secret + "@x.test:80 junk HTTP/1.1\r\n\r\n",
		"CONNECT " + secret + "@x.test:80 HTTP/1.1\r\n\r\n",
	} {
		c := connect(t, h.addr)
		io.WriteString(c, req)
		if code, err := readStatus(c); err != nil || code < 400 {
			t.Errorf("%q: status %d, %v; want an error", req, code, err)
		}
		readAllWithin(t, c, 5*time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the logs show a secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "bad CONNECT target") {
		t.Errorf("no refusal was logged:\n%s", logs.String())
	}
}

// lockedWriter is a writer for logs written from several goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
