package main

// Attempts to break -L through a ControlMaster (the accepted connection
// handed to the master with SCM_RIGHTS) from outside: the command runs
// in-process against a real sshd and a real `ssh -M -N -S sock` master.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"go.uber.org/goleak"
)

// hbMaster starts sshd and a master logged in to it (one login).
func hbMaster(t *testing.T) (*fixture, *opensshd.Master) {
	t.Helper()
	f := newFixture(t, "LogLevel INFO")
	m := f.srv.StartMaster(t)
	waitSSHDLogins(t, f.srv, 1, "the master's login")
	return f, m
}

// hbForward returns the n-th forward of kind.
func hbForward(c *cli, kind string, n int) *forward {
	for _, f := range c.s.forwards {
		if f.kind == kind {
			if n == 0 {
				return f
			}
			n--
		}
	}
	return nil
}

// hbEventually polls cond every 10 ms for at most within.
func hbEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hbNewMaster starts another master like m, on m's control path, and
// waits until it listens there and sshd has logged in logins in all. It
// returns the new master's PID.
func hbNewMaster(t *testing.T, f *fixture, m *opensshd.Master, logins int) int {
	t.Helper()
	nm := exec.Command("ssh", m.Args...) // the same control path
	if err := nm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nm.Process.Kill(); nm.Wait() })
	if !hbEventually(20*time.Second, func() bool {
		cc, err := net.Dial("unix", m.Sock)
		if err == nil {
			cc.Close()
		}
		return err == nil
	}) {
		t.Fatalf("the new master does not listen on %s", m.Sock)
	}
	waitSSHDLogins(t, f.srv, logins, "the new master's login")
	return nm.Process.Pid
}

// hbWaitOpen waits until fw's open count is want.
func hbWaitOpen(t *testing.T, c *cli, fw *forward, want int64, within time.Duration, what string) {
	t.Helper()
	if !hbEventually(within, func() bool { return fw.open.Load() == want }) {
		var b bytes.Buffer
		c.s.writeStatus(&b)
		t.Fatalf("%s: %s %s has %d open tunnels after %v, want %d\n%s", what, fw.kind, fw.text, fw.open.Load(), within, want, b.String())
	}
}

// hbDial connects to a -L listener (tcp or unix) with a deadline.
func hbDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	conn, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	return conn
}

// hbPattern is the byte at offset i of what hbSource sends.
func hbPattern(i int64) byte { return byte(i % 251) }

// hbSource returns a target handler that waits for gate (if not nil), then
// writes total bytes of hbPattern (forever when total < 0, until a write
// fails) and returns (the connection is closed then); ended is closed,
// when not nil, once a handler returned.
func hbSource(total int64, gate <-chan struct{}, ended chan<- struct{}) func(net.Conn) {
	var once sync.Once
	return func(c net.Conn) {
		if ended != nil {
			defer once.Do(func() { close(ended) })
		}
		if gate != nil {
			select {
			case <-gate:
			case <-time.After(90 * time.Second):
				return
			}
		}
		c.SetWriteDeadline(time.Now().Add(90 * time.Second))
		buf := make([]byte, 32<<10)
		for off := int64(0); total < 0 || off < total; {
			n := int64(len(buf))
			if total >= 0 && total-off < n {
				n = total - off
			}
			for i := int64(0); i < n; i++ {
				buf[i] = hbPattern(off + i)
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			off += n
		}
	}
}

// hbDrain reads c until an error, checking hbPattern, and returns the byte
// count and the error: io.EOF for a clean end.
func hbDrain(c net.Conn, off int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		for i := 0; i < k; i++ {
			if buf[i] != hbPattern(off+n+int64(i)) {
				return n + int64(i), fmt.Errorf("byte %d is %d, want %d: the stream is corrupted", off+n+int64(i), buf[i], hbPattern(off+n+int64(i)))
			}
		}
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}

func hbIsReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// hbSocketInodes returns the socket inodes process pid (0: this one) holds,
// with how many descriptors refer to each.
func hbSocketInodes(t *testing.T, pid int) map[string]int {
	t.Helper()
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/fd", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")]++
		}
	}
	return inodes
}

// hbShared returns the socket inodes both this process and pid hold: only
// a passed descriptor is in both (each end of a connection or socketpair
// has an inode of its own).
func hbShared(t *testing.T, pid int) map[string]bool {
	t.Helper()
	ours, theirs := hbSocketInodes(t, 0), hbSocketInodes(t, pid)
	shared := map[string]bool{}
	for ino := range ours {
		if theirs[ino] > 0 {
			shared[ino] = true
		}
	}
	return shared
}

