//go:build unix

package sshmux

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/net/nettest"
)

func TestEchoThroughMaster(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	c := m.client(t)
	conn := open(t, c, tg)
	if err := roundTrip(conn, []byte("hello through the master")); err != nil {
		t.Fatal(err)
	}
	if got := conn.RemoteAddr().String(); got != tg.addr() {
		t.Errorf("RemoteAddr = %s, want %s", got, tg.addr())
	}
	if _, ok := conn.RemoteAddr().(*net.TCPAddr); !ok {
		t.Errorf("RemoteAddr is a %T, want *net.TCPAddr for an IP target", conn.RemoteAddr())
	}
	if got := conn.LocalAddr().String(); got != m.sock {
		t.Errorf("LocalAddr = %s, want the control path %s", got, m.sock)
	}
	// A name is resolved by the SSH server and kept as given.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	named, err := c.OpenStdioFwd(ctx, "localhost", tg.port)
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	if err := roundTrip(named, []byte("by name")); err != nil {
		t.Fatal(err)
	}
	if got, want := named.RemoteAddr().String(), fmt.Sprintf("localhost:%d", tg.port); got != want {
		t.Errorf("RemoteAddr = %s, want %s", got, want)
	}
}

// The master makes no new login for any number of forwards: sshd logs one
// "Accepted publickey", the master's, for sequential and parallel dials.
func TestOneLoginManyDials(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	c := m.client(t)
	if n := logins(srv); n != 1 {
		t.Fatalf("sshd logged %d logins after the master started, want 1:\n%s", n, srv.Stderr())
	}
	for i := 0; i < 20; i++ {
		conn := open(t, c, tg)
		if err := roundTrip(conn, []byte("x")); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	parallelDials(t, c, tg, 50)
	if n := logins(srv); n != 1 {
		t.Fatalf("sshd logged %d logins after 70 dials, want 1:\n%s", n, srv.Stderr())
	}
}

// parallelDials opens n forwards at once, echoes through each while all
// are open, then closes them.
func parallelDials(t *testing.T, c *Client, tg *target, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	conns := make(chan *Conn, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			conn, err := c.OpenStdioFwd(ctx, tg.host, tg.port)
			if err != nil {
				errs <- err
				return
			}
			conns <- conn
			msg := make([]byte, 4096)
			rand.Read(msg)
			if err := roundTrip(conn, msg); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(conns)
	for conn := range conns {
		conn.Close()
	}
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Error(err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d parallel dials failed", failed, n)
	}
}

func TestParallel200(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	c := m.client(t)
	start := time.Now()
	parallelDials(t, c, tg, 200)
	t.Logf("200 parallel dials and echoes through the master in %v", time.Since(start))
	if n := logins(srv); n != 1 {
		t.Fatalf("sshd logged %d logins, want 1", n)
	}
}

func TestDeadlines(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	conn := open(t, m.client(t), tg)

	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := conn.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v, want a timeout", err)
	}
	if _, ok := err.(net.Error); !ok {
		t.Errorf("timeout error is a %T, not a net.Error itself", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Read returned after %v", d)
	}
	// Moving the deadline while Read is blocked wakes it.
	conn.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	conn.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked Read after SetReadDeadline(now): %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("moving the deadline did not wake a blocked Read")
	}
	// The connection still works after a timeout.
	conn.SetReadDeadline(time.Time{})
	if err := roundTrip(conn, []byte("after the timeout")); err != nil {
		t.Fatal(err)
	}
	// A write deadline in the past fails at once.
	conn.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := conn.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %v", err)
	}
}

