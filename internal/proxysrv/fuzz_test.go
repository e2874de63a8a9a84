//go:build unix

package proxysrv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/handover"
	"golang.org/x/crypto/ssh"
)

// The fuzz targets feed arbitrary client bytes to a SOCKS or HTTP CONNECT
// handler over a real loopback TCP connection, then half-close, and check:
//
//   - no panic; the handler returns soon after the client's EOF (it must
//     not wait for HandshakeTimeout, nor for more input), and leaves no
//     goroutine behind;
//   - the dialer (or HandOver) is asked only for a request that is
//     complete and acceptable, once, for the target the bytes name; for
//     SOCKS an independent parser (refSOCKS) says what that is, and what
//     the server must answer in every case, to the byte;
//   - the answers are well-formed: SOCKS replies exactly as RFC 1928 and
//     the SOCKS4 convention say, HTTP responses parseable, with the status
//     the dial's error calls for, a matching Content-Length and nothing
//     after their body;
//   - after a success, the bytes that followed the request, and only
//     those, reach the target, and what the target sends reaches the
//     client; OnTunnel counts them.
//
// The first argument chooses what the dial does (fuzzOutcomes) and, for
// SOCKS, whether HandOver takes the request (mode/16 % 3: 0 no HandOver, 1
// HandOver handles it, 2 HandOver declines and the dialer is used).
//
// Run with: go test -run XXX -fuzz '^FuzzSOCKS$' -parallel 1 ./internal/proxysrv
// (and FuzzHTTPConnect).

// fuzzOutcome is what the fuzz dialer does, with the answer each protocol
// must give (the table in the package documentation).
type fuzzOutcome struct {
	name   string
	bound  net.Addr // on success: the target connection's LocalAddr
	err    error    // nil: success (or, with wait, the dial's context)
	wait   bool     // wait for the dial's context to end (DialTimeout)
	socks5 byte
	http   int
}

func fuzzOpenErr(reason ssh.RejectionReason, msg string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &sshdial.OpenError{Reason: reason, Message: msg}}
}

var fuzzOutcomes = []fuzzOutcome{
	{name: "success"},
	{name: "success, bound IPv4", bound: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3).To4(), Port: 4567}},
	{name: "success, bound IPv6", bound: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}},
	{name: "success, bound IPv4-mapped", bound: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 65535}},
	{name: "ECONNREFUSED", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, socks5: 5, http: 502},
	{name: "prohibited", err: fuzzOpenErr(ssh.Prohibited, "administratively prohibited: open failed"), socks5: 2, http: 403},
	{name: "ENETUNREACH", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, socks5: 3, http: 502},
	{name: "EHOSTUNREACH", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, socks5: 4, http: 502},
	{name: "DNS", err: &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, socks5: 4, http: 502},
	{name: "DialTimeout", wait: true, socks5: 4, http: 504},
	{name: "AddrError", err: &net.OpError{Op: "dial", Err: &net.AddrError{Err: "bad", Addr: "x"}}, socks5: 4, http: 400},
	{name: "shortage", err: fuzzOpenErr(ssh.ResourceShortage, ""), socks5: 1, http: 503},
	{name: "other", err: errors.New("something else"), socks5: 1, http: 502},
	{name: "SSH connection lost", err: &net.OpError{Op: "dial", Err: sshdial.ErrSSHConnectionLost}, socks5: 1, http: 502},
	{name: "server: refused", err: fuzzOpenErr(ssh.ConnectionFailed, "Connection refused"), socks5: 5, http: 502},
	{name: "server: timed out", err: fuzzOpenErr(ssh.ConnectionFailed, "Connection timed out"), socks5: 4, http: 504},
}

// fuzzGreeting is what a fuzz target sends as soon as it is connected.
const fuzzGreeting = "target says hi"

// fuzzMaxInput bounds the inputs tried: the server reads at most
// 4*handshakeBuffer of a handshake and lingers over 64 KiB after a
// refusal; a loopback write of this size arrives in one segment.
const fuzzMaxInput = 20 << 10

// fuzzProxy is the harness shared by the per-process state of a fuzz
// target: one loopback listener, whose connections each carry one input.
type fuzzProxy struct {
	l net.Listener
}