// hbProcNetTCP returns the fields of the line of /proc/net/tcp for the
// IPv4 TCP socket local -> remote, nil when there is none.
func hbProcNetTCP(t *testing.T, local, remote *net.TCPAddr) []string {
	t.Helper()
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == hexAddr(local) && f[2] == hexAddr(remote) {
			return f
		}
	}
	return nil
}

// hbTCPInode returns the inode of the IPv4 TCP socket local -> remote from
// /proc/net/tcp, or "" when there is none.
func hbTCPInode(t *testing.T, local, remote *net.TCPAddr) string {
	t.Helper()
	if f := hbProcNetTCP(t, local, remote); f != nil {
		return f[9]
	}
	return ""
}

// hbAccepted returns the inode of the socket sshdial accepted for client.
func hbAccepted(t *testing.T, client net.Conn) string {
	t.Helper()
	var ino string
	// The accepted socket appears once the handshake's last ACK is in.
	hbEventually(5*time.Second, func() bool {
		ino = hbTCPInode(t, client.RemoteAddr().(*net.TCPAddr), client.LocalAddr().(*net.TCPAddr))
		return ino != "" && ino != "0"
	})
	if ino == "" || ino == "0" {
		t.Fatalf("no socket %v -> %v in /proc/net/tcp", client.RemoteAddr(), client.LocalAddr())
	}
	return ino
}

func hbFDCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// hbNoLeak waits (bounded) until this process holds no more descriptors
// than fds and runs no goroutine that ignore does not cover. It collects
// garbage first: Go's splice pipes (pooled) and descriptors left to
// finalizers go then; TestHandoverBreakNoDescriptorPerTunnel checks the
// latter.
func hbNoLeak(t *testing.T, what string, ignore goleak.Option, fds int) {
	t.Helper()
	runtime.GC()
	runtime.GC()
	if !hbEventually(15*time.Second, func() bool { return hbFDCount(t) <= fds }) {
		ents, _ := os.ReadDir("/proc/self/fd")
		var links []string
		for _, e := range ents {
			l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
			links = append(links, e.Name()+"->"+l)
		}
		t.Errorf("%s: %d descriptors open, were %d: %s", what, hbFDCount(t), fds, strings.Join(links, " "))
	}
	var err error
	if !hbEventually(15*time.Second, func() bool { err = goleak.Find(ignore); return err == nil }) {
		t.Errorf("%s: goroutines leaked: %v", what, err)
	}
}

// 1 and 8. The data does not pass through sshdial: while a -L connection
// through the master is open, the master holds the very socket sshdial
// accepted, and sshdial (this process) keeps its own descriptor of it. The
// same for -L on a Unix socket path: a socket both hold appears with the
// connection. And the tunnel works both ways and ends cleanly.
func TestHandoverBreakBypass(t *testing.T) {
	f, m := hbMaster(t)
	target := testutil.EchoServer(t, "tcp").Addr().String()
	dir := testutil.ShortTempDir(t)
	sock := filepath.Join(dir, "l.sock")
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+target, "-L", sock+":"+target)...)
	if got := c.addr("-L", 1); got != sock {
		t.Fatalf("the second -L listens on %q, want %q", got, sock)
	}
	before := hbShared(t, m.Pid())

	t.Run("tcp", func(t *testing.T) {
		conn := hbDial(t, c.addr("-L", 0))
		if err := testutil.RoundTrip(conn, "through the master"); err != nil {
			t.Fatal(err)
		}
		accepted := hbAccepted(t, conn)
		if n := hbSocketInodes(t, m.Pid())[accepted]; n == 0 {
			t.Fatalf("the master (PID %d) holds no descriptor of the accepted socket %s: sshdial copies the data", m.Pid(), accepted)
		} else {
			t.Logf("the master holds %d descriptors of the accepted socket %s", n, accepted)
		}
		if hbSocketInodes(t, 0)[accepted] == 0 {
			t.Fatalf("sshdial does not keep its descriptor of the accepted socket %s (a lost master would then look like a clean end)", accepted)
		}
		// The client's own socket is not shared (sanity of the method).
		if own := hbTCPInode(t, conn.LocalAddr().(*net.TCPAddr), conn.RemoteAddr().(*net.TCPAddr)); hbSocketInodes(t, m.Pid())[own] > 0 {
			t.Fatalf("the master holds the client's own socket %s?", own)
		}
		conn.(*net.TCPConn).CloseWrite()
		rest, err := io.ReadAll(conn)
		if err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v; want a clean EOF", rest, err)
		}
		hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 20*time.Second, "after the tunnel")
		if n := hbSocketInodes(t, m.Pid())[accepted]; n > 0 {
			t.Errorf("the master still holds the accepted socket after the tunnel ended")
		}
	})

	t.Run("unix", func(t *testing.T) {
		conn := hbDial(t, sock)
		if err := testutil.RoundTrip(conn, "through the master, from a unix socket"); err != nil {
			t.Fatal(err)
		}
		var news []string
		for ino := range hbShared(t, m.Pid()) {
			if !before[ino] {
				news = append(news, ino)
			}
		}
		if len(news) != 1 {
			t.Fatalf("sockets both sshdial and the master hold, new with the unix -L connection: %q, want exactly one (the accepted socket)", news)
		}
		conn.(*net.UnixConn).CloseWrite()
		rest, err := io.ReadAll(conn)
		if err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v; want a clean EOF", rest, err)
		}
		hbWaitOpen(t, c, hbForward(c, "-L", 1), 0, 20*time.Second, "after the unix tunnel")
		if hbSocketInodes(t, m.Pid())[news[0]] > 0 || hbSocketInodes(t, 0)[news[0]] > 0 {
			t.Errorf("the accepted unix socket %s is still held after the tunnel ended", news[0])
		}
	})
	waitSSHDLogins(t, f.srv, 1, "tunnels through the master logged in")
	if s := c.stderr.String(); strings.Contains(s, "the ControlMaster is gone") {
		t.Errorf("fell back although the master runs:\n%s", s)
	}
}

