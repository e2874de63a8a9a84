//go:build unix

package sshmux

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeMaster listens on a Unix socket and runs serve for each control
// connection, to test what real masters do not do.
type fakeMaster struct {
	path string
	ln   *net.UnixListener
	wg   sync.WaitGroup
}

// socketPath returns a path for a Unix socket in a new temporary
// directory, removed when the test ends: short, as socket paths must be
// (about 100 bytes), which t.TempDir's need not be.
func socketPath(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "sshmux")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

func startFake(t *testing.T, serve func(c *net.UnixConn)) *fakeMaster {
	t.Helper()
	f := &fakeMaster{path: socketPath(t)}
	var err error
	f.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: f.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.ln.AcceptUnix()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				serve(c)
			}()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeMaster) close() {
	f.ln.Close()
	f.wg.Wait()
}

// handshake sends the master's hello (with an extension, as OpenSSH 9.x
// does) and reads the client's.
func handshake(t *testing.T, c *net.UnixConn, version uint32) bool {
	if _, err := c.Write(newMsg(msgHello).u32(version).str("info").str("0").bytes()); err != nil {
		return false
	}
	m, err := readPacket(c)
	if err != nil {
		return false
	}
	if err := checkHello(m); err != nil {
		t.Errorf("client hello: %v", err)
		return false
	}
	return true
}

// recvFd reads one descriptor, checking that it comes alone with one byte
// of data, as mux.c's mm_receive_fd expects.
func recvFd(t *testing.T, c *net.UnixConn) *os.File {
	buf := make([]byte, 16)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf[:1], oob)
	if err != nil {
		t.Errorf("receiving a descriptor: %v", err)
		return nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Errorf("control messages: %v, %d", err, len(msgs))
		return nil
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 || n != 1 {
		t.Errorf("got %d descriptors with %d bytes (%v), want 1 with 1 byte", len(fds), n, err)
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil
	}
	return os.NewFile(uintptr(fds[0]), "passed")
}

// stdioRequest reads a stdio forward request and its two descriptors.
func stdioRequest(t *testing.T, c *net.UnixConn) (id uint32, host string, port uint32, in, out *os.File) {
	m, err := readPacket(c)
	if err != nil {
		t.Errorf("reading the request: %v", err)
		return
	}
	if typ := m.u32(); typ != msgCNewStdioFwd {
		t.Errorf("request type %#x", typ)
	}
	id = m.u32()
	m.str() // reserved
	host = m.str()
	port = m.u32()
	if m.err != nil || len(m.b) != 0 {
		t.Errorf("request: %v, %d bytes left", m.err, len(m.b))
	}
	in = recvFd(t, c)
	out = recvFd(t, c)
	return
}

func TestProtocolErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cases := []struct {
		name  string
		serve func(t *testing.T, c *net.UnixConn)
		check func(err error) bool
	}{
		{"version 3", func(t *testing.T, c *net.UnixConn) {
			handshake(t, c, 3)
			io.Copy(io.Discard, c)
		}, func(err error) bool { return errors.Is(err, ErrProtocol) && strings.Contains(err.Error(), "version 3") }},
		{"not a hello", func(t *testing.T, c *net.UnixConn) {
			c.Write(newMsg(msgSOK).u32(0).bytes())
			io.Copy(io.Discard, c) // until the client hangs up
		}, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"huge length", func(t *testing.T, c *net.UnixConn) {
			c.Write([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
			io.Copy(io.Discard, c)
		}, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"wrong request id", func(t *testing.T, c *net.UnixConn) {
			if handshake(t, c, 4) {
				readPacket(c)
				c.Write(newMsg(msgSAlive).u32(7).u32(1234).bytes())
			}
		}, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"truncated", func(t *testing.T, c *net.UnixConn) {
			if handshake(t, c, 4) {
				readPacket(c)
				c.Write(newMsg(msgSAlive).u32(1).bytes())
			}
		}, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"closed mid-request", func(t *testing.T, c *net.UnixConn) {
			if handshake(t, c, 4) {
				readPacket(c)
			}
		}, func(err error) bool { return errors.Is(err, ErrNoMaster) }},
		{"failure", func(t *testing.T, c *net.UnixConn) {
			// The master never refuses an alive check: a refusal is
			// not a reply to it (TestAliveReplies).
			if handshake(t, c, 4) {
				readPacket(c)
				c.Write(newMsg(msgSFailure).u32(1).str("no\x1b[31m way").bytes())
			}
		}, func(err error) bool {
			var r *RefusedError
			return errors.Is(err, ErrProtocol) && !errors.As(err, &r) && !strings.Contains(err.Error(), "\x1b")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, func(c *net.UnixConn) { tc.serve(t, c) })
			_, err := Dial(ctx, f.path)
			if err == nil || !tc.check(err) {
				t.Fatalf("Dial: %v", err)
			}
		})
	}
}