func newFuzzProxy(f *testing.F) *fuzzProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	return &fuzzProxy{l: l}
}

// fuzzRun is what one input did.
type fuzzRun struct {
	out      []byte // what the client read
	readErr  error
	dialed   []string // "network address" asked of Dial
	handed   []string // addresses asked of HandOver
	received []byte   // what the target (or the handed-over forward) read
	events   []TunnelEvent
	// handOverBuffered: HandOver was called with bytes buffered.
	handOverBuffered bool
}

// pair returns a connected pair of Unix stream sockets: a target that can
// be half-closed, as a TCP one.
func fuzzUnixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// boundConn is a target connection with a chosen LocalAddr.
type boundConn struct {
	*net.UnixConn
	laddr net.Addr
}

func (b boundConn) LocalAddr() net.Addr { return b.laddr }

// fuzzForward is a handed-over connection for the fuzz HandOver: it plays
// the target on the client connection itself.
type fuzzForward struct {
	c    net.Conn
	done chan struct{}
	n    int64
}

func (f *fuzzForward) Wait() (int64, int64, error) {
	<-f.done
	return f.n, int64(len(fuzzGreeting)), nil
}

func (f *fuzzForward) Close() error { return f.c.Close() }

// run serves one connection carrying in with handle (socksConn or
// httpConn), as Serve would, and returns what happened.
func (p *fuzzProxy) run(t *testing.T, proto string, mode byte, in []byte) fuzzRun {
	oc := fuzzOutcomes[int(mode)%len(fuzzOutcomes)]
	via := int(mode) / 16 % 3
	baseGoroutines := runtime.NumGoroutine()

	var (
		mu      sync.Mutex
		r       fuzzRun
		targets sync.WaitGroup
	)
	// playTarget writes the greeting to c, reads it to EOF, records what
	// came, and closes it.
	playTarget := func(c net.Conn, cw func() error) int64 {
		_, err := io.WriteString(c, fuzzGreeting)
		if err == nil && cw != nil {
			cw()
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		mu.Lock()
		r.received = append(r.received, b...)
		mu.Unlock()
		return int64(len(b))
	}
	outcome := func(ctx context.Context) error {
		if oc.wait {
			<-ctx.Done()
			return fmt.Errorf("dial: %w", ctx.Err())
		}
		return oc.err
	}
	s := &Server{
		HandshakeTimeout: 5 * time.Second, // waiting for it is a hang: the client has closed
		DialTimeout:      20 * time.Millisecond,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			r.dialed = append(r.dialed, network+" "+address)
			mu.Unlock()
			if err := outcome(ctx); err != nil || oc.wait {
				return nil, err
			}
			ours, theirs := fuzzUnixPair(t)
			targets.Go(func() {
				defer theirs.Close()
				playTarget(theirs, nil)
			})
			if oc.bound != nil {
				return boundConn{ours, oc.bound}, nil
			}
			return ours, nil
		},
		OnTunnel: func(ev TunnelEvent) {
			mu.Lock()
			r.events = append(r.events, ev)
			mu.Unlock()
		},
	}
	var ss *session
	if via != 0 && proto == "socks" {
		s.HandOver = func(ctx context.Context, c net.Conn, address string, before func() error) (handover.Forward, bool, error) {
			mu.Lock()
			r.handed = append(r.handed, address)
			r.handOverBuffered = r.handOverBuffered || ss.br.Buffered() > 0
			mu.Unlock()
			if via == 2 {
				return nil, false, nil
			}
			if err := outcome(ctx); err != nil || oc.wait {
				return nil, true, err
			}
			if err := before(); err != nil {
				return nil, true, err
			}
			fw := &fuzzForward{c: c, done: make(chan struct{})}
			targets.Go(func() {
				defer close(fw.done)
				fw.n = playTarget(c, c.(*net.TCPConn).CloseWrite)
			})
			return fw, true, nil
		}
	}
	handle := s.socksConn
	if proto == "http" {
		handle = s.httpConn
	}

	client, err := net.Dial("tcp", p.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := p.l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ss = newSession(ctx, sc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ss.finish()
		handle(ss)
	}()

	var eofAt time.Time // when the client's EOF was sent
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		client.Write(in) // may fail: the server may close early
		client.(*net.TCPConn).CloseWrite()
		eofAt = time.Now()
	}()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r.out, r.readErr = io.ReadAll(client)
	if isTimeout(r.readErr) {
		t.Fatalf("the server neither answered nor closed within 10s; read %q", r.out)
	}
	<-wrote
	// The server closes soon after the client's EOF: at most a refusal's
	// linger (500ms) and a dial (DialTimeout) later, not at the end of
	// HandshakeTimeout.
	const bound = 2 * time.Second
	if d := time.Since(eofAt); d > bound {
		t.Fatalf("the server closed the connection %v after the client's EOF", d)
	}
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("the handler did not return %v after the client's EOF", bound)
	}
	targetsDone := make(chan struct{})
	go func() { targets.Wait(); close(targetsDone) }()
	select {
	case <-targetsDone:
	case <-time.After(3 * time.Second):
		t.Fatalf("the target did not see the end of its connection 3s after the handler returned")
	}
	client.Close()
	cancel()
	// Every goroutine of the session is gone.
	for deadline := time.Now().Add(3 * time.Second); runtime.NumGoroutine() > baseGoroutines; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left (was %d):\n%s", runtime.NumGoroutine(), baseGoroutines, buf[:runtime.Stack(buf, true)])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return r
}

