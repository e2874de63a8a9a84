package proxysrv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/handover"
)

// fakeMaster plays the process a connection is handed over to: it echoes
// what the client sends, on the connection itself.
type fakeMaster struct {
	// what HandOver does: "echo" (call before, then echo), "refuse"
	// (fail without calling before), "refuse-late" (call before, then
	// fail), "gone" (call before, then report not handled), "none" (not
	// handled).
	mode string
	err  error

	mu    sync.Mutex
	asked []string
}

func (m *fakeMaster) handOver(ctx context.Context, c net.Conn, address string, before func() error) (handover.Forward, bool, error) {
	m.mu.Lock()
	m.asked = append(m.asked, address)
	m.mu.Unlock()
	switch m.mode {
	case "none":
		return nil, false, nil
	case "refuse":
		return nil, true, m.err
	}
	if err := before(); err != nil {
		return nil, true, err
	}
	switch m.mode {
	case "refuse-late":
		return nil, true, m.err
	case "gone":
		return nil, false, nil
	}
	f := &fakeForward{c: c, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.n, _ = io.Copy(c, c)
	}()
	return f, true, nil
}

func (m *fakeMaster) askedFor() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.asked...)
}

type fakeForward struct {
	c    net.Conn
	done chan struct{}
	n    int64
}

func (f *fakeForward) Wait() (int64, int64, error) {
	<-f.done
	f.c.Close()
	return f.n, f.n, nil
}

func (f *fakeForward) Close() error { return f.c.Close() }

// handOverProxy starts a SOCKS proxy with m as its HandOver and an echo
// server its Dial reaches; it returns the proxy, the dialer, the target's
// address, and the tunnel events.
func handOverProxy(t *testing.T, m *fakeMaster) (*proxy, *testDialer, string, func() []TunnelEvent) {
	t.Helper()
	target := serve(t, "tcp", echo)
	d := &testDialer{}
	var mu sync.Mutex
	var events []TunnelEvent
	s := &Server{Dial: d.dial, HandOver: m.handOver, OnTunnel: func(ev TunnelEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}
	p := startProxy(t, s, "socks")
	return p, d, target, func() []TunnelEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]TunnelEvent(nil), events...)
	}
}

func targetAddrPort(t *testing.T, target string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// A SOCKS5 and a SOCKS4 request handed over: answered with success (no
// bound address, as ssh -D), then the data goes by the "master", the dialer
// is never asked, and the tunnel's end event says it was handed over.
func TestHandOverAnswersFirst(t *testing.T) {
	m := &fakeMaster{mode: "echo"}
	p, d, target, events := handOverProxy(t, m)
	ap := targetAddrPort(t, target)

	c := connect(t, p.addr)
	reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port())
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}; !bytes.Equal(reply, want) {
		t.Fatalf("SOCKS5 reply %x, want %x", reply, want)
	}
	roundTrip(t, c, "through the master")
	c.Close()

	c4 := connect(t, p.addr)
	reply, err = socks4(c4, 1, ap.Addr(), ap.Port(), "")
	if err != nil || reply[1] != socks4Granted {
		t.Fatalf("SOCKS4 reply %x, %v", reply, err)
	}
	roundTrip(t, c4, "four")
	c4.Close()

	waitFor(t, "two tunnel ends", func() bool { return len(events()) == 4 })
	for _, ev := range events() {
		if !ev.HandedOver || ev.Target != target {
			t.Errorf("event %+v", ev)
		}
		if !ev.Open && (ev.Err != nil || ev.Sent == 0) {
			t.Errorf("end event %+v", ev)
		}
	}
	if asked := d.askedFor(); len(asked) != 0 {
		t.Errorf("the dialer was asked for %v", asked)
	}
	if asked := m.askedFor(); len(asked) != 2 || asked[0] != target {
		t.Errorf("HandOver asked for %v", asked)
	}
}