// 2. The master killed (SIGKILL) in the middle of a download: the client
// reads a reset, never a clean EOF, and not a corrupted stream; sshdial
// goes on, the tunnel is no longer counted, and the next -L connection
// works through sshdial's own login.
func TestHandoverBreakMasterKilledMidDownload(t *testing.T) {
	f, m := hbMaster(t)
	source := testutil.Serve(t, "tcp", hbSource(-1, nil, nil)).Addr().String()
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+source, "-L", "0:"+echo)...)
	conns := make([]net.Conn, 3)
	for i := range conns {
		conns[i] = hbDial(t, c.addr("-L", 0))
		if n, err := io.ReadFull(conns[i], make([]byte, 256<<10)); err != nil {
			t.Fatalf("download %d: %v after %d bytes", i, err, n)
		}
	}
	hbWaitOpen(t, c, hbForward(c, "-L", 0), 3, 10*time.Second, "downloads open")
	m.Kill()
	killed := time.Now()
	for i, conn := range conns {
		n, err := hbDrain(conn, 256<<10)
		switch {
		case errors.Is(err, io.EOF) || err == nil:
			t.Errorf("download %d: a clean EOF %v after the master was killed (%d more bytes): a cut-short download looks complete", i, time.Since(killed), n)
		case !hbIsReset(err):
			t.Errorf("download %d: %v %v after the master was killed, want a reset", i, err, time.Since(killed))
		}
	}
	if d := time.Since(killed); d > 15*time.Second {
		t.Errorf("the downloads ended %v after the master was killed", d)
	}
	hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 15*time.Second, "after the master died")
	conn := hbDial(t, c.addr("-L", 1))
	if err := testutil.RoundTrip(conn, "after the master died"); err != nil {
		t.Fatal(err)
	}
	waitSSHDLogins(t, f.srv, 2, "the fallback logs in once")
	if !strings.Contains(c.stderr.String(), "the ControlMaster is gone") {
		t.Errorf("the fallback is not logged:\n%s", c.stderr)
	}
}

// 3. Half-closes, a bulk transfer both ways, and the byte counts.
func TestHandoverBreakHalfClose(t *testing.T) {
	f, m := hbMaster(t)
	// answerer reads until EOF, then answers and closes.
	answerer := testutil.Serve(t, "tcp", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		io.WriteString(c, "got:"+string(b))
	}).Addr().String()
	const mib = 1 << 20
	source := testutil.Serve(t, "tcp", hbSource(mib, nil, nil)).Addr().String()
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+answerer, "-L", "0:"+source, "-L", "0:"+echo)...)

	// counts checks the forward's byte counts (received < 0: not
	// checked; TestHandoverBreakCounts does).
	counts := func(t *testing.T, fw *forward, sent, received int64, do func()) {
		t.Helper()
		s0, r0 := fw.sent.Load(), fw.received.Load()
		do()
		hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the tunnel")
		s, r := fw.sent.Load()-s0, fw.received.Load()-r0
		if s != sent || (received >= 0 && r != received) {
			t.Errorf("%s counted sent %d, received %d; want %d, %d", fw.text, s, r, sent, received)
		}
	}

	t.Run("client-first", func(t *testing.T) {
		counts(t, hbForward(c, "-L", 0), 5, 9, func() {
			conn := hbDial(t, c.addr("-L", 0))
			io.WriteString(conn, "hello")
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(conn)
			if err != nil || string(b) != "got:hello" {
				t.Fatalf("after the client's half-close: %q, %v; want \"got:hello\" and a clean EOF", b, err)
			}
		})
	})

	t.Run("target-first", func(t *testing.T) {
		counts(t, hbForward(c, "-L", 1), 0, -1, func() {
			conn := hbDial(t, c.addr("-L", 1))
			n, err := hbDrain(conn, 0)
			if err != io.EOF || n != mib {
				t.Fatalf("download: %d bytes, then %v; want %d and a clean EOF", n, err, mib)
			}
		})
	})

	t.Run("bulk-both-ways", func(t *testing.T) {
		const size = 8 * mib
		data := make([]byte, size)
		rand.Read(data)
		counts(t, hbForward(c, "-L", 2), size, -1, func() {
			conn := hbDial(t, c.addr("-L", 2))
			werr := make(chan error, 1)
			go func() {
				_, err := conn.Write(data)
				if err == nil {
					err = conn.(*net.TCPConn).CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("reading the echo: %v after %d bytes", err, len(got))
			}
			if err := <-werr; err != nil {
				t.Fatalf("writing: %v", err)
			}
			if len(got) != size || sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("echo of %d bytes: got %d bytes back, equal %v", size, len(got), bytes.Equal(got, data))
			}
		})
	})
	waitSSHDLogins(t, f.srv, 1, "tunnels through the master logged in")
}