// socksWant is what refSOCKS says a SOCKS server must do with some bytes.
//
// A name with a NUL byte (which would make OpenSSH's sshd drop the SSH
// connection), another ASCII control character (C0 or DEL), or '[' or ']'
// is refused as unreachable, never dialed: no host:port address names it
// (as host:port, "[a]" would name a, and "[a" nothing; a dialer splits the
// address with net.SplitHostPort). A request for port 0 is malformed,
// refused with SOCKS5's general failure.
type socksWant struct {
	ver    byte
	pre    []byte // answers before the request's verdict: SOCKS5's method selection
	refuse []byte // the refusal, for a request refused without a dial
	// Accepted: the target, and where the request ends.
	accepted bool
	ip       []byte // 4 or 16 bytes, or nil for a name
	name     string
	port     uint16
	end      int
}

// refSOCKS parses in as RFC 1928 (CONNECT, no authentication), SOCKS4 and
// SOCKS4a (fields of at most 255 bytes) describe, independently of
// socks.go, and says what the server must answer.
func refSOCKS(in []byte) socksWant {
	if len(in) == 0 {
		return socksWant{}
	}
	switch in[0] {
	case 5:
		return refSOCKS5(in)
	case 4:
		return refSOCKS4(in)
	}
	return socksWant{ver: in[0]} // not SOCKS: closed without an answer
}

func refSOCKS5(in []byte) socksWant {
	w := socksWant{ver: 5}
	if len(in) < 2 {
		return w
	}
	p := 2 + int(in[1])
	if len(in) < p {
		return w
	}
	if bytes.IndexByte(in[2:p], 0) < 0 {
		w.refuse = []byte{5, 0xff}
		return w
	}
	w.pre = []byte{5, 0}
	if len(in) < p+4 {
		return w
	}
	ver, cmd, atyp := in[p], in[p+1], in[p+3]
	p += 4
	fail := func(code byte) socksWant {
		w.refuse = []byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0}
		return w
	}
	if ver != 5 {
		return fail(1) // general failure
	}
	switch atyp {
	case 1, 4:
		n := 4
		if atyp == 4 {
			n = 16
		}
		if len(in) < p+n {
			return w
		}
		w.ip = in[p : p+n]
		p += n
	case 3:
		if len(in) < p+1 {
			return w
		}
		n := int(in[p])
		p++
		if len(in) < p+n {
			return w
		}
		w.name = string(in[p : p+n])
		p += n
	default:
		return fail(8) // address type not supported
	}
	if len(in) < p+2 {
		return w
	}
	w.port = binary.BigEndian.Uint16(in[p:])
	p += 2
	switch {
	case cmd != 1:
		return fail(7) // command not supported
	case w.port == 0:
		return fail(1)
	case atyp == 3 && w.name == "":
		return fail(1)
	case atyp == 3 && !refDialableName(w.name):
		return fail(4) // host unreachable: never dialed
	}
	w.accepted, w.end = true, p
	return w
}