// CloseWrite reaches the target as EOF while the Conn still reads; and the
// target's EOF reads here as io.EOF while the Conn still writes.
func TestHalfClose(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	c := m.client(t)

	t.Run("ours", func(t *testing.T) {
		// The target reads to EOF, then answers with what it read and
		// closes.
		tg := startTarget(t, func(c net.Conn) {
			b, _ := io.ReadAll(c)
			c.Write([]byte(fmt.Sprintf("got %d bytes", len(b))))
		})
		conn := open(t, c, tg)
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := conn.Write(bytes.Repeat([]byte("a"), 100000)); err != nil {
			t.Fatal(err)
		}
		if err := conn.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("reading after CloseWrite: %v", err)
		}
		if string(b) != "got 100000 bytes" {
			t.Fatalf("target answered %q", b)
		}
	})

	t.Run("theirs", func(t *testing.T) {
		// The target says hello and closes its writing side, then reads
		// to EOF. OpenSSH's stdio forwarding does not keep the other
		// direction open: on the target's EOF the master drains and
		// closes its input too (channels.c, channel_input_ieof:
		// force_drain), so the target reads EOF without our CloseWrite,
		// and writes here fail soon after, as on a TCP connection that
		// the peer closed: with an error that is not ErrMasterLost.
		got := make(chan string, 1)
		tg := startTarget(t, func(c net.Conn) {
			c.Write([]byte("hello"))
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(b)
		})
		conn := open(t, c, tg)
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil || string(b) != "hello" {
			t.Fatalf("ReadAll = %q, %v; want hello and a clean EOF", b, err)
		}
		select {
		case s := <-got:
			if s != "" {
				t.Fatalf("target read %q, want EOF at once", s)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("target did not get EOF")
		}
		var werr error
		for start := time.Now(); werr == nil && time.Since(start) < 10*time.Second; {
			_, werr = conn.Write([]byte("after the target's EOF"))
			time.Sleep(time.Millisecond)
		}
		if werr == nil || errors.Is(werr, ErrMasterLost) {
			t.Fatalf("Write after the forward ended: %v, want a broken pipe", werr)
		}
		t.Logf("Write after the target's EOF: %v", werr)
	})
}

// What OpenSSH's own `ssh -S sock -W` does on half-close, with pipes for
// its stdin and stdout: stdin's EOF reaches the target while the answer
// still comes back.
func TestOpenSSHStdioFwdHalfClose(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte(fmt.Sprintf("got %q", b)))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-S", m.sock, "-W", tg.addr(), "unused")
	cmd.Stdin = strings.NewReader("question")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh -W: %v", err)
	}
	if string(out) != `got "question"` {
		t.Fatalf("ssh -W printed %q", out)
	}
}

// A master killed in the middle of a download reads as ErrMasterLost,
// never as a clean EOF, and later writes fail the same way.
func TestMasterKilledMidTransfer(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, testutil.Flood)
	conn := open(t, m.client(t), tg)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	m.Kill() // SIGKILL
	n, err := io.Copy(io.Discard, conn)
	if err == nil {
		t.Fatalf("after the master was killed: a clean EOF after %d more bytes", n)
	}
	if !errors.Is(err, ErrMasterLost) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after the master was killed: %v, want ErrMasterLost", err)
	}
	if _, ok := err.(*net.OpError); !ok {
		t.Errorf("error is a %T, want *net.OpError", err)
	}
	// Later reads say the same; writes fail too.
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, ErrMasterLost) {
		t.Errorf("second Read: %v", err)
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, ErrMasterLost) {
		t.Errorf("Write after the master was killed: %v", err)
	}
}

// The master killed while Read waits for data the target never sends.
func TestMasterKilledWhileIdle(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	conn := open(t, m.client(t), tg)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	m.Kill()
	select {
	case err := <-done:
		if !errors.Is(err, ErrMasterLost) {
			t.Fatalf("Read: %v, want ErrMasterLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Read still blocked 20 s after the master was killed")
	}
	// A new dial now finds no master.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Dial(ctx, m.sock); !errors.Is(err, ErrNoMaster) {
		t.Fatalf("Dial after the master died: %v, want ErrNoMaster", err)
	}
}