// 3b. The byte counts of downloads: the master ends the forward once it
// has written everything into the socket, not once the client has it, so
// bytes still in the socket's send queue then (a client reading slowly, or
// just the last megabytes of a fast transfer) must still be counted as
// received: the client gets them.
func TestHandoverBreakCounts(t *testing.T) {
	f, m := hbMaster(t)
	const size = 4 << 20
	source := testutil.Serve(t, "tcp", hbSource(size, nil, nil)).Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+source)...)
	fw := hbForward(c, "-L", 0)
	for _, pause := range []time.Duration{2 * time.Millisecond, 0} {
		name := "slow-reader"
		if pause == 0 {
			name = "fast-reader"
		}
		t.Run(name, func(t *testing.T) {
			r0 := fw.received.Load()
			conn := hbDial(t, c.addr("-L", 0))
			// 16 KiB a read, with pause after each.
			buf := make([]byte, 16<<10)
			var n int64
			var err error
			for err == nil {
				var k int
				k, err = conn.Read(buf)
				n += int64(k)
				if pause > 0 {
					time.Sleep(pause)
				}
			}
			if err != io.EOF || n != size {
				t.Fatalf("download: %d bytes, then %v; want %d and EOF", n, err, size)
			}
			hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the download")
			if r := fw.received.Load() - r0; r != size {
				var b bytes.Buffer
				c.s.writeStatus(&b)
				t.Errorf("the client received %d bytes, the forward counts %d (%d missing):\n%s", size, r, size-r, b.String())
			}
		})
	}
}

// 4. 200 connections at once through the master: every one echoes its own
// data, all are open together, none logs in, none fails.
func TestHandoverBreakParallel(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+echo)...)
	fw := hbForward(c, "-L", 0)
	const n = 200
	var (
		wg      sync.WaitGroup
		opened  sync.WaitGroup
		release = make(chan struct{})
		errs    = make(chan error, n)
		failed  atomic.Bool
	)
	opened.Add(n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			first := true
			done := func() {
				if first {
					first = false
					opened.Done()
				}
			}
			defer done()
			fail := func(format string, a ...any) {
				failed.Store(true)
				errs <- fmt.Errorf("conn %d: "+format, append([]any{i}, a...)...)
			}
			conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 30*time.Second)
			if err != nil {
				fail("%v", err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(90 * time.Second))
			msg := strings.Repeat(fmt.Sprintf("[%03d]", i), 400)
			if err := testutil.RoundTrip(conn, msg); err != nil {
				fail("%v", err)
				return
			}
			done()
			select {
			case <-release:
			case <-time.After(90 * time.Second):
				fail("not released")
				return
			}
			if err := testutil.RoundTrip(conn, msg+"again"); err != nil {
				fail("second round trip: %v", err)
				return
			}
			conn.(*net.TCPConn).CloseWrite()
			if rest, err := io.ReadAll(conn); err != nil || len(rest) != 0 {
				fail("after CloseWrite: %d bytes, %v; want a clean EOF", len(rest), err)
			}
		})
	}
	allOpen := make(chan struct{})
	go func() { opened.Wait(); close(allOpen) }()
	select {
	case <-allOpen:
	case <-time.After(120 * time.Second):
		close(release)
		t.Fatalf("the %d connections did not all open within 120s", n)
	}
	if !failed.Load() {
		if got := fw.open.Load(); got != n {
			t.Errorf("%d tunnels counted open, want %d", got, n)
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hbWaitOpen(t, c, fw, 0, 30*time.Second, "after the parallel tunnels")
	if fw.total.Load() != n || fw.failed.Load() != 0 {
		t.Errorf("total %d, failed %d; want %d, 0", fw.total.Load(), fw.failed.Load(), n)
	}
	waitSSHDLogins(t, f.srv, 1, "parallel tunnels through the master logged in")
	if s := c.stderr.String(); strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
		t.Errorf("warnings with parallel tunnels through the master:\n%s", s)
	}
}