func refSOCKS4(in []byte) socksWant {
	w := socksWant{ver: 4}
	if len(in) < 8 {
		return w
	}
	cd, port, ip := in[1], binary.BigEndian.Uint16(in[2:4]), in[4:8]
	p := 8
	rejected := func() socksWant {
		w.refuse = []byte{0, 91, 0, 0, 0, 0, 0, 0}
		return w
	}
	// cstring reads a NUL-terminated field of at most 255 bytes.
	cstring := func() (s string, complete, tooLong bool) {
		i := bytes.IndexByte(in[p:], 0)
		if i < 0 {
			return "", false, len(in)-p > 255
		}
		if i > 255 {
			return "", false, true
		}
		s = string(in[p : p+i])
		p += i + 1
		return s, true, false
	}
	_, complete, tooLong := cstring() // USERID
	if tooLong {
		return rejected()
	}
	if !complete {
		return w
	}
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 { // SOCKS4a
		name, complete, tooLong := cstring()
		if tooLong {
			return rejected()
		}
		if !complete {
			return w
		}
		if cd != 1 || port == 0 || name == "" || !refDialableName(name) {
			return rejected()
		}
		w.name = name
	} else {
		if cd != 1 || port == 0 {
			return rejected()
		}
		w.ip = ip
	}
	w.accepted, w.port, w.end = true, port, p
	return w
}

// refDialableName reports whether a SOCKS name (at most 255 bytes, as
// both protocols carry it) may be dialed: no ASCII control character (C0,
// NUL among them, or DEL) and no bracket.
func refDialableName(name string) bool {
	for i := 0; i < len(name); i++ {
		if b := name[i]; b <= 0x1f || b == 0x7f || b == '[' || b == ']' {
			return false
		}
	}
	return true
}

// checkNames checks that address, which Dial or HandOver got, is the
// target of w: split as a dialer splits it, it gives back the bytes'
// host and port.
func (w socksWant) checkNames(address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("target %q cannot be split: %v", address, err)
	}
	if port != strconv.Itoa(int(w.port)) {
		return fmt.Errorf("target %q: port %q, the request says %d", address, port, w.port)
	}
	if w.ip == nil {
		if host != w.name {
			return fmt.Errorf("target %q: host %q, the request names %q", address, host, w.name)
		}
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" || !bytes.Equal(ip.AsSlice(), w.ip) {
		return fmt.Errorf("target %q: host %q, the request has the address %x", address, host, w.ip)
	}
	return nil
}

// successReply is the SOCKS success answer for oc: SOCKS5 names the bound
// address, 0.0.0.0:0 when there is none (a handed-over request).
func (w socksWant) successReply(oc fuzzOutcome, handedOver bool) []byte {
	if w.ver == 4 {
		return []byte{0, 90, 0, 0, 0, 0, 0, 0}
	}
	b := []byte{5, 0, 0, 1}
	if ta, ok := oc.bound.(*net.TCPAddr); ok && !handedOver {
		if ip4 := ta.IP.To4(); ip4 != nil {
			b = append(b, ip4...)
		} else {
			b[3] = 4
			b = append(b, ta.IP.To16()...)
		}
		return binary.BigEndian.AppendUint16(b, uint16(ta.Port))
	}
	return append(b, 0, 0, 0, 0, 0, 0)
}

func (w socksWant) failureReply(oc fuzzOutcome) []byte {
	if w.ver == 4 {
		return []byte{0, 91, 0, 0, 0, 0, 0, 0}
	}
	return []byte{5, oc.socks5, 0, 1, 0, 0, 0, 0, 0, 0}
}