func TestNoMaster(t *testing.T) {
	dir, err := os.MkdirTemp("", "sshmux")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	start := time.Now()
	_, err = Dial(ctx, filepath.Join(dir, "none"))
	if !errors.Is(err, ErrNoMaster) || !strings.Contains(err.Error(), filepath.Join(dir, "none")) {
		t.Fatalf("Dial of a missing socket: %v", err)
	}
	// A socket file left by a dead master.
	stale := filepath.Join(dir, "stale")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(ctx, stale); !errors.Is(err, ErrNoMaster) {
		t.Fatalf("Dial of a stale socket: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("no master found only after %v", d)
	}
	// A path too long for sun_path.
	long := filepath.Join(dir, strings.Repeat("x", 120))
	if _, err := Dial(ctx, long); !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("Dial of a %d-byte path: %v", len(long), err)
	}
	for _, bad := range []string{"", "a\x00b"} {
		if _, err := Dial(ctx, bad); err == nil {
			t.Errorf("Dial(%q) succeeded", bad)
		}
	}
	// Not a master at all: a file.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Dial(ctx, file); !errors.Is(err, ErrNoMaster) {
		t.Fatalf("Dial of a plain file: %v", err)
	}
}

func TestRefusedTarget(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	c := m.client(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.OpenStdioFwd(ctx, "127.0.0.1", port)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Denied {
		t.Fatalf("forward to a closed port: %v, want a *RefusedError", err)
	}
	for _, bad := range []struct {
		host string
		port int
	}{{"", 80}, {"h\x00st", 80}, {"host", 0}, {"host", 70000}, {"host", -1}} {
		if _, err := c.OpenStdioFwd(ctx, bad.host, bad.port); err == nil {
			t.Errorf("OpenStdioFwd(%q, %d) succeeded", bad.host, bad.port)
		}
	}
	// The master survived all that.
	tg := startTarget(t, echo)
	if err := roundTrip(open(t, c, tg), []byte("ok")); err != nil {
		t.Fatal(err)
	}
}

// What was written before Close reaches the target, then EOF.
func TestCloseDeliversWritten(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	got := make(chan int, 1)
	tg := startTarget(t, func(c net.Conn) {
		// Slow, so that data waits in every buffer on the way, the
		// socketpair's included, when Close comes.
		buf := make([]byte, 16<<10)
		n := 0
		for {
			k, err := c.Read(buf)
			n += k
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		got <- n
	})
	conn := open(t, m.client(t), tg)
	const size = 8 << 20
	conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("target read %d bytes, want %d", n, size)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("target got no EOF")
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	block := make(chan struct{})
	tg := startTarget(t, func(c net.Conn) { <-block })
	defer close(block)
	conn := open(t, m.client(t), tg)
	errs := make(chan error, 2)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		errs <- err
	}()
	go func() {
		// The target does not read: this fills every buffer and blocks.
		_, err := conn.Write(make([]byte, 64<<20))
		errs <- err
	}()
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call after Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not wake a blocked call")
		}
	}
}

func TestNettestConn(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	c := m.client(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		accepted := make(chan net.Conn, 1)
		go func() {
			a, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- a
		}()
		conn, err := c.OpenStdioFwd(ctx, "127.0.0.1", port)
		if err != nil {
			ln.(*net.TCPListener).SetDeadline(time.Now())
			<-accepted
			ln.(*net.TCPListener).SetDeadline(time.Time{})
			return nil, nil, nil, err
		}
		a, ok := <-accepted
		if !ok {
			conn.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return conn, a, func() { conn.Close(); a.Close() }, nil
	})
}