// 5. Shutdown with handed tunnels open.
func TestHandoverBreakShutdown(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()

	// The grace period ends: open tunnels go on until then, and are then
	// reset; sshdial exits 0 and leaves nothing behind.
	t.Run("grace-over", func(t *testing.T) {
		ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
		const grace = 2 * time.Second
		c := startCLI(t, f.args("-S", m.Sock, "--grace", grace.String(), "-L", "0:"+echo)...)
		var conns []net.Conn
		for i := 0; i < 3; i++ {
			conn := hbDial(t, c.addr("-L", 0))
			if err := testutil.RoundTrip(conn, "before the stop"); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
		}
		c.cancel() // as SIGINT
		stopped := time.Now()
		if err := testutil.RoundTrip(conns[0], "during the grace period"); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
		for i, conn := range conns {
			conn.SetDeadline(stopped.Add(grace + 15*time.Second))
			_, err := io.Copy(io.Discard, conn)
			if !hbIsReset(err) {
				t.Errorf("tunnel %d: %v when the grace period ended, want a reset (nil is a clean EOF)", i, err)
			}
			if d := time.Since(stopped); d > grace+10*time.Second {
				t.Errorf("tunnel %d ended %v after the stop, grace %v", i, d, grace)
			}
		}
		if d := time.Since(stopped); d < grace-100*time.Millisecond {
			t.Errorf("the tunnels ended %v after the stop, before the grace period (%v) was over", d, grace)
		}
		if code := c.stop(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if d := time.Since(stopped); d > grace+10*time.Second {
			t.Errorf("sshdial ended %v after the stop, grace %v", d, grace)
		}
		for _, conn := range conns {
			conn.Close()
		}
		hbNoLeak(t, "after the shutdown", ignore, fds)
	})

	// A tunnel that ends within the grace period ends the wait.
	t.Run("ends-within-grace", func(t *testing.T) {
		ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
		c := startCLI(t, f.args("-S", m.Sock, "--grace", "60s", "-L", "0:"+echo)...)
		conn := hbDial(t, c.addr("-L", 0))
		if err := testutil.RoundTrip(conn, "before the stop"); err != nil {
			t.Fatal(err)
		}
		c.cancel()
		time.Sleep(300 * time.Millisecond)
		if err := testutil.RoundTrip(conn, "during the grace period"); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
		conn.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(conn); err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v; want a clean EOF", rest, err)
		}
		ended := time.Now()
		if code := c.stop(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if d := time.Since(ended); d > 15*time.Second {
			t.Errorf("sshdial ended %v after its last tunnel, well before the 60s grace period", d)
		}
		conn.Close()
		hbNoLeak(t, "after the shutdown", ignore, fds)
	})

	// --grace 0: the tunnels are reset at once.
	t.Run("grace-0", func(t *testing.T) {
		c := startCLI(t, f.args("-S", m.Sock, "--grace", "0", "-L", "0:"+echo)...)
		conn := hbDial(t, c.addr("-L", 0))
		if err := testutil.RoundTrip(conn, "before the stop"); err != nil {
			t.Fatal(err)
		}
		c.cancel()
		stopped := time.Now()
		conn.SetDeadline(stopped.Add(15 * time.Second))
		if _, err := io.Copy(io.Discard, conn); !hbIsReset(err) {
			t.Errorf("%v at the stop with --grace 0, want a reset", err)
		}
		if d := time.Since(stopped); d > 10*time.Second {
			t.Errorf("the tunnel ended %v after the stop with --grace 0", d)
		}
		if code := c.stop(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
	})
	waitSSHDLogins(t, f.srv, 1, "tunnels through the master logged in")
}

// 6. The master stopped (SIGSTOP) with a handed tunnel open: a new
// connection falls back to sshdial's own login; after SIGCONT the handed
// tunnel goes on, and the connection that fell back is sshdial's alone
// (the stopped master must not take up the handover it was sent and
// abandoned). Then, the master stopped again, shutdown with a short grace
// period still returns.
func TestHandoverBreakMasterStopped(t *testing.T) {
	f, m := hbMaster(t)
	var accepts atomic.Int64
	echo := testutil.Serve(t, "tcp", func(c net.Conn) {
		accepts.Add(1)
		testutil.Echo(c)
	}).Addr().String()
	pid := m.Pid()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	const grace = time.Second
	c := launchCLI(t, true, f.args("-S", m.Sock, "--grace", grace.String(), "-L", "0:"+echo)...)
	t1 := hbDial(t, c.addr("-L", 0))
	if err := testutil.RoundTrip(t1, "before SIGSTOP"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	io.WriteString(t1, "while stopped") // answered after SIGCONT
	t2 := hbDial(t, c.addr("-L", 0))
	t2Accepted := hbAccepted(t, t2)
	start := time.Now()
	if err := testutil.RoundTrip(t2, "fell back while the master is stopped"); err != nil {
		t.Fatalf("a new connection while the master is stopped: %v (after %v)", err, time.Since(start))
	}
	t.Logf("the new connection answered %v after the master was stopped", time.Since(start).Round(time.Millisecond))
	waitSSHDLogins(t, f.srv, 2, "the fallback while the master is stopped")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("while stopped"))
	if _, err := io.ReadFull(t1, got); err != nil || string(got) != "while stopped" {
		t.Fatalf("the handed tunnel after SIGCONT: %q, %v", got, err)
	}
	if err := testutil.RoundTrip(t1, "after SIGCONT"); err != nil {
		t.Fatalf("the handed tunnel after SIGCONT: %v", err)
	}
	// Let the master work through what it was sent while stopped.
	time.Sleep(time.Second)
	if n := hbSocketInodes(t, pid)[t2Accepted]; n > 0 {
		t.Errorf("after SIGCONT the master holds %d descriptors of the connection sshdial fell back for (socket %s): two readers of one socket", n, t2Accepted)
	}
	if a := accepts.Load(); a != 2 {
		t.Errorf("the target saw %d connections, want 2 (the handed one and the fallback's)", a)
	}
	for i := 0; i < 20; i++ {
		msg := fmt.Sprintf("fallback round trip %d: %s", i, strings.Repeat("x", 1000))
		if err := testutil.RoundTrip(t2, msg); err != nil {
			t.Fatalf("the connection that fell back, after SIGCONT: %v", err)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.cancel()
	stopped := time.Now()
	select {
	case code := <-c.done:
		c.done <- code // for the cleanup's stop
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(grace + 15*time.Second):
		t.Fatalf("shutdown with the master stopped did not return within %v", grace+15*time.Second)
	}
	t.Logf("shutdown returned %v after the stop, with the master stopped", time.Since(stopped).Round(time.Millisecond))
	_, err := io.Copy(io.Discard, t2)
	t.Logf("the tunnel that fell back (copied by sshdial) ended with %v", err)
	// The handed tunnel: the stopped master holds the socket; once it
	// goes on it must end it, with a reset (it was cut short).
	syscall.Kill(pid, syscall.SIGCONT)
	t1.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, t1); !hbIsReset(err) {
		t.Errorf("the handed tunnel, cut short by the shutdown while the master was stopped, ended with %v after SIGCONT, want a reset", err)
	}
}

// 7. The client resets its connection in the middle of a download: the
// forward ends (the target's connection is closed too), nothing is counted
// open, nothing leaks. The same for a reset while the target is quiet.
func TestHandoverBreakClientReset(t *testing.T) {
	f, m := hbMaster(t)
	ended := make(chan struct{})
	source := testutil.Serve(t, "tcp", hbSource(-1, nil, ended)).Addr().String()
	echoEnded := make(chan struct{}, 10)
	echo := testutil.Serve(t, "tcp", func(c net.Conn) {
		defer func() { echoEnded <- struct{}{} }()
		testutil.Echo(c)
	}).Addr().String()
	ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+source, "-L", "0:"+echo)...)

	conn := hbDial(t, c.addr("-L", 0))
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	reset := time.Now()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Errorf("the target still sends 20s after the client reset its connection")
	}
	hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 20*time.Second, "after the client's reset")
	t.Logf("download forward over %v after the reset", time.Since(reset).Round(time.Millisecond))

	conn = hbDial(t, c.addr("-L", 1))
	if err := testutil.RoundTrip(conn, "then a reset"); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	select {
	case <-echoEnded:
	case <-time.After(20 * time.Second):
		t.Errorf("the echo target's connection is still open 20s after the client reset its connection")
	}
	hbWaitOpen(t, c, hbForward(c, "-L", 1), 0, 20*time.Second, "after the client's reset")

	var b bytes.Buffer
	c.s.writeStatus(&b)
	if strings.Count(b.String(), "open 0,") != 2 {
		t.Errorf("status after the resets:\n%s", b.String())
	}
	if !strings.Contains(b.String(), ": ssh through the ControlMaster at "+m.Sock+", destination") {
		t.Errorf("the status does not say that tunnels go through the master:\n%s", b.String())
	}
	if code := c.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	hbNoLeak(t, "after the resets and the shutdown", ignore, fds)
	waitSSHDLogins(t, f.srv, 1, "tunnels through the master logged in")
}