func fuzzSeedsSOCKS() [][]byte {
	s5 := func(cmd, atyp byte, addr []byte, port uint16) []byte {
		b := append([]byte{5, 1, 0, 5, cmd, 0, atyp}, addr...)
		return binary.BigEndian.AppendUint16(b, port)
	}
	s4 := func(cmd byte, ip [4]byte, port uint16, user, name string) []byte {
		b := binary.BigEndian.AppendUint16([]byte{4, cmd}, port)
		b = append(b, ip[:]...)
		b = append(b, user+"\x00"...)
		if name != "" {
			b = append(b, name+"\x00"...)
		}
		return b
	}
	v6 := netip.MustParseAddr("2001:db8::7").AsSlice()
	long := strings.Repeat("a", 300)
	return [][]byte{
		s5(1, 3, domain("example.com"), 443),
		append(s5(1, 3, domain("example.com"), 80), "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"...),
		s5(1, 1, []byte{127, 0, 0, 1}, 22),
		s5(1, 4, v6, 8080),
		s5(1, 4, netip.MustParseAddr("::ffff:192.0.2.1").AsSlice(), 80),
		append([]byte{5, 3, 2, 1, 0}, s5(1, 3, domain("x.test"), 7)[3:]...), // three methods, no-auth last
		s5(2, 1, []byte{127, 0, 0, 1}, 80),                                  // BIND
		s5(3, 1, []byte{0, 0, 0, 0}, 0),                                     // UDP ASSOCIATE
		s5(1, 3, domain(""), 80),                                            // empty name
		s5(1, 3, domain("a\x00b"), 80),                                      // NUL
		s5(1, 3, domain(long[:255]), 80),                                    // longest name
		s5(1, 2, nil, 80),                                                   // address type 2
		[]byte{5, 1, 2},                                                     // username/password only
		[]byte{5, 1, 0, 4, 1, 0, 1, 1, 2, 3},                                // request version 4
		s4(1, [4]byte{192, 0, 2, 1}, 80, "user", ""),
		append(s4(1, [4]byte{192, 0, 2, 1}, 80, "", ""), "early"...),
		s4(1, [4]byte{0, 0, 0, 1}, 443, "user", "example.com"),
		append(s4(1, [4]byte{0, 0, 0, 1}, 443, "", "example.com"), "early"...),
		s4(2, [4]byte{192, 0, 2, 1}, 80, "", ""),         // BIND
		s4(1, [4]byte{0, 0, 0, 1}, 80, "", ""),           // 4a, empty name
		s4(1, [4]byte{192, 0, 2, 1}, 80, long, ""),       // user ID too long
		s4(1, [4]byte{0, 0, 0, 1}, 80, "", long[:255]),   // longest 4a name
		s4(1, [4]byte{0, 0, 0, 1}, 80, "", long[:256]),   // too long
		s4(1, [4]byte{0, 0, 0, 0}, 80, "", ""),           // 0.0.0.0: not 4a
		[]byte("GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"), // not SOCKS
		{},
		s5(1, 1, []byte{127, 0, 0, 1}, 0),               // port 0
		s5(1, 4, v6, 0),                                 // port 0
		s5(1, 3, domain("x.test"), 0),                   // port 0
		s5(1, 3, domain("x.test"), 65535),               // the last port
		s4(1, [4]byte{192, 0, 2, 1}, 0, "", ""),         // port 0
		s4(1, [4]byte{0, 0, 0, 1}, 0, "", "x.test"),     // port 0
		s5(1, 3, domain("a\nb.test"), 80),               // a control character
		s5(1, 3, domain("a\x1bcb"), 80),                 // an escape sequence
		s5(1, 3, domain("a\x7f"), 80),                   // DEL
		s5(1, 3, domain("b\xc3\xbccher.test"), 80),      // UTF-8: dialed
		s4(1, [4]byte{0, 0, 0, 1}, 80, "", "a\rb.test"), // a control character
	}
}