// A client that sent data with its request (already read into the
// handshake's buffer) is not handed over: those bytes would be lost.
func TestHandOverNotWithBufferedData(t *testing.T) {
	m := &fakeMaster{mode: "echo"}
	p, d, target, _ := handOverProxy(t, m)
	ap := targetAddrPort(t, target)
	c := connect(t, p.addr)
	req := []byte{4, 1, byte(ap.Port() >> 8), byte(ap.Port())}
	req = append(req, ap.Addr().AsSlice()...)
	req = append(req, "u\x00early"...)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 8)
	if _, err := io.ReadFull(c, reply); err != nil || reply[1] != socks4Granted {
		t.Fatalf("reply %x, %v", reply, err)
	}
	got := make([]byte, len("early"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "early" {
		t.Fatalf("echo of the early bytes: %q, %v", got, err)
	}
	if len(m.askedFor()) != 0 || len(d.askedFor()) != 1 {
		t.Fatalf("HandOver asked %v, dialer asked %v", m.askedFor(), d.askedFor())
	}
}

// Failures: before the answer, the usual error code; after it, a reset;
// a master gone after the answer: the dialer, and no second answer.
func TestHandOverFailures(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	t.Run("refused before the answer", func(t *testing.T) {
		p, d, target, _ := handOverProxy(t, &fakeMaster{mode: "refuse", err: refused})
		ap := targetAddrPort(t, target)
		c := connect(t, p.addr)
		reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port())
		if err != nil || reply[1] != 0x05 {
			t.Fatalf("reply %x, %v; want code 5 (refused)", reply, err)
		}
		if len(d.askedFor()) != 0 {
			t.Fatal("dialed after a handled failure")
		}
	})

	t.Run("refused after the answer", func(t *testing.T) {
		p, _, target, _ := handOverProxy(t, &fakeMaster{mode: "refuse-late", err: refused})
		ap := targetAddrPort(t, target)
		c := connect(t, p.addr)
		reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port())
		if err != nil || reply[1] != 0 {
			t.Fatalf("reply %x, %v; want success", reply, err)
		}
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after a late failure: %v, want a reset", err)
		}
	})

	t.Run("gone after the answer", func(t *testing.T) {
		p, d, target, events := handOverProxy(t, &fakeMaster{mode: "gone"})
		ap := targetAddrPort(t, target)
		c := connect(t, p.addr)
		reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port())
		if err != nil || reply[1] != 0 {
			t.Fatalf("reply %x, %v; want success", reply, err)
		}
		roundTrip(t, c, "dialed after all") // no second answer in the way
		if len(d.askedFor()) != 1 {
			t.Fatalf("dialer asked %v", d.askedFor())
		}
		c.Close()
		waitFor(t, "the tunnel's end", func() bool { return len(events()) == 2 })
		if events()[1].HandedOver {
			t.Error("a dialed tunnel's event says handed over")
		}
	})

	t.Run("no master", func(t *testing.T) {
		p, d, target, _ := handOverProxy(t, &fakeMaster{mode: "none"})
		ap := targetAddrPort(t, target)
		c := connect(t, p.addr)
		reply, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port())
		if err != nil || reply[1] != 0 {
			t.Fatalf("reply %x, %v", reply, err)
		}
		if netip.AddrFrom4([4]byte(reply[4:8])).IsUnspecified() {
			t.Errorf("a dialed tunnel's answer has no bound address: %x", reply)
		}
		roundTrip(t, c, "dialed")
		if len(d.askedFor()) != 1 {
			t.Fatalf("dialer asked %v", d.askedFor())
		}
	})
}

// The proxy's forced shutdown closes handed-over tunnels too.
func TestHandOverShutdown(t *testing.T) {
	m := &fakeMaster{mode: "echo"}
	target := serve(t, "tcp", echo)
	s := &Server{Dial: (&testDialer{}).dial, HandOver: m.handOver}
	p := startProxy(t, s, "socks")
	ap := targetAddrPort(t, target)
	c := connect(t, p.addr)
	if _, err := socks5(c, 1, 1, ap.Addr().AsSlice(), ap.Port()); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	if s.Open() != 1 {
		t.Fatalf("Open() = %d, want 1", s.Open())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if b, err := readAllWithin(t, c, 5*time.Second); len(b) != 0 {
		t.Fatalf("read %q, %v after Shutdown", b, err)
	}
	waitFor(t, "no open tunnel", func() bool { return s.Open() == 0 })
}