// The stdio forward as the master sees it: hello, request, then the two
// descriptors one per message; a permission denial is a *RefusedError.
func TestStdioFwdRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type req struct {
		host string
		port uint32
	}
	reqs := make(chan req, 1)
	f := startFake(t, func(c *net.UnixConn) {
		if !handshake(t, c, 4) {
			return
		}
		id, host, port, in, out := stdioRequest(t, c)
		if in != nil {
			in.Close()
		}
		if out != nil {
			out.Close()
		}
		reqs <- req{host, port}
		c.Write(newMsg(msgSPermission).u32(id).str("Permission denied").bytes())
	})
	cl := &Client{path: f.path, addr: f.path}
	_, err := cl.OpenStdioFwd(ctx, "db.internal", 5432)
	var r *RefusedError
	if !errors.As(err, &r) || !r.Denied {
		t.Fatalf("OpenStdioFwd: %v, want a denial", err)
	}
	if got := <-reqs; got != (req{"db.internal", 5432}) {
		t.Fatalf("master got %+v", got)
	}
}

// How a Conn tells a target's EOF from a lost master, with a fake master
// that controls both.
func TestEOFVerdict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// serve opens the forward, then, while the client reads, does end
	// with the "stdout" descriptor; it keeps answering alive checks on
	// the control connection when alive is true.
	serve := func(alive bool, end func(out *os.File, ln *fakeMaster)) (*fakeMaster, *sync.WaitGroup) {
		var f *fakeMaster
		var done sync.WaitGroup
		done.Add(1)
		f = startFake(t, func(c *net.UnixConn) {
			if !handshake(t, c, 4) {
				return
			}
			m, err := readPacket(c)
			if err != nil {
				return
			}
			typ := m.u32()
			id := m.u32()
			if typ == msgCAliveCheck {
				// A new control connection's alive check.
				if alive {
					c.Write(newMsg(msgSAlive).u32(id).u32(99).bytes())
				}
				return
			}
			defer done.Done()
			in := recvFd(t, c)
			out := recvFd(t, c)
			defer in.Close()
			c.Write(newMsg(msgSSessionOpened).u32(id).u32(3).bytes())
			end(out, f)
			if alive {
				// Like the master: the forward ends when its input
				// ends, and the control connection with it.
				go func() {
					io.Copy(io.Discard, in)
					c.Close()
				}()
			}
			for alive {
				m, err := readPacket(c)
				if err != nil {
					return
				}
				m.u32()
				c.Write(newMsg(msgSAlive).u32(m.u32()).u32(99).bytes())
			}
		})
		return f, &done
	}

	t.Run("target EOF, master alive", func(t *testing.T) {
		f, done := serve(true, func(out *os.File, _ *fakeMaster) {
			out.Write([]byte("data"))
			out.Close()
		})
		conn, err := (&Client{path: f.path, addr: f.path}).OpenStdioFwd(ctx, "h", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(conn)
		if err != nil || string(b) != "data" {
			t.Fatalf("ReadAll = %q, %v; want a clean EOF", b, err)
		}
		// Later reads: EOF again, without asking the master.
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("second Read: %v", err)
		}
		conn.Close()
		done.Wait()
	})

	t.Run("master stopped listening", func(t *testing.T) {
		// As after ssh -O stop: the master serves its forwards but
		// accepts no new control connections. It still answers on the
		// forward's own.
		f, done := serve(true, func(out *os.File, f *fakeMaster) {
			f.ln.Close()
			out.Write([]byte("data"))
			out.Close()
		})
		conn, err := (&Client{path: f.path, addr: f.path}).OpenStdioFwd(ctx, "h", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(conn)
		if err != nil || string(b) != "data" {
			t.Fatalf("ReadAll = %q, %v; want a clean EOF", b, err)
		}
		conn.Close()
		done.Wait()
	})

	t.Run("master gone", func(t *testing.T) {
		f, done := serve(false, func(out *os.File, f *fakeMaster) {
			out.Write([]byte("data"))
			f.ln.Close() // no new control connections
			out.Close()
		})
		conn, err := (&Client{path: f.path, addr: f.path}).OpenStdioFwd(ctx, "h", 1)
		if err != nil {
			t.Fatal(err)
		}
		done.Wait() // the control connection is closed: the master is gone
		b, err := io.ReadAll(conn)
		if string(b) != "data" || !errors.Is(err, ErrMasterLost) {
			t.Fatalf("ReadAll = %q, %v; want the data, then ErrMasterLost", b, err)
		}
		conn.Close()
	})
}