// 9a. The target refuses: the client's connection is closed, the failure
// counted, no login made; the next tunnel works.
func TestHandoverBreakTargetRefused(t *testing.T) {
	f, m := hbMaster(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+closed, "-L", "0:"+echo, "-L", "0:no-such-host.invalid:80")...)
	for _, n := range []int{0, 2} {
		conn := hbDial(t, c.addr("-L", n))
		start := time.Now()
		b, err := io.ReadAll(conn)
		if len(b) != 0 || (err != nil && !hbIsReset(err)) {
			t.Errorf("-L %d to a target that refuses: %q, %v", n, b, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("-L %d: the refused tunnel ended after %v", n, d)
		}
		fw := hbForward(c, "-L", n)
		hbWaitOpen(t, c, fw, 0, 10*time.Second, "after the refusal")
		if fw.failed.Load() != 1 {
			t.Errorf("-L %d: %d failures counted, want 1", n, fw.failed.Load())
		}
	}
	conn := hbDial(t, c.addr("-L", 1))
	if err := testutil.RoundTrip(conn, "after the refusals"); err != nil {
		t.Fatal(err)
	}
	waitSSHDLogins(t, f.srv, 1, "a refused target made sshdial log in")
}

// 9b. Clients that close or reset their connection at once, before or
// while it is handed over: every tunnel ends, none stays counted, sshdial
// goes on through the master.
func TestHandoverBreakEarlyClose(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+echo)...)
	fw := hbForward(c, "-L", 0)
	for i := 0; i < 60; i++ {
		conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			conn.(*net.TCPConn).SetLinger(0)
		case 1:
			io.WriteString(conn, "data, then gone")
		}
		conn.Close()
	}
	closed := time.Now()
	hbWaitOpen(t, c, fw, 0, 60*time.Second, "after the early closes")
	t.Logf("all tunnels over %v after the last client closed", time.Since(closed).Round(time.Millisecond))
	if fw.total.Load() != 60 {
		t.Errorf("total %d, want 60", fw.total.Load())
	}
	conn := hbDial(t, c.addr("-L", 0))
	if err := testutil.RoundTrip(conn, "after the early closes"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waitSSHDLogins(t, f.srv, 1, "early closes made sshdial log in")
	if code := c.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	hbNoLeak(t, "after the early closes", ignore, fds)

}

