package sshdial_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/internal/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// gatedConn is a client's connection to the SSH server whose writes can be
// held back: a server that does not read what the client answers.
type gatedConn struct {
	net.Conn
	mu   sync.Mutex
	gate chan struct{} // closed while writes may go
	done chan struct{} // closed by Close
	once sync.Once
}

func newGatedConn(c net.Conn) *gatedConn {
	g := &gatedConn{Conn: c, gate: make(chan struct{}), done: make(chan struct{})}
	close(g.gate)
	return g
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case <-gate:
	case <-g.done:
		return 0, net.ErrClosed
	}
	return g.Conn.Write(p)
}

func (g *gatedConn) Close() error {
	g.once.Do(func() { close(g.done) })
	return g.Conn.Close()
}

// hold stops the writes; release lets them go again.
func (g *gatedConn) hold() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedConn) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

// hostileServer is an in-process SSH server that grants every tcpip-forward
// (ports from 40001 up) and opens whatever forwarded-tcpip channels the
// test asks for.
type hostileServer struct {
	conn   *ssh.ServerConn
	gate   *gatedConn // the client's side
	client *ssh.Client

	mu    sync.Mutex
	ports []uint32 // granted, in order
}

func newHostileServer(t *testing.T) *hostileServer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(key)
	require.NoError(t, err)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	h := &hostileServer{}
	var wg sync.WaitGroup
	served := make(chan error, 1)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			c.Close()
			served <- err
			return
		}
		h.conn = sc
		served <- nil
		wg.Go(func() {
			for nc := range chans {
				nc.Reject(ssh.Prohibited, "no")
			}
		})
		wg.Go(func() {
			for req := range reqs {
				switch req.Type {
				case "tcpip-forward":
					h.mu.Lock()
					port := uint32(40001 + len(h.ports))
					h.ports = append(h.ports, port)
					h.mu.Unlock()
					req.Reply(true, ssh.Marshal(&wire.TCPIPForwardReply{Port: port}))
				case "cancel-tcpip-forward":
					req.Reply(true, nil)
				default:
					req.Reply(false, nil)
				}
			}
		})
	})
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	h.gate = newGatedConn(raw)
	cc, chans, reqs, err := ssh.NewClientConn(h.gate, ln.Addr().String(), &ssh.ClientConfig{
		User: "test", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	require.NoError(t, err)
	require.NoError(t, <-served)
	h.client = ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() {
		h.gate.release()
		h.client.Close()
		h.conn.Close()
		wg.Wait()
	})
	return h
}

// open has the server open a forwarded-tcpip channel naming addr and port.
func (h *hostileServer) open(addr string, port uint32) (ssh.Channel, error) {
	ch, reqs, err := h.conn.OpenChannel("forwarded-tcpip", ssh.Marshal(&wire.ForwardedTCPIP{
		Addr: addr, Port: port, OriginAddr: "127.0.0.1", OriginPort: 1,
	}))
	if err == nil {
		go ssh.DiscardRequests(reqs)
	}
	return ch, err
}

// libraryGoroutines counts the goroutines that this package started.
func libraryGoroutines(buf []byte) int {
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
		if bytes.Contains(g, []byte("created by github.com/sshdial/sshdial.")) {
			count++
		}
	}
	return count
}

// TestListenHostileFloodStaysBounded: a server that opens thousands of
// forwarded-tcpip channels (half for ports never asked for, half past the
// full backlog of a listener nobody Accepts from) and does not read the
// answers makes no goroutine grow here: the refusals wait, and so does the
// server. Once it reads again, every one is refused, and a legitimate
// listener on the same SSH connection still works.
func TestListenHostileFloodStaysBounded(t *testing.T) {
	h := newHostileServer(t)
	d := sshdial.New(h.client)
	defer d.Close()
	ctx := context.Background()
	legit, err := d.Listen(ctx, "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer legit.Close()
	idle, err := d.Listen(ctx, "tcp", "127.0.0.1:0") // nobody Accepts
	require.NoError(t, err)
	legitPort, idlePort := uint32(legit.Addr().(*net.TCPAddr).Port), uint32(idle.Addr().(*net.TCPAddr).Port)
	require.Equal(t, []uint32{40001, 40002}, h.ports)

	buf := make([]byte, 32<<20)
	base, numBase := libraryGoroutines(buf), runtime.NumGoroutine()
	const n = 2000 // bounded: each is a goroutine of the test's server
	h.gate.hold()
	var wg sync.WaitGroup
	var mu sync.Mutex
	reasons := map[ssh.RejectionReason]int{}
	for i := range n {
		addr, port := "127.0.0.1", uint32(1+i%1000) // never asked for
		if i%2 == 1 {
			port = idlePort
		}
		wg.Go(func() {
			ch, err := h.open(addr, port)
			if ch != nil {
				ch.Close()
			}
			var oe *ssh.OpenChannelError
			mu.Lock()
			defer mu.Unlock()
			if errors.As(err, &oe) {
				reasons[oe.Reason]++
			} else {
				reasons[0]++
			}
		})
	}
	// While the server does not read, nothing grows here.
	peak := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		peak = max(peak, libraryGoroutines(buf)-base)
		if peak > 100 {
			break
		}
	}
	h.gate.release()
	require.LessOrEqual(t, peak, 100, "goroutines of this package grew by %d during a flood of %d opens", peak, n)

	// The server reads again: everything is refused, the backlog when idle
	// closes.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reasons[ssh.Prohibited]+reasons[ssh.ResourceShortage] >= n-128
	}, 60*time.Second, 20*time.Millisecond, "the refusals reach the server")
	idle.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, 60*time.Second, "every open answered", done)
	require.Equal(t, n/2, reasons[ssh.Prohibited], "opens for ports never asked for: %v", reasons)
	require.Equal(t, n/2, reasons[ssh.ResourceShortage]+reasons[ssh.ConnectionFailed], "opens for the idle listener: %v", reasons)
	require.LessOrEqual(t, reasons[ssh.ConnectionFailed], 128, "at most a backlog was kept: %v", reasons)

	// The legitimate listener works.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := legit.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	ch, err := h.open("127.0.0.1", legitPort)
	require.NoError(t, err)
	defer ch.Close()
	c := await(t, 20*time.Second, "Accept", accepted)
	require.NotNil(t, c)
	defer c.Close()
	go func() { testutil.Echo(c) }()
	_, err = ch.Write([]byte("legit"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(ch, got)
	require.NoError(t, err)
	require.Equal(t, "legit", string(got))

	require.Eventually(t, func() bool { return runtime.NumGoroutine() < numBase+50 }, 20*time.Second, 50*time.Millisecond,
		"goroutines back near %d after the flood: %d", numBase, runtime.NumGoroutine())
}