// A remote forward made through the master: connections to the port the
// SSH server listens on reach a local listener.
func TestRemoteForward(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	c := m.client(t)
	tg := startTarget(t, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := c.OpenRemoteFwd(ctx, "127.0.0.1", 0, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	if port == 0 {
		t.Fatal("no allocated port")
	}
	roundTripPort(t, port, "through the remote forward")
	// The master knows the forward by what was asked (port 0), not by
	// the port it got.
	err = c.CloseRemoteFwd(ctx, "127.0.0.1", port, tg.host, tg.port)
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("CloseRemoteFwd with the allocated port: %v, want a *RefusedError", err)
	}
	if err := c.CloseRemoteFwd(ctx, "127.0.0.1", 0, tg.host, tg.port); err != nil {
		t.Fatal(err)
	}
	// The master answers before the server has cancelled the forward.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Since(start) > 10*time.Second {
			t.Fatal("the server still listens 10 s after CloseRemoteFwd")
		}
	}
	// Closing it twice: the master says it has no such forward.
	err = c.CloseRemoteFwd(ctx, "127.0.0.1", 0, tg.host, tg.port)
	if !errors.As(err, &refused) {
		t.Fatalf("second CloseRemoteFwd: %v, want a *RefusedError", err)
	}
}

// A real master's answers to the forward requests, as parseFwdReply
// insists on them: MUX_S_OK for a fixed port, first and when the forward
// exists already; the allocated port for port 0, first and again from the
// forward it already holds; MUX_S_OK to a close.
func TestRemoteForwardReplies(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	c := m.client(t)
	tg := startTarget(t, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fixed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for i := range 2 {
		port, err := c.OpenRemoteFwd(ctx, "127.0.0.1", fixed, tg.host, tg.port)
		if err != nil || port != fixed {
			t.Fatalf("OpenRemoteFwd of port %d (request %d): %d, %v", fixed, i+1, port, err)
		}
	}
	roundTripPort(t, fixed, "through the fixed port")
	var allocated int
	for i := range 2 {
		port, err := c.OpenRemoteFwd(ctx, "127.0.0.1", 0, tg.host, tg.port)
		if err != nil || port == 0 || (i > 0 && port != allocated) {
			t.Fatalf("OpenRemoteFwd of port 0 (request %d): %d, %v (first: %d)", i+1, port, err, allocated)
		}
		allocated = port
	}
	if err := c.CloseRemoteFwd(ctx, "127.0.0.1", fixed, tg.host, tg.port); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseRemoteFwd(ctx, "127.0.0.1", 0, tg.host, tg.port); err != nil {
		t.Fatal(err)
	}
}

// Contexts bound every request, also on a master that accepts and never
// answers.
func TestContextOnStalledMaster(t *testing.T) {
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			// Never answers; lets go after a while, so that a client
			// that fails to give up sees an EOF instead of hanging.
			time.AfterFunc(10*time.Second, func() { c.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, path)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial of a silent master: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial returned after %v", d)
	}
	c := &Client{path: path, addr: path}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel2()
	}()
	start = time.Now()
	if _, err := c.OpenStdioFwd(ctx2, "127.0.0.1", 22); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenStdioFwd cancelled: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("OpenStdioFwd returned %v after it was cancelled", d)
	}

	// With no end to the context, the silence itself is bounded by
	// HelloTimeout: ErrMasterSilent, which is an ErrNoMaster.
	defer func(d time.Duration) { HelloTimeout = d }(HelloTimeout)
	HelloTimeout = 200 * time.Millisecond
	for name, req := range map[string]func() error{
		"Dial":         func() error { _, err := Dial(context.Background(), path); return err },
		"OpenStdioFwd": func() error { _, err := c.OpenStdioFwd(context.Background(), "127.0.0.1", 22); return err },
		"HandOver":     func() error { _, err := c.HandOver(context.Background(), "127.0.0.1", 22, 0); return err },
		"OpenRemoteFwd": func() error {
			_, err := c.OpenRemoteFwd(context.Background(), "", 0, "127.0.0.1", 22)
			return err
		},
	} {
		start = time.Now()
		err := req()
		if !errors.Is(err, ErrMasterSilent) || !errors.Is(err, ErrNoMaster) {
			t.Errorf("%s to a silent master: %v, want ErrMasterSilent", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s returned after %v", name, d)
		}
	}
}

// roundTripPort connects to port on 127.0.0.1, where a remote forward
// listens, and checks that msg comes back through it.
func roundTripPort(t *testing.T, port int, msg string) {
	t.Helper()
	remote, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	if err := roundTrip(remote, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}