// 9c. The master stops listening (ssh -O stop: it keeps serving what is
// open) in the middle of a download, and a new master may take the path.
// While the old master lives on (another tunnel through it keeps it
// running: a -N master told to stop exits with its last forward), the
// download is its to end, and it ends it cleanly: the client must get
// every byte and a clean EOF, not a reset (which also drops what the
// client has not read yet). When the download is the master's last
// forward, the master exits right after it, which sshdial cannot tell from
// a death: then a reset is accepted once the client has every byte, but
// never a clean EOF for a download cut short.
func TestHandoverBreakMasterStopListening(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace bool // a new master takes the path
		slow    bool // the client reads slowly: data is still queued at the end
		last    bool // the download is the old master's last forward
	}{
		{name: "stop"},
		{name: "stop-then-new-master", replace: true},
		{name: "stop-slow-reader", slow: true},
		{name: "stop-last-forward", last: true},
		{name: "stop-last-forward-slow-reader", last: true, slow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := hbMaster(t)
			const size = 1 << 20
			gate := make(chan struct{})
			var gateOnce sync.Once
			open := func() { gateOnce.Do(func() { close(gate) }) }
			source := testutil.Serve(t, "tcp", hbSource(size, gate, nil)).Addr().String()
			t.Cleanup(open) // before Serve's cleanup waits for the handler
			echo := testutil.EchoServer(t, "tcp").Addr().String()
			c := startCLI(t, f.args("-v", "-S", m.Sock, "-L", "0:"+source, "-L", "0:"+echo)...)
			conn := hbDial(t, c.addr("-L", 0))
			accepted := hbAccepted(t, conn)
			if !hbEventually(20*time.Second, func() bool { return hbSocketInodes(t, m.Pid())[accepted] > 0 }) {
				t.Fatalf("the connection was not handed to the master")
			}
			var keeper net.Conn // keeps the old master running
			if !tc.last {
				keeper = hbDial(t, c.addr("-L", 1))
				if err := testutil.RoundTrip(keeper, "keeps the master"); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command("ssh", "-F", "/dev/null", "-S", m.Sock, "-O", "stop", "x").CombinedOutput()
			if err != nil {
				t.Fatalf("ssh -O stop: %v: %s", err, out)
			}
			if _, err := os.Stat(m.Sock); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the control socket is still there after ssh -O stop: %v", err)
			}
			select {
			case <-m.Exited():
				t.Fatalf("the master exited at ssh -O stop")
			default:
			}
			if tc.replace {
				hbNewMaster(t, f, m, 2)
			}
			open() // the download starts
			var n int64
			err = nil
			if tc.slow {
				for n < size/2 && err == nil {
					var k int
					k, err = io.ReadFull(conn, make([]byte, 16<<10))
					n += int64(k)
					time.Sleep(5 * time.Millisecond)
				}
			}
			if err == nil {
				var k int64
				k, err = hbDrain(conn, n)
				n += k
			}
			switch {
			case err == io.EOF && n == size:
			case err == io.EOF:
				t.Errorf("download through a master that stopped listening: a clean EOF after %d of %d bytes: a cut-short download looks complete", n, size)
			case tc.last && hbIsReset(err) && n == size:
				t.Logf("the master's last forward: all %d bytes, then a reset (the master exited with it: accepted)", n)
			case tc.last && hbIsReset(err):
				t.Errorf("the master's last forward: %d of %d bytes, then a reset: the reset dropped what the master had sent", n, size)
			default:
				t.Errorf("download through a master that stopped listening but lives on: %d of %d bytes, then %v; want all and a clean EOF", n, size, err)
			}
			hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 20*time.Second, "after the download")
			if keeper != nil {
				if err := testutil.RoundTrip(keeper, "still there"); err != nil {
					t.Errorf("the other tunnel through the stopped master: %v", err)
				}
			}
			// New connections: the new master, or sshdial's own login.
			conn2 := hbDial(t, c.addr("-L", 1))
			if err := testutil.RoundTrip(conn2, "after ssh -O stop"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// 9d. Shutdown racing handovers: connections arriving while sshdial stops
// (grace 0) all end (closed or reset), none hangs, sshdial exits.
func TestHandoverBreakShutdownRace(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
	c := startCLI(t, f.args("-S", m.Sock, "--grace", "0", "-L", "0:"+echo)...)
	addr := c.addr("-L", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var hung atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Go(func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return // the listener is closed already
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			io.WriteString(conn, "racing the shutdown")
			if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
				hung.Add(1)
			}
		})
		if i == 20 {
			c.cancel()
		}
	}
	wg.Wait()
	if h := hung.Load(); h > 0 {
		t.Errorf("%d connections made while sshdial stopped were still open 30s later", h)
	}
	if code := c.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	hbNoLeak(t, "after the racing shutdown", ignore, fds)
}