func FuzzSOCKS(f *testing.F) {
	for i, seed := range fuzzSeedsSOCKS() {
		f.Add(byte(i*5), seed) // spread over outcomes and HandOver modes
	}
	p := newFuzzProxy(f)
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		if len(in) > fuzzMaxInput {
			t.Skip()
		}
		oc := fuzzOutcomes[int(mode)%len(fuzzOutcomes)]
		r := p.run(t, "socks", mode, in)
		w := refSOCKS(in)

		asked := append(slices.Clone(r.dialed), r.handed...)
		if !w.accepted {
			if len(asked) != 0 {
				t.Fatalf("dialed %q (HandOver %q) for a request that is incomplete or must be refused", r.dialed, r.handed)
			}
			want := append(slices.Clone(w.pre), w.refuse...)
			if !bytes.Equal(r.out, want) {
				t.Fatalf("the server answered %x, want %x", r.out, want)
			}
			if r.readErr != nil && len(want) != 0 {
				t.Fatalf("reading the answer: %v", r.readErr)
			}
			if len(r.events) != 0 {
				t.Fatalf("tunnel events %+v for a refused request", r.events)
			}
			return
		}

		// One target asked for, the one of the bytes; HandOver only when
		// no bytes past the request were read.
		if r.handOverBuffered {
			t.Fatalf("HandOver was called with bytes past the request buffered: they would be lost")
		}
		switch {
		case len(r.handed) > 1 || len(r.dialed) > 1 || len(asked) == 0:
			t.Fatalf("dialed %q, HandOver %q: want the target once", r.dialed, r.handed)
		case len(r.handed) == 1 && len(r.dialed) == 1 && r.dialed[0] != "tcp "+r.handed[0]:
			t.Fatalf("HandOver was asked for %q, then Dial for %q", r.handed[0], r.dialed[0])
		}
		for _, a := range r.handed {
			if err := w.checkNames(a); err != nil {
				t.Fatalf("HandOver: %v", err)
			}
		}
		for _, a := range r.dialed {
			network, address, _ := strings.Cut(a, " ")
			if network != "tcp" {
				t.Fatalf("dialed network %q", network)
			}
			if err := w.checkNames(address); err != nil {
				t.Fatalf("Dial: %v", err)
			}
		}
		handedOver := len(r.dialed) == 0
		if r.readErr != nil {
			t.Fatalf("reading the answer: %v (read %x)", r.readErr, r.out)
		}
		want := slices.Clone(w.pre)
		if oc.err != nil || oc.wait {
			want = append(want, w.failureReply(oc)...)
			if !bytes.Equal(r.out, want) {
				t.Fatalf("dial failed (%s): the server answered %x, want %x", oc.name, r.out, want)
			}
			if len(r.events) != 0 {
				t.Fatalf("tunnel events %+v for a failed dial", r.events)
			}
			return
		}
		want = append(append(want, w.successReply(oc, handedOver)...), fuzzGreeting...)
		if !bytes.Equal(r.out, want) {
			t.Fatalf("the client read %q, want %q", r.out, want)
		}
		if rest := in[w.end:]; !bytes.Equal(r.received, rest) {
			t.Fatalf("the target read %q, want the bytes after the request, %q", r.received, rest)
		}
		proto := "socks5"
		if w.ver == 4 {
			proto = "socks4"
		}
		target := strings.TrimPrefix(slices.Concat(r.dialed, r.handed)[0], "tcp ")
		wantEv := []TunnelEvent{
			{Proto: proto, Target: target, Open: true, HandedOver: handedOver},
			{Proto: proto, Target: target, Sent: int64(len(in) - w.end), Received: int64(len(fuzzGreeting)), HandedOver: handedOver},
		}
		if !slices.Equal(r.events, wantEv) {
			t.Fatalf("tunnel events\n%+v, want\n%+v", r.events, wantEv)
		}
	})
}

// refHTTPHead returns the request line of in and where the head of the
// request ends (after its first empty line, "\n" or "\r\n"), or -1 when
// in holds no complete head.
func refHTTPHead(in []byte) (line string, end int) {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		return "", -1
	}
	line = strings.TrimSuffix(string(in[:i]), "\r")
	for p := i + 1; p < len(in); {
		j := bytes.IndexByte(in[p:], '\n')
		if j < 0 {
			break
		}
		if l := in[p : p+j]; len(l) == 0 || string(l) == "\r" {
			return line, p + j + 1
		}
		p += j + 1
	}
	return line, -1
}

