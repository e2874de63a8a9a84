package proxysrv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDialer is a DialFunc that maps addresses to local ones, records what
// it was asked, and fails with err when set.
type testDialer struct {
	mu     sync.Mutex
	routes map[string]string // asked address -> address dialed
	asked  []string
	err    func(ctx context.Context, address string) error
}

func (d *testDialer) route(from, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.routes == nil {
		d.routes = map[string]string{}
	}
	d.routes[from] = to
}

func (d *testDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, network+" "+address)
	to, ok := d.routes[address]
	errf := d.err
	d.mu.Unlock()
	if errf != nil {
		if err := errf(ctx, address); err != nil {
			return nil, err
		}
	}
	if !ok {
		to = address
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *testDialer) askedFor() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// proxy runs a Serve method of s on a fresh listener until the test ends,
// and checks that it then returns nil.
type proxy struct {
	addr   string
	l      net.Listener
	cancel context.CancelFunc
	done   chan error
}

func startProxy(t *testing.T, s *Server, proto string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{addr: l.Addr().String(), l: l, cancel: cancel, done: make(chan error, 1)}
	serve := s.ServeSOCKS
	if proto == "http" {
		serve = s.ServeHTTPConnect
	}
	go func() { p.done <- serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return 5s after its context ended")
		}
	})
	return p
}

// wait returns Serve's result, failing if it does not come within d.
func (p *proxy) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Serve did not return within %v", d)
		return nil
	}
}

func connect(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// socks5 sends the no-auth greeting and a request, and returns the reply.
func socks5(c net.Conn, cmd, atyp byte, addr []byte, port uint16) ([]byte, error) {
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return nil, err
	}
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil {
		return nil, fmt.Errorf("method reply: %w", err)
	}
	if m != [2]byte{5, 0} {
		return nil, fmt.Errorf("method reply %x", m)
	}
	req := append([]byte{5, cmd, 0, atyp}, addr...)
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return readSOCKS5Reply(c)
}

func readSOCKS5Reply(c net.Conn) ([]byte, error) {
	head := make([]byte, 4)
	if _, err := io.ReadFull(c, head); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	n := 0
	switch head[3] {
	case 1:
		n = 4
	case 4:
		n = 16
	default:
		return head, fmt.Errorf("reply address type %d", head[3])
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(c, rest); err != nil {
		return nil, fmt.Errorf("reply address: %w", err)
	}
	return append(head, rest...), nil
}

func domain(name string) []byte { return append([]byte{byte(len(name))}, name...) }

// socks4 sends a SOCKS4 request (SOCKS4a when name is not empty) and
// returns the 8-byte reply.
func socks4(c net.Conn, cmd byte, ip netip.Addr, port uint16, name string) ([]byte, error) {
	req := binary.BigEndian.AppendUint16([]byte{4, cmd}, port)
	req = append(req, ip.AsSlice()...)
	req = append(req, "user\x00"...)
	if name != "" {
		req = append(req, name+"\x00"...)
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	reply := make([]byte, 8)
	_, err := io.ReadFull(c, reply)
	return reply, err
}

// httpConnect sends a CONNECT and returns the status line and the rest of
// the response head.
func httpConnect(c net.Conn, target string) (int, error) {
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return 0, err
	}
	return readStatus(c)
}

// readStatus reads a response head byte by byte (so that nothing of the
// tunnel is consumed) and returns its status code.
func readStatus(c net.Conn) (int, error) {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return 0, fmt.Errorf("response head %q: %w", head, err)
		}
		head = append(head, b[0])
	}
	f := bytes.Fields(head)
	if len(f) < 2 {
		return 0, fmt.Errorf("response head %q", head)
	}
	return strconv.Atoi(string(f[1]))
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("round trip: sent %q, got %q", msg, got)
	}
}

// serve runs handle for each connection on a local listener until the test
// ends, and returns its address.
func serve(t *testing.T, network string, handle func(net.Conn)) string {
	t.Helper()
	return testutil.Serve(t, network, handle).Addr().String()
}

func echo(c net.Conn) { io.Copy(c, c) }

// counter reads to EOF, then writes how many bytes came, then closes: a
// target that needs the client's half-close to answer.
func counter(c net.Conn) {
	n, _ := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "got %d", n)
}

// readAllWithin reads c to its end and fails if that takes longer than d.
func readAllWithin(t *testing.T, c net.Conn, d time.Duration) ([]byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("the proxy did not close the connection within %v (read %q)", d, b)
	}
	return b, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