// 9e. Tunnels that ended hold no descriptor: each handed tunnel's control
// connection (which the master closes at the end) must be closed by
// sshdial too, not left to the garbage collector's finalizers, or a busy
// sshdial runs out of descriptors between two collections. The collector
// is off while the tunnels run, so only explicit closes count.
func TestHandoverBreakNoDescriptorPerTunnel(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+echo)...)
	fw := hbForward(c, "-L", 0)
	tunnel := func(i int) {
		conn := hbDial(t, c.addr("-L", 0))
		if err := testutil.RoundTrip(conn, fmt.Sprintf("tunnel %d", i)); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(conn); err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v; want a clean EOF", rest, err)
		}
		conn.Close()
	}
	tunnel(-1) // warm-up
	hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the warm-up")
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fds, unixBefore := hbFDCount(t), hbUnixConnected(t)
	const n = 100
	for i := 0; i < n; i++ {
		tunnel(i)
	}
	hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the tunnels")
	// Everything that ended is closed within a moment. (Other
	// descriptors, such as the echo target's splice pipes, which Go pools
	// until a collection, are not sshdial's.)
	hbEventually(3*time.Second, func() bool { return hbUnixConnected(t) <= unixBefore+2 })
	if got := hbUnixConnected(t); got > unixBefore+2 {
		t.Errorf("after %d tunnels through the master, all over, this process holds %d more connected unix sockets without a path (control connections); %d more descriptors in all",
			n, got-unixBefore, hbFDCount(t)-fds)
		debug.SetGCPercent(100)
		runtime.GC()
		runtime.GC()
		hbEventually(3*time.Second, func() bool { return hbUnixConnected(t) <= unixBefore+2 })
		t.Logf("after a garbage collection: %d more (the finalizers closed the rest)", hbUnixConnected(t)-unixBefore)
	}
}

// hbUnixConnected counts the connected Unix stream sockets without a path
// this process holds (control connections to a master are such).
func hbUnixConnected(t *testing.T) int {
	t.Helper()
	ours := hbSocketInodes(t, 0)
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// Num RefCount Protocol Flags Type St Inode [Path]
		if len(f) == 7 && f[4] == "0001" && f[5] == "03" && ours[f[6]] > 0 {
			n++
		}
	}
	return n
}