// checkHTTPError checks an error response: well-formed, with status want
// (0: any of the refusals of a request), a body of Content-Length bytes
// and nothing after it.
func checkHTTPError(out []byte, want int) (int, error) {
	br := bufio.NewReader(bytes.NewReader(out))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, fmt.Errorf("unparsable response %q: %v", out, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("response body of %q: %v", out, err)
	}
	switch {
	case want != 0 && resp.StatusCode != want:
		return 0, fmt.Errorf("status %d, want %d: %q", resp.StatusCode, want, out)
	case want == 0 && resp.StatusCode != 400 && resp.StatusCode != 405 && resp.StatusCode != 505:
		return 0, fmt.Errorf("status %d for a request not dialed: %q", resp.StatusCode, out)
	case resp.ProtoMajor != 1 || resp.ContentLength != int64(len(body)) || !resp.Close:
		return 0, fmt.Errorf("response head: %q", out)
	case !bytes.HasPrefix(body, fmt.Appendf(nil, "%d ", resp.StatusCode)) || !bytes.HasSuffix(body, []byte("\n")):
		return 0, fmt.Errorf("response body %q", body)
	case br.Buffered() != 0:
		return 0, fmt.Errorf("bytes after the response: %q", out)
	case resp.StatusCode == 405 && resp.Header.Get("Allow") != "CONNECT":
		return 0, fmt.Errorf("405 without Allow: CONNECT: %q", out)
	}
	return resp.StatusCode, nil
}

// refConnectHost and refConnectIPv6 are the request-targets a CONNECT
// may dial, independently of httpconnect.go: a name or an IPv4 address
// (no URL delimiter, '%', control character, space or non-ASCII byte),
// or an IPv6 address in brackets with an optional RFC 6874 zone of
// unreserved characters; and a port of 1-65535 in canonical decimal.
var (
	refConnectHost = regexp.MustCompile(`^([^\[\]:@/?#\\%]+):([1-9][0-9]{0,4})$`)
	refConnectIPv6 = regexp.MustCompile(`^\[([0-9A-Fa-f:.]+)(%25[A-Za-z0-9._~-]+)?\]:([1-9][0-9]{0,4})$`)
)

// refConnectTarget is the address a CONNECT to uri must dial, if any: uri
// itself, but for an IPv6 zone, dialed as "%zone".
func refConnectTarget(uri string) (string, bool) {
	portOK := func(p string) bool { n, _ := strconv.Atoi(p); return n <= 65535 }
	for i := 0; i < len(uri); i++ {
		if uri[i] <= ' ' || uri[i] >= 0x7f {
			return "", false
		}
	}
	if m := refConnectHost.FindStringSubmatch(uri); m != nil {
		return uri, len(m[1]) <= 255 && portOK(m[2])
	}
	m := refConnectIPv6.FindStringSubmatch(uri)
	if m == nil || !strings.Contains(m[1], ":") || net.ParseIP(m[1]) == nil || !portOK(m[3]) {
		return "", false
	}
	host := m[1]
	if m[2] != "" {
		host += "%" + strings.TrimPrefix(m[2], "%25")
	}
	return "[" + host + "]:" + m[3], len(host) <= 255
}