func TestCodec(t *testing.T) {
	if err := checkHello(&msgReader{b: newMsg(msgHello).u32(4).str("info").bytes()[4:]}); err == nil {
		t.Error("hello with an extension name and no value accepted")
	}
	if err := checkHello(&msgReader{b: newMsg(msgHello).u32(4).str("a").str("b").str("c").str("").bytes()[4:]}); err != nil {
		t.Errorf("hello with two extensions: %v", err)
	}
	m := &msgReader{b: []byte{0, 0, 0, 9, 'a'}}
	if m.str(); m.err == nil {
		t.Error("string longer than its message accepted")
	}
	// Controls (C0, DEL, C1) and invisible format characters (a bidi
	// override that reorders what follows, a zero-width space) become
	// '?'; letters and the ASCII space stay.
	if got, want := sanitize("a\x1b[1m\u009b\u202egnp.exe\u200bé z"), "a?[1m??gnp.exe?é z"; got != want {
		t.Errorf("sanitize: %q, want %q", got, want)
	}
	if got := sanitize(strings.Repeat("é", 300)); len([]rune(got)) != 201 {
		t.Errorf("sanitize kept %d runes", len([]rune(got)))
	}
	if _, err := readPacket(strings.NewReader("\x00\x00\x00\x08\x00\x00")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated packet: %v", err)
	}
}

// Close keeps the control connection until the master has read all that
// was written: OpenSSH drops the forward, unread data included, when its
// control connection closes (mux.c, mux_master_control_cleanup_cb).
func TestCloseKeepsControlUntilDrained(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	result := make(chan string, 1)
	f := startFake(t, func(c *net.UnixConn) {
		if !handshake(t, c, 4) {
			return
		}
		id, _, _, in, out := stdioRequest(t, c)
		if in == nil || out == nil {
			return
		}
		defer out.Close()
		c.Write(newMsg(msgSSessionOpened).u32(id).u32(3).bytes())
		var drained sync.WaitGroup
		drained.Add(1)
		var n int
		var inEOF bool
		var mu sync.Mutex
		go func() {
			defer drained.Done()
			defer in.Close()
			buf := make([]byte, 16<<10)
			for {
				k, err := in.Read(buf)
				mu.Lock()
				n += k
				inEOF = err == io.EOF
				mu.Unlock()
				if err != nil {
					c.Close() // the forward is over
					return
				}
				time.Sleep(time.Millisecond) // a slow SSH connection
			}
		}()
		_, err := readPacket(c) // the client's closing of the control connection
		mu.Lock()
		switch {
		case err == nil:
			result <- "unexpected packet"
		case !inEOF:
			result <- "the control connection closed before the master read everything"
		default:
			result <- "ok"
		}
		mu.Unlock()
		drained.Wait()
	})
	conn, err := (&Client{path: f.path, addr: f.path}).OpenStdioFwd(ctx, "h", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if r := <-result; r != "ok" {
		t.Fatal(r)
	}
}

// A full listen backlog (OpenSSH listens with 64) makes connect fail with
// EAGAIN; Dial retries until the master accepts or ctx ends.
func TestFullBacklog(t *testing.T) {
	path := socketPath(t)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.UnixListener)
	defer ln.Close()
	// Fill the backlog: connect until the kernel says EAGAIN.
	var fillers []net.Conn
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("unix", path)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil || i > 100 {
			t.Skipf("cannot fill the backlog here: %v after %d connections", err, i)
		}
		fillers = append(fillers, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = Dial(ctx, path)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial on a full backlog: %v, want it to wait for ctx", err)
	}
	// Now the master accepts: the waiting Dial gets through.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	defer func() {
		// Before wg.Wait: their handlers wait for a hello.
		for _, c := range fillers {
			c.Close()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if !handshake(t, c, 4) {
					return
				}
				if _, err := readPacket(c); err == nil {
					c.Write(newMsg(msgSAlive).u32(1).u32(42).bytes())
				}
			}()
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() != 42 {
		t.Fatalf("PID %d", c.PID())
	}
}