func FuzzHTTPConnect(f *testing.F) {
	for i, seed := range []string{
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic c2VjcmV0\r\nUser-Agent: curl/8.5.0\r\nProxy-Connection: Keep-Alive\r\n\r\n\x16\x03\x01\x00\x05hello",
		"CONNECT 192.0.2.1:22 HTTP/1.0\r\n\r\nSSH-2.0-OpenSSH_9.6\r\n",
		"CONNECT [2001:db8::1]:8080 HTTP/1.1\nHost: [2001:db8::1]:8080\n\nearly",
		"CONNECT x.test:80 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n",
		"CONNECT x.test HTTP/1.1\r\n\r\n",
		"CONNECT x.test:0 HTTP/1.1\r\n\r\n",
		"CONNECT a@x.test:80 HTTP/1.1\r\n\r\n",
		"CONNECT x.test:80 HTTP/2.0\r\n\r\n",
		"CONNECT x.test:80 HTTP/1.1\r\nHost: x",
		"junk\r\n\r\n",
		"",
		"CONNECT x.test:0080 HTTP/1.1\r\n\r\n",
		"CONNECT x.test:65535 HTTP/1.1\r\n\r\n",
		"CONNECT [::1]:080 HTTP/1.1\r\n\r\n",
		"CONNECT [fe80::1%25eth0]:80 HTTP/1.1\r\n\r\n",
		"CONNECT [fe80::1%eth0]:80 HTTP/1.1\r\n\r\n",
		"CONNECT [fe80::1%25%41]:80 HTTP/1.1\r\n\r\n",
		"CONNECT [fe80::1%25a%25b]:80 HTTP/1.1\r\n\r\n",
		"CONNECT [::ffff:192.0.2.1]:80 HTTP/1.1\r\n\r\n",
		"CONNECT [192.0.2.1]:80 HTTP/1.1\r\n\r\n",
		"CONNECT user:secret@x.test:80 HTTP/1.1\r\n\r\n",
	} {
		f.Add(byte(i*3), []byte(seed))
	}
	p := newFuzzProxy(f)
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		if len(in) > fuzzMaxInput {
			t.Skip()
		}
		oc := fuzzOutcomes[int(mode)%len(fuzzOutcomes)]
		r := p.run(t, "http", mode, in)
		line, end := refHTTPHead(in)
		if len(r.handed) != 0 {
			t.Fatalf("HTTP CONNECT used HandOver")
		}
		if len(r.dialed) == 0 {
			if len(r.out) == 0 {
				if end >= 0 && end <= 4*handshakeBuffer {
					t.Fatalf("no answer to a complete request head")
				}
				return
			}
			if _, err := checkHTTPError(r.out, 0); err != nil {
				t.Fatal(err)
			}
			if code, _ := checkHTTPError(r.out, 0); code == 405 && strings.HasPrefix(line, "CONNECT ") {
				t.Fatalf("405 for CONNECT %q", line)
			}
			if len(r.events) != 0 {
				t.Fatalf("tunnel events %+v for a refused request", r.events)
			}
			return
		}

		if len(r.dialed) != 1 {
			t.Fatalf("dialed %q: want one target", r.dialed)
		}
		network, target, _ := strings.Cut(r.dialed[0], " ")
		if network != "tcp" {
			t.Fatalf("dialed network %q", network)
		}
		// The target is the request-target of a CONNECT request line,
		// authority-form host:port with a port in 1-65535, as
		// refConnectTarget reads it.
		if end < 0 {
			t.Fatalf("dialed %q for an incomplete request head", target)
		}
		method, rest, _ := strings.Cut(line, " ")
		uri, proto, _ := strings.Cut(rest, " ")
		wantTarget, ok := refConnectTarget(uri)
		if method != "CONNECT" || !ok || target != wantTarget || !strings.HasPrefix(proto, "HTTP/1.") {
			t.Fatalf("dialed %q for the request line %q", target, line)
		}
		host, port, err := net.SplitHostPort(target)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || n == 0 || host == "" || len(host) > 255 || strings.ContainsAny(host, "\x00 \r\n") {
			t.Fatalf("dialed %q: not host:port", target)
		}
		if oc.err != nil || oc.wait {
			if r.readErr != nil {
				t.Fatalf("reading the answer: %v (read %q)", r.readErr, r.out)
			}
			if _, err := checkHTTPError(r.out, oc.http); err != nil {
				t.Fatalf("dial failed (%s): %v", oc.name, err)
			}
			return
		}
		want := "HTTP/1.1 200 Connection established\r\n\r\n" + fuzzGreeting
		if r.readErr != nil || string(r.out) != want {
			t.Fatalf("the client read %q, %v; want %q", r.out, r.readErr, want)
		}
		if rest := in[end:]; !bytes.Equal(r.received, rest) {
			t.Fatalf("the target read %q, want the bytes after the request head, %q", r.received, rest)
		}
		wantEv := []TunnelEvent{
			{Proto: "http-connect", Target: target, Open: true},
			{Proto: "http-connect", Target: target, Sent: int64(len(in) - end), Received: int64(len(fuzzGreeting))},
		}
		if !slices.Equal(r.events, wantEv) {
			t.Fatalf("tunnel events\n%+v, want\n%+v", r.events, wantEv)
		}
	})
}
